//! The checks every `io.atcr.*` record passes before its collection's own: a JSON object, a
//! `$type` naming the event's collection, and only integer numbers within i64.
//!
//! These are also the only checks for collections that are cached raw (webhook, legacy hold)
//! and for unknown `io.atcr.*` collections.

use serde_json::{Map, Value};

use super::{Reason, Rejection};

/// Deepest nesting walked when checking numbers; parsed JSON never gets near it.
///
/// The JSON parser already caps nesting at 128; this bound only protects the stack against a
/// value built in memory.
const MAX_NESTING: usize = 256;

/// The checks every `io.atcr.*` record passes: an object, the right `$type`, integer numbers.
pub(crate) fn check<'a>(
    collection: &str,
    value: &'a Value,
) -> Result<&'a Map<String, Value>, Rejection> {
    if !collection.starts_with("io.atcr.") {
        let detail = "not an io.atcr collection";
        return Err(Rejection::new(Reason::Collection, "collection", detail));
    }
    let Value::Object(object) = value else {
        return Err(Rejection::new(Reason::Shape, "record", "not a JSON object"));
    };
    check_type_name(collection, object)?;
    check_numbers(value, 0)?;
    Ok(object)
}

/// Checks that `$type` is present, a string, and names the event's collection.
fn check_type_name(collection: &str, object: &Map<String, Value>) -> Result<(), Rejection> {
    let detail = match object.get("$type") {
        Some(Value::String(name)) if name == collection => return Ok(()),
        None => return Err(Rejection::new(Reason::Missing, "$type", "no $type")),
        Some(Value::String(_)) => "$type differs from the collection",
        Some(_) => "$type is not a string",
    };
    Err(Rejection::new(Reason::Type, "$type", detail))
}

/// Checks that every number anywhere in `value` is an integer within i64.
fn check_numbers(value: &Value, depth: usize) -> Result<(), Rejection> {
    if depth > MAX_NESTING {
        return Err(Rejection::new(Reason::Shape, "record", "nested too deeply"));
    }
    let nested = |item: &Value| check_numbers(item, depth + 1);
    match value {
        Value::Number(number) if number.is_i64() => Ok(()),
        Value::Number(_) => Err(Rejection::new(
            Reason::Integer,
            "record",
            "not an i64 integer",
        )),
        Value::Array(items) => items.iter().try_for_each(nested),
        Value::Object(members) => members.values().try_for_each(nested),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::records::fixtures::*;
    use crate::records::{LEGACY_HOLD, MANIFEST, WEBHOOK};

    fn webhook() -> Value {
        json!({
            "$type": WEBHOOK, "holdDid": HOLD, "triggers": 3,
            "privateCid": CID, "createdAt": TIME
        })
    }

    #[test]
    fn record_must_be_an_object() {
        for value in [
            json!(null),
            json!([]),
            json!("record"),
            json!(1),
            json!(true),
        ] {
            assert_rejected((USER, WEBHOOK, TID), &value, Reason::Shape, "record");
        }
    }

    #[test]
    fn type_must_name_the_collection() {
        let key = (USER, WEBHOOK, TID);
        assert_rejected(key, &json!({"holdDid": HOLD}), Reason::Missing, "$type");
        assert_rejected(key, &json!({"$type": MANIFEST}), Reason::Type, "$type");
        assert_rejected(
            key,
            &json!({"$type": "io.atcr.sailor.Webhook"}),
            Reason::Type,
            "$type",
        );
        assert_rejected(
            key,
            &json!({"$type": ["io.atcr.sailor.webhook"]}),
            Reason::Type,
            "$type",
        );
        assert_rejected(key, &json!({"$type": null}), Reason::Type, "$type");
    }

    #[test]
    fn numbers_must_be_i64_integers_anywhere() {
        let key = (USER, WEBHOOK, TID);
        let cases = [
            json!(1.5),
            json!(1.0),
            json!(-0.0),
            json!(u64::MAX),
            json!(i64::MAX as u64 + 1),
            json!({"deep": [[{"x": 2.5}]]}),
            json!([1, 2, 1e300]),
        ];
        for bad in cases {
            assert_rejected(
                key,
                &with(&webhook(), "extra", bad.clone()),
                Reason::Integer,
                "record",
            );
        }
        let edges = json!([i64::MIN, i64::MAX, 0, -1]);
        assert_cached_only(
            accept(USER, WEBHOOK, TID, &with(&webhook(), "extra", edges)),
            vec![],
        );
    }

    #[test]
    fn numbers_are_checked_in_text_parsed_records() {
        let text = r#"{"$type":"io.atcr.sailor.webhook","triggers":18446744073709551616}"#;
        let value: Value = serde_json::from_str(text).expect("valid JSON");
        assert_rejected((USER, WEBHOOK, TID), &value, Reason::Integer, "record");
    }

    #[test]
    fn nesting_beyond_the_bound_is_refused_without_overflow() {
        let mut value = json!(1);
        for _ in 0..(MAX_NESTING + 10) {
            value = json!([value]);
        }
        let record = with(&webhook(), "extra", value);
        assert_rejected((USER, WEBHOOK, TID), &record, Reason::Shape, "record");
    }

    #[test]
    fn hundred_thousand_element_arrays_are_fast() {
        let wide: Vec<Value> = (0..100_000).map(|i| json!([i, "x", {"n": i}])).collect();
        let record = with(&webhook(), "extra", Value::Array(wide));
        let started = std::time::Instant::now();
        assert_cached_only(accept(USER, WEBHOOK, TID, &record), vec![]);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn cached_raw_collections_still_get_the_common_checks() {
        let float = with(&webhook(), "triggers", json!(3.0));
        assert_rejected((USER, WEBHOOK, TID), &float, Reason::Integer, "record");
        assert_rejected(
            (USER, LEGACY_HOLD, "x"),
            &json!({}),
            Reason::Missing,
            "$type",
        );
    }

    #[test]
    fn collection_outside_io_atcr_is_refused() {
        let value = json!({"$type": "app.bsky.feed.post", "text": "hi"});
        let key = (USER, "app.bsky.feed.post", TID);
        assert_rejected(key, &value, Reason::Collection, "collection");
        let lookalike = json!({"$type": "io.atcrx.manifest"});
        assert_rejected(
            (USER, "io.atcrx.manifest", TID),
            &lookalike,
            Reason::Collection,
            "collection",
        );
    }
}
