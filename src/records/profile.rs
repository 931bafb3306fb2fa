//! `io.atcr.sailor.profile`: a user's registry settings, key `self` (`records.md` §3.5).
//!
//! Nothing is derived from it; readers take the settings from the cached record. It is still
//! checked, so the cache holds only valid profiles. `defaultHold` accepts the current DID, the
//! old http(s) URL form, and empty or `null` for "no default hold".

use serde_json::Value;

use super::fields::{boolean, datetime, string, text, Fault, Fields};
use super::syntax::{is_did_allowing_localhost, is_http_url};
use super::{require_self_key, Event, Reason, Rejection};

/// Longest OCI client name, in bytes.
const OCI_CLIENT_MAX_BYTES: usize = 32;

/// Longest registry domain, in bytes.
const REGISTRY_DOMAIN_MAX_BYTES: usize = 255;

/// Checks a profile record.
pub(crate) fn check(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<(), Rejection> {
    require_self_key(event)?;
    fields.require("createdAt", datetime)?;
    fields.optional("updatedAt", datetime);
    fields.optional("defaultHold", |v| default_hold(v, event.allow_localhost));
    fields.optional("autoRemoveUntagged", boolean);
    fields.optional("ociClient", |v| text(v, OCI_CLIENT_MAX_BYTES));
    fields.optional("registryDomain", |v| text(v, REGISTRY_DOMAIN_MAX_BYTES));
    Ok(())
}

/// A default hold: a DID, an http(s) URL (older records), or empty or `null` for none.
fn default_hold(value: &Value, allow_localhost: bool) -> Result<(), Fault> {
    if value.is_null() {
        return Ok(());
    }
    let hold = string(value)?;
    let valid =
        hold.is_empty() || is_did_allowing_localhost(hold, allow_localhost) || is_http_url(hold);
    if !valid {
        return Err(Fault::new(Reason::Did, "neither a DID nor an http(s) URL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::records::fixtures::*;
    use crate::records::Reason;

    const KEY: (&str, &str, &str) = (USER, "io.atcr.sailor.profile", "self");

    fn profile() -> Value {
        json!({
            "$type": "io.atcr.sailor.profile", "createdAt": TIME, "updatedAt": TIME,
            "defaultHold": HOLD, "autoRemoveUntagged": false, "ociClient": "podman",
            "registryDomain": "atcr.io"
        })
    }

    fn notes_of(value: &Value) -> Vec<crate::records::Note> {
        accept(KEY.0, KEY.1, KEY.2, value).notes
    }

    #[test]
    fn current_shape_is_cached_only() {
        assert_cached_only(accept(KEY.0, KEY.1, KEY.2, &profile()), vec![]);
    }

    #[test]
    fn default_hold_accepts_every_known_form() {
        let forms = [
            json!(HOLD),
            json!(USER),
            json!("https://hold01.atcr.io"),
            json!(""),
            json!(null),
        ];
        for form in forms {
            assert_eq!(
                notes_of(&with(&profile(), "defaultHold", form.clone())),
                vec![],
                "{form}"
            );
        }
        assert_eq!(notes_of(&without(&profile(), "defaultHold")), vec![]);
    }

    #[test]
    fn invalid_default_hold_is_dropped() {
        for bad in [
            json!("hold01.atcr.io"),
            json!("ftp://hold01.atcr.io"),
            json!(1),
            json!("{}"),
        ] {
            assert_eq!(
                notes_of(&with(&profile(), "defaultHold", bad.clone())),
                dropped("defaultHold"),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_must_be_self() {
        for rkey in [TID, "SELF", "self."] {
            assert_rejected((USER, KEY.1, rkey), &profile(), Reason::Rkey, "rkey");
        }
    }

    #[test]
    fn created_at_is_required() {
        assert_rejected(
            KEY,
            &without(&profile(), "createdAt"),
            Reason::Missing,
            "createdAt",
        );
        let bad = with(&profile(), "createdAt", json!("2026-03-01T12:00"));
        assert_rejected(KEY, &bad, Reason::Datetime, "createdAt");
    }

    #[test]
    fn updated_at_is_optional() {
        assert_eq!(notes_of(&without(&profile(), "updatedAt")), vec![]);
        assert_eq!(
            notes_of(&with(&profile(), "updatedAt", json!("now"))),
            dropped("updatedAt")
        );
    }

    #[test]
    fn other_optional_fields_are_dropped() {
        let cases = [
            ("autoRemoveUntagged", json!("yes")),
            ("ociClient", json!("c".repeat(33))),
            ("registryDomain", json!("d".repeat(256))),
        ];
        for (field, bad) in cases {
            assert_eq!(
                notes_of(&with(&profile(), field, bad)),
                dropped(field),
                "{field}"
            );
        }
        assert_eq!(
            notes_of(&with(&profile(), "ociClient", json!("future-client"))),
            vec![]
        );
    }
}
