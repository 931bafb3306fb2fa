//! The pure core: one decoded event in, the atomic steps that bring the cache up to date out.
//!
//! No I/O happens here. An event becomes a [`Plan`]: an optional read-only step in another
//! account's slot (to resolve a name only that account's locators know), the main step in the
//! event's own slot (guarded by newest-rev-wins), and follow-ups in other slots that the main
//! step's answer asks for (stars, stats and scans land in the owner's slot; pushes in the global
//! `recent:pushes`). Every step touches one slot only, so each is atomic on its own, also on a
//! cluster.

pub mod follow;
pub mod keys;
pub mod program;
pub mod render;

use crate::event::{Body, Commit, Event, Operation};
use crate::records::{self, syntax::AtUri, Note, Reason, Record, StarSubject};
use keys::Keys;
use program::{Guard, Op, Program, TagPut, TtlSecs};

pub use follow::FollowUp;

/// The collections that derive anything, by NSID.
pub mod nsid {
    /// `io.atcr.manifest`.
    pub const MANIFEST: &str = "io.atcr.manifest";
    /// `io.atcr.tag`.
    pub const TAG: &str = "io.atcr.tag";
    /// `io.atcr.repo.page`.
    pub const PAGE: &str = "io.atcr.repo.page";
    /// `io.atcr.sailor.star`.
    pub const STAR: &str = "io.atcr.sailor.star";
    /// `io.atcr.hold.captain`.
    pub const CAPTAIN: &str = "io.atcr.hold.captain";
    /// `io.atcr.hold.crew`.
    pub const CREW: &str = "io.atcr.hold.crew";
    /// `io.atcr.hold.stats`.
    pub const STATS: &str = "io.atcr.hold.stats";
    /// `io.atcr.hold.scan`.
    pub const SCAN: &str = "io.atcr.hold.scan";
}

/// Where a step runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Every key of one account (the DID's hash tag).
    Account(String),
    /// `P:recent:pushes`.
    Global,
}

/// One atomic step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The slot all its keys lie in.
    pub slot: Slot,
    /// What it does.
    pub program: Program,
}

/// What an event turned into, for counting.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A valid record was created or updated.
    Put,
    /// A record was deleted.
    Delete,
    /// The record failed validation and is applied as a delete at its rev.
    Rejected(records::Rejection),
    /// An identity event: a known account is resolved again.
    Identity,
    /// An account event.
    Account {
        /// The account is active (again): resolve it if it was purged before.
        active: bool,
        /// The account is gone (rule 6): all its keys are removed.
        purged: bool,
    },
}

/// Statuses of an inactive account whose keys rule 6 removes.
pub const PURGED_STATUSES: [&str; 4] = ["deleted", "takendown", "suspended", "deactivated"];

/// What the writer learns about the account's `user` key from a plan's main step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserCheck {
    /// A commit: resolve the account if its user key is missing, refresh it if it expires soon.
    Commit,
    /// An identity event: resolve the account again if the cache knows it.
    Identity,
}

/// The main step, or how to build it from the answer of a resolve step.
#[derive(Debug, Clone)]
pub enum Main {
    /// Ready to run.
    Ready(Step),
    /// A star whose repository name the owner's page locator knows.
    Star(Box<PendingStar>),
    /// A scan whose manifest digest the owner's manifest locator knows.
    Scan(Box<PendingScan>),
    /// Nothing to write (identity and account events).
    Nothing,
}

/// Everything one event asks of the cache.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The event's `time_us`, for the cursor.
    pub time_us: i64,
    /// The event's account.
    pub did: String,
    /// Whether the main step reports the TTL of the account's `user` key, and why.
    pub user_check: Option<UserCheck>,
    /// The collection label for metrics (`other` for unknown `io.atcr.*` collections).
    pub collection: &'static str,
    /// What the event was.
    pub outcome: Outcome,
    /// Anomalies counted but not rejected.
    pub notes: Vec<Note>,
    /// A read-only step to run before the main one.
    pub resolve: Option<Step>,
    /// The main step in the event's own slot.
    pub main: Main,
    /// The slot of the main step (`None` when there is nothing to write).
    pub main_slot: Option<Slot>,
    /// Slots the follow-ups of this plan write to that are known now.
    pub follow_slots: Vec<Slot>,
    /// Whether a follow-up may write to a slot known only once the main step ran (deletes of
    /// stars, stats and scans find the owner through the locator).
    pub follows_unknown_slot: bool,
}

