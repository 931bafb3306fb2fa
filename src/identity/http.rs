//! The one HTTP client of identity resolution, with its per-host rate limit, timeout and retries.
//!
//! Every request (to the PLC directory, a `did:web` host, a PDS) goes through an [`Endpoint`],
//! which waits for the host's turn under the per-host limit, bounds the exchange by the request
//! timeout, and turns transport failures, 5xx and 429 (with its `Retry-After`) into an
//! [`IdentityError`], so that atrium's resolvers and XRPC client see typed errors that
//! [`Http::with_retries`] can classify. Other statuses pass through for atrium to interpret.
//!
//! The limiter runs on tokio's clock, so paused-time tests see it as production does.
//!
//! Bodies are read whole by atrium's reqwest client, so an answer's size is bounded only by what
//! a host can send within the request timeout; DID documents and profiles are a few kilobytes.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use atrium_api::xrpc::http::{header, Request, Response, StatusCode};
use atrium_api::xrpc::{HttpClient, XrpcClient};
use atrium_xrpc_client::reqwest::{ReqwestClient, ReqwestClientBuilder};
use backon::{BackoffBuilder, ExponentialBuilder};
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use super::error::IdentityError;

/// First retry delay: long enough for a restarting host, short enough not to hold a worker.
const RETRY_MIN_DELAY: Duration = Duration::from_millis(200);

/// Longest backoff between two attempts of one request.
const RETRY_MAX_DELAY: Duration = Duration::from_secs(5);

/// Longest `Retry-After` honoured; a host asking for more gets this, and a worker is not held
/// for minutes by one account.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);

/// Identifies the daemon to the PLC directory and PDS operators.
const USER_AGENT: &str = concat!("atcr-indexer/", env!("CARGO_PKG_VERSION"));

/// Most redirects followed; `did:web` hosts and PDSes should not redirect at all.
const MAX_REDIRECTS: usize = 3;

/// The shared client, limiter, timeout and retry policy.
pub(super) struct Http {
    client: reqwest::Client,
    gate: HostGate,
    timeout: Duration,
    retries: usize,
}

impl Http {
    /// Builds the one client (rustls with ring, no OpenSSL) and the per-host limiter.
    pub(super) fn new(
        rate: NonZeroU32,
        timeout: Duration,
        retries: u32,
    ) -> Result<Arc<Http>, IdentityError> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(|error| IdentityError::Client(error.to_string()))?;
        Ok(Arc::new(Http {
            client,
            gate: HostGate::new(rate),
            timeout,
            retries: usize::try_from(retries).unwrap_or(usize::MAX),
        }))
    }

    /// An endpoint whose XRPC calls go to `base` (an origin such as a PDS URL).
    pub(super) fn endpoint(self: &Arc<Self>, base: &str) -> Endpoint {
        let xrpc = ReqwestClientBuilder::new(base)
            .client(self.client.clone())
            .build();
        Endpoint {
            http: Arc::clone(self),
            xrpc,
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are spent; waits with
    /// exponential backoff and jitter in between, or longer when the host sent `Retry-After`.
    pub(super) async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, IdentityError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, IdentityError>>,
    {
        let mut delays = self.backoff();
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match next_delay(&error, &mut delays) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(error),
            }
        }
    }

    /// Forgets the limiter state of hosts that are back to a full burst.
    pub(super) fn forget_idle_hosts(&self) {
        self.gate.forget_idle();
    }

    fn backoff(&self) -> backon::ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(RETRY_MIN_DELAY)
            .with_max_delay(RETRY_MAX_DELAY)
            .with_jitter()
            .with_max_times(self.retries)
            .build()
    }
}

/// The wait before the next attempt, or `None` when the error is final or retries are spent.
fn next_delay(
    error: &IdentityError,
    delays: &mut impl Iterator<Item = Duration>,
) -> Option<Duration> {
    if !error.is_retryable() {
        return None;
    }
    let backoff = delays.next()?;
    let asked = error.retry_after().map(|wait| wait.min(RETRY_AFTER_CAP));
    Some(asked.map_or(backoff, |asked| asked.max(backoff)))
}

/// One base URL over the shared client; atrium's DID resolver and XRPC client call through it.
#[derive(Clone)]
pub(super) struct Endpoint {
    http: Arc<Http>,
    xrpc: ReqwestClient,
}

impl Endpoint {
    /// Sends `request` in its host's turn, within the timeout; 5xx and 429 become errors.
    pub(super) async fn send(
        &self,
        request: Request<Vec<u8>>,
    ) -> Result<Response<Vec<u8>>, IdentityError> {
        let host = request
            .uri()
            .authority()
            .map_or_else(String::new, ToString::to_string);
        self.http.gate.wait(&host).await;
        let timeout = self.http.timeout;
        match tokio::time::timeout(timeout, self.xrpc.send_http(request)).await {
            Err(_elapsed) => Err(IdentityError::Timeout { host, timeout }),
            Ok(Err(error)) => Err(IdentityError::Network {
                host,
                message: causes(error.as_ref()),
            }),
            Ok(Ok(response)) => refuse_failures(host, response),
        }
    }
}

impl HttpClient for Endpoint {
    async fn send_http(
        &self,
        request: Request<Vec<u8>>,
    ) -> Result<Response<Vec<u8>>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(self.send(request).await?)
    }
}

impl XrpcClient for Endpoint {
    fn base_uri(&self) -> String {
        self.xrpc.base_uri()
    }
}

/// Passes every answer atrium should interpret; 429 and 5xx are errors the retry loop handles.
fn refuse_failures(
    host: String,
    response: Response<Vec<u8>>,
) -> Result<Response<Vec<u8>>, IdentityError> {
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = retry_after(&response);
        return Err(IdentityError::RateLimited { host, retry_after });
    }
    if status.is_server_error() {
        let status = status.as_u16();
        return Err(IdentityError::Status { host, status });
    }
    Ok(response)
}

