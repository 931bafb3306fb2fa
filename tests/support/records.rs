//! Builders of valid `io.atcr.*` records and the identifiers they contain.
//!
//! The records follow `shared/spec/records.md` in their current shape unless the builder's name
//! says `old`. Identifiers (DIDs, digests, CIDs, TIDs, at-uris) are derived from seeds, so the
//! same call always gives the same bytes. A test that needs a malformed record builds a valid
//! one and edits the returned `serde_json::Value`.

use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The hold that fixture manifests name in `holdDid`.
pub const HOLD_DID: &str = "did:web:hold01.atcr.io";

/// A second hold, for tests that need two.
pub const HOLD_DID_2: &str = "did:web:hold02.atcr.io";

/// Collection of image manifests and indexes.
pub const MANIFEST: &str = "io.atcr.manifest";
/// Collection of tags.
pub const TAG: &str = "io.atcr.tag";
/// Collection of repository pages.
pub const REPO_PAGE: &str = "io.atcr.repo.page";
/// Collection of stars.
pub const STAR: &str = "io.atcr.sailor.star";
/// Collection of sailor profiles (key `self`).
pub const PROFILE: &str = "io.atcr.sailor.profile";
/// Collection of hold captain records (key `self`).
pub const CAPTAIN: &str = "io.atcr.hold.captain";
/// Collection of hold crew members.
pub const CREW: &str = "io.atcr.hold.crew";
/// Collection of hold layer records.
pub const LAYER: &str = "io.atcr.hold.layer";
/// Collection of per-hold pull and push counts.
pub const STATS: &str = "io.atcr.hold.stats";
/// Collection of vulnerability scan summaries.
pub const SCAN: &str = "io.atcr.hold.scan";

/// Media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of a gzip-compressed OCI layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The TID alphabet: base32 whose ASCII order equals its numeric order.
const SORTABLE_BASE32: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// The multibase base32 alphabet used by CIDs.
const CID_BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Encodes a TID: 53 bits of microseconds and a 10-bit clock ID in sortable base32.
pub fn tid(time_us: i64, clock_id: u16) -> String {
    let value = ((time_us.max(0) as u64) << 10) | u64::from(clock_id & 0x3ff);
    (0..13)
        .map(|position| {
            let shift = 5 * (12 - position);
            let index = if shift >= 64 {
                0
            } else {
                (value >> shift) & 31
            };
            char::from(SORTABLE_BASE32[index as usize])
        })
        .collect()
}

/// A valid `did:plc` made from `n`: the same `n` always gives the same DID.
pub fn did_plc(n: u64) -> String {
    let hash = Sha256::digest(format!("fixture-did-{n}").as_bytes());
    let id: String = hash
        .iter()
        .take(24)
        .map(|byte| char::from(SORTABLE_BASE32[usize::from(byte % 32)]))
        .collect();
    format!("did:plc:{id}")
}

/// A `sha256:` digest of `seed`, in the lowercase form the records use.
pub fn digest(seed: &str) -> String {
    format!("sha256:{}", hex(&Sha256::digest(seed.as_bytes())))
}

/// The hex part of a digest, which is what manifest and scan record keys hold.
pub fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The CIDv1 (dag-cbor, sha256) that a record's JSON bytes would get.
pub fn record_cid(record: &Value) -> String {
    cid(0x71, record.to_string().as_bytes())
}

/// The CIDv1 (raw, sha256) of a blob made from `seed`.
pub fn blob_cid(seed: &str) -> String {
    cid(0x55, seed.as_bytes())
}

/// `at://<did>/<collection>/<rkey>`.
pub fn at_uri(did: &str, collection: &str, rkey: &str) -> String {
    format!("at://{did}/{collection}/{rkey}")
}

