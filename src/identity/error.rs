//! Why an identity could not be resolved, and whether asking again could help.
//!
//! Invariant: every variant is either retryable (a later attempt may succeed: the network, a
//! timeout, a 5xx, a 429, Valkey) or fatal for this attempt (the answer itself is wrong), and
//! [`IdentityError::reason`] maps it to one of a fixed set of metric labels.

use std::time::Duration;

/// A failure of identity resolution.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The resolver was started outside a tokio runtime. Fatal: the daemon must not start.
    #[error("identity resolution must be started inside a tokio runtime")]
    NoRuntime,
    /// The shared HTTP client could not be built. Fatal: the daemon must not start.
    #[error("cannot build the identity HTTP client: {0}")]
    Client(String),
    /// The connection failed or broke (refused, reset, DNS, TLS). Retryable.
    #[error("network error talking to {host}: {message}")]
    Network {
        /// The host asked, `name:port` when a port was given.
        host: String,
        /// The client's message with its causes.
        message: String,
    },
    /// No complete answer within the request timeout. Retryable.
    #[error("no answer from {host} within {timeout:?}")]
    Timeout {
        /// The host asked.
        host: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// An HTTP status that is neither success nor one of the statuses below. Retryable for 5xx.
    #[error("{host} answered HTTP {status}")]
    Status {
        /// The host asked.
        host: String,
        /// The status code.
        status: u16,
    },
    /// HTTP 429. Retryable, after `retry_after` when the host said so.
    #[error("{host} is rate limiting, retry after {retry_after:?}")]
    RateLimited {
        /// The host asked.
        host: String,
        /// The `Retry-After` header, when it held whole seconds.
        retry_after: Option<Duration>,
    },
    /// The directory or host does not know the DID (404 or 410). Fatal.
    #[error("{0} is not known to its directory or host")]
    NotFound(String),
    /// A DID method other than `did:plc` and `did:web`, or a malformed or disallowed DID. Fatal.
    #[error("unsupported DID {did}: {why}")]
    UnsupportedDid {
        /// The DID as requested.
        did: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The DID document is not JSON, not a DID document, or is another DID's. Fatal.
    #[error("invalid DID document: {0}")]
    InvalidDocument(String),
    /// The PDS answered the profile request with something that is not a profile record. Fatal.
    #[error("invalid profile response: {0}")]
    InvalidProfile(String),
    /// The user key could not be written. Retryable: the next request for the DID tries again.
    #[error("cannot write the user key: {0}")]
    Write(String),
}

impl IdentityError {
    /// Whether a later attempt may succeed without anything else changing.
    pub fn is_retryable(&self) -> bool {
        match self {
            IdentityError::Network { .. }
            | IdentityError::Timeout { .. }
            | IdentityError::RateLimited { .. }
            | IdentityError::Write(_) => true,
            IdentityError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// How long the host asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IdentityError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            IdentityError::NoRuntime => "no_runtime",
            IdentityError::Client(_) => "client",
            IdentityError::Network { .. } => "network",
            IdentityError::Timeout { .. } => "timeout",
            IdentityError::Status { status, .. } if *status >= 500 => "http_5xx",
            IdentityError::Status { .. } => "http_4xx",
            IdentityError::RateLimited { .. } => "rate_limited",
            IdentityError::NotFound(_) => "not_found",
            IdentityError::UnsupportedDid { .. } => "unsupported_did",
            IdentityError::InvalidDocument(_) => "invalid_document",
            IdentityError::InvalidProfile(_) => "invalid_profile",
            IdentityError::Write(_) => "write",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> IdentityError {
        let host = "pds.example".to_owned();
        IdentityError::Status { host, status }
    }

    #[test]
    fn server_errors_and_throttling_are_retryable() {
        let host = "plc.example".to_owned();
        let throttled = IdentityError::RateLimited {
            host,
            retry_after: Some(Duration::from_secs(1)),
        };
        assert!(throttled.is_retryable());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(1)));
        assert!(status(500).is_retryable() && status(503).is_retryable());
        assert_eq!(status(502).reason(), "http_5xx");
    }

    #[test]
    fn client_errors_and_bad_answers_are_fatal() {
        for error in [
            status(400),
            status(404),
            IdentityError::NotFound("did:plc:x".to_owned()),
            IdentityError::InvalidDocument("not JSON".to_owned()),
            IdentityError::InvalidProfile("not JSON".to_owned()),
        ] {
            assert!(!error.is_retryable(), "{error:?} should be fatal");
            assert_eq!(error.retry_after(), None);
        }
        assert_eq!(status(400).reason(), "http_4xx");
    }
}
