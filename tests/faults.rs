//! Faults end to end: Valkey killed, unreachable, slow or full; Jetstream hosts that close,
//! stall, refuse, hang or answer with HTTP errors; the daemon itself killed mid-replay.
//!
//! Every scenario ends by comparing the whole cache (control keys aside) with the keyspace of
//! an uninterrupted run over the same events, so anything lost, duplicated or resurrected by a
//! fault fails the test.

mod support;

use std::time::{Duration, Instant};

use support::daemon::{Daemon, Options};
use support::events::*;
use support::jetstream::{FakeJetstream, SilentHost};
use support::proxy::Proxy;
use support::scenario::*;
use support::valkey::{assert_same_keyspace, Valkey};

/// Events of the heavy stream: enough to overflow a 1,000-event queue and every socket buffer.
const HEAVY_LEN: usize = 21_000;

/// Events of the heavy stream indexed before the Valkey outage begins.
const HEAVY_BEFORE_OUTAGE: usize = 1_000;

/// Events of the ordinary stream.
const STREAM_LEN: usize = 3_000;

/// Events of the stream written through the slow proxy: every round trip there costs 40 ms.
const SLOW_LEN: usize = 1_500;

/// A pipeline's round trip through the slow proxy: 20 ms each way.
const ROUND_TRIP_THROUGH_PROXY: f64 = 0.040;

/// How long Valkey stays unreachable in the outage scenario.
const OUTAGE: Duration = Duration::from_secs(30);

/// Resident memory the daemon must stay under while Valkey is unreachable.
const RSS_LIMIT_KIB: u64 = 200 * 1024;

/// Growth of resident memory allowed between the 10 s and 28 s marks of the outage.
const RSS_GROWTH_LIMIT: f64 = 1.3;

fn heavy_stream() -> Vec<String> {
    generate_stream(HEAVY_LEN, 50)
}

fn stream() -> Vec<String> {
    generate_stream(STREAM_LEN, 51)
}

/// How many of `lines` a daemon subscribed to `io.atcr.*` receives.
fn deliverable(lines: &[String]) -> usize {
    lines.iter().filter(|line| delivered(line)).count()
}

/// The `time_us` of the delivered event found `fraction` of the way through `lines`.
fn time_at(lines: &[String], fraction: f64) -> i64 {
    let delivered: Vec<&String> = lines.iter().filter(|line| delivered(line)).collect();
    let index = ((delivered.len() as f64 * fraction) as usize).min(delivered.len() - 1);
    time_us_of(delivered[index]).expect("fixture events carry time_us")
}

