//! Smoke tests of the test harness itself: the Valkey child process, the fake Jetstream and the
//! fixtures. Every other integration test trusts these pieces, so each is checked against an
//! outcome that would differ if the piece were broken.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use support::events::{self, Clock, Revs};
use support::jetstream::{zstd_bomb, FakeJetstream};
use support::valkey::{assert_same_keyspace, keyspace_differences, KeyValue, Valkey};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a client waits for a frame that should arrive.
const ARRIVAL: Duration = Duration::from_secs(5);

/// How long a client listens to be sure that nothing arrives.
const SILENCE: Duration = Duration::from_millis(300);

async fn connect(fake: &FakeJetstream, query: &str) -> Client {
    let url = format!("{}{query}", fake.url());
    let (client, _) = connect_async(url.as_str())
        .await
        .unwrap_or_else(|error| panic!("connect to {url}: {error}"));
    client
}

/// The next frame of any kind, `None` when the stream ends or stays silent for `wait`.
async fn next_raw_frame(client: &mut Client, wait: Duration) -> Option<Result<Message, WsError>> {
    tokio::time::timeout(wait, client.next())
        .await
        .ok()
        .flatten()
}

/// The next data or close frame (pings and pongs skipped), `None` as for [`next_raw_frame`].
async fn next_frame(client: &mut Client, wait: Duration) -> Option<Result<Message, WsError>> {
    loop {
        match next_raw_frame(client, wait).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => return other,
        }
    }
}

