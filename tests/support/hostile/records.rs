//! Record cases: records in valid envelopes that fail validation, counted under
//! `record.<reason>` and applied as a delete that leaves a tombstone. Wrong types and shapes,
//! missing fields, JSON edge cases (1e400, 2^64, deep nesting, 100,000-element arrays), strings
//! past their lexicon limits, and DIDs, repositories, tags, digests and at-uris built to break
//! key names.

use serde_json::json;

use super::super::events::*;
use super::names::*;
use super::{length_or, valid_manifest, valid_scan, valid_tag, with, without, Builder};
use super::{BADGE, DEEP, HOSTILE_DID, WEBHOOK, WIDE};

impl Builder {
    /// Records of the wrong shape, type or syntax, and the JSON edge cases inside records.
    pub(super) fn record_shape_cases(&mut self) {
        let tag = valid_tag();
        self.record("no_type", TAG, without(&tag, "$type"), "missing");
        self.record(
            "other_type",
            TAG,
            with(&tag, "$type", json!(MANIFEST)),
            "type",
        );
        self.record("type_number", TAG, with(&tag, "$type", json!(7)), "type");
        self.record("tag_number", TAG, with(&tag, "tag", json!(5)), "type");
        self.record("no_tag", TAG, without(&tag, "tag"), "missing");
        let manifest = valid_manifest();
        let version = with(&manifest, "schemaVersion", json!("2"));
        self.record("schema_version_string", MANIFEST, version, "type");
        self.record(
            "no_digest",
            MANIFEST,
            without(&manifest, "digest"),
            "missing",
        );
        for (name, time) in [
            ("space", "2026-03-01 12:00:00Z"),
            ("no_zone", "2026-03-01T12:00:00"),
            ("leap_second", "2026-03-01T12:00:60Z"),
            ("unknown_offset", "2026-03-01T12:00:00-00:00"),
            ("evil", "evil"),
        ] {
            let record = with(&manifest, "createdAt", json!(time));
            self.record(&format!("created_at_{name}"), MANIFEST, record, "datetime");
        }
        let neither = json!({"$type": LAYER, "digest": digest("layer"), "size": 1,
            "mediaType": OCI_LAYER, "createdAt": "2026-03-01T00:00:00Z", "userDid": HOSTILE_DID});
        self.record("layer_of_neither_shape", LAYER, neither, "shape");
        let profile = sailor_profile(None, "2026-03-01T00:00:00Z");
        self.record_at(
            "profile_not_self",
            PROFILE,
            "notself",
            profile.to_string(),
            "rkey",
        );
        let captain = hold_captain(HOSTILE_DID, true, "2026-03-01T00:00:00Z");
        self.record_at(
            "captain_not_self",
            CAPTAIN,
            "notself",
            captain.to_string(),
            "rkey",
        );
        self.json_edge_records();
    }

    /// Numbers and nesting inside an otherwise valid record.
    fn json_edge_records(&mut self) {
        let webhook = r#"{"$type":"io.atcr.sailor.webhook","holdDid":"did:web:hold01.atcr.io","triggers":1,"privateCid":"bafy","createdAt":"2026-03-01T00:00:00Z","extra":"#;
        let numbers = [
            ("1e400", "json"),
            ("-1e400", "json"),
            ("18446744073709551616", "integer"),
            ("18446744073709551615", "integer"),
            ("-9223372036854775809", "integer"),
            ("1.5", "integer"),
            ("1e2", "integer"),
        ];
        for (number, reason) in numbers {
            let text = format!("{webhook}{number}}}");
            self.record_text(&format!("number_{number}"), WEBHOOK, text, reason);
        }
        for depth in [200, DEEP] {
            let text = format!("{webhook}{}{}}}", "[".repeat(depth), "]".repeat(depth));
            self.record_text(&format!("nesting_{depth}"), WEBHOOK, text, "json");
        }
        let wide = format!("{webhook}[{}0.5]}}", "1,".repeat(WIDE));
        self.record_text("wide_array_ending_in_a_float", WEBHOOK, wide, "integer");
        let badge = r#"{"$type":"io.atcr.sailor.badge","score":0.5}"#.to_owned();
        self.record_text("unknown_collection_float", BADGE, badge, "integer");
    }

