//! The records a hold writes about itself: captain, crew and stats (`records.md` §3.6–3.9).
//!
//! They live in the hold's own PDS, so the event DID is the hold. The captain record has the
//! fixed key `self`; crew and stats keys are not checked (their schemes are unpublished).

use super::fields::{boolean, count, datetime, did, repository, string_list, text, Fields};
use super::{require_self_key, Event, Rejection};

/// Longest region name, in bytes.
const REGION_MAX_BYTES: usize = 64;

/// Longest crew role, in bytes.
const ROLE_MAX_BYTES: usize = 32;

/// Longest crew permission, in bytes.
const PERMISSION_MAX_BYTES: usize = 64;

/// Longest quota tier name, in bytes.
const TIER_MAX_BYTES: usize = 32;

/// Longest repository name in a stats record, in bytes.
const REPOSITORY_MAX_BYTES: usize = 256;

/// The hold's settings, from its `self` captain record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captain {
    /// The DID of the hold's owner.
    pub owner: String,
    /// Whether anonymous pulls are allowed.
    pub public: bool,
    /// Whether any signed-in user may join as crew.
    pub allow_all_crew: bool,
    /// Whether the hold posts pushes to Bluesky.
    pub enable_bluesky_posts: bool,
    /// `deployedAt` as written.
    pub deployed_at: String,
    /// The region the hold runs in.
    pub region: Option<String>,
    /// The hold to redirect to.
    pub successor: Option<String>,
}

/// One crew member of the hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crew {
    /// The member's DID.
    pub member: String,
    /// The member's role (an open set: owner, admin, write, read, member, …).
    pub role: String,
    /// The member's permissions (an open set: `blob:read`, `blob:write`, …).
    pub permissions: Vec<String>,
    /// The quota tier; `None` when absent or empty, both meaning the hold's default.
    pub tier: Option<String>,
    /// `addedAt` as written.
    pub added_at: String,
}

/// Pull and push counts of one repository on the hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The DID of the image owner.
    pub owner: String,
    /// The repository name.
    pub repository: String,
    /// Number of pulls.
    pub pull_count: i64,
    /// Number of pushes.
    pub push_count: i64,
    /// `updatedAt` as written.
    pub updated_at: String,
    /// Time of the last pull, as written.
    pub last_pull: Option<String>,
    /// Time of the last push, as written.
    pub last_push: Option<String>,
}

/// Decodes a captain record; the old `provider` and `supporterBadgeTiers` are ignored.
pub(crate) fn decode_captain(
    event: &Event<'_>,
    fields: &mut Fields<'_>,
) -> Result<Captain, Rejection> {
    require_self_key(event)?;
    let owner = fields.require("owner", |v| did(v, event.allow_localhost))?;
    let public = fields.require("public", boolean)?;
    let allow_all_crew = fields.require("allowAllCrew", boolean)?;
    let enable_bluesky_posts = fields.require("enableBlueskyPosts", boolean)?;
    let (deployed_at, _) = fields.require("deployedAt", datetime)?;
    Ok(Captain {
        owner: owner.to_owned(),
        public,
        allow_all_crew,
        enable_bluesky_posts,
        deployed_at: deployed_at.to_owned(),
        region: fields
            .optional("region", |v| text(v, REGION_MAX_BYTES))
            .map(str::to_owned),
        successor: fields
            .optional("successor", |v| did(v, event.allow_localhost))
            .map(str::to_owned),
    })
}

