//! Decoding and validation of `io.atcr.*` records into one internal form per collection.
//!
//! [`validate`] is the single entry point: it takes the event's DID, collection and record key
//! (already checked by the caller) and the parsed record JSON, and either rejects the record
//! with a bounded [`Reason`] or returns a [`Record`] in its current shape plus [`Note`]s for
//! what was tolerated. Older shapes still stored in PDSes are normalised here, so the
//! derivation code only ever sees the current form (`records.md` §2). The module is pure: no
//! I/O, no clock, no global state; every check is linear in the size of the record.

mod blob;
mod common;
mod descriptor;
mod fields;
mod hold;
mod layer;
mod manifest;
mod page;
mod profile;
mod scan;
mod star;
pub mod syntax;
mod tag;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod proptests;

use serde_json::Value;

pub use descriptor::{Descriptor, ManifestRef, Platform};
pub use hold::{Captain, Crew, Stats};
pub use manifest::Manifest;
pub use page::RepoPage;
pub use scan::Scan;
pub use star::{Star, StarSubject};
pub use syntax::AtUri;
pub use tag::Tag;

use fields::Fields;

/// NSID of the image manifest record.
pub(crate) const MANIFEST: &str = "io.atcr.manifest";
/// NSID of the tag record.
pub(crate) const TAG: &str = "io.atcr.tag";
/// NSID of the repository page record.
pub(crate) const REPO_PAGE: &str = "io.atcr.repo.page";
/// NSID of the star record.
pub(crate) const STAR: &str = "io.atcr.sailor.star";
/// NSID of the sailor profile record.
pub(crate) const PROFILE: &str = "io.atcr.sailor.profile";
/// NSID of the webhook record.
pub(crate) const WEBHOOK: &str = "io.atcr.sailor.webhook";
/// NSID of the hold captain record.
pub(crate) const CAPTAIN: &str = "io.atcr.hold.captain";
/// NSID of the hold crew record.
pub(crate) const CREW: &str = "io.atcr.hold.crew";
/// NSID of the hold layer record.
pub(crate) const LAYER: &str = "io.atcr.hold.layer";
/// NSID of the hold stats record.
pub(crate) const STATS: &str = "io.atcr.hold.stats";
/// NSID of the hold scan record.
pub(crate) const SCAN: &str = "io.atcr.hold.scan";
/// NSID of the legacy hold record, replaced by the captain record.
pub(crate) const LEGACY_HOLD: &str = "io.atcr.hold";

/// Why a record was rejected; the label values of `records_rejected_total{reason}`.
///
/// The set is closed on purpose: a metric label must never take an unbounded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The record body is not valid JSON (decided by the caller, before [`validate`]).
    Json,
    /// A field, or `$type`, holds the wrong JSON type or the wrong type name.
    Type,
    /// A required field, or `$type`, is absent.
    Missing,
    /// A DID is malformed or of a method that is not accepted.
    Did,
    /// The record key is not the one the collection requires.
    Rkey,
    /// A collection NSID, or the collection inside an at-uri, is not the expected one.
    Collection,
    /// An at-uri is malformed.
    AtUri,
    /// A digest is not `sha256:` and 64 lowercase hex digits.
    Digest,
    /// A repository name breaks the OCI name grammar or its length limit.
    Repository,
    /// A tag breaks the OCI tag grammar.
    Tag,
    /// A datetime is not RFC 3339 with `T`, seconds and a zone.
    Datetime,
    /// A string is longer than its lexicon `maxLength` in UTF-8 bytes.
    MaxLength,
    /// A number is not an integer within i64, or a size or count is negative.
    Integer,
    /// The record or a field does not have the structure any known version defines.
    Shape,
    /// A blob reference is malformed or outside its accepted types and size.
    Blob,
}

impl Reason {
    /// The metric label value of this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Json => "json",
            Reason::Type => "type",
            Reason::Missing => "missing",
            Reason::Did => "did",
            Reason::Rkey => "rkey",
            Reason::Collection => "collection",
            Reason::AtUri => "at_uri",
            Reason::Digest => "digest",
            Reason::Repository => "repository",
            Reason::Tag => "tag",
            Reason::Datetime => "datetime",
            Reason::MaxLength => "max_length",
            Reason::Integer => "integer",
            Reason::Shape => "shape",
            Reason::Blob => "blob",
        }
    }
}

