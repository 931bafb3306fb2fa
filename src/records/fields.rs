//! Typed reading of record fields, and the value checks shared by every collection.
//!
//! A check looks at one JSON value and returns either the typed, borrowed value or a [`Fault`]
//! (a reason without a field name). [`Fields`] ties checks to field names: a required field
//! turns a fault into a [`Rejection`], an optional one into a [`Note::FieldDropped`] and
//! `None`. Nothing here allocates unless it builds an output value or reports a failure.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::syntax::{self, AtUriParts};
use super::{Note, Reason, Rejection};

/// Longest digest field, in bytes (lexicon `maxLength`).
pub(crate) const DIGEST_MAX_BYTES: usize = 128;

/// Why a value failed a check, before it is tied to a field name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    /// The bounded reason.
    pub reason: Reason,
    /// A short explanation for debug logs.
    pub detail: String,
}

impl Fault {
    /// A fault for `reason`.
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> Fault {
        Fault {
            reason,
            detail: detail.into(),
        }
    }

    /// The rejection of the record at `field` for this fault.
    pub(crate) fn at(self, field: &'static str) -> Rejection {
        Rejection::new(self.reason, field, self.detail)
    }

    /// The same fault, its detail prefixed with the nested member it came from.
    fn inside(self, member: &str) -> Fault {
        Fault::new(self.reason, format!("{member}: {}", self.detail))
    }
}

/// The top-level fields of one record, and the notes gathered while reading them.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    object: &'a Map<String, Value>,
    notes: Vec<Note>,
}

impl<'a> Fields<'a> {
    /// Reads the fields of `object`, with no notes yet.
    pub(crate) fn new(object: &'a Map<String, Value>) -> Fields<'a> {
        Fields {
            object,
            notes: Vec::new(),
        }
    }

    /// Whether `field` is present (with any value, `null` included).
    pub(crate) fn has(&self, field: &str) -> bool {
        self.object.contains_key(field)
    }

    /// A required field: absent is [`Reason::Missing`], a failed check rejects the record.
    pub(crate) fn require<T>(
        &self,
        field: &'static str,
        check: impl FnOnce(&'a Value) -> Result<T, Fault>,
    ) -> Result<T, Rejection> {
        let Some(value) = self.object.get(field) else {
            return Err(Rejection::new(
                Reason::Missing,
                field,
                "required field is absent",
            ));
        };
        check(value).map_err(|fault| fault.at(field))
    }

    /// An optional field: absent is `None`; a failed check is noted and also `None`.
    pub(crate) fn optional<T>(
        &mut self,
        field: &'static str,
        check: impl FnOnce(&'a Value) -> Result<T, Fault>,
    ) -> Option<T> {
        let value = self.object.get(field)?;
        let checked = check(value).ok();
        if checked.is_none() {
            self.notes.push(Note::FieldDropped { field });
        }
        checked
    }

    /// Records an anomaly that does not reject the record.
    pub(crate) fn note(&mut self, note: Note) {
        self.notes.push(note);
    }

    /// The notes gathered, in the order they arose.
    pub(crate) fn into_notes(self) -> Vec<Note> {
        self.notes
    }
}

/// A required member of a nested object; a fault names the member in its detail.
pub(crate) fn member<'a, T>(
    object: &'a Map<String, Value>,
    name: &'static str,
    check: impl FnOnce(&'a Value) -> Result<T, Fault>,
) -> Result<T, Fault> {
    let Some(value) = object.get(name) else {
        return Err(Fault::new(Reason::Missing, format!("{name} is absent")));
    };
    check(value).map_err(|fault| fault.inside(name))
}

/// An optional member of a nested object: absent is `None`, a failed check fails the object.
pub(crate) fn optional_member<'a, T>(
    object: &'a Map<String, Value>,
    name: &'static str,
    check: impl FnOnce(&'a Value) -> Result<T, Fault>,
) -> Result<Option<T>, Fault> {
    object
        .get(name)
        .map(|_| member(object, name, check))
        .transpose()
}

/// A JSON object.
pub(crate) fn object(value: &Value) -> Result<&Map<String, Value>, Fault> {
    value
        .as_object()
        .ok_or_else(|| Fault::new(Reason::Type, "not an object"))
}

/// A JSON array.
fn array(value: &Value) -> Result<&[Value], Fault> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| Fault::new(Reason::Type, "not an array"))
}

/// A string of any length (for formats whose syntax bounds the length).
pub(crate) fn string(value: &Value) -> Result<&str, Fault> {
    value
        .as_str()
        .ok_or_else(|| Fault::new(Reason::Type, "not a string"))
}

/// A string of at most `max_bytes` UTF-8 bytes (a lexicon `maxLength`).
pub(crate) fn text(value: &Value, max_bytes: usize) -> Result<&str, Fault> {
    let text = string(value)?;
    if text.len() > max_bytes {
        return Err(Fault::new(
            Reason::MaxLength,
            format!("longer than {max_bytes} bytes"),
        ));
    }
    Ok(text)
}

/// A boolean.
pub(crate) fn boolean(value: &Value) -> Result<bool, Fault> {
    value
        .as_bool()
        .ok_or_else(|| Fault::new(Reason::Type, "not a boolean"))
}

/// An integer (the common checks already refused floats and numbers beyond i64).
pub(crate) fn integer(value: &Value) -> Result<i64, Fault> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| Fault::new(Reason::Integer, "not an i64 integer")),
        _ => Err(Fault::new(Reason::Type, "not an integer")),
    }
}

