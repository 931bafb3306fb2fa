//! `io.atcr.manifest`: one pushed OCI image manifest, index or manifest list (`records.md` §3.1).
//!
//! The decoder keeps everything the derivation needs (layers, platform references, hold,
//! annotations) in the current shape. Optional containers (`config`, `subject`, `layers`,
//! `manifests`, `annotations`) are checked whole: one bad item drops the whole field, because a
//! partial layer list would be worse than none.

use std::collections::BTreeMap;

use super::blob::{blob, BlobRule};
use super::descriptor::{descriptor, manifest_ref, Descriptor, ManifestRef};
use super::fields::{
    datetime, did, digest, http_url, integer, list, repository, string_map, text, Fields,
};
use super::syntax::is_sha256_hex;
use super::{Event, Note, Rejection};

/// Longest repository name in a manifest, in bytes.
const REPOSITORY_MAX_BYTES: usize = 255;

/// Longest media type of a manifest, in bytes.
const MEDIA_TYPE_MAX_BYTES: usize = 128;

/// The raw manifest blob: any MIME type, any size.
const MANIFEST_BLOB: BlobRule = BlobRule {
    accept: &[],
    max_size: None,
};

/// An image manifest, image index or manifest list, in its current shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The repository name within the owner's namespace.
    pub repository: String,
    /// The manifest digest.
    pub digest: String,
    /// The manifest media type.
    pub media_type: String,
    /// The OCI schema version (normally 2).
    pub schema_version: i64,
    /// `createdAt` as written.
    pub created_at: String,
    /// `createdAt` in Unix milliseconds.
    pub created_at_ms: i64,
    /// The hold storing the blobs; `None` for old records that only name an endpoint.
    pub hold_did: Option<String>,
    /// The deprecated URL of the hold, kept as given when present.
    pub hold_endpoint: Option<String>,
    /// The image config descriptor.
    pub config: Option<Descriptor>,
    /// The referrer subject (for signatures and attestations).
    pub subject: Option<Descriptor>,
    /// The layers of an image manifest, in order; empty for an index.
    pub layers: Vec<Descriptor>,
    /// The children of an index or list, in order; empty for an image manifest.
    pub manifests: Vec<ManifestRef>,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Decodes a manifest record; notes a record key that is a different digest's hex.