/// A record that failed a check on a required field, on `$type`, or on its structure.
///
/// `field` is a top-level field name of the record (or `$type`, `rkey`, `record`), so it is
/// bounded too; `detail` is for debug logs only and never repeats the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("record rejected ({label}) at {field}: {detail}", label = .reason.as_str())]
pub struct Rejection {
    /// The bounded reason, used as a metric label.
    pub reason: Reason,
    /// The field that failed.
    pub field: &'static str,
    /// A short human explanation.
    pub detail: String,
}

impl Rejection {
    /// A rejection of `field` for `reason`.
    pub(crate) fn new(reason: Reason, field: &'static str, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            field,
            detail: detail.into(),
        }
    }
}

/// Something counted but not rejected (an optional field dropped, a known anomaly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// An optional field was invalid and is treated as absent.
    FieldDropped {
        /// The top-level field name.
        field: &'static str,
    },
    /// The manifest's record key is 64 hex digits but not those of its digest.
    ManifestRkeyMismatch,
    /// The tag's `manifest` names another DID or another collection; treated as absent.
    TagManifestForeign,
    /// The tag's two pointers resolve to different digests. Deciding it needs the manifest
    /// locator in the cache, so this module never emits it; the derivation code does.
    TagPointersDisagree,
    /// The tag has neither a usable `manifest` nor a usable `manifestDigest`.
    TagWithoutPointer,
    /// The repository page's record key differs from its `repository` field.
    PageRkeyMismatch,
    /// A hold layer's `userDid` differs from the DID of its `manifest` at-uri.
    LayerUserMismatch,
    /// A scan's `userDid` differs from the DID of its `manifest` at-uri.
    ScanUserMismatch,
}

/// A record that passed validation, in its current shape, with what was tolerated on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// The normalised record.
    pub record: Record,
    /// Anomalies to count; empty for a clean record.
    pub notes: Vec<Note>,
}

/// A valid `io.atcr.*` record, normalised to one form per collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// `io.atcr.manifest`.
    Manifest(Manifest),
    /// `io.atcr.tag`.
    Tag(Tag),
    /// `io.atcr.repo.page`.
    RepoPage(RepoPage),
    /// `io.atcr.sailor.star`.
    Star(Star),
    /// `io.atcr.hold.captain`.
    Captain(Captain),
    /// `io.atcr.hold.crew`.
    Crew(Crew),
    /// `io.atcr.hold.stats`.
    Stats(Stats),
    /// `io.atcr.hold.scan`.
    Scan(Scan),
    /// Valid, cached as received, nothing derived: sailor.profile, hold.layer (both shapes),
    /// sailor.webhook, legacy io.atcr.hold.
    CachedOnly,
    /// Any other io.atcr.* collection: only the common checks ($type, integers); cached raw,
    /// counted as unknown.
    Unknown,
}

/// Where a record came from: the parts of its event, already validated by the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event<'a> {
    /// The repository DID the record lives in.
    pub did: &'a str,
    /// The collection NSID.
    pub collection: &'a str,
    /// The record key.
    pub rkey: &'a str,
    /// Whether `did:web:localhost%3A<port>` DIDs are accepted inside records (tests only).
    pub allow_localhost: bool,
}

/// Validates one record and normalises it; the one entry point of this module.
///
/// `did` is the event DID (already validated by the caller), `collection` the event
/// collection (already a valid NSID under `io.atcr.`), `rkey` an already valid record key, and
/// `value` the parsed record JSON. DIDs inside the record must be `did:plc` or `did:web`.
pub fn validate(
    did: &str,
    collection: &str,
    rkey: &str,
    value: &Value,
) -> Result<Validated, Rejection> {
    validate_allowing_localhost(did, collection, rkey, value, false)
}

/// Like [`validate`]; with `allow_localhost` set, DIDs inside the record may also be
/// `did:web:localhost%3A<port>`, for test deployments whose holds run on localhost.
pub fn validate_allowing_localhost(
    did: &str,
    collection: &str,
    rkey: &str,
    value: &Value,
    allow_localhost: bool,
) -> Result<Validated, Rejection> {
    let object = common::check(collection, value)?;
    let event = Event {
        did,
        collection,
        rkey,
        allow_localhost,
    };
    let mut fields = Fields::new(object);
    let record = decode(&event, &mut fields)?;
    Ok(Validated {
        record,
        notes: fields.into_notes(),
    })
}

