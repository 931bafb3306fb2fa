//! Table-driven tests of the identifier and name syntax, including boundary lengths.

use super::*;
use crate::records::fixtures::{DIGEST, DIGEST_HEX, HOSTILE, USER};

/// A `did:web` hostname of exactly `len` bytes made of 63-byte labels and a short last one.
fn hostname_of(len: usize) -> String {
    let mut host = String::new();
    while host.len() + 64 < len {
        host.push_str(&"a".repeat(63));
        host.push('.');
    }
    host.push_str(&"b".repeat(len - host.len()));
    host
}

#[test]
fn did_table() {
    let cases: &[(&str, bool)] = &[
        (USER, true),
        ("did:plc:abcdefghijklmnopqrstuvwx", true),
        ("did:plc:234567abcdefghijklmnopqr", true),
        ("did:web:hold01.atcr.io", true),
        ("did:web:atcr.io", true),
        ("did:web:a-b.c-d.io", true),
        ("did:plc:aaaaaaaaaaaaaaaaaaaaaaa", false),
        ("did:plc:aaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ("did:plc:aaaaaaaaaaaaaaaaaaaaaaa1", false),
        ("did:plc:aaaaaaaaaaaaaaaaaaaaaaa8", false),
        ("did:plc:AAAAAAAAAAAAAAAAAAAAAAAA", false),
        ("did:web:Hold01.atcr.io", false),
        ("did:web:atcr", false),
        ("did:web:-atcr.io", false),
        ("did:web:atcr-.io", false),
        ("did:web:atcr..io", false),
        ("did:web:.atcr.io", false),
        ("did:web:atcr.io.", false),
        ("did:web:atcr.io:8080", false),
        ("did:web:atcr.io:user:alice", false),
        ("did:web:atcr.io/path", false),
        ("did:web:atcr_x.io", false),
        ("did:web:localhost%3A8080", false),
        (
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            false,
        ),
        ("did:example:123", false),
        ("DID:plc:aaaaaaaaaaaaaaaaaaaaaaaa", false),
        ("did:plc:", false),
        ("did:web:", false),
        ("did", false),
        (" did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", false),
        ("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa\n", false),
    ];
    for (did, expected) in cases {
        assert_eq!(is_did(did), *expected, "{did:?}");
    }
    for hostile in HOSTILE {
        assert!(!is_did(hostile), "{hostile:?}");
    }
}

#[test]
fn did_web_label_and_hostname_boundaries() {
    let label = |n: usize| format!("did:web:{}.io", "a".repeat(n));
    assert!(is_did(&label(63)));
    assert!(!is_did(&label(64)));
    assert!(is_did(&format!("did:web:{}", hostname_of(253))));
    assert!(!is_did(&format!("did:web:{}", hostname_of(254))));
}

#[test]
fn did_localhost_only_when_allowed() {
    let cases: &[(&str, bool)] = &[
        ("did:web:localhost%3A8080", true),
        ("did:web:localhost%3A1", true),
        ("did:web:localhost%3A65535", true),
        ("did:web:localhost%3A65536", false),
        ("did:web:localhost%3A0", false),
        ("did:web:localhost%3A", false),
        ("did:web:localhost%3Aabc", false),
        ("did:web:localhost%3a8080", false),
        ("did:web:localhost", false),
        ("did:web:localhost:8080", false),
    ];
    for (did, expected) in cases {
        assert_eq!(is_did_allowing_localhost(did, true), *expected, "{did:?}");
        assert!(!is_did_allowing_localhost(did, false), "{did:?}");
    }
    assert!(is_did_allowing_localhost(USER, true));
}

#[test]
fn nsid_table() {
    let segment = |n: usize| "a".repeat(n);
    let cases: &[(String, bool)] = &[
        ("io.atcr.manifest".into(), true),
        ("io.atcr.repo.page".into(), true),
        ("io.atcr.sailor.star".into(), true),
        ("com.example.fooBar2".into(), true),
        ("a-b.c.d".into(), true),
        (format!("io.{}.x", segment(63)), true),
        (format!("io.{}.x", segment(64)), false),
        (format!("io.atcr.{}", segment(63)), true),
        (format!("io.atcr.{}", segment(64)), false),
        ("io.atcr".into(), false),
        ("io.atcr.".into(), false),
        ("io..atcr.manifest".into(), false),
        ("io.-atcr.manifest".into(), false),
        ("io.atcr-.manifest".into(), false),
        ("io.atcr.2manifest".into(), false),
        ("io.atcr.mani-fest".into(), false),
        ("io.atcr.mani_fest".into(), false),
        ("io.atcr.manifest/x".into(), false),
        ("io.atcr.*".into(), false),
    ];
    for (nsid, expected) in cases {
        assert_eq!(is_nsid(nsid), *expected, "{nsid:?}");
    }
    for hostile in HOSTILE {
        assert!(!is_nsid(hostile), "{hostile:?}");
    }
}

#[test]
fn nsid_total_length_boundary() {
    let domain = [
        segment_of(63),
        segment_of(63),
        segment_of(63),
        segment_of(63),
    ]
    .join(".");
    let at_limit = format!("{domain}.{}", "n".repeat(317 - domain.len() - 1));
    assert_eq!(at_limit.len(), 317);
    assert!(is_nsid(&at_limit));
    assert!(!is_nsid(&format!("{at_limit}x")));
}

fn segment_of(n: usize) -> String {
    "d".repeat(n)
}

#[test]
fn rkey_table() {
    let cases: &[(String, bool)] = &[
        ("self".into(), true),
        ("3lbtcx6qfqk2c".into(), true),
        (DIGEST_HEX.into(), true),
        ("app".into(), true),
        ("a.b_c:d~e-f".into(), true),
        ("...".into(), true),
        ("k".repeat(512), true),
        ("k".repeat(513), false),
        (".".into(), false),
        ("..".into(), false),
        ("tools/psql".into(), false),
        ("a?b".into(), false),
        ("a#b".into(), false),
        ("a%20b".into(), false),
        ("é".into(), false),
    ];
    for (rkey, expected) in cases {
        assert_eq!(is_rkey(rkey), *expected, "{rkey:?}");
    }
    for hostile in HOSTILE.iter().filter(|h| **h != "a:b") {
        assert!(!is_rkey(hostile), "{hostile:?}");
    }
}

#[test]
fn tid_table() {
    let cases: &[(&str, bool)] = &[
        ("3lbtcx6qfqk2c", true),
        ("2222222222222", true),
        ("jzzzzzzzzzzzz", true),
        ("kzzzzzzzzzzzz", false),
        ("1222222222222", false),
        ("3lbtcx6qfqk2", false),
        ("3lbtcx6qfqk2cc", false),
        ("3LBTCX6QFQK2C", false),
        ("3lbtcx6qfqk2-", false),
    ];
    for (tid, expected) in cases {
        assert_eq!(is_tid(tid), *expected, "{tid:?}");
    }
}

#[test]
fn digest_table() {
    let cases: &[(String, bool)] = &[
        (DIGEST.into(), true),
        (format!("sha256:{}", "0".repeat(64)), true),
        (format!("sha256:{}", "0".repeat(63)), false),
        (format!("sha256:{}", "0".repeat(65)), false),
        (DIGEST.to_uppercase(), false),
        (format!("sha256:{}", DIGEST_HEX.to_uppercase()), false),
        (format!("sha512:{}", "a".repeat(128)), false),
        (format!("SHA256:{DIGEST_HEX}"), false),
        (format!("sha256:{}g", &DIGEST_HEX[..63]), false),
        (format!("sha256: {}", &DIGEST_HEX[..63]), false),
        (format!("sha256:{DIGEST_HEX}\n"), false),
        (DIGEST_HEX.into(), false),
        ("sha256:".into(), false),
    ];
    for (digest, expected) in cases {
        assert_eq!(is_digest(digest), *expected, "{digest:?}");
    }
    for hostile in HOSTILE {
        assert!(!is_digest(hostile), "{hostile:?}");
    }
}

#[test]
fn repository_table() {
    let cases: &[(&str, bool)] = &[
        ("app", true),
        ("tools/psql-client", true),
        ("a/b/c", true),
        ("my.app", true),
        ("my_app", true),
        ("my__app", true),
        ("my---app", true),
        ("a1.b2_c3--d4", true),
        ("0", true),
        ("", false),
        ("App", false),
        ("my___app", false),
        ("my..app", false),
        ("my._app", false),
        ("my.-app", false),
        ("-app", false),
        ("app-", false),
        ("_app", false),
        (".app", false),
        ("/app", false),
        ("app/", false),
        ("a//b", false),
        ("my app", false),
        ("app:latest", false),
        ("app@sha256", false),
        ("café", false),
    ];
    for (name, expected) in cases {
        assert_eq!(is_repository(name, 255), *expected, "{name:?}");
    }
    for hostile in HOSTILE {
        assert!(!is_repository(hostile, 255), "{hostile:?}");
    }
}

#[test]
fn repository_length_boundaries() {
    let name = |n: usize| "r".repeat(n);
    assert!(is_repository(&name(255), 255));
    assert!(!is_repository(&name(256), 255));
    assert!(is_repository(&name(256), 256));
    assert!(!is_repository(&name(257), 256));
}

#[test]
fn tag_table() {
    let cases: &[(String, bool)] = &[
        ("latest".into(), true),
        ("v1.2.3".into(), true),
        ("_private".into(), true),
        ("1.0-rc_1".into(), true),
        ("UPPER".into(), true),
        ("t".repeat(128), true),
        ("t".repeat(129), false),
        (".hidden".into(), false),
        ("-dash".into(), false),
        ("a/b".into(), false),
        ("a+b".into(), false),
        ("a@b".into(), false),
        ("ü".into(), false),
    ];
    for (tag, expected) in cases {
        assert_eq!(is_tag(tag), *expected, "{tag:?}");
    }
    for hostile in HOSTILE {
        assert!(!is_tag(hostile), "{hostile:?}");
    }
}

#[test]
fn handle_table() {
    let cases: &[(String, bool)] = &[
        ("alice.bsky.social".into(), true),
        ("evan.jarrett.net".into(), true),
        ("Alice.Test".into(), true),
        ("a.co".into(), true),
        (format!("{}.io", "a".repeat(63)), true),
        (format!("{}.io", "a".repeat(64)), false),
        (hostname_of(253), true),
        (hostname_of(254), false),
        ("alice".into(), false),
        ("alice.123".into(), false),
        ("alice..test".into(), false),
        ("-alice.test".into(), false),
        ("alice_b.test".into(), false),
        ("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into(), false),
        ("@alice.test".into(), false),
    ];
    for (handle, expected) in cases {
        assert_eq!(is_handle(handle), *expected, "{handle:?}");
    }
    for hostile in HOSTILE {
        assert!(!is_handle(hostile), "{hostile:?}");
    }
}

#[test]
fn http_url_table() {
    let cases: &[(&str, bool)] = &[
        ("https://hold01.atcr.io", true),
        ("http://hold01.atcr.io/", true),
        ("https://hold01.atcr.io:8443/path?x=1#y", true),
        ("http://localhost:8080", true),
        ("https://Hold01.ATCR.io", true),
        ("https://", false),
        ("https://:8080", false),
        ("https://hold01.atcr.io:", false),
        ("https://hold01.atcr.io:99999", false),
        ("https://user@hold01.atcr.io", false),
        ("https://[::1]:8080", false),
        ("https://hold01.atcr.io/a b", false),
        ("https://hold01.atcr.io/\n", false),
        ("ftp://hold01.atcr.io", false),
        ("javascript:alert(1)", false),
        ("hold01.atcr.io", false),
        ("did:web:hold01.atcr.io", false),
    ];
    for (url, expected) in cases {
        assert_eq!(is_http_url(url), *expected, "{url:?}");
    }
}

#[test]
fn uri_table() {
    let cases: &[(&str, bool)] = &[
        ("https://hold01.atcr.io/blob", true),
        ("s3://bucket/key", true),
        ("urn:x", true),
        ("x:", false),
        (":x", false),
        ("1http://x", false),
        ("https://a b", false),
        ("https://a\tb", false),
        ("no-scheme", false),
    ];
    for (uri, expected) in cases {
        assert_eq!(is_uri(uri), *expected, "{uri:?}");
    }
}

#[test]
fn datetime_accepts_rfc3339_forms() {
    let cases: &[(&str, i64)] = &[
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.000Z", 0),
        ("1970-01-01T00:00:01.999999999Z", 1999),
        ("1970-01-01T00:00:00.5Z", 500),
        ("1970-01-01T00:00:00.05Z", 50),
        ("1970-01-01T01:00:00+01:00", 0),
        ("1969-12-31T19:00:00-05:00", 0),
        ("1970-01-01T00:00:00+00:00", 0),
        ("2026-03-01T12:00:00.000Z", 1_772_366_400_000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
    ];
    for (text, ms) in cases {
        assert_eq!(parse_datetime_ms(text), Some(*ms), "{text:?}");
    }
}

#[test]
fn datetime_rejects_near_misses() {
    let cases: &[&str] = &[
        "2026-03-01 12:00:00Z",
        "2026-03-01t12:00:00Z",
        "2026-03-01T12:00:00z",
        "2026-03-01T12:00Z",
        "2026-03-01T12:00:00",
        "2026-03-01T12:00:00.Z",
        "2026-03-01T12:00:00-00:00",
        "2026-03-01T12:00:00+0100",
        "2026-03-01T12:00:00+01",
        "2026-03-01T12:00:00+24:00",
        "2026-03-01T12:00:00+01:60",
        "2026-03-01",
        "2026-3-01T12:00:00Z",
        "2026-13-01T12:00:00Z",
        "2026-02-30T12:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-03-01T24:00:00Z",
        "2026-03-01T12:60:00Z",
        "2026-03-01T12:00:60Z",
        "+2026-03-01T12:00:00Z",
        "2026-03-01T12:00:00ZZ",
        "2026-03-01T12:00:00Z\n",
        "２０２６-03-01T12:00:00Z",
        "1772366400",
    ];
    for text in cases {
        assert_eq!(parse_datetime_ms(text), None, "{text:?}");
    }
    for hostile in HOSTILE {
        assert_eq!(parse_datetime_ms(hostile), None, "{hostile:?}");
    }
}

#[test]
fn datetime_length_is_bounded() {
    let fraction = |n: usize| format!("2026-03-01T12:00:00.{}Z", "1".repeat(n));
    assert_eq!(fraction(43).len(), 64);
    assert!(parse_datetime_ms(&fraction(43)).is_some());
    assert!(parse_datetime_ms(&fraction(44)).is_none());
}

#[test]
fn at_uri_round_trips() {
    let text = format!("at://{USER}/io.atcr.manifest/{DIGEST_HEX}");
    let uri = AtUri::parse(&text).expect("a valid at-uri");
    assert_eq!(uri.did, USER);
    assert_eq!(uri.collection, "io.atcr.manifest");
    assert_eq!(uri.rkey, DIGEST_HEX);
    assert_eq!(uri.to_string_form(), text);
}

#[test]
fn at_uri_rejects_malformed_forms() {
    let cases = [
        format!("at://{USER}/io.atcr.manifest"),
        format!("at://{USER}/io.atcr.manifest/"),
        format!("at://{USER}/io.atcr.manifest/x/y"),
        format!("at://{USER}/io.atcr.manifest/x?y=1"),
        format!("at://{USER}/io.atcr.manifest/x#frag"),
        format!("at://{USER}"),
        format!("at://{USER}/"),
        format!("at:/{USER}/io.atcr.manifest/x"),
        format!("AT://{USER}/io.atcr.manifest/x"),
        format!("https://{USER}/io.atcr.manifest/x"),
        format!("at://{USER}/not-an-nsid/x"),
        format!("at://{USER}/io.atcr.manifest/."),
        "at://alice.bsky.social/io.atcr.manifest/x".to_owned(),
        "at://did:key:z6Mk/io.atcr.manifest/x".to_owned(),
        "at://did:web:localhost%3A8080/io.atcr.manifest/x".to_owned(),
        format!("at://{USER}/io.atcr.manifest/{}", "k".repeat(513)),
    ];
    for text in &cases {
        assert_eq!(AtUri::parse(text), None, "{text:?}");
    }
}

#[test]
fn at_uri_localhost_authority_only_when_allowed() {
    let text = "at://did:web:localhost%3A8080/io.atcr.manifest/x";
    assert!(AtUri::parse_allowing_localhost(text, true).is_some());
    assert!(AtUri::parse_allowing_localhost(text, false).is_none());
}

#[test]
fn overlong_inputs_are_refused_quickly() {
    let huge = "a".repeat(1_000_000);
    assert!(!is_did(&format!("did:web:{huge}")));
    assert!(!is_rkey(&huge));
    assert!(!is_tag(&huge));
    assert!(!is_repository(&huge, 256));
    assert!(!is_nsid(&huge));
    assert!(!is_handle(&huge));
    assert!(parse_datetime_ms(&huge).is_none());
    assert!(AtUri::parse(&format!("at://{huge}")).is_none());
}
