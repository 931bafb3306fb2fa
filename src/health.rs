//! The operator's HTTP endpoints on one listener: `/metrics`, `/healthz` and `/readyz`.
//!
//! `/healthz` answers 200 while the process runs. `/readyz` answers 200 only when Jetstream is
//! connected, Valkey answered within [`VALKEY_FRESH`], and the cursor was saved within
//! [`CURSOR_FRESH`] (the writer saves it every interval, even when the stream is quiet, so a
//! stale save means the writer is stuck). Every other path is 404. The state behind them is a
//! set of atomics that the reader and writer update through [`crate::metrics`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics::gauge;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{CURSOR_LAG, READY, STREAM_LAG};

/// Valkey must have answered within this long for `/readyz`: several command timeouts.
pub const VALKEY_FRESH: Duration = Duration::from_secs(30);

/// The cursor must have been saved within this long for `/readyz`: many save intervals.
pub const CURSOR_FRESH: Duration = Duration::from_secs(30);

static CONNECTED: AtomicBool = AtomicBool::new(false);
static VALKEY_AT_US: AtomicI64 = AtomicI64::new(0);
static CURSOR_SAVED_AT_US: AtomicI64 = AtomicI64::new(0);
static CURSOR_US: AtomicI64 = AtomicI64::new(0);
static STREAM_US: AtomicI64 = AtomicI64::new(0);

/// Jetstream connected or disconnected.
pub fn jetstream_connected(up: bool) {
    CONNECTED.store(up, Ordering::Relaxed);
}

/// Valkey answered a command.
pub fn valkey_answered() {
    VALKEY_AT_US.store(crate::writer::now_us(), Ordering::Relaxed);
}

/// The cursor was saved at `time_us`.
pub fn cursor_saved(time_us: i64) {
    valkey_answered();
    CURSOR_SAVED_AT_US.store(crate::writer::now_us(), Ordering::Relaxed);
    CURSOR_US.store(time_us, Ordering::Relaxed);
}

/// An event at `time_us` was read.
pub fn stream_position(time_us: i64) {
    STREAM_US.fetch_max(time_us, Ordering::Relaxed);
}

/// Why the daemon is not ready, or `None` when it is.
pub fn not_ready() -> Option<&'static str> {
    let now = crate::writer::now_us();
    let fresh = |at: &AtomicI64, limit: Duration| now - at.load(Ordering::Relaxed) <= micros(limit);
    if !CONNECTED.load(Ordering::Relaxed) {
        Some("jetstream not connected")
    } else if !fresh(&VALKEY_AT_US, VALKEY_FRESH) {
        Some("valkey not answering")
    } else if !fresh(&CURSOR_SAVED_AT_US, CURSOR_FRESH) {
        Some("cursor not saved recently")
    } else {
        None
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Sets the gauges derived from the wall clock, just before a scrape.
fn refresh_derived() {
    let now = crate::writer::now_us();
    let lag = |position: &AtomicI64| match position.load(Ordering::Relaxed) {
        0 => 0.0,
        time_us => (now - time_us) as f64 / 1e6,
    };
    gauge!(STREAM_LAG).set(lag(&STREAM_US));
    gauge!(CURSOR_LAG).set(lag(&CURSOR_US));
    gauge!(READY).set(if not_ready().is_none() { 1.0 } else { 0.0 });
}

/// Errors starting the listener; fatal.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct ListenError {
    address: SocketAddr,
    source: std::io::Error,
}

/// Binds `address` and serves the endpoints until `cancel`.
pub async fn serve(
    address: SocketAddr,
    handle: PrometheusHandle,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, ListenError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ListenError { address, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError { address, source })?;
    tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
    let app = router(handle);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned());
        if let Err(error) = served.await {
            tracing::error!(%error, "metrics listener failed");
        }
    }))
}

fn router(handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(move || metrics_page(handle.clone())))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
}

async fn metrics_page(handle: PrometheusHandle) -> String {
    refresh_derived();
    handle.render()
}

async fn readyz() -> (StatusCode, String) {
    match not_ready() {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

/// `atcr-indexer health`: asks `/readyz` over plain HTTP/1.0, for container health checks
/// that have no curl. True on a 200.
pub fn probe(address: SocketAddr, timeout: Duration) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    Ok(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
}
