//! The key grammar of `docs/keys.md`, checked with small parsers of its own rather than the
//! daemon's validators, and the search of a whole Valkey for hostile names.

use super::super::valkey::Valkey;

/// Why `key` breaks the key grammar of `docs/keys.md`, or `None` when it follows it.
///
/// Control keys are `atcr:meta`, `atcr:cursor:jetstream` and `atcr:recent:pushes`; every other
/// key is `atcr:{<did>}:` and one of the documented suffixes, each part valid on its own.
pub fn key_grammar_violation(key: &str) -> Option<String> {
    const CONTROL: [&str; 3] = ["atcr:meta", "atcr:cursor:jetstream", "atcr:recent:pushes"];
    if CONTROL.contains(&key) {
        return None;
    }
    let Some((did, suffix)) = key.strip_prefix("atcr:{").and_then(|r| r.split_once("}:")) else {
        return Some(format!(
            "{key:?} is neither a control key nor atcr:{{<did>}}:…"
        ));
    };
    if !is_did(did) {
        return Some(format!("{key:?}: invalid DID {did:?}"));
    }
    let unsafe_byte =
        |b: u8| b.is_ascii_whitespace() || b.is_ascii_control() || b"{}*".contains(&b);
    if suffix.bytes().any(unsafe_byte) || !suffix.is_ascii() {
        return Some(format!("{key:?}: unsafe character after the DID"));
    }
    (!is_account_suffix(suffix)).then(|| format!("{key:?}: undocumented suffix {suffix:?}"))
}

fn is_account_suffix(suffix: &str) -> bool {
    const PLAIN: [&str; 6] = [
        "user",
        "repos",
        "starred",
        "indexed",
        "hold:captain",
        "hold:crew",
    ];
    const MANIFEST_PARTS: [&str; 5] = ["", ":layers", ":refs", ":parents", ":scan"];
    const REPO_PARTS: [&str; 6] = ["manifests", "tags", "annotations", "page", "stars", "stats"];
    if PLAIN.contains(&suffix) {
        return true;
    }
    if let Some(rest) = suffix.strip_prefix("rec:") {
        return rest
            .split_once(':')
            .is_some_and(|(nsid, rkey)| is_nsid(nsid) && is_rkey(rkey));
    }
    if let Some(nsid) = suffix.strip_prefix("rkeys:") {
        return is_nsid(nsid);
    }
    if let Some(rest) = suffix.strip_prefix("manifest:") {
        let (digest, part) = rest.split_at(rest.len().min(71));
        return is_digest(digest) && MANIFEST_PARTS.contains(&part);
    }
    if let Some(rest) = suffix.strip_prefix("repo:") {
        return rest
            .rsplit_once(':')
            .is_some_and(|(repo, part)| is_repository(repo) && REPO_PARTS.contains(&part));
    }
    false
}

/// `did:plc:` and 24 of `[a-z2-7]`, or `did:web:` and a lowercase hostname of 2+ labels.
fn is_did(did: &str) -> bool {
    if let Some(id) = did.strip_prefix("did:plc:") {
        let base32 = |b: u8| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b);
        return id.len() == 24 && id.bytes().all(base32);
    }
    let Some(host) = did.strip_prefix("did:web:") else {
        return false;
    };
    let label = |label: &str| {
        let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
        (1..=63).contains(&label.len())
            && label.bytes().all(ok)
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    host.len() <= 253 && host.split('.').count() >= 2 && host.split('.').all(label)
}

fn is_nsid(nsid: &str) -> bool {
    let segment =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    nsid.len() <= 317
        && nsid.starts_with("io.atcr.")
        && nsid.split('.').count() >= 3
        && nsid.split('.').all(segment)
}

fn is_rkey(rkey: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"._:~-".contains(&b);
    (1..=512).contains(&rkey.len()) && rkey != "." && rkey != ".." && rkey.bytes().all(ok)
}

fn is_digest(digest: &str) -> bool {
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(hex))
}

fn is_repository(repository: &str) -> bool {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._/-".contains(&b);
    let component = |c: &str| {
        let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        alnum(c.bytes().next()) && alnum(c.bytes().last())
    };
    (1..=256).contains(&repository.len())
        && repository.bytes().all(ok)
        && repository.split('/').all(component)
}

/// Every way a hostile name reached this Valkey: keys that break the grammar, and keys, hash
/// fields, members or values that contain `evil`. Empty when nothing leaked.
pub fn leaks(valkey: &Valkey) -> Vec<String> {
    let mut leaks = Vec::new();
    for (key, dump) in valkey.dump("") {
        leaks.extend(key_grammar_violation(&key));
        let text = format!("{key} {:?}", dump.value).to_ascii_lowercase();
        if text.contains("evil") {
            leaks.push(format!("{key:?} holds a hostile name: {:?}", dump.value));
        }
    }
    leaks
}
