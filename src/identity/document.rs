//! Where a DID's document lives, and what this daemon reads from it: the handle and the PDS.
//!
//! Invariant: only `did:plc` and host-level `did:web` DIDs are looked up, and a `did:web` on
//! localhost (over plain HTTP, port allowed) only when the testing switch allows it. The handle is
//! the first syntactically valid `at://` entry of `alsoKnownAs`, lowercased; it is not checked
//! back against the handle's DNS record or `/.well-known/atproto-did`, so it is as trustworthy as
//! the document that names it.

use atrium_api::did_doc::DidDocument;
use atrium_api::types::string::Did;

use super::error::IdentityError;

/// Length of the identifier after `did:plc:` (base32 of a truncated hash).
const PLC_ID_LEN: usize = 24;

/// Longest handle the atproto handle syntax allows.
const MAX_HANDLE_LEN: usize = 253;

/// Longest label of a handle or hostname.
const MAX_LABEL_LEN: usize = 63;

/// Where the document of a DID is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DidTarget {
    /// From the PLC directory, at `/<did>`.
    Plc(Did),
    /// From this URL, `https://<host>/.well-known/did.json` (or plain HTTP on localhost).
    Web(String),
}

impl DidTarget {
    /// Where to find the document of `did`, or why it is not looked up.
    pub(super) fn parse(did: &str, allow_localhost: bool) -> Result<DidTarget, IdentityError> {
        let unsupported = |why| IdentityError::UnsupportedDid {
            did: did.to_owned(),
            why,
        };
        if let Some(id) = did.strip_prefix("did:plc:") {
            if !is_plc_id(id) {
                return Err(unsupported("not 24 base32 characters after did:plc:"));
            }
            return Did::new(did.to_owned())
                .map(DidTarget::Plc)
                .map_err(unsupported);
        }
        match did.strip_prefix("did:web:") {
            Some(host) => web_url(host, allow_localhost)
                .map(DidTarget::Web)
                .map_err(unsupported),
            None => Err(unsupported("only did:plc and did:web are resolved")),
        }
    }
}

fn is_plc_id(id: &str) -> bool {
    let base32 = |c: char| c.is_ascii_lowercase() || ('2'..='7').contains(&c);
    id.len() == PLC_ID_LEN && id.chars().all(base32)
}

/// `did:web:<host>` → the document URL; the host is a hostname, or `localhost%3A<port>` in tests.
fn web_url(host: &str, allow_localhost: bool) -> Result<String, &'static str> {
    let (name, port) = match host.split_once("%3A").or_else(|| host.split_once("%3a")) {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if name == "localhost" {
        if !allow_localhost {
            return Err("did:web on localhost needs testing.allow_localhost_did_web");
        }
        return match port {
            Some(port) if port.parse::<u16>().is_err() => Err("port is not a number"),
            Some(port) => Ok(format!("http://localhost:{port}/.well-known/did.json")),
            None => Ok("http://localhost/.well-known/did.json".to_owned()),
        };
    }
    if port.is_some() || !is_hostname(name) {
        return Err("did:web needs a bare hostname (no path, no port)");
    }
    Ok(format!(
        "https://{}/.well-known/did.json",
        name.to_ascii_lowercase()
    ))
}

/// What the daemon keeps from a DID document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    /// The first valid handle of `alsoKnownAs`, lowercased.
    pub(super) handle: Option<String>,
    /// The `#atproto_pds` endpoint, without a trailing slash.
    pub(super) pds: Option<String>,
}

impl Facts {
    /// Reads the handle and PDS of `did` from its document; a document of another DID is refused.
    pub(super) fn read(did: &str, document: &DidDocument) -> Result<Facts, IdentityError> {
        if document.id != did {
            let message = format!("document of {} served for {did}", document.id);
            return Err(IdentityError::InvalidDocument(message));
        }
        let aliases = document.also_known_as.as_deref().unwrap_or_default();
        let pds = document.get_pds_endpoint();
        Ok(Facts {
            handle: aliases.iter().find_map(|alias| handle_of(alias)),
            pds: pds.map(|endpoint| endpoint.trim_end_matches('/').to_owned()),
        })
    }
}

/// `at://alice.example.com` → `alice.example.com`, when it is a valid handle.
fn handle_of(alias: &str) -> Option<String> {
    let handle = alias.strip_prefix("at://")?;
    is_hostname(handle).then(|| handle.to_ascii_lowercase())
}

