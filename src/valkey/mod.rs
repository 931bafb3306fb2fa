//! The Valkey writer: applies plans with one script call per step, pipelined, and keeps the
//! cursor and `P:meta` control keys.
//!
//! Invariants: a plan's steps run in order and each is atomic (rule 2 of `docs/keys.md`);
//! newest-rev-wins is checked inside the script (rule 1); a batch either reports success for
//! every plan or fails as a whole and is retried, which is safe because every step is
//! idempotent (rule 3). The caller moves the cursor only after a batch succeeded (rule 5).

pub mod batch;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use fred::types::config::{TlsConfig, TlsConnector};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use fred::prelude::*;
use fred::types::Key;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::index::{FollowUp, Indexer, Main, Plan, Slot, Step};

/// The function library every step runs.
const LIBRARY: &str = include_str!("apply.lua");

/// The function in [`LIBRARY`] that applies one step.
const APPLY_FUNCTION: &str = "atcr_apply_v1";

/// Keys scanned and deleted per round trip by [`Store::purge`].
const PURGE_CHUNK: u32 = 1000;

/// Pause between two failed connection attempts, so a refused password never spins.
const CONNECT_RETRY: Duration = Duration::from_secs(1);

/// Name of the `P:meta` schema version this daemon writes.
pub const SCHEMA_VERSION: &str = "1";

/// Errors talking to Valkey.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Valkey could not be reached or did not answer in time: retry.
    #[error("valkey unavailable: {0}")]
    Unavailable(String),
    /// Valkey answered with an error that retrying may clear (out of memory, loading, busy).
    #[error("valkey refused the write: {0}")]
    Refused(String),
    /// The script failed on a step: a defect, not a passing condition.
    #[error("script failed: {0}")]
    Script(String),
    /// The URL or client configuration is unusable: fatal.
    #[error("valkey configuration: {0}")]
    Config(String),
    /// `P:meta` is gone: Valkey lost its data; nothing of the batch was written.
    #[error("valkey lost its data")]
    DataLost,
}

impl StoreError {
    /// Whether retrying the same operation later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Refused(_))
    }

    /// A bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Refused(detail) if detail.starts_with("OOM") => "oom",
            StoreError::Refused(_) => "refused",
            StoreError::Script(_) => "script",
            StoreError::Config(_) => "config",
            StoreError::DataLost => "data_lost",
        }
    }

    fn from_fred(error: &fred::error::Error) -> StoreError {
        let detail = error.details().to_owned();
        match error.kind() {
            ErrorKind::Config | ErrorKind::Url | ErrorKind::Auth | ErrorKind::Tls => {
                StoreError::Config(detail)
            }
            ErrorKind::Unknown | ErrorKind::InvalidArgument | ErrorKind::InvalidCommand
                if !is_transient_reply(&detail) =>
            {
                StoreError::Script(detail)
            }
            ErrorKind::Parse | ErrorKind::Protocol => StoreError::Script(detail),
            // rustls reports a certificate it does not trust as an I/O error.
            _ if detail.contains("InvalidCertificate") => StoreError::Config(detail),
            _ if is_transient_reply(&detail) => StoreError::Refused(detail),
            _ => StoreError::Unavailable(detail),
        }
    }
}

/// Server replies that a later retry can clear.
fn is_transient_reply(detail: &str) -> bool {
    const TRANSIENT: [&str; 9] = [
        "OOM",
        "LOADING",
        "BUSY",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "MASTERDOWN",
        "READONLY",
        "MOVED",
        "ERR Function not found",
    ];
    TRANSIENT.iter().any(|prefix| detail.starts_with(prefix))
}

/// The stored cursor (`P:cursor:<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCursor {
    /// The last event whose writes, and all before it, are acknowledged; 0 = replay all.
    pub time_us: i64,
    /// The Jetstream URL the position belongs to.
    pub host: String,
}

/// What a cursor save found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The cursor is stored.
    Saved,
    /// `P:meta` is gone: Valkey lost its data while the daemon ran. Nothing was written.
    DataLost,
}

/// What a batch did, for counting.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Steps sent.
    pub steps: usize,
    /// Pipelines sent.
    pub round_trips: usize,
    /// Main steps dropped by newest-rev-wins.
    pub stale: usize,
    /// Plans whose script failed (logged and counted by the caller).
    pub failed: Vec<(usize, String)>,
    /// Anomalies the script found, such as tag pointers that disagree.
    pub notes: Vec<String>,
    /// TTL of the account's `user` key (`-2`: missing) by plan index, for plans that ask.
    pub user_ttls: Vec<(usize, i64)>,
    /// Tombstones written.
    pub tombstones: usize,
    /// Plans whose purge (rule 6) found keys to remove, by index.
    pub purged: Vec<usize>,
}

