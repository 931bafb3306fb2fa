//! Property tests of [`validate`]: random JSON and mutated valid records never panic it, and
//! every record it accepts satisfies the rules of `records.md` §4, re-checked here against the
//! syntax functions (DIDs, digests, repositories, tags, datetimes, at-uris, lengths).

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::fixtures::{CID, DIGEST, HOLD, LAYER_DIGEST, OTHER_USER, TID, TIME, USER};
use super::syntax::{
    is_did, is_digest, is_http_url, is_repository, is_rkey, is_tag, parse_datetime_ms,
};
use super::{validate, Descriptor, Record, Validated};

/// Cases per property: enough to reach every field of every collection, fast on two cores.
const CASES: u32 = 512;

/// Every collection with its own decoder, the cached-raw ones, and one unknown.
const COLLECTIONS: [&str; 13] = [
    "io.atcr.manifest",
    "io.atcr.tag",
    "io.atcr.repo.page",
    "io.atcr.sailor.star",
    "io.atcr.sailor.profile",
    "io.atcr.sailor.webhook",
    "io.atcr.hold.captain",
    "io.atcr.hold.crew",
    "io.atcr.hold.layer",
    "io.atcr.hold.stats",
    "io.atcr.hold.scan",
    "io.atcr.hold",
    "io.atcr.sailor.badge",
];

/// Strings that no identifier, name, digest or datetime may accept, and a few near misses.
const HOSTILE: [&str; 24] = [
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
    "did:plc:{aaaaaaaaaaaaaaaaaaaaaa}",
    "did:plc:AAAAAAAAAAAAAAAAAAAAAAAA",
    "did:web:evil.example:8080",
    "did:web:localhost%3A8080",
    "sha256:AAAA",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0",
    "Upper/Case",
    "a//b",
    "-tag",
    "2026-03-01 12:00:00Z",
    "2026-03-01T12:00:60Z",
    "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/io.atcr.repo.page/a b",
    "évil",
];

/// Field names the records use, so random objects often hit a real field.
const FIELDS: [&str; 24] = [
    "$type",
    "repository",
    "digest",
    "mediaType",
    "schemaVersion",
    "createdAt",
    "updatedAt",
    "holdDid",
    "layers",
    "manifests",
    "tag",
    "manifest",
    "manifestDigest",
    "subject",
    "did",
    "owner",
    "member",
    "role",
    "permissions",
    "ownerDid",
    "pullCount",
    "userDid",
    "size",
    "platform",
];

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(&HOSTILE[..]).prop_map(str::to_owned),
        prop::sample::select(&FIELDS[..]).prop_map(str::to_owned),
        Just(USER.to_owned()),
        Just(DIGEST.to_owned()),
        Just(TIME.to_owned()),
        "\\PC{0,24}",
        "[a-z0-9./_:-]{0,300}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        Just(json!(-1)),
        Just(json!(0)),
    ]
}

/// Any JSON value, a few levels deep, with keys that often name real fields.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((string(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn blob(mime: &str) -> Value {
    json!({"$type": "blob", "ref": {"$link": CID}, "mimeType": mime, "size": 1000})
}

fn descriptor(digest: &str) -> Value {
    json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 10, "digest": digest})
}