/// The atproto handle syntax, which `did:web` hostnames follow too: two or more labels of ASCII
/// letters, digits and inner hyphens, and a last label that does not start with a digit.
fn is_hostname(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=MAX_LABEL_LEN).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let last_ok = labels
        .last()
        .is_some_and(|last| !last.starts_with(|c: char| c.is_ascii_digit()));
    name.len() <= MAX_HANDLE_LEN && labels.len() >= 2 && labels.iter().all(label_ok) && last_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

    fn document(json: &str) -> DidDocument {
        serde_json::from_str(json).expect("test document parses")
    }

    fn plc_document(aliases: &str, services: &str) -> DidDocument {
        document(&format!(
            r#"{{"id":"{DID}","alsoKnownAs":{aliases},"service":{services}}}"#
        ))
    }

    const PDS: &str = r##"[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer",
        "serviceEndpoint":"https://pds.example.com/"}]"##;

    #[test]
    fn handle_is_the_first_valid_alias() {
        let aliases = r#"["https://alice.example", "at://not a handle", "at://Alice.Example.COM",
            "at://bob.example.com"]"#;
        let facts = Facts::read(DID, &plc_document(aliases, PDS)).expect("valid document");
        assert_eq!(facts.handle.as_deref(), Some("alice.example.com"));
        assert_eq!(facts.pds.as_deref(), Some("https://pds.example.com"));
    }

    #[test]
    fn no_valid_alias_means_no_handle() {
        for aliases in [
            r#"[]"#,
            r#"["at://localhost", "at://x.123", "at://-a.com"]"#,
        ] {
            let facts = Facts::read(DID, &plc_document(aliases, PDS)).expect("valid document");
            assert_eq!(facts.handle, None, "aliases {aliases}");
        }
        let bare = document(&format!(r#"{{"id":"{DID}"}}"#));
        let facts = Facts::read(DID, &bare).expect("a bare document is valid");
        assert_eq!((facts.handle, facts.pds), (None, None));
    }

    #[test]
    fn pds_is_the_atproto_pds_service_by_short_or_full_id() {
        let full = format!(
            r#"[{{"id":"{DID}#atproto_pds","type":"AtprotoPersonalDataServer",
            "serviceEndpoint":"http://127.0.0.1:2583"}}]"#
        );
        let facts = Facts::read(DID, &plc_document("[]", &full)).expect("valid document");
        assert_eq!(facts.pds.as_deref(), Some("http://127.0.0.1:2583"));
    }

    #[test]
    fn other_services_are_not_a_pds() {
        let services = r##"[{"id":"#atproto_pds","type":"BskyFeedGenerator",
              "serviceEndpoint":"https://feed.example.com"},
            {"id":"#atproto_labeler","type":"AtprotoLabeler",
              "serviceEndpoint":"https://labeler.example.com"},
            {"id":"#atproto_pds","type":"AtprotoPersonalDataServer",
              "serviceEndpoint":"ftp://pds.example.com"}]"##;
        let facts = Facts::read(DID, &plc_document("[]", services)).expect("valid document");
        assert_eq!(facts.pds, None);
    }

    #[test]
    fn document_of_another_did_is_refused() {
        let other = document(r#"{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}"#);
        let error = Facts::read(DID, &other).expect_err("id differs");
        assert_eq!(error.reason(), "invalid_document", "{error}");
    }

    #[test]
    fn garbage_is_not_a_document() {
        for garbage in [
            "not json",
            "{}",
            r#"{"id":5}"#,
            r#"{"id":"x","service":[{}]}"#,
        ] {
            let parsed = serde_json::from_str::<DidDocument>(garbage);
            assert!(parsed.is_err(), "{garbage} parsed as {parsed:?}");
        }
    }

    #[test]
    fn plc_dids_are_checked() {
        let target = DidTarget::parse(DID, false).expect("valid did:plc");
        assert!(matches!(target, DidTarget::Plc(did) if did.as_str() == DID));
        for bad in [
            "did:plc:short",
            "did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ",
            "did:key:z6Mk",
        ] {
            let error = DidTarget::parse(bad, true).expect_err(bad);
            assert_eq!(error.reason(), "unsupported_did", "{bad}: {error}");
        }
    }

    #[test]
    fn web_dids_map_to_well_known_urls() {
        let cases = [
            (
                "did:web:Example.com",
                "https://example.com/.well-known/did.json",
            ),
            (
                "did:web:localhost%3A8080",
                "http://localhost:8080/.well-known/did.json",
            ),
        ];
        for (did, url) in cases {
            let target = DidTarget::parse(did, true).expect(did);
            assert_eq!(target, DidTarget::Web(url.to_owned()));
        }
    }

    #[test]
    fn localhost_web_dids_need_the_testing_switch() {
        let error = DidTarget::parse("did:web:localhost%3A8080", false).expect_err("not allowed");
        assert!(
            error.to_string().contains("allow_localhost_did_web"),
            "{error}"
        );
        for bad in [
            "did:web:example.com%3A8443",
            "did:web:example.com:user:alice",
            "did:web:127.0.0.1",
            "did:web:localhost%3Ahttp",
        ] {
            assert!(DidTarget::parse(bad, true).is_err(), "{bad} was accepted");
        }
    }
}
