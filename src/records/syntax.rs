//! String syntax of ATProto identifiers and OCI names, checked byte by byte.
//!
//! Every function here is pure, allocation-free (except `AtUri`, which owns its parts) and
//! linear in its input, and it answers "is this string well formed" and nothing more. The
//! rules are the ones in `records.md` §4; where that table is silent, the ATProto syntax
//! specifications decide. A string accepted here is safe to embed in a cache key.

use chrono::NaiveDate;

/// Longest DID accepted, in bytes (ATProto DID syntax).
const DID_MAX_BYTES: usize = 2048;

/// Longest `did:web` hostname and longest handle, in bytes (DNS limit).
const HOSTNAME_MAX_BYTES: usize = 253;

/// Longest DNS label, NSID segment or handle label, in bytes.
const LABEL_MAX_BYTES: usize = 63;

/// Longest NSID, in bytes (ATProto NSID syntax).
const NSID_MAX_BYTES: usize = 317;

/// Longest record key, in bytes (ATProto record key syntax).
const RKEY_MAX_BYTES: usize = 512;

/// Longest OCI tag, in bytes (OCI distribution spec).
const TAG_MAX_BYTES: usize = 128;

/// Longest datetime string, in bytes; real timestamps are under 40, this only bounds the work.
const DATETIME_MAX_BYTES: usize = 64;

/// Longest URL accepted in a URI field, in bytes (ATProto's guidance for `uri` strings).
const URI_MAX_BYTES: usize = 8192;

/// Length of the base32 identifier of a `did:plc`.
const PLC_ID_BYTES: usize = 24;

/// Number of hex digits in a SHA-256 digest.
const SHA256_HEX_BYTES: usize = 64;

/// Whether `s` is a DID of an accepted method, `did:plc` or `did:web`, localhost excluded.
pub fn is_did(s: &str) -> bool {
    is_did_allowing_localhost(s, false)
}

/// Whether `s` is an accepted DID; `allow` also admits `did:web:localhost%3A<port>` for tests.
pub fn is_did_allowing_localhost(s: &str, allow: bool) -> bool {
    if s.len() > DID_MAX_BYTES {
        return false;
    }
    if let Some(id) = s.strip_prefix("did:plc:") {
        return id.len() == PLC_ID_BYTES && id.bytes().all(is_base32_lower);
    }
    match s.strip_prefix("did:web:") {
        Some(host) if allow && is_localhost_with_port(host) => true,
        Some(host) => is_web_hostname(host),
        None => false,
    }
}

/// Whether `b` is in the lowercase base32 alphabet `[a-z2-7]` that `did:plc` and TIDs use.
fn is_base32_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)
}

/// Whether `host` is `localhost%3A` followed by a TCP port number.
fn is_localhost_with_port(host: &str) -> bool {
    host.strip_prefix("localhost%3A").is_some_and(is_port)
}

/// Whether `host` is a lowercase DNS hostname with at least two labels (the `did:web` form).
fn is_web_hostname(host: &str) -> bool {
    host.len() <= HOSTNAME_MAX_BYTES
        && host.split('.').count() >= 2
        && host
            .split('.')
            .all(|label| is_dns_label(label, |b| b.is_ascii_lowercase()))
}

/// Whether `label` is 1–63 bytes of letters (as `letter` says), digits and inner hyphens.
fn is_dns_label(label: &str, letter: impl Fn(u8) -> bool) -> bool {
    let bytes = label.as_bytes();
    let allowed = |b: &u8| letter(*b) || b.is_ascii_digit() || *b == b'-';
    !bytes.is_empty()
        && bytes.len() <= LABEL_MAX_BYTES
        && bytes.iter().all(allowed)
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Whether `s` is an NSID: 3+ segments, domain segments like DNS labels, then a name segment.
pub fn is_nsid(s: &str) -> bool {
    if s.len() > NSID_MAX_BYTES || s.split('.').count() < 3 {
        return false;
    }
    let Some((domain, name)) = s.rsplit_once('.') else {
        return false;
    };
    domain
        .split('.')
        .all(|segment| is_dns_label(segment, |b| b.is_ascii_alphabetic()))
        && is_nsid_name(name)
}

/// Whether `name` is an NSID name segment: 1–63 letters and digits, not starting with a digit.
fn is_nsid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= LABEL_MAX_BYTES
        && bytes[0].is_ascii_alphabetic()
        && bytes.iter().all(u8::is_ascii_alphanumeric)
}

