//! Every metric this daemon records: names, units, descriptions, and the calls that record them.
//!
//! Label values are bounded: hosts come from the configuration, reasons and collections from
//! fixed lists. Dashboards and alert rules use only the names defined here.

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

use crate::event::{Body, Event, Operation};
use crate::index::{Outcome, Plan};
use crate::records::Note;

/// Frames received, by kind of payload.
pub const FRAMES: &str = "atcr_indexer_frames_received_total";
/// Bytes received before decompression (binary frames).
pub const BYTES_COMPRESSED: &str = "atcr_indexer_received_compressed_bytes_total";
/// Bytes of event JSON after decompression.
pub const BYTES_JSON: &str = "atcr_indexer_received_json_bytes_total";
/// Frames that did not yield JSON, by reason.
pub const FRAMES_REJECTED: &str = "atcr_indexer_frames_rejected_total";
/// Events decoded, by kind, collection and operation.
pub const EVENTS: &str = "atcr_indexer_events_total";
/// Events skipped before indexing, by reason.
pub const EVENTS_SKIPPED: &str = "atcr_indexer_events_skipped_total";
/// Records rejected by validation, by collection and reason.
pub const RECORDS_REJECTED: &str = "atcr_indexer_records_rejected_total";
/// Anomalies counted but not rejected, by collection and note.
pub const RECORD_NOTES: &str = "atcr_indexer_record_notes_total";
/// Steps (script calls) written to Valkey.
pub const VALKEY_STEPS: &str = "atcr_indexer_valkey_steps_total";
/// Batches written to Valkey.
pub const VALKEY_BATCHES: &str = "atcr_indexer_valkey_batches_total";
/// Round trips (pipelines) sent to Valkey.
pub const VALKEY_ROUND_TRIPS: &str = "atcr_indexer_valkey_round_trips_total";
/// Time to write one batch, seconds.
pub const VALKEY_BATCH_SECONDS: &str = "atcr_indexer_valkey_batch_duration_seconds";
/// Events per batch.
pub const VALKEY_BATCH_EVENTS: &str = "atcr_indexer_valkey_batch_events";
/// Valkey errors, by reason.
pub const VALKEY_ERRORS: &str = "atcr_indexer_valkey_errors_total";
/// Writes dropped because a newer rev was stored.
pub const VALKEY_STALE: &str = "atcr_indexer_valkey_stale_writes_total";
/// `time_us` of the newest event read.
pub const STREAM_POSITION: &str = "atcr_indexer_stream_position_time_us";
/// `time_us` of the persisted cursor.
pub const CURSOR_POSITION: &str = "atcr_indexer_cursor_time_us";
/// Reconnects, by host and reason.
pub const RECONNECTS: &str = "atcr_indexer_jetstream_reconnects_total";
/// 1 while connected to a host.
pub const CONNECTED: &str = "atcr_indexer_jetstream_connected";
/// Replays from the oldest event started because Valkey lost its data.
pub const DATA_LOSS_REPLAYS: &str = "atcr_indexer_data_loss_replays_total";
/// Identity resolutions started by a worker.
pub const IDENTITY_STARTED: &str = "atcr_indexer_identity_resolutions_started_total";
/// Identity resolutions that wrote the user key.
pub const IDENTITY_SUCCEEDED: &str = "atcr_indexer_identity_resolutions_succeeded_total";
/// Identity resolutions that failed, by reason.
pub const IDENTITY_FAILED: &str = "atcr_indexer_identity_resolutions_failed_total";
/// Time of one identity resolution, seconds, by outcome.
pub const IDENTITY_SECONDS: &str = "atcr_indexer_identity_resolution_duration_seconds";
/// Identity requests dropped because the queue was full.
pub const IDENTITY_DROPPED: &str = "atcr_indexer_identity_requests_dropped_total";
/// Identity requests not queued, by reason.
pub const IDENTITY_SKIPPED: &str = "atcr_indexer_identity_requests_skipped_total";