/// A main step waiting for a name that only another account's slot knows.
#[derive(Debug, Clone)]
pub struct Pending<R> {
    event: Event,
    commit_rev: String,
    record: R,
    raw: String,
    cid: Option<String>,
}

/// A star waiting for its repository name.
pub type PendingStar = Pending<records::Star>;

/// A scan waiting for its manifest digest.
pub type PendingScan = Pending<records::Scan>;

/// Builds plans; holds the key prefix and expiries.
#[derive(Debug, Clone)]
pub struct Indexer {
    keys: Keys,
    ttl: TtlSecs,
    recent_keep: u64,
}

/// What one record contributes besides its own `rec` key.
struct Derived {
    ops: Vec<Op>,
    follow_slots: Vec<Slot>,
}

impl Indexer {
    /// An indexer writing under `prefix` with the given expiries.
    pub fn new(prefix: &str, ttl: TtlSecs, recent_keep: u64) -> Indexer {
        Indexer {
            keys: Keys::new(prefix),
            ttl,
            recent_keep,
        }
    }

    /// The key names it uses.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Maps one event to its plan.
    pub fn plan(&self, event: &Event) -> Plan {
        match &event.body {
            Body::Commit(commit) => self.commit(event, commit),
            Body::Identity { .. } => self.identity(event),
            Body::Account { active, status } => self.account(event, *active, status.as_deref()),
        }
    }

    fn identity(&self, event: &Event) -> Plan {
        let mut plan = self.nothing(event, Outcome::Identity);
        plan.user_check = Some(UserCheck::Identity);
        plan.main_slot = Some(Slot::Account(event.did.clone()));
        plan.main = Main::Ready(self.step(&event.did, None, vec![Op::UserTtl]));
        plan
    }

    /// Rule 6: an account that is gone loses every key, and its stars in other accounts.
    fn account(&self, event: &Event, active: bool, status: Option<&str>) -> Plan {
        let purged = !active && status.is_some_and(|status| PURGED_STATUSES.contains(&status));
        let mut plan = self.nothing(event, Outcome::Account { active, purged });
        if purged {
            let pattern = format!("{}*", glob_escape(&self.keys.account(&event.did)));
            plan.main_slot = Some(Slot::Account(event.did.clone()));
            plan.main =
                Main::Ready(self.step(&event.did, None, vec![Op::PurgeAccount { pattern }]));
            plan.follows_unknown_slot = true;
        }
        plan
    }

    fn nothing(&self, event: &Event, outcome: Outcome) -> Plan {
        Plan {
            time_us: event.time_us,
            did: event.did.clone(),
            user_check: None,
            collection: "",
            outcome,
            notes: Vec::new(),
            resolve: None,
            main: Main::Nothing,
            main_slot: None,
            follow_slots: Vec::new(),
            follows_unknown_slot: false,
        }
    }

    fn commit(&self, event: &Event, commit: &Commit) -> Plan {
        let collection = collection_label(&commit.collection);
        let mut plan = self.nothing(event, Outcome::Delete);
        plan.collection = collection;
        plan.user_check = Some(UserCheck::Commit);
        plan.main_slot = Some(Slot::Account(event.did.clone()));
        let raw = match (&commit.operation, &commit.record) {
            (Operation::Delete, _) | (_, None) => return self.delete(plan, event, commit),
            (_, Some(raw)) => raw.get(),
        };
        let validated = serde_json::from_str(raw)
            .map_err(|error| records::Rejection {
                reason: Reason::Json,
                field: "record",
                detail: error.to_string(),
            })
            .and_then(|value| {
                records::validate(&event.did, &commit.collection, &commit.rkey, &value)
            });
        match validated {
            Ok(valid) => {
                plan.outcome = Outcome::Put;
                plan.notes = valid.notes;
                self.put(plan, event, commit, valid.record, raw)
            }
            Err(rejection) => {
                let mut plan = self.delete(plan, event, commit);
                plan.outcome = Outcome::Rejected(rejection);
                plan
            }
        }
    }

