//! `io.atcr.repo.page`: the page of a repository, its README and avatar (`records.md` §3.3).
//!
//! The page is keyed by its `repository` field, never by its record key: names with `/`
//! cannot be record keys, so a key that differs from the name is only noted.

use super::blob::{blob, BlobRule};
use super::fields::{boolean, datetime, repository, text, Fields};
use super::{Event, Note, Rejection};

/// Longest repository name in a repository page, in bytes.
const REPOSITORY_MAX_BYTES: usize = 256;

/// Longest description (a Markdown README), in bytes.
const DESCRIPTION_MAX_BYTES: usize = 100_000;

/// What the avatar may be: a PNG, JPEG or WebP image of at most 3,000,000 bytes.
const AVATAR: BlobRule = BlobRule {
    accept: &["image/png", "image/jpeg", "image/webp"],
    max_size: Some(3_000_000),
};

/// A repository page in its current shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPage {
    /// The repository name.
    pub repository: String,
    /// The Markdown description.
    pub description: Option<String>,
    /// The CID of the avatar blob.
    pub avatar: Option<String>,
    /// Whether the owner edited the description (the AppView then stops filling it in).
    pub user_edited: Option<bool>,
    /// `createdAt` as written.
    pub created_at: String,
    /// `updatedAt` as written.
    pub updated_at: String,
}

/// Decodes a repository page, noting a record key that differs from the repository.
pub(crate) fn decode(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<RepoPage, Rejection> {
    let repository = fields.require("repository", |v| repository(v, REPOSITORY_MAX_BYTES))?;
    let (created_at, _) = fields.require("createdAt", datetime)?;
    let (updated_at, _) = fields.require("updatedAt", datetime)?;

    let description = fields.optional("description", |v| text(v, DESCRIPTION_MAX_BYTES));
    let avatar = fields.optional("avatar", |v| blob(v, AVATAR));
    let user_edited = fields.optional("userEdited", boolean);
    if event.rkey != repository {
        fields.note(Note::PageRkeyMismatch);
    }

    Ok(RepoPage {
        repository: repository.to_owned(),
        description: description.map(str::to_owned),
        avatar: avatar.map(str::to_owned),
        user_edited,
        created_at: created_at.to_owned(),
        updated_at: updated_at.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::records::fixtures::*;
    use crate::records::{Reason, Record, Validated};

    const KEY: (&str, &str, &str) = (USER, PAGE_NSID, "app");
    const PAGE_NSID: &str = "io.atcr.repo.page";

    fn avatar(mime_type: &str, size: i64) -> Value {
        json!({"$type": "blob", "ref": {"$link": CID}, "mimeType": mime_type, "size": size})
    }

    fn page() -> Value {
        json!({
            "$type": PAGE_NSID,
            "repository": "app",
            "description": "# App\n\nA small image.",
            "avatar": avatar("image/png", 48_213),
            "userEdited": true,
            "createdAt": "2026-01-10T09:00:00Z",
            "updatedAt": TIME
        })
    }

    fn decoded(rkey: &str, value: &Value) -> (RepoPage, Vec<Note>) {
        match accept(USER, PAGE_NSID, rkey, value) {
            Validated {
                record: Record::RepoPage(page),
                notes,
            } => (page, notes),
            other => panic!("expected a repo page, got {other:?}"),
        }
    }

    #[test]
    fn current_shape_is_kept_whole() {
        let (page, notes) = decoded("app", &page());
        assert_eq!(notes, vec![]);
        assert_eq!(page.repository, "app");
        assert_eq!(page.avatar.as_deref(), Some(CID));
        assert_eq!(page.user_edited, Some(true));
        assert_eq!(page.created_at, "2026-01-10T09:00:00Z");
        assert_eq!(page.updated_at, TIME);
        assert!(page.description.is_some_and(|d| d.starts_with("# App")));
    }

    #[test]
    fn minimal_page_without_optional_fields() {
        let value = json!({"$type": PAGE_NSID, "repository": "app",
                           "createdAt": TIME, "updatedAt": TIME});
        let (page, notes) = decoded("app", &value);
        assert_eq!(
            (page.description, page.avatar, page.user_edited),
            (None, None, None)
        );
        assert_eq!(notes, vec![]);
    }

    #[test]
    fn rkey_other_than_repository_is_noted() {
        let value = with(&page(), "repository", json!("tools/psql-client"));
        let (page, notes) = decoded("tools-psql-client", &value);
        assert_eq!(notes, vec![Note::PageRkeyMismatch]);
        assert_eq!(page.repository, "tools/psql-client");
    }

    #[test]
    fn each_required_field_missing_is_rejected() {
        for field in ["repository", "createdAt", "updatedAt"] {
            assert_rejected(KEY, &without(&page(), field), Reason::Missing, field);
        }
    }

    #[test]
    fn repository_limit_is_256_bytes() {
        let name = "r".repeat(256);
        assert_eq!(
            decoded(&name, &with(&page(), "repository", json!(name))).1,
            vec![]
        );
        let long = with(&page(), "repository", json!("r".repeat(257)));
        assert_rejected(KEY, &long, Reason::MaxLength, "repository");
        assert_rejected(
            KEY,
            &with(&page(), "repository", json!("a b")),
            Reason::Repository,
            "repository",
        );
    }

    #[test]
    fn datetimes_are_checked() {
        for field in ["createdAt", "updatedAt"] {
            let value = with(&page(), field, json!("2026-03-01T12:00:00"));
            assert_rejected(KEY, &value, Reason::Datetime, field);
        }
    }

    #[test]
    fn avatar_types_and_size() {
        for mime_type in ["image/png", "image/jpeg", "image/webp"] {
            let value = with(&page(), "avatar", avatar(mime_type, 3_000_000));
            assert_eq!(decoded("app", &value).1, vec![], "{mime_type}");
        }
        let bad = [
            avatar("image/gif", 10),
            avatar("image/svg+xml", 10),
            avatar("image/png", 3_000_001),
            avatar("image/png", -1),
            json!({"ref": {"$link": CID}, "mimeType": "image/png", "size": 1}),
            json!(CID),
        ];
        for avatar in bad {
            let (page, notes) = decoded("app", &with(&page(), "avatar", avatar.clone()));
            assert_eq!((page.avatar, notes), (None, dropped("avatar")), "{avatar}");
        }
    }

    #[test]
    fn description_limit_is_100000_bytes() {
        let at_limit = with(&page(), "description", json!("d".repeat(100_000)));
        assert_eq!(decoded("app", &at_limit).1, vec![]);
        let long = with(&page(), "description", json!("d".repeat(100_001)));
        let (page, notes) = decoded("app", &long);
        assert_eq!((page.description, notes), (None, dropped("description")));
    }

    #[test]
    fn user_edited_must_be_a_boolean() {
        let value = with(&page(), "userEdited", json!("true"));
        let (page, notes) = decoded("app", &value);
        assert_eq!((page.user_edited, notes), (None, dropped("userEdited")));
    }
}