/// `Retry-After` in whole seconds; the HTTP-date form is ignored (the backoff applies instead).
fn retry_after(response: &Response<Vec<u8>>) -> Option<Duration> {
    let value = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// An error and its sources, `: `-separated: reqwest's own message omits the cause.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// tokio's clock as seen by governor: time since the limiter was built.
#[derive(Clone, Debug)]
struct TokioClock {
    origin: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

type HostLimiter =
    RateLimiter<String, HashMapStateStore<String>, TokioClock, NoOpMiddleware<Duration>>;

/// A token bucket per host (`name:port`): `rate` requests per second, bursts of `rate`.
struct HostGate {
    limiter: HostLimiter,
}

impl HostGate {
    fn new(rate: NonZeroU32) -> HostGate {
        let quota = Quota::per_second(rate).allow_burst(rate);
        let clock = TokioClock {
            origin: tokio::time::Instant::now(),
        };
        HostGate {
            limiter: RateLimiter::hashmap_with_clock(quota, clock),
        }
    }

    /// Returns when `host` may be sent one more request.
    async fn wait(&self, host: &str) {
        let key = host.to_owned();
        while let Err(not_until) = self.limiter.check_key(&key) {
            let now = self.limiter.clock().now();
            tokio::time::sleep(not_until.wait_time_from(now)).await;
        }
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32) -> NonZeroU32 {
        NonZeroU32::new(per_second).expect("test rates are positive")
    }

    #[tokio::test(start_paused = true)]
    async fn gate_lets_a_burst_through_then_spaces_requests() {
        let gate = HostGate::new(rate(4));
        let start = tokio::time::Instant::now();
        for _ in 0..4 {
            gate.wait("pds.example").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst waits");
        for _ in 0..4 {
            gate.wait("pds.example").await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(1000),
            "{:?}",
            start.elapsed()
        );
        assert!(
            start.elapsed() < Duration::from_millis(1100),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gate_keeps_hosts_apart() {
        let gate = HostGate::new(rate(1));
        let start = tokio::time::Instant::now();
        gate.wait("plc.example").await;
        gate.wait("pds-1.example").await;
        gate.wait("pds-2.example:8443").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        gate.wait("plc.example").await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(1), "{waited:?}");
        assert!(waited < Duration::from_millis(1100), "{waited:?}");
    }

    fn failure(status: u16) -> IdentityError {
        let host = "pds.example".to_owned();
        IdentityError::Status { host, status }
    }

    #[test]
    fn retries_are_bounded_and_only_for_retryable_errors() {
        let mut delays = [Duration::from_millis(300); 2].into_iter();
        assert_eq!(next_delay(&failure(404), &mut delays), None);
        assert!(next_delay(&failure(503), &mut delays).is_some());
        assert!(next_delay(&failure(503), &mut delays).is_some());
        assert_eq!(
            next_delay(&failure(503), &mut delays),
            None,
            "retries spent"
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let throttled = |secs| IdentityError::RateLimited {
            host: "plc.example".to_owned(),
            retry_after: Some(Duration::from_secs(secs)),
        };
        let mut delays = std::iter::repeat(Duration::from_millis(300));
        assert_eq!(
            next_delay(&throttled(2), &mut delays),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            next_delay(&throttled(3600), &mut delays),
            Some(RETRY_AFTER_CAP)
        );
        let mut long_backoff = std::iter::repeat(Duration::from_secs(4));
        let delay = next_delay(&throttled(1), &mut long_backoff);
        assert_eq!(
            delay,
            Some(Duration::from_secs(4)),
            "never shorter than the backoff"
        );
    }

    #[test]
    fn throttling_and_server_errors_become_errors() {
        let reply = |status: u16, retry: Option<&str>| {
            let mut builder = Response::builder().status(status);
            if let Some(secs) = retry {
                builder = builder.header(header::RETRY_AFTER, secs);
            }
            let response = builder.body(Vec::new()).expect("valid test response");
            refuse_failures("plc.example".to_owned(), response)
        };
        let throttled = reply(429, Some("1")).expect_err("429 is an error");
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(1)));
        let dated = reply(429, Some("Wed, 21 Oct 2015 07:28:00 GMT")).expect_err("429");
        assert_eq!(dated.retry_after(), None);
        assert_eq!(reply(502, None).expect_err("5xx").reason(), "http_5xx");
        assert!(reply(404, None).is_ok() && reply(400, None).is_ok() && reply(200, None).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn with_retries_waits_between_attempts_and_stops_at_success() {
        let http = Http::new(rate(10), Duration::from_secs(1), 3).expect("client builds");
        let start = tokio::time::Instant::now();
        let mut attempts = 0;
        let result = http
            .with_retries(|| {
                attempts += 1;
                let outcome = if attempts < 3 {
                    Err(failure(500))
                } else {
                    Ok(attempts)
                };
                std::future::ready(outcome)
            })
            .await;
        assert_eq!(result.expect("third attempt succeeds"), 3);
        assert!(
            start.elapsed() >= 2 * RETRY_MIN_DELAY,
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_retries_gives_up_after_the_configured_retries() {
        let http = Http::new(rate(10), Duration::from_secs(1), 2).expect("client builds");
        let mut attempts = 0;
        let result: Result<(), _> = http
            .with_retries(|| {
                attempts += 1;
                std::future::ready(Err(failure(503)))
            })
            .await;
        assert_eq!(result.expect_err("always fails").reason(), "http_5xx");
        assert_eq!(attempts, 3, "one attempt and two retries");
    }
}