/// A size or a count: an integer that is zero or more.
pub(crate) fn count(value: &Value) -> Result<i64, Fault> {
    let number = integer(value)?;
    if number < 0 {
        return Err(Fault::new(Reason::Integer, "negative"));
    }
    Ok(number)
}

/// A DID of an accepted method; `allow_localhost` admits `did:web:localhost%3A<port>`.
pub(crate) fn did(value: &Value, allow_localhost: bool) -> Result<&str, Fault> {
    let did = string(value)?;
    if !syntax::is_did_allowing_localhost(did, allow_localhost) {
        return Err(Fault::new(Reason::Did, "not an accepted DID"));
    }
    Ok(did)
}

/// A datetime, with its Unix milliseconds.
pub(crate) fn datetime(value: &Value) -> Result<(&str, i64), Fault> {
    let text = string(value)?;
    match syntax::parse_datetime_ms(text) {
        Some(ms) => Ok((text, ms)),
        None => Err(Fault::new(Reason::Datetime, "not an RFC 3339 datetime")),
    }
}

/// A `sha256:` digest within the 128-byte digest fields.
pub(crate) fn digest(value: &Value) -> Result<&str, Fault> {
    let digest = text(value, DIGEST_MAX_BYTES)?;
    if !syntax::is_digest(digest) {
        return Err(Fault::new(
            Reason::Digest,
            "not sha256: and 64 lowercase hex digits",
        ));
    }
    Ok(digest)
}

/// An OCI repository name of at most `max_bytes` bytes.
pub(crate) fn repository(value: &Value, max_bytes: usize) -> Result<&str, Fault> {
    let name = text(value, max_bytes)?;
    if !syntax::is_repository(name, max_bytes) {
        return Err(Fault::new(Reason::Repository, "not an OCI repository name"));
    }
    Ok(name)
}

/// An `http` or `https` URL (the old way of naming a hold).
pub(crate) fn http_url(value: &Value) -> Result<&str, Fault> {
    let url = string(value)?;
    if !syntax::is_http_url(url) {
        return Err(Fault::new(Reason::Shape, "not an http(s) URL"));
    }
    Ok(url)
}

/// A record at-uri, of any collection.
pub(crate) fn at_uri(value: &Value, allow_localhost: bool) -> Result<AtUriParts<'_>, Fault> {
    AtUriParts::parse(string(value)?, allow_localhost)
        .ok_or_else(|| Fault::new(Reason::AtUri, "not an at://<did>/<collection>/<rkey> URI"))
}

/// A record at-uri that must name a record of `collection`.
pub(crate) fn at_uri_in<'a>(
    value: &'a Value,
    collection: &str,
    allow_localhost: bool,
) -> Result<AtUriParts<'a>, Fault> {
    let uri = at_uri(value, allow_localhost)?;
    if uri.collection != collection {
        return Err(Fault::new(
            Reason::Collection,
            format!("not a {collection} record"),
        ));
    }
    Ok(uri)
}

