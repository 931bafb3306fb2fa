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
mod tests;