    /// DIDs, repositories, tags, digests and at-uris built to break key names.
    pub(super) fn record_key_name_cases(&mut self) {
        for (name, repository) in hostile_repositories() {
            let reason = length_or(&repository, 255, "repository");
            let manifest = with(&valid_manifest(), "repository", json!(repository));
            self.record(&format!("manifest_{name}"), MANIFEST, manifest, reason);
            let tag = with(&valid_tag(), "repository", json!(repository));
            self.record(&format!("tag_{name}"), TAG, tag, reason);
            let reason = length_or(&repository, 256, "repository");
            let page = repo_page(&repository, "readme", "2026-03-01T00:00:00Z");
            self.record(&format!("page_{name}"), REPO_PAGE, page, reason);
            let stats = hold_stats(&did_plc(1), &repository, 1, 1, "2026-03-01T00:00:00Z");
            self.record(&format!("stats_{name}"), STATS, stats, reason);
            let star = star_old(&did_plc(1), &repository, "2026-03-01T00:00:00Z");
            let reason = length_or(&repository, 255, "repository");
            self.record(&format!("star_{name}"), STAR, star, reason);
        }
        for (name, tag) in hostile_tags() {
            let reason = length_or(&tag, 128, "tag");
            let record = with(&valid_tag(), "tag", json!(tag));
            self.record(&format!("tag_{name}"), TAG, record, reason);
        }
        for (name, digest) in hostile_digests() {
            let reason = length_or(&digest, 128, "digest");
            let record = with(&valid_manifest(), "digest", json!(digest));
            self.record(&format!("digest_{name}"), MANIFEST, record, reason);
        }
        for (name, did) in hostile_dids().into_iter().take(8) {
            self.did_records(&name, &did);
        }
        for (name, uri) in hostile_page_uris() {
            let reason = if name == "manifest_collection" {
                "collection"
            } else {
                "at_uri"
            };
            let record =
                json!({"$type": STAR, "subject": uri, "createdAt": "2026-03-01T00:00:00Z"});
            self.record(&format!("star_subject_{name}"), STAR, record, reason);
            if reason == "at_uri" {
                let scan = with(&valid_scan(), "manifest", json!(uri));
                self.record(&format!("scan_manifest_{name}"), SCAN, scan, "at_uri");
            }
        }
    }

    /// A hostile DID in every required DID field.
    fn did_records(&mut self, name: &str, did: &str) {
        let at = "2026-03-01T00:00:00Z";
        let star = star_old(did, "webapp", at);
        self.record(&format!("star_owner_{name}"), STAR, star, "did");
        let crew = hold_crew(did, "write", at);
        self.record(&format!("crew_member_{name}"), CREW, crew, "did");
        let stats = hold_stats(did, "webapp", 1, 1, at);
        self.record(&format!("stats_owner_{name}"), STATS, stats, "did");
        let scan = with(&valid_scan(), "userDid", json!(did));
        self.record(&format!("scan_user_{name}"), SCAN, scan, "did");
        let captain = hold_captain(did, true, at).to_string();
        if name == "braces" {
            self.record_at("captain_owner_braces", CAPTAIN, "self", captain, "did");
        }
    }

    /// Strings past their lexicon limits, 100,000-element arrays and numbers out of range.
    pub(super) fn record_limit_cases(&mut self) {
        let at = "2026-03-01T00:00:00Z";
        let crew = with(
            &hold_crew(did_plc(1).as_str(), "write", at),
            "role",
            json!("r".repeat(33)),
        );
        self.record("role_33_bytes", CREW, crew, "max_length");
        let mut permissions = vec![json!("p"); WIDE];
        permissions.push(json!("p".repeat(65)));
        let crew = with(
            &hold_crew(&did_plc(1), "write", at),
            "permissions",
            json!(permissions),
        );
        self.record(
            "permissions_100001_items_last_too_long",
            CREW,
            crew,
            "max_length",
        );
        let crew = with(
            &hold_crew(&did_plc(1), "write", at),
            "permissions",
            json!("evil"),
        );
        self.record("permissions_string", CREW, crew, "type");
        let scan = with(&valid_scan(), "scannerVersion", json!("v".repeat(65)));
        self.record("scanner_version_65_bytes", SCAN, scan, "max_length");
        let scan = with(&valid_scan(), "critical", json!(u64::MAX));
        self.record("critical_u64_max", SCAN, scan, "integer");
        let manifest = with(&valid_manifest(), "mediaType", json!("m".repeat(129)));
        self.record("media_type_129_bytes", MANIFEST, manifest, "max_length");
        let stats = hold_stats(&did_plc(1), "webapp", 1, 1, at);
        self.record(
            "pull_count_negative",
            STATS,
            with(&stats, "pullCount", json!(-1)),
            "integer",
        );
        self.record(
            "pull_count_string",
            STATS,
            with(&stats, "pullCount", json!("1")),
            "type",
        );
        let size = valid_manifest()
            .to_string()
            .replace("\"size\":7", "\"size\":1e400");
        self.record_text("layer_size_1e400", MANIFEST, size, "json");
    }
}