/// One valid record of every shape, with the key its collection needs.
fn valid_records() -> Vec<(&'static str, &'static str, Value)> {
    let manifest_uri = format!("at://{USER}/io.atcr.manifest/{TID}");
    let page_uri = format!("at://{USER}/io.atcr.repo.page/webapp");
    let child = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 5,
        "digest": LAYER_DIGEST, "platform": {"os": "linux", "architecture": "arm64",
        "variant": "v8", "osVersion": "1", "osFeatures": ["a"]}, "annotations": {"k": "v"}});
    vec![
        (
            "io.atcr.manifest",
            TID,
            json!({"$type": "io.atcr.manifest", "repository": "team/api",
            "digest": DIGEST, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "schemaVersion": 2, "createdAt": TIME, "holdDid": HOLD,
            "config": descriptor(LAYER_DIGEST), "subject": descriptor(DIGEST),
            "layers": [descriptor(LAYER_DIGEST), descriptor(DIGEST)],
            "annotations": {"org.opencontainers.image.title": "api"},
            "manifestBlob": blob("application/vnd.oci.image.manifest.v1+json")}),
        ),
        (
            "io.atcr.manifest",
            TID,
            json!({"$type": "io.atcr.manifest", "repository": "web",
            "digest": DIGEST, "mediaType": "application/vnd.oci.image.index.v1+json",
            "schemaVersion": 2, "createdAt": TIME, "holdEndpoint": "https://hold01.atcr.io",
            "manifests": [child]}),
        ),
        (
            "io.atcr.tag",
            TID,
            json!({"$type": "io.atcr.tag", "repository": "team/api",
            "tag": "v1.2", "manifest": manifest_uri, "manifestDigest": DIGEST,
            "mediaType": "application/vnd.oci.image.index.v1+json", "updatedAt": TIME}),
        ),
        (
            "io.atcr.tag",
            TID,
            json!({"$type": "io.atcr.tag", "repository": "app",
            "tag": "latest", "manifestDigest": DIGEST, "createdAt": TIME}),
        ),
        (
            "io.atcr.repo.page",
            "webapp",
            json!({"$type": "io.atcr.repo.page",
            "repository": "webapp", "createdAt": TIME, "updatedAt": TIME,
            "description": "# hi", "avatar": blob("image/png"), "userEdited": true}),
        ),
        (
            "io.atcr.sailor.star",
            TID,
            json!({"$type": "io.atcr.sailor.star",
            "subject": page_uri, "createdAt": TIME}),
        ),
        (
            "io.atcr.sailor.star",
            TID,
            json!({"$type": "io.atcr.sailor.star",
            "subject": {"did": OTHER_USER, "repository": "team/api"}, "createdAt": TIME}),
        ),
        (
            "io.atcr.sailor.profile",
            "self",
            json!({"$type": "io.atcr.sailor.profile",
            "createdAt": TIME, "updatedAt": TIME, "defaultHold": HOLD,
            "autoRemoveUntagged": true, "ociClient": "docker", "registryDomain": "atcr.io"}),
        ),
        (
            "io.atcr.hold.captain",
            "self",
            json!({"$type": "io.atcr.hold.captain",
            "owner": USER, "public": true, "allowAllCrew": false, "enableBlueskyPosts": true,
            "deployedAt": TIME, "region": "fra", "successor": "did:web:hold02.atcr.io"}),
        ),
        (
            "io.atcr.hold.crew",
            TID,
            json!({"$type": "io.atcr.hold.crew", "member": OTHER_USER,
            "role": "write", "permissions": ["blob:read", "blob:write"], "addedAt": TIME,
            "tier": "supporter"}),
        ),
        (
            "io.atcr.hold.layer",
            TID,
            json!({"$type": "io.atcr.hold.layer",
            "digest": LAYER_DIGEST, "size": 10, "mediaType": "application/octet-stream",
            "createdAt": TIME, "userDid": USER, "manifest": manifest_uri}),
        ),
        (
            "io.atcr.hold.layer",
            TID,
            json!({"$type": "io.atcr.hold.layer",
            "digest": LAYER_DIGEST, "size": 10, "mediaType": "application/octet-stream",
            "createdAt": TIME, "userDid": USER, "userHandle": "alice.bsky.social",
            "repository": "app"}),
        ),
        (
            "io.atcr.hold.stats",
            "mfrggzdfmztwq2lk",
            json!({"$type": "io.atcr.hold.stats",
            "ownerDid": USER, "repository": "team/api", "pullCount": 3, "pushCount": 1,
            "updatedAt": TIME, "lastPull": TIME, "lastPush": TIME}),
        ),
        (
            "io.atcr.hold.scan",
            TID,
            json!({"$type": "io.atcr.hold.scan",
            "manifest": manifest_uri, "repository": "team/api", "userDid": USER,
            "critical": 0, "high": 1, "medium": 2, "low": 3, "total": 6,
            "scannerVersion": "grype-0.92.0", "scannedAt": TIME, "status": "ok",
            "sbomBlob": blob("application/spdx+json")}),
        ),
        (
            "io.atcr.sailor.webhook",
            TID,
            json!({"$type": "io.atcr.sailor.webhook",
            "holdDid": HOLD, "triggers": 3, "privateCid": CID, "createdAt": TIME}),
        ),
        (
            "io.atcr.hold",
            "hold01",
            json!({"$type": "io.atcr.hold",
            "endpoint": "https://hold01.atcr.io", "owner": USER, "createdAt": TIME}),
        ),
        (
            "io.atcr.sailor.badge",
            TID,
            json!({"$type": "io.atcr.sailor.badge", "x": [1]}),
        ),
    ]
}

