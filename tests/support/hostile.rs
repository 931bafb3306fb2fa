//! The hostile-input corpus: bad frames, envelopes and records, each named and each with what
//! the daemon must do with it, and the checks that no hostile name reached a Valkey key.
//!
//! A [`Case`] is one WebSocket message, placed between two valid events by [`Corpus::schedule`].
//! Its [`Expected`] outcome is a label of the daemon's `bad input skipped` summary (`frame.*`,
//! `event.*`, `record.*`), a write dropped by newest-rev-wins, an event delivered again that
//! changes nothing, or a control frame that is ignored. Every hostile identifier contains `evil`,
//! so a leak into Valkey is easy to find; [`grammar`] checks key names against `docs/keys.md`
//! with its own small parsers, not the daemon's validators.
//!
//! The cases live by class: [`envelopes`] (`event.*`), [`records`] (`record.*`), [`frames`]
//! (`frame.*`, control frames, and the ordering cases made from the valid stream); [`names`]
//! holds the hostile identifiers they share.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use super::events::*;
use super::scenario::delivered;

mod envelopes;
mod frames;
pub mod grammar;
mod names;
mod records;

/// The account every rejected record and every bad envelope claims to come from; nothing else
/// in the fixtures uses it, so its keys are exactly the tombstones of the rejected records.
pub const HOSTILE_DID: &str = "did:plc:hhhhhhhhhhhhhhhhhhhhhhhh";

/// `--jetstream-max-event-bytes` of the hostile runs: every valid event and every record case
/// fits, the decompression bombs do not.
pub const CAP_BYTES: usize = 1 << 20;

/// `time_us` of the hostile events: before the valid stream, so they are also out of order.
const HOSTILE_TIME_US: i64 = EPOCH_US - 60_000_000;

/// Elements of the wide arrays.
const WIDE: usize = 100_000;

/// Levels of the deeply nested values.
const DEEP: usize = 10_000;

/// The zstd level of the corpus's compressed frames (the fake's own level).
const LEVEL: i32 = 3;

/// What the daemon must do with a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Counted under this summary label and skipped; a `record.*` case is applied as a delete
    /// and leaves a tombstone.
    Counted(&'static str),
    /// A write older than the stored rev: dropped by newest-rev-wins.
    Stale,
    /// An event delivered again: applied, and it changes nothing.
    Replayed,
    /// A control frame: ignored, not even counted as a frame.
    Ignored,
}

/// One hostile message.
#[derive(Clone, Debug)]
pub struct Case {
    /// `class/what`, for failure messages and the report.
    pub name: String,
    /// The message the fake Jetstream sends as is.
    pub message: Message,
    /// What the daemon must do with it.
    pub expected: Expected,
    /// Index of the valid line this case must follow (it repeats or contradicts it).
    pub after_line: usize,
    /// The tombstone key a rejected record leaves.
    pub tombstone: Option<String>,
}

/// One position of a scheduled run.
pub enum Scheduled<'a> {
    /// A valid event line, pushed to the fake's log.
    Valid(&'a String),
    /// A hostile message, injected raw.
    Hostile(&'a Case),
}

/// How the event and record cases travel: as text, or zstd-compressed with the dictionary.
enum Wire {
    Text,
    Compressed(Vec<u8>),
}

/// The cases of one run.
pub struct Corpus {
    /// Every case, in the order it is sent.
    pub cases: Vec<Case>,
}

impl Corpus {
    /// The corpus for an uncompressed connection: envelope, record and ordering cases as text,
    /// and binary frames, which such a connection never expects.
    pub fn text(valid: &[String]) -> Corpus {
        let mut builder = Builder::new(Wire::Text);
        builder.binary_on_text(valid);
        builder.common(valid);
        Corpus {
            cases: builder.cases,
        }
    }

    /// The corpus for a connection compressed with `dictionary`: bad zstd frames, then the
    /// envelope, record and ordering cases compressed as the server would send them.
    pub fn compressed(valid: &[String], dictionary: &[u8]) -> Corpus {
        let mut builder = Builder::new(Wire::Compressed(dictionary.to_vec()));
        builder.bad_zstd(valid, dictionary);
        builder.common(valid);
        Corpus {
            cases: builder.cases,
        }
    }

    /// Valid lines with one case after each delivered line, in order, each case only after the
    /// line it depends on. Panics when `valid` is too short to hold every case.
    pub fn schedule<'a>(&'a self, valid: &'a [String]) -> Vec<Scheduled<'a>> {
        let mut pending: Vec<&Case> = self.cases.iter().collect();
        pending.sort_by_key(|case| case.after_line);
        let mut pending = pending.into_iter().peekable();
        let mut scheduled = Vec::new();
        for (index, line) in valid.iter().enumerate() {
            scheduled.push(Scheduled::Valid(line));
            let last = index + 1 == valid.len();
            let ready = pending.peek().is_some_and(|case| case.after_line <= index);
            if ready && !last && delivered(line) {
                scheduled.push(Scheduled::Hostile(pending.next().expect("peeked")));
            }
        }
        assert!(
            pending.next().is_none(),
            "{} valid lines cannot hold {} cases",
            valid.len(),
            self.cases.len()
        );
        scheduled
    }

    /// How many cases each summary label must count.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for case in &self.cases {
            if let Expected::Counted(label) = case.expected {
                *counts.entry(label.to_owned()).or_default() += 1;
            }
        }
        counts
    }

    /// How many cases have each outcome other than a count.
    pub fn outcomes(&self, expected: Expected) -> usize {
        self.cases.iter().filter(|c| c.expected == expected).count()
    }

    /// The tombstone keys the rejected records leave.
    pub fn tombstones(&self) -> BTreeSet<String> {
        let keys = self.cases.iter().filter_map(|case| case.tombstone.clone());
        keys.collect()
    }
}

