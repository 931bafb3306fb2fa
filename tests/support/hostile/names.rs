//! Hostile identifiers and names, by what is wrong with each: every one contains `evil` (or is
//! too short to), so a leak into Valkey is easy to spot.

use super::super::events::MANIFEST;
use super::HOSTILE_DID;

/// DIDs that must never name a key, by what is wrong with them.
pub(super) fn hostile_dids() -> Vec<(String, String)> {
    let overlong = format!(
        "did:web:{}example",
        format!("evil{}.", "a".repeat(59)).repeat(40)
    );
    let dids = [
        ("braces", "did:plc:{evilhhhhhhhhhhhhhhhhh}".to_owned()),
        ("colon", "did:plc:evil:hhhhhhhhhhhhhhhhhhh".to_owned()),
        ("web_port", "did:web:evil.example:8080".to_owned()),
        ("web_path", "did:web:evil.example/path".to_owned()),
        ("newline", "did:plc:evilhhhhhhh\nhhhhhhhhhhhh".to_owned()),
        ("glob", "did:plc:evilhhhhhhh*hhhhhhhhhhhh".to_owned()),
        ("space", "did:plc:evilhhhhhhh hhhhhhhhhhhh".to_owned()),
        ("control", "did:plc:evilhhhhhhh\u{1}hhhhhhhhhhhh".to_owned()),
        ("upper_case", "did:plc:EVILHHHHHHHHHHHHHHHHHHHH".to_owned()),
        ("plc_too_long", format!("did:plc:evil{}", "h".repeat(21))),
        ("plc_too_short", format!("did:plc:evil{}", "h".repeat(19))),
        ("overlong_web", overlong),
        (
            "other_method",
            "did:key:z6MkevilXgBZDvotDkL5257faiztiGiC2QtKLGpbnn".to_owned(),
        ),
        ("web_brace", "did:web:{evil}.example".to_owned()),
        (
            "upper_prefix",
            "DID:plc:evilhhhhhhhhhhhhhhhhhhhh".to_owned(),
        ),
        ("localhost", "did:web:localhost%3A8080".to_owned()),
        ("empty", String::new()),
        ("method_only", "did:plc:".to_owned()),
        ("nul", "did:web:evil.example\u{0}".to_owned()),
        ("non_ascii", "did:web:évil.example".to_owned()),
        ("empty_label", "did:web:evil..example".to_owned()),
    ];
    dids.into_iter().map(|(n, d)| (n.to_owned(), d)).collect()
}

pub(super) fn hostile_repositories() -> Vec<(String, String)> {
    let repositories = [
        ("braces", "evil{repo}".to_owned()),
        ("colon", "evil:repo".to_owned()),
        ("space", "evil repo".to_owned()),
        ("newline", "evil\nrepo".to_owned()),
        ("glob", "evil*".to_owned()),
        ("control", "evil\u{1}repo".to_owned()),
        ("upper_case", "Evil".to_owned()),
        ("dot_dot", "evil/../repo".to_owned()),
        ("leading_slash", "/evil".to_owned()),
        ("double_slash", "evil//repo".to_owned()),
        ("empty", String::new()),
        ("overlong", format!("evil{}", "a".repeat(300))),
    ];
    repositories
        .into_iter()
        .map(|(n, r)| (n.to_owned(), r))
        .collect()
}

pub(super) fn hostile_tags() -> Vec<(String, String)> {
    let tags = [
        ("braces", "evil{tag}".to_owned()),
        ("colon", "v1:evil".to_owned()),
        ("space", "evil tag".to_owned()),
        ("newline", "evil\ntag".to_owned()),
        ("glob", "evil*".to_owned()),
        ("leading_dash", "-evil".to_owned()),
        ("leading_dot", ".evil".to_owned()),
        ("nul", "evil\u{0}".to_owned()),
        ("empty", String::new()),
        ("overlong", format!("evil{}", "a".repeat(130))),
    ];
    tags.into_iter().map(|(n, t)| (n.to_owned(), t)).collect()
}

pub(super) fn hostile_digests() -> Vec<(String, String)> {
    let hex = "a".repeat(64);
    let digests = [
        ("braces", "sha256:{evil}".to_owned()),
        ("upper_case_hex", format!("sha256:{}", "A".repeat(64))),
        ("newline", format!("sha256:{}\nevil", &hex[..60])),
        ("sha512", format!("sha512:{}", "a".repeat(128))),
        ("other_algorithm", "md5:evil".to_owned()),
        ("short", "sha256:abc".to_owned()),
        ("glob", format!("sha256:{}*", &hex[..63])),
    ];
    digests
        .into_iter()
        .map(|(n, d)| (n.to_owned(), d))
        .collect()
}

pub(super) fn hostile_page_uris() -> Vec<(String, String)> {
    let page = "io.atcr.repo.page";
    let uris = [
        ("did_braces", format!("at://did:plc:{{evil}}/{page}/webapp")),
        ("rkey_space", format!("at://{HOSTILE_DID}/{page}/evil rkey")),
        (
            "handle_authority",
            format!("at://evil.example/{page}/webapp"),
        ),
        ("query", format!("at://{HOSTILE_DID}/{page}/webapp?evil")),
        (
            "collection_glob",
            format!("at://{HOSTILE_DID}/io.atcr.*/evil"),
        ),
        (
            "manifest_collection",
            format!("at://{HOSTILE_DID}/{MANIFEST}/webapp"),
        ),
    ];
    uris.into_iter().map(|(n, u)| (n.to_owned(), u)).collect()
}
