//! `io.atcr.hold.scan`: a hold's vulnerability scan of one manifest (`records.md` §3.10).
//!
//! The scanned manifest is named by its at-uri; its DID is the image owner. The record's
//! `userDid` should say the same, and a mismatch is only noted. A missing `status` means the
//! scan succeeded (`ok`), as it did before the field existed.

use super::blob::{blob, BlobRule};
use super::fields::{at_uri_in, count, datetime, did, repository, text, Fields};
use super::{Event, Note, Rejection, MANIFEST};

/// Longest repository name in a scan record, in bytes.
const REPOSITORY_MAX_BYTES: usize = 256;

/// Longest scanner version, in bytes.
const SCANNER_VERSION_MAX_BYTES: usize = 64;

/// Longest status, in bytes.
const STATUS_MAX_BYTES: usize = 32;

/// Longest failure or skip reason, in bytes.
const REASON_MAX_BYTES: usize = 256;

/// The status of a scan record without one.
const DEFAULT_STATUS: &str = "ok";

/// The SBOM blob: an SPDX JSON document.
const SBOM: BlobRule = BlobRule {
    accept: &["application/spdx+json"],
    max_size: None,
};

/// The vulnerability report blob.
const VULNERABILITY_REPORT: BlobRule = BlobRule {
    accept: &["application/vnd.atcr.vulnerabilities+json"],
    max_size: None,
};

/// A scan summary in its current shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The image owner: the DID of the scanned manifest's at-uri.
    pub owner: String,
    /// The record key of the scanned manifest.
    pub manifest_rkey: String,
    /// The repository name.
    pub repository: String,
    /// Critical findings.
    pub critical: i64,
    /// High findings.
    pub high: i64,
    /// Medium findings.
    pub medium: i64,
    /// Low findings.
    pub low: i64,
    /// All findings.
    pub total: i64,
    /// The scan status (an open set: ok, failed, skipped, …); `ok` when absent.
    pub status: String,
    /// `scannedAt` as written.
    pub scanned_at: String,
}

/// Decodes a scan record, noting a `userDid` that is not the manifest's DID.
pub(crate) fn decode(event: &Event<'_>, fields: &mut Fields<'_>) -> Result<Scan, Rejection> {
    let manifest = fields.require("manifest", |v| {
        at_uri_in(v, MANIFEST, event.allow_localhost)
    })?;
    let repository = fields.require("repository", |v| repository(v, REPOSITORY_MAX_BYTES))?;
    let user = fields.require("userDid", |v| did(v, event.allow_localhost))?;
    let counts = [
        fields.require("critical", count)?,
        fields.require("high", count)?,
        fields.require("medium", count)?,
        fields.require("low", count)?,
        fields.require("total", count)?,
    ];
    fields.require("scannerVersion", |v| text(v, SCANNER_VERSION_MAX_BYTES))?;
    let (scanned_at, _) = fields.require("scannedAt", datetime)?;

    check_optional(fields);
    let status = fields.optional("status", |v| text(v, STATUS_MAX_BYTES));
    if user != manifest.did {
        fields.note(Note::ScanUserMismatch);
    }

    let [critical, high, medium, low, total] = counts;
    Ok(Scan {
        owner: manifest.did.to_owned(),
        manifest_rkey: manifest.rkey.to_owned(),
        repository: repository.to_owned(),
        critical,
        high,
        medium,
        low,
        total,
        status: status.unwrap_or(DEFAULT_STATUS).to_owned(),
        scanned_at: scanned_at.to_owned(),
    })
}

