//! The stream end to end: replays, restarts, dropped connections, compression, Valkey outages
//! and bad input, each compared with the keyspace of an uninterrupted run over the same events.

mod support;

use std::time::Duration;

use support::daemon::Daemon;
use support::events::*;
use support::jetstream::{zstd_bomb, FakeJetstream};
use support::scenario;
use support::valkey::{assert_same_keyspace, Keyspace, Valkey};
use tokio_tungstenite::tungstenite::Message;

/// Events in the mixed streams of these tests.
const STREAM_LEN: usize = 1_500;

/// How long a daemon may take to index a test stream.
const INDEX_TIMEOUT: Duration = Duration::from_secs(60);

fn cursor(valkey: &Valkey) -> Option<i64> {
    let reply = valkey
        .try_exec(&["HGET", "atcr:cursor:jetstream", "time_us"])
        .ok()?;
    reply.as_str().and_then(|text| text.parse().ok())
}

/// The newest event the daemon will see: commits outside `io.atcr.*` are filtered out.
fn last_time_us(jetstream: &FakeJetstream) -> i64 {
    let delivered = |line: &String| {
        let event: serde_json::Value = serde_json::from_str(line).expect("fixture JSON");
        let collection = event["commit"]["collection"].as_str();
        collection.is_none_or(|collection| collection.starts_with("io.atcr."))
    };
    let events = jetstream.events();
    let last = events
        .iter()
        .rev()
        .find(|line| delivered(line))
        .expect("events");
    time_us_of(last).expect("time_us")
}

/// Waits until the stored cursor covers the last event pushed.
async fn caught_up(valkey: &Valkey, jetstream: &FakeJetstream, daemon: &Daemon) {
    let last = last_time_us(jetstream);
    let reached = valkey
        .wait_until(INDEX_TIMEOUT, |v| cursor(v) >= Some(last))
        .await;
    assert!(
        reached,
        "cursor {:?} never reached {last}; log:\n{}",
        cursor(valkey),
        daemon.log()
    );
}

/// The cache without the control keys, whose values carry wall-clock times.
fn cache(valkey: &Valkey) -> Keyspace {
    let mut keyspace = valkey.dump("atcr:");
    keyspace.retain(|key, _| key != "atcr:meta" && !key.starts_with("atcr:cursor:"));
    keyspace
}

