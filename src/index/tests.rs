//! Unit tests of the planner: which steps, keys, values and classes each event produces.

use super::*;
use crate::event::{self, Event};

const OWNER: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";
const HOLD: &str = "did:web:hold01.atcr.io";
const REV: &str = "3mg3ghvwbz225";
const TTL: TtlSecs = TtlSecs {
    record: 3600,
    index: 86400,
    aggregate: 0,
    tombstone: 172800,
};

fn digest(fill: char) -> String {
    format!("sha256:{}", fill.to_string().repeat(64))
}

fn indexer() -> Indexer {
    Indexer::new("atcr", TTL, 1000)
}

fn commit(did: &str, op: &str, collection: &str, rkey: &str, record: serde_json::Value) -> Event {
    let mut commit = serde_json::json!({
        "rev": REV, "operation": op, "collection": collection, "rkey": rkey,
    });
    if op != "delete" {
        commit["record"] = record;
        commit["cid"] = "bafyreiczfllm2otll5ut3wno7galvuidpvzclqhuthp536eamad4ocd6zq".into();
    }
    let json = serde_json::json!({"did": did, "time_us": 1_772_460_454_312_518i64,
        "kind": "commit", "commit": commit});
    event::decode(json.to_string().as_bytes(), false).expect("test events are valid envelopes")
}

fn image(repository: &str) -> serde_json::Value {
    serde_json::json!({
        "$type": "io.atcr.manifest", "repository": repository, "digest": digest('a'),
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "schemaVersion": 2,
        "createdAt": "2026-03-02T14:07:34Z", "holdDid": HOLD,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 7,
            "digest": digest('c')},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 10,
            "digest": digest('1')}],
        "annotations": {"org.opencontainers.image.title": "web"},
    })
}

fn ready(plan: &Plan) -> &Step {
    match &plan.main {
        Main::Ready(step) => step,
        other => panic!("expected a ready main step, got {other:?}"),
    }
}

fn op_named<'a>(step: &'a Step, name: &str) -> Vec<&'a Op> {
    step.program
        .ops
        .iter()
        .filter(|op| serde_json::to_value(op).expect("ops serialise")["op"] == name)
        .collect()
}