/// Checks the optional fields that are cached but not kept: the two blobs and the reason.
fn check_optional(fields: &mut Fields<'_>) {
    fields.optional("sbomBlob", |v| blob(v, SBOM));
    fields.optional("vulnReportBlob", |v| blob(v, VULNERABILITY_REPORT));
    fields.optional("reason", |v| text(v, REASON_MAX_BYTES));
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::records::fixtures::*;
    use crate::records::{Reason, Record, Validated};

    const KEY: (&str, &str, &str) = (HOLD, "io.atcr.hold.scan", DIGEST_HEX);

    fn blob_of(mime_type: &str) -> Value {
        json!({"$type": "blob", "ref": {"$link": CID}, "mimeType": mime_type, "size": 52_110})
    }

    fn scan() -> Value {
        json!({
            "$type": "io.atcr.hold.scan", "manifest": manifest_uri(USER),
            "repository": "tools/psql-client", "userDid": USER,
            "critical": 0, "high": 2, "medium": 11, "low": 30, "total": 43,
            "scannerVersion": "grype 0.87.0", "scannedAt": TIME,
            "sbomBlob": blob_of("application/spdx+json"),
            "vulnReportBlob": blob_of("application/vnd.atcr.vulnerabilities+json")
        })
    }

    fn decoded(value: &Value) -> (Scan, Vec<Note>) {
        match accept(KEY.0, KEY.1, KEY.2, value) {
            Validated {
                record: Record::Scan(scan),
                notes,
            } => (scan, notes),
            other => panic!("expected a scan, got {other:?}"),
        }
    }

    #[test]
    fn current_shape_without_status_is_ok() {
        let (scan, notes) = decoded(&scan());
        assert_eq!(notes, vec![]);
        assert_eq!(
            (scan.owner.as_str(), scan.manifest_rkey.as_str()),
            (USER, DIGEST_HEX)
        );
        assert_eq!(
            [scan.critical, scan.high, scan.medium, scan.low, scan.total],
            [0, 2, 11, 30, 43]
        );
        assert_eq!(
            (scan.status.as_str(), scan.scanned_at.as_str()),
            ("ok", TIME)
        );
    }

    #[test]
    fn status_and_reason_are_accepted() {
        let value = with(
            &with(&scan(), "status", json!("failed")),
            "reason",
            json!("timeout"),
        );
        let (scan, notes) = decoded(&value);
        assert_eq!((scan.status.as_str(), notes), ("failed", vec![]));
        assert_eq!(
            decoded(&with(&value, "status", json!("quarantined")))
                .0
                .status,
            "quarantined"
        );
    }

    #[test]
    fn invalid_status_reads_as_ok() {
        let (scan, notes) = decoded(&with(&scan(), "status", json!("s".repeat(33))));
        assert_eq!((scan.status.as_str(), notes), ("ok", dropped("status")));
    }

    #[test]
    fn user_other_than_manifest_owner_is_noted() {
        let (scan, notes) = decoded(&with(&scan(), "userDid", json!(OTHER_USER)));
        assert_eq!(
            (scan.owner.as_str(), notes),
            (USER, vec![Note::ScanUserMismatch])
        );
    }

    #[test]
    fn each_required_field_missing_is_rejected() {
        let required = [
            "manifest",
            "repository",
            "userDid",
            "critical",
            "high",
            "medium",
            "low",
            "total",
            "scannerVersion",
            "scannedAt",
        ];
        for field in required {
            assert_rejected(KEY, &without(&scan(), field), Reason::Missing, field);
        }
    }

    #[test]
    fn required_fields_are_checked() {
        let cases = [
            (
                "manifest",
                json!(format!("at://{USER}/io.atcr.tag/x")),
                Reason::Collection,
            ),
            (
                "manifest",
                json!("at://alice.test/io.atcr.manifest/x"),
                Reason::AtUri,
            ),
            (
                "manifest",
                json!(format!("{}#f", manifest_uri(USER))),
                Reason::AtUri,
            ),
            ("repository", json!("r".repeat(257)), Reason::MaxLength),
            ("repository", json!("a\nb"), Reason::Repository),
            ("userDid", json!("{}"), Reason::Did),
            ("high", json!(-1), Reason::Integer),
            ("total", json!("43"), Reason::Type),
            ("scannerVersion", json!("v".repeat(65)), Reason::MaxLength),
            (
                "scannedAt",
                json!("2026-03-01T12:00:00.Z"),
                Reason::Datetime,
            ),
        ];
        for (field, bad, reason) in cases {
            assert_rejected(KEY, &with(&scan(), field, bad), reason, field);
        }
        assert_eq!(
            decoded(&with(&scan(), "repository", json!("r".repeat(256)))).1,
            vec![]
        );
    }

    #[test]
    fn blobs_of_the_wrong_type_are_dropped() {
        let cases = [
            ("sbomBlob", blob_of("application/json")),
            ("vulnReportBlob", blob_of("application/spdx+json")),
            ("reason", json!("r".repeat(257))),
        ];
        for (field, bad) in cases {
            assert_eq!(
                decoded(&with(&scan(), field, bad)).1,
                dropped(field),
                "{field}"
            );
        }
    }
}
