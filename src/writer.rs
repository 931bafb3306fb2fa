//! The writer task: takes planned events off the queue in batches, applies them to Valkey,
//! and saves the cursor behind them.
//!
//! Nothing is dropped: a batch that fails because Valkey is unreachable or refusing writes is
//! retried until it succeeds, while the queue behind it fills and the reader stops reading.
//! The cursor moves only after a batch is acknowledged, and each save first checks `P:meta`,
//! so a Valkey that lost its data is noticed and the stream is replayed from the oldest event.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{mpsc, watch};
use url::Url;

use crate::cursor::Progress;
use crate::index::{Outcome, Plan, UserCheck};
use crate::jetstream::Item;
use crate::metrics;
use crate::valkey::{SaveOutcome, Store, StoreError, StoredCursor};

/// Longest pause between two attempts at a failing batch.
const RETRY_MAX_DELAY: Duration = Duration::from_secs(5);

/// First pause after a failed batch: short, since most outages are a restart.
const RETRY_MIN_DELAY: Duration = Duration::from_millis(100);

/// What a written batch asks of identity resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAction {
    /// A commit from an account whose `user` key is missing.
    Resolve(String),
    /// A commit from an account whose `user` key expires soon.
    Refresh(String),
    /// An identity event for an account the cache knows.
    Reresolve(String),
    /// An active account event (it may have come back after a purge).
    Reactivated(String),
    /// The account was purged (rule 6).
    Forget(String),
}

/// Receives user actions; must not block.
pub type UserHook = Box<dyn Fn(UserAction) + Send + Sync>;

/// Applies queued plans and keeps the cursor.
pub struct Writer {
    store: Store,
    hosts: Vec<Url>,
    batch_max: usize,
    save_interval: Duration,
    replay: watch::Sender<u64>,
    progress: Progress,
    saved: Option<(i64, usize)>,
    users: Option<(UserHook, i64)>,
    purged: PurgedAccounts,
}

/// Accounts whose keys a purge removed, oldest first, so that only they are resolved again
/// when they come back: account events arrive for the whole network, and reactivations of
/// accounts that never used ATCR must cost no request.
#[derive(Default)]
struct PurgedAccounts {
    set: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
}

/// Purged accounts remembered for a reactivation; bounds the memory of a long run.
const PURGED_REMEMBERED: usize = 100_000;

impl PurgedAccounts {
    fn insert(&mut self, did: &str) {
        if self.set.insert(did.to_owned()) {
            self.order.push_back(did.to_owned());
        }
        while self.order.len() > PURGED_REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }

    fn take(&mut self, did: &str) -> bool {
        self.set.remove(did)
    }
}

impl Writer {
    /// A writer over `store`; `replay` tells the reader to restart from the oldest event.
    pub fn new(
        store: Store,
        hosts: Vec<Url>,
        (batch_max, save_interval): (usize, Duration),
        replay: watch::Sender<u64>,
    ) -> Writer {
        let progress = Progress::default();
        Writer {
            store,
            hosts,
            batch_max,
            save_interval,
            replay,
            progress,
            saved: None,
            users: None,
            purged: PurgedAccounts::default(),
        }
    }

    /// Sends user actions to `hook`; a `user` key with less than `refresh_below` seconds left
    /// is refreshed.
    pub fn with_users(mut self, hook: UserHook, refresh_below: i64) -> Writer {
        self.users = Some((hook, refresh_below));
        self
    }

    /// Runs until the queue closes (the reader stopped), then saves the cursor.
    pub async fn run(mut self, mut items: mpsc::Receiver<Item>) -> Result<(), StoreError> {
        let mut batch = Vec::with_capacity(self.batch_max);
        let mut last_save = Instant::now();
        let mut tick = tokio::time::interval(self.save_interval);
        loop {
            tokio::select! {
                received = items.recv_many(&mut batch, self.batch_max) => {
                    if received == 0 {
                        break;
                    }
                    metrics::queue_depth(items.len());
                    // Events read before a replay from the oldest event will come again.
                    batch.retain(|item| item.epoch >= self.progress.epoch());
                    self.apply(&batch).await?;
                    self.progress.acknowledge(&batch);
                    batch.clear();
                }
                _ = tick.tick() => {}
            }
            if last_save.elapsed() >= self.save_interval {
                self.save().await;
                last_save = Instant::now();
            }
        }
        self.save().await;
        tracing::info!(cursor = ?self.saved.map(|(time_us, _)| time_us), "writer stopped");
        Ok(())
    }

