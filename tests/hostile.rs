//! Hostile input against the shipped daemon and a real Valkey.
//!
//! Every case of the corpus in `support::hostile` is sent between two valid events. Each must be
//! counted under its reason, in the `bad input skipped` summary and in `/metrics`; none may stop
//! the stream; the cache must equal an uninterrupted run over the valid events alone, plus the
//! tombstones that rejected records leave; and no hostile name may reach a key.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::daemon::{Daemon, Options};
use support::events::*;
use support::hostile::grammar::{key_grammar_violation, leaks};
use support::hostile::*;
use support::jetstream::FakeJetstream;
use support::scenario::{cache, caught_up, log_tail, options, reference, scrape};
use support::valkey::{assert_same_keyspace, Keyspace, Valkey};
use tokio_tungstenite::tungstenite::Message;

/// Valid events of each run: room for one case after each delivered one, and more.
const STREAM_LEN: usize = 1_000;

/// How long a handshake after a reconnect may take.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The counters of bad input, and the summary prefix each one's reasons get.
const BAD_INPUT_METRICS: [(&str, &str); 3] = [
    ("atcr_indexer_frames_rejected_total", "frame"),
    ("atcr_indexer_events_skipped_total", "event"),
    ("atcr_indexer_records_rejected_total", "record"),
];

/// What one daemon run over a corpus left.
struct Outcome {
    log: String,
    metrics: String,
    cache: Keyspace,
    leaks: Vec<String>,
}

fn stream(seed: u64) -> Vec<String> {
    generate_stream(STREAM_LEN, seed)
}

/// Starts a daemon on a fresh Valkey and fake Jetstream (compressed with `dictionary` when
/// given), with the small frame cap of the hostile runs.
async fn start(dictionary: Option<Vec<u8>>) -> (Valkey, FakeJetstream, Daemon) {
    let valkey = Valkey::start();
    let jetstream = match &dictionary {
        Some(dictionary) => FakeJetstream::with_dictionary(dictionary.clone()),
        None => FakeJetstream::new(),
    };
    let mut options: Options = options(&jetstream.url(), &valkey.url());
    options.dictionary = dictionary;
    let cap = CAP_BYTES.to_string();
    options
        .extra
        .extend(["--jetstream-max-event-bytes".to_owned(), cap]);
    let daemon = Daemon::start(&options);
    let connected = jetstream.wait_for_upgrades(1, RECONNECT_TIMEOUT).await;
    assert!(connected, "daemon connected; log:\n{}", log_tail(&daemon));
    (valkey, jetstream, daemon)
}

/// Sends the corpus (none for the baseline) between the valid `lines` and waits until the
/// daemon caught up.
async fn run(corpus: Option<&Corpus>, lines: &[String], dictionary: Option<Vec<u8>>) -> Outcome {
    let (valkey, jetstream, mut daemon) = start(dictionary).await;
    match corpus {
        Some(corpus) => send(&jetstream, corpus, lines),
        None => jetstream.push_all(lines.iter().cloned()),
    }
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.is_running(), "log:\n{}", log_tail(&daemon));
    let metrics = scrape(daemon.metrics_address());
    assert!(daemon.stop().success(), "log:\n{}", log_tail(&daemon));
    Outcome {
        log: daemon.log(),
        metrics,
        cache: cache(&valkey),
        leaks: leaks(&valkey),
    }
}

fn send(jetstream: &FakeJetstream, corpus: &Corpus, lines: &[String]) {
    for item in corpus.schedule(lines) {
        match item {
            Scheduled::Valid(line) => jetstream.push(line.clone()),
            Scheduled::Hostile(case) => jetstream.inject_raw(case.message.clone()),
        }
    }
}

/// The counts of every `bad input skipped` summary line of `log`, added up by label.
fn summary_counts(log: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let lines = log
        .lines()
        .filter(|line| line.contains("bad input skipped"));
    for line in lines {
        let Some((_, tail)) = line.split_once("counts=") else {
            panic!("a summary without counts: {line}");
        };
        for token in tail.trim_matches('"').split_whitespace() {
            let token = token.trim_matches('"');
            let Some((label, count)) = token.rsplit_once('=') else {
                continue;
            };
            if let Ok(count) = count.parse::<u64>() {
                *counts.entry(label.to_owned()).or_default() += count;
            }
        }
    }
    counts
}

/// The bad-input counters of a `/metrics` page, as summary labels (`record.*` summed over
/// collections).
fn metric_counts(page: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (name, stage) in BAD_INPUT_METRICS {
        for (reason, value) in by_label(page, name, "reason") {
            *counts.entry(format!("{stage}.{reason}")).or_default() += value as u64;
        }
    }
    counts
}

/// Samples of metric `name` on a `/metrics` page, summed by the value of `label`.
fn by_label(page: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    let prefix = format!("{name}{{");
    for line in page.lines().filter(|line| line.starts_with(&prefix)) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let wanted = format!("{label}=\"");
        let Some((_, rest)) = series.split_once(&wanted) else {
            continue;
        };
        let key = rest.split('"').next().unwrap_or_default().to_owned();
        *sums.entry(key).or_default() += value.parse::<f64>().unwrap_or(0.0);
    }
    sums
}

