//! Wires the daemon together: Valkey, the start position, the reader and the writer.

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::config::Settings;
use crate::cursor;
use crate::identity::{IdentityError, Resolver, UserWriter, Why};
use crate::index::program::TtlSecs;
use crate::index::Indexer;
use crate::jetstream::frame::{Dictionary, DictionaryError};
use crate::jetstream::{host_label, Reader};
use crate::valkey::{Store, StoreError, StoredCursor};
use crate::writer::{now_us, UserAction, UserHook, Writer};

/// Why the daemon could not run. All fatal.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Valkey failed in a way retrying cannot fix.
    #[error(transparent)]
    Valkey(#[from] StoreError),
    /// The zstd dictionary is unusable.
    #[error(transparent)]
    Dictionary(#[from] DictionaryError),
    /// Identity resolution could not start.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// Refresh a `user` key once less than this share of its TTL is left (a quarter: an account
/// active at least once per TTL stays cached without a gap).
const REFRESH_DIVISOR: u64 = 4;

/// The indexer for these settings.
pub fn indexer(settings: &Settings) -> Indexer {
    let ttl = &settings.ttl;
    let ttl = TtlSecs {
        record: ttl.record.as_secs(),
        index: ttl.index.as_secs(),
        aggregate: ttl.aggregate.map_or(0, |aggregate| aggregate.as_secs()),
        tombstone: ttl.tombstone.as_secs(),
    };
    Indexer::new(
        &settings.valkey.prefix,
        ttl,
        settings.valkey.recent_pushes as u64,
    )
}

/// A Valkey store for these settings, connected (retrying until it is, or until `cancel`).
pub async fn connect(
    settings: &Settings,
    cancel: &CancellationToken,
) -> Result<Option<Store>, DaemonError> {
    let valkey = &settings.valkey;
    let store = Store::new(
        valkey.url.expose_secret(),
        valkey.tls_ca_file.as_deref(),
        valkey.command_timeout,
        indexer(settings),
        &settings.cursor.name,
    )?;
    let mut attempts = 0u64;
    let waiting = store.wait(|error| {
        attempts += 1;
        if attempts == 1 || attempts % 30 == 0 {
            tracing::warn!(error = %error, attempts, "valkey unreachable; retrying");
        }
    });
    tokio::select! {
        waited = waiting => waited.map(|()| Some(store)).map_err(DaemonError::from),
        () = cancel.cancelled() => Ok(None),
    }
}

/// Runs until `cancel`, then drains the queue and saves the cursor.
pub async fn run(settings: Settings, cancel: CancellationToken) -> Result<(), DaemonError> {
    let dictionary = load_dictionary(&settings)?;
    let Some(store) = connect(&settings, &cancel).await? else {
        return Ok(());
    };
    tracing::info!(prefix = %settings.valkey.prefix, "valkey connected");
    let Some(boot) = boot_retrying(&settings, &store, &cancel).await? else {
        return Ok(());
    };
    let (items_tx, items_rx) = mpsc::channel(settings.valkey.queue_capacity);
    let (replay_tx, replay_rx) = watch::channel(0);
    let jetstream = &settings.jetstream;
    tracing::info!(host = %host_label(&jetstream.urls[boot.host]), start = ?boot.start,
        "starting jetstream");
    let reader = Reader::new(
        jetstream.clone(),
        (settings.cursor.rewind, settings.cursor.failover_rewind),
        settings.testing.allow_localhost_did_web,
        dictionary,
        indexer(&settings),
        items_tx,
        replay_rx,
        cancel.clone(),
    );
    let reading = tokio::spawn(reader.run(boot.start, boot.host));
    let resolver = start_resolver(&settings, &store, &cancel)?;
    let refresh_below = (settings.ttl.user.as_secs() / REFRESH_DIVISOR) as i64;
    let batching = (
        settings.valkey.batch_max_events,
        settings.cursor.save_interval,
    );
    let writer = Writer::new(store.clone(), jetstream.urls.clone(), batching, replay_tx)
        .with_users(user_hook(resolver), refresh_below);
    let written = writer.run(items_rx).await;
    cancel.cancel();
    let _ = reading.await;
    store.close().await;
    Ok(written?)
}

/// Starts identity resolution, writing `P:{D}:user` through `store`.
fn start_resolver(
    settings: &Settings,
    store: &Store,
    cancel: &CancellationToken,
) -> Result<Resolver, DaemonError> {
    let (store, ttl) = (store.clone(), settings.ttl.user);
    let writer: UserWriter = Arc::new(move |did, value| {
        let store = store.clone();
        Box::pin(async move {
            store
                .set_user(&did, value, ttl)
                .await
                .map_err(|e| e.to_string())
        })
    });
    let allow_localhost = settings.testing.allow_localhost_did_web;
    Ok(Resolver::start(
        &settings.identity,
        writer,
        allow_localhost,
        cancel.clone(),
    )?)
}

/// Routes what the writer learns to the resolver.
fn user_hook(resolver: Resolver) -> UserHook {
    Box::new(move |action| match action {
        UserAction::Resolve(did) => resolver.request(&did, Why::Missing),
        UserAction::Refresh(did) => resolver.request(&did, Why::Refresh),
        UserAction::Reresolve(did) => resolver.request(&did, Why::Identity),
        UserAction::Reactivated(did) => resolver.request(&did, Why::Reactivated),
        UserAction::Forget(did) => resolver.forget(&did),
    })
}

/// Reads the start position, waiting while Valkey refuses (full, loading) or drops away.
async fn boot_retrying(
    settings: &Settings,
    store: &Store,
    cancel: &CancellationToken,
) -> Result<Option<cursor::Boot>, DaemonError> {
    let mut warned = false;
    loop {
        match boot(settings, store).await {
            Ok(boot) => return Ok(Some(boot)),
            Err(DaemonError::Valkey(error)) if error.is_retryable() => {
                crate::metrics::valkey_error(error.reason());
                if !warned {
                    tracing::warn!(error = %error, "valkey cannot start the stream yet; retrying");
                    warned = true;
                }
            }
            Err(error) => return Err(error),
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(None),
            () = tokio::time::sleep(BOOT_RETRY) => {}
        }
    }
}

/// Pause between two attempts to read the start position.
const BOOT_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

async fn boot(settings: &Settings, store: &Store) -> Result<cursor::Boot, DaemonError> {
    let stored = store.load_cursor().await?;
    let has_meta = store.has_meta().await?;
    let cursor = &settings.cursor;
    let boot = cursor::boot(
        stored.as_ref(),
        has_meta,
        &settings.jetstream.urls,
        (cursor.rewind, cursor.failover_rewind),
        cursor.no_cursor,
    );
    if boot.data_lost {
        store.purge().await?;
    }
    store.ensure_meta(now_us()).await?;
    if boot.data_lost {
        tracing::warn!("valkey holds a cursor but no meta key; replaying from the oldest event");
        crate::metrics::data_loss_replay();
        let host = settings.jetstream.urls[0].to_string();
        store
            .write_cursor(&StoredCursor { time_us: 0, host }, now_us())
            .await?;
    }
    Ok(boot)
}

fn load_dictionary(settings: &Settings) -> Result<Option<Dictionary>, DaemonError> {
    let jetstream = &settings.jetstream;
    let Some(path) = &jetstream.zstd_dictionary else {
        return Ok(None);
    };
    let dictionary = Dictionary::load(path, jetstream.zstd_dictionary_sha256.as_deref())?;
    tracing::info!(id = dictionary.id(), path = %path.display(), "zstd dictionary loaded");
    Ok(Some(dictionary))
}
