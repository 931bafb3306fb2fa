//! The pieces every end-to-end fault scenario shares: the stored cursor, waiting for the daemon
//! to catch up, the cache without its control keys, the keyspace of an uninterrupted run, a
//! `/metrics` scrape and the daemon's resident memory.
//!
//! Invariant: a scenario passes only if its final cache equals, key for key, what one
//! uninterrupted run over the same events leaves ([`reference`]). References are computed once
//! per stream and per test binary; the TTL tolerance of `assert_same_keyspace` (a tenth of an
//! hour for records) covers the minutes between two tests that share one.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use super::daemon::{Daemon, Options};
use super::events::time_us_of;
use super::jetstream::FakeJetstream;
use super::valkey::{Keyspace, Valkey};

/// How long a daemon may take to index a test stream of up to about 25,000 events.
pub const INDEX_TIMEOUT: Duration = Duration::from_secs(60);

/// The cursor key of the default consumer.
pub const CURSOR_KEY: &str = "atcr:cursor:jetstream";

/// A PLC directory that refuses connections, so that no test asks the real one.
const NO_PLC: &str = "http://127.0.0.1:1";

/// Daemon options for one Jetstream host and one Valkey, identity lookups kept local.
pub fn options(jetstream: &str, valkey: &str) -> Options {
    let mut options = Options::new(jetstream, valkey);
    options.extra = flags(&["--identity-plc-url", NO_PLC]);
    options
}

/// Owned copies of flags, for `Options::extra`.
pub fn flags(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|flag| flag.to_string()).collect()
}

/// The stored cursor's `time_us`; `None` when there is none or Valkey does not answer.
pub fn cursor(valkey: &Valkey) -> Option<i64> {
    let reply = valkey.try_exec(&["HGET", CURSOR_KEY, "time_us"]).ok()?;
    reply.as_str().and_then(|text| text.parse().ok())
}

/// Whether a daemon subscribed to `io.atcr.*` receives this line (other commits are filtered).
pub fn delivered(line: &str) -> bool {
    let event: Value = serde_json::from_str(line).expect("fixture lines are JSON");
    let collection = event["commit"]["collection"].as_str();
    collection.is_none_or(|collection| collection.starts_with("io.atcr."))
}

/// The `time_us` of the newest line a daemon receives.
pub fn last_delivered_time_us(lines: &[String]) -> i64 {
    let last = lines.iter().rev().find(|line| delivered(line));
    last.and_then(|line| time_us_of(line))
        .expect("the stream delivers an event")
}

/// Waits until the stored cursor covers the newest event `jetstream` holds.
pub async fn caught_up(valkey: &Valkey, jetstream: &FakeJetstream, daemon: &Daemon) {
    let last = last_delivered_time_us(&jetstream.events());
    let reached = valkey
        .wait_until(INDEX_TIMEOUT, |valkey| cursor(valkey) >= Some(last))
        .await;
    assert!(
        reached,
        "cursor {:?} never reached {last}; log:\n{}",
        cursor(valkey),
        log_tail(daemon)
    );
}

/// Runs a daemon until it has indexed everything `jetstream` holds, then stops it cleanly.
pub async fn index_all(valkey: &Valkey, jetstream: &FakeJetstream) {
    let mut daemon = Daemon::start(&options(&jetstream.url(), &valkey.url()));
    caught_up(valkey, jetstream, &daemon).await;
    assert!(
        daemon.stop().success(),
        "daemon exit; log:\n{}",
        log_tail(&daemon)
    );
}

/// The last 200 lines of the daemon's log, for failure messages.
pub fn log_tail(daemon: &Daemon) -> String {
    let log = daemon.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(200)..].join("\n")
}

/// The cache without the control keys, whose values carry wall-clock times.
pub fn cache(valkey: &Valkey) -> Keyspace {
    let mut keyspace = valkey.dump("atcr:");
    keyspace.retain(|key, _| key != "atcr:meta" && !key.starts_with("atcr:cursor:"));
    keyspace
}

/// References computed so far in this test binary, by a hash of their stream.
type References = Mutex<BTreeMap<u64, Arc<OnceCell<Keyspace>>>>;

static REFERENCES: References = Mutex::new(BTreeMap::new());

/// The keyspace one uninterrupted run leaves for `lines`, computed once per stream.
pub async fn reference(lines: &[String]) -> Keyspace {
    let mut hasher = DefaultHasher::new();
    lines.hash(&mut hasher);
    let cell = {
        let mut references = REFERENCES.lock().unwrap_or_else(PoisonError::into_inner);
        references.entry(hasher.finish()).or_default().clone()
    };
    cell.get_or_init(|| uninterrupted_run(lines)).await.clone()
}

async fn uninterrupted_run(lines: &[String]) -> Keyspace {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    let mut daemon = Daemon::start(&options(&jetstream.url(), &valkey.url()));
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success(), "log:\n{}", log_tail(&daemon));
    let keyspace = cache(&valkey);
    assert!(
        keyspace.len() > 50,
        "the reference stream indexes something: {} keys",
        keyspace.len()
    );
    keyspace
}

/// The `/metrics` page of the daemon listening at `address`.
pub fn scrape(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .unwrap_or_else(|error| panic!("connect to /metrics at {address}: {error}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the /metrics response");
    response
}

/// The sum of every sample of metric `name` whose labels include all of `labels` (each written
/// as exposed, `reason="oom"`) on a `/metrics` page; 0 when none matches, as for a counter that
/// never moved.
pub fn metric_sum(page: &str, name: &str, labels: &[&str]) -> f64 {
    let samples = page.lines().filter_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, series_labels) = match series.split_once('{') {
            Some((series_name, rest)) => (series_name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let wanted = series_name == name
            && labels
                .iter()
                .all(|label| series_labels.split(',').any(|have| have == *label));
        wanted.then(|| value.parse::<f64>().ok()).flatten()
    });
    samples.sum()
}

/// [`metric_sum`] over the daemon's `/metrics` page now.
pub fn daemon_metric(daemon: &Daemon, name: &str, labels: &[&str]) -> f64 {
    metric_sum(&scrape(daemon.metrics_address()), name, labels)
}

/// The PID of this test's `atcr-indexer` child: the one started with `--valkey-url url`.
pub fn daemon_pid(valkey_url: &str) -> Option<u32> {
    let parent = std::process::id().to_string();
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let arguments: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
        let ours = arguments.first()?.ends_with(b"atcr-indexer")
            && arguments.windows(2).any(|pair| {
                pair[0] == b"--valkey-url".as_slice() && pair[1] == valkey_url.as_bytes()
            });
        let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
        let child = status_field(&status, "PPid:") == Some(parent.as_str());
        (ours && child).then_some(pid)
    })
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = status_field(&status, "VmRSS:")?;
    field.trim_end_matches("kB").trim().parse().ok()
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    Some(line[name.len()..].trim())
}
