//! Property tests of the path from frame bytes to a plan: random bytes and mutated valid
//! envelopes through [`event::decode`] and [`Indexer::plan`] never panic, and every key an
//! accepted plan names (main, resolve and completed steps, and the follow-ups they emit) lies in
//! `atcr:{<valid DID>}:` or is a global key, in the slot of its step, with no whitespace, control
//! character, `*` or stray brace; the other names the Lua script builds keys from are as clean.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};

use super::program::TtlSecs;
use super::{FollowUp, Indexer, Main, Plan, Slot, Step};
use crate::event;
use crate::records::syntax::is_did;

/// Cases per property: enough to reach every collection and kind, fast on two cores.
const CASES: u32 = 512;

const OWNER: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";
const HOLD: &str = "did:web:hold01.atcr.io";
const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const DIGEST_HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const TIME: &str = "2026-03-01T12:00:00.000Z";
const TID: &str = "3lbtcx6qfqk2c";

/// Strings built to break key names, and near misses of valid identifiers.
const HOSTILE: [&str; 20] = [
    "",
    " ",
    "{x}",
    "a:b",
    "a\nb",
    "*",
    "a b",
    "\u{0}",
    "\u{1b}[31m",
    "..",
    "did:plc:{aaaaaaaaaaaaaaaaaaaaaa}",
    "did:plc:aaaaaaaaaaaa*aaaaaaaaaaa",
    "did:web:evil.example:8080",
    "did:web:{evil}.example",
    "io.atcr.{x}",
    "io.atcr.ta g",
    "a}b",
    "team/{api}",
    "v1:latest",
    "sha256:{x}",
];

/// The `time_us` of the fixtures.
const TIME_US: i64 = 1_772_460_454_312_518;

fn ttl() -> TtlSecs {
    TtlSecs {
        record: 3600,
        index: 86_400,
        aggregate: 0,
        tombstone: 172_800,
    }
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(&HOSTILE[..]).prop_map(str::to_owned),
        "\\PC{0,16}",
        "[a-z0-9.:{}*/ -]{0,40}",
    ]
}

/// Mostly valid, sometimes hostile.
fn either(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        9 => prop::sample::select(valid).prop_map(str::to_owned),
        1 => hostile(),
    ]
}

const DIDS: [&str; 3] = [OWNER, OTHER, HOLD];
const KINDS: [&str; 3] = ["commit", "identity", "account"];
const OPERATIONS: [&str; 3] = ["create", "update", "delete"];
const RKEYS: [&str; 6] = [TID, "self", DIGEST_HEX, "webapp", "a:b~c", "team-api"];
const REVS: [&str; 2] = [TID, "3mg3ghvwbz225"];
const STATUSES: [&str; 5] = ["deleted", "takendown", "suspended", "deactivated", "other"];

/// A record of one collection, valid unless an edit breaks it, with its collection.
fn record() -> impl Strategy<Value = (String, Value)> {
    let owner_uri = format!("at://{OWNER}/io.atcr.manifest/{DIGEST_HEX}");
    let page_uri = format!("at://{OWNER}/io.atcr.repo.page/webapp");
    let layer = json!({"mediaType": "x", "size": 1, "digest": DIGEST});
    let records = vec![
        json!({"$type": "io.atcr.manifest", "repository": "team/api", "digest": DIGEST,
            "mediaType": "application/vnd.oci.image.index.v1+json", "schemaVersion": 2,
            "createdAt": TIME, "holdDid": HOLD, "layers": [layer],
            "manifests": [{"mediaType": "x", "size": 1, "digest": DIGEST,
                "platform": {"os": "linux", "architecture": "amd64"}}],
            "annotations": {"a": "b"}}),
        json!({"$type": "io.atcr.tag", "repository": "team/api", "tag": "v1",
            "manifest": owner_uri, "manifestDigest": DIGEST, "updatedAt": TIME}),
        json!({"$type": "io.atcr.repo.page", "repository": "webapp", "createdAt": TIME,
            "updatedAt": TIME, "description": "hi"}),
        json!({"$type": "io.atcr.sailor.star", "subject": page_uri, "createdAt": TIME}),
        json!({"$type": "io.atcr.sailor.star", "subject": {"did": OWNER, "repository": "a/b"},
            "createdAt": TIME}),
        json!({"$type": "io.atcr.hold.captain", "owner": OWNER, "public": true,
            "allowAllCrew": false, "enableBlueskyPosts": false, "deployedAt": TIME}),
        json!({"$type": "io.atcr.hold.crew", "member": OTHER, "role": "write",
            "permissions": ["blob:read"], "addedAt": TIME}),
        json!({"$type": "io.atcr.hold.stats", "ownerDid": OWNER, "repository": "team/api",
            "pullCount": 1, "pushCount": 2, "updatedAt": TIME}),
        json!({"$type": "io.atcr.hold.scan", "manifest": owner_uri, "repository": "team/api",
            "userDid": OWNER, "critical": 0, "high": 0, "medium": 0, "low": 0, "total": 0,
            "scannerVersion": "v", "scannedAt": TIME}),
        json!({"$type": "io.atcr.sailor.profile", "createdAt": TIME}),
        json!({"$type": "io.atcr.sailor.badge", "x": 1}),
    ];
    let edit = prop::option::of((
        prop::sample::select(vec![
            "repository",
            "tag",
            "digest",
            "subject",
            "member",
            "owner",
            "ownerDid",
            "manifest",
            "$type",
        ]),
        hostile(),
    ));
    (prop::sample::select(records), edit).prop_map(|(mut record, edit)| {
        if let Some((field, text)) = edit {
            record[field] = json!(text);
        }
        let collection = record["$type"].as_str().unwrap_or("io.atcr.x").to_owned();
        (collection, record)
    })
}

