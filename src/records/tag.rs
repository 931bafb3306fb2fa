//! `io.atcr.tag`: one tag of a repository and what it points at (`records.md` §3.2).
//!
//! All four pointer shapes are accepted: `manifest`, `manifestDigest`, both, or neither. A
//! `manifest` at-uri must name one of the event DID's own manifest records; anything else is
//! treated as absent and noted. Resolving the at-uri to a digest needs the cache, so it is left
//! to the derivation code, as is noticing that two resolved pointers disagree.

use super::fields::{at_uri, datetime, digest, repository, text, Fault, Fields};
use super::syntax::{is_tag, AtUri};
use super::{Event, Note, Reason, Rejection, MANIFEST};

/// Longest repository name in a tag, in bytes.
const REPOSITORY_MAX_BYTES: usize = 255;

/// Longest tag, in bytes.
const TAG_MAX_BYTES: usize = 128;

/// Longest media type of the tagged manifest, in bytes.
const MEDIA_TYPE_MAX_BYTES: usize = 255;

/// A tag in its current shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The repository name.
    pub repository: String,
    /// The tag name.
    pub tag: String,
    /// The tagged manifest record of the same DID, when given and valid.
    pub manifest: Option<AtUri>,
    /// The deprecated digest pointer, when given and valid.
    pub manifest_digest: Option<String>,
    /// The media type of the tagged manifest (records from 2026-08 on).
    pub media_type: Option<String>,
    /// `updatedAt`, else the older `createdAt`, as written.
    pub updated_at: Option<String>,
}

