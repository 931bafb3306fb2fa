//! The Jetstream v1 event envelope: one JSON object per frame, decoded into an [`Event`].
//!
//! Only the envelope is checked here (kind, operation, DID, collection, record key, rev,
//! `time_us`); the record itself is validated by [`crate::records`]. Anything that cannot be
//! keyed safely is refused with a bounded [`SkipReason`], so no hostile string reaches a key.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::records::syntax;

/// The only collections this daemon reads.
pub const COLLECTION_PREFIX: &str = "io.atcr.";

/// One decoded event.
#[derive(Debug, Clone)]
pub struct Event {
    /// The repository (account) the event belongs to.
    pub did: String,
    /// Jetstream's own timestamp, the v1 cursor.
    pub time_us: i64,
    /// What happened.
    pub body: Body,
}

/// The kinds of event Jetstream v1 sends.
#[derive(Debug, Clone)]
pub enum Body {
    /// A record was created, updated or deleted.
    Commit(Commit),
    /// The account's identity (handle, DID document) may have changed.
    Identity {
        /// The new handle, when the relay included one.
        handle: Option<String>,
    },
    /// The account's hosting status changed.
    Account {
        /// Whether the account is active.
        active: bool,
        /// Why it is inactive (`deleted`, `takendown`, …), an open string.
        status: Option<String>,
    },
}

/// A record operation.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The commit revision, a TID; it orders changes to one record.
    pub rev: String,
    /// What was done.
    pub operation: Operation,
    /// The record's collection (an `io.atcr.*` NSID).
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// The record exactly as received (create and update only).
    pub record: Option<Box<RawValue>>,
    /// The record CID (create and update only).
    pub cid: Option<String>,
}

/// A commit operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A new record.
    Create,
    /// A new version of a record.
    Update,
    /// The record is gone.
    Delete,
}

/// Why a frame produced no event. Each value is a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Not JSON, not UTF-8, or not an object of the envelope's shape.
    Json,
    /// A `kind` this daemon does not know.
    Kind,
    /// An `operation` this daemon does not know.
    Operation,
    /// The event DID is not a valid DID.
    Did,
    /// The collection is not an `io.atcr.*` NSID.
    Collection,
    /// The record key is not valid.
    Rkey,
    /// The rev is not a TID.
    Rev,
    /// `time_us` missing or not positive.
    TimeUs,
    /// A create or update without a record object.
    Record,
}

impl SkipReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Json => "json",
            SkipReason::Kind => "kind",
            SkipReason::Operation => "operation",
            SkipReason::Did => "did",
            SkipReason::Collection => "collection",
            SkipReason::Rkey => "rkey",
            SkipReason::Rev => "rev",
            SkipReason::TimeUs => "time_us",
            SkipReason::Record => "record",
        }
    }
}

#[derive(Deserialize)]
struct WireEvent {
    did: String,
    time_us: i64,
    kind: String,
    commit: Option<WireCommit>,
    identity: Option<WireIdentity>,
    account: Option<WireAccount>,
}

#[derive(Deserialize)]
struct WireCommit {
    rev: String,
    operation: String,
    collection: String,
    rkey: String,
    record: Option<Box<RawValue>>,
    cid: Option<String>,
}

#[derive(Deserialize)]
struct WireIdentity {
    handle: Option<String>,
}

#[derive(Deserialize)]
struct WireAccount {
    active: bool,
    status: Option<String>,
}

/// Decodes one frame's JSON. `allow_localhost` admits `did:web:localhost%3A<port>` (tests).
pub fn decode(json: &[u8], allow_localhost: bool) -> Result<Event, SkipReason> {
    let wire: WireEvent = serde_json::from_slice(json).map_err(|_| SkipReason::Json)?;
    if !syntax::is_did_allowing_localhost(&wire.did, allow_localhost) {
        return Err(SkipReason::Did);
    }
    if wire.time_us <= 0 {
        return Err(SkipReason::TimeUs);
    }
    let body = match wire.kind.as_str() {
        "commit" => Body::Commit(commit(wire.commit.ok_or(SkipReason::Json)?)?),
        "identity" => identity(wire.identity),
        "account" => account(wire.account.ok_or(SkipReason::Json)?),
        _ => return Err(SkipReason::Kind),
    };
    Ok(Event {
        did: wire.did,
        time_us: wire.time_us,
        body,
    })
}

fn commit(wire: WireCommit) -> Result<Commit, SkipReason> {
    let operation = match wire.operation.as_str() {
        "create" => Operation::Create,
        "update" => Operation::Update,
        "delete" => Operation::Delete,
        _ => return Err(SkipReason::Operation),
    };
    if !wire.collection.starts_with(COLLECTION_PREFIX) || !syntax::is_nsid(&wire.collection) {
        return Err(SkipReason::Collection);
    }
    if !syntax::is_rkey(&wire.rkey) {
        return Err(SkipReason::Rkey);
    }
    if !syntax::is_tid(&wire.rev) {
        return Err(SkipReason::Rev);
    }
    let record = if operation == Operation::Delete {
        None
    } else {
        Some(record(wire.record)?)
    };
    Ok(Commit {
        rev: wire.rev,
        operation,
        collection: wire.collection,
        rkey: wire.rkey,
        record,
        cid: wire.cid,
    })
}