/// The value of an unlabelled metric (or the sum of all its samples); 0 when absent.
fn total(page: &str, name: &str) -> f64 {
    let samples = page.lines().filter_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let series_name = series.split('{').next()?;
        (series_name == name).then(|| value.parse::<f64>().ok())?
    });
    samples.sum()
}

/// Every check of one hostile run against the corpus and the baseline run of the valid lines
/// alone (whose own rejected records, such as stars of a repository name with a `/`, count too).
fn check(corpus: &Corpus, baseline: &Outcome, outcome: &Outcome) {
    let context = || format!("cases:\n{}\nlog:\n{}", names(corpus), tail(&outcome.log));
    let expected = added(&summary_counts(&baseline.log), &corpus.counts());
    assert_eq!(
        summary_counts(&outcome.log),
        expected,
        "the summary counts each case under its reason; {}",
        context()
    );
    let expected = added(&metric_counts(&baseline.metrics), &corpus.counts());
    assert_eq!(
        metric_counts(&outcome.metrics),
        expected,
        "/metrics counts each case under its reason"
    );
    let frames = "atcr_indexer_frames_received_total";
    let sent = corpus.cases.len() - corpus.outcomes(Expected::Ignored);
    assert_eq!(
        total(&outcome.metrics, frames),
        total(&baseline.metrics, frames) + sent as f64,
        "every valid event and every case arrived once"
    );
    let stale = "atcr_indexer_valkey_stale_writes_total";
    assert_eq!(
        total(&outcome.metrics, stale),
        total(&baseline.metrics, stale) + corpus.outcomes(Expected::Stale) as f64,
        "each older rev was dropped by newest-rev-wins"
    );
    assert!(
        outcome.leaks.is_empty(),
        "leaks:\n{}",
        outcome.leaks.join("\n")
    );
    assert_same_cache_but_tombstones(corpus, &baseline.cache, &outcome.cache);
}

fn added(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut sum = a.clone();
    for (label, count) in b {
        *sum.entry(label.clone()).or_default() += count;
    }
    sum
}