/// An envelope, mostly well formed, whose every part is sometimes hostile.
fn envelope() -> impl Strategy<Value = Value> {
    let parts = (
        either(&DIDS),
        prop_oneof![9 => Just(TIME_US), 1 => any::<i64>()],
        either(&KINDS),
        either(&OPERATIONS),
        record(),
        prop::option::of(hostile()),
        either(&RKEYS),
        either(&REVS),
    );
    (parts, either(&STATUSES), any::<bool>()).prop_map(
        |(
            (did, time_us, kind, operation, (collection, record), other, rkey, rev),
            status,
            active,
        )| {
            json!({"did": did, "time_us": time_us, "kind": kind,
                "commit": {"rev": rev, "operation": operation,
                    "collection": other.unwrap_or(collection), "rkey": rkey,
                    "record": record, "cid": "bafyreic"},
                "identity": {"did": did, "handle": "alice.test"},
                "account": {"active": active, "status": status}})
        },
    )
}

/// Byte-level damage to an encoded envelope: a byte replaced, or the text cut.
fn damage() -> impl Strategy<Value = Option<(prop::sample::Index, u8, bool)>> {
    prop::option::of((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()))
}

fn damaged(mut bytes: Vec<u8>, damage: Option<(prop::sample::Index, u8, bool)>) -> Vec<u8> {
    if let Some((at, byte, cut)) = damage {
        let at = at
            .index(bytes.len().max(1))
            .min(bytes.len().saturating_sub(1));
        if cut {
            bytes.truncate(at);
        } else if let Some(slot) = bytes.get_mut(at) {
            *slot = byte;
        }
    }
    bytes
}

/// Every step a plan may run: its resolve and main steps, the main step completed with and
/// without an answer, and the follow-ups those emit.
fn steps(indexer: &Indexer, plan: &Plan) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = plan.resolve.iter().cloned().collect();
    match &plan.main {
        Main::Ready(step) => steps.push(step.clone()),
        Main::Star(pending) => {
            steps.push(indexer.complete_star(pending, None));
            steps.push(indexer.complete_star(pending, Some("team/api")));
        }
        Main::Scan(pending) => {
            steps.push(indexer.complete_scan(pending, None));
            steps.push(indexer.complete_scan(pending, Some(DIGEST)));
        }
        Main::Nothing => {}
    }
    let mut follow_ups = Vec::new();
    for op in steps.iter().flat_map(|step| &step.program.ops) {
        let program = serde_json::to_value(op).map_err(|error| error.to_string())?;
        if program["op"] == "emit" {
            let follow: FollowUp = serde_json::from_value(program["follow"].clone())
                .map_err(|error| format!("an emitted follow-up does not parse: {error}"))?;
            follow_ups.push(indexer.follow_up(&follow));
        }
    }
    steps.extend(follow_ups);
    Ok(steps)
}