/// Decodes a tag record, noting a foreign `manifest` and a tag with no pointer at all.
pub(crate) fn decode(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<Tag, Rejection> {
    let repository = fields.require("repository", |v| repository(v, REPOSITORY_MAX_BYTES))?;
    let tag = fields.require("tag", tag_name)?;

    let manifest = own_manifest(event, fields);
    let manifest_digest = fields.optional("manifestDigest", digest).map(str::to_owned);
    if manifest.is_none() && manifest_digest.is_none() {
        fields.note(Note::TagWithoutPointer);
    }
    let media_type = fields.optional("mediaType", |v| text(v, MEDIA_TYPE_MAX_BYTES));
    let updated_at = fields.optional("updatedAt", datetime);
    let created_at = fields.optional("createdAt", datetime);

    Ok(Tag {
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        manifest,
        manifest_digest,
        media_type: media_type.map(str::to_owned),
        updated_at: updated_at.or(created_at).map(|(text, _)| text.to_owned()),
    })
}

/// An OCI tag name.
fn tag_name(value: &serde_json::Value) -> Result<&str, Fault> {
    let tag = text(value, TAG_MAX_BYTES)?;
    if !is_tag(tag) {
        return Err(Fault::new(Reason::Tag, "not an OCI tag"));
    }
    Ok(tag)
}

/// The `manifest` at-uri if it names a manifest record of the event DID.
fn own_manifest(event: &Event<'_>, fields: &mut Fields<'_>) -> Option<AtUri> {
    let uri = fields.optional("manifest", |v| at_uri(v, event.allow_localhost))?;
    if uri.did != event.did || uri.collection != MANIFEST {
        fields.note(Note::TagManifestForeign);
        return None;
    }
    Some(uri.to_owned_uri())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::records::fixtures::*;
    use crate::records::{Record, Validated};

    const KEY: (&str, &str, &str) = (USER, TAG_NSID, TID);
    const TAG_NSID: &str = "io.atcr.tag";

    fn current() -> Value {
        json!({
            "$type": TAG_NSID,
            "repository": "tools/psql-client",
            "tag": "v1.2.3",
            "manifest": manifest_uri(USER),
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "updatedAt": TIME
        })
    }

    fn old() -> Value {
        json!({
            "$type": TAG_NSID,
            "repository": "app",
            "tag": "latest",
            "manifestDigest": DIGEST,
            "createdAt": "2025-12-01T08:00:00Z"
        })
    }

    fn decoded(value: &Value) -> (Tag, Vec<Note>) {
        match accept(KEY.0, KEY.1, KEY.2, value) {
            Validated {
                record: Record::Tag(tag),
                notes,
            } => (tag, notes),
            other => panic!("expected a tag, got {other:?}"),
        }
    }

    #[test]
    fn current_shape_is_kept_whole() {
        let (tag, notes) = decoded(&current());
        assert_eq!(notes, vec![]);
        assert_eq!(
            (tag.repository.as_str(), tag.tag.as_str()),
            ("tools/psql-client", "v1.2.3")
        );
        let manifest = tag.manifest.expect("manifest pointer");
        assert_eq!(manifest.to_string_form(), manifest_uri(USER));
        assert_eq!(tag.manifest_digest, None);
        assert!(tag.media_type.is_some());
        assert_eq!(tag.updated_at.as_deref(), Some(TIME));
    }

    #[test]
    fn old_shape_with_digest_and_created_at() {
        let (tag, notes) = decoded(&old());
        assert_eq!(notes, vec![]);
        assert_eq!(tag.manifest, None);
        assert_eq!(tag.manifest_digest.as_deref(), Some(DIGEST));
        assert_eq!(tag.updated_at.as_deref(), Some("2025-12-01T08:00:00Z"));
    }

    #[test]
    fn both_pointers_are_kept() {
        let (tag, notes) = decoded(&with(&current(), "manifestDigest", json!(DIGEST)));
        assert_eq!(notes, vec![]);
        assert!(tag.manifest.is_some() && tag.manifest_digest.is_some());
    }

    #[test]
    fn neither_pointer_is_kept_and_noted() {
        let (tag, notes) = decoded(&without(&old(), "manifestDigest"));
        assert_eq!(notes, vec![Note::TagWithoutPointer]);
        assert_eq!((tag.manifest, tag.manifest_digest), (None, None));
    }

    #[test]
    fn updated_at_wins_over_created_at() {
        let value = with(&current(), "createdAt", json!("2020-01-01T00:00:00Z"));
        assert_eq!(decoded(&value).0.updated_at.as_deref(), Some(TIME));
    }

    #[test]
    fn invalid_updated_at_falls_back_to_created_at() {
        let value = with(&old(), "updatedAt", json!("2026-03-01 12:00:00"));
        let (tag, notes) = decoded(&value);
        assert_eq!(notes, dropped("updatedAt"));
        assert_eq!(tag.updated_at.as_deref(), Some("2025-12-01T08:00:00Z"));
    }

    #[test]
    fn no_time_at_all_is_accepted() {
        let (tag, notes) = decoded(&without(&current(), "updatedAt"));
        assert_eq!((tag.updated_at, notes), (None, vec![]));
    }

    #[test]
    fn manifest_of_another_did_is_foreign() {
        let value = with(&current(), "manifest", json!(manifest_uri(OTHER_USER)));
        let (tag, notes) = decoded(&value);
        assert_eq!(
            notes,
            vec![Note::TagManifestForeign, Note::TagWithoutPointer]
        );
        assert_eq!(tag.manifest, None);
    }

    #[test]
    fn manifest_of_another_collection_is_foreign() {
        let page = format!("at://{USER}/io.atcr.repo.page/app");
        let value = with(
            &with(&current(), "manifest", json!(page)),
            "manifestDigest",
            json!(DIGEST),
        );
        let (tag, notes) = decoded(&value);
        assert_eq!(notes, vec![Note::TagManifestForeign]);
        assert_eq!(
            (tag.manifest, tag.manifest_digest.as_deref()),
            (None, Some(DIGEST))
        );
    }

    #[test]
    fn malformed_pointers_are_dropped() {
        let cases: &[(&str, Value)] = &[
            ("manifest", json!("at://alice.test/io.atcr.manifest/x")),
            ("manifest", json!(format!("{}?x=1", manifest_uri(USER)))),
            ("manifest", json!(42)),
            ("manifestDigest", json!(DIGEST.to_uppercase())),
            (
                "manifestDigest",
                json!(format!("sha512:{}", "a".repeat(128))),
            ),
        ];
        for (field, bad) in cases {
            let value = with(
                &with(&current(), "manifestDigest", json!(DIGEST)),
                field,
                bad.clone(),
            );
            assert_eq!(decoded(&value).1, dropped(field), "{field}: {bad}");
        }
    }

    #[test]
    fn media_type_limit_is_255_bytes() {
        assert_eq!(
            decoded(&with(&current(), "mediaType", json!("m".repeat(255)))).1,
            vec![]
        );
        let long = with(&current(), "mediaType", json!("m".repeat(256)));
        assert_eq!(decoded(&long).1, dropped("mediaType"));
    }

    #[test]
    fn each_required_field_missing_is_rejected() {
        for field in ["repository", "tag"] {
            assert_rejected(KEY, &without(&current(), field), Reason::Missing, field);
        }
    }

    #[test]
    fn tag_syntax_and_limit() {
        for bad in HOSTILE
            .iter()
            .copied()
            .chain([".v1", "-v1", "v1/2", "v1+build"])
        {
            assert_rejected(
                KEY,
                &with(&current(), "tag", json!(bad)),
                Reason::Tag,
                "tag",
            );
        }
        assert_eq!(
            decoded(&with(&current(), "tag", json!("t".repeat(128)))).1,
            vec![]
        );
        let long = with(&current(), "tag", json!("t".repeat(129)));
        assert_rejected(KEY, &long, Reason::MaxLength, "tag");
        assert_rejected(KEY, &with(&current(), "tag", json!(1)), Reason::Type, "tag");
    }

    #[test]
    fn repository_limit_is_255_bytes() {
        assert_eq!(
            decoded(&with(&current(), "repository", json!("r".repeat(255)))).1,
            vec![]
        );
        let long = with(&current(), "repository", json!("r".repeat(256)));
        assert_rejected(KEY, &long, Reason::MaxLength, "repository");
        let bad = with(&current(), "repository", json!("App"));
        assert_rejected(KEY, &bad, Reason::Repository, "repository");
    }
}
