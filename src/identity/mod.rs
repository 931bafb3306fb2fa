//! Identity resolution: keeps `P:{D}:user` (handle, PDS, avatar) filled beside indexing.
//!
//! The indexing path calls [`Resolver::request`], which never blocks and never fails: it puts
//! the DID on a bounded queue, or counts why it did not. Worker tasks take DIDs off the queue,
//! fetch the DID document (`did:plc` from the PLC directory through atrium's resolver, `did:web`
//! from `/.well-known/did.json`), read the handle and the PDS from it, ask that PDS for the
//! `app.bsky.actor.profile/self` record, and hand the JSON value to the [`UserWriter`].
//!
//! ```text
//! request ─► ledger (dedup, negative cache) ─► queue ─► workers ─► PLC / did:web / PDS (HTTP)
//!                                                          └─► UserWriter (SET P:{D}:user)
//! ```
//!
//! Invariants: at most one resolution per DID is queued or in flight, and only its result may
//! be written; a DID passed to [`Resolver::forget`] is never written from work that was queued or
//! in flight before; a failed DID is not asked again for `identity.negative_cache_secs` unless an
//! identity event or a reactivation announces a change; every host gets at most
//! `identity.per_host_rate` requests per second. Failures are counted by reason and logged at
//! debug per DID; a summary is logged at most once a minute.

mod document;
mod error;
mod http;
mod ledger;
mod lookup;
mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use self::error::IdentityError;
use self::worker::Shared;
use crate::config::IdentitySettings;

/// What [`UserWriter`] returns: `Err` holds a message for the debug log.
pub type WriteFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Writes `P:{D}:user`: called with the DID and the JSON value
/// `{"did":…,"handle":…,"pds":…,"avatar":…,"resolved_at_us":…}` (fields in that order; handle,
/// pds and avatar may be null). The daemon implements it with `SET P:{D}:user <json> EX <user
/// ttl>`; tests can implement it over any Valkey client.
pub type UserWriter = Arc<dyn Fn(String, String) -> WriteFuture + Send + Sync>;

/// Why the indexing path asks for a DID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The user key is absent.
    Missing,
    /// The user key is about to expire.
    Refresh,
    /// An identity event announced a new handle or PDS; passes the negative cache.
    Identity,
    /// A forgotten account is active again; honoured only after [`Resolver::forget`].
    Reactivated,
}

/// A cheap, cloneable handle to the background resolution workers.
#[derive(Clone)]
pub struct Resolver {
    shared: Arc<Shared>,
}

impl Resolver {
    /// Spawns the worker tasks on the current tokio runtime; they stop when `cancel` fires.
    ///
    /// `allow_localhost` is `testing.allow_localhost_did_web`: `did:web:localhost%3A<port>`
    /// then resolves over plain HTTP. Fails only outside a runtime or when the HTTP client
    /// cannot be built; both are fatal.
    pub fn start(
        settings: &IdentitySettings,
        writer: UserWriter,
        allow_localhost: bool,
        cancel: CancellationToken,
    ) -> Result<Resolver, IdentityError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| IdentityError::NoRuntime)?;
        let shared = Shared::start(settings, writer, allow_localhost, &runtime, cancel)?;
        Ok(Resolver { shared })
    }

    /// Never blocks and never fails: enqueues unless the DID is already queued or in flight,
    /// negatively cached, or the queue is full (then counted and dropped: the next commit asks
    /// again). [`Why::Reactivated`] is honoured only for DIDs passed to [`Resolver::forget`]
    /// recently (bounded memory).
    pub fn request(&self, did: &str, why: Why) {
        self.shared.request(did, why);
    }

    /// The account is gone: drops queued work for it, never writes its user key from a result
    /// that was in flight, and remembers it (at most 100,000 DIDs for 48 hours) for
    /// [`Why::Reactivated`].
    ///
    /// A write already handed to the [`UserWriter`] cannot be called back, so the caller should
    /// forget the DID before it deletes the account's keys.
    pub fn forget(&self, did: &str) {
        self.shared.forget(did);
    }
}