#[derive(Debug, Deserialize)]
struct StepOutput {
    status: String,
    answer: Option<String>,
    #[serde(default)]
    follow: Vec<FollowUp>,
    #[serde(default)]
    notes: Vec<String>,
    user_ttl: Option<i64>,
    #[serde(default)]
    tombstone: bool,
    #[serde(default)]
    purged: bool,
}

/// A Valkey connection with the schema's script loaded.
#[derive(Clone)]
pub struct Store {
    client: Client,
    indexer: Indexer,
    cursor_key: String,
    meta_key: String,
}

impl Store {
    /// Trusts `ca_file` (PEM) for a `rediss://` connection instead of the system's roots.
    fn tls_config(ca_file: &Path) -> Result<TlsConfig, StoreError> {
        let unreadable = |error: &dyn std::fmt::Display| {
            StoreError::Config(format!("valkey TLS CA {}: {error}", ca_file.display()))
        };
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(ca_file).map_err(|e| unreadable(&e))? {
            roots
                .add(certificate.map_err(|e| unreadable(&e))?)
                .map_err(|e| unreadable(&e))?;
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConnector::from(config).into())
    }

    /// Builds a client for `url` and starts connecting in the background; see [`Store::wait`].
    /// With `tls_ca`, a `rediss://` connection trusts that CA instead of the system's roots.
    pub fn new(
        url: &str,
        tls_ca: Option<&Path>,
        timeout: Duration,
        indexer: Indexer,
        cursor: &str,
    ) -> Result<Store, StoreError> {
        let mut config = Config::from_url(url).map_err(|_| {
            StoreError::Config("the Valkey URL is not a valid redis:// or rediss:// URL".to_owned())
        })?;
        if let (Some(ca_file), Some(_)) = (tls_ca, &config.tls) {
            config.tls = Some(Store::tls_config(ca_file)?);
        }
        let policy = ReconnectPolicy::new_exponential(0, 100, 5_000, 2);
        let client = Builder::from_config(config)
            .with_connection_config(|connection| {
                connection.connection_timeout = timeout;
                connection.internal_command_timeout = timeout;
            })
            .with_performance_config(|performance| performance.default_command_timeout = timeout)
            .set_policy(policy)
            .build()
            .map_err(|error| StoreError::Config(error.details().to_owned()))?;
        let keys = indexer.keys().clone();
        Ok(Store {
            client,
            cursor_key: keys.cursor(cursor),
            meta_key: keys.meta(),
            indexer,
        })
    }

    /// Connects, retrying every `CONNECT_RETRY` for ever; `on_failure` hears each failed
    /// attempt. Only a configuration error (bad URL, TLS setup, refused credentials) ends the
    /// wait: retrying cannot fix those.
    pub async fn wait(&self, mut on_failure: impl FnMut(&StoreError)) -> Result<(), StoreError> {
        loop {
            // The client gives up after a failed first connection, so each attempt starts anew.
            let connection = self.client.connect();
            match self.client.wait_for_connect().await {
                Ok(()) => return Ok(()),
                Err(error) => match StoreError::from_fred(&error) {
                    StoreError::Config(detail) => return Err(StoreError::Config(detail)),
                    error => on_failure(&error),
                },
            }
            let _ = connection.await;
            tokio::time::sleep(CONNECT_RETRY).await;
        }
    }