/// Registers units and descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(
        FRAMES,
        Unit::Count,
        "WebSocket frames received from Jetstream."
    );
    describe_counter!(
        BYTES_COMPRESSED,
        Unit::Bytes,
        "Bytes of zstd frames received."
    );
    describe_counter!(
        BYTES_JSON,
        Unit::Bytes,
        "Bytes of event JSON after decompression."
    );
    describe_counter!(
        FRAMES_REJECTED,
        Unit::Count,
        "Frames that did not yield JSON."
    );
    describe_counter!(
        EVENTS,
        Unit::Count,
        "Events decoded, by kind, collection, operation."
    );
    describe_counter!(
        EVENTS_SKIPPED,
        Unit::Count,
        "Events skipped before indexing, by reason."
    );
    describe_counter!(
        RECORDS_REJECTED,
        Unit::Count,
        "Records that failed validation."
    );
    describe_counter!(
        RECORD_NOTES,
        Unit::Count,
        "Record anomalies counted, not rejected."
    );
    describe_counter!(
        VALKEY_STEPS,
        Unit::Count,
        "Atomic steps (script calls) written."
    );
    describe_counter!(VALKEY_BATCHES, Unit::Count, "Batches written to Valkey.");
    describe_counter!(VALKEY_ROUND_TRIPS, Unit::Count, "Pipelines sent to Valkey.");
    describe_histogram!(
        VALKEY_BATCH_SECONDS,
        Unit::Seconds,
        "Time to write one batch."
    );
    describe_histogram!(VALKEY_BATCH_EVENTS, Unit::Count, "Events in one batch.");
    describe_counter!(VALKEY_ERRORS, Unit::Count, "Valkey errors, by reason.");
    describe_counter!(
        VALKEY_STALE,
        Unit::Count,
        "Writes dropped by newest-rev-wins."
    );
    describe_gauge!(
        STREAM_POSITION,
        Unit::Microseconds,
        "time_us of the newest event read."
    );
    describe_gauge!(
        CURSOR_POSITION,
        Unit::Microseconds,
        "time_us of the persisted cursor."
    );
    describe_counter!(
        RECONNECTS,
        Unit::Count,
        "Jetstream reconnects, by host and reason."
    );
    describe_gauge!(
        CONNECTED,
        Unit::Count,
        "1 while connected to the Jetstream host."
    );
    describe_counter!(
        DATA_LOSS_REPLAYS,
        Unit::Count,
        "Replays started after Valkey lost data."
    );
    describe_identity();
}

fn describe_identity() {
    describe_counter!(
        IDENTITY_STARTED,
        Unit::Count,
        "Identity resolutions started."
    );
    describe_counter!(
        IDENTITY_SUCCEEDED,
        Unit::Count,
        "Identity resolutions that wrote the user key."
    );
    describe_counter!(
        IDENTITY_FAILED,
        Unit::Count,
        "Identity resolutions that failed, by reason."
    );
    describe_histogram!(
        IDENTITY_SECONDS,
        Unit::Seconds,
        "Time of one identity resolution, by outcome."
    );
    describe_counter!(
        IDENTITY_DROPPED,
        Unit::Count,
        "Identity requests dropped: queue full."
    );
    describe_counter!(
        IDENTITY_SKIPPED,
        Unit::Count,
        "Identity requests not queued, by reason."
    );
}

/// A connection opened or closed.
pub fn connected(host: &str, up: bool) {
    gauge!(CONNECTED, "host" => host.to_owned()).set(if up { 1.0 } else { 0.0 });
}

/// A connection ended or failed.
pub fn reconnect(host: &str, reason: &'static str) {
    counter!(RECONNECTS, "host" => host.to_owned(), "reason" => reason).increment(1);
}

/// A binary frame arrived.
pub fn compressed_bytes(bytes: usize) {
    counter!(FRAMES, "payload" => "binary").increment(1);
    counter!(BYTES_COMPRESSED).increment(bytes as u64);
}

/// A frame yielded JSON.
pub fn frame(json_bytes: usize) {
    counter!(BYTES_JSON).increment(json_bytes as u64);
}

/// A frame yielded no JSON.
pub fn frame_rejected(reason: &'static str) {
    counter!(FRAMES_REJECTED, "reason" => reason).increment(1);
}

/// An event was skipped before indexing.
pub fn event_skipped(reason: &'static str) {
    counter!(EVENTS_SKIPPED, "reason" => reason).increment(1);
}