fn set_value<'a>(step: &'a Step, key: &str) -> &'a str {
    step.program
        .ops
        .iter()
        .find_map(|op| match op {
            Op::Set { key: k, value, .. } if k == key => Some(value.as_str()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no SET of {key} in {:#?}", step.program.ops))
}

#[test]
fn an_image_manifest_writes_entry_layers_list_locator_and_record() {
    let plan = indexer().plan(&commit(
        OWNER,
        "create",
        nsid::MANIFEST,
        "aaaa",
        image("web"),
    ));
    assert_eq!(plan.outcome, Outcome::Put);
    let step = ready(&plan);
    assert_eq!(step.slot, Slot::Account(OWNER.into()));
    let guard = step.program.guard.as_ref().expect("guarded");
    assert_eq!(
        guard.key,
        format!("atcr:{{{OWNER}}}:rec:io.atcr.manifest:aaaa")
    );
    let entry: serde_json::Value = serde_json::from_str(set_value(
        step,
        &format!("atcr:{{{OWNER}}}:manifest:{}", digest('a')),
    ))
    .expect("entry is JSON");
    assert_eq!(entry["repository"], "web");
    assert_eq!(entry["holdDid"], HOLD);
    assert_eq!(entry["config"]["size"], 7);
    assert_eq!(entry["subject"], serde_json::Value::Null);
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.title"],
        "web"
    );
    let layers = set_value(
        step,
        &format!("atcr:{{{OWNER}}}:manifest:{}:layers", digest('a')),
    );
    assert_eq!(
        layers,
        format!(
            r#"[{{"digest":"{}","size":10,"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"}}]"#,
            digest('1')
        )
    );
    assert!(op_named(step, "zadd").iter().any(|op| matches!(op,
        Op::Zadd { key, score, ttl: 86400, .. }
            if key.ends_with(":repo:web:manifests") && score == "1772460454000")));
    assert_eq!(plan.follow_slots, vec![Slot::Global]);
}

#[test]
fn an_index_lists_references_and_parents() {
    let mut record = image("web");
    record["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
    record["layers"] = serde_json::Value::Null;
    record.as_object_mut().expect("object").remove("layers");
    record["manifests"] = serde_json::json!([
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 5,
         "digest": digest('b'), "platform": {"os": "linux", "architecture": "arm64",
         "variant": "v8"}},
    ]);
    let plan = indexer().plan(&commit(OWNER, "create", nsid::MANIFEST, "aaaa", record));
    let step = ready(&plan);
    let refs = set_value(
        step,
        &format!("atcr:{{{OWNER}}}:manifest:{}:refs", digest('a')),
    );
    let refs: serde_json::Value = serde_json::from_str(refs).expect("JSON");
    assert_eq!(refs[0]["platform"]["architecture"], "arm64");
    assert_eq!(refs[0]["platform"]["osVersion"], serde_json::Value::Null);
    assert!(op_named(step, "sadd").iter().any(|op| matches!(op,
        Op::Sadd { key, member, .. }
            if key.ends_with(&format!("manifest:{}:parents", digest('b'))) && *member == digest('a'))));
}

#[test]
fn a_tag_resolves_its_digest_through_the_manifest_rkey() {
    let uri = format!("at://{OWNER}/io.atcr.manifest/aaaa");
    let record = serde_json::json!({"$type": "io.atcr.tag", "repository": "web", "tag": "latest",
        "manifest": uri, "updatedAt": "2026-03-02T14:07:34Z"});
    let plan = indexer().plan(&commit(OWNER, "create", nsid::TAG, "3mg3ghvwazs2f", record));
    let puts = op_named(ready(&plan), "tag_put");
    let Op::TagPut(put) = puts[0] else {
        panic!("not a tag put")
    };
    assert_eq!(put.manifest_rkey.as_deref(), Some("aaaa"));
    assert_eq!(put.fallback, None);
    let entry: serde_json::Value =
        serde_json::from_str(&format!(r#"{{"digest":null{}"#, put.tail)).expect("JSON");
    assert_eq!(entry["manifest"], uri);
    assert_eq!(entry["rkey"], "3mg3ghvwazs2f");
}

#[test]
fn a_legacy_tag_falls_back_to_its_manifest_digest() {
    let record = serde_json::json!({"$type": "io.atcr.tag", "repository": "web", "tag": "v1",
        "manifestDigest": digest('a'), "createdAt": "2025-12-02T14:07:34Z"});
    let plan = indexer().plan(&commit(OWNER, "create", nsid::TAG, "t1", record));
    let Op::TagPut(put) = op_named(ready(&plan), "tag_put")[0] else {
        panic!("no tag put")
    };
    assert_eq!(put.fallback, Some(digest('a')));
    assert!(put.tail.contains(r#""updatedAt":"2025-12-02T14:07:34Z""#));
}

#[test]
fn a_star_on_a_page_resolves_the_name_in_the_owner_slot_first() {
    let record = serde_json::json!({"$type": "io.atcr.sailor.star",
        "subject": format!("at://{OWNER}/io.atcr.repo.page/web"), "createdAt": "2026-03-02T14:07:34Z"});
    let indexer = indexer();
    let plan = indexer.plan(&commit(OTHER, "create", nsid::STAR, "s1", record));
    let resolve = plan.resolve.as_ref().expect("resolve step");
    assert_eq!(resolve.slot, Slot::Account(OWNER.into()));
    assert_eq!(
        resolve.program.ops,
        vec![Op::ResolvePage { rkey: "web".into() }]
    );
    let Main::Star(pending) = &plan.main else {
        panic!("pending star")
    };
    let step = indexer.complete_star(pending, Some("team/web"));
    assert_eq!(step.slot, Slot::Account(OTHER.into()));
    assert!(op_named(&step, "zadd").iter().any(|op| matches!(op,
        Op::Zadd { member, ttl: 0, .. } if *member == format!("{OWNER}/team/web"))));
    let Op::Emit { follow } = op_named(&step, "emit")[0] else {
        panic!("no emit")
    };
    assert_eq!(follow["op"], "star_add");
    assert_eq!(follow["repository"], "team/web");
    assert_eq!(plan.follow_slots, vec![Slot::Account(OWNER.into())]);
}

#[test]
fn a_star_whose_page_key_is_no_repository_name_is_only_cached() {
    let record = serde_json::json!({"$type": "io.atcr.sailor.star",
        "subject": format!("at://{OWNER}/io.atcr.repo.page/Web:X"), "createdAt": "2026-03-02T14:07:34Z"});
    let indexer = indexer();
    let plan = indexer.plan(&commit(OTHER, "create", nsid::STAR, "s1", record));
    let Main::Star(pending) = &plan.main else {
        panic!("pending star")
    };
    let step = indexer.complete_star(pending, None);
    assert_eq!(
        step.program.ops.len(),
        2,
        "only the record and the user check: {:?}",
        step.program.ops
    );
}

#[test]
fn an_old_star_subject_needs_no_resolve_step() {
    let record = serde_json::json!({"$type": "io.atcr.sailor.star",
        "subject": {"did": OWNER, "repository": "web"}, "createdAt": "2026-03-02T14:07:34Z"});
    let plan = indexer().plan(&commit(OTHER, "create", nsid::STAR, "s1", record));
    assert!(plan.resolve.is_none());
    assert!(!op_named(ready(&plan), "emit").is_empty());
}

#[test]
fn deletes_leave_a_tombstone_and_star_deletes_end_a_batch_group() {
    let plan = indexer().plan(&commit(
        OTHER,
        "delete",
        nsid::STAR,
        "s1",
        serde_json::Value::Null,
    ));
    assert_eq!(plan.outcome, Outcome::Delete);
    assert!(plan.follows_unknown_slot);
    let Op::Tombstone { head, ttl, .. } = &ready(&plan).program.ops[0] else {
        panic!("no tombstone")
    };
    assert_eq!(*ttl, 172800);
    assert!(head.starts_with(&format!(
        r#"{{"uri":"at://{OTHER}/io.atcr.sailor.star/s1","rev":"{REV}""#
    )));
}

#[test]
fn an_invalid_record_is_applied_as_a_delete_at_its_rev() {
    let mut record = image("web");
    record["digest"] = "sha256:UPPER".into();
    let plan = indexer().plan(&commit(OWNER, "update", nsid::MANIFEST, "aaaa", record));
    let Outcome::Rejected(rejection) = &plan.outcome else {
        panic!("not rejected")
    };
    assert_eq!(rejection.reason, Reason::Digest);
    let step = ready(&plan);
    assert!(matches!(step.program.ops[0], Op::Tombstone { .. }));
    assert_eq!(
        step.program.guard.as_ref().map(|guard| guard.rev.as_str()),
        Some(REV)
    );
}

#[test]
fn a_scan_resolves_its_digest_with_the_key_as_fallback() {
    let hex = "b".repeat(64);
    let record = serde_json::json!({"$type": "io.atcr.hold.scan",
        "manifest": format!("at://{OWNER}/io.atcr.manifest/{hex}"), "repository": "web",
        "userDid": OWNER, "critical": 1, "high": 2, "medium": 3, "low": 4, "total": 10,
        "scannerVersion": "grype-1", "scannedAt": "2026-03-02T14:07:34Z"});
    let indexer = indexer();
    let plan = indexer.plan(&commit(HOLD, "create", nsid::SCAN, &hex, record));
    let resolve = plan.resolve.as_ref().expect("resolve");
    assert_eq!(
        resolve.program.ops,
        vec![Op::ResolveManifest {
            rkey: hex.clone(),
            fallback: Some(digest('b'))
        }]
    );
    let Main::Scan(pending) = &plan.main else {
        panic!("pending scan")
    };
    let step = indexer.complete_scan(pending, Some(&digest('b')));
    let Op::Emit { follow } = op_named(&step, "emit")[0] else {
        panic!("no emit")
    };
    let value: serde_json::Value =
        serde_json::from_str(follow["value"].as_str().expect("text")).expect("JSON");
    assert_eq!(value["hold"], HOLD);
    assert_eq!(value["status"], "ok");
}

#[test]
fn an_identity_event_only_asks_for_the_user_key_ttl() {
    let json = format!(r#"{{"did":"{OWNER}","time_us":9,"kind":"identity","identity":{{}}}}"#);
    let plan = indexer().plan(&event::decode(json.as_bytes(), false).expect("valid"));
    assert_eq!(ready(&plan).program.ops, vec![Op::UserTtl]);
    assert_eq!(plan.outcome, Outcome::Identity);
    assert_eq!(plan.user_check, Some(UserCheck::Identity));
}

fn account_event(active: bool, status: Option<&str>) -> Plan {
    let status = status.map_or(String::new(), |status| format!(r#","status":"{status}""#));
    let json = format!(
        r#"{{"did":"{OWNER}","time_us":9,"kind":"account","account":{{"active":{active}{status}}}}}"#
    );
    indexer().plan(&event::decode(json.as_bytes(), false).expect("valid"))
}

#[test]
fn a_deleted_account_is_purged_by_pattern() {
    for status in ["deleted", "takendown", "suspended", "deactivated"] {
        let plan = account_event(false, Some(status));
        assert_eq!(
            plan.outcome,
            Outcome::Account {
                active: false,
                purged: true
            }
        );
        let pattern = format!("atcr:{{{OWNER}}}:*");
        assert_eq!(ready(&plan).program.ops, vec![Op::PurgeAccount { pattern }]);
        assert!(
            plan.follows_unknown_slot,
            "star removals go to other owners"
        );
    }
}

#[test]
fn other_account_events_write_nothing() {
    for (active, status) in [
        (true, None),
        (false, Some("desynchronized")),
        (false, Some("throttled")),
    ] {
        let plan = account_event(active, status);
        assert!(matches!(plan.main, Main::Nothing), "{status:?}");
        assert_eq!(
            plan.outcome,
            Outcome::Account {
                active,
                purged: false
            }
        );
    }
}

#[test]
fn glob_characters_are_escaped() {
    assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
}

#[test]
fn unknown_collections_are_cached_raw_with_a_bounded_label() {
    let record = serde_json::json!({"$type": "io.atcr.future.thing", "x": "y"});
    let plan = indexer().plan(&commit(
        OWNER,
        "create",
        "io.atcr.future.thing",
        "k",
        record,
    ));
    assert_eq!(plan.collection, "other");
    let step = ready(&plan);
    assert_eq!(step.program.ops.len(), 2, "the record and the user check");
    let record = set_value(
        step,
        &format!("atcr:{{{OWNER}}}:rec:io.atcr.future.thing:k"),
    );
    assert!(record.ends_with(r#""value":{"$type":"io.atcr.future.thing","x":"y"}}"#));
}

#[test]
fn follow_ups_land_in_the_owner_or_global_slot() {
    let indexer = indexer();
    let step = indexer.follow_up(&FollowUp::StatsSet {
        owner: OWNER.into(),
        repository: "web".into(),
        hold: HOLD.into(),
        value: "{}".into(),
    });
    assert_eq!(step.slot, Slot::Account(OWNER.into()));
    assert!(step.program.guard.is_none());
    let recent = indexer.follow_up(&FollowUp::Recent {
        did: OWNER.into(),
        repository: "web".into(),
        score: None,
    });
    assert_eq!(recent.slot, Slot::Global);
    assert!(matches!(&recent.program.ops[0],
        Op::Recent { key, member, score: None, keep: 1000 }
            if key == "atcr:recent:pushes" && *member == format!("{OWNER}/web")));
}
