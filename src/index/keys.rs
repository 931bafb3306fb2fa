//! Key names of the Valkey schema (`docs/keys.md`), built from validated parts only.
//!
//! Every per-account key carries the DID inside literal braces, a Valkey Cluster hash tag, so
//! all keys of one account share a slot. The Lua script builds the same names for the keys it
//! finds through locators; `docs/keys.md` is the single description both follow.

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (validated by the configuration: no braces, no colons).
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `P:{D}:`, the start of every key of one account.
    pub fn account(&self, did: &str) -> String {
        format!("{}:{{{}}}:", self.prefix, did)
    }

    /// `P:{D}:rec:<collection>:<rkey>`.
    pub fn record(&self, did: &str, collection: &str, rkey: &str) -> String {
        format!("{}rec:{collection}:{rkey}", self.account(did))
    }

    /// `P:{D}:rkeys:<collection>`.
    pub fn locators(&self, did: &str, collection: &str) -> String {
        format!("{}rkeys:{collection}", self.account(did))
    }

    /// `P:{D}:user`.
    pub fn user(&self, did: &str) -> String {
        format!("{}user", self.account(did))
    }

    /// `P:{D}:repos`.
    pub fn repos(&self, did: &str) -> String {
        format!("{}repos", self.account(did))
    }

    /// `P:{D}:starred`.
    pub fn starred(&self, did: &str) -> String {
        format!("{}starred", self.account(did))
    }

    /// `P:{D}:manifest:<digest>`, or with a suffix such as `:layers`.
    pub fn manifest(&self, did: &str, digest: &str, suffix: &str) -> String {
        format!("{}manifest:{digest}{suffix}", self.account(did))
    }

    /// `P:{D}:repo:<repo>:<what>` for `manifests`, `tags`, `annotations`, `page`, `stars`, `stats`.
    pub fn repo(&self, did: &str, repository: &str, what: &str) -> String {
        format!("{}repo:{repository}:{what}", self.account(did))
    }

    /// `P:{H}:hold:<what>` for `captain` and `crew`.
    pub fn hold(&self, hold: &str, what: &str) -> String {
        format!("{}hold:{what}", self.account(hold))
    }

    /// `P:recent:pushes`.
    pub fn recent_pushes(&self) -> String {
        format!("{}:recent:pushes", self.prefix)
    }

    /// `P:cursor:<name>`.
    pub fn cursor(&self, name: &str) -> String {
        format!("{}:cursor:{name}", self.prefix)
    }

    /// `P:meta`.
    pub fn meta(&self) -> String {
        format!("{}:meta", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn account_keys_share_the_hash_tag() {
        let keys = Keys::new("atcr");
        assert_eq!(
            keys.user(DID),
            "atcr:{did:plc:aaaaaaaaaaaaaaaaaaaaaaaa}:user"
        );
        assert_eq!(
            keys.record(DID, "io.atcr.tag", "3mg"),
            "atcr:{did:plc:aaaaaaaaaaaaaaaaaaaaaaaa}:rec:io.atcr.tag:3mg"
        );
        assert_eq!(
            keys.repo(DID, "team/api", "tags"),
            "atcr:{did:plc:aaaaaaaaaaaaaaaaaaaaaaaa}:repo:team/api:tags"
        );
    }

    #[test]
    fn control_keys_have_no_hash_tag() {
        let keys = Keys::new("x");
        assert_eq!(keys.cursor("jetstream"), "x:cursor:jetstream");
        assert_eq!(keys.meta(), "x:meta");
        assert_eq!(keys.recent_pushes(), "x:recent:pushes");
    }
}
