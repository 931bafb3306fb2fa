//! The calls that record metrics, one per thing that happens; names come from the catalogue.

use metrics::{counter, gauge, histogram};

use super::*;
use crate::event::{Body, Event, Operation};
use crate::index::{Outcome, Plan};
use crate::records::Note;

/// A connection opened or closed.
pub fn connected(host: &str, up: bool) {
    gauge!(CONNECTED, "host" => host.to_owned()).set(if up { 1.0 } else { 0.0 });
    crate::health::jetstream_connected(up);
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

/// A text frame arrived.
pub fn text_frame() {
    counter!(FRAMES, "payload" => "text").increment(1);
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
    gauge!(STREAM_POSITION).set(event.time_us as f64 / 1e6);
    crate::health::stream_position(event.time_us);
    if matches!(event.body, Body::Commit(_)) {
        gauge!(LAST_COMMIT).set(event.time_us as f64 / 1e6);
    }
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
    crate::health::valkey_answered();
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
    gauge!(CURSOR_POSITION).set(time_us as f64 / 1e6);
    crate::health::cursor_saved(time_us);
}

/// Tombstones written by a batch.
pub fn tombstones(count: usize) {
    counter!(VALKEY_TOMBSTONES).increment(count as u64);
}

/// Events waiting between the socket and the writer.
pub fn queue_depth(depth: usize) {
    gauge!(QUEUE_DEPTH).set(depth as f64);
}

/// A replay (reading far behind the live tip) began or ended.
pub fn replaying(active: bool) {
    gauge!(REPLAYING).set(if active { 1.0 } else { 0.0 });
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
