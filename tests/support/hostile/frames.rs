//! Frame and ordering cases: binary frames on an uncompressed connection, bad zstd frames
//! (bombs, other dictionaries, truncation, garbage) and text on a compressed one, control
//! frames, and valid events delivered again, out of order or with a rev that goes backwards.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::super::events::*;
use super::super::jetstream::zstd_bomb;
use super::{commits, compress, hostile_rev, other_dictionary, remove, with_did};
use super::{Builder, Commit, Expected};
use super::{CAP_BYTES, LEVEL};

impl Builder {
    /// Binary frames on a connection that asked for no compression.
    pub(super) fn binary_on_text(&mut self, valid: &[String]) {
        let label = Expected::Counted("frame.unexpected_binary");
        let dictionary = train_dictionary();
        let frames = [
            (
                "compressed_event",
                compress(&dictionary, valid[0].as_bytes()),
            ),
            ("garbage", vec![0xff, 0x00, 0x13, 0x37]),
            ("empty", Vec::new()),
            ("bomb", zstd_bomb(Some(&dictionary), 20 << 20)),
            ("json_as_binary", valid[0].clone().into_bytes()),
        ];
        for (name, bytes) in frames {
            let name = format!("frame.unexpected_binary/{name}");
            self.push(name, Message::binary(bytes), label);
        }
        self.control_frames();
    }

    /// Bad zstd frames on a compressed connection, and text where binary is expected.
    pub(super) fn bad_zstd(&mut self, valid: &[String], dictionary: &[u8]) {
        let line = valid[0].as_bytes();
        let frame = compress(dictionary, line);
        let other = other_dictionary(dictionary);
        let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0];
        skippable.extend_from_slice(b"evil");
        let frames: [(&str, Vec<u8>, &'static str); 11] = [
            (
                "bomb_20_mib",
                zstd_bomb(Some(dictionary), 20 << 20),
                "frame.decompress",
            ),
            (
                "bomb_cap_plus_one",
                zstd_bomb(Some(dictionary), CAP_BYTES + 1),
                "frame.decompress",
            ),
            (
                "other_dictionary",
                compress(&other, line),
                "frame.dictionary",
            ),
            (
                "no_dictionary",
                zstd::bulk::compress(line, LEVEL).expect("zstd"),
                "frame.dictionary",
            ),
            (
                "truncated",
                frame[..frame.len() / 2].to_vec(),
                "frame.decompress",
            ),
            (
                "last_byte_missing",
                frame[..frame.len() - 1].to_vec(),
                "frame.decompress",
            ),
            ("magic_only", frame[..4].to_vec(), "frame.dictionary"),
            ("garbage", vec![0xff, 0x00, 0x13, 0x37], "frame.dictionary"),
            ("empty", Vec::new(), "frame.dictionary"),
            ("skippable_frame", skippable, "frame.dictionary"),
            (
                "two_frames",
                [frame.clone(), frame.clone()].concat(),
                "event.json",
            ),
        ];
        for (name, bytes, label) in frames {
            let name = format!("{label}/{name}");
            self.push(name, Message::binary(bytes), Expected::Counted(label));
        }
        let texts = [
            ("text_garbage", "{not json".to_owned(), "event.json"),
            ("text_hostile_did", with_did("did:plc:{evil}"), "event.did"),
        ];
        for (name, text, label) in texts {
            let name = format!("{label}/{name}");
            self.push(name, Message::text(text), Expected::Counted(label));
        }
        self.control_frames();
    }

    fn control_frames(&mut self) {
        let frames = [
            ("ping", Message::Ping(b"evil".to_vec().into())),
            ("unsolicited_pong", Message::Pong(b"evil".to_vec().into())),
            ("pong_of_125_bytes", Message::Pong(vec![b'e'; 125].into())),
        ];
        for (name, message) in frames {
            self.push(format!("control/{name}"), message, Expected::Ignored);
        }
    }

    /// Duplicates, events out of order and revs that go backwards, made from `valid`.
    pub(super) fn ordering_cases(&mut self, valid: &[String]) {
        let commits = commits(valid);
        let finals: Vec<&Commit> = commits
            .iter()
            .filter(|c| c.superseded_at.is_none())
            .collect();
        for (index, commit) in finals.iter().step_by(7).take(6).enumerate() {
            let (name, after_line) = if index % 2 == 0 {
                ("duplicate", commit.line)
            } else {
                ("out_of_order", commit.line + 60)
            };
            let case_name = format!("ordering.{name}/{}", commit.collection);
            self.event_bytes(
                &case_name,
                valid[commit.line].clone().into_bytes(),
                Expected::Replayed,
            );
            self.cases.last_mut().expect("pushed").after_line = after_line;
        }
        let superseded = commits.iter().filter_map(|c| Some((c, c.superseded_at?)));
        for (commit, later) in superseded.step_by(5).take(4) {
            let name = format!("ordering.superseded/{}", commit.collection);
            self.event_bytes(
                &name,
                valid[commit.line].clone().into_bytes(),
                Expected::Stale,
            );
            self.cases.last_mut().expect("pushed").after_line = later;
        }
        let written = commits.iter().filter(|c| c.operation != "delete");
        for (index, commit) in written.step_by(6).take(6).enumerate() {
            let mut event: Value = serde_json::from_str(&valid[commit.line]).expect("JSON");
            event["commit"]["rev"] = json!(hostile_rev());
            let name = if index % 2 == 0 {
                event["commit"]["operation"] = json!("update");
                "rev_backwards_update"
            } else {
                event["commit"]["operation"] = json!("delete");
                remove(&mut event, "commit", "record");
                remove(&mut event, "commit", "cid");
                "rev_backwards_delete"
            };
            let name = format!("ordering.{name}/{}", commit.collection);
            self.event_bytes(&name, event.to_string().into_bytes(), Expected::Stale);
            self.cases.last_mut().expect("pushed").after_line = commit.line;
        }
    }
}