    fn delete(&self, mut plan: Plan, event: &Event, commit: &Commit) -> Plan {
        let did = &event.did;
        let mut ops = vec![Op::Tombstone {
            key: self.keys.record(did, &commit.collection, &commit.rkey),
            head: render::tombstone_head(&at_uri(did, commit), &commit.rev, event.time_us),
            collection: commit.collection.clone(),
            rkey: commit.rkey.clone(),
            ttl: self.ttl.tombstone,
        }];
        if commit.collection == nsid::CAPTAIN {
            ops.push(Op::Del {
                key: self.keys.hold(did, "captain"),
            });
        }
        plan.follows_unknown_slot =
            [nsid::STAR, nsid::STATS, nsid::SCAN].contains(&commit.collection.as_str());
        if commit.collection == nsid::MANIFEST {
            plan.follow_slots.push(Slot::Global);
        }
        plan.main = Main::Ready(self.step(did, Some(guard(&self.keys, did, commit)), ops));
        plan
    }

    fn put(&self, plan: Plan, event: &Event, commit: &Commit, record: Record, raw: &str) -> Plan {
        match record {
            Record::Star(star) => self.star(plan, pending(event, commit, raw, star)),
            Record::Scan(scan) => self.scan(plan, pending(event, commit, raw, scan)),
            record => self.derived(plan, event, commit, &record, raw),
        }
    }

    fn derived(
        &self,
        mut plan: Plan,
        event: &Event,
        commit: &Commit,
        record: &Record,
        raw: &str,
    ) -> Plan {
        let did = event.did.as_str();
        let derived = self.derive(did, commit, record);
        plan.follow_slots = derived.follow_slots;
        let ops = self.with_record(derived.ops, event, commit, raw);
        plan.main = Main::Ready(self.step(did, Some(guard(&self.keys, did, commit)), ops));
        plan
    }

    fn star(&self, mut plan: Plan, pending: Pending<records::Star>) -> Plan {
        let owner = pending.record.owner.clone();
        plan.follow_slots.push(Slot::Account(owner.clone()));
        plan.main = match &pending.record.subject {
            StarSubject::Page { rkey } => {
                let resolve = Op::ResolvePage { rkey: rkey.clone() };
                plan.resolve = Some(self.step(&owner, None, vec![resolve]));
                Main::Star(Box::new(pending))
            }
            StarSubject::Repository(_) => Main::Ready(self.complete_star(&pending, None)),
        };
        plan
    }

    fn scan(&self, mut plan: Plan, pending: Pending<records::Scan>) -> Plan {
        let scan = &pending.record;
        plan.follow_slots.push(Slot::Account(scan.owner.clone()));
        let fallback = digest_from_hex(&rebuilt_rkey(&pending.event));
        let resolve = Op::ResolveManifest {
            rkey: scan.manifest_rkey.clone(),
            fallback,
        };
        plan.resolve = Some(self.step(&scan.owner, None, vec![resolve]));
        plan.main = Main::Scan(Box::new(pending));
        plan
    }

