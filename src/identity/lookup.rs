//! One resolution: DID → DID document → handle and PDS → profile record → the user value.
//!
//! Invariant: a value is produced only from a document that is the DID's own and, when the
//! document names a PDS, from that PDS's answer about the profile (a profile that does not exist
//! means no avatar; a PDS that cannot answer means no value). A document without a PDS yields a
//! value with `pds` and `avatar` null, and no profile request is made.

use std::sync::Arc;

use atrium_api::client::AtpServiceClient;
use atrium_api::com::atproto::repo::get_record;
use atrium_api::did_doc::DidDocument;
use atrium_api::types::string::{AtIdentifier, Did, Nsid, RecordKey};
use atrium_api::types::{BlobRef, TypedBlobRef, Unknown};
use atrium_api::xrpc::error::{Error as XrpcError, XrpcErrorKind};
use atrium_api::xrpc::http::{header, Request, StatusCode};
use atrium_common::resolver::Resolver as _;
use atrium_identity::did::{CommonDidResolver, CommonDidResolverConfig};
use serde::{Deserialize, Serialize};

use super::document::{DidTarget, Facts};
use super::error::IdentityError;
use super::http::{Endpoint, Http};
use crate::config::IdentitySettings;

/// The collection and record key of an account's profile.
const PROFILE_COLLECTION: &str = "app.bsky.actor.profile";
const PROFILE_RKEY: &str = "self";

/// What `did:web` hosts are asked to serve.
const DID_JSON_ACCEPT: &str = "application/did+ld+json,application/json";

/// The value of `P:{D}:user`; fields serialise in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct User {
    pub(super) did: String,
    pub(super) handle: Option<String>,
    pub(super) pds: Option<String>,
    pub(super) avatar: Option<String>,
    pub(super) resolved_at_us: i64,
}

impl User {
    /// The JSON written to Valkey.
    pub(super) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("strings, nulls and an integer always serialise")
    }
}

/// The parts of a profile record this daemon reads.
#[derive(Deserialize)]
struct Profile {
    avatar: Option<BlobRef>,
}

/// Everything one resolution needs; shared by the workers.
pub(super) struct Lookup {
    http: Arc<Http>,
    plc: CommonDidResolver<Endpoint>,
    web: Endpoint,
    plc_url: String,
    avatar_cdn: String,
    allow_localhost: bool,
}

impl Lookup {
    /// Builds the shared HTTP client and atrium's resolver over it.
    pub(super) fn new(
        settings: &IdentitySettings,
        allow_localhost: bool,
    ) -> Result<Lookup, IdentityError> {
        let retries = settings.retries;
        let http = Http::new(settings.per_host_rate, settings.request_timeout, retries)?;
        let plc_url = settings.plc_url.as_str().trim_end_matches('/').to_owned();
        let plc = CommonDidResolver::new(CommonDidResolverConfig {
            plc_directory_url: plc_url.clone(),
            http_client: Arc::new(http.endpoint(&plc_url)),
        });
        Ok(Lookup {
            // did:web requests carry absolute URLs; the base of this endpoint is never used.
            web: http.endpoint(&plc_url),
            plc_url,
            http,
            plc,
            avatar_cdn: settings.avatar_cdn.clone(),
            allow_localhost,
        })
    }

    /// The shared HTTP layer, for housekeeping.
    pub(super) fn http(&self) -> &Http {
        &self.http
    }

    /// Resolves `did` to its user value, retrying each request as the policy allows.
    pub(super) async fn user(&self, did: &str) -> Result<User, IdentityError> {
        let target = DidTarget::parse(did, self.allow_localhost)?;
        let document = self.http.with_retries(|| self.document(&target)).await?;
        let facts = Facts::read(did, &document)?;
        let avatar = match &facts.pds {
            Some(pds) => self.avatar(did, pds).await?,
            None => None,
        };
        Ok(User {
            did: did.to_owned(),
            handle: facts.handle,
            pds: facts.pds,
            avatar,
            resolved_at_us: now_us(),
        })
    }