/// Collects the cases of one corpus.
struct Builder {
    wire: Wire,
    cases: Vec<Case>,
    records: usize,
}

impl Builder {
    fn new(wire: Wire) -> Builder {
        Builder {
            wire,
            cases: Vec::new(),
            records: 0,
        }
    }

    /// The cases both runs send.
    fn common(&mut self, valid: &[String]) {
        self.json_cases();
        self.type_cases();
        self.missing_cases();
        self.kind_and_operation_cases();
        self.time_us_cases();
        self.did_cases();
        self.collection_cases();
        self.rkey_cases();
        self.rev_cases();
        self.record_shape_cases();
        self.record_key_name_cases();
        self.record_limit_cases();
        self.ordering_cases(valid);
    }

    fn push(&mut self, name: String, message: Message, expected: Expected) {
        self.cases.push(Case {
            name,
            message,
            expected,
            after_line: 0,
            tombstone: None,
        });
    }

    /// A case carrying `bytes` of event JSON (possibly invalid) the way this wire sends events.
    fn event_bytes(&mut self, name: &str, bytes: Vec<u8>, expected: Expected) {
        let message = match &self.wire {
            Wire::Text => Message::text(String::from_utf8(bytes).expect("text cases are UTF-8")),
            Wire::Compressed(dictionary) => Message::binary(compress(dictionary, &bytes)),
        };
        self.push(name.to_owned(), message, expected);
    }

    fn event(&mut self, name: &str, json: impl Into<String>, label: &'static str) {
        let json: String = json.into();
        self.event_bytes(name, json.into_bytes(), Expected::Counted(label));
    }

    /// The base event with one edit.
    fn edited(&mut self, name: &str, label: &'static str, edit: impl FnOnce(&mut Value)) {
        let mut event = base_event();
        edit(&mut event);
        self.event(name, event.to_string(), label);
    }

    /// A record by [`HOSTILE_DID`] in a valid envelope; it must be rejected for `reason`.
    fn record(&mut self, name: &str, collection: &str, record: Value, reason: &'static str) {
        self.record_text(name, collection, record.to_string(), reason);
    }

    /// Like [`Builder::record`] with the record key and the record text given.
    fn record_at(&mut self, name: &str, collection: &str, rkey: &str, text: String, reason: &str) {
        let label = record_label(reason);
        let line = format!(
            r#"{{"did":"{HOSTILE_DID}","time_us":{HOSTILE_TIME_US},"kind":"commit","commit":{{"rev":"{}","operation":"create","collection":"{collection}","rkey":"{rkey}","record":{text},"cid":"{}"}}}}"#,
            hostile_rev(),
            blob_cid(name)
        );
        self.event(&format!("record.{reason}/{name}"), line, label);
        let case = self.cases.last_mut().expect("just pushed");
        case.tombstone = Some(format!("atcr:{{{HOSTILE_DID}}}:rec:{collection}:{rkey}"));
    }

    fn record_text(&mut self, name: &str, collection: &str, text: String, reason: &'static str) {
        self.records += 1;
        let rkey = format!("rejected-{}", self.records);
        self.record_at(name, collection, &rkey, text, reason);
    }
}

/// A collection this daemon does not know.
const BADGE: &str = "io.atcr.sailor.badge";

/// The webhook collection, cached raw.
const WEBHOOK: &str = "io.atcr.sailor.webhook";

/// A valid tag create by [`HOSTILE_DID`]; every envelope case edits one part of it.
fn base_event() -> Value {
    json!({
        "did": HOSTILE_DID, "time_us": HOSTILE_TIME_US, "kind": "commit",
        "commit": {"rev": hostile_rev(), "operation": "create", "collection": TAG,
            "rkey": "evil-base", "record": valid_tag(), "cid": blob_cid("evil-base")}
    })
}

/// The base event as text with another DID.
fn with_did(did: &str) -> String {
    let mut event = base_event();
    event["did"] = json!(did);
    event.to_string()
}

/// An event of `kind` by [`HOSTILE_DID`] whose `kind` member is `body`.
fn base_event_of_kind(kind: &str, body: Value) -> String {
    let mut event = json!({"did": HOSTILE_DID, "time_us": HOSTILE_TIME_US, "kind": kind});
    event[kind] = body;
    event.to_string()
}

fn account_event(account: Value) -> String {
    base_event_of_kind("account", account)
}

