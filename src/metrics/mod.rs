//! Every metric this daemon exposes: the catalogue of names, kinds, units and descriptions, the
//! Prometheus exporter, and (in `record.rs`) the calls that record them.
//!
//! Label values are bounded: hosts come from the configuration, reasons and collections from
//! fixed lists. Dashboards and alert rules use only names from [`CATALOGUE`]; a test checks it.
//! Histograms have explicit buckets; no summaries.

mod record;

use metrics::{describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

pub use record::*;

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution over explicit buckets.
    Histogram,
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The exposed name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its unit.
    pub unit: Unit,
    /// What it counts or shows, and its labels.
    pub help: &'static str,
}

macro_rules! catalogue {
    ($($(#[$doc:meta])* $constant:ident = $name:literal, $kind:ident, $unit:ident, $help:literal;)*) => {
        $($(#[$doc])* pub const $constant: &str = $name;)*
        /// Every metric, in the order of the `/metrics` documentation.
        pub const CATALOGUE: &[Metric] = &[
            $(Metric { name: $name, kind: Kind::$kind, unit: Unit::$unit, help: $help },)*
        ];
    };
}

catalogue! {
    /// Frames received, by `payload` (`text`, `binary`).
    FRAMES = "atcr_indexer_frames_received_total", Counter, Count,
        "WebSocket frames received from Jetstream, by payload.";
    /// Bytes of zstd frames received.
    BYTES_COMPRESSED = "atcr_indexer_received_compressed_bytes_total", Counter, Bytes,
        "Bytes of zstd frames received.";
    /// Bytes of event JSON after decompression.
    BYTES_JSON = "atcr_indexer_received_json_bytes_total", Counter, Bytes,
        "Bytes of event JSON after decompression.";
    /// Frames that yielded no JSON, by `reason`.
    FRAMES_REJECTED = "atcr_indexer_frames_rejected_total", Counter, Count,
        "Frames that did not yield JSON, by reason.";
    /// Events decoded, by `kind`, `collection` and `operation`.
    EVENTS = "atcr_indexer_events_total", Counter, Count,
        "Events decoded, by kind, collection and operation.";
    /// Events skipped before indexing, by `reason`.
    EVENTS_SKIPPED = "atcr_indexer_events_skipped_total", Counter, Count,
        "Events skipped before indexing, by reason.";
    /// Records that failed validation, by `collection` and `reason`.
    RECORDS_REJECTED = "atcr_indexer_records_rejected_total", Counter, Count,
        "Records that failed validation, by collection and reason.";
    /// Anomalies counted but not rejected, by `collection` and `note`.
    RECORD_NOTES = "atcr_indexer_record_notes_total", Counter, Count,
        "Record anomalies counted, not rejected, by collection and note.";
    /// Atomic steps (function calls) written to Valkey.
    VALKEY_STEPS = "atcr_indexer_valkey_steps_total", Counter, Count,
        "Atomic steps (function calls) written to Valkey.";
    /// Batches written to Valkey.
    VALKEY_BATCHES = "atcr_indexer_valkey_batches_total", Counter, Count,
        "Batches written to Valkey.";
    /// Pipelines sent to Valkey.
    VALKEY_ROUND_TRIPS = "atcr_indexer_valkey_round_trips_total", Counter, Count,
        "Pipelines (round trips) sent to Valkey.";
    /// Time to write one batch.
    VALKEY_BATCH_SECONDS = "atcr_indexer_valkey_batch_duration_seconds", Histogram, Seconds,
        "Time to write one batch to Valkey.";
    /// Events in one batch.
    VALKEY_BATCH_EVENTS = "atcr_indexer_valkey_batch_events", Histogram, Count,
        "Events in one batch.";
    /// Valkey errors, by `reason`.
    VALKEY_ERRORS = "atcr_indexer_valkey_errors_total", Counter, Count,
        "Valkey errors, by reason.";
    /// Writes dropped because a newer rev was stored.
    VALKEY_STALE = "atcr_indexer_valkey_stale_writes_total", Counter, Count,
        "Writes dropped by newest-rev-wins.";
    /// Tombstones written.
    VALKEY_TOMBSTONES = "atcr_indexer_valkey_tombstones_total", Counter, Count,
        "Tombstones written for deletes and rejected records.";
    /// `time_us` of the newest event read, in seconds.
    STREAM_POSITION = "atcr_indexer_stream_position_timestamp_seconds", Gauge, Seconds,
        "Jetstream time (time_us / 1e6) of the newest event read.";
    /// `time_us` of the persisted cursor, in seconds.
    CURSOR_POSITION = "atcr_indexer_cursor_timestamp_seconds", Gauge, Seconds,
        "Jetstream time (time_us / 1e6) of the persisted cursor.";
    /// How far the newest event read is behind the wall clock.
    STREAM_LAG = "atcr_indexer_stream_lag_seconds", Gauge, Seconds,
        "Wall clock minus the time_us of the newest event read.";
    /// How far the persisted cursor is behind the wall clock.
    CURSOR_LAG = "atcr_indexer_cursor_lag_seconds", Gauge, Seconds,
        "Wall clock minus the time_us of the persisted cursor.";
    /// Unix time of the newest `io.atcr.*` commit read.
    LAST_COMMIT = "atcr_indexer_last_commit_timestamp_seconds", Gauge, Seconds,
        "Unix time (Jetstream's time_us) of the newest io.atcr commit read.";
    /// Reconnects, by `host` and `reason`.
    RECONNECTS = "atcr_indexer_jetstream_reconnects_total", Counter, Count,
        "Jetstream connections ended or failed, by host and reason.";
    /// 1 while connected to `host`.
    CONNECTED = "atcr_indexer_jetstream_connected", Gauge, Count,
        "1 while connected to the Jetstream host (the current host).";
    /// Events waiting between the socket and the writer.
    QUEUE_DEPTH = "atcr_indexer_queue_depth", Gauge, Count,
        "Events waiting between the socket and the Valkey writer.";
    /// 1 while reading far behind the live tip.
    REPLAYING = "atcr_indexer_replaying", Gauge, Count,
        "1 while a replay (reading more than a minute behind the wall clock) is in progress.";
    /// Replays from the oldest event started because Valkey lost its data.
    DATA_LOSS_REPLAYS = "atcr_indexer_data_loss_replays_total", Counter, Count,
        "Replays from the oldest event started because Valkey lost its data.";
    /// 1 when `/readyz` answers 200.
    READY = "atcr_indexer_ready", Gauge, Count,
        "1 when Jetstream is connected, Valkey answers and the cursor is being saved.";
    /// Build information: `version` and `git_sha` labels, value 1.
    BUILD_INFO = "atcr_indexer_build_info", Gauge, Count,
        "Build information (version, git_sha); always 1.";
    /// Identity resolutions started.
    IDENTITY_STARTED = "atcr_indexer_identity_resolutions_started_total", Counter, Count,
        "Identity resolutions started.";
    /// Identity resolutions that wrote the user key.
    IDENTITY_SUCCEEDED = "atcr_indexer_identity_resolutions_succeeded_total", Counter, Count,
        "Identity resolutions that wrote the user key.";
    /// Identity resolutions that failed, by `reason`.
    IDENTITY_FAILED = "atcr_indexer_identity_resolutions_failed_total", Counter, Count,
        "Identity resolutions that failed, by reason.";
    /// Time of one identity resolution, by `outcome`.
    IDENTITY_SECONDS = "atcr_indexer_identity_resolution_duration_seconds", Histogram, Seconds,
        "Time of one identity resolution, by outcome.";
    /// Identity requests dropped because the queue was full.
    IDENTITY_DROPPED = "atcr_indexer_identity_requests_dropped_total", Counter, Count,
        "Identity requests dropped: queue full.";
    /// Identity requests not queued, by `reason`.
    IDENTITY_SKIPPED = "atcr_indexer_identity_requests_skipped_total", Counter, Count,
        "Identity requests not queued, by reason.";
}

/// Buckets of the Valkey batch time: a loopback write takes under a millisecond, a stalled one
/// up to the command timeout.
const BATCH_SECONDS_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// Buckets of the batch size, up to the largest configurable batches.
const BATCH_EVENTS_BUCKETS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 512.0, 1024.0, 4096.0,
];

/// Buckets of one identity resolution: a cached PLC answer to a retried, rate-limited one.
const IDENTITY_SECONDS_BUCKETS: [f64; 10] =
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];

/// Installs the Prometheus recorder and registers every description; call once at start.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(VALKEY_BATCH_SECONDS.into()),
            &BATCH_SECONDS_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(VALKEY_BATCH_EVENTS.into()),
            &BATCH_EVENTS_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(IDENTITY_SECONDS.into()),
            &IDENTITY_SECONDS_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    gauge!(REPLAYING).set(0.0);
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "git_sha" => GIT_SHA).set(1.0);
    Ok(handle)
}

/// The commit the binary was built from (`unknown` outside a git checkout).
pub const GIT_SHA: &str = env!("ATCR_INDEXER_GIT_SHA");

/// Registers units and descriptions with the installed recorder.
pub fn describe() {
    for metric in CATALOGUE {
        match metric.kind {
            Kind::Counter => describe_counter!(metric.name, metric.unit, metric.help),
            Kind::Gauge => describe_gauge!(metric.name, metric.unit, metric.help),
            Kind::Histogram => describe_histogram!(metric.name, metric.unit, metric.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prefixed_and_suffixed_by_kind() {
        let mut seen = std::collections::HashSet::new();
        for metric in CATALOGUE {
            assert!(seen.insert(metric.name), "{} twice", metric.name);
            assert!(metric.name.starts_with("atcr_indexer_"), "{}", metric.name);
            let counter = metric.name.ends_with("_total");
            assert_eq!(counter, metric.kind == Kind::Counter, "{}", metric.name);
        }
    }
}