    async fn document(&self, target: &DidTarget) -> Result<DidDocument, IdentityError> {
        match target {
            DidTarget::Plc(did) => {
                let resolved = self.plc.resolve(did).await;
                resolved.map_err(|error| document_error(&self.plc_url, error))
            }
            DidTarget::Web(url) => self.web_document(url).await,
        }
    }

    async fn web_document(&self, url: &str) -> Result<DidDocument, IdentityError> {
        let request = Request::get(url)
            .header(header::ACCEPT, DID_JSON_ACCEPT)
            .body(Vec::new())
            .map_err(|error| IdentityError::InvalidDocument(error.to_string()))?;
        let response = self.web.send(request).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(url, status));
        }
        serde_json::from_slice(response.body())
            .map_err(|error| IdentityError::InvalidDocument(error.to_string()))
    }

    async fn avatar(&self, did: &str, pds: &str) -> Result<Option<String>, IdentityError> {
        let cid = self.http.with_retries(|| self.avatar_cid(did, pds)).await?;
        Ok(cid.map(|cid| avatar_url(&self.avatar_cdn, did, &cid)))
    }

    /// The CID of the profile's avatar blob; `None` without a profile or without an avatar.
    async fn avatar_cid(&self, did: &str, pds: &str) -> Result<Option<String>, IdentityError> {
        let client = AtpServiceClient::new(self.http.endpoint(pds));
        let record = client
            .service
            .com
            .atproto
            .repo
            .get_record(profile_request(did)?);
        match record.await {
            Ok(output) => avatar_of(output.data.value),
            Err(XrpcError::XrpcResponse(response)) => match response.error {
                Some(XrpcErrorKind::Custom(get_record::Error::RecordNotFound(_))) => Ok(None),
                _ => Err(status_error(pds, response.status)),
            },
            Err(error) => Err(profile_error(error)),
        }
    }
}

fn profile_request(did: &str) -> Result<get_record::Parameters, IdentityError> {
    let invalid = |why: &str| IdentityError::InvalidDocument(why.to_owned());
    Ok(get_record::ParametersData {
        cid: None,
        collection: Nsid::new(PROFILE_COLLECTION.to_owned()).map_err(invalid)?,
        repo: AtIdentifier::Did(Did::new(did.to_owned()).map_err(invalid)?),
        rkey: RecordKey::new(PROFILE_RKEY.to_owned()).map_err(invalid)?,
    }
    .into())
}

/// The avatar blob's CID; a profile that is not an object, or an avatar that is not a blob, is
/// an invalid answer.
///
/// The value goes through JSON text rather than atrium's `TryFromUnknown`, which panics on a
/// value of the wrong shape.
fn avatar_of(value: Unknown) -> Result<Option<String>, IdentityError> {
    let invalid = |error: serde_json::Error| IdentityError::InvalidProfile(error.to_string());
    let json = serde_json::to_vec(&value).map_err(invalid)?;
    let profile: Profile = serde_json::from_slice(&json).map_err(invalid)?;
    let cid = match profile.avatar {
        None => return Ok(None),
        Some(BlobRef::Typed(TypedBlobRef::Blob(blob))) => blob.r#ref.0.to_string(),
        Some(BlobRef::Untyped(legacy)) => legacy.cid,
    };
    if cid.is_empty() || !cid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(IdentityError::InvalidProfile(format!("avatar CID {cid:?}")));
    }
    Ok(Some(cid))
}

/// Fills the CDN template: `{did}` and `{cid}` are replaced.
pub(super) fn avatar_url(template: &str, did: &str, cid: &str) -> String {
    template.replace("{did}", did).replace("{cid}", cid)
}

/// Statuses that reached atrium: 404 and 410 mean the DID is unknown or gone.
fn status_error(url: &str, status: StatusCode) -> IdentityError {
    match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => IdentityError::NotFound(url.to_owned()),
        _ => IdentityError::Status {
            host: host_of(url),
            status: status.as_u16(),
        },
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned())
}

/// Our own errors come back boxed through atrium; anything else atrium says is about the body.
fn unbox(error: Box<dyn std::error::Error + Send + Sync>) -> IdentityError {
    match error.downcast::<IdentityError>() {
        Ok(ours) => *ours,
        Err(other) => IdentityError::Network {
            host: String::new(),
            message: other.to_string(),
        },
    }
}