async fn next_text(client: &mut Client) -> String {
    match next_frame(client, ARRIVAL).await {
        Some(Ok(Message::Text(text))) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn texts(client: &mut Client, n: usize) -> Vec<String> {
    let mut received = Vec::new();
    for _ in 0..n {
        received.push(next_text(client).await);
    }
    received
}

async fn assert_silent(client: &mut Client) {
    if let Some(frame) = next_frame(client, SILENCE).await {
        panic!("expected no frame, got {frame:?}");
    }
}

/// Five identity events 1 ms apart, starting at [`events::EPOCH_US`].
fn identities(n: usize) -> Vec<String> {
    let mut clock = Clock::new(events::EPOCH_US);
    let did = events::did_plc(1);
    (0..n)
        .map(|_| events::event_identity(&did, &mut clock, None))
        .collect()
}

#[test]
fn valkey_runs_on_a_private_port_and_answers() {
    let valkey = Valkey::start();

    assert_ne!(
        valkey.port(),
        6379,
        "must never use the machine's Redis port"
    );
    assert_eq!(valkey.url(), format!("redis://127.0.0.1:{}", valkey.port()));
    assert!(
        valkey.ping(),
        "PING unanswered; log:\n{}",
        valkey.log_tail()
    );
    assert_eq!(valkey.exec(&["SET", "k", "v"]).as_str(), Some("OK"));
    assert_eq!(valkey.exec(&["GET", "k"]).as_str(), Some("v"));
    assert!(valkey.exec(&["GET", "missing"]).is_nil());
    assert_eq!(valkey.exec(&["INCRBY", "n", "41"]).as_int(), Some(41));
    assert!(matches!(
        valkey.exec(&["NOSUCHCOMMAND"]),
        support::valkey::RespValue::Error(_)
    ));
}

#[test]
fn persistent_valkey_keeps_data_across_restart_and_crash() {
    let mut valkey = Valkey::start_persistent();
    let port = valkey.port();
    valkey.exec(&["SET", "kept", "1"]);

    valkey.restart();
    assert_eq!(valkey.port(), port);
    assert_eq!(valkey.exec(&["GET", "kept"]).as_str(), Some("1"));

    valkey.exec(&["SET", "after-crash", "2"]);
    valkey.kill9();
    assert!(!valkey.ping(), "server still answers after kill9");
    valkey.restart();
    assert_eq!(valkey.exec(&["GET", "after-crash"]).as_str(), Some("2"));
}

#[test]
fn plain_valkey_loses_data_on_restart() {
    let mut valkey = Valkey::start();
    valkey.exec(&["SET", "lost", "1"]);

    valkey.restart();

    assert!(
        valkey.exec(&["GET", "lost"]).is_nil(),
        "data survived a non-persistent restart"
    );
}

fn fill_every_type(valkey: &Valkey) {
    valkey.exec(&["SET", "t:string", "text", "EX", "600"]);
    valkey.exec(&["HSET", "t:hash", "b", "2", "a", "1"]);
    valkey.exec(&["SADD", "t:set", "y", "x"]);
    valkey.exec(&["ZADD", "t:zset", "2", "b", "1.5", "a"]);
    valkey.exec(&["RPUSH", "t:list", "first", "second"]);
    valkey.exec(&["SET", "other:key", "outside the prefix"]);
}

#[test]
fn dump_reads_every_type_under_a_prefix() {
    let valkey = Valkey::start();
    fill_every_type(&valkey);

    let dump = valkey.dump("t:");

    let keys: Vec<&str> = dump.keys().map(String::as_str).collect();
    assert_eq!(keys, ["t:hash", "t:list", "t:set", "t:string", "t:zset"]);
    assert_eq!(dump["t:string"].value, KeyValue::String("text".into()));
    assert!(dump["t:string"]
        .ttl_secs
        .is_some_and(|ttl| (590..=600).contains(&ttl)));
    assert_eq!(dump["t:hash"].ttl_secs, None);
    let zset = KeyValue::ZSet([("a".into(), "1.5".into()), ("b".into(), "2".into())].into());
    assert_eq!(dump["t:zset"].value, zset);
    assert_eq!(
        dump["t:set"].value,
        KeyValue::Set(["x".into(), "y".into()].into())
    );
}

#[test]
fn keyspace_comparison_tolerates_ttl_drift_but_not_value_changes() {
    let (first, second) = (Valkey::start(), Valkey::start());
    fill_every_type(&first);
    fill_every_type(&second);
    second.exec(&["EXPIRE", "t:string", "597"]);

    assert_same_keyspace(&first.dump("t:"), &second.dump("t:"));

    second.exec(&["PERSIST", "t:string"]);
    second.exec(&["HSET", "t:hash", "a", "changed"]);
    second.exec(&["SADD", "t:extra", "z"]);
    let differences = keyspace_differences(&first.dump("t:"), &second.dump("t:"));
    assert_eq!(differences.len(), 3, "{differences:#?}");
    let failed = std::panic::catch_unwind(|| {
        assert_same_keyspace(&first.dump("t:"), &second.dump("t:"));
    });
    assert!(failed.is_err(), "differing keyspaces passed the assertion");
}

#[test]
fn wait_for_reports_success_and_timeout() {
    let valkey = Valkey::start();
    valkey.exec(&["SET", "ready", "1"]);

    let present = |v: &Valkey| !v.exec(&["GET", "ready"]).is_nil();
    let absent = |v: &Valkey| !v.exec(&["GET", "never"]).is_nil();

    assert!(valkey.wait_for(Duration::from_secs(1), present));
    assert!(!valkey.wait_for(Duration::from_millis(100), absent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_inclusively_from_a_cursor_then_follows_live() {
    let fake = FakeJetstream::new();
    let lines = identities(5);
    fake.push_all(lines.clone());
    let cursor = events::time_us_of(&lines[2]).expect("fixture has time_us");

    let mut client = connect(&fake, &format!("?cursor={cursor}")).await;

    assert_eq!(texts(&mut client, 3).await, lines[2..]);
    assert_silent(&mut client).await;
    let live = identities(6).remove(5);
    fake.push(live.clone());
    assert_eq!(next_text(&mut client).await, live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_zero_replays_everything_and_no_cursor_tails_live() {
    let fake = FakeJetstream::new();
    let lines = identities(4);
    fake.push_all(lines[..3].to_vec());

    let mut from_oldest = connect(&fake, "?cursor=0").await;
    let mut tail = connect(&fake, "").await;

    assert_eq!(texts(&mut from_oldest, 3).await, lines[..3]);
    assert_silent(&mut tail).await;
    fake.push(lines[3].clone());
    assert_eq!(next_text(&mut tail).await, lines[3]);
    assert_eq!(next_text(&mut from_oldest).await, lines[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_commits_by_collection_but_passes_identity_and_account() {
    let fake = FakeJetstream::new();
    let mut clock = Clock::new(events::EPOCH_US);
    let mut revs = Revs::new(events::EPOCH_US);
    let did = events::did_plc(3);
    let crew = events::hold_crew(&did, "write", "2026-03-01T00:00:00Z");
    let like = serde_json::json!({"$type": "app.bsky.feed.like"});
    let lines = [
        events::event_commit(
            &did,
            &mut clock,
            &revs.next(),
            "create",
            "app.bsky.feed.like",
            "a",
            Some(like),
        ),
        events::event_identity(&did, &mut clock, Some("sailor.example.com")),
        events::event_commit(
            events::HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            events::CREW,
            "m",
            Some(crew),
        ),
        events::event_account(&did, &mut clock, false, Some("deactivated")),
        events::event_delete(&did, &mut clock, &revs.next(), events::TAG, "t"),
    ];
    fake.push_all(lines.clone());

    let mut prefix = connect(&fake, "?wantedCollections=io.atcr.*&cursor=0").await;
    let mut exact = connect(&fake, "?wantedCollections=io.atcr.tag&cursor=0").await;

    assert_eq!(texts(&mut prefix, 4).await, lines[1..]);
    assert_silent(&mut prefix).await;
    let expected = [lines[1].clone(), lines[3].clone(), lines[4].clone()];
    assert_eq!(texts(&mut exact, 3).await, expected);
    assert_silent(&mut exact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compresses_each_event_with_the_dictionary() {
    let dictionary = events::train_dictionary();
    let fake = FakeJetstream::with_dictionary(dictionary.clone());
    let lines = events::generate_stream(50, 9);
    fake.push_all(lines.clone());
    let mut decompressor =
        zstd::bulk::Decompressor::with_dictionary(&dictionary).expect("dictionary loads");
    let dictionary_id = zstd::zstd_safe::get_dict_id_from_dict(&dictionary);

    let mut client = connect(&fake, "?compress=true&cursor=0").await;

    assert!(
        dictionary.len() > 4 * 1024 && dictionary.len() <= 16 * 1024,
        "{}",
        dictionary.len()
    );
    assert!(dictionary_id.is_some(), "trained dictionary has no ID");
    assert_eq!(
        dictionary,
        events::train_dictionary(),
        "training is not deterministic"
    );
    for line in &lines {
        let frame = match next_frame(&mut client, ARRIVAL).await {
            Some(Ok(Message::Binary(frame))) => frame,
            other => panic!("expected a binary frame, got {other:?}"),
        };
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(&frame),
            dictionary_id
        );
        let json = decompressor
            .decompress(&frame, 1 << 20)
            .expect("frame decodes");
        assert_eq!(String::from_utf8_lossy(&json), *line);
    }
    assert!(zstd::bulk::decompress(&fake.compress(&lines[0]), 1 << 20).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_after_drops_the_connection_without_a_close_frame() {
    let fake = FakeJetstream::new();
    fake.push_all(identities(5));
    fake.close_after(2);

    let mut client = connect(&fake, "?cursor=0").await;

    texts(&mut client, 2).await;
    match next_frame(&mut client, ARRIVAL).await {
        None | Some(Err(_)) => {}
        Some(Ok(frame)) => panic!("expected the stream to end, got {frame:?}"),
    }
    fake.close_after(None);
    let mut again = connect(&fake, "?cursor=0").await;
    assert_eq!(texts(&mut again, 5).await.len(), 5);
    assert_eq!(fake.upgrades(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_forced_http_errors_and_bad_parameters() {
    let fake = FakeJetstream::new();
    fake.http_error(Some(503));

    let refused = connect_async(fake.url().as_str()).await;
    let status = match refused {
        Err(WsError::Http(response)) => response.status().as_u16(),
        other => panic!(
            "expected an HTTP error, got {:?}",
            other.map(|_| "an upgrade")
        ),
    };
    assert_eq!(status, 503);

    fake.http_error(None);
    for query in [
        "?cursor=yesterday",
        "?wantedCollections=app.bsky.fo*",
        "?compress=true",
    ] {
        let url = format!("{}{query}", fake.url());
        let answer = connect_async(url.as_str()).await;
        assert!(
            matches!(&answer, Err(WsError::Http(r)) if r.status() == 400),
            "{query}: expected 400"
        );
    }
    assert_eq!(fake.requests().len(), 4);
    assert_eq!(fake.requests()[1], "/subscribe?cursor=yesterday");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_drops_connections_before_the_handshake() {
    let fake = FakeJetstream::new();
    fake.refuse(true);

    let answer = connect_async(fake.url().as_str()).await;

    assert!(answer.is_err(), "handshake succeeded while refusing");
    assert_eq!((fake.connections(), fake.upgrades()), (1, 0));
    assert!(fake.requests().is_empty());
    fake.refuse(false);
    connect(&fake, "").await;
    assert_eq!(fake.upgrades(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_holds_frames_until_unstall() {
    let fake = FakeJetstream::new();
    let lines = identities(2);
    let mut client = connect(&fake, "").await;
    fake.stall();

    fake.push(lines[0].clone());
    client
        .send(Message::Ping("hello".into()))
        .await
        .expect("send ping");
    if let Some(frame) = next_raw_frame(&mut client, SILENCE).await {
        panic!("a stalled server sent {frame:?}");
    }

    fake.unstall();
    assert_eq!(next_text(&mut client).await, lines[0]);
    fake.push(lines[1].clone());
    assert_eq!(next_text(&mut client).await, lines[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injects_raw_frames_in_position_for_current_subscribers_only() {
    let dictionary = events::train_dictionary();
    let fake = FakeJetstream::with_dictionary(dictionary.clone());
    let lines = identities(2);
    let mut client = connect(&fake, "").await;

    fake.push(lines[0].clone());
    fake.inject_raw(Message::text("{not json"));
    fake.inject_raw(Message::binary(zstd_bomb(Some(&dictionary), 1 << 24)));
    fake.push(lines[1].clone());

    assert_eq!(next_text(&mut client).await, lines[0]);
    assert_eq!(next_text(&mut client).await, "{not json");
    let bomb = match next_frame(&mut client, ARRIVAL).await {
        Some(Ok(Message::Binary(bomb))) => bomb,
        other => panic!("expected the bomb, got {other:?}"),
    };
    assert!(bomb.len() < 4096, "bomb is {} bytes", bomb.len());
    let mut decompressor =
        zstd::bulk::Decompressor::with_dictionary(&dictionary).expect("dictionary loads");
    assert!(
        decompressor.decompress(&bomb, 1 << 20).is_err(),
        "a 1 MiB cap must stop it"
    );
    assert_eq!(next_text(&mut client).await, lines[1]);

    let mut late = connect(&fake, "?cursor=0").await;
    assert_eq!(texts(&mut late, 2).await, lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_requests_and_options_updates() {
    let fake = FakeJetstream::new();
    let mut clock = Clock::new(events::EPOCH_US);
    let mut client = connect(&fake, "?wantedCollections=io.atcr.*&cursor=12").await;
    let update = r#"{"type":"options_update","payload":{"wantedCollections":["io.atcr.tag"]}}"#;
    client
        .send(Message::text(update))
        .await
        .expect("send options_update");

    let arrived = tokio::time::timeout(ARRIVAL, async {
        while fake.client_messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    arrived.await.expect("options_update reached the server");
    let star = events::event_delete("did:plc:x", &mut clock, "3aaaaaaaaaaaa", events::STAR, "s");
    let tag = events::event_delete("did:plc:x", &mut clock, "3aaaaaaaaaaab", events::TAG, "t");
    fake.push_all([star, tag.clone()]);

    assert_eq!(next_text(&mut client).await, tag);
    assert_eq!(fake.client_messages(), [update]);
    assert_eq!(
        fake.requests(),
        ["/subscribe?wantedCollections=io.atcr.*&cursor=12"]
    );
}

#[test]
fn clocks_and_revs_increase_and_revs_sort_as_strings() {
    let mut clock = Clock::new(100);
    let times: Vec<i64> = (0..3).map(|_| clock.next()).collect();
    assert_eq!(times, [100, 1_100, 2_100]);

    let mut revs = Revs::new(events::EPOCH_US);
    let generated: Vec<String> = (0..2_000).map(|_| revs.next()).collect();
    for pair in generated.windows(2) {
        assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
    }
    let tid_charset = |rev: &String| {
        rev.len() == 13
            && rev.starts_with(|c: char| matches!(c, '2'..='7' | 'a'..='j'))
            && rev.chars().all(|c| matches!(c, '2'..='7' | 'a'..='z'))
    };
    assert!(generated.iter().all(tid_charset), "{:?}", &generated[..3]);
}

#[test]
fn generated_stream_is_deterministic_and_well_formed() {
    let stream = events::generate_stream(2_000, 42);

    assert_eq!(stream, events::generate_stream(2_000, 42));
    assert_ne!(stream, events::generate_stream(2_000, 43));
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    let mut last_time_us = 0;
    for line in &stream {
        let event: serde_json::Value = serde_json::from_str(line).expect("event is JSON");
        let time_us = event["time_us"].as_i64().expect("time_us");
        assert!(time_us > last_time_us, "time_us must increase: {line}");
        last_time_us = time_us;
        let label = match event["kind"].as_str().expect("kind") {
            "commit" => check_commit(&event),
            other => other.to_string(),
        };
        *kinds.entry(label).or_default() += 1;
    }
    let count = |label: &str| kinds.get(label).copied().unwrap_or(0);
    assert!(count("identity") + count("account") > 800, "{kinds:?}");
    for collection in [
        events::MANIFEST,
        events::TAG,
        events::STAR,
        events::STATS,
        events::SCAN,
    ] {
        assert!(
            count(&format!("create {collection}")) > 0,
            "no {collection}: {kinds:?}"
        );
    }
    assert!(count("delete io.atcr.manifest") > 0, "{kinds:?}");
}

/// Checks the v1 commit shape and returns "<operation> <collection>".
fn check_commit(event: &serde_json::Value) -> String {
    let commit = &event["commit"];
    let operation = commit["operation"].as_str().expect("operation");
    let collection = commit["collection"].as_str().expect("collection");
    let has_body = commit.get("record").is_some() && commit.get("cid").is_some();
    assert_eq!(has_body, operation != "delete", "{event}");
    if let Some(record) = commit.get("record") {
        assert_eq!(record["$type"], collection, "{event}");
    }
    format!("{operation} {collection}")
}

#[test]
fn identifiers_have_the_shapes_the_validator_expects() {
    let did = events::did_plc(7);
    let id = did.strip_prefix("did:plc:").expect("did:plc prefix");
    assert!(
        id.len() == 24 && id.chars().all(|c| matches!(c, 'a'..='z' | '2'..='7')),
        "{did}"
    );

    let digest = events::digest("x");
    let hex = events::digest_hex(&digest);
    assert!(hex.len() == 64 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));

    let record = events::tag("webapp", "latest", "at://x/y/z", "2026-03-01T00:00:00Z");
    let cid = events::record_cid(&record);
    assert!(cid.starts_with("bafyrei") && cid.len() == 59, "{cid}");
    assert!(events::blob_cid("b").starts_with("bafkrei"));
    assert_eq!(events::datetime(events::EPOCH_US), "2026-03-01T00:00:00Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_fake_ends_its_connections() {
    let fake = FakeJetstream::new();
    let mut client = connect(&fake, "").await;

    drop(fake);

    match next_frame(&mut client, ARRIVAL).await {
        None | Some(Err(_)) => {}
        Some(Ok(frame)) => panic!("expected the stream to end, got {frame:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_valkey_stops_the_server() {
    let valkey = Valkey::start();
    let address = format!("127.0.0.1:{}", valkey.port());
    assert!(
        valkey
            .wait_until(Duration::from_secs(1), Valkey::ping)
            .await
    );

    drop(valkey);

    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "{address} still accepts connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_connections_cuts_open_connections_only() {
    let fake = FakeJetstream::new();
    let lines = identities(1);
    let mut cut = connect(&fake, "").await;

    fake.drop_connections();
    let mut fresh = connect(&fake, "").await;
    fake.push(lines[0].clone());

    match next_frame(&mut cut, ARRIVAL).await {
        None | Some(Err(_)) => {}
        Some(Ok(frame)) => panic!("expected the stream to end, got {frame:?}"),
    }
    assert_eq!(next_text(&mut fresh).await, lines[0]);
}
