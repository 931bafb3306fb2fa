//! JSON values of the cache, rendered with a fixed field order so that the same event always
//! writes the same bytes (replays compare equal byte for byte).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::records::{Captain, Crew, Descriptor, Manifest, ManifestRef, Platform, RepoPage};
use crate::records::{Scan, Stats, Tag};

/// Renders any serialisable value; our types cannot fail to serialise.
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("cache values are plain data with string keys")
}

/// `{uri, cid, rev, time_us, value}`, with `value` the record text exactly as received.
pub fn record(uri: &str, cid: Option<&str>, rev: &str, time_us: i64, raw: &str) -> String {
    format!(
        r#"{{"uri":{},"cid":{},"rev":{},"time_us":{time_us},"value":{raw}}}"#,
        json(uri),
        json(&cid),
        json(rev)
    )
}

/// The tombstone without its closing brace: the script appends the old locator.
pub fn tombstone_head(uri: &str, rev: &str, time_us: i64) -> String {
    format!(
        r#"{{"uri":{},"rev":{},"time_us":{time_us},"deleted":true"#,
        json(uri),
        json(rev)
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestEntry<'a> {
    repository: &'a str,
    digest: &'a str,
    media_type: &'a str,
    schema_version: i64,
    hold_did: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_endpoint: Option<&'a str>,
    config: Option<&'a Descriptor>,
    subject: Option<&'a Descriptor>,
    created_at: &'a str,
    rkey: &'a str,
    cid: Option<&'a str>,
    annotations: &'a BTreeMap<String, String>,
}

/// `P:{D}:manifest:<digest>`.
pub fn manifest(manifest: &Manifest, rkey: &str, cid: Option<&str>) -> String {
    let endpoint = manifest
        .hold_did
        .is_none()
        .then_some(())
        .and(manifest.hold_endpoint.as_deref());
    json(&ManifestEntry {
        repository: &manifest.repository,
        digest: &manifest.digest,
        media_type: &manifest.media_type,
        schema_version: manifest.schema_version,
        hold_did: manifest.hold_did.as_deref(),
        hold_endpoint: endpoint,
        config: manifest.config.as_ref(),
        subject: manifest.subject.as_ref(),
        created_at: &manifest.created_at,
        rkey,
        cid,
        annotations: &manifest.annotations,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reference<'a> {
    digest: &'a str,
    size: i64,
    media_type: &'a str,
    platform: Option<&'a Platform>,
}

/// `P:{D}:manifest:<digest>:refs`.
pub fn references(refs: &[ManifestRef]) -> String {
    let refs: Vec<Reference> = refs
        .iter()
        .map(|r| Reference {
            digest: &r.digest,
            size: r.size,
            media_type: &r.media_type,
            platform: r.platform.as_ref(),
        })
        .collect();
    json(&refs)
}

/// The part of a tag entry after its digest: `,"manifest":…}`.
pub fn tag_tail(tag: &Tag, rkey: &str) -> String {
    format!(
        r#","manifest":{},"mediaType":{},"updatedAt":{},"rkey":{},"manifestDigest":{}}}"#,
        json(&tag.manifest.as_ref().map(|uri| uri.to_string_form())),
        json(&tag.media_type),
        json(&tag.updated_at),
        json(rkey),
        json(&tag.manifest_digest)
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageEntry<'a> {
    description: Option<&'a str>,
    avatar: Option<&'a str>,
    user_edited: Option<bool>,
    created_at: &'a str,
    updated_at: &'a str,
}

/// `P:{D}:repo:<repo>:page`.
pub fn page(page: &RepoPage) -> String {
    json(&PageEntry {
        description: page.description.as_deref(),
        avatar: page.avatar.as_deref(),
        user_edited: page.user_edited,
        created_at: &page.created_at,
        updated_at: &page.updated_at,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaptainEntry<'a> {
    owner: &'a str,
    public: bool,
    allow_all_crew: bool,
    enable_bluesky_posts: bool,
    deployed_at: &'a str,
    region: Option<&'a str>,
    successor: Option<&'a str>,
}

/// `P:{H}:hold:captain`.
pub fn captain(captain: &Captain) -> String {
    json(&CaptainEntry {
        owner: &captain.owner,
        public: captain.public,
        allow_all_crew: captain.allow_all_crew,
        enable_bluesky_posts: captain.enable_bluesky_posts,
        deployed_at: &captain.deployed_at,
        region: captain.region.as_deref(),
        successor: captain.successor.as_deref(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CrewEntry<'a> {
    role: &'a str,
    permissions: &'a [String],
    tier: Option<&'a str>,
    added_at: &'a str,
    rkey: &'a str,
}

/// A field of `P:{H}:hold:crew`.
pub fn crew(crew: &Crew, rkey: &str) -> String {
    json(&CrewEntry {
        role: &crew.role,
        permissions: &crew.permissions,
        tier: crew.tier.as_deref(),
        added_at: &crew.added_at,
        rkey,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsEntry<'a> {
    pull_count: i64,
    push_count: i64,
    last_pull: Option<&'a str>,
    last_push: Option<&'a str>,
    updated_at: &'a str,
}

/// A field of `P:{D}:repo:<repo>:stats`.
pub fn stats(stats: &Stats) -> String {
    json(&StatsEntry {
        pull_count: stats.pull_count,
        push_count: stats.push_count,
        last_pull: stats.last_pull.as_deref(),
        last_push: stats.last_push.as_deref(),
        updated_at: &stats.updated_at,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScanEntry<'a> {
    hold: &'a str,
    critical: i64,
    high: i64,
    medium: i64,
    low: i64,
    total: i64,
    status: &'a str,
    scanned_at: &'a str,
}

/// `P:{D}:manifest:<digest>:scan`.
pub fn scan(scan: &Scan, hold: &str) -> String {
    json(&ScanEntry {
        hold,
        critical: scan.critical,
        high: scan.high,
        medium: scan.medium,
        low: scan.low,
        total: scan.total,
        status: &scan.status,
        scanned_at: &scan.scanned_at,
    })
}

/// A locator: a JSON object of string fields in the given order.
pub fn locator(fields: &[(&str, &str)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{}:{}", json(*name), json(*value)))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keeps_the_raw_value() {
        let value = record("at://d/c/k", None, "3mg", 7, r#"{"a": 1}"#);
        assert_eq!(
            value,
            r#"{"uri":"at://d/c/k","cid":null,"rev":"3mg","time_us":7,"value":{"a": 1}}"#
        );
    }

    #[test]
    fn tombstone_head_closes_into_valid_json() {
        let full = format!("{}}}", tombstone_head("at://d/c/k", "3mg", 7));
        let parsed: serde_json::Value = serde_json::from_str(&full).expect("valid JSON");
        assert_eq!(parsed["deleted"], true);
    }

    #[test]
    fn locator_keeps_field_order() {
        assert_eq!(
            locator(&[("repository", "a/b"), ("digest", "sha256:0")]),
            r#"{"repository":"a/b","digest":"sha256:0"}"#
        );
    }
}
