//! Realistic values and small helpers shared by the record tests.
//!
//! The helpers panic with the rejection or the record they did not expect, so a failing test
//! says what differed.

use serde_json::Value;

use super::{validate, Note, Reason, Record, Rejection, Validated};

/// A user DID.
pub(crate) const USER: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";

/// Another user DID.
pub(crate) const OTHER_USER: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";

/// A hold DID.
pub(crate) const HOLD: &str = "did:web:hold01.atcr.io";

/// The hex part of [`DIGEST`].
pub(crate) const DIGEST_HEX: &str =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A manifest digest.
pub(crate) const DIGEST: &str =
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A layer digest.
pub(crate) const LAYER_DIGEST: &str =
    "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

/// A blob CID.
pub(crate) const CID: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

/// A TID record key.
pub(crate) const TID: &str = "3lbtcx6qfqk2c";

/// A timestamp.
pub(crate) const TIME: &str = "2026-03-01T12:00:00.000Z";

/// The Unix milliseconds of [`TIME`].
pub(crate) const TIME_MS: i64 = 1_772_366_400_000;

/// The at-uri of the manifest record of [`USER`] keyed by [`DIGEST_HEX`].
pub(crate) fn manifest_uri(did: &str) -> String {
    format!("at://{did}/io.atcr.manifest/{DIGEST_HEX}")
}

/// Validates a record the test expects to pass.
pub(crate) fn accept(did: &str, collection: &str, rkey: &str, value: &Value) -> Validated {
    match validate(did, collection, rkey, value) {
        Ok(validated) => validated,
        Err(rejection) => panic!("expected {collection} to pass, got {rejection}"),
    }
}

/// Validates a record the test expects to fail, returning why.
pub(crate) fn reject(did: &str, collection: &str, rkey: &str, value: &Value) -> Rejection {
    match validate(did, collection, rkey, value) {
        Ok(validated) => panic!("expected {collection} to fail, got {validated:?}"),
        Err(rejection) => rejection,
    }
}

/// Asserts that a record fails for `reason` at `field`.
pub(crate) fn assert_rejected(
    (did, collection, rkey): (&str, &str, &str),
    value: &Value,
    reason: Reason,
    field: &str,
) {
    let rejection = reject(did, collection, rkey, value);
    assert_eq!(
        (rejection.reason, rejection.field),
        (reason, field),
        "{value}"
    );
}

/// `value` with `field` set to `member` (any JSON, `null` included).
pub(crate) fn with(value: &Value, field: &str, member: Value) -> Value {
    let mut changed = value.clone();
    changed[field] = member;
    changed
}

/// `value` without `field`.
pub(crate) fn without(value: &Value, field: &str) -> Value {
    let mut changed = value.clone();
    if let Some(object) = changed.as_object_mut() {
        object.remove(field);
    }
    changed
}

/// The single note of a dropped optional field.
pub(crate) fn dropped(field: &'static str) -> Vec<Note> {
    vec![Note::FieldDropped { field }]
}

/// Asserts a record is cached only, with the given notes.
pub(crate) fn assert_cached_only(validated: Validated, notes: Vec<Note>) {
    assert_eq!(
        validated,
        Validated {
            record: Record::CachedOnly,
            notes
        }
    );
}

/// Hostile strings that no identifier, name or datetime may accept.
pub(crate) const HOSTILE: &[&str] = &[
    "",
    " ",
    "{}",
    "a:b",
    "a\nb",
    "*",
    "a b",
    "\u{0}",
    "\u{7f}",
    "../..",
    "${jndi:ldap://x}",
];
