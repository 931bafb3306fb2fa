//! The queue, the worker tasks and the housekeeping task behind a [`Resolver`](super::Resolver).
//!
//! Invariant: the ledger's lock is never held across an `.await`, so a request from the
//! indexing path waits at most for another request's bookkeeping, never for the network.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::error::IdentityError;
use super::ledger::{Admission, Ledger};
use super::lookup::{Lookup, User};
use super::{UserWriter, Why};
use crate::config::IdentitySettings;
use crate::metrics;

/// How often idle hosts are dropped from the limiter and the failure summary is logged.
const TEND_INTERVAL: Duration = Duration::from_secs(60);

/// One queued resolution.
struct Job {
    did: String,
    ticket: u64,
}

/// How a job ended.
enum Outcome {
    /// The user key was written.
    Written(User),
    /// The account was forgotten meanwhile; nothing was written.
    Discarded,
    /// Nothing was written, for this reason.
    Failed(IdentityError),
}

/// Counts since the last summary line.
#[derive(Default)]
struct Tally {
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// State shared by the [`Resolver`](super::Resolver) handles and the tasks.
pub(super) struct Shared {
    ledger: Mutex<Ledger>,
    queue: mpsc::Sender<Job>,
    lookup: Lookup,
    writer: UserWriter,
    tally: Tally,
}

type Jobs = Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>;

impl Shared {
    /// Builds the shared state and spawns `concurrency` workers and the housekeeping task.
    pub(super) fn start(
        settings: &IdentitySettings,
        writer: UserWriter,
        allow_localhost: bool,
        runtime: &Handle,
        cancel: CancellationToken,
    ) -> Result<Arc<Shared>, IdentityError> {
        let lookup = Lookup::new(settings, allow_localhost)?;
        let (queue, jobs) = mpsc::channel(settings.queue_capacity);
        let shared = Arc::new(Shared {
            ledger: Mutex::new(Ledger::new(settings.negative_cache)),
            queue,
            lookup,
            writer,
            tally: Tally::default(),
        });
        let jobs: Jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        for _ in 0..settings.concurrency {
            runtime.spawn(work(Arc::clone(&shared), Arc::clone(&jobs), cancel.clone()));
        }
        runtime.spawn(tend(Arc::clone(&shared), cancel));
        Ok(shared)
    }

    pub(super) fn request(&self, did: &str, why: Why) {
        let admission = self.ledger().admit(did, why, Instant::now());
        match admission {
            Admission::Queue(ticket) => self.enqueue(did.to_owned(), ticket),
            Admission::Skip(reason) => metrics::identity_skipped(reason),
        }
    }

    pub(super) fn forget(&self, did: &str) {
        self.ledger().forget(did, Instant::now());
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enqueue(&self, did: String, ticket: u64) {
        let Err(refused) = self.queue.try_send(Job { did, ticket }) else {
            return;
        };
        let full = matches!(refused, mpsc::error::TrySendError::Full(_));
        let job = refused.into_inner();
        self.ledger().withdraw(&job.did, job.ticket);
        if full {
            metrics::identity_dropped();
            self.tally.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Resolves one DID and writes its user key, unless the job was forgotten.
    async fn run(&self, job: Job) {
        if !self.ledger().begin(&job.did, job.ticket) {
            return;
        }
        metrics::identity_started();
        let began = Instant::now();
        let outcome = match self.lookup.user(&job.did).await {
            Ok(user) => self.write(&job, user).await,
            Err(error) => Outcome::Failed(error),
        };
        self.finish(job, outcome, began);
    }

    async fn write(&self, job: &Job, user: User) -> Outcome {
        if !self.ledger().is_current(&job.did, job.ticket) {
            return Outcome::Discarded;
        }
        match (self.writer)(job.did.clone(), user.to_json()).await {
            Ok(()) => Outcome::Written(user),
            Err(message) => Outcome::Failed(IdentityError::Write(message)),
        }
    }

    fn finish(&self, job: Job, outcome: Outcome, began: Instant) {
        let seconds = began.elapsed().as_secs_f64();
        log_outcome(&job.did, &outcome, seconds);
        let negative = match &outcome {
            Outcome::Discarded => return metrics::identity_skipped("forgotten"),
            Outcome::Written(_) => {
                metrics::identity_finished(Ok(()), seconds);
                false
            }
            Outcome::Failed(error) => {
                self.tally.failed.fetch_add(1, Ordering::Relaxed);
                metrics::identity_finished(Err(error.reason()), seconds);
                // Valkey being down says nothing about the identity: no negative cache.
                !matches!(error, IdentityError::Write(_))
            }
        };
        let again = self
            .ledger()
            .finish(&job.did, job.ticket, negative, Instant::now());
        if let Some(ticket) = again {
            self.enqueue(job.did, ticket);
        }
    }

    fn summarise(&self) {
        let failed = self.tally.failed.swap(0, Ordering::Relaxed);
        let dropped = self.tally.dropped.swap(0, Ordering::Relaxed);
        if failed > 0 || dropped > 0 {
            let active = self.ledger().active_len();
            info!(
                failed,
                dropped, active, "identity resolutions failed or dropped"
            );
        }
    }
}

fn log_outcome(did: &str, outcome: &Outcome, seconds: f64) {
    match outcome {
        Outcome::Written(user) => {
            let (handle, pds) = (user.handle.as_deref(), user.pds.as_deref());
            debug!(did, handle, pds, seconds, "identity resolved");
        }
        Outcome::Discarded => debug!(did, "identity result discarded: account forgotten"),
        Outcome::Failed(error) => {
            let reason = error.reason();
            debug!(did, reason, %error, seconds, "identity resolution failed");
        }
    }
}

/// One worker: takes jobs until cancelled; a cancelled resolution is abandoned unwritten.
async fn work(shared: Arc<Shared>, jobs: Jobs, cancel: CancellationToken) {
    loop {
        let next = async { jobs.lock().await.recv().await };
        let job = tokio::select! {
            () = cancel.cancelled() => return,
            job = next => job,
        };
        let Some(job) = job else { return };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = shared.run(job) => {}
        }
    }
}

/// Housekeeping: forgets idle hosts in the limiter and logs the failure summary.
async fn tend(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(TEND_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        shared.lookup.http().forget_idle_hosts();
        shared.summarise();
    }
}
