//! Envelope cases: frames that are not JSON, envelopes of the wrong types or missing fields,
//! unknown kinds and operations, bad `time_us`, and DIDs, collections, record keys and revs
//! built to break key names. Each is counted under `event.<reason>`.

use serde_json::{json, Value};

use super::names::hostile_dids;
use super::{account_event, base_event, base_event_of_kind, remove, Builder, Expected, Wire};
use super::{DEEP, HOSTILE_DID, HOSTILE_TIME_US, WIDE};

impl Builder {
    pub(super) fn json_cases(&mut self) {
        let line = base_event().to_string();
        let deep = format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP));
        let cases: [(&str, String); 14] = [
            ("not_json", "{not json".to_owned()),
            ("empty", String::new()),
            ("null", "null".to_owned()),
            ("array", "[1,2,3]".to_owned()),
            ("number", "42".to_owned()),
            ("string", format!("\"{HOSTILE_DID}\"")),
            ("truncated", line[..line.len() / 2].to_owned()),
            ("trailing_garbage", format!("{line}}}}}")),
            ("two_events", format!("{line}{line}")),
            ("byte_order_mark", format!("\u{feff}{line}")),
            ("nul_bytes", "\0\0\0\0".to_owned()),
            ("deep_nesting_10000", deep),
            ("raw_newline_in_string", line.replace("latest", "lat\nest")),
            (
                "lone_surrogate",
                line.replace("\"kind\"", "\"\\ud800kind\""),
            ),
        ];
        for (name, json) in cases {
            self.event(&format!("event.json/{name}"), json, "event.json");
        }
        let duplicate = line.replacen('{', &format!(r#"{{"did":"{HOSTILE_DID}","#), 1);
        self.event("event.json/duplicate_key", duplicate, "event.json");
        self.edited("event.json/wide_commit_array", "event.json", |event| {
            event["commit"] = json!(vec![0; WIDE]);
        });
        let deep_commit = format!(
            r#"{{"did":"{HOSTILE_DID}","time_us":{HOSTILE_TIME_US},"kind":"commit","commit":{}{}}}"#,
            "[".repeat(DEEP),
            "]".repeat(DEEP)
        );
        self.event("event.json/deep_commit", deep_commit, "event.json");
        if let Wire::Compressed(_) = self.wire {
            let mut bytes = line.into_bytes();
            let at = bytes.len() / 3;
            bytes[at] = 0xff;
            self.event_bytes(
                "event.json/invalid_utf8",
                bytes,
                Expected::Counted("event.json"),
            );
        }
    }

    pub(super) fn type_cases(&mut self) {
        let edits: [(&str, &str, Value); 11] = [
            (
                "time_us_string",
                "/time_us",
                json!(HOSTILE_TIME_US.to_string()),
            ),
            ("time_us_float", "/time_us", json!(1.5e15)),
            ("did_number", "/did", json!(12)),
            ("kind_number", "/kind", json!(1)),
            ("kind_object", "/kind", json!({"commit": true})),
            ("commit_string", "/commit", json!("commit")),
            ("rev_number", "/commit/rev", json!(3)),
            ("rkey_array", "/commit/rkey", json!(["evil"])),
            ("operation_null", "/commit/operation", Value::Null),
            ("collection_bool", "/commit/collection", json!(true)),
            ("cid_number", "/commit/cid", json!(5)),
        ];
        for (name, pointer, value) in edits {
            self.edited(&format!("event.json/{name}"), "event.json", |event| {
                *event.pointer_mut(pointer).expect("the base event has it") = value;
            });
        }
        for (name, record) in [
            ("string", json!("evil")),
            ("array", json!([1])),
            ("null", Value::Null),
            ("number", json!(7)),
        ] {
            self.edited(&format!("event.record/{name}"), "event.record", |event| {
                event["commit"]["record"] = record;
            });
        }
        let account = account_event(json!({"active": "yes", "did": HOSTILE_DID}));
        self.event("event.json/active_string", account, "event.json");
        let identity = base_event_of_kind("identity", json!({"handle": 5}));
        self.event("event.json/handle_number", identity, "event.json");
    }

    pub(super) fn missing_cases(&mut self) {
        for pointer in ["did", "time_us", "kind", "commit"] {
            self.edited(&format!("event.json/no_{pointer}"), "event.json", |event| {
                remove(event, "", pointer);
            });
        }
        for member in ["rev", "operation", "collection", "rkey"] {
            self.edited(&format!("event.json/no_{member}"), "event.json", |event| {
                remove(event, "commit", member);
            });
        }
        self.edited("event.record/no_record", "event.record", |event| {
            remove(event, "commit", "record");
        });
        self.edited(
            "event.record/update_without_record",
            "event.record",
            |event| {
                event["commit"]["operation"] = json!("update");
                remove(event, "commit", "record");
            },
        );
        let account = base_event_of_kind("account", Value::Null).replace(",\"account\":null", "");
        self.event("event.json/no_account", account, "event.json");
        let inactive = account_event(json!({"did": HOSTILE_DID, "status": "deleted"}));
        self.event("event.json/no_active", inactive, "event.json");
    }

    pub(super) fn kind_and_operation_cases(&mut self) {
        let kinds = [
            "sync",
            "COMMIT",
            "",
            "commit ",
            "info",
            "evil{kind}",
            "evil\nkind",
        ];
        for kind in kinds {
            self.edited(&format!("event.kind/{kind:?}"), "event.kind", |event| {
                event["kind"] = json!(kind);
            });
        }
        self.edited("event.kind/wide_extra_field", "event.kind", |event| {
            event["kind"] = json!("sync");
            event["extra"] = json!(vec![0; WIDE]);
        });
        let operations = ["upsert", "CREATE", "", "delete\n", "evil{op}", "*"];
        for operation in operations {
            let name = format!("event.operation/{operation:?}");
            self.edited(&name, "event.operation", |event| {
                event["commit"]["operation"] = json!(operation);
            });
        }
    }

    pub(super) fn time_us_cases(&mut self) {
        for time_us in [0, -1, i64::MIN] {
            self.edited(
                &format!("event.time_us/{time_us}"),
                "event.time_us",
                |event| {
                    event["time_us"] = json!(time_us);
                },
            );
        }
        let huge = [
            "1e400",
            "18446744073709551616",
            "9223372036854775808",
            "1.0",
            "-0",
        ];
        let line = base_event().to_string();
        for number in huge {
            let json = line.replace(&HOSTILE_TIME_US.to_string(), number);
            self.event(&format!("event.json/time_us_{number}"), json, "event.json");
        }
    }

    pub(super) fn did_cases(&mut self) {
        for (name, did) in hostile_dids() {
            self.edited(&format!("event.did/{name}"), "event.did", |event| {
                event["did"] = json!(did);
            });
        }
    }

    pub(super) fn collection_cases(&mut self) {
        let long = format!("io.atcr.evil{}", "a".repeat(400));
        let collections = [
            ("braces", "io.atcr.{evil}".to_owned()),
            ("colon", "io.atcr.evil:tag".to_owned()),
            ("space", "io.atcr.evil tag".to_owned()),
            ("newline", "io.atcr.evil\ntag".to_owned()),
            ("glob", "io.atcr.evil*".to_owned()),
            ("bell", "io.atcr.evil\u{7}".to_owned()),
            ("overlong", long),
            ("empty_segment", "io.atcr..evil".to_owned()),
            ("trailing_dot", "io.atcr.evil.".to_owned()),
            ("digit_name", "io.atcr.evil.1tag".to_owned()),
            ("outside_io_atcr", "app.bsky.evil.like".to_owned()),
            ("lookalike", "io.atcrevil.tag".to_owned()),
            ("upper_case_prefix", "IO.ATCR.EVIL".to_owned()),
            ("empty", String::new()),
        ];
        for (name, collection) in collections {
            let label = "event.collection";
            self.edited(&format!("{label}/{name}"), label, |event| {
                event["commit"]["collection"] = json!(collection);
            });
        }
    }

    pub(super) fn rkey_cases(&mut self) {
        let long = format!("evil{}", "a".repeat(520));
        let rkeys = [
            ("braces", "evil{rkey}".to_owned()),
            ("closing_brace", "evil}".to_owned()),
            ("space", "evil rkey".to_owned()),
            ("newline", "evil\nrkey".to_owned()),
            ("glob", "evil*".to_owned()),
            ("ansi_escape", "evil\u{1b}[31m".to_owned()),
            ("dot", ".".to_owned()),
            ("dot_dot", "..".to_owned()),
            ("empty", String::new()),
            ("overlong", long),
            ("slash", "evil/rkey".to_owned()),
            ("query", "evil?x=1".to_owned()),
            ("non_ascii", "évil".to_owned()),
        ];
        for (name, rkey) in rkeys {
            self.edited(&format!("event.rkey/{name}"), "event.rkey", |event| {
                event["commit"]["rkey"] = json!(rkey);
            });
        }
    }

    pub(super) fn rev_cases(&mut self) {
        let revs = [
            ("top_bit_set", "zzzzzzzzzzzzz"),
            ("short", "3mg3ghvwbz22"),
            ("long", "3mg3ghvwbz2255"),
            ("brace", "3mg3ghvwbz22{"),
            ("upper_case", "3MG3GHVWBZ225"),
            ("empty", ""),
            ("evil", "evil"),
        ];
        for (name, rev) in revs {
            self.edited(&format!("event.rev/{name}"), "event.rev", |event| {
                event["commit"]["rev"] = json!(rev);
            });
        }
    }
}