/// Why a step breaks the key rules; `Ok` when it keeps them.
fn step_rules(step: &Step) -> Result<(), String> {
    let base = match &step.slot {
        Slot::Account(did) if is_did(did) => format!("atcr:{{{did}}}:"),
        Slot::Account(did) => return Err(format!("a step in the slot of {did:?}")),
        Slot::Global => String::new(),
    };
    let program = serde_json::to_value(&step.program).map_err(|error| error.to_string())?;
    let mut names = Vec::new();
    collect(&program, &mut names);
    for (member, text) in names {
        name_rules(&base, member, &text).map_err(|why| format!("{why} in {program}"))?;
    }
    Ok(())
}

/// The members of a program that name keys or parts of key names, with their values.
fn collect(value: &Value, names: &mut Vec<(&'static str, String)>) {
    const NAMES: [&str; 15] = [
        "key",
        "base",
        "pattern",
        "did",
        "owner",
        "hold",
        "starrer",
        "repository",
        "collection",
        "rkey",
        "manifest_rkey",
        "digest",
        "fallback",
        "field",
        "member",
    ];
    match value {
        Value::Object(members) => {
            for (name, member) in members {
                match (NAMES.iter().find(|known| **known == name), member) {
                    (Some(known), Value::String(text)) => names.push((known, text.clone())),
                    _ => collect(member, names),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect(item, names)),
        _ => {}
    }
}

fn name_rules(base: &str, member: &str, text: &str) -> Result<(), String> {
    let clean = |text: &str| {
        !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "*{}".contains(c))
    };
    match member {
        "key" => key_rules(base, text),
        "base" if text == base => Ok(()),
        "pattern" if text == format!("{base}*") && !base.is_empty() => Ok(()),
        "did" if base.is_empty() && text.is_empty() => Ok(()),
        "did" | "owner" | "hold" | "starrer" if is_did(text) => Ok(()),
        "repository" | "collection" | "rkey" | "manifest_rkey" | "digest" | "fallback"
        | "field" | "member"
            if clean(text) && !text.is_empty() =>
        {
            Ok(())
        }
        _ => Err(format!("{member} = {text:?} (slot base {base:?})")),
    }
}

/// A key lies in its step's slot, or is `recent:pushes` in the global slot, and has nothing
/// after the hash tag that could break a name.
fn key_rules(base: &str, key: &str) -> Result<(), String> {
    if base.is_empty() {
        return if key == "atcr:recent:pushes" {
            Ok(())
        } else {
            Err(format!("global key {key:?}"))
        };
    }
    let Some(rest) = key.strip_prefix(base) else {
        return Err(format!("key {key:?} outside the slot {base:?}"));
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || "*{}".contains(c);
    if rest.is_empty() || rest.chars().any(bad) {
        return Err(format!("key {key:?}"));
    }
    Ok(())
}

/// Decodes `bytes`; for an event, plans it and checks every step.
fn decode_and_plan(bytes: &[u8]) -> Result<(), String> {
    let Ok(event) = event::decode(bytes, false) else {
        return Ok(());
    };
    if !is_did(&event.did) {
        return Err(format!("decoded an event of DID {:?}", event.did));
    }
    let indexer = Indexer::new("atcr", ttl(), 1000);
    let plan = indexer.plan(&event);
    let slots = plan.main_slot.iter().chain(&plan.follow_slots);
    for slot in slots {
        if let Slot::Account(did) = slot {
            if !is_did(did) {
                return Err(format!("a plan slot of {did:?}"));
            }
        }
    }
    steps(&indexer, &plan)?.iter().try_for_each(step_rules)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let broken = decode_and_plan(&bytes);
        prop_assert!(broken.is_ok(), "{broken:?}");
    }

    #[test]
    fn envelopes_plan_only_clean_keys(envelope in envelope(), damage in damage()) {
        let bytes = damaged(envelope.to_string().into_bytes(), damage);
        let broken = decode_and_plan(&bytes);
        prop_assert!(broken.is_ok(), "{broken:?}: {}", String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn the_rules_hold_for_a_plan_of_every_collection() {
    let indexer = Indexer::new("atcr", ttl(), 1000);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut planned = 0;
    for _ in 0..200 {
        let envelope = envelope().new_tree(&mut runner).expect("a value").current();
        let Ok(event) = event::decode(envelope.to_string().as_bytes(), false) else {
            continue;
        };
        let plan = indexer.plan(&event);
        let steps = steps(&indexer, &plan).expect("steps");
        steps
            .iter()
            .for_each(|step| assert_eq!(step_rules(step), Ok(())));
        planned += usize::from(!steps.is_empty());
    }
    assert!(
        planned > 50,
        "only {planned} of 200 envelopes planned a step"
    );
}
