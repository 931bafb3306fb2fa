//! `io.atcr.hold.layer`: one blob of a pushed manifest, as recorded by the hold (`records.md`
//! §3.8).
//!
//! Nothing is derived from it (a manifest's layers come from the manifest itself), but both
//! shapes are checked so that the cache holds only valid records: the current one names the
//! user's manifest by at-uri, the old one (2025-12) names a repository and a user handle.

use super::fields::{
    at_uri_in, count, datetime, did, digest, repository, string, text, Fault, Fields,
};
use super::syntax::is_handle;
use super::{Event, Note, Reason, Rejection, MANIFEST};

/// Longest media type of a layer, in bytes.
const MEDIA_TYPE_MAX_BYTES: usize = 128;

/// Longest repository name in the old shape, in bytes.
const REPOSITORY_MAX_BYTES: usize = 255;

/// Checks a layer record of either shape; neither shape is [`Reason::Shape`].
pub(crate) fn check(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<(), Rejection> {
    fields.require("digest", digest)?;
    fields.require("size", count)?;
    fields.require("mediaType", |v| text(v, MEDIA_TYPE_MAX_BYTES))?;
    fields.require("createdAt", datetime)?;
    let user = fields.require("userDid", |v| did(v, event.allow_localhost))?;

    if fields.has("manifest") {
        let manifest = fields.require("manifest", |v| {
            at_uri_in(v, MANIFEST, event.allow_localhost)
        })?;
        if manifest.did != user {
            fields.note(Note::LayerUserMismatch);
        }
        return Ok(());
    }
    if fields.has("repository") {
        fields.require("repository", |v| repository(v, REPOSITORY_MAX_BYTES))?;
        fields.require("userHandle", handle)?;
        return Ok(());
    }
    Err(Rejection::new(
        Reason::Shape,
        "manifest",
        "neither `manifest` nor `repository`",
    ))
}

/// An ATProto handle; a bad one is [`Reason::Shape`], as no reason label is kept for handles.
fn handle(value: &serde_json::Value) -> Result<&str, Fault> {
    let handle = string(value)?;
    if !is_handle(handle) {
        return Err(Fault::new(Reason::Shape, "not a handle"));
    }
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::records::fixtures::*;
    use crate::records::{Note, Reason};

    const KEY: (&str, &str, &str) = (HOLD, "io.atcr.hold.layer", TID);

    fn current() -> Value {
        json!({
            "$type": "io.atcr.hold.layer", "digest": LAYER_DIGEST, "size": 3_623_807,
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "createdAt": TIME,
            "userDid": USER, "manifest": manifest_uri(USER)
        })
    }

    fn old() -> Value {
        let value = with(&without(&current(), "manifest"), "repository", json!("app"));
        with(&value, "userHandle", json!("alice.bsky.social"))
    }

    #[test]
    fn current_shape_is_cached_only() {
        assert_cached_only(accept(KEY.0, KEY.1, KEY.2, &current()), vec![]);
    }

    #[test]
    fn old_shape_is_cached_only() {
        assert_cached_only(accept(KEY.0, KEY.1, KEY.2, &old()), vec![]);
    }

    #[test]
    fn user_of_another_manifest_is_noted() {
        let value = with(&current(), "userDid", json!(OTHER_USER));
        assert_cached_only(
            accept(KEY.0, KEY.1, KEY.2, &value),
            vec![Note::LayerUserMismatch],
        );
    }

    #[test]
    fn neither_shape_is_rejected() {
        assert_rejected(
            KEY,
            &without(&current(), "manifest"),
            Reason::Shape,
            "manifest",
        );
    }

    #[test]
    fn common_required_fields() {
        for field in ["digest", "size", "mediaType", "createdAt", "userDid"] {
            assert_rejected(KEY, &without(&current(), field), Reason::Missing, field);
            assert_rejected(KEY, &without(&old(), field), Reason::Missing, field);
        }
        let cases = [
            (
                "digest",
                json!(format!("sha256:{}", "A".repeat(64))),
                Reason::Digest,
            ),
            ("size", json!(-5), Reason::Integer),
            ("mediaType", json!("m".repeat(129)), Reason::MaxLength),
            ("createdAt", json!("2026-03-01T12:00:00"), Reason::Datetime),
            ("userDid", json!("did:web:hold01.atcr.io:8080"), Reason::Did),
        ];
        for (field, bad, reason) in cases {
            assert_rejected(KEY, &with(&current(), field, bad), reason, field);
        }
    }

    #[test]
    fn current_shape_manifest_must_be_a_manifest_at_uri() {
        let page = json!(format!("at://{USER}/io.atcr.repo.page/app"));
        assert_rejected(
            KEY,
            &with(&current(), "manifest", page),
            Reason::Collection,
            "manifest",
        );
        let broken = json!("at://alice.test/io.atcr.manifest/x");
        assert_rejected(
            KEY,
            &with(&current(), "manifest", broken),
            Reason::AtUri,
            "manifest",
        );
        assert_rejected(
            KEY,
            &with(&current(), "manifest", json!(null)),
            Reason::Type,
            "manifest",
        );
    }

    #[test]
    fn old_shape_needs_a_valid_repository_and_handle() {
        assert_rejected(
            KEY,
            &without(&old(), "userHandle"),
            Reason::Missing,
            "userHandle",
        );
        let cases = [
            ("repository", json!("r".repeat(256)), Reason::MaxLength),
            ("repository", json!("My App"), Reason::Repository),
            ("userHandle", json!("alice"), Reason::Shape),
            ("userHandle", json!(USER), Reason::Shape),
            ("userHandle", json!("alice.123"), Reason::Shape),
        ];
        for (field, bad, reason) in cases {
            assert_rejected(KEY, &with(&old(), field, bad), reason, field);
        }
    }
}