    /// Builds a star's main step once its repository name is known (`None`: the record names
    /// it, or the resolve step found nothing and the page rkey is the name).
    pub fn complete_star(&self, pending: &PendingStar, resolved: Option<&str>) -> Step {
        let Pending {
            event,
            commit_rev,
            record: star,
            raw,
            cid,
        } = pending;
        let repository = match (&star.subject, resolved) {
            (_, Some(name)) => name.to_owned(),
            (StarSubject::Repository(name), None) | (StarSubject::Page { rkey: name }, None) => {
                name.clone()
            }
        };
        let commit = rebuilt_commit(event, commit_rev, nsid::STAR, cid);
        let did = &event.did;
        if !records::syntax::is_repository(&repository, 256) {
            // A page key that is no repository name cannot be keyed: cache the record only.
            let ops = self.with_record(Vec::new(), event, &commit, raw);
            return self.step(did, Some(guard(&self.keys, did, &commit)), ops);
        }
        let locator = render::locator(&[("owner", &star.owner), ("repository", &repository)]);
        let follow = serde_json::json!({
            "op": "star_add", "owner": star.owner, "repository": repository,
            "starrer": did, "score": star.created_at_ms.to_string(),
        });
        let ops = vec![
            self.unlocate(&commit, &locator),
            Op::Zadd {
                key: self.keys.starred(did),
                member: format!("{}/{}", star.owner, repository),
                score: star.created_at_ms.to_string(),
                only_new: false,
                ttl: self.ttl.aggregate,
            },
            self.locate(did, &commit, locator, self.ttl.aggregate),
            Op::Emit { follow },
        ];
        let ops = self.with_record(ops, event, &commit, raw);
        self.step(did, Some(guard(&self.keys, did, &commit)), ops)
    }

    /// Builds a scan's main step once the scanned manifest's digest is known (`None`: neither
    /// the owner's locator nor the record key names it; the record is cached, nothing derived).
    pub fn complete_scan(&self, pending: &PendingScan, digest: Option<&str>) -> Step {
        let Pending {
            event,
            commit_rev,
            record: scan,
            raw,
            cid,
        } = pending;
        let commit = rebuilt_commit(event, commit_rev, nsid::SCAN, cid);
        let did = &event.did;
        let mut ops = Vec::new();
        if let Some(digest) = digest {
            let locator = render::locator(&[("owner", &scan.owner), ("digest", digest)]);
            let follow = serde_json::json!({
                "op": "scan_set", "owner": scan.owner, "digest": digest, "hold": did,
                "value": render::scan(scan, did),
            });
            ops.push(self.unlocate(&commit, &locator));
            ops.push(self.locate(did, &commit, locator, self.ttl.record));
            ops.push(Op::Emit { follow });
        }
        let ops = self.with_record(ops, event, &commit, raw);
        self.step(did, Some(guard(&self.keys, did, &commit)), ops)
    }

    fn derive(&self, did: &str, commit: &Commit, record: &Record) -> Derived {
        let mut follow_slots = Vec::new();
        let ops = match record {
            Record::Manifest(manifest) => {
                follow_slots.push(Slot::Global);
                self.manifest(did, commit, manifest)
            }
            Record::Tag(tag) => self.tag(did, commit, tag),
            Record::RepoPage(page) => self.page(did, commit, page),
            Record::Captain(captain) => vec![Op::Set {
                key: self.keys.hold(did, "captain"),
                value: render::captain(captain),
                ttl: self.ttl.record,
            }],
            Record::Crew(crew) => self.crew(did, commit, crew),
            Record::Stats(stats) => {
                follow_slots.push(Slot::Account(stats.owner.clone()));
                self.stats(did, commit, stats)
            }
            Record::Star(_) | Record::Scan(_) | Record::CachedOnly | Record::Unknown => Vec::new(),
        };
        Derived { ops, follow_slots }
    }