/// One edit of a record: at the node reached through `path` (indices into the members or items
/// of each level), drop it, replace it, lengthen it, or put a hostile string there.
#[derive(Debug, Clone)]
enum Mutation {
    Drop,
    Replace(Value),
    Lengthen(usize),
    Hostile(String),
}

fn mutation() -> impl Strategy<Value = (Vec<prop::sample::Index>, Mutation)> {
    let edit = prop_oneof![
        Just(Mutation::Drop),
        json_value().prop_map(Mutation::Replace),
        (1usize..400).prop_map(Mutation::Lengthen),
        string().prop_map(Mutation::Hostile),
    ];
    (
        prop::collection::vec(any::<prop::sample::Index>(), 1..4),
        edit,
    )
}

/// Applies `edit` at the node `path` leads to; the path stops early at a leaf.
fn mutate(value: &mut Value, path: &[prop::sample::Index], edit: &Mutation) {
    let Some((step, rest)) = path.split_first() else {
        return;
    };
    let child = match value {
        Value::Object(members) if !members.is_empty() => {
            let key = members.keys().nth(step.index(members.len())).cloned();
            let key = key.expect("an index below the length");
            if rest.is_empty() || !members[&key].is_object() && !members[&key].is_array() {
                return edit_member(members, &key, edit);
            }
            members.get_mut(&key)
        }
        Value::Array(items) if !items.is_empty() => {
            let index = step.index(items.len());
            if rest.is_empty() || !items[index].is_object() && !items[index].is_array() {
                return edit_item(items, index, edit);
            }
            items.get_mut(index)
        }
        _ => None,
    };
    if let Some(child) = child {
        mutate(child, rest, edit);
    }
}

fn edit_member(members: &mut Map<String, Value>, key: &str, edit: &Mutation) {
    match edit {
        Mutation::Drop => {
            members.remove(key);
        }
        _ => edited(members.get_mut(key).expect("present"), edit),
    }
}

fn edit_item(items: &mut Vec<Value>, index: usize, edit: &Mutation) {
    match edit {
        Mutation::Drop => {
            items.remove(index);
        }
        _ => edited(&mut items[index], edit),
    }
}

fn edited(value: &mut Value, edit: &Mutation) {
    match (edit, &mut *value) {
        (Mutation::Lengthen(by), Value::String(text)) => text.push_str(&"a".repeat(*by)),
        (Mutation::Lengthen(by), Value::Array(items)) if !items.is_empty() => {
            let first = items[0].clone();
            items.extend(std::iter::repeat_n(first, *by));
        }
        (Mutation::Replace(new), _) => *value = new.clone(),
        (Mutation::Hostile(text), _) => *value = Value::String(text.clone()),
        _ => {}
    }
}

/// Why an accepted record breaks a rule of `records.md` §4; `Ok` when it breaks none.
fn rules(
    (did, collection, rkey): (&str, &str, &str),
    value: &Value,
    accepted: &Validated,
) -> Result<(), String> {
    if value.get("$type").and_then(Value::as_str) != Some(collection) {
        return Err(format!("accepted without $type = {collection}"));
    }
    if !numbers_are_i64(value) {
        return Err("accepted a number that is not an i64".to_owned());
    }
    let self_keyed = ["io.atcr.sailor.profile", "io.atcr.hold.captain"].contains(&collection);
    if self_keyed && rkey != "self" {
        return Err(format!("accepted {collection} at key {rkey}"));
    }
    record_rules(did, &accepted.record)
}