/// Whether `s` is a record key: 1–512 bytes of `[A-Za-z0-9._:~-]`, and not `.` or `..`.
pub fn is_rkey(s: &str) -> bool {
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'~' | b'-');
    !s.is_empty() && s.len() <= RKEY_MAX_BYTES && s != "." && s != ".." && s.bytes().all(allowed)
}

/// Whether `s` is a TID: 13 base32 characters whose first one keeps the top bit clear.
pub fn is_tid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 13
        && matches!(bytes[0], b'2'..=b'7' | b'a'..=b'j')
        && bytes.iter().all(|b| is_base32_lower(*b))
}

/// Whether `s` is `sha256:` and 64 lowercase hex digits, the only digest the records can hold.
///
/// `sha512:` digests are valid OCI but at 135 bytes cannot fit the 128-byte lexicon fields.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(is_sha256_hex)
}

/// Whether `s` is exactly 64 lowercase hex digits (a SHA-256 digest without its prefix).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == SHA256_HEX_BYTES && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `s` is a non-empty OCI repository name of at most `max_bytes` bytes.
///
/// The name is `/`-separated components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn is_repository(s: &str, max_bytes: usize) -> bool {
    !s.is_empty() && s.len() <= max_bytes && s.split('/').all(is_repository_component)
}

/// Whether `component` is one path component of an OCI repository name.
fn is_repository_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let is_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(is_alnum) || !bytes.last().is_some_and(is_alnum) {
        return false;
    }
    bytes.split(is_alnum).all(is_repository_separator)
}

/// Whether a run of non-alphanumeric bytes between two alphanumeric runs is a valid separator.
///
/// Splitting on every alphanumeric byte also yields empty runs, which stand for "no separator".
fn is_repository_separator(run: &[u8]) -> bool {
    matches!(run, b"" | b"." | b"_" | b"__") || run.iter().all(|b| *b == b'-')
}

/// Whether `s` is an OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_tag(s: &str) -> bool {
    let bytes = s.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    bytes.len() <= TAG_MAX_BYTES
        && bytes.first().is_some_and(word)
        && bytes.iter().all(|b| word(b) || matches!(b, b'.' | b'-'))
}

/// Whether `s` is an ATProto handle: 2+ DNS labels, at most 253 bytes, TLD starting with a letter.
pub fn is_handle(s: &str) -> bool {
    let top_level_starts_with_letter = s
        .rsplit('.')
        .next()
        .and_then(|tld| tld.bytes().next())
        .is_some_and(|b| b.is_ascii_alphabetic());
    s.len() <= HOSTNAME_MAX_BYTES
        && s.split('.').count() >= 2
        && s.split('.')
            .all(|label| is_dns_label(label, |b| b.is_ascii_alphabetic()))
        && top_level_starts_with_letter
}

/// Whether `s` is an `http` or `https` URL with a hostname (and optional port, path, query).
///
/// Deliberately narrower than a general URI: these URLs name holds that the AppView connects to.
pub fn is_http_url(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority_ok = match authority.split_once(':') {
        Some((host, port)) => is_url_host(host) && is_port(port),
        None => is_url_host(authority),
    };
    s.len() <= URI_MAX_BYTES && authority_ok && tail.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `port` is a TCP port number from 1 to 65535, written in 1–5 digits.
fn is_port(port: &str) -> bool {
    let digits_only =
        !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    digits_only && port.parse::<u16>().is_ok_and(|n| n > 0)
}

/// Whether `s` is an absolute URI: a scheme, `:`, then printable ASCII without spaces.
///
/// Only the outline is checked; it keeps control characters and whitespace out of the cache.
pub fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let scheme_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-');
    s.len() <= URI_MAX_BYTES
        && scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(scheme_char)
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `host` is `localhost` or a DNS name of one or more labels (any letter case).
fn is_url_host(host: &str) -> bool {
    host.len() <= HOSTNAME_MAX_BYTES
        && host
            .split('.')
            .all(|label| is_dns_label(label, |b| b.is_ascii_alphabetic()))
}

/// Parses an RFC 3339 datetime into Unix milliseconds (fraction truncated to milliseconds).
///
/// The form is `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)` with an upper-case `T` and
/// `Z`, as ATProto requires. A space for `T`, missing seconds, a missing zone, the "unknown
/// offset" `-00:00` and a leap second `:60` are all rejected.
pub fn parse_datetime_ms(s: &str) -> Option<i64> {
    let bytes = s.as_bytes();
    if bytes.len() > DATETIME_MAX_BYTES || bytes.len() < 20 || !has_datetime_punctuation(bytes) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(digits(&bytes[0..4])?).ok()?,
        digits(&bytes[5..7])?,
        digits(&bytes[8..10])?,
    )?;
    let (millis, zone) = split_fraction(&bytes[19..])?;
    let time = date.and_hms_milli_opt(
        digits(&bytes[11..13])?,
        digits(&bytes[14..16])?,
        digits(&bytes[17..19])?,
        millis,
    )?;
    Some(time.and_utc().timestamp_millis() - zone_offset_seconds(zone)? * 1000)
}