fn record(raw: Option<Box<RawValue>>) -> Result<Box<RawValue>, SkipReason> {
    raw.filter(|raw| raw.get().starts_with('{'))
        .ok_or(SkipReason::Record)
}

fn identity(wire: Option<WireIdentity>) -> Body {
    Body::Identity {
        handle: wire.and_then(|identity| identity.handle),
    }
}

fn account(wire: WireAccount) -> Body {
    Body::Account {
        active: wire.active,
        status: wire.status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";

    fn commit_json(op: &str, collection: &str, rkey: &str, rev: &str) -> String {
        format!(
            r#"{{"did":"{DID}","time_us":1772460454312518,"kind":"commit","commit":{{"rev":"{rev}","operation":"{op}","collection":"{collection}","rkey":"{rkey}","record":{{"$type":"{collection}"}},"cid":"bafy"}}}}"#
        )
    }

    #[test]
    fn decodes_a_create_and_keeps_the_record_verbatim() {
        let json = commit_json("create", "io.atcr.tag", "3mg3ghvwazs2f", "3mg3ghvwbz225");
        let event = decode(json.as_bytes(), false).expect("valid event");
        let Body::Commit(commit) = event.body else {
            panic!("not a commit")
        };
        assert_eq!(commit.operation, Operation::Create);
        assert_eq!(
            commit.record.expect("record").get(),
            r#"{"$type":"io.atcr.tag"}"#
        );
        assert_eq!(event.time_us, 1772460454312518);
    }

    #[test]
    fn a_delete_carries_no_record() {
        let json = format!(
            r#"{{"did":"{DID}","time_us":5,"kind":"commit","commit":{{"rev":"3mgdey74nq22d","operation":"delete","collection":"io.atcr.sailor.star","rkey":"3mg5d4dlxs22p"}}}}"#
        );
        let Body::Commit(commit) = decode(json.as_bytes(), false).expect("valid").body else {
            panic!("not a commit")
        };
        assert!(commit.record.is_none());
    }

    #[test]
    fn identity_and_account_events_decode() {
        let identity = format!(
            r#"{{"did":"{DID}","time_us":1,"kind":"identity","identity":{{"did":"{DID}","seq":3,"time":"2026-05-25T14:23:29.950Z"}}}}"#
        );
        assert!(matches!(
            decode(identity.as_bytes(), false).expect("identity").body,
            Body::Identity { handle: None }
        ));
        let account = format!(
            r#"{{"did":"{DID}","time_us":2,"kind":"account","account":{{"active":false,"did":"{DID}","seq":3,"status":"deleted","time":"x"}}}}"#
        );
        let Body::Account { active, status } = decode(account.as_bytes(), false).expect("ok").body
        else {
            panic!("not an account event")
        };
        assert!(!active);
        assert_eq!(status.as_deref(), Some("deleted"));
    }

    #[test]
    fn hostile_envelopes_are_refused_with_a_reason() {
        let cases = [
            (
                commit_json("create", "io.atcr.tag", "a:b{c}", "3mg3ghvwbz225"),
                SkipReason::Rkey,
            ),
            (
                commit_json("create", "io.atcr.tag", "a\\nb", "3mg3ghvwbz225"),
                SkipReason::Rkey,
            ),
            (
                commit_json("create", "app.bsky.feed.like", "a", "3mg3ghvwbz225"),
                SkipReason::Collection,
            ),
            (
                commit_json("create", "io.atcr.ta*g", "a", "3mg3ghvwbz225"),
                SkipReason::Collection,
            ),
            (
                commit_json("upsert", "io.atcr.tag", "a", "3mg3ghvwbz225"),
                SkipReason::Operation,
            ),
            (
                commit_json("create", "io.atcr.tag", "a", "zzzzzzzzzzzzzz"),
                SkipReason::Rev,
            ),
            (
                commit_json("create", "io.atcr.tag", "a", "3mg3ghvwbz225")
                    .replace(DID, "did:plc:{x}"),
                SkipReason::Did,
            ),
            (
                commit_json("create", "io.atcr.tag", "a", "3mg3ghvwbz225")
                    .replace("commit\",", "sync\","),
                SkipReason::Kind,
            ),
            ("not json".to_owned(), SkipReason::Json),
            (r#"{"did":1}"#.to_owned(), SkipReason::Json),
        ];
        for (json, reason) in cases {
            assert_eq!(decode(json.as_bytes(), false).err(), Some(reason), "{json}");
        }
    }

    #[test]
    fn invalid_utf8_is_a_json_skip() {
        let mut bytes = commit_json("create", "io.atcr.tag", "a", "3mg3ghvwbz225").into_bytes();
        bytes[20] = 0xff;
        assert_eq!(decode(&bytes, false).err(), Some(SkipReason::Json));
    }

    #[test]
    fn a_create_without_a_record_object_is_refused() {
        let json = commit_json("create", "io.atcr.tag", "a", "3mg3ghvwbz225")
            .replace(r#"{"$type":"io.atcr.tag"}"#, "[1]");
        assert_eq!(
            decode(json.as_bytes(), false).err(),
            Some(SkipReason::Record)
        );
    }
}