fn numbers_are_i64(value: &Value) -> bool {
    match value {
        Value::Number(number) => number.is_i64(),
        Value::Array(items) => items.iter().all(numbers_are_i64),
        Value::Object(members) => members.values().all(numbers_are_i64),
        _ => true,
    }
}

fn record_rules(did: &str, record: &Record) -> Result<(), String> {
    match record {
        Record::Manifest(manifest) => {
            check(is_repository(&manifest.repository, 255), "repository")?;
            check(is_digest(&manifest.digest), "digest")?;
            check(manifest.media_type.len() <= 128, "mediaType")?;
            datetime(&manifest.created_at, Some(manifest.created_at_ms))?;
            optional_did(manifest.hold_did.as_deref(), "holdDid")?;
            let endpoint = manifest.hold_endpoint.as_deref();
            check(endpoint.is_none_or(is_http_url), "holdEndpoint")?;
            let descriptors = manifest.layers.iter().chain(&manifest.config);
            descriptors
                .chain(&manifest.subject)
                .try_for_each(descriptor_rules)?;
            manifest.manifests.iter().try_for_each(|child| {
                check(is_digest(&child.digest) && child.size >= 0, "manifests")?;
                check(child.media_type.len() <= 128, "manifests mediaType")?;
                let platform = child.platform.as_ref();
                check(platform.is_none_or(platform_rules), "platform")
            })
        }
        Record::Tag(tag) => {
            check(is_repository(&tag.repository, 255), "repository")?;
            check(is_tag(&tag.tag), "tag")?;
            let uri = tag.manifest.as_ref();
            let own = |uri: &super::AtUri| {
                uri.did == did && uri.collection == "io.atcr.manifest" && is_rkey(&uri.rkey)
            };
            check(uri.is_none_or(own), "manifest")?;
            check(
                tag.manifest_digest.as_deref().is_none_or(is_digest),
                "manifestDigest",
            )?;
            check(
                tag.media_type.as_ref().is_none_or(|m| m.len() <= 255),
                "mediaType",
            )?;
            tag.updated_at
                .as_deref()
                .map_or(Ok(()), |at| datetime(at, None))
        }
        Record::RepoPage(page) => {
            check(is_repository(&page.repository, 256), "repository")?;
            let description = page.description.as_ref();
            check(
                description.is_none_or(|d| d.len() <= 100_000),
                "description",
            )?;
            datetime(&page.created_at, None)?;
            datetime(&page.updated_at, None)
        }
        Record::Star(star) => {
            check(is_did(&star.owner), "subject owner")?;
            let subject = match &star.subject {
                super::StarSubject::Page { rkey } => is_rkey(rkey),
                super::StarSubject::Repository(name) => is_repository(name, 255),
            };
            check(subject, "subject")?;
            datetime(&star.created_at, Some(star.created_at_ms))
        }
        other => hold_rules(other),
    }
}