/// The keyspace one uninterrupted run leaves for `lines`.
async fn reference(lines: &[String]) -> Keyspace {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    let mut daemon = Daemon::start(&scenario::options(&jetstream.url(), &valkey.url()));
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success());
    let keyspace = cache(&valkey);
    assert!(
        keyspace.len() > 50,
        "the reference stream indexes something: {}",
        keyspace.len()
    );
    keyspace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_whole_stream_twice_leaves_the_same_keyspace() {
    let lines = generate_stream(STREAM_LEN, 1);
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    let mut daemon = Daemon::start(&scenario::options(&jetstream.url(), &valkey.url()));
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success());
    let once = cache(&valkey);

    valkey.exec(&["DEL", "atcr:cursor:jetstream"]);
    let mut daemon = Daemon::start(&scenario::options(&jetstream.url(), &valkey.url()));
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success());
    assert!(jetstream
        .requests()
        .last()
        .expect("a request")
        .contains("cursor=0"));
    assert_same_keyspace(&once, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_stored_cursor() {
    let lines = generate_stream(STREAM_LEN, 2);
    let (first, second) = lines.split_at(STREAM_LEN / 2);
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.push_all(first.iter().cloned());
    let mut daemon = Daemon::start(&scenario::options(&jetstream.url(), &valkey.url()));
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(
        daemon.stop().success(),
        "SIGTERM exits 0; log:\n{}",
        daemon.log()
    );
    let stored = cursor(&valkey).expect("cursor stored at shutdown");
    assert_eq!(stored, last_time_us(&jetstream));

    jetstream.push_all(second.iter().cloned());
    let mut daemon = Daemon::start(&scenario::options(&jetstream.url(), &valkey.url()));
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success());
    let resumed = format!("cursor={}", stored - 5_000_000);
    let request = jetstream.requests().last().cloned().expect("a request");
    assert!(
        request.contains(&resumed),
        "{request} should resume at {resumed}"
    );
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_every_few_hundred_messages_loses_nothing() {
    let lines = generate_stream(STREAM_LEN, 3);
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.close_after(400);
    jetstream.push_all(lines.iter().cloned());
    let mut daemon = Daemon::start(&scenario::options(&jetstream.url(), &valkey.url()));
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success());
    assert!(
        jetstream.connections() >= 3,
        "it reconnected: {}",
        jetstream.connections()
    );
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_frames_decode_with_a_trained_dictionary() {
    let lines = generate_stream(STREAM_LEN, 4);
    let dictionary = train_dictionary();
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::with_dictionary(dictionary.clone());
    jetstream.push_all(lines.iter().cloned());
    let mut options = scenario::options(&jetstream.url(), &valkey.url());
    options.dictionary = Some(dictionary);
    let mut daemon = Daemon::start(&options);
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success());
    assert!(jetstream.requests()[0].contains("compress=true"));
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

/// Stops Valkey for a few seconds while the daemon reads, then restarts it.
async fn outage(persistent: bool) {
    let lines = generate_stream(STREAM_LEN, 5);
    let (first, second) = lines.split_at(STREAM_LEN / 2);
    let mut valkey = if persistent {
        Valkey::start_persistent()
    } else {
        Valkey::start()
    };
    let jetstream = FakeJetstream::new();
    jetstream.push_all(first.iter().cloned());
    let mut daemon = Daemon::start(&scenario::options(&jetstream.url(), &valkey.url()));
    caught_up(&valkey, &jetstream, &daemon).await;

    valkey.stop();
    jetstream.push_all(second.iter().cloned());
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        daemon.is_running(),
        "the daemon survives the outage; log:\n{}",
        daemon.log()
    );
    valkey.restart();
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success());
    let log = daemon.log();
    assert_eq!(
        log.contains("replaying from the oldest"),
        !persistent,
        "log:\n{log}"
    );
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkey_outage_with_persistence_resumes_where_it_stopped() {
    outage(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkey_that_lost_its_data_is_refilled_by_a_replay() {
    outage(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_and_records_between_valid_ones_are_skipped() {
    let lines = generate_stream(400, 6);
    let dictionary = train_dictionary();
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::with_dictionary(dictionary.clone());
    let mut options = scenario::options(&jetstream.url(), &valkey.url());
    options.dictionary = Some(dictionary.clone());
    let mut daemon = Daemon::start(&options);
    let connected = jetstream
        .wait_for_upgrades(1, Duration::from_secs(10))
        .await;
    assert!(connected, "daemon connected; log:\n{}", daemon.log());
    let did = "did:plc:cccccccccccccccccccccccc";
    let mut clock = Clock::new(EPOCH_US - 1_000_000);
    let bad_record = serde_json::json!({"$type": MANIFEST, "repository": "UPPER", "digest": "x"});
    let hostile = r#"{"did":"did:plc:{x}","time_us":1,"kind":"commit"}"#;
    let bomb = zstd_bomb(Some(&dictionary), 20 << 20);
    for (index, line) in lines.iter().enumerate() {
        jetstream.push(line.clone());
        match index % 50 {
            10 => jetstream.inject_raw(Message::text("{not json")),
            20 => jetstream.inject_raw(Message::binary(vec![0xff, 0x00, 0x13])),
            25 => jetstream.inject_raw(Message::binary(bomb.clone())),
            30 => jetstream.inject_raw(Message::text(hostile)),
            40 => jetstream.push(event_commit(
                did,
                &mut clock,
                "3mg3ghvwbz225",
                "create",
                MANIFEST,
                "k",
                Some(bad_record.clone()),
            )),
            _ => {}
        }
    }
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success());
    let log = daemon.log();
    for count in [
        "event.json=8",
        "frame.dictionary=8",
        "frame.decompress=8",
        "event.did=8",
        "record.repository=8",
    ] {
        assert!(
            log.contains(count),
            "the summary counts {count}; log:\n{log}"
        );
    }
    let mut expected = reference(&lines).await;
    let tombstone = format!("atcr:{{{did}}}:rec:io.atcr.manifest:k");
    let mut actual = cache(&valkey);
    let rejected = actual
        .remove(&tombstone)
        .expect("the invalid record left a tombstone");
    assert!(format!("{:?}", rejected.value).contains(r#"\"deleted\":true"#));
    actual.remove(&format!("atcr:{{{did}}}:indexed"));
    expected.retain(|key, _| !key.contains(did));
    assert_same_keyspace(&expected, &actual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_host_fails_over_to_the_next() {
    let lines = generate_stream(300, 7);
    let valkey = Valkey::start();
    let broken = FakeJetstream::new();
    broken.http_error(Some(503));
    let working = FakeJetstream::new();
    working.push_all(lines.iter().cloned());
    let mut options = scenario::options(&broken.url(), &valkey.url());
    options.jetstream.push(working.url());
    let mut daemon = Daemon::start(&options);
    caught_up(&valkey, &working, &daemon).await;
    assert!(daemon.stop().success());
    assert!(broken.connections() >= 1, "the first host was tried");
    let host = valkey.exec(&["HGET", "atcr:cursor:jetstream", "host"]);
    assert_eq!(host.as_str(), Some(working.url().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_host_is_left_after_the_idle_timeout() {
    let lines = generate_stream(600, 8);
    let (first, second) = lines.split_at(300);
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.push_all(first.iter().cloned());
    let mut options = scenario::options(&jetstream.url(), &valkey.url());
    let timeouts = [
        "--jetstream-idle-timeout",
        "2",
        "--jetstream-ping-interval",
        "1",
    ];
    options.extra = timeouts.iter().map(|flag| flag.to_string()).collect();
    let mut daemon = Daemon::start(&options);
    caught_up(&valkey, &jetstream, &daemon).await;
    jetstream.stall();
    jetstream.push_all(second.iter().cloned());
    tokio::time::sleep(Duration::from_secs(3)).await;
    jetstream.unstall();
    caught_up(&valkey, &jetstream, &daemon).await;
    assert!(daemon.stop().success());
    assert!(
        daemon.log().contains("idle_timeout"),
        "log:\n{}",
        daemon.log()
    );
    assert!(jetstream.upgrades() >= 2, "it reconnected after the stall");
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}