    /// Applies one batch, retrying until Valkey takes it; only configuration errors end it. A
    /// batch that finds Valkey emptied is dropped: the replay it starts brings it again.
    async fn apply(&mut self, items: &[Item]) -> Result<(), StoreError> {
        let plans: Vec<_> = items.iter().map(|item| item.plan.clone()).collect();
        self.forget_purged(&plans);
        let mut delays = retry_delays();
        let mut failing = false;
        loop {
            let started = Instant::now();
            match self.store.apply(&plans).await {
                Ok(report) => {
                    let seconds = started.elapsed().as_secs_f64();
                    metrics::batch_written(
                        plans.len(),
                        report.steps,
                        report.round_trips,
                        report.stale,
                        seconds,
                    );
                    report
                        .notes
                        .iter()
                        .for_each(|note| metrics::script_note(note));
                    metrics::tombstones(report.tombstones);
                    for (index, detail) in &report.failed {
                        metrics::valkey_error("script");
                        tracing::error!(time_us = plans[*index].time_us, error = %detail,
                            "script failed on an event; it was skipped");
                    }
                    if failing {
                        tracing::info!("valkey is taking writes again");
                    }
                    for index in &report.purged {
                        self.purged.insert(&plans[*index].did);
                    }
                    self.user_actions(&plans, &report.user_ttls);
                    return Ok(());
                }
                Err(StoreError::DataLost) => {
                    if self.replay_after_loss().await {
                        return Ok(());
                    }
                    tokio::time::sleep(delays.next().unwrap_or(RETRY_MAX_DELAY)).await;
                }
                Err(error) if error.is_retryable() => {
                    metrics::valkey_error(error.reason());
                    if !failing {
                        tracing::warn!(error = %error, "valkey write failed; holding the stream");
                        failing = true;
                    }
                    tokio::time::sleep(delays.next().unwrap_or(RETRY_MAX_DELAY)).await;
                }
                Err(error) => {
                    metrics::valkey_error(error.reason());
                    return Err(error);
                }
            }
        }
    }

    /// Stores the acknowledged position, or starts a replay if Valkey lost its data.
    async fn save(&mut self) {
        let position = self.progress.position();
        let cursor = position.map(|(time_us, host)| StoredCursor {
            time_us,
            host: self.hosts[host].to_string(),
        });
        let outcome = match &cursor {
            Some(cursor) => self.store.save_cursor(cursor, now_us()).await,
            None => self.store.has_meta().await.map(|present| {
                if present {
                    SaveOutcome::Saved
                } else {
                    SaveOutcome::DataLost
                }
            }),
        };
        match outcome {
            Ok(SaveOutcome::Saved) => {
                if let Some((time_us, _)) = position {
                    metrics::cursor_saved(time_us);
                }
                self.saved = position;
            }
            Ok(SaveOutcome::DataLost) => {
                self.replay_after_loss().await;
            }
            Err(error) => {
                metrics::valkey_error(error.reason());
                tracing::debug!(error = %error, "cursor not saved; will retry");
            }
        }
    }

    /// Marks the emptied Valkey and restarts the reader from the oldest event; false when
    /// Valkey could not be marked yet (the caller retries).
    async fn replay_after_loss(&mut self) -> bool {
        let restart = async {
            let stray = self.store.purge().await?;
            tracing::info!(keys = stray, "removed keys written after the loss");
            self.store.ensure_meta(now_us()).await?;
            let host = self.hosts[0].to_string();
            self.store
                .write_cursor(&StoredCursor { time_us: 0, host }, now_us())
                .await
        };
        if let Err(error) = restart.await {
            tracing::debug!(error = %error, "could not mark the replay yet; will retry");
            return false;
        }
        let epoch = self.progress.epoch() + 1;
        self.progress.restart(epoch);
        self.saved = None;
        metrics::data_loss_replay();
        tracing::warn!("valkey lost its data; replaying from the oldest retained event");
        let _ = self.replay.send(epoch);
        true
    }
}

impl Writer {
    fn user_actions(&mut self, plans: &[Plan], user_ttls: &[(usize, i64)]) {
        let Some((hook, refresh_below)) = &self.users else {
            return;
        };
        for (index, ttl) in user_ttls {
            let plan = &plans[*index];
            if let Some(action) = user_action(plan, *ttl, *refresh_below) {
                hook(action);
            }
        }
        for plan in plans {
            let active = matches!(plan.outcome, Outcome::Account { active: true, .. });
            if active && self.purged.take(&plan.did) {
                hook(UserAction::Reactivated(plan.did.clone()));
            }
        }
    }

    /// Before a purge is written: no resolution in flight may write the user key back after it.
    fn forget_purged(&self, plans: &[Plan]) {
        let Some((hook, _)) = &self.users else { return };
        for plan in plans {
            if let Outcome::Account { purged: true, .. } = plan.outcome {
                hook(UserAction::Forget(plan.did.clone()));
            }
        }
    }
}

/// What a `user` key's TTL (`-2`: missing) means for the plan that reported it.
pub fn user_action(plan: &Plan, ttl: i64, refresh_below: i64) -> Option<UserAction> {
    let did = plan.did.clone();
    match plan.user_check? {
        UserCheck::Commit if ttl == -2 => Some(UserAction::Resolve(did)),
        UserCheck::Commit if (0..refresh_below).contains(&ttl) => Some(UserAction::Refresh(did)),
        UserCheck::Identity if ttl != -2 => Some(UserAction::Reresolve(did)),
        _ => None,
    }
}

fn retry_delays() -> backon::ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(RETRY_MIN_DELAY)
        .with_max_delay(RETRY_MAX_DELAY)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The wall clock in unix microseconds.
pub fn now_us() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |elapsed| {
        i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
    })
}