/// An array whose every item passes `check`, collected in order.
pub(crate) fn list<'a, T>(
    value: &'a Value,
    check: impl Fn(&'a Value) -> Result<T, Fault>,
) -> Result<Vec<T>, Fault> {
    array(value)?.iter().map(check).collect()
}

/// An array whose every item passes `check`, checked without collecting anything.
pub(crate) fn every<'a, T>(
    value: &'a Value,
    check: impl Fn(&'a Value) -> Result<T, Fault>,
) -> Result<(), Fault> {
    array(value)?
        .iter()
        .try_for_each(|item| check(item).map(drop))
}

/// An array of strings of at most `max_bytes` bytes each.
pub(crate) fn string_list(value: &Value, max_bytes: usize) -> Result<Vec<String>, Fault> {
    list(value, |item| text(item, max_bytes).map(str::to_owned))
}

/// An object whose every member is a string, checked without copying it.
pub(crate) fn string_object(value: &Value) -> Result<&Map<String, Value>, Fault> {
    let members = object(value)?;
    if !members.values().all(Value::is_string) {
        return Err(Fault::new(Reason::Type, "a member is not a string"));
    }
    Ok(members)
}

/// An object whose every member is a string, copied out (the OCI annotations map).
pub(crate) fn string_map(value: &Value) -> Result<BTreeMap<String, String>, Fault> {
    let members = string_object(value)?.iter();
    Ok(members
        .filter_map(|(key, item)| Some((key.clone(), item.as_str()?.to_owned())))
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fault<T: std::fmt::Debug>(result: Result<T, Fault>) -> Reason {
        match result {
            Ok(value) => panic!("expected a fault, got {value:?}"),
            Err(fault) => fault.reason,
        }
    }

    #[test]
    fn text_counts_utf8_bytes_not_chars() {
        let four_bytes = json!("éé");
        assert_eq!(text(&four_bytes, 4), Ok("éé"));
        assert_eq!(fault(text(&four_bytes, 3)), Reason::MaxLength);
    }

    #[test]
    fn text_refuses_non_strings() {
        for value in [json!(null), json!(1), json!(true), json!([]), json!({})] {
            assert_eq!(fault(text(&value, 10)), Reason::Type, "{value}");
        }
    }

    #[test]
    fn count_refuses_negatives_and_non_numbers() {
        assert_eq!(count(&json!(0)), Ok(0));
        assert_eq!(count(&json!(i64::MAX)), Ok(i64::MAX));
        assert_eq!(fault(count(&json!(-1))), Reason::Integer);
        assert_eq!(fault(count(&json!("1"))), Reason::Type);
        assert_eq!(fault(count(&json!(1.5))), Reason::Integer);
        assert_eq!(fault(count(&json!(u64::MAX))), Reason::Integer);
    }

    #[test]
    fn did_checks_type_length_and_syntax() {
        assert_eq!(fault(did(&json!(7), false)), Reason::Type);
        let long = format!("did:web:{}.io", "a".repeat(3000));
        assert_eq!(fault(did(&json!(long), false)), Reason::Did);
        assert_eq!(fault(did(&json!("did:key:z6Mk"), false)), Reason::Did);
        assert_eq!(
            did(&json!("did:web:hold01.atcr.io"), false),
            Ok("did:web:hold01.atcr.io")
        );
        let local = json!("did:web:localhost%3A8080");
        assert_eq!(fault(did(&local, false)), Reason::Did);
        assert!(did(&local, true).is_ok());
    }

    #[test]
    fn digest_length_is_checked_before_syntax() {
        let sha512 = json!(format!("sha512:{}", "a".repeat(128)));
        assert_eq!(fault(digest(&sha512)), Reason::MaxLength);
        let upper = json!(format!("sha256:{}", "A".repeat(64)));
        assert_eq!(fault(digest(&upper)), Reason::Digest);
    }

    #[test]
    fn datetime_returns_text_and_milliseconds() {
        let value = json!("1970-01-01T00:00:01.5Z");
        assert_eq!(datetime(&value), Ok(("1970-01-01T00:00:01.5Z", 1500)));
        assert_eq!(
            fault(datetime(&json!("1970-01-01 00:00:01Z"))),
            Reason::Datetime
        );
        assert_eq!(fault(datetime(&json!(0))), Reason::Type);
    }

    #[test]
    fn at_uri_in_separates_syntax_from_collection() {
        let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
        let page = json!(format!("at://{did}/io.atcr.repo.page/app"));
        assert!(at_uri_in(&page, "io.atcr.repo.page", false).is_ok());
        assert_eq!(
            fault(at_uri_in(&page, "io.atcr.manifest", false)),
            Reason::Collection
        );
        assert_eq!(
            fault(at_uri_in(&json!("at://alice.test/a.b.c/x"), "a.b.c", false)),
            Reason::AtUri
        );
        assert_eq!(fault(at_uri(&json!({}), false)), Reason::Type);
    }

    #[test]
    fn string_map_refuses_non_string_values() {
        let good = json!({"org.opencontainers.image.title": "app"});
        assert_eq!(string_map(&good).map(|map| map.len()), Ok(1));
        assert_eq!(fault(string_map(&json!({"a": 1}))), Reason::Type);
        assert_eq!(fault(string_map(&json!(["a"]))), Reason::Type);
    }

    #[test]
    fn every_checks_each_item_and_keeps_nothing() {
        assert_eq!(every(&json!(["a", "b"]), |v| text(v, 1)), Ok(()));
        assert_eq!(every(&json!([]), |v| text(v, 1)), Ok(()));
        assert_eq!(fault(every(&json!(["a", 1]), |v| text(v, 1))), Reason::Type);
        assert_eq!(
            fault(every(&json!({"a": "b"}), |v| text(v, 1))),
            Reason::Type
        );
    }

    #[test]
    fn string_object_accepts_only_string_members() {
        assert!(string_object(&json!({})).is_ok());
        assert!(string_object(&json!({"a": "b"})).is_ok());
        assert_eq!(
            fault(string_object(&json!({"a": "b", "c": null}))),
            Reason::Type
        );
    }

    #[test]
    fn string_list_checks_each_item() {
        assert_eq!(
            string_list(&json!(["a", "b"]), 1),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(fault(string_list(&json!(["a", 1]), 1)), Reason::Type);
        assert_eq!(fault(string_list(&json!(["ab"]), 1)), Reason::MaxLength);
        assert_eq!(fault(string_list(&json!("a"), 1)), Reason::Type);
    }

    #[test]
    fn member_names_the_nested_field_in_the_detail() {
        let object = json!({"size": -1});
        let map = object.as_object().expect("literal object");
        let fault = member(map, "size", count).expect_err("negative size");
        assert_eq!(fault.reason, Reason::Integer);
        assert!(fault.detail.starts_with("size: "), "{}", fault.detail);
        let absent = member(map, "digest", digest).expect_err("absent digest");
        assert_eq!(absent.reason, Reason::Missing);
    }

    #[test]
    fn optional_member_is_none_when_absent_and_fails_when_invalid() {
        let object = json!({"variant": 3});
        let map = object.as_object().expect("literal object");
        assert_eq!(optional_member(map, "os", |v| text(v, 32)), Ok(None));
        assert!(optional_member(map, "variant", |v| text(v, 32)).is_err());
    }

    #[test]
    fn fields_note_dropped_optional_fields_only_when_present() {
        let object = json!({"region": 5, "createdAt": "2026-01-01T00:00:00Z"});
        let mut fields = Fields::new(object.as_object().expect("literal object"));
        assert_eq!(fields.optional("region", |v| text(v, 64)), None);
        assert_eq!(fields.optional("successor", |v| text(v, 64)), None);
        let missing = fields
            .require("owner", |v| text(v, 64))
            .expect_err("absent owner");
        assert_eq!((missing.reason, missing.field), (Reason::Missing, "owner"));
        assert_eq!(
            fields.into_notes(),
            vec![Note::FieldDropped { field: "region" }]
        );
    }
}
