//! OCI descriptors inside a manifest record: blob references, index entries and platforms.
//!
//! A descriptor is checked whole: a missing or malformed member, required or optional, fails
//! the descriptor, and the manifest decoder then drops the field that held it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::fields::{
    count, digest, every, member, object, optional_member, string, string_map, string_object, text,
    Fault,
};
use super::syntax::is_uri;
use super::Reason;

/// Longest media type of a descriptor, in bytes.
const MEDIA_TYPE_MAX_BYTES: usize = 128;

/// Longest `os` or `architecture` of a platform, in bytes.
const PLATFORM_NAME_MAX_BYTES: usize = 32;

/// Longest `variant` of a platform, in bytes.
const VARIANT_MAX_BYTES: usize = 32;

/// Longest `osVersion` of a platform, and of each `osFeatures` item, in bytes.
const OS_VERSION_MAX_BYTES: usize = 64;

/// An OCI content descriptor: what a layer, config or subject points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The content digest, `sha256:` and 64 hex digits.
    pub digest: String,
    /// The content size in bytes, zero or more.
    pub size: i64,
    /// The content media type.
    pub media_type: String,
}

/// The platform an index entry runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    /// Operating system, e.g. `linux` (`unknown` for attestations).
    pub os: String,
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8`.
    pub variant: Option<String>,
    /// Operating system version (Windows images).
    pub os_version: Option<String>,
}

/// One child manifest of an image index or manifest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRef {
    /// The child manifest digest.
    pub digest: String,
    /// The child manifest size in bytes.
    pub size: i64,
    /// The child manifest media type.
    pub media_type: String,
    /// The platform the child runs on, if the index says.
    pub platform: Option<Platform>,
    /// The child's annotations (e.g. `vnd.docker.reference.type`).
    pub annotations: BTreeMap<String, String>,
}

/// A blobReference: a descriptor, plus `urls` and `annotations` checked and not kept.
pub(crate) fn descriptor(value: &Value) -> Result<Descriptor, Fault> {
    let reference = object(value)?;
    let descriptor = descriptor_members(reference)?;
    optional_member(reference, "urls", |v| every(v, uri))?;
    optional_member(reference, "annotations", string_object)?;
    Ok(descriptor)
}

/// The three members every descriptor has.
fn descriptor_members(reference: &Map<String, Value>) -> Result<Descriptor, Fault> {
    Ok(Descriptor {
        digest: member(reference, "digest", digest)?.to_owned(),
        size: member(reference, "size", count)?,
        media_type: member(reference, "mediaType", |v| text(v, MEDIA_TYPE_MAX_BYTES))?.to_owned(),
    })
}

/// A manifestReference: a descriptor with an optional platform and annotations.
pub(crate) fn manifest_ref(value: &Value) -> Result<ManifestRef, Fault> {
    let reference = object(value)?;
    let Descriptor {
        digest,
        size,
        media_type,
    } = descriptor_members(reference)?;
    Ok(ManifestRef {
        digest,
        size,
        media_type,
        platform: optional_member(reference, "platform", platform)?,
        annotations: optional_member(reference, "annotations", string_map)?.unwrap_or_default(),
    })
}

/// A platform: `os` and `architecture` required, `variant`, `osVersion`, `osFeatures` optional.
fn platform(value: &Value) -> Result<Platform, Fault> {
    let platform = object(value)?;
    let features = |v| every(v, |item| text(item, OS_VERSION_MAX_BYTES));
    optional_member(platform, "osFeatures", features)?;
    let owned = |v: &Value| text(v, PLATFORM_NAME_MAX_BYTES).map(str::to_owned);
    Ok(Platform {
        os: member(platform, "os", owned)?,
        architecture: member(platform, "architecture", owned)?,
        variant: optional_member(platform, "variant", |v| text(v, VARIANT_MAX_BYTES))?
            .map(str::to_owned),
        os_version: optional_member(platform, "osVersion", |v| text(v, OS_VERSION_MAX_BYTES))?
            .map(str::to_owned),
    })
}

/// One item of a descriptor's `urls`: a URI string.
fn uri(value: &Value) -> Result<&str, Fault> {
    let uri = string(value)?;
    if !is_uri(uri) {
        return Err(Fault::new(Reason::Shape, "not a URI"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::records::fixtures::{DIGEST, LAYER_DIGEST};

    const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    fn layer() -> Value {
        json!({"mediaType": LAYER_TYPE, "size": 3_623_807, "digest": LAYER_DIGEST})
    }

    fn child(platform: Value) -> Value {
        json!({"mediaType": LAYER_TYPE, "size": 1024, "digest": DIGEST, "platform": platform})
    }

    fn reason<T: std::fmt::Debug>(result: Result<T, Fault>) -> Reason {
        match result {
            Ok(value) => panic!("expected a fault, got {value:?}"),
            Err(fault) => fault.reason,
        }
    }

    #[test]
    fn descriptor_keeps_digest_size_and_media_type() {
        let expected = Descriptor {
            digest: LAYER_DIGEST.into(),
            size: 3_623_807,
            media_type: LAYER_TYPE.into(),
        };
        assert_eq!(descriptor(&layer()), Ok(expected));
    }

    #[test]
    fn descriptor_serializes_in_camel_case() {
        let json = serde_json::to_value(descriptor(&layer()).expect("valid layer"));
        let expected = json!({"digest": LAYER_DIGEST, "size": 3_623_807, "mediaType": LAYER_TYPE});
        assert_eq!(json.expect("serializable"), expected);
    }

    #[test]
    fn platform_serializes_in_camel_case() {
        let value = child(json!({"os": "windows", "architecture": "amd64",
                                 "osVersion": "10.0.20348.2340"}));
        let platform = manifest_ref(&value).expect("valid child").platform;
        let json = serde_json::to_value(platform.expect("platform")).expect("serializable");
        let expected = json!({"os": "windows", "architecture": "amd64", "variant": null,
                              "osVersion": "10.0.20348.2340"});
        assert_eq!(json, expected);
    }

    #[test]
    fn descriptor_members_are_required_and_checked() {
        let cases = [
            (json!({"size": 1, "digest": LAYER_DIGEST}), Reason::Missing),
            (
                json!({"mediaType": "x", "digest": LAYER_DIGEST}),
                Reason::Missing,
            ),
            (json!({"mediaType": "x", "size": 1}), Reason::Missing),
            (
                json!({"mediaType": "x", "size": -1, "digest": LAYER_DIGEST}),
                Reason::Integer,
            ),
            (
                json!({"mediaType": "x", "size": "1", "digest": LAYER_DIGEST}),
                Reason::Type,
            ),
            (
                json!({"mediaType": "x", "size": 1, "digest": "sha256:ABC"}),
                Reason::Digest,
            ),
            (
                json!({"mediaType": "m".repeat(129), "size": 1, "digest": DIGEST}),
                Reason::MaxLength,
            ),
            (json!([layer()]), Reason::Type),
        ];
        for (value, expected) in cases {
            assert_eq!(reason(descriptor(&value)), expected, "{value}");
        }
    }

    #[test]
    fn descriptor_urls_and_annotations_fail_the_descriptor() {
        let with = |field: &str, member: Value| {
            let mut value = layer();
            value[field] = member;
            value
        };
        assert!(descriptor(&with("urls", json!(["https://cdn.example.com/b"]))).is_ok());
        assert!(descriptor(&with("annotations", json!({"k": "v"}))).is_ok());
        assert_eq!(
            reason(descriptor(&with("urls", json!(["a b"])))),
            Reason::Shape
        );
        assert_eq!(
            reason(descriptor(&with("urls", json!("https://x.io")))),
            Reason::Type
        );
        assert_eq!(
            reason(descriptor(&with("annotations", json!({"k": 1})))),
            Reason::Type
        );
    }

    #[test]
    fn index_entry_without_platform_is_valid() {
        let mut value = child(json!(null));
        value.as_object_mut().map(|o| o.remove("platform"));
        let entry = manifest_ref(&value).expect("valid child");
        assert_eq!((entry.platform, entry.annotations.len()), (None, 0));
    }

    #[test]
    fn platform_limits_and_members() {
        let long = |n: usize| "p".repeat(n);
        let good = [
            json!({"os": "linux", "architecture": long(32), "variant": long(32)}),
            json!({"os": long(32), "architecture": "amd64", "osVersion": long(64)}),
            json!({"os": "linux", "architecture": "amd64", "osFeatures": [long(64)]}),
        ];
        for platform in good {
            assert!(manifest_ref(&child(platform.clone())).is_ok(), "{platform}");
        }
        let bad = [
            (json!({"os": "linux"}), Reason::Missing),
            (json!({"architecture": "amd64"}), Reason::Missing),
            (
                json!({"os": long(33), "architecture": "amd64"}),
                Reason::MaxLength,
            ),
            (
                json!({"os": "linux", "architecture": "arm", "variant": long(33)}),
                Reason::MaxLength,
            ),
            (
                json!({"os": "linux", "architecture": "arm", "variant": null}),
                Reason::Type,
            ),
            (
                json!({"os": "x", "architecture": "y", "osVersion": long(65)}),
                Reason::MaxLength,
            ),
            (
                json!({"os": "x", "architecture": "y", "osFeatures": [long(65)]}),
                Reason::MaxLength,
            ),
            (
                json!({"os": "x", "architecture": "y", "osFeatures": "sse4"}),
                Reason::Type,
            ),
            (json!("linux/amd64"), Reason::Type),
        ];
        for (platform, expected) in bad {
            assert_eq!(
                reason(manifest_ref(&child(platform.clone()))),
                expected,
                "{platform}"
            );
        }
    }
}