/// An event was decoded and planned.
pub fn event_planned(event: &Event, plan: &Plan) {
    gauge!(STREAM_POSITION).set(event.time_us as f64);
    let (kind, operation) = match &event.body {
        Body::Commit(commit) => ("commit", operation_label(commit.operation)),
        Body::Identity { .. } => ("identity", ""),
        Body::Account { .. } => ("account", ""),
    };
    counter!(EVENTS, "kind" => kind, "collection" => plan.collection, "operation" => operation)
        .increment(1);
    if let Outcome::Rejected(rejection) = &plan.outcome {
        counter!(RECORDS_REJECTED, "collection" => plan.collection,
            "reason" => rejection.reason.as_str())
        .increment(1);
    }
    for note in &plan.notes {
        counter!(RECORD_NOTES, "collection" => plan.collection, "note" => note_label(note))
            .increment(1);
    }
}

fn operation_label(operation: Operation) -> &'static str {
    match operation {
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Delete => "delete",
    }
}

fn note_label(note: &Note) -> &'static str {
    match note {
        Note::FieldDropped { .. } => "field_dropped",
        Note::ManifestRkeyMismatch => "manifest_rkey_mismatch",
        Note::TagManifestForeign => "tag_manifest_foreign",
        Note::TagPointersDisagree => "tag_pointers_disagree",
        Note::TagWithoutPointer => "tag_without_pointer",
        Note::PageRkeyMismatch => "page_rkey_mismatch",
        Note::LayerUserMismatch => "layer_user_mismatch",
        Note::ScanUserMismatch => "scan_user_mismatch",
    }
}

/// A batch was written.
pub fn batch_written(events: usize, steps: usize, round_trips: usize, stale: usize, seconds: f64) {
    counter!(VALKEY_BATCHES).increment(1);
    counter!(VALKEY_STEPS).increment(steps as u64);
    counter!(VALKEY_ROUND_TRIPS).increment(round_trips as u64);
    counter!(VALKEY_STALE).increment(stale as u64);
    histogram!(VALKEY_BATCH_SECONDS).record(seconds);
    histogram!(VALKEY_BATCH_EVENTS).record(events as f64);
}

/// A Valkey error, by bounded reason.
pub fn valkey_error(reason: &'static str) {
    counter!(VALKEY_ERRORS, "reason" => reason).increment(1);
}

/// A note the script reported (for example tag pointers that disagree).
pub fn script_note(note: &str) {
    let label = match note {
        "tag_pointers_disagree" => "tag_pointers_disagree",
        _ => "other",
    };
    counter!(RECORD_NOTES, "collection" => "io.atcr.tag", "note" => label).increment(1);
}

/// The cursor was persisted.
pub fn cursor_saved(time_us: i64) {
    gauge!(CURSOR_POSITION).set(time_us as f64);
}

/// A replay from the oldest event started because Valkey lost its data.
pub fn data_loss_replay() {
    counter!(DATA_LOSS_REPLAYS).increment(1);
}

/// A worker began resolving an identity.
pub fn identity_started() {
    counter!(IDENTITY_STARTED).increment(1);
}

/// An identity resolution ended: `Ok` when the user key was written, else the failure reason.
pub fn identity_finished(result: Result<(), &'static str>, seconds: f64) {
    let outcome = match result {
        Ok(()) => {
            counter!(IDENTITY_SUCCEEDED).increment(1);
            "succeeded"
        }
        Err(reason) => {
            counter!(IDENTITY_FAILED, "reason" => reason).increment(1);
            "failed"
        }
    };
    histogram!(IDENTITY_SECONDS, "outcome" => outcome).record(seconds);
}

/// An identity request found the queue full.
pub fn identity_dropped() {
    counter!(IDENTITY_DROPPED).increment(1);
}

/// An identity request was not queued (`in_flight`, `negative_cache`, `not_forgotten`), or a
/// result was not written because the account was forgotten meanwhile (`forgotten`).
pub fn identity_skipped(reason: &'static str) {
    counter!(IDENTITY_SKIPPED, "reason" => reason).increment(1);
}