/// The RFC 3339 UTC datetime (seconds) of a `time_us`, as records write times.
pub fn datetime(time_us: i64) -> String {
    DateTime::from_timestamp_micros(time_us)
        .expect("fixture times are within chrono's range")
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The record key of a stats record: a base32 hash of owner and repository.
pub fn stats_rkey(owner_did: &str, repository: &str) -> String {
    let hash = Sha256::digest(format!("{owner_did}/{repository}").as_bytes());
    base32(&hash[..16], CID_BASE32)
}

fn cid(codec: u8, data: &[u8]) -> String {
    let mut bytes = vec![0x01, codec, 0x12, 0x20];
    bytes.extend_from_slice(&Sha256::digest(data));
    format!("b{}", base32(&bytes, CID_BASE32))
}

fn base32(bytes: &[u8], alphabet: &[u8; 32]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(alphabet[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(alphabet[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An OCI content descriptor: what manifests say about a config, a layer or a child manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The media type of the content.
    pub media_type: String,
    /// The `sha256:` digest of the content.
    pub digest: String,
    /// The content's size in bytes.
    pub size: u64,
}

impl Descriptor {
    /// A descriptor with its digest and size derived from `seed`.
    pub fn new(media_type: &str, seed: &str) -> Self {
        let hash = Sha256::digest(seed.as_bytes());
        let size = u64::from(u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]) >> 8);
        Self {
            media_type: media_type.to_string(),
            digest: digest(seed),
            size: size + 1_024,
        }
    }

    /// A gzip layer derived from `seed`.
    pub fn layer(seed: &str) -> Self {
        Self::new(OCI_LAYER, &format!("layer-{seed}"))
    }

    /// An image config derived from `seed`.
    pub fn config(seed: &str) -> Self {
        Self::new(OCI_CONFIG, &format!("config-{seed}"))
    }

    /// An image manifest derived from `seed`, for the children of an index.
    pub fn image_manifest(seed: &str) -> Self {
        Self::new(OCI_MANIFEST, &format!("manifest-{seed}"))
    }

    /// The blobReference JSON form.
    pub fn to_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// The platform of one child of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8`.
    pub variant: Option<String>,
}

impl Platform {
    /// A platform without a variant.
    pub fn new(os: &str, architecture: &str) -> Self {
        Self {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// `linux/amd64`.
    pub fn linux_amd64() -> Self {
        Self::new("linux", "amd64")
    }

    /// `linux/arm64/v8`.
    pub fn linux_arm64() -> Self {
        Self {
            variant: Some("v8".to_string()),
            ..Self::new("linux", "arm64")
        }
    }

    /// `unknown/unknown`, the platform of a build attestation.
    pub fn attestation() -> Self {
        Self::new("unknown", "unknown")
    }

    fn to_json(&self) -> Value {
        let mut platform = json!({"os": self.os, "architecture": self.architecture});
        if let Some(variant) = &self.variant {
            platform["variant"] = json!(variant);
        }
        platform
    }
}

/// An image manifest record: config, ordered layers, `holdDid` = [`HOLD_DID`].
pub fn manifest_image(
    repository: &str,
    digest: &str,
    config: &Descriptor,
    layers: &[Descriptor],
    created_at: &str,
) -> Value {
    json!({
        "$type": MANIFEST,
        "repository": repository,
        "digest": digest,
        "mediaType": OCI_MANIFEST,
        "schemaVersion": 2,
        "createdAt": created_at,
        "holdDid": HOLD_DID,
        "config": config.to_json(),
        "layers": layers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
    })
}

/// An index record; a child with [`Platform::attestation`] gets the attestation annotation.
pub fn manifest_index(
    repository: &str,
    digest: &str,
    children: &[(Descriptor, Platform)],
    created_at: &str,
) -> Value {
    let manifests: Vec<Value> = children.iter().map(index_child).collect();
    json!({
        "$type": MANIFEST,
        "repository": repository,
        "digest": digest,
        "mediaType": OCI_INDEX,
        "schemaVersion": 2,
        "createdAt": created_at,
        "holdDid": HOLD_DID,
        "manifests": manifests,
    })
}

fn index_child((descriptor, platform): &(Descriptor, Platform)) -> Value {
    let mut child = descriptor.to_json();
    child["platform"] = platform.to_json();
    if *platform == Platform::attestation() {
        child["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
    }
    child
}

/// A tag record in the current shape: `manifest` at-uri and `updatedAt`.
pub fn tag(repository: &str, tag: &str, manifest_uri: &str, updated_at: &str) -> Value {
    json!({
        "$type": TAG,
        "repository": repository,
        "tag": tag,
        "manifest": manifest_uri,
        "updatedAt": updated_at,
    })
}

/// A tag record in the old shape: `manifestDigest` and `createdAt`.
pub fn tag_old(repository: &str, tag: &str, manifest_digest: &str, created_at: &str) -> Value {
    json!({
        "$type": TAG,
        "repository": repository,
        "tag": tag,
        "manifestDigest": manifest_digest,
        "createdAt": created_at,
    })
}

/// A repository page; its record key is meant to be `repository`.
pub fn repo_page(repository: &str, description: &str, at: &str) -> Value {
    json!({
        "$type": REPO_PAGE,
        "repository": repository,
        "description": description,
        "createdAt": at,
        "updatedAt": at,
    })
}

/// A star whose subject is the at-uri of the owner's repo.page record.
pub fn star(owner_did: &str, repository: &str, created_at: &str) -> Value {
    json!({
        "$type": STAR,
        "subject": at_uri(owner_did, REPO_PAGE, repository),
        "createdAt": created_at,
    })
}

/// A star in the old shape: `subject` is `{did, repository}`.
pub fn star_old(owner_did: &str, repository: &str, created_at: &str) -> Value {
    json!({
        "$type": STAR,
        "subject": {"did": owner_did, "repository": repository},
        "createdAt": created_at,
    })
}

/// A sailor profile (key `self`).
pub fn sailor_profile(default_hold: Option<&str>, created_at: &str) -> Value {
    let mut profile = json!({"$type": PROFILE, "createdAt": created_at, "updatedAt": created_at});
    if let Some(hold) = default_hold {
        profile["defaultHold"] = json!(hold);
    }
    profile
}

/// A hold captain record (key `self`), written by the hold.
pub fn hold_captain(owner_did: &str, public: bool, deployed_at: &str) -> Value {
    json!({
        "$type": CAPTAIN,
        "owner": owner_did,
        "public": public,
        "allowAllCrew": false,
        "enableBlueskyPosts": false,
        "deployedAt": deployed_at,
        "region": "us-east",
    })
}

/// A crew record; `write` and stronger roles get `blob:write` besides `blob:read`.
pub fn hold_crew(member_did: &str, role: &str, added_at: &str) -> Value {
    let permissions = match role {
        "read" => json!(["blob:read"]),
        _ => json!(["blob:read", "blob:write"]),
    };
    json!({
        "$type": CREW,
        "member": member_did,
        "role": role,
        "permissions": permissions,
        "addedAt": added_at,
    })
}

/// A hold layer record in the current shape (with `manifest`).
pub fn hold_layer(layer: &Descriptor, user_did: &str, manifest_uri: &str, at: &str) -> Value {
    json!({
        "$type": LAYER,
        "digest": layer.digest,
        "size": layer.size,
        "mediaType": layer.media_type,
        "createdAt": at,
        "userDid": user_did,
        "manifest": manifest_uri,
    })
}

/// A hold layer record in the old shape (with `repository` and `userHandle`).
pub fn hold_layer_old(
    layer: &Descriptor,
    user_did: &str,
    user_handle: &str,
    repository: &str,
    at: &str,
) -> Value {
    json!({
        "$type": LAYER,
        "digest": layer.digest,
        "size": layer.size,
        "mediaType": layer.media_type,
        "createdAt": at,
        "userDid": user_did,
        "userHandle": user_handle,
        "repository": repository,
    })
}

/// A stats record; `lastPull` and `lastPush` are set to `updated_at` when their count is not 0.
pub fn hold_stats(
    owner_did: &str,
    repository: &str,
    pull_count: u64,
    push_count: u64,
    updated_at: &str,
) -> Value {
    let mut stats = json!({
        "$type": STATS,
        "ownerDid": owner_did,
        "repository": repository,
        "pullCount": pull_count,
        "pushCount": push_count,
        "updatedAt": updated_at,
    });
    if pull_count > 0 {
        stats["lastPull"] = json!(updated_at);
    }
    if push_count > 0 {
        stats["lastPush"] = json!(updated_at);
    }
    stats
}

/// Vulnerability counts of a scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Severities {
    /// Critical findings.
    pub critical: u64,
    /// High findings.
    pub high: u64,
    /// Medium findings.
    pub medium: u64,
    /// Low findings.
    pub low: u64,
}

/// A scan record (status absent, which means ok); `total` is the sum of the counts.
pub fn hold_scan(
    manifest_uri: &str,
    repository: &str,
    user_did: &str,
    counts: Severities,
    scanned_at: &str,
) -> Value {
    json!({
        "$type": SCAN,
        "manifest": manifest_uri,
        "repository": repository,
        "userDid": user_did,
        "critical": counts.critical,
        "high": counts.high,
        "medium": counts.medium,
        "low": counts.low,
        "total": counts.critical + counts.high + counts.medium + counts.low,
        "scannerVersion": "grype-0.92.0",
        "scannedAt": scanned_at,
    })
}