    fn manifest(&self, did: &str, commit: &Commit, manifest: &records::Manifest) -> Vec<Op> {
        let keys = &self.keys;
        let (repo, digest) = (&manifest.repository, &manifest.digest);
        let locator = render::locator(&[("repository", repo), ("digest", digest)]);
        let mut ops = vec![
            self.unlocate(commit, &locator),
            Op::Set {
                key: keys.manifest(did, digest, ""),
                value: render::manifest(manifest, &commit.rkey, commit.cid.as_deref()),
                ttl: self.ttl.record,
            },
        ];
        if manifest.manifests.is_empty() {
            ops.push(Op::Set {
                key: keys.manifest(did, digest, ":layers"),
                value: render::json(&manifest.layers),
                ttl: self.ttl.record,
            });
        } else {
            ops.push(Op::Set {
                key: keys.manifest(did, digest, ":refs"),
                value: render::references(&manifest.manifests),
                ttl: self.ttl.record,
            });
        }
        ops.extend(manifest.manifests.iter().map(|child| Op::Sadd {
            key: keys.manifest(did, &child.digest, ":parents"),
            member: digest.clone(),
            ttl: self.ttl.index,
        }));
        ops.extend([
            Op::Zadd {
                key: keys.repo(did, repo, "manifests"),
                member: digest.clone(),
                score: manifest.created_at_ms.to_string(),
                only_new: false,
                ttl: self.ttl.index,
            },
            self.locate(did, commit, locator, self.ttl.index),
            Op::ManifestTags {
                repository: repo.clone(),
                rkey: commit.rkey.clone(),
                digest: Some(digest.clone()),
            },
            Op::RecomputeAnnotations {
                repository: repo.clone(),
            },
            Op::RefreshRepo {
                repository: repo.clone(),
                recent: true,
            },
        ]);
        ops
    }

    fn tag(&self, did: &str, commit: &Commit, tag: &records::Tag) -> Vec<Op> {
        let locator = render::locator(&[("repository", &tag.repository), ("tag", &tag.tag)]);
        let manifest_rkey = tag.manifest.as_ref().map(|uri: &AtUri| uri.rkey.clone());
        vec![
            self.unlocate(commit, &locator),
            Op::TagPut(TagPut {
                key: self.keys.repo(did, &tag.repository, "tags"),
                field: tag.tag.clone(),
                rkey: commit.rkey.clone(),
                manifest_rkey,
                fallback: tag.manifest_digest.clone(),
                tail: render::tag_tail(tag, &commit.rkey),
                ttl: self.ttl.index,
            }),
            self.repo_listed(did, &tag.repository),
            self.locate(did, commit, locator, self.ttl.index),
        ]
    }

    fn page(&self, did: &str, commit: &Commit, page: &records::RepoPage) -> Vec<Op> {
        let locator = render::locator(&[("repository", &page.repository)]);
        vec![
            self.unlocate(commit, &locator),
            Op::Set {
                key: self.keys.repo(did, &page.repository, "page"),
                value: render::page(page),
                ttl: self.ttl.record,
            },
            self.repo_listed(did, &page.repository),
            self.locate(did, commit, locator, self.ttl.record),
        ]
    }

    fn crew(&self, did: &str, commit: &Commit, crew: &records::Crew) -> Vec<Op> {
        let locator = render::locator(&[("member", &crew.member)]);
        vec![
            self.unlocate(commit, &locator),
            Op::Hset {
                key: self.keys.hold(did, "crew"),
                field: crew.member.clone(),
                value: render::crew(crew, &commit.rkey),
                ttl: self.ttl.index,
            },
            self.locate(did, commit, locator, self.ttl.index),
        ]
    }

    fn stats(&self, did: &str, commit: &Commit, stats: &records::Stats) -> Vec<Op> {
        let locator =
            render::locator(&[("owner", &stats.owner), ("repository", &stats.repository)]);
        let follow = serde_json::json!({
            "op": "stats_set", "owner": stats.owner, "repository": stats.repository,
            "hold": did, "value": render::stats(stats),
        });
        vec![
            self.unlocate(commit, &locator),
            self.locate(did, commit, locator, self.ttl.aggregate),
            Op::Emit { follow },
        ]
    }

    /// Lists the repository in `repos` with score 0 unless a manifest already scored it.
    fn repo_listed(&self, did: &str, repository: &str) -> Op {
        Op::Zadd {
            key: self.keys.repos(did),
            member: repository.to_owned(),
            score: "0".to_owned(),
            only_new: true,
            ttl: self.ttl.index,
        }
    }