/// A rev older than every rev of the fixture streams.
fn hostile_rev() -> String {
    tid(EPOCH_US - 86_400_000_000, 0)
}

fn remove(event: &mut Value, parent: &str, member: &str) {
    let object = if parent.is_empty() {
        event.as_object_mut()
    } else {
        event[parent].as_object_mut()
    };
    object.expect("an object").remove(member);
}

fn with(value: &Value, field: &str, member: Value) -> Value {
    let mut changed = value.clone();
    changed[field] = member;
    changed
}

fn without(value: &Value, field: &str) -> Value {
    let mut changed = value.clone();
    changed.as_object_mut().expect("an object").remove(field);
    changed
}

fn valid_tag() -> Value {
    let uri = at_uri(HOSTILE_DID, MANIFEST, digest_hex(&digest("evil-base")));
    tag("webapp", "latest", &uri, "2026-03-01T00:00:00Z")
}

fn valid_manifest() -> Value {
    let config = Descriptor::new(OCI_CONFIG, "config");
    let mut layer = Descriptor::layer("layer");
    layer.size = 7;
    manifest_image(
        "webapp",
        &digest("evil-base"),
        &config,
        &[layer],
        "2026-03-01T00:00:00Z",
    )
}

fn valid_scan() -> Value {
    let uri = at_uri(&did_plc(1), MANIFEST, digest_hex(&digest("image")));
    let counts = Severities::default();
    hold_scan(&uri, "webapp", &did_plc(1), counts, "2026-03-01T00:00:00Z")
}

/// `record.<reason>`, or `record.max_length` when `text` is longer than `limit` bytes (the
/// length is checked before the syntax).
fn length_or(text: &str, limit: usize, reason: &'static str) -> &'static str {
    if text.len() > limit {
        "max_length"
    } else {
        reason
    }
}

fn record_label(reason: &str) -> &'static str {
    const LABELS: [&str; 15] = [
        "record.json",
        "record.type",
        "record.missing",
        "record.did",
        "record.rkey",
        "record.collection",
        "record.at_uri",
        "record.digest",
        "record.repository",
        "record.tag",
        "record.datetime",
        "record.max_length",
        "record.integer",
        "record.shape",
        "record.blob",
    ];
    let wanted = |label: &&&str| label.strip_prefix("record.") == Some(reason);
    LABELS
        .iter()
        .find(wanted)
        .copied()
        .expect("a record reason")
}

/// One commit of the valid stream.
struct Commit {
    line: usize,
    collection: String,
    operation: String,
    /// A later line that touches the same record with a greater rev.
    superseded_at: Option<usize>,
}

/// Every delivered commit of `valid`, with the line that later supersedes it, if any.
fn commits(valid: &[String]) -> Vec<Commit> {
    let mut commits = Vec::new();
    let mut last: BTreeMap<(String, String, String), (usize, String)> = BTreeMap::new();
    for (line, text) in valid.iter().enumerate() {
        let event: Value = serde_json::from_str(text).expect("valid lines are JSON");
        let commit = &event["commit"];
        let (Some(collection), Some(rkey), Some(rev)) = (
            commit["collection"].as_str(),
            commit["rkey"].as_str(),
            commit["rev"].as_str(),
        ) else {
            continue;
        };
        if !delivered(text) {
            continue;
        }
        let key = (
            event["did"].to_string(),
            collection.to_owned(),
            rkey.to_owned(),
        );
        if let Some((earlier, earlier_rev)) = last.get(&key) {
            if rev > earlier_rev.as_str() {
                let superseded: &mut Commit = &mut commits[*earlier];
                superseded.superseded_at.get_or_insert(line);
            }
        }
        last.insert(key, (commits.len(), rev.to_owned()));
        commits.push(Commit {
            line,
            collection: collection.to_owned(),
            operation: commit["operation"].as_str().unwrap_or("").to_owned(),
            superseded_at: None,
        });
    }
    commits
}

fn compress(dictionary: &[u8], bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::Compressor::with_dictionary(LEVEL, dictionary)
        .and_then(|mut compressor| compressor.compress(bytes))
        .expect("zstd compresses in memory")
}

/// A dictionary trained on other events, with another dictionary ID than `ours`.
fn other_dictionary(ours: &[u8]) -> Vec<u8> {
    let samples = generate_stream(1_200, 0x0bad);
    let other = zstd::dict::from_samples(&samples, 8 * 1024).expect("training succeeds");
    assert_ne!(other[4..8], ours[4..8], "the two dictionaries share an ID");
    other
}

/// A text frame whose payload is not UTF-8: a protocol error, not an event.
pub fn invalid_utf8_text() -> Message {
    let payload = b"{\"did\":\"did:plc:evil\xff\xfe\"}".to_vec();
    Message::Frame(Frame::message(payload, OpCode::Data(Data::Text), true))
}

/// A continuation frame that continues nothing: a protocol error.
pub fn orphan_continuation() -> Message {
    let payload = b"evil".to_vec();
    Message::Frame(Frame::message(payload, OpCode::Data(Data::Continue), true))
}