fn hold_rules(record: &Record) -> Result<(), String> {
    match record {
        Record::Captain(captain) => {
            check(is_did(&captain.owner), "owner")?;
            check(
                captain.region.as_ref().is_none_or(|r| r.len() <= 64),
                "region",
            )?;
            optional_did(captain.successor.as_deref(), "successor")?;
            datetime(&captain.deployed_at, None)
        }
        Record::Crew(crew) => {
            check(is_did(&crew.member), "member")?;
            check(crew.role.len() <= 32, "role")?;
            check(
                crew.permissions.iter().all(|p| p.len() <= 64),
                "permissions",
            )?;
            let tier = crew.tier.as_ref();
            check(tier.is_none_or(|t| !t.is_empty() && t.len() <= 32), "tier")?;
            datetime(&crew.added_at, None)
        }
        Record::Stats(stats) => {
            check(is_did(&stats.owner), "ownerDid")?;
            check(is_repository(&stats.repository, 256), "repository")?;
            check(stats.pull_count >= 0 && stats.push_count >= 0, "counts")?;
            datetime(&stats.updated_at, None)?;
            let mut times = stats.last_pull.iter().chain(&stats.last_push);
            times.try_for_each(|at| datetime(at, None))
        }
        Record::Scan(scan) => {
            check(
                is_did(&scan.owner) && is_rkey(&scan.manifest_rkey),
                "manifest",
            )?;
            check(is_repository(&scan.repository, 256), "repository")?;
            let counts = [scan.critical, scan.high, scan.medium, scan.low, scan.total];
            check(counts.iter().all(|count| *count >= 0), "counts")?;
            check(scan.status.len() <= 32, "status")?;
            datetime(&scan.scanned_at, None)
        }
        _ => Ok(()),
    }
}

fn descriptor_rules(descriptor: &Descriptor) -> Result<(), String> {
    check(is_digest(&descriptor.digest), "descriptor digest")?;
    check(descriptor.size >= 0, "descriptor size")?;
    check(descriptor.media_type.len() <= 128, "descriptor mediaType")
}

fn platform_rules(platform: &super::Platform) -> bool {
    platform.os.len() <= 32
        && platform.architecture.len() <= 32
        && platform.variant.as_ref().is_none_or(|v| v.len() <= 32)
        && platform.os_version.as_ref().is_none_or(|v| v.len() <= 64)
}

fn optional_did(did: Option<&str>, field: &str) -> Result<(), String> {
    check(did.is_none_or(is_did), field)
}

/// A datetime the syntax accepts, with the milliseconds the record kept (when it keeps them).
fn datetime(text: &str, ms: Option<i64>) -> Result<(), String> {
    match (parse_datetime_ms(text), ms) {
        (None, _) => Err(format!("accepted datetime {text:?}")),
        (Some(parsed), Some(kept)) if parsed != kept => Err(format!("{text:?} kept as {kept}")),
        _ => Ok(()),
    }
}

fn check(holds: bool, field: &str) -> Result<(), String> {
    if holds {
        Ok(())
    } else {
        Err(format!("accepted an invalid {field}"))
    }
}

fn rkey() -> impl Strategy<Value = String> {
    prop_oneof![Just(TID.to_owned()), Just("self".to_owned()), string()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn random_json_never_panics_and_what_passes_follows_the_rules(
        collection in prop::sample::select(&COLLECTIONS[..]),
        rkey in rkey(),
        mut value in json_value(),
        typed in any::<bool>(),
    ) {
        if let (true, Value::Object(members)) = (typed, &mut value) {
            members.insert("$type".to_owned(), json!(collection));
        }
        if let Ok(accepted) = validate(USER, collection, &rkey, &value) {
            let broken = rules((USER, collection, &rkey), &value, &accepted);
            prop_assert!(broken.is_ok(), "{broken:?}: {value}");
        }
    }

    #[test]
    fn mutated_valid_records_never_panic_and_what_passes_follows_the_rules(
        record in prop::sample::select(valid_records()),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let (collection, rkey, mut value) = record;
        for (path, edit) in &mutations {
            mutate(&mut value, path, edit);
        }
        if let Ok(accepted) = validate(USER, collection, rkey, &value) {
            let broken = rules((USER, collection, rkey), &value, &accepted);
            prop_assert!(broken.is_ok(), "{broken:?}: {value}");
        }
    }
}

#[test]
fn every_valid_record_passes_unmutated() {
    for (collection, rkey, value) in valid_records() {
        let accepted = validate(USER, collection, rkey, &value);
        let accepted = accepted.unwrap_or_else(|error| panic!("{collection}: {error}"));
        assert_eq!(rules((USER, collection, rkey), &value, &accepted), Ok(()));
        assert!(
            accepted.notes.is_empty(),
            "{collection}: {:?}",
            accepted.notes
        );
    }
}
