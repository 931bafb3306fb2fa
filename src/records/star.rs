//! `io.atcr.sailor.star`: a user starring someone's repository (`records.md` §3.4).
//!
//! Two subject shapes exist: the current at-uri of the repository's `io.atcr.repo.page`
//! record, and the older object `{did, repository}`. Both are normalised to the owner DID and
//! a [`StarSubject`]; turning a page key into a repository name needs the cache and is left to
//! the derivation code.

use serde_json::Value;

use super::fields::{at_uri_in, datetime, did, member, repository, Fault, Fields};
use super::{Event, Reason, Rejection, REPO_PAGE};

/// Longest repository name in the old object subject, in bytes.
const REPOSITORY_MAX_BYTES: usize = 255;

/// What a star points at, within the owner's repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StarSubject {
    /// The old object form: the repository name itself.
    Repository(String),
    /// The at-uri form: the record key of the owner's `io.atcr.repo.page` record.
    Page {
        /// The page's record key (the repository name when the name has no `/`).
        rkey: String,
    },
}

/// A star in its current shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Star {
    /// The DID of the starred repository's owner.
    pub owner: String,
    /// The starred repository.
    pub subject: StarSubject,
    /// `createdAt` as written.
    pub created_at: String,
    /// `createdAt` in Unix milliseconds.
    pub created_at_ms: i64,
}

/// Decodes a star record of either subject shape.
pub(crate) fn decode(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<Star, Rejection> {
    let (owner, subject) = fields.require("subject", |v| subject(v, event.allow_localhost))?;
    let (created_at, created_at_ms) = fields.require("createdAt", datetime)?;
    Ok(Star {
        owner,
        subject,
        created_at: created_at.to_owned(),
        created_at_ms,
    })
}

/// The owner DID and subject of either shape.
fn subject(value: &Value, allow_localhost: bool) -> Result<(String, StarSubject), Fault> {
    match value {
        Value::String(_) => {
            let page = at_uri_in(value, REPO_PAGE, allow_localhost)?;
            Ok((
                page.did.to_owned(),
                StarSubject::Page {
                    rkey: page.rkey.to_owned(),
                },
            ))
        }
        Value::Object(old) => {
            let owner = member(old, "did", |v| did(v, allow_localhost))?;
            let name = member(old, "repository", |v| repository(v, REPOSITORY_MAX_BYTES))?;
            Ok((owner.to_owned(), StarSubject::Repository(name.to_owned())))
        }
        _ => Err(Fault::new(
            Reason::Type,
            "neither an at-uri nor a {did, repository} object",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::records::fixtures::*;
    use crate::records::{Record, Validated};

    const KEY: (&str, &str, &str) = (OTHER_USER, STAR_NSID, TID);
    const STAR_NSID: &str = "io.atcr.sailor.star";

    fn star(subject: Value) -> Value {
        json!({"$type": STAR_NSID, "subject": subject, "createdAt": TIME})
    }

    fn page_uri() -> Value {
        json!(format!("at://{USER}/io.atcr.repo.page/app"))
    }

    fn decoded(value: &Value) -> Star {
        match accept(KEY.0, KEY.1, KEY.2, value) {
            Validated {
                record: Record::Star(star),
                notes,
            } if notes.is_empty() => star,
            other => panic!("expected a clean star, got {other:?}"),
        }
    }

    #[test]
    fn at_uri_subject_names_the_page() {
        let star = decoded(&star(page_uri()));
        assert_eq!(star.owner, USER);
        assert_eq!(star.subject, StarSubject::Page { rkey: "app".into() });
        assert_eq!(
            (star.created_at.as_str(), star.created_at_ms),
            (TIME, TIME_MS)
        );
    }

    #[test]
    fn old_object_subject_names_the_repository() {
        let star = decoded(&star(
            json!({"did": USER, "repository": "tools/psql-client"}),
        ));
        assert_eq!(star.owner, USER);
        assert_eq!(
            star.subject,
            StarSubject::Repository("tools/psql-client".into())
        );
    }

    #[test]
    fn at_uri_subject_must_be_a_page() {
        let manifest = star(json!(manifest_uri(USER)));
        assert_rejected(KEY, &manifest, Reason::Collection, "subject");
        let handle = star(json!("at://alice.bsky.social/io.atcr.repo.page/app"));
        assert_rejected(KEY, &handle, Reason::AtUri, "subject");
        let query = star(json!(format!("at://{USER}/io.atcr.repo.page/app?x")));
        assert_rejected(KEY, &query, Reason::AtUri, "subject");
    }

    #[test]
    fn old_subject_checks_its_members() {
        let cases = [
            (json!({"repository": "app"}), Reason::Missing),
            (json!({"did": USER}), Reason::Missing),
            (
                json!({"did": "alice.test", "repository": "app"}),
                Reason::Did,
            ),
            (
                json!({"did": USER, "repository": "App"}),
                Reason::Repository,
            ),
            (
                json!({"did": USER, "repository": "r".repeat(256)}),
                Reason::MaxLength,
            ),
            (json!({"did": USER, "repository": 3}), Reason::Type),
        ];
        for (subject, reason) in cases {
            assert_rejected(KEY, &star(subject), reason, "subject");
        }
        assert_eq!(
            decoded(&star(json!({"did": USER, "repository": "r".repeat(255)}))).owner,
            USER
        );
    }

    #[test]
    fn subject_of_another_type_is_rejected() {
        for subject in [json!(null), json!(1), json!([page_uri()])] {
            assert_rejected(KEY, &star(subject), Reason::Type, "subject");
        }
    }

    #[test]
    fn each_required_field_missing_is_rejected() {
        for field in ["subject", "createdAt"] {
            assert_rejected(
                KEY,
                &without(&star(page_uri()), field),
                Reason::Missing,
                field,
            );
        }
        let bad_time = with(
            &star(page_uri()),
            "createdAt",
            json!("2026-03-01T12:00:00+0000"),
        );
        assert_rejected(KEY, &bad_time, Reason::Datetime, "createdAt");
    }
}