    /// The underlying client, for read-only tools such as `inspect`.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Applies plans in order. On error nothing is reported as done and the whole batch may
    /// be retried. Checks `P:meta` first, so that a Valkey that restarted empty is noticed
    /// before anything is written to it (writes into an emptied cache would make the replay
    /// that refills it differ from an uninterrupted run).
    pub async fn apply(&self, plans: &[Plan]) -> Result<Report, StoreError> {
        if !self.has_meta().await? {
            return Err(StoreError::DataLost);
        }
        let mut report = Report::default();
        for group in batch::groups(plans) {
            self.apply_group(&plans[group.clone()], group.start, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn apply_group(
        &self,
        plans: &[Plan],
        offset: usize,
        report: &mut Report,
    ) -> Result<(), StoreError> {
        let mut stages: Vec<Stage> = plans.iter().map(Stage::first).collect();
        loop {
            let round: Vec<(usize, &Step)> = stages
                .iter()
                .enumerate()
                .flat_map(|(index, stage)| stage.steps().iter().map(move |step| (index, step)))
                .collect();
            if round.is_empty() {
                return Ok(());
            }
            let outputs = self.run_round(&round).await?;
            report.steps += round.len();
            report.round_trips += 1;
            let mut answers: HashMap<usize, Vec<StepOutput>> = HashMap::new();
            for ((index, _), output) in round.iter().zip(outputs) {
                match output {
                    Ok(output) => answers.entry(*index).or_default().push(output),
                    Err(detail) => report.failed.push((offset + index, detail)),
                }
            }
            for (index, stage) in stages.iter_mut().enumerate() {
                let outputs = answers.remove(&index).unwrap_or_default();
                report.tombstones += outputs.iter().filter(|output| output.tombstone).count();
                if outputs.iter().any(|output| output.purged) {
                    report.purged.push(offset + index);
                }
                if let Some(ttl) = outputs.iter().find_map(|output| output.user_ttl) {
                    report.user_ttls.push((offset + index, ttl));
                }
                *stage = stage.advance(&plans[index], outputs, &self.indexer, report);
            }
        }
    }

    async fn run_round(
        &self,
        round: &[(usize, &Step)],
    ) -> Result<Vec<Result<StepOutput, String>>, StoreError> {
        for attempt in 0..2 {
            let pipeline = self.client.pipeline();
            for (_, step) in round {
                let program = serde_json::to_string(&step.program)
                    .expect("programs are plain data with string keys");
                let routing = self.routing_key(&step.slot);
                let _: () = pipeline
                    .fcall(APPLY_FUNCTION, routing, program)
                    .await
                    .map_err(|error| StoreError::from_fred(&error))?;
            }
            let results: Vec<Result<String, fred::error::Error>> = pipeline.try_all().await;
            if attempt == 0 && results.iter().any(is_missing_function) {
                self.load_library().await?;
                continue;
            }
            return results.into_iter().map(parse_output).collect();
        }
        Err(StoreError::Refused(
            "the function library vanished right after loading".to_owned(),
        ))
    }

    /// Loads (or replaces) the function library on every primary.
    pub async fn load_library(&self) -> Result<(), StoreError> {
        let loaded: Result<String, _> = if self.client.is_clustered() {
            self.client
                .function_load_cluster(true, LIBRARY)
                .await
                .map(|()| String::new())
        } else {
            self.client.function_load(true, LIBRARY).await
        };
        loaded
            .map(drop)
            .map_err(|error| StoreError::from_fred(&error))
    }

    fn routing_key(&self, slot: &Slot) -> String {
        let keys = self.indexer.keys();
        match slot {
            Slot::Account(did) => keys.user(did),
            Slot::Global => keys.recent_pushes(),
        }
    }

    /// Reads the stored cursor, if any.
    pub async fn load_cursor(&self) -> Result<Option<StoredCursor>, StoreError> {
        let fields: HashMap<String, String> = self
            .client
            .hgetall(&self.cursor_key)
            .await
            .map_err(|e| StoreError::from_fred(&e))?;
        let time_us = fields.get("time_us").and_then(|value| value.parse().ok());
        Ok(time_us.map(|time_us| StoredCursor {
            time_us,
            host: fields.get("host").cloned().unwrap_or_default(),
        }))
    }

    /// Whether `P:meta` exists.
    pub async fn has_meta(&self) -> Result<bool, StoreError> {
        let exists: i64 = self
            .client
            .exists(&self.meta_key)
            .await
            .map_err(|e| StoreError::from_fred(&e))?;
        Ok(exists == 1)
    }

    /// Creates `P:meta` unless it exists.
    pub async fn ensure_meta(&self, now_us: i64) -> Result<(), StoreError> {
        let pipeline = self.client.pipeline();
        let _: () = pipeline
            .hsetnx(&self.meta_key, "schema", SCHEMA_VERSION)
            .await
            .map_err(|e| StoreError::from_fred(&e))?;
        let _: () = pipeline
            .hsetnx(&self.meta_key, "created_at_us", now_us)
            .await
            .map_err(|e| StoreError::from_fred(&e))?;
        let _: Vec<i64> = pipeline
            .all()
            .await
            .map_err(|e| StoreError::from_fred(&e))?;
        Ok(())
    }

    /// Stores the cursor, unless `P:meta` vanished (then reports the loss and writes nothing).
    pub async fn save_cursor(
        &self,
        cursor: &StoredCursor,
        now_us: i64,
    ) -> Result<SaveOutcome, StoreError> {
        if !self.has_meta().await? {
            return Ok(SaveOutcome::DataLost);
        }
        self.write_cursor(cursor, now_us).await?;
        Ok(SaveOutcome::Saved)
    }

    /// Stores the cursor without checking `P:meta`.
    pub async fn write_cursor(&self, cursor: &StoredCursor, now_us: i64) -> Result<(), StoreError> {
        let fields: Vec<(&str, String)> = vec![
            ("time_us", cursor.time_us.to_string()),
            ("host", cursor.host.clone()),
            ("protocol", "v1".to_owned()),
            ("updated_at_us", now_us.to_string()),
        ];
        let _: i64 = self
            .client
            .hset(&self.cursor_key, fields)
            .await
            .map_err(|e| StoreError::from_fred(&e))?;
        Ok(())
    }

    /// Deletes every key under the prefix. Called only when Valkey has lost its data: what is
    /// there then was written after the loss (a batch in flight that reached the emptied server)
    /// and would make the replay that refills the cache differ from an uninterrupted run, because
    /// newest-rev-wins would keep those later writes and skip the creates before them.
    pub async fn purge(&self) -> Result<usize, StoreError> {
        let pattern = format!("{}:*", self.indexer.keys().prefix());
        let keys: Vec<Result<Key, fred::error::Error>> = if self.client.is_clustered() {
            self.client
                .scan_cluster_buffered(pattern, Some(PURGE_CHUNK), None)
                .collect()
                .await
        } else {
            self.client
                .scan_buffered(pattern, Some(PURGE_CHUNK), None)
                .collect()
                .await
        };
        let keys: Vec<Key> = keys
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|error| StoreError::from_fred(&error))?;
        for chunk in keys.chunks(PURGE_CHUNK as usize) {
            let pipeline = self.client.pipeline();
            for key in chunk {
                let _: () = pipeline
                    .unlink(key.clone())
                    .await
                    .map_err(|e| StoreError::from_fred(&e))?;
            }
            let _: Vec<i64> = pipeline
                .all()
                .await
                .map_err(|e| StoreError::from_fred(&e))?;
        }
        Ok(keys.len())
    }

    /// Writes `P:{D}:user` with its TTL class.
    pub async fn set_user(
        &self,
        did: &str,
        value: String,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.indexer.keys().user(did);
        let expiry = Some(Expiration::EX(ttl.as_secs().max(1) as i64));
        let _: () = self
            .client
            .set(key, value, expiry, None, false)
            .await
            .map_err(|error| StoreError::from_fred(&error))?;
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.client.quit().await;
    }
}

fn is_missing_function(result: &Result<String, fred::error::Error>) -> bool {
    matches!(result, Err(error) if error.details().contains("Function not found"))
}

/// A script error fails only its plan; anything else fails the batch.
fn parse_output(
    result: Result<String, fred::error::Error>,
) -> Result<Result<StepOutput, String>, StoreError> {
    match result {
        Ok(text) => Ok(serde_json::from_str(&text).map_err(|error| error.to_string())),
        Err(error) => match StoreError::from_fred(&error) {
            StoreError::Script(detail) => Ok(Err(detail)),
            other => Err(other),
        },
    }
}

/// Where one plan stands within a group.
enum Stage {
    Steps(Vec<Step>, Next),
    Done,
}

/// What the current steps' output leads to.
enum Next {
    Main,
    FollowUps,
    Done,
}

impl Stage {
    fn first(plan: &Plan) -> Stage {
        match (&plan.resolve, &plan.main) {
            (_, Main::Nothing) => Stage::Done,
            (Some(resolve), _) => Stage::Steps(vec![resolve.clone()], Next::Main),
            (None, Main::Ready(step)) => Stage::Steps(vec![step.clone()], Next::FollowUps),
            (None, Main::Star(_) | Main::Scan(_)) => Stage::Done,
        }
    }

    fn steps(&self) -> &[Step] {
        match self {
            Stage::Steps(steps, _) => steps,
            Stage::Done => &[],
        }
    }

    fn advance(
        &self,
        plan: &Plan,
        outputs: Vec<StepOutput>,
        indexer: &Indexer,
        report: &mut Report,
    ) -> Stage {
        let Stage::Steps(steps, next) = self else {
            return Stage::Done;
        };
        if outputs.len() != steps.len() {
            return Stage::Done;
        }
        for output in &outputs {
            report.notes.extend(output.notes.iter().cloned());
        }
        match next {
            Next::Main => match main_step(plan, &outputs[0], indexer) {
                Some(step) => Stage::Steps(vec![step], Next::FollowUps),
                None => Stage::Done,
            },
            Next::FollowUps => follow_ups(&outputs[0], indexer, report),
            Next::Done => Stage::Done,
        }
    }
}

/// The main step once the resolve step answered (a plan with nothing to write has none).
fn main_step(plan: &Plan, resolved: &StepOutput, indexer: &Indexer) -> Option<Step> {
    let answer = resolved.answer.as_deref();
    match &plan.main {
        Main::Star(pending) => Some(indexer.complete_star(pending, answer)),
        Main::Scan(pending) => Some(indexer.complete_scan(pending, answer)),
        Main::Ready(step) => Some(step.clone()),
        Main::Nothing => None,
    }
}

fn follow_ups(output: &StepOutput, indexer: &Indexer, report: &mut Report) -> Stage {
    if output.status == "stale" {
        report.stale += 1;
        return Stage::Done;
    }
    let steps: Vec<Step> = output
        .follow
        .iter()
        .map(|follow| indexer.follow_up(follow))
        .collect();
    if steps.is_empty() {
        Stage::Done
    } else {
        Stage::Steps(steps, Next::Done)
    }
}