/// The cache equals the baseline's once the rejected records' tombstones, each present and
/// each a tombstone, are taken out.
fn assert_same_cache_but_tombstones(corpus: &Corpus, baseline: &Keyspace, cache: &Keyspace) {
    let mut actual = cache.clone();
    for key in corpus.tombstones() {
        let dump = actual
            .remove(&key)
            .unwrap_or_else(|| panic!("the rejected record left no tombstone at {key}"));
        let value = format!("{:?}", dump.value);
        assert!(value.contains(r#"\"deleted\":true"#), "{key}: {value}");
    }
    // An account that got a tombstone also gets its `indexed` marker (docs/keys.md).
    actual.remove(&format!("atcr:{{{HOSTILE_DID}}}:indexed"));
    let hostile: BTreeSet<&String> = actual.keys().filter(|k| k.contains(HOSTILE_DID)).collect();
    assert!(
        hostile.is_empty(),
        "keys beyond the tombstones: {hostile:?}"
    );
    assert_same_keyspace(baseline, &actual);
}

fn names(corpus: &Corpus) -> String {
    let names = corpus.cases.iter().map(|case| format!("  {}", case.name));
    names.collect::<Vec<_>>().join("\n")
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_frames_are_counted_and_skipped_between_valid_events() {
    let lines = stream(31);
    let corpus = Corpus::text(&lines);
    let baseline = run(None, &lines, None).await;
    let outcome = run(Some(&corpus), &lines, None).await;
    check(&corpus, &baseline, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_compressed_frames_are_counted_and_skipped_between_valid_events() {
    let lines = stream(32);
    let dictionary = train_dictionary();
    let corpus = Corpus::compressed(&lines, &dictionary);
    let baseline = run(None, &lines, Some(dictionary.clone())).await;
    let outcome = run(Some(&corpus), &lines, Some(dictionary)).await;
    check(&corpus, &baseline, &outcome);
}

/// A protocol error (a text frame that is not UTF-8, a continuation of nothing) or a close
/// frame ends that connection only: the daemon reconnects, resumes, and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_end_only_the_connection_and_the_reader_resumes() {
    let lines = stream(33);
    let (valkey, jetstream, mut daemon) = start(None).await;
    let breakers = [
        invalid_utf8_text(),
        orphan_continuation(),
        Message::Close(None),
    ];
    let parts: Vec<&[String]> = lines.chunks(lines.len().div_ceil(4)).collect();
    for (index, breaker) in breakers.into_iter().enumerate() {
        jetstream.push_all(parts[index].iter().cloned());
        jetstream.inject_raw(breaker);
        let reconnected = jetstream
            .wait_for_upgrades(index + 2, RECONNECT_TIMEOUT)
            .await;
        assert!(
            reconnected,
            "reconnect {index}; log:\n{}",
            log_tail(&daemon)
        );
    }
    jetstream.push_all(parts[3].iter().cloned());
    caught_up(&valkey, &jetstream, &daemon).await;
    let metrics = scrape(daemon.metrics_address());
    assert!(daemon.stop().success(), "log:\n{}", log_tail(&daemon));
    let reconnects = by_label(
        &metrics,
        "atcr_indexer_jetstream_reconnects_total",
        "reason",
    );
    assert_eq!(reconnects.get("error"), Some(&2.0), "{metrics}");
    assert_eq!(reconnects.get("closed"), Some(&1.0), "{metrics}");
    let leaks = leaks(&valkey);
    assert!(leaks.is_empty(), "leaks:\n{}", leaks.join("\n"));
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

/// An event larger than `--jetstream-max-event-bytes` is counted as `frame.too_large` and
/// skipped; the events after it land. Jetstream keeps it in its log, so every reconnect that
/// resumes before it receives it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_larger_than_the_cap_is_counted_and_skipped() {
    let lines = stream(34);
    let (valkey, jetstream, mut daemon) = start(None).await;
    let (first, second) = lines.split_at(lines.len() / 2);
    jetstream.push_all(first.iter().cloned());
    let mut clock = Clock::new(time_us_of(&first[first.len() - 1]).expect("time_us") + 1);
    let big = json_record_of(CAP_BYTES + 1);
    let rev = tid(EPOCH_US, 1);
    let rkey = "oversized";
    let event = event_commit(
        HOSTILE_DID,
        &mut clock,
        &rev,
        "create",
        WEBHOOK_NSID,
        rkey,
        big,
    );
    jetstream.push(event);
    jetstream.push_all(second.iter().cloned());
    caught_up(&valkey, &jetstream, &daemon).await;
    let metrics = scrape(daemon.metrics_address());
    assert!(daemon.stop().success(), "log:\n{}", log_tail(&daemon));
    let log = daemon.log();
    assert_eq!(
        summary_counts(&log).get("frame.too_large"),
        Some(&1),
        "{}",
        tail(&log)
    );
    assert_eq!(metric_counts(&metrics).get("frame.too_large"), Some(&1));
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

/// The NSID of webhook records, which are cached raw.
const WEBHOOK_NSID: &str = "io.atcr.sailor.webhook";

/// A valid webhook record whose JSON is `len` bytes or a little more.
fn json_record_of(len: usize) -> Option<serde_json::Value> {
    Some(serde_json::json!({
        "$type": WEBHOOK_NSID, "holdDid": HOLD_DID, "triggers": 1, "privateCid": "bafy",
        "createdAt": "2026-03-01T00:00:00Z", "padding": "p".repeat(len),
    }))
}

/// The grammar check that the runs rely on accepts every documented key and refuses keys with
/// a hostile part, so a leak cannot pass unnoticed.
#[test]
fn the_key_grammar_check_tells_documented_keys_from_hostile_ones() {
    let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    let digest = format!("sha256:{}", "a".repeat(64));
    let documented = [
        "atcr:meta".to_owned(),
        "atcr:cursor:jetstream".to_owned(),
        "atcr:recent:pushes".to_owned(),
        format!("atcr:{{{did}}}:rec:io.atcr.tag:3mg3ghvwbz225"),
        format!("atcr:{{{did}}}:rec:io.atcr.tag:a:b~c"),
        format!("atcr:{{{did}}}:rkeys:io.atcr.manifest"),
        format!("atcr:{{{did}}}:manifest:{digest}:layers"),
        format!("atcr:{{{did}}}:repo:tools/psql-client:tags"),
        "atcr:{did:web:hold01.atcr.io}:hold:crew".to_owned(),
        format!("atcr:{{{did}}}:user"),
    ];
    for key in &documented {
        assert_eq!(key_grammar_violation(key), None, "{key}");
    }
    let hostile = [
        "atcr:{did:plc:{evil}}:user".to_owned(),
        "atcr:{did:web:evil.example:8080}:user".to_owned(),
        format!("atcr:{{{did}}}:rec:io.atcr.tag:evil rkey"),
        format!("atcr:{{{did}}}:rec:io.atcr.{{evil}}:a"),
        format!("atcr:{{{did}}}:repo:evil{{repo}}:tags"),
        format!("atcr:{{{did}}}:repo:Evil:tags"),
        format!("atcr:{{{did}}}:repo:webapp:evil"),
        format!("atcr:{{{did}}}:manifest:sha256:evil"),
        format!("atcr:{{{did}}}:rec:io.atcr.tag:.."),
        format!("atcr:{{{did}}}:user\n"),
        format!("atcr:{{{did}}}:user*"),
        "atcr:evil".to_owned(),
        "evil".to_owned(),
    ];
    for key in &hostile {
        assert!(key_grammar_violation(key).is_some(), "{key:?} passed");
    }
}