    fn unlocate(&self, commit: &Commit, locator: &str) -> Op {
        Op::Unlocate {
            collection: commit.collection.clone(),
            rkey: commit.rkey.clone(),
            keep: Some(locator.to_owned()),
        }
    }

    fn locate(&self, did: &str, commit: &Commit, locator: String, ttl: u64) -> Op {
        Op::Hset {
            key: self.keys.locators(did, &commit.collection),
            field: commit.rkey.clone(),
            value: locator,
            ttl,
        }
    }

    fn with_record(&self, mut ops: Vec<Op>, event: &Event, commit: &Commit, raw: &str) -> Vec<Op> {
        let uri = at_uri(&event.did, commit);
        ops.push(Op::Set {
            key: self
                .keys
                .record(&event.did, &commit.collection, &commit.rkey),
            value: render::record(&uri, commit.cid.as_deref(), &commit.rev, event.time_us, raw),
            ttl: self.ttl.record,
        });
        ops.push(Op::UserTtl);
        ops
    }

    /// A step in the slot of `did`.
    pub fn step(&self, did: &str, guard: Option<Guard>, ops: Vec<Op>) -> Step {
        Step {
            slot: Slot::Account(did.to_owned()),
            program: Program {
                base: self.keys.account(did),
                did: did.to_owned(),
                guard,
                ops,
                ttl: self.ttl,
            },
        }
    }

    /// How many `recent:pushes` members to keep.
    pub fn recent_keep(&self) -> u64 {
        self.recent_keep
    }

    /// Expiries by class.
    pub fn ttl(&self) -> TtlSecs {
        self.ttl
    }
}

fn guard(keys: &Keys, did: &str, commit: &Commit) -> Guard {
    Guard {
        key: keys.record(did, &commit.collection, &commit.rkey),
        rev: commit.rev.clone(),
    }
}

fn at_uri(did: &str, commit: &Commit) -> String {
    format!("at://{did}/{}/{}", commit.collection, commit.rkey)
}

fn pending<R>(event: &Event, commit: &Commit, raw: &str, record: R) -> Pending<R> {
    Pending {
        event: event.clone(),
        commit_rev: commit.rev.clone(),
        record,
        raw: raw.to_owned(),
        cid: commit.cid.clone(),
    }
}

/// The record key of a commit event.
fn rebuilt_rkey(event: &Event) -> String {
    match &event.body {
        Body::Commit(commit) => commit.rkey.clone(),
        _ => String::new(),
    }
}

fn rebuilt_commit(event: &Event, rev: &str, collection: &str, cid: &Option<String>) -> Commit {
    let rkey = rebuilt_rkey(event);
    Commit {
        rev: rev.to_owned(),
        operation: Operation::Update,
        collection: collection.to_owned(),
        rkey,
        record: None,
        cid: cid.clone(),
    }
}

/// Escapes the glob characters of a SCAN pattern (none occur in validated DIDs and prefixes;
/// escaping keeps that an invariant of this function rather than of its callers).
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// `sha256:<rkey>` when the record key is 64 lowercase hex, as scan keys are.
fn digest_from_hex(rkey: &str) -> Option<String> {
    let digest = format!("sha256:{rkey}");
    records::syntax::is_digest(&digest).then_some(digest)
}

/// The bounded metric label of a collection.
pub fn collection_label(collection: &str) -> &'static str {
    const KNOWN: [&str; 12] = [
        nsid::MANIFEST,
        nsid::TAG,
        nsid::PAGE,
        nsid::STAR,
        "io.atcr.sailor.profile",
        "io.atcr.sailor.webhook",
        nsid::CAPTAIN,
        nsid::CREW,
        "io.atcr.hold.layer",
        nsid::STATS,
        nsid::SCAN,
        "io.atcr.hold",
    ];
    KNOWN
        .iter()
        .find(|known| **known == collection)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