/// Whether the fixed separators of `YYYY-MM-DDTHH:MM:SS` sit where they belong.
fn has_datetime_punctuation(bytes: &[u8]) -> bool {
    bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
}

/// The value of a run of ASCII digits, or `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |value, b| {
        b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
    })
}

/// Splits an optional `.fraction` off the zone; returns its milliseconds and the rest.
fn split_fraction(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let Some(fraction) = bytes.strip_prefix(b".") else {
        return Some((0, bytes));
    };
    let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 {
        return None;
    }
    let millis = fraction[..count.min(3)]
        .iter()
        .fold(0u32, |ms, b| ms * 10 + u32::from(b - b'0'));
    let scale = 10u32.pow(3 - count.min(3) as u32);
    Some((millis * scale, &fraction[count..]))
}

/// The offset of a zone designator in seconds east of UTC: `Z`, `+hh:mm` or `-hh:mm`.
fn zone_offset_seconds(zone: &[u8]) -> Option<i64> {
    if zone == b"Z" {
        return Some(0);
    }
    let [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] = *zone else {
        return None;
    };
    let (hours, minutes) = (digits(&[h1, h2])?, digits(&[m1, m2])?);
    if hours > 23 || minutes > 59 || (sign == b'-' && hours == 0 && minutes == 0) {
        return None;
    }
    let seconds = i64::from(hours * 3600 + minutes * 60);
    Some(if sign == b'-' { -seconds } else { seconds })
}

/// A parsed `at://<did>/<collection>/<rkey>` URI naming one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtUri {
    /// The repository DID (the authority; a handle is not accepted).
    pub did: String,
    /// The collection NSID.
    pub collection: String,
    /// The record key.
    pub rkey: String,
}

impl AtUri {
    /// Parses a record at-uri whose authority is an accepted DID (see [`is_did`]).
    pub fn parse(s: &str) -> Option<AtUri> {
        AtUri::parse_allowing_localhost(s, false)
    }

    /// Parses a record at-uri; `allow` also admits a `did:web:localhost%3A<port>` authority.
    pub fn parse_allowing_localhost(s: &str, allow: bool) -> Option<AtUri> {
        AtUriParts::parse(s, allow).map(AtUriParts::to_owned_uri)
    }

    /// The canonical `at://<did>/<collection>/<rkey>` text of this URI.
    pub fn to_string_form(&self) -> String {
        format!("at://{}/{}/{}", self.did, self.collection, self.rkey)
    }
}

/// The three parts of a record at-uri, borrowed from the text, for checks that keep nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AtUriParts<'a> {
    /// The repository DID.
    pub did: &'a str,
    /// The collection NSID.
    pub collection: &'a str,
    /// The record key.
    pub rkey: &'a str,
}

impl<'a> AtUriParts<'a> {
    /// Splits `at://<did>/<collection>/<rkey>`, checking each part; `allow` admits localhost DIDs.
    ///
    /// A query or fragment fails because `?` and `#` are in none of the three alphabets.
    pub(crate) fn parse(s: &'a str, allow: bool) -> Option<AtUriParts<'a>> {
        if s.len() > URI_MAX_BYTES {
            return None;
        }
        let rest = s.strip_prefix("at://")?;
        let (did, rest) = rest.split_once('/')?;
        let (collection, rkey) = rest.split_once('/')?;
        let valid = is_did_allowing_localhost(did, allow) && is_nsid(collection) && is_rkey(rkey);
        valid.then_some(AtUriParts {
            did,
            collection,
            rkey,
        })
    }

    /// An owned copy of these parts.
    pub(crate) fn to_owned_uri(self) -> AtUri {
        AtUri {
            did: self.did.to_owned(),
            collection: self.collection.to_owned(),
            rkey: self.rkey.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
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
            ("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", false),
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
        let domain = [segment_of(63), segment_of(63), segment_of(63), segment_of(63)].join(".");
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
}