/// Runs the collection's own decoder; collections without one only get the common checks.
fn decode(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<Record, Rejection> {
    let record = match event.collection {
        MANIFEST => Record::Manifest(manifest::decode(event, fields)?),
        TAG => Record::Tag(tag::decode(event, fields)?),
        REPO_PAGE => Record::RepoPage(page::decode(event, fields)?),
        STAR => Record::Star(star::decode(event, fields)?),
        CAPTAIN => Record::Captain(hold::decode_captain(event, fields)?),
        CREW => Record::Crew(hold::decode_crew(event, fields)?),
        STATS => Record::Stats(hold::decode_stats(event, fields)?),
        SCAN => Record::Scan(scan::decode(event, fields)?),
        PROFILE => profile::check(event, fields).map(|()| Record::CachedOnly)?,
        LAYER => layer::check(event, fields).map(|()| Record::CachedOnly)?,
        WEBHOOK | LEGACY_HOLD => Record::CachedOnly,
        _ => Record::Unknown,
    };
    Ok(record)
}

/// Rejects a record whose key is not `self`, for the collections whose lexicon fixes it.
pub(crate) fn require_self_key(event: &Event<'_>) -> Result<(), Rejection> {
    if event.rkey == "self" {
        return Ok(());
    }
    Err(Rejection::new(
        Reason::Rkey,
        "rkey",
        "this collection's record key must be `self`",
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fixtures::*;
    use super::*;

    const ALL_REASONS: [Reason; 15] = [
        Reason::Json,
        Reason::Type,
        Reason::Missing,
        Reason::Did,
        Reason::Rkey,
        Reason::Collection,
        Reason::AtUri,
        Reason::Digest,
        Reason::Repository,
        Reason::Tag,
        Reason::Datetime,
        Reason::MaxLength,
        Reason::Integer,
        Reason::Shape,
        Reason::Blob,
    ];

    fn webhook() -> Value {
        json!({
            "$type": WEBHOOK, "holdDid": HOLD, "triggers": 3,
            "privateCid": CID, "createdAt": TIME
        })
    }

    #[test]
    fn reason_labels_are_the_documented_ones() {
        let labels: Vec<&str> = ALL_REASONS.iter().map(|reason| reason.as_str()).collect();
        let expected = [
            "json",
            "type",
            "missing",
            "did",
            "rkey",
            "collection",
            "at_uri",
            "digest",
            "repository",
            "tag",
            "datetime",
            "max_length",
            "integer",
            "shape",
            "blob",
        ];
        assert_eq!(labels, expected);
    }

    #[test]
    fn rejection_message_names_reason_and_field() {
        let rejection = Rejection::new(Reason::MaxLength, "tag", "longer than 128 bytes");
        let message = rejection.to_string();
        assert!(
            message.contains("max_length") && message.contains("tag"),
            "{message}"
        );
    }

    #[test]
    fn webhook_and_legacy_hold_are_cached_raw() {
        assert_cached_only(accept(USER, WEBHOOK, TID, &webhook()), vec![]);
        let legacy = json!({"$type": LEGACY_HOLD, "endpoint": "https://hold01.atcr.io",
                            "owner": USER, "createdAt": TIME, "public": true});
        assert_cached_only(accept(USER, LEGACY_HOLD, "hold01", &legacy), vec![]);
    }

    #[test]
    fn unknown_io_atcr_collection_is_cached_as_unknown() {
        let collection = "io.atcr.sailor.badge";
        let value = json!({"$type": collection, "anything": {"goes": [1, 2]}});
        let validated = accept(USER, collection, TID, &value);
        assert_eq!(
            validated,
            Validated {
                record: Record::Unknown,
                notes: vec![]
            }
        );
        let float = json!({"$type": collection, "score": 0.5});
        assert_rejected((USER, collection, TID), &float, Reason::Integer, "record");
    }

    #[test]
    fn localhost_dids_inside_records_only_when_allowed() {
        let local = "did:web:localhost%3A8080";
        let value = json!({"$type": CREW, "member": local, "role": "write",
                           "permissions": ["blob:read"], "addedAt": TIME});
        assert_rejected((local, CREW, TID), &value, Reason::Did, "member");
        let validated = validate_allowing_localhost(local, CREW, TID, &value, true);
        assert!(
            matches!(
                validated,
                Ok(Validated {
                    record: Record::Crew(_),
                    ..
                })
            ),
            "{validated:?}"
        );
    }

    #[test]
    fn field_dropped_note_is_not_emitted_for_clean_records() {
        let value = json!({"$type": PROFILE, "createdAt": TIME});
        assert_cached_only(accept(USER, PROFILE, "self", &value), vec![]);
    }
}