pub(crate) fn decode(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<Manifest, Rejection> {
    let repository = fields.require("repository", |v| repository(v, REPOSITORY_MAX_BYTES))?;
    let digest = fields.require("digest", digest)?;
    let media_type = fields.require("mediaType", |v| text(v, MEDIA_TYPE_MAX_BYTES))?;
    let schema_version = fields.require("schemaVersion", integer)?;
    let (created_at, created_at_ms) = fields.require("createdAt", datetime)?;

    let manifest = Manifest {
        repository: repository.to_owned(),
        digest: digest.to_owned(),
        media_type: media_type.to_owned(),
        schema_version,
        created_at: created_at.to_owned(),
        created_at_ms,
        hold_did: fields
            .optional("holdDid", |v| did(v, event.allow_localhost))
            .map(str::to_owned),
        hold_endpoint: fields.optional("holdEndpoint", http_url).map(str::to_owned),
        config: fields.optional("config", descriptor),
        subject: fields.optional("subject", descriptor),
        layers: fields
            .optional("layers", |v| list(v, descriptor))
            .unwrap_or_default(),
        manifests: fields
            .optional("manifests", |v| list(v, manifest_ref))
            .unwrap_or_default(),
        annotations: fields
            .optional("annotations", string_map)
            .unwrap_or_default(),
    };
    fields.optional("manifestBlob", |v| blob(v, MANIFEST_BLOB));

    if is_foreign_digest_key(event.rkey, digest) {
        fields.note(Note::ManifestRkeyMismatch);
    }
    Ok(manifest)
}

/// Whether the record key is a SHA-256 hex digest other than the manifest's own.
fn is_foreign_digest_key(rkey: &str, digest: &str) -> bool {
    is_sha256_hex(rkey) && digest.strip_prefix("sha256:") != Some(rkey)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::records::fixtures::*;
    use crate::records::{Reason, Record, Validated};

    const KEY: (&str, &str, &str) = (USER, MANIFEST_NSID, DIGEST_HEX);
    const MANIFEST_NSID: &str = "io.atcr.manifest";
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    fn layer() -> Value {
        json!({"mediaType": LAYER_TYPE, "size": 3_623_807, "digest": LAYER_DIGEST})
    }

    fn image() -> Value {
        json!({
            "$type": MANIFEST_NSID,
            "repository": "tools/psql-client",
            "digest": DIGEST,
            "mediaType": OCI_MANIFEST,
            "schemaVersion": 2,
            "createdAt": TIME,
            "holdDid": HOLD,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "size": 1469, "digest": LAYER_DIGEST},
            "layers": [layer(), layer()],
            "annotations": {"org.opencontainers.image.title": "psql"},
            "manifestBlob": {"$type": "blob", "ref": {"$link": CID},
                             "mimeType": OCI_MANIFEST, "size": 1024}
        })
    }

    fn index() -> Value {
        let child = json!({
            "mediaType": OCI_MANIFEST, "size": 1024, "digest": LAYER_DIGEST,
            "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}
        });
        let attestation = json!({
            "mediaType": OCI_MANIFEST, "size": 840, "digest": DIGEST,
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"}
        });
        let mut value = without(&image(), "layers");
        value["mediaType"] = json!(OCI_INDEX);
        value["manifests"] = json!([child, attestation]);
        without(&value, "config")
    }

    fn decoded(value: &Value) -> (Manifest, Vec<Note>) {
        match accept(KEY.0, KEY.1, KEY.2, value) {
            Validated {
                record: Record::Manifest(manifest),
                notes,
            } => (manifest, notes),
            other => panic!("expected a manifest, got {other:?}"),
        }
    }

    #[test]
    fn image_manifest_keeps_every_derived_field() {
        let (manifest, notes) = decoded(&image());
        assert_eq!(notes, vec![]);
        assert_eq!(manifest.repository, "tools/psql-client");
        assert_eq!(manifest.digest, DIGEST);
        assert_eq!(
            (manifest.schema_version, manifest.created_at_ms),
            (2, TIME_MS)
        );
        assert_eq!(manifest.hold_did.as_deref(), Some(HOLD));
        assert_eq!(manifest.hold_endpoint, None);
        assert_eq!(manifest.config.map(|c| c.size), Some(1469));
        assert_eq!(manifest.layers.len(), 2);
        assert_eq!(manifest.layers[0].media_type, LAYER_TYPE);
        assert!(manifest.manifests.is_empty());
        assert_eq!(manifest.annotations.len(), 1);
    }

    #[test]
    fn index_keeps_platform_references_in_order() {
        let (manifest, notes) = decoded(&index());
        assert_eq!(notes, vec![]);
        assert!(manifest.layers.is_empty() && manifest.config.is_none());
        let [child, attestation] = &manifest.manifests[..] else {
            panic!("expected two children, got {:?}", manifest.manifests);
        };
        let platform = child.platform.clone().expect("child platform");
        assert_eq!(
            (platform.os.as_str(), platform.variant.as_deref()),
            ("linux", Some("v8"))
        );
        assert_eq!(
            attestation.annotations["vnd.docker.reference.type"],
            "attestation-manifest"
        );
    }

    #[test]
    fn old_record_with_only_hold_endpoint_is_kept() {
        let value = with(
            &without(&image(), "holdDid"),
            "holdEndpoint",
            json!("https://hold01.atcr.io"),
        );
        let (manifest, notes) = decoded(&value);
        assert_eq!(notes, vec![]);
        assert_eq!(manifest.hold_did, None);
        assert_eq!(
            manifest.hold_endpoint.as_deref(),
            Some("https://hold01.atcr.io")
        );
    }

    #[test]
    fn both_hold_fields_keep_both() {
        let value = with(&image(), "holdEndpoint", json!("https://hold01.atcr.io"));
        let (manifest, _) = decoded(&value);
        assert_eq!(manifest.hold_did.as_deref(), Some(HOLD));
        assert!(manifest.hold_endpoint.is_some());
    }

    #[test]
    fn manifest_without_hold_is_kept() {
        let (manifest, notes) = decoded(&without(&image(), "holdDid"));
        assert_eq!(
            (manifest.hold_did, manifest.hold_endpoint, notes),
            (None, None, vec![])
        );
    }

    #[test]
    fn each_required_field_missing_is_rejected() {
        for field in [
            "repository",
            "digest",
            "mediaType",
            "schemaVersion",
            "createdAt",
        ] {
            assert_rejected(KEY, &without(&image(), field), Reason::Missing, field);
        }
    }

    #[test]
    fn required_fields_of_the_wrong_type_are_rejected() {
        for field in [
            "repository",
            "digest",
            "mediaType",
            "schemaVersion",
            "createdAt",
        ] {
            let value = with(&image(), field, json!(["x"]));
            assert_rejected(KEY, &value, Reason::Type, field);
            assert_rejected(
                KEY,
                &with(&image(), field, Value::Null),
                Reason::Type,
                field,
            );
        }
    }

    #[test]
    fn repository_syntax_and_limit() {
        for bad in HOSTILE.iter().copied().chain(["Tools/psql", "a//b", "-a"]) {
            let value = with(&image(), "repository", json!(bad));
            assert_rejected(KEY, &value, Reason::Repository, "repository");
        }
        assert!(validate_ok(&with(
            &image(),
            "repository",
            json!("r".repeat(255))
        )));
        let long = with(&image(), "repository", json!("r".repeat(256)));
        assert_rejected(KEY, &long, Reason::MaxLength, "repository");
    }

    fn validate_ok(value: &Value) -> bool {
        crate::records::validate(KEY.0, KEY.1, KEY.2, value).is_ok()
    }

    #[test]
    fn digest_syntax() {
        let upper = format!("sha256:{}", DIGEST_HEX.to_uppercase());
        for bad in [
            upper.as_str(),
            DIGEST_HEX,
            "sha256:{}",
            "sha256:*",
            "md5:abc",
        ] {
            let value = with(&image(), "digest", json!(bad));
            assert_rejected(KEY, &value, Reason::Digest, "digest");
        }
        let sha512 = with(
            &image(),
            "digest",
            json!(format!("sha512:{}", "a".repeat(128))),
        );
        assert_rejected(KEY, &sha512, Reason::MaxLength, "digest");
    }

    #[test]
    fn media_type_limit_is_128_bytes() {
        assert!(validate_ok(&with(
            &image(),
            "mediaType",
            json!("m".repeat(128))
        )));
        let long = with(&image(), "mediaType", json!("m".repeat(129)));
        assert_rejected(KEY, &long, Reason::MaxLength, "mediaType");
    }

    #[test]
    fn created_at_syntax() {
        for bad in [
            "2026-03-01 12:00:00Z",
            "2026-03-01T12:00Z",
            "2026-03-01T12:00:00",
            "yesterday",
        ] {
            let value = with(&image(), "createdAt", json!(bad));
            assert_rejected(KEY, &value, Reason::Datetime, "createdAt");
        }
    }

    #[test]
    fn schema_version_must_be_an_integer() {
        assert_rejected(
            KEY,
            &with(&image(), "schemaVersion", json!(2.0)),
            Reason::Integer,
            "record",
        );
        assert_rejected(
            KEY,
            &with(&image(), "schemaVersion", json!("2")),
            Reason::Type,
            "schemaVersion",
        );
    }

    #[test]
    fn invalid_optional_fields_are_dropped_with_a_note() {
        let cases: &[(&str, Value)] = &[
            ("holdDid", json!("did:web:Hold01.atcr.io")),
            ("holdDid", json!("https://hold01.atcr.io")),
            ("holdEndpoint", json!("javascript:alert(1)")),
            ("holdEndpoint", json!("https://hold01.atcr.io/\n")),
            (
                "config",
                json!({"mediaType": "x", "size": -1, "digest": LAYER_DIGEST}),
            ),
            ("subject", json!({"mediaType": "x", "size": 1})),
            (
                "layers",
                json!([layer(), {"mediaType": "x", "size": 1, "digest": "sha256:*"}]),
            ),
            ("layers", json!(layer())),
            ("annotations", json!({"a": 1})),
            (
                "manifestBlob",
                json!({"$type": "blob", "ref": {"$link": "x"}}),
            ),
        ];
        for (field, bad) in cases {
            let (manifest, notes) = decoded(&with(&image(), field, bad.clone()));
            assert_eq!(notes, dropped(field), "{field}: {bad}");
            assert_eq!(manifest.digest, DIGEST);
        }
    }

    #[test]
    fn a_dropped_field_reads_as_absent() {
        let (manifest, _) = decoded(&with(&image(), "layers", json!([{"size": 1}])));
        assert!(manifest.layers.is_empty());
        let (manifest, _) = decoded(&with(&image(), "holdDid", json!("did:plc:short")));
        assert_eq!(manifest.hold_did, None);
    }

    #[test]
    fn invalid_index_children_drop_the_manifests_field() {
        let bad_platforms = [json!({"os": "linux"}), json!("linux/amd64")];
        for platform in bad_platforms {
            let mut value = index();
            value["manifests"][0]["platform"] = platform.clone();
            let (manifest, notes) = decoded(&value);
            assert_eq!(notes, dropped("manifests"), "{platform}");
            assert!(manifest.manifests.is_empty());
        }
    }

    #[test]
    fn descriptor_urls_and_annotations_are_checked() {
        let mut value = image();
        value["layers"][0]["urls"] = json!(["https://cdn.example.com/blob"]);
        value["layers"][0]["annotations"] = json!({"k": "v"});
        assert_eq!(decoded(&value).1, vec![]);
        value["layers"][0]["urls"] = json!(["not a uri"]);
        assert_eq!(decoded(&value).1, dropped("layers"));
    }

    #[test]
    fn rkey_that_is_another_digest_is_noted() {
        let other = LAYER_DIGEST.trim_start_matches("sha256:");
        let validated = accept(USER, MANIFEST_NSID, other, &image());
        assert_eq!(validated.notes, vec![Note::ManifestRkeyMismatch]);
    }

    #[test]
    fn rkey_that_is_not_a_digest_is_accepted_silently() {
        for rkey in [TID, "self", &DIGEST_HEX.to_uppercase(), &DIGEST_HEX[..63]] {
            assert_eq!(
                accept(USER, MANIFEST_NSID, rkey, &image()).notes,
                vec![],
                "{rkey}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let value = with(&image(), "futureField", json!({"anything": [1, "two"]}));
        assert_eq!(decoded(&value).1, vec![]);
    }

    #[test]
    fn huge_layer_list_is_linear() {
        let layers: Vec<Value> = (0..100_000).map(|_| layer()).collect();
        let value = with(&image(), "layers", Value::Array(layers));
        let started = std::time::Instant::now();
        let (manifest, _) = decoded(&value);
        assert_eq!(manifest.layers.len(), 100_000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