/// Decodes a crew record; an empty tier is normalised to `None`.
pub(crate) fn decode_crew(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<Crew, Rejection> {
    let member = fields.require("member", |v| did(v, event.allow_localhost))?;
    let role = fields.require("role", |v| text(v, ROLE_MAX_BYTES))?;
    let permissions = fields.require("permissions", |v| string_list(v, PERMISSION_MAX_BYTES))?;
    let (added_at, _) = fields.require("addedAt", datetime)?;
    let tier = fields.optional("tier", |v| text(v, TIER_MAX_BYTES));
    Ok(Crew {
        member: member.to_owned(),
        role: role.to_owned(),
        permissions,
        tier: tier.filter(|tier| !tier.is_empty()).map(str::to_owned),
        added_at: added_at.to_owned(),
    })
}

/// Decodes a stats record; its key (a hash of owner and repository) is not checked.
pub(crate) fn decode_stats(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<Stats, Rejection> {
    let owner = fields.require("ownerDid", |v| did(v, event.allow_localhost))?;
    let repository = fields.require("repository", |v| repository(v, REPOSITORY_MAX_BYTES))?;
    let pull_count = fields.require("pullCount", count)?;
    let push_count = fields.require("pushCount", count)?;
    let (updated_at, _) = fields.require("updatedAt", datetime)?;
    let last_pull = fields.optional("lastPull", datetime);
    let last_push = fields.optional("lastPush", datetime);
    Ok(Stats {
        owner: owner.to_owned(),
        repository: repository.to_owned(),
        pull_count,
        push_count,
        updated_at: updated_at.to_owned(),
        last_pull: last_pull.map(|(text, _)| text.to_owned()),
        last_push: last_push.map(|(text, _)| text.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::records::fixtures::*;
    use crate::records::{Note, Reason, Record, Validated};

    const CAPTAIN_KEY: (&str, &str, &str) = (HOLD, "io.atcr.hold.captain", "self");
    const CREW_KEY: (&str, &str, &str) = (HOLD, "io.atcr.hold.crew", TID);
    const STATS_KEY: (&str, &str, &str) = (HOLD, "io.atcr.hold.stats", "mfrggzdfmztwq2lk");

    fn record(key: (&str, &str, &str), value: &Value) -> Validated {
        accept(key.0, key.1, key.2, value)
    }

    fn captain() -> Value {
        json!({
            "$type": "io.atcr.hold.captain", "owner": USER, "public": true,
            "allowAllCrew": false, "enableBlueskyPosts": true,
            "deployedAt": "2025-11-02T10:00:00Z", "region": "fra",
            "successor": "did:web:hold02.atcr.io"
        })
    }

    fn crew() -> Value {
        json!({
            "$type": "io.atcr.hold.crew", "member": OTHER_USER, "role": "write",
            "permissions": ["blob:read", "blob:write"], "addedAt": TIME, "tier": "supporter"
        })
    }

    fn stats() -> Value {
        json!({
            "$type": "io.atcr.hold.stats", "ownerDid": USER, "repository": "tools/psql-client",
            "pullCount": 1204, "pushCount": 17, "updatedAt": TIME,
            "lastPull": TIME, "lastPush": "2026-02-27T18:30:00Z"
        })
    }

    #[test]
    fn captain_current_shape() {
        let Validated {
            record: Record::Captain(captain),
            notes,
        } = record(CAPTAIN_KEY, &captain())
        else {
            panic!("expected a captain");
        };
        assert_eq!(notes, vec![]);
        assert_eq!(captain.owner, USER);
        assert!(captain.public && !captain.allow_all_crew && captain.enable_bluesky_posts);
        assert_eq!(captain.region.as_deref(), Some("fra"));
        assert_eq!(captain.successor.as_deref(), Some("did:web:hold02.atcr.io"));
    }

    #[test]
    fn captain_old_shapes_with_provider_and_badge_tiers() {
        let old = with(
            &without(&captain(), "successor"),
            "provider",
            json!("fly.io"),
        );
        let tiers = with(&old, "supporterBadgeTiers", json!(["deckhand", "bosun"]));
        for value in [old, tiers] {
            assert!(
                matches!(record(CAPTAIN_KEY, &value).record, Record::Captain(_)),
                "{value}"
            );
        }
    }

    #[test]
    fn captain_key_must_be_self() {
        for rkey in [TID, "Self", "self2"] {
            let key = (HOLD, "io.atcr.hold.captain", rkey);
            assert_rejected(key, &captain(), Reason::Rkey, "rkey");
        }
    }

    #[test]
    fn captain_required_fields() {
        let required = [
            "owner",
            "public",
            "allowAllCrew",
            "enableBlueskyPosts",
            "deployedAt",
        ];
        for field in required {
            assert_rejected(
                CAPTAIN_KEY,
                &without(&captain(), field),
                Reason::Missing,
                field,
            );
        }
        for field in ["public", "allowAllCrew", "enableBlueskyPosts"] {
            assert_rejected(
                CAPTAIN_KEY,
                &with(&captain(), field, json!("true")),
                Reason::Type,
                field,
            );
        }
        assert_rejected(
            CAPTAIN_KEY,
            &with(&captain(), "owner", json!("alice.test")),
            Reason::Did,
            "owner",
        );
    }

    #[test]
    fn captain_optional_fields_are_dropped() {
        let cases = [
            ("region", json!("r".repeat(65))),
            ("successor", json!("https://hold02.atcr.io")),
        ];
        for (field, bad) in cases {
            assert_eq!(
                record(CAPTAIN_KEY, &with(&captain(), field, bad)).notes,
                dropped(field)
            );
        }
    }

    #[test]
    fn crew_current_shape() {
        let Validated {
            record: Record::Crew(crew),
            notes,
        } = record(CREW_KEY, &crew())
        else {
            panic!("expected a crew record");
        };
        assert_eq!(notes, vec![]);
        assert_eq!(
            (crew.member.as_str(), crew.role.as_str()),
            (OTHER_USER, "write")
        );
        assert_eq!(crew.permissions, ["blob:read", "blob:write"]);
        assert_eq!(crew.tier.as_deref(), Some("supporter"));
        assert_eq!(crew.added_at, TIME);
    }

    #[test]
    fn crew_open_roles_and_empty_tier() {
        let value = with(&with(&crew(), "role", json!("member")), "tier", json!(""));
        let Validated {
            record: Record::Crew(crew),
            notes,
        } = record(CREW_KEY, &value)
        else {
            panic!("expected a crew record");
        };
        assert_eq!(
            (crew.role.as_str(), crew.tier, notes),
            ("member", None, vec![])
        );
    }

    #[test]
    fn crew_required_fields() {
        for field in ["member", "role", "permissions", "addedAt"] {
            assert_rejected(CREW_KEY, &without(&crew(), field), Reason::Missing, field);
        }
        let cases = [
            ("member", json!("*"), Reason::Did),
            ("role", json!("r".repeat(33)), Reason::MaxLength),
            ("permissions", json!("blob:read"), Reason::Type),
            ("permissions", json!(["blob:read", 7]), Reason::Type),
            ("permissions", json!(["p".repeat(65)]), Reason::MaxLength),
            ("addedAt", json!("2026-03-01"), Reason::Datetime),
        ];
        for (field, bad, reason) in cases {
            assert_rejected(CREW_KEY, &with(&crew(), field, bad), reason, field);
        }
    }

    #[test]
    fn crew_overlong_tier_is_dropped() {
        let value = with(&crew(), "tier", json!("t".repeat(33)));
        assert_eq!(record(CREW_KEY, &value).notes, dropped("tier"));
    }

    #[test]
    fn stats_current_shape() {
        let Validated {
            record: Record::Stats(stats),
            notes,
        } = record(STATS_KEY, &stats())
        else {
            panic!("expected a stats record");
        };
        assert_eq!(notes, vec![]);
        assert_eq!(
            (stats.owner.as_str(), stats.repository.as_str()),
            (USER, "tools/psql-client")
        );
        assert_eq!((stats.pull_count, stats.push_count), (1204, 17));
        assert_eq!(stats.last_push.as_deref(), Some("2026-02-27T18:30:00Z"));
    }

    #[test]
    fn stats_required_fields() {
        for field in [
            "ownerDid",
            "repository",
            "pullCount",
            "pushCount",
            "updatedAt",
        ] {
            assert_rejected(STATS_KEY, &without(&stats(), field), Reason::Missing, field);
        }
        let cases = [
            ("pullCount", json!(-1), Reason::Integer),
            ("pushCount", json!(1.5), Reason::Integer),
            ("pullCount", json!(u64::MAX), Reason::Integer),
            ("pullCount", json!("12"), Reason::Type),
            ("repository", json!("r".repeat(257)), Reason::MaxLength),
            (
                "ownerDid",
                json!("did:plc:AAAAAAAAAAAAAAAAAAAAAAAA"),
                Reason::Did,
            ),
        ];
        for (field, bad, reason) in cases {
            let rejection = reject(
                STATS_KEY.0,
                STATS_KEY.1,
                STATS_KEY.2,
                &with(&stats(), field, bad),
            );
            assert_eq!(rejection.reason, reason, "{field}");
        }
        let at_limit = with(&stats(), "repository", json!("r".repeat(256)));
        assert_eq!(record(STATS_KEY, &at_limit).notes, vec![]);
    }

    #[test]
    fn stats_optional_times_are_dropped() {
        let value = with(&without(&stats(), "lastPush"), "lastPull", json!("never"));
        let Validated {
            record: Record::Stats(stats),
            notes,
        } = record(STATS_KEY, &value)
        else {
            panic!("expected a stats record");
        };
        assert_eq!(
            (stats.last_pull, stats.last_push, notes),
            (None, None, dropped("lastPull"))
        );
    }

    #[test]
    fn hold_notes_do_not_leak_between_records() {
        assert_eq!(record(CREW_KEY, &crew()).notes, Vec::<Note>::new());
    }
}
