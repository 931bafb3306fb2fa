//! The ATProto blob reference: `{"$type":"blob","ref":{"$link":CID},"mimeType":…,"size":…}`.
//!
//! A blob field names a file stored in the PDS by the CID of its bytes. The check keeps the
//! field's lexicon `accept` list and `maxSize`, and returns the CID, which is all the indexer
//! keeps of a blob.

use serde_json::Value;

use super::fields::{count, member, object, text, Fault};
use super::Reason;

/// Longest CID accepted, in bytes; real blob CIDs are 59 characters.
const CID_MAX_BYTES: usize = 256;

/// Shortest CID accepted, in bytes.
const CID_MIN_BYTES: usize = 8;

/// Longest MIME type, in bytes (the registered limit for type and subtype together).
const MIME_TYPE_MAX_BYTES: usize = 255;

/// What a blob field accepts, from its lexicon.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlobRule {
    /// Accepted MIME types; empty accepts any.
    pub accept: &'static [&'static str],
    /// Largest size in bytes, if the lexicon sets one.
    pub max_size: Option<i64>,
}

/// A blob reference that keeps `rule`; returns the CID of the blob.
pub(crate) fn blob(value: &Value, rule: BlobRule) -> Result<&str, Fault> {
    let blob = object(value).map_err(|_| Fault::new(Reason::Blob, "not an object"))?;
    if blob.get("$type").and_then(Value::as_str) != Some("blob") {
        return Err(Fault::new(Reason::Blob, "$type is not `blob`"));
    }
    let cid = member(blob, "ref", cid_link)?;
    let mime_type = member(blob, "mimeType", |v| text(v, MIME_TYPE_MAX_BYTES))?;
    let size = member(blob, "size", count)?;
    check_rule(rule, mime_type, size)?;
    Ok(cid)
}

/// The `{"$link": CID}` object of a blob reference.
fn cid_link(value: &Value) -> Result<&str, Fault> {
    let link = object(value).map_err(|_| Fault::new(Reason::Blob, "not a link object"))?;
    let cid = member(link, "$link", |v| text(v, CID_MAX_BYTES))?;
    if !is_blob_cid(cid) {
        return Err(Fault::new(Reason::Blob, "not a base32 CIDv1"));
    }
    Ok(cid)
}

/// Whether `cid` looks like a CIDv1 in multibase base32 (`b` then `[a-z2-7]`), as blobs use.
fn is_blob_cid(cid: &str) -> bool {
    let Some(body) = cid.strip_prefix('b') else {
        return false;
    };
    (CID_MIN_BYTES..=CID_MAX_BYTES).contains(&cid.len())
        && body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// Checks the MIME type and size against the field's rule.
fn check_rule(rule: BlobRule, mime_type: &str, size: i64) -> Result<(), Fault> {
    if !rule.accept.is_empty() && !rule.accept.contains(&mime_type) {
        return Err(Fault::new(Reason::Blob, "MIME type not accepted"));
    }
    if rule.max_size.is_some_and(|max| size > max) {
        return Err(Fault::new(Reason::Blob, "larger than the field accepts"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::records::fixtures::CID;

    const PNG_ONLY: BlobRule = BlobRule {
        accept: &["image/png"],
        max_size: Some(1000),
    };
    const ANY: BlobRule = BlobRule {
        accept: &[],
        max_size: None,
    };

    fn png(size: i64) -> Value {
        json!({"$type": "blob", "ref": {"$link": CID}, "mimeType": "image/png", "size": size})
    }

    fn reason(value: &Value, rule: BlobRule) -> Reason {
        match blob(value, rule) {
            Ok(cid) => panic!("expected a fault, got {cid}"),
            Err(fault) => fault.reason,
        }
    }

    #[test]
    fn accepts_a_blob_within_its_rule() {
        assert_eq!(blob(&png(1000), PNG_ONLY), Ok(CID));
        assert_eq!(blob(&png(0), ANY), Ok(CID));
    }

    #[test]
    fn refuses_wrong_mime_type_and_oversize() {
        assert_eq!(reason(&png(1001), PNG_ONLY), Reason::Blob);
        let mut gif = png(10);
        gif["mimeType"] = json!("image/gif");
        assert_eq!(reason(&gif, PNG_ONLY), Reason::Blob);
        assert!(blob(&gif, ANY).is_ok());
    }

    #[test]
    fn refuses_a_negative_size() {
        assert_eq!(reason(&png(-1), ANY), Reason::Integer);
    }

    #[test]
    fn refuses_missing_or_wrong_type_marker() {
        let mut untyped = png(1);
        untyped.as_object_mut().map(|o| o.remove("$type"));
        assert_eq!(reason(&untyped, ANY), Reason::Blob);
        let mut other = png(1);
        other["$type"] = json!("Blob");
        assert_eq!(reason(&other, ANY), Reason::Blob);
    }

    #[test]
    fn refuses_the_legacy_cid_string_form() {
        let legacy = json!({"cid": CID, "mimeType": "image/png"});
        assert_eq!(reason(&legacy, ANY), Reason::Blob);
    }

    #[test]
    fn refuses_bad_links() {
        for link in [
            json!(CID),
            json!({"$link": 5}),
            json!({}),
            json!({"$link": "Qm123456789"}),
        ] {
            let mut value = png(1);
            value["ref"] = link.clone();
            assert!(blob(&value, ANY).is_err(), "{link}");
        }
        for cid in ["bafy", "bafy{}reih", "BAFKREIH", "bafkrei h", "bafk\nreih"] {
            let mut value = png(1);
            value["ref"] = json!({"$link": cid});
            assert_eq!(reason(&value, ANY), Reason::Blob, "{cid:?}");
        }
    }

    #[test]
    fn refuses_a_non_object() {
        assert_eq!(reason(&json!("blob"), ANY), Reason::Blob);
        assert_eq!(reason(&json!(null), ANY), Reason::Blob);
    }
}