fn document_error(plc_url: &str, error: atrium_identity::Error) -> IdentityError {
    match error {
        atrium_identity::Error::HttpClient(inner) => unbox(inner),
        atrium_identity::Error::HttpStatus(status) => status_error(plc_url, status),
        other => IdentityError::InvalidDocument(other.to_string()),
    }
}

fn profile_error(error: XrpcError<get_record::Error>) -> IdentityError {
    match error {
        XrpcError::HttpClient(inner) => unbox(inner),
        other => IdentityError::InvalidProfile(other.to_string()),
    }
}

/// The wall clock in unix microseconds.
fn now_us() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |elapsed| {
        i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    const CID: &str = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy";

    fn unknown(json: &str) -> Unknown {
        serde_json::from_str(json).expect("test profile parses")
    }

    #[test]
    fn cdn_template_names_did_and_blob() {
        let template = crate::config::DEFAULT_IDENTITY_AVATAR_CDN;
        let expected = format!("https://cdn.bsky.app/img/avatar/plain/{DID}/{CID}@jpeg");
        assert_eq!(avatar_url(template, DID, CID), expected);
        assert_eq!(
            avatar_url("http://cdn/{cid}", DID, CID),
            format!("http://cdn/{CID}")
        );
    }

    #[test]
    fn avatar_blob_gives_its_cid() {
        let typed = format!(
            r#"{{"$type":"app.bsky.actor.profile","displayName":"Alice",
            "avatar":{{"$type":"blob","ref":{{"$link":"{CID}"}},
                "mimeType":"image/jpeg","size":9}}}}"#
        );
        assert_eq!(
            avatar_of(unknown(&typed)).expect("valid"),
            Some(CID.to_owned())
        );
        let legacy = format!(r#"{{"avatar":{{"cid":"{CID}","mimeType":"image/png"}}}}"#);
        assert_eq!(
            avatar_of(unknown(&legacy)).expect("valid"),
            Some(CID.to_owned())
        );
    }

    #[test]
    fn profile_without_avatar_gives_none() {
        let profile = unknown(r#"{"$type":"app.bsky.actor.profile","displayName":"Bob"}"#);
        assert_eq!(avatar_of(profile).expect("valid"), None);
    }

    #[test]
    fn avatar_that_is_not_a_blob_is_invalid() {
        for bad in [
            r#"{"avatar":"https://evil.example/x.png"}"#,
            r#"{"avatar":{"cid":"a/b"}}"#,
        ] {
            let error = avatar_of(unknown(bad)).expect_err(bad);
            assert_eq!(error.reason(), "invalid_profile", "{bad}: {error}");
        }
    }

    #[test]
    fn user_json_has_the_key_schema_fields_in_order() {
        let user = User {
            did: DID.to_owned(),
            handle: Some("alice.example.com".to_owned()),
            pds: None,
            avatar: None,
            resolved_at_us: 1_700_000_000_000_000,
        };
        let expected =
            format!(r#"{{"did":"{DID}","handle":"alice.example.com","pds":null,"avatar":null,"#)
                + r#""resolved_at_us":1700000000000000}"#;
        assert_eq!(user.to_json(), expected);
    }

    #[test]
    fn not_found_and_gone_mean_unknown_did() {
        let url = "https://plc.example/did:plc:x";
        for status in [StatusCode::NOT_FOUND, StatusCode::GONE] {
            assert_eq!(status_error(url, status).reason(), "not_found");
        }
        let error = status_error(url, StatusCode::BAD_REQUEST);
        assert!(
            matches!(&error, IdentityError::Status { host, status: 400 } if host == "plc.example")
        );
    }

    #[test]
    fn our_errors_survive_the_trip_through_atrium() {
        let ours = IdentityError::RateLimited {
            host: "plc.example".to_owned(),
            retry_after: Some(std::time::Duration::from_secs(1)),
        };
        let boxed = atrium_identity::Error::HttpClient(Box::new(ours));
        let back = document_error("https://plc.example", boxed);
        assert_eq!(back.retry_after(), Some(std::time::Duration::from_secs(1)));
    }
}