/// The `cursor=` of a `/subscribe` request target.
fn requested_cursor(target: &str) -> Option<i64> {
    let (_, query) = target.split_once('?')?;
    let mut pairs = url::form_urlencoded::parse(query.as_bytes());
    pairs.find_map(|(key, value)| (key == "cursor").then(|| value.parse().ok()).flatten())
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Stops the daemon with SIGTERM, expecting a clean exit.
fn stop(daemon: &mut Daemon) {
    let status = daemon.stop();
    assert!(
        status.success(),
        "exit {status}; log:\n{}",
        log_tail(daemon)
    );
}

/// Options with `extra` flags added.
fn with_flags(mut options: Options, extra: &[&str]) -> Options {
    options.extra.extend(flags(extra));
    options
}

/// One delivered commit: the record key it writes, its `time_us`, whether it deletes.
struct Commit {
    key: String,
    time_us: i64,
    delete: bool,
}

/// The commits among `lines` that a daemon receives, in stream order.
fn commits(lines: &[String]) -> Vec<Commit> {
    let commit = |line: &String| {
        let event: serde_json::Value = serde_json::from_str(line).ok()?;
        let (did, commit) = (event["did"].as_str()?, &event["commit"]);
        let (collection, rkey) = (commit["collection"].as_str()?, commit["rkey"].as_str()?);
        Some(Commit {
            key: format!("atcr:{{{did}}}:rec:{collection}:{rkey}"),
            time_us: event["time_us"].as_i64()?,
            delete: commit["operation"] == "delete",
        })
    };
    lines
        .iter()
        .filter(|line| delivered(line))
        .filter_map(commit)
        .collect()
}

/// Record keys of commits at or before `cursor` that the cache lacks, although the cursor
/// says they were written.
fn unwritten_before(valkey: &Valkey, lines: &[String], cursor: i64) -> Vec<String> {
    let written = commits(lines)
        .into_iter()
        .filter(|commit| commit.time_us <= cursor);
    let missing =
        written.filter(|commit| valkey.exec(&["EXISTS", &commit.key]).as_int() != Some(1));
    missing.map(|commit| commit.key).collect()
}

/// Record keys whose last commit in `lines` is a delete.
fn deleted_at_the_end(lines: &[String]) -> Vec<String> {
    let mut last = std::collections::BTreeMap::new();
    for commit in commits(lines) {
        last.insert(commit.key, commit.delete);
    }
    last.into_iter()
        .filter(|(_, delete)| *delete)
        .map(|(key, _)| key)
        .collect()
}

/// Whether `key` holds a tombstone.
fn is_tombstone(valkey: &Valkey, key: &str) -> bool {
    let value = valkey.exec(&["GET", key]);
    value
        .as_str()
        .is_some_and(|json| json.contains(r#""deleted":true"#))
}

/// Kills Valkey with SIGKILL a third of the way through a replay, restarts it, and checks
/// that the daemon ends with the reference keyspace: from the append-only file when Valkey
/// persists, by replaying from the oldest event on its own when it does not.
async fn valkey_killed_mid_replay(persistent: bool) {
    let lines = heavy_stream();
    let mut valkey = match persistent {
        true => Valkey::start_persistent(),
        false => Valkey::start(),
    };
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    let mut daemon = Daemon::start(&options(&jetstream.url(), &valkey.url()));
    let third = time_at(&lines, 0.3);
    let reached = valkey
        .wait_until(INDEX_TIMEOUT, |valkey| cursor(valkey) >= Some(third))
        .await;
    assert!(
        reached,
        "the replay progressed; log:\n{}",
        log_tail(&daemon)
    );
    let acknowledged = cursor(&valkey).expect("a cursor");

    valkey.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    valkey.restart();
    let after_restart = cursor(&valkey);
    caught_up(&valkey, &jetstream, &daemon).await;
    stop(&mut daemon);

    assert!(
        acknowledged < last_delivered_time_us(&lines),
        "Valkey was killed mid-replay, at {acknowledged}"
    );
    let log = daemon.log();
    let replays = jetstream.requests();
    let from_oldest = replays
        .iter()
        .filter(|request| request.contains("cursor=0"));
    if persistent {
        assert!(
            after_restart >= Some(acknowledged),
            "fsync always keeps the acknowledged cursor {acknowledged}: {after_restart:?}"
        );
        assert!(
            !log.contains("lost its data"),
            "no replay needed; log:\n{log}"
        );
        assert_eq!(from_oldest.count(), 1, "requests: {replays:?}");
    } else {
        assert!(log.contains("valkey lost its data"), "log:\n{log}");
        assert!(from_oldest.count() >= 2, "replayed from 0: {replays:?}");
    }
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_killed_mid_replay_with_persistence_resumes_from_its_file() {
    valkey_killed_mid_replay(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_killed_mid_replay_without_persistence_is_refilled_by_a_replay() {
    valkey_killed_mid_replay(false).await;
}

/// Keeps the append-only file but fsyncs it once a second: a clean stop still writes all of
/// it, and a replay of 20,000 events does not wait on the disk after every round trip.
fn fsync_every_second(valkey: &Valkey) {
    valkey.exec(&["CONFIG", "SET", "appendfsync", "everysec"]);
}

/// What the outage scenario observed while Valkey was unreachable.
#[derive(Debug, Default)]
struct OutageSamples {
    rss_kib: Vec<(u64, u64)>,
    sent_at_10s: usize,
    sent_at_28s: usize,
}

impl OutageSamples {
    /// Samples the daemon's memory every second and the messages the host sent at 10 s and
    /// 28 s, for the length of the outage.
    async fn take(pid: u32, jetstream: &FakeJetstream) -> OutageSamples {
        let started = Instant::now();
        let mut samples = OutageSamples::default();
        for second in 1..=OUTAGE.as_secs() {
            tokio::time::sleep_until((started + Duration::from_secs(second)).into()).await;
            let rss = rss_kib(pid).expect("the daemon runs");
            samples.rss_kib.push((second, rss));
            match second {
                10 => samples.sent_at_10s = jetstream.messages_sent(),
                28 => samples.sent_at_28s = jetstream.messages_sent(),
                _ => {}
            }
        }
        samples
    }

    fn rss_at(&self, second: u64) -> u64 {
        let sample = self.rss_kib.iter().find(|(at, _)| *at == second);
        sample.map(|(_, rss)| *rss).expect("a sample each second")
    }

    /// Memory bounded and flat, the socket held while `deliverable` events wait on the host.
    fn assert_held(&self, deliverable: usize) {
        let peak = self.rss_kib.iter().map(|(_, rss)| *rss).max().unwrap_or(0);
        assert!(peak < RSS_LIMIT_KIB, "memory stays bounded: {self:?}");
        let growth = self.rss_at(28) as f64 / self.rss_at(10) as f64;
        assert!(growth <= RSS_GROWTH_LIMIT, "memory does not grow: {self:?}");
        let (at_10s, at_28s) = (self.sent_at_10s, self.sent_at_28s);
        assert_eq!(at_10s, at_28s, "the socket is back-pressured: {self:?}");
        assert!(at_28s < deliverable, "events remained unsent: {self:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_unreachable_for_30_seconds_holds_memory_socket_and_cursor() {
    let lines = heavy_stream();
    let (before, during) = lines.split_at(HEAVY_BEFORE_OUTAGE);
    let mut valkey = Valkey::start_persistent();
    fsync_every_second(&valkey);
    let proxy = Proxy::start(valkey.port(), Duration::ZERO);
    let jetstream = FakeJetstream::new();
    jetstream.push_all(before.iter().cloned());
    let options = options(&jetstream.url(), &proxy.url());
    let mut daemon = Daemon::start(&with_flags(options, &["--valkey-queue-capacity", "1000"]));
    caught_up(&valkey, &jetstream, &daemon).await;
    let pid = daemon_pid(&proxy.url()).expect("the daemon's PID");
    let cursor_before = cursor(&valkey).expect("a cursor");

    valkey.stop();
    proxy.block(true);
    jetstream.push_all(during.iter().cloned());
    let sampling = OutageSamples::take(pid, &jetstream);
    let (samples, expected) = tokio::join!(sampling, reference(&lines));
    valkey.restart();
    let cursor_after = cursor(&valkey);
    fsync_every_second(&valkey);
    proxy.block(false);
    caught_up(&valkey, &jetstream, &daemon).await;
    stop(&mut daemon);

    samples.assert_held(deliverable(&jetstream.events()));
    assert!(
        cursor_after <= Some(cursor_before),
        "nothing was acknowledged during the outage: {cursor_before} then {cursor_after:?}"
    );
    assert_same_keyspace(&expected, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_valkey_behind_a_20ms_proxy_gets_every_write() {
    let lines = generate_stream(SLOW_LEN, 52);
    let valkey = Valkey::start();
    let proxy = Proxy::start(valkey.port(), Duration::from_millis(20));
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    let mut daemon = Daemon::start(&options(&jetstream.url(), &proxy.url()));
    let (_, expected) = tokio::join!(caught_up(&valkey, &jetstream, &daemon), reference(&lines));
    let page = scrape(daemon.metrics_address());
    stop(&mut daemon);

    let round_trips = metric_sum(&page, "atcr_indexer_valkey_round_trips_total", &[]);
    let seconds = metric_sum(&page, "atcr_indexer_valkey_batch_duration_seconds_sum", &[]);
    assert!(
        round_trips > 0.0 && proxy.chunks() > 0,
        "writes went through the proxy"
    );
    assert!(
        seconds >= round_trips * ROUND_TRIP_THROUGH_PROXY * 0.95,
        "each of {round_trips} round trips took 40 ms: {seconds} s in all"
    );
    assert_same_keyspace(&expected, &cache(&valkey));
}

/// Valkey refusing writes once its memory passes `maxmemory`, as a full cache does.
fn limit_memory(valkey: &Valkey, maxmemory: &str) {
    valkey.exec(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    valkey.exec(&["CONFIG", "SET", "maxmemory", maxmemory]);
}

/// What the daemon did while Valkey was full.
#[derive(Debug)]
struct WhileFull {
    cursors: Vec<i64>,
    unwritten: Vec<String>,
    oom_errors: f64,
}

/// Waits until the daemon meets an out-of-memory error, then reads the cursor twice, 3 s and
/// 5 s later, and lists the events it claims but the cache lacks.
async fn while_full(valkey: &Valkey, daemon: &Daemon, lines: &[String]) -> WhileFull {
    let oom = || {
        daemon_metric(
            daemon,
            "atcr_indexer_valkey_errors_total",
            &[r#"reason="oom""#],
        )
    };
    let refused = eventually(INDEX_TIMEOUT, || oom() > 0.0).await;
    assert!(
        refused,
        "Valkey ran out of memory; log:\n{}",
        log_tail(daemon)
    );
    let mut full = WhileFull {
        cursors: Vec::new(),
        unwritten: Vec::new(),
        oom_errors: 0.0,
    };
    for pause in [3, 2] {
        tokio::time::sleep(Duration::from_secs(pause)).await;
        let cursor = cursor(valkey).expect("a cursor");
        full.cursors.push(cursor);
        full.unwritten
            .extend(unwritten_before(valkey, lines, cursor));
    }
    full.oom_errors = oom();
    full
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_valkey_holds_the_cursor_and_loses_nothing_once_it_has_room() {
    let lines = stream();
    let (fits, overflows) = lines.split_at(200);
    let valkey = Valkey::start();
    limit_memory(&valkey, "2mb");
    let jetstream = FakeJetstream::new();
    jetstream.push_all(fits.iter().cloned());
    let mut daemon = Daemon::start(&options(&jetstream.url(), &valkey.url()));
    caught_up(&valkey, &jetstream, &daemon).await;

    jetstream.push_all(overflows.iter().cloned());
    let full = while_full(&valkey, &daemon, &lines).await;
    valkey.exec(&["CONFIG", "SET", "maxmemory", "0"]);
    caught_up(&valkey, &jetstream, &daemon).await;
    stop(&mut daemon);

    let log = daemon.log();
    let warned = log
        .lines()
        .any(|line| (line.contains("WARN") || line.contains("ERROR")) && line.contains("OOM"));
    assert!(warned, "a warning names out-of-memory; log:\n{log}");
    assert!(full.oom_errors >= 2.0, "errors are counted: {full:?}");
    let last = last_delivered_time_us(&lines);
    assert!(full.cursors.iter().all(|cursor| *cursor < last), "{full:?}");
    assert!(
        full.unwritten.is_empty(),
        "the cursor passed unwritten events: {full:?}"
    );
    assert!(log.contains("valkey is taking writes again"), "log:\n{log}");
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_connection_closed_every_97_messages_loses_nothing() {
    let lines = stream();
    let dictionary = train_dictionary();
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::with_dictionary(dictionary.clone());
    jetstream.close_after(97);
    jetstream.push_all(lines.iter().cloned());
    let mut options = options(&jetstream.url(), &valkey.url());
    options.dictionary = Some(dictionary);
    let mut daemon = Daemon::start(&options);
    caught_up(&valkey, &jetstream, &daemon).await;
    stop(&mut daemon);

    let at_least = deliverable(&lines) / 97;
    assert!(
        jetstream.upgrades() >= at_least,
        "{} connections, expected at least {at_least}",
        jetstream.upgrades()
    );
    assert!(jetstream
        .requests()
        .iter()
        .all(|request| request.contains("compress=true")));
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_stalls_without_closing_is_left_after_the_idle_timeout() {
    let lines = stream();
    let (first, second) = lines.split_at(STREAM_LEN / 2);
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.push_all(first.iter().cloned());
    let timeouts = [
        "--jetstream-idle-timeout",
        "2",
        "--jetstream-ping-interval",
        "1",
    ];
    let options = options(&jetstream.url(), &valkey.url());
    let mut daemon = Daemon::start(&with_flags(options, &timeouts));
    caught_up(&valkey, &jetstream, &daemon).await;

    jetstream.stall();
    let stalled_at = Instant::now();
    jetstream.push_all(second.iter().cloned());
    let idle = |daemon: &Daemon| {
        let labels = [r#"reason="idle_timeout""#];
        daemon_metric(daemon, "atcr_indexer_jetstream_reconnects_total", &labels)
    };
    let fired = eventually(Duration::from_secs(10), || idle(&daemon) >= 1.0).await;
    let waited = stalled_at.elapsed();
    let cursor_stalled = cursor(&valkey);
    jetstream.unstall();
    caught_up(&valkey, &jetstream, &daemon).await;
    stop(&mut daemon);

    assert!(fired, "the idle timeout fired; log:\n{}", log_tail(&daemon));
    assert!(waited < Duration::from_secs(5), "after 2 s, not {waited:?}");
    assert_eq!(cursor_stalled, Some(last_delivered_time_us(first)));
    assert!(jetstream.upgrades() >= 2, "it reconnected after the stall");
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_refusing_from_the_start_fails_over_with_a_cursor() {
    let lines = stream();
    let valkey = Valkey::start();
    let refusing = FakeJetstream::new();
    refusing.refuse(true);
    let working = FakeJetstream::new();
    working.push_all(lines.iter().cloned());
    let mut options = options(&refusing.url(), &valkey.url());
    options.jetstream.push(working.url());
    let mut daemon = Daemon::start(&options);
    caught_up(&valkey, &working, &daemon).await;
    stop(&mut daemon);

    assert!(refusing.connections() >= 1 && refusing.upgrades() == 0);
    let first = working.requests().first().cloned().expect("a request");
    assert_eq!(
        requested_cursor(&first),
        Some(0),
        "from the oldest event: {first}"
    );
    let host = valkey.exec(&["HGET", CURSOR_KEY, "host"]);
    assert_eq!(host.as_str(), Some(working.url().as_str()));
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_refuses_midway_fails_over_with_the_wider_rewind() {
    let lines = stream();
    let (first, _) = lines.split_at(STREAM_LEN / 2);
    let valkey = Valkey::start();
    let failing = FakeJetstream::new();
    failing.push_all(first.iter().cloned());
    let working = FakeJetstream::new();
    working.push_all(lines.iter().cloned());
    let mut options = options(&failing.url(), &valkey.url());
    options.jetstream.push(working.url());
    let rewinds = ["--cursor-rewind", "5", "--cursor-failover-rewind", "60"];
    let mut daemon = Daemon::start(&with_flags(options, &rewinds));
    caught_up(&valkey, &failing, &daemon).await;
    assert_eq!(
        working.connections(),
        0,
        "the first host served the first half"
    );

    failing.refuse(true);
    failing.drop_connections();
    caught_up(&valkey, &working, &daemon).await;
    stop(&mut daemon);

    let request = working.requests().first().cloned().expect("a request");
    let resumed = requested_cursor(&request).expect("a cursor");
    let expected = last_delivered_time_us(first) - 60_000_000;
    assert!(
        (resumed - expected).abs() <= 1_000_000,
        "{request} resumes 60 s before {}",
        last_delivered_time_us(first)
    );
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_never_completes_times_out_to_the_next_host() {
    let lines = stream();
    let valkey = Valkey::start();
    let silent = SilentHost::start();
    let working = FakeJetstream::new();
    working.push_all(lines.iter().cloned());
    let mut options = options(&silent.url(), &valkey.url());
    options.jetstream.push(working.url());
    let started = Instant::now();
    let options = with_flags(options, &["--jetstream-connect-timeout", "2"]);
    let mut daemon = Daemon::start(&options);
    let moved = working.wait_for_upgrades(1, Duration::from_secs(20)).await;
    let waited = started.elapsed();
    caught_up(&valkey, &working, &daemon).await;
    stop(&mut daemon);

    assert!(moved, "the next host was used; log:\n{}", log_tail(&daemon));
    assert!(silent.connections() >= 1, "the silent host was tried");
    let window = Duration::from_secs(2)..Duration::from_secs(10);
    assert!(
        window.contains(&waited),
        "left after the 2 s timeout: {waited:?}"
    );
    assert!(
        daemon.log().contains("connect_timeout"),
        "log:\n{}",
        daemon.log()
    );
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_answering_500_and_400_are_left_for_the_next() {
    let lines = stream();
    let valkey = Valkey::start();
    let (erring, rejecting) = (FakeJetstream::new(), FakeJetstream::new());
    erring.http_error(Some(500));
    rejecting.http_error(Some(400));
    let working = FakeJetstream::new();
    working.push_all(lines.iter().cloned());
    let mut options = options(&erring.url(), &valkey.url());
    options.jetstream.extend([rejecting.url(), working.url()]);
    let mut daemon = Daemon::start(&options);
    caught_up(&valkey, &working, &daemon).await;
    stop(&mut daemon);

    assert!(!erring.requests().is_empty() && !rejecting.requests().is_empty());
    let log = daemon.log();
    for status in ["500", "400"] {
        let failed = log
            .lines()
            .any(|line| line.contains("connection failed") && line.contains(status));
        assert!(failed, "the {status} is logged; log:\n{log}");
    }
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_replay_resumes_and_resurrects_nothing() {
    let lines = heavy_stream();
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    let options = options(&jetstream.url(), &valkey.url());
    let mut daemon = Daemon::start(&options);
    let partway = time_at(&lines, 0.4);
    let reached = valkey
        .wait_until(INDEX_TIMEOUT, |valkey| cursor(valkey) >= Some(partway))
        .await;
    assert!(
        reached,
        "the replay progressed; log:\n{}",
        log_tail(&daemon)
    );
    daemon.kill9();
    let stored = cursor(&valkey).expect("a cursor");

    let mut daemon = Daemon::start(&options);
    caught_up(&valkey, &jetstream, &daemon).await;
    stop(&mut daemon);

    assert!(stored < last_delivered_time_us(&lines), "killed mid-replay");
    let requests = jetstream.requests();
    let resumed = requests
        .get(1)
        .and_then(|request| requested_cursor(request));
    assert_eq!(resumed, Some(stored - 5_000_000), "requests: {requests:?}");
    let deleted = deleted_at_the_end(&lines);
    assert!(
        deleted.len() > 10,
        "the stream deletes records: {}",
        deleted.len()
    );
    let came_back: Vec<&String> = deleted
        .iter()
        .filter(|key| !is_tombstone(&valkey, key))
        .collect();
    assert!(
        came_back.is_empty(),
        "deleted records came back: {came_back:?}"
    );
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

/// Fills Valkey past `maxmemory` with keys outside the cache's prefix.
fn fill(valkey: &Valkey, maxmemory: &str) {
    limit_memory(valkey, maxmemory);
    let filler = "x".repeat(100_000);
    let full = (0..1_000).any(|index| {
        let reply = valkey.exec(&["SET", &format!("filler:{index}"), &filler]);
        reply.as_str() != Some("OK")
    });
    assert!(full, "Valkey refuses writes once past {maxmemory}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_against_a_full_valkey_waits_for_room() {
    let lines = stream();
    let valkey = Valkey::start();
    fill(&valkey, "2mb");
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    let mut daemon = Daemon::start(&options(&jetstream.url(), &valkey.url()));
    let exited = daemon.exit_within(Duration::from_secs(5)).await;
    assert_eq!(
        exited,
        None,
        "the daemon waits for room; log:\n{}",
        log_tail(&daemon)
    );

    valkey.exec(&["CONFIG", "SET", "maxmemory", "0"]);
    caught_up(&valkey, &jetstream, &daemon).await;
    stop(&mut daemon);
    assert!(daemon.log().contains("OOM"), "log:\n{}", daemon.log());
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}
