//! Follow-ups: writes into another slot that a main step's answer asks for.
//!
//! A main step runs in the slot of the event's account; what it changes in another account
//! (the owner's star set, stats and scan summary) or in the global `recent:pushes` set comes
//! back from the script as a [`FollowUp`] and is applied as a second atomic step, only when the
//! main step passed its guard. Each follow-up is idempotent on its own.

use serde::Deserialize;

use super::program::{Op, Program};
use super::{Indexer, Slot, Step};

/// A write in another slot, as the script reports it.
/// Variant fields are named after the key parts and values they fill.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FollowUp {
    /// Add the starrer to the owner's repository star set.
    StarAdd {
        owner: String,
        repository: String,
        starrer: String,
        score: String,
    },
    /// Remove the starrer from the owner's repository star set.
    StarRemove {
        owner: String,
        repository: String,
        starrer: String,
    },
    /// Set one hold's counts in the owner's repository stats.
    StatsSet {
        owner: String,
        repository: String,
        hold: String,
        value: String,
    },
    /// Remove one hold's counts from the owner's repository stats.
    StatsRemove {
        owner: String,
        repository: String,
        hold: String,
    },
    /// Set the scan summary of the owner's manifest.
    ScanSet {
        owner: String,
        digest: String,
        hold: String,
        value: String,
    },
    /// Remove the scan summary of the owner's manifest if this hold wrote it.
    ScanRemove {
        owner: String,
        digest: String,
        hold: String,
    },
    /// Move or remove `<did>/<repository>` in `recent:pushes`.
    Recent {
        did: String,
        repository: String,
        score: Option<String>,
    },
}

impl Indexer {
    /// The step that applies one follow-up.
    pub fn follow_up(&self, follow: &FollowUp) -> Step {
        let (owner, op) = match follow {
            FollowUp::Recent {
                did,
                repository,
                score,
            } => return self.recent_step(did, repository, score.clone()),
            FollowUp::StarAdd {
                owner,
                repository,
                starrer,
                score,
            } => (owner, self.star_add(owner, repository, starrer, score)),
            FollowUp::StarRemove {
                owner,
                repository,
                starrer,
            } => {
                let key = self.keys().repo(owner, repository, "stars");
                (
                    owner,
                    Op::Zrem {
                        key,
                        member: starrer.clone(),
                    },
                )
            }
            FollowUp::StatsSet {
                owner,
                repository,
                hold,
                value,
            } => (owner, self.stats_set(owner, repository, hold, value)),
            FollowUp::StatsRemove {
                owner,
                repository,
                hold,
            } => {
                let key = self.keys().repo(owner, repository, "stats");
                (
                    owner,
                    Op::Hdel {
                        key,
                        field: hold.clone(),
                    },
                )
            }
            FollowUp::ScanSet {
                owner,
                digest,
                value,
                ..
            } => {
                let key = self.keys().manifest(owner, digest, ":scan");
                (
                    owner,
                    Op::Set {
                        key,
                        value: value.clone(),
                        ttl: self.ttl().record,
                    },
                )
            }
            FollowUp::ScanRemove {
                owner,
                digest,
                hold,
            } => {
                let key = self.keys().manifest(owner, digest, ":scan");
                (
                    owner,
                    Op::DelIf {
                        key,
                        json_field: "hold".to_owned(),
                        equals: hold.clone(),
                    },
                )
            }
        };
        self.step(owner, None, vec![op])
    }

    fn star_add(&self, owner: &str, repository: &str, starrer: &str, score: &str) -> Op {
        Op::Zadd {
            key: self.keys().repo(owner, repository, "stars"),
            member: starrer.to_owned(),
            score: score.to_owned(),
            only_new: false,
            ttl: self.ttl().aggregate,
        }
    }

    fn stats_set(&self, owner: &str, repository: &str, hold: &str, value: &str) -> Op {
        Op::Hset {
            key: self.keys().repo(owner, repository, "stats"),
            field: hold.to_owned(),
            value: value.to_owned(),
            ttl: self.ttl().aggregate,
        }
    }

    /// The slot a follow-up writes to.
    pub fn follow_slot(follow: &FollowUp) -> Slot {
        match follow {
            FollowUp::StarAdd { owner, .. }
            | FollowUp::StarRemove { owner, .. }
            | FollowUp::StatsSet { owner, .. }
            | FollowUp::StatsRemove { owner, .. }
            | FollowUp::ScanSet { owner, .. }
            | FollowUp::ScanRemove { owner, .. } => Slot::Account(owner.clone()),
            FollowUp::Recent { .. } => Slot::Global,
        }
    }

    fn recent_step(&self, did: &str, repository: &str, score: Option<String>) -> Step {
        let op = Op::Recent {
            key: self.keys().recent_pushes(),
            member: format!("{did}/{repository}"),
            score,
            keep: self.recent_keep(),
        };
        let program = Program {
            base: String::new(),
            did: String::new(),
            guard: None,
            ops: vec![op],
            ttl: self.ttl(),
        };
        Step {
            slot: Slot::Global,
            program,
        }
    }
}
