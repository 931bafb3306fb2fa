//! The instructions one atomic step sends to Valkey: a guard, then a list of operations.
//!
//! A [`Program`] is serialised to JSON and run by `src/valkey/apply.lua` in one script call, so
//! it is applied whole or not at all. Every key it names lies in one slot: the account's, or the
//! global `recent:pushes` key. Values are rendered here, never in Lua, so that the same event
//! always writes the same bytes.

use serde::Serialize;

/// One atomic step against one slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Program {
    /// `P:{D}:` of the slot's account (empty for the global slot); locator clean-up builds key
    /// names under it.
    pub base: String,
    /// The account DID of the slot (empty for the global slot).
    pub did: String,
    /// Newest-rev-wins check, done before anything is written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
    /// What to do, in order.
    pub ops: Vec<Op>,
    /// Expiries for keys the script touches through locators, in seconds (0 = none).
    pub ttl: TtlSecs,
}

/// The stored record key and the rev of the incoming event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Guard {
    /// `P:{D}:rec:<collection>:<rkey>`.
    pub key: String,
    /// The event's rev; the step is dropped when the stored rev is greater.
    pub rev: String,
}

/// Expiries by class, in seconds; 0 means the key never expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TtlSecs {
    /// Cached records and what one record derives.
    pub record: u64,
    /// Indexes that point at records.
    pub index: u64,
    /// Stars and stats.
    pub aggregate: u64,
    /// Memory of a delete.
    pub tombstone: u64,
}

/// One operation. Plain writes carry their key and expiry; the others read the slot first.
/// Variant fields are named after the Valkey command arguments they carry.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `SET key value`, then the expiry.
    Set {
        key: String,
        value: String,
        ttl: u64,
    },
    /// `HSET key field value`, then the expiry of the whole hash.
    Hset {
        key: String,
        field: String,
        value: String,
        ttl: u64,
    },
    /// `ZADD key score member` (`NX` when `only_new`), then the expiry. Scores travel as
    /// text so that Lua, whose numbers are doubles printed with 14 digits, never rounds them.
    Zadd {
        key: String,
        member: String,
        score: String,
        only_new: bool,
        ttl: u64,
    },
    /// `SADD key member`, then the expiry.
    Sadd {
        key: String,
        member: String,
        ttl: u64,
    },
    /// `DEL key`.
    Del { key: String },
    /// `HDEL key field`.
    Hdel { key: String, field: String },
    /// `ZREM key member`.
    Zrem { key: String, member: String },
    /// Deletes a JSON string key only while its field `json_field` equals `equals`.
    DelIf {
        key: String,
        json_field: String,
        equals: String,
    },
    /// Removes what the record at `rkey` produced before, found through its locator, unless the
    /// locator equals `keep` (the new one); cross-slot removals become follow-ups.
    Unlocate {
        collection: String,
        rkey: String,
        keep: Option<String>,
    },
    /// Unlocates, drops the locator, and stores the tombstone `head` (a JSON object without
    /// its closing brace) with the old locator appended as `located`.
    Tombstone {
        key: String,
        head: String,
        collection: String,
        rkey: String,
        ttl: u64,
    },
    /// Writes a tag whose digest is resolved on the server (see `docs/keys.md`).
    TagPut(TagPut),
    /// Points the tags of `repository` that name the manifest at `rkey` at `digest`, or back at
    /// their own `manifestDigest` when `digest` is absent.
    ManifestTags {
        repository: String,
        rkey: String,
        digest: Option<String>,
    },
    /// Recomputes the repository annotations from its newest manifest that has any.
    RecomputeAnnotations { repository: String },
    /// Recomputes the repository's score in `repos`, or removes it when nothing is left; with
    /// `recent`, also emits the `recent:pushes` follow-up.
    RefreshRepo { repository: String, recent: bool },
    /// Adds a follow-up to the step's output; it runs only if the guard passed.
    Emit { follow: serde_json::Value },
    /// Answers the repository name of the page at `rkey`: the page locator's, else the rkey.
    ResolvePage { rkey: String },
    /// Answers the digest of the manifest at `rkey`: its locator's, else `fallback`.
    ResolveManifest {
        rkey: String,
        fallback: Option<String>,
    },
    /// Reports the TTL of the account's `user` key in the step's answer (`-2`: missing).
    UserTtl,
    /// Rule 6: emits the removal of the account's stars from their owners' sets and of its
    /// repositories from `recent:pushes`, then deletes every key matching `pattern`.
    PurgeAccount { pattern: String },
    /// Updates `recent:pushes`: adds or moves `member`, or removes it; trims to `keep`.
    Recent {
        key: String,
        member: String,
        score: Option<String>,
        keep: u64,
    },
}

/// A tag entry: `{"digest":…` + `tail`, with the digest found through the manifest locator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagPut {
    /// `P:{D}:repo:<repo>:tags`.
    pub key: String,
    /// The tag.
    pub field: String,
    /// The tag record's key; an entry is only removed by the record that wrote it.
    pub rkey: String,
    /// The rkey of the `manifest` AT-URI, when it points into this account.
    pub manifest_rkey: Option<String>,
    /// The legacy `manifestDigest`, used when the manifest is not indexed.
    pub fallback: Option<String>,
    /// The rest of the JSON value after the digest: `,"manifest":…}`.
    pub tail: String,
    /// Expiry of the tags hash.
    pub ttl: u64,
}
