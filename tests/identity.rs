//! Identity resolution end to end: the [`Resolver`] against fake PLC, PDS and `did:web` hosts
//! over real HTTP, writing `P:{D}:user` into a real Valkey through a small [`UserWriter`].
//!
//! Absence is asserted only after a "settle": with one worker, resolving a fresh sentinel DID
//! proves that every job queued before it has ended, so a missing key is not merely late.

mod support;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atcr_indexer::config::{IdentitySettings, DEFAULT_IDENTITY_AVATAR_CDN};
use atcr_indexer::identity::{Resolver, UserWriter, Why};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use support::identity::{
    did_document, plc_did, plc_path, profile_path, record_not_found, FakeHost, Reply, AVATAR_CID,
    DID_WEB_PATH,
};
use support::valkey::Valkey;

/// Longest wait for something that should happen; only a guard against a hung test.
const ARRIVAL: Duration = Duration::from_secs(20);

/// Sentinel DIDs are numbered from here, apart from the DIDs the tests use.
const SENTINEL_BASE: u32 = 100_000;

/// A resolver wired to a fresh Valkey and a fake PLC directory and PDS.
struct World {
    valkey: Arc<Valkey>,
    plc: FakeHost,
    pds: FakeHost,
    resolver: Resolver,
    cancel: CancellationToken,
    sentinels: std::sync::atomic::AtomicU32,
}

impl Drop for World {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn settings(plc: &FakeHost) -> IdentitySettings {
    IdentitySettings {
        plc_url: plc.url().parse().expect("fake PLC URL parses"),
        avatar_cdn: DEFAULT_IDENTITY_AVATAR_CDN.to_owned(),
        queue_capacity: 100,
        concurrency: 1,
        request_timeout: Duration::from_secs(1),
        retries: 2,
        negative_cache: Duration::from_secs(600),
        per_host_rate: NonZeroU32::new(1000).expect("nonzero"),
    }
}

/// `SET P:{D}:user <json> EX 3600` over the harness's RESP client, as the daemon will do.
fn valkey_writer(valkey: Arc<Valkey>) -> UserWriter {
    Arc::new(move |did: String, json: String| {
        let valkey = Arc::clone(&valkey);
        Box::pin(async move {
            let key = user_key(&did);
            let set = move || valkey.try_exec(&["SET", &key, &json, "EX", "3600"]);
            let reply = tokio::task::spawn_blocking(set).await;
            match reply.map_err(|error| error.to_string())? {
                Ok(reply) if reply.as_str() == Some("OK") => Ok(()),
                Ok(reply) => Err(format!("SET answered {reply:?}")),
                Err(error) => Err(error.to_string()),
            }
        })
    })
}

fn user_key(did: &str) -> String {
    format!("atcr:{{{did}}}:user")
}

impl World {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut IdentitySettings)) -> Self {
        Self::build(adjust, false)
    }

    fn build(adjust: impl FnOnce(&mut IdentitySettings), allow_localhost: bool) -> Self {
        let valkey = Arc::new(Valkey::start());
        let (plc, pds) = (FakeHost::start(), FakeHost::start());
        let mut settings = settings(&plc);
        adjust(&mut settings);
        let cancel = CancellationToken::new();
        let writer = valkey_writer(Arc::clone(&valkey));
        let resolver = Resolver::start(&settings, writer, allow_localhost, cancel.clone())
            .expect("resolver starts inside the test runtime");
        World {
            valkey,
            plc,
            pds,
            resolver,
            cancel,
            sentinels: std::sync::atomic::AtomicU32::new(SENTINEL_BASE),
        }
    }

    /// Publishes `did` with a handle, this world's PDS, and a profile with an avatar.
    fn healthy(&self, did: &str, handle: &str) {
        let document = did_document(did, Some(handle), Some(&self.pds.url()));
        self.plc.serve_document(did, document);
        self.pds.serve_profile(did, Some(AVATAR_CID));
    }

    /// The stored user value of `did`, parsed.
    fn user(&self, did: &str) -> Option<Value> {
        let raw = self.raw_user(did)?;
        Some(serde_json::from_str(&raw).expect("the user value is JSON"))
    }

    fn raw_user(&self, did: &str) -> Option<String> {
        let reply = self.valkey.exec(&["GET", &user_key(did)]);
        reply.as_str().map(str::to_owned)
    }

    /// Waits until the user key of `did` exists and returns it.
    async fn written(&self, did: &str) -> Value {
        let key = user_key(did);
        let exists = |valkey: &Valkey| valkey.exec(&["EXISTS", &key]).as_int() == Some(1);
        let arrived = self.valkey.wait_until(ARRIVAL, exists).await;
        assert!(arrived, "{key} was not written within {ARRIVAL:?}");
        self.user(did).expect("the key exists")
    }

    /// Waits until the user key of `did` holds `handle`.
    async fn written_with_handle(&self, did: &str, handle: &str) -> Value {
        let key = user_key(did);
        let holds = |valkey: &Valkey| {
            let raw = valkey.exec(&["GET", &key]);
            let value: Option<Value> = raw.as_str().and_then(|raw| serde_json::from_str(raw).ok());
            value.is_some_and(|value| value["handle"] == handle)
        };
        let arrived = self.valkey.wait_until(ARRIVAL, holds).await;
        assert!(
            arrived,
            "{key} did not get handle {handle}: {:?}",
            self.user(did)
        );
        self.user(did).expect("the key exists")
    }

    /// With one worker: returns once every job queued before the call has ended.
    async fn settle(&self) {
        let n = self
            .sentinels
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let sentinel = plc_did(n);
        self.plc.serve_document(
            &sentinel,
            did_document(&sentinel, Some("sentinel.test"), None),
        );
        self.resolver.request(&sentinel, Why::Missing);
        self.written(&sentinel).await;
    }

    /// Waits until `host` holds `count` requests open.
    async fn hanging(&self, host: &FakeHost, count: usize) {
        let deadline = Instant::now() + ARRIVAL;
        while host.hanging() != count {
            assert!(
                Instant::now() < deadline,
                "{} requests hanging, expected {count}",
                host.hanging()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn assert_absent(world: &World, did: &str) {
    let value = world.raw_user(did);
    assert_eq!(value, None, "{did} must have no user key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plc_account_gets_handle_pds_and_avatar() {
    let world = World::new();
    let did = plc_did(1);
    world.healthy(&did, "Alice.Test");
    let before = now_us();
    world.resolver.request(&did, Why::Missing);
    let user = world.written(&did).await;
    let expected_avatar = format!("https://cdn.bsky.app/img/avatar/plain/{did}/{AVATAR_CID}@jpeg");
    assert_eq!(user["did"], did.as_str());
    assert_eq!(user["handle"], "alice.test");
    assert_eq!(user["pds"], world.pds.url());
    assert_eq!(user["avatar"], expected_avatar);
    let resolved_at = user["resolved_at_us"].as_i64().expect("an integer");
    assert!(
        resolved_at >= before && resolved_at <= now_us(),
        "{resolved_at}"
    );
    assert_eq!(world.plc.hits(&plc_path(&did)), 1);
    assert_eq!(world.pds.hits(&profile_path(&did)), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_value_fields_are_in_key_schema_order() {
    let world = World::new();
    let did = plc_did(2);
    world.healthy(&did, "order.test");
    world.resolver.request(&did, Why::Missing);
    world.written(&did).await;
    let raw = world.raw_user(&did).expect("written");
    let positions: Vec<Option<usize>> = ["did", "handle", "pds", "avatar", "resolved_at_us"]
        .iter()
        .map(|field| raw.find(&format!("\"{field}\":")))
        .collect();
    assert!(positions.iter().all(Option::is_some), "{raw}");
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{raw}");
    assert_eq!(
        world
            .user(&did)
            .and_then(|user| user.as_object().map(|o| o.len())),
        Some(5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_web_account_is_read_from_its_own_host() {
    let world = World::build(|_| {}, true);
    let web = FakeHost::start();
    let did = web.did_web();
    let document = did_document(&did, Some("web.test"), Some(&world.pds.url()));
    web.set(DID_WEB_PATH, Reply::Json(document));
    world.pds.serve_profile(&did, Some(AVATAR_CID));
    world.resolver.request(&did, Why::Missing);
    let user = world.written(&did).await;
    assert_eq!(user["handle"], "web.test");
    assert_eq!(user["pds"], world.pds.url());
    assert!(user["avatar"]
        .as_str()
        .is_some_and(|url| url.contains(AVATAR_CID)));
    assert_eq!(web.hits(DID_WEB_PATH), 1);
    assert_eq!(
        world.plc.hits(&plc_path(&did)),
        0,
        "did:web never asks the PLC directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_web_on_localhost_needs_the_testing_switch() {
    let world = World::new();
    let web = FakeHost::start();
    let did = web.did_web();
    web.set(
        DID_WEB_PATH,
        Reply::Json(did_document(&did, Some("web.test"), None)),
    );
    world.resolver.request(&did, Why::Missing);
    world.settle().await;
    assert_absent(&world, &did);
    assert_eq!(
        web.total_hits(),
        0,
        "no request to localhost without the switch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_without_avatar_writes_a_null_avatar() {
    let world = World::new();
    let (plain, bare) = (plc_did(3), plc_did(4));
    for did in [&plain, &bare] {
        let document = did_document(did, Some("plain.test"), Some(&world.pds.url()));
        world.plc.serve_document(did, document);
    }
    world.pds.serve_profile(&plain, None);
    world.pds.set(&profile_path(&bare), record_not_found());
    world.resolver.request(&plain, Why::Missing);
    world.resolver.request(&bare, Why::Missing);
    for did in [&plain, &bare] {
        let user = world.written(did).await;
        assert_eq!(user["avatar"], Value::Null, "{did}: {user}");
        assert_eq!(user["pds"], world.pds.url());
        assert_eq!(
            world.pds.hits(&profile_path(did)),
            1,
            "RecordNotFound is not retried"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_without_pds_writes_nulls_and_asks_no_pds() {
    let world = World::new();
    let did = plc_did(5);
    world
        .plc
        .serve_document(&did, did_document(&did, Some("nopds.test"), None));
    world.resolver.request(&did, Why::Missing);
    let user = world.written(&did).await;
    assert_eq!(user["handle"], "nopds.test");
    assert_eq!(user["pds"], Value::Null);
    assert_eq!(user["avatar"], Value::Null);
    assert_eq!(world.pds.total_hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_change_is_written_after_an_identity_request() {
    let world = World::new();
    let did = plc_did(6);
    world.healthy(&did, "before.test");
    world.resolver.request(&did, Why::Missing);
    world.written_with_handle(&did, "before.test").await;
    let edited = did_document(&did, Some("after.test"), Some(&world.pds.url()));
    world.plc.serve_document(&did, edited);
    world.resolver.request(&did, Why::Identity);
    let user = world.written_with_handle(&did, "after.test").await;
    assert_eq!(user["pds"], world.pds.url());
    assert_eq!(world.plc.hits(&plc_path(&did)), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_hosts_are_not_written_and_are_negatively_cached() {
    let world = World::new();
    let cases = [
        (plc_did(7), Reply::Status(500, "{}".to_owned()), 3),
        (plc_did(8), Reply::Garbage, 1),
        (plc_did(9), Reply::Hang, 3),
    ];
    for (did, reply, _) in &cases {
        let document = did_document(did, Some("broken.test"), Some(&world.pds.url()));
        world.plc.serve_document(did, document);
        world.pds.set(&profile_path(did), reply.clone());
        world.resolver.request(did, Why::Missing);
    }
    let (unknown, garbled) = (plc_did(10), plc_did(22));
    world.plc.set(&plc_path(&garbled), Reply::Garbage);
    world.resolver.request(&unknown, Why::Missing);
    world.resolver.request(&garbled, Why::Missing);
    world.settle().await;
    for (did, reply, attempts) in &cases {
        assert_absent(&world, did);
        let hits = world.pds.hits(&profile_path(did));
        assert_eq!(
            hits, *attempts,
            "{reply:?}: one attempt and 2 retries only when retryable"
        );
    }
    for did in [&unknown, &garbled] {
        assert_absent(&world, did);
        let hits = world.plc.hits(&plc_path(did));
        assert_eq!(hits, 1, "{did}: a 404 or a garbage document is not retried");
    }

    let (plc_before, pds_before) = (world.plc.total_hits(), world.pds.total_hits());
    for (did, _, _) in &cases {
        world.resolver.request(did, Why::Missing);
        world.resolver.request(did, Why::Refresh);
    }
    world.resolver.request(&unknown, Why::Missing);
    world.resolver.request(&garbled, Why::Refresh);
    world.settle().await;
    assert_eq!(
        world.pds.total_hits(),
        pds_before,
        "a failed DID costs no PDS request"
    );
    assert_eq!(
        world.plc.total_hits(),
        plc_before + 1,
        "only the sentinel asks the PLC"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_plc_directory_is_waited_out() {
    let world = World::new();
    let did = plc_did(11);
    world.healthy(&did, "patient.test");
    world.plc.push_once(
        &plc_path(&did),
        Reply::TooMany {
            retry_after_secs: 1,
        },
    );
    let start = Instant::now();
    world.resolver.request(&did, Why::Missing);
    let user = world.written(&did).await;
    assert_eq!(user["handle"], "patient.test");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored: {:?}",
        start.elapsed()
    );
    assert_eq!(world.plc.hits(&plc_path(&did)), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_pds_does_not_delay_other_dids() {
    let world = World::with(|settings| {
        settings.concurrency = 2;
        settings.request_timeout = Duration::from_secs(60);
        settings.retries = 0;
    });
    let (slow, healthy) = (plc_did(12), plc_did(13));
    let document = did_document(&slow, Some("slow.test"), Some(&world.pds.url()));
    world.plc.serve_document(&slow, document);
    world.pds.set(&profile_path(&slow), Reply::Hang);
    world.resolver.request(&slow, Why::Missing);
    world.hanging(&world.pds, 1).await;
    let other_pds = FakeHost::start();
    let document = did_document(&healthy, Some("healthy.test"), Some(&other_pds.url()));
    world.plc.serve_document(&healthy, document);
    other_pds.serve_profile(&healthy, None);
    world.resolver.request(&healthy, Why::Missing);
    let user = world.written(&healthy).await;
    assert_eq!(user["handle"], "healthy.test");
    assert_eq!(world.pds.hanging(), 1, "the slow request is still waiting");
    assert_absent(&world, &slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_prevents_the_write_of_a_result_in_flight() {
    let world = World::new();
    let did = plc_did(14);
    world.healthy(&did, "gone.test");
    let profile = support::identity::profile_record(&did, Some(AVATAR_CID));
    world.pds.set(
        &profile_path(&did),
        Reply::Held(Box::new(Reply::Json(profile))),
    );
    world.resolver.request(&did, Why::Missing);
    world.hanging(&world.pds, 1).await;
    world.resolver.forget(&did);
    world.pds.release();
    world.settle().await;
    assert_eq!(
        world.pds.hits(&profile_path(&did)),
        1,
        "the profile was answered"
    );
    assert_absent(&world, &did);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_drops_queued_work() {
    let world = World::new();
    let (held, queued) = (plc_did(15), plc_did(16));
    world.healthy(&held, "held.test");
    world.healthy(&queued, "queued.test");
    let profile = support::identity::profile_record(&held, None);
    world.pds.set(
        &profile_path(&held),
        Reply::Held(Box::new(Reply::Json(profile))),
    );
    world.resolver.request(&held, Why::Missing);
    world.hanging(&world.pds, 1).await;
    world.resolver.request(&queued, Why::Missing);
    world.resolver.forget(&queued);
    world.pds.release();
    world.settle().await;
    world.written(&held).await;
    assert_absent(&world, &queued);
    assert_eq!(
        world.plc.hits(&plc_path(&queued)),
        0,
        "queued work was dropped unasked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactivated_is_honoured_only_after_forget() {
    let world = World::new();
    let did = plc_did(17);
    world.healthy(&did, "back.test");
    world.resolver.request(&did, Why::Reactivated);
    world.settle().await;
    assert_absent(&world, &did);
    assert_eq!(world.plc.hits(&plc_path(&did)), 0);
    world.resolver.forget(&did);
    world.resolver.request(&did, Why::Reactivated);
    let user = world.written(&did).await;
    assert_eq!(user["handle"], "back.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_requests_share_one_resolution() {
    let world = World::new();
    let did = plc_did(18);
    world.healthy(&did, "popular.test");
    for why in [
        Why::Missing,
        Why::Refresh,
        Why::Missing,
        Why::Missing,
        Why::Refresh,
    ] {
        world.resolver.request(&did, why);
    }
    world.written(&did).await;
    world.settle().await;
    assert_eq!(world.plc.hits(&plc_path(&did)), 1);
    assert_eq!(world.pds.hits(&profile_path(&did)), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_the_request_until_it_is_asked_again() {
    let world = World::with(|settings| settings.queue_capacity = 1);
    let (held, queued, dropped) = (plc_did(19), plc_did(20), plc_did(21));
    for (did, handle) in [
        (&held, "held.test"),
        (&queued, "queued.test"),
        (&dropped, "late.test"),
    ] {
        world.healthy(did, handle);
    }
    let profile = support::identity::profile_record(&held, None);
    world.pds.set(
        &profile_path(&held),
        Reply::Held(Box::new(Reply::Json(profile))),
    );
    world.resolver.request(&held, Why::Missing);
    world.hanging(&world.pds, 1).await;
    world.resolver.request(&queued, Why::Missing);
    world.resolver.request(&dropped, Why::Missing);
    world.pds.release();
    world.written(&queued).await;
    assert_absent(&world, &dropped);
    assert_eq!(world.plc.hits(&plc_path(&dropped)), 0);
    world.resolver.request(&dropped, Why::Missing);
    assert_eq!(world.written(&dropped).await["handle"], "late.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_rate_limit_spaces_requests_to_one_host() {
    const DIDS: u32 = 6;
    const RATE: u32 = 2;
    let world = World::with(|settings| {
        settings.concurrency = 4;
        settings.per_host_rate = NonZeroU32::new(RATE).expect("nonzero");
    });
    let dids: Vec<String> = (30..30 + DIDS).map(plc_did).collect();
    for did in &dids {
        world
            .plc
            .serve_document(did, did_document(did, Some("rated.test"), None));
    }
    let start = Instant::now();
    for did in &dids {
        world.resolver.request(did, Why::Missing);
    }
    for did in &dids {
        world.written(did).await;
    }
    // A burst of RATE goes at once; each further request waits 1/RATE s: (6 - 2) / 2 = 2 s.
    let floor = Duration::from_millis(u64::from((DIDS - RATE) * 1000 / RATE) * 3 / 4);
    assert!(
        start.elapsed() >= floor,
        "{:?} < {floor:?}",
        start.elapsed()
    );
    assert_eq!(world.plc.total_hits(), DIDS as usize);
}

fn now_us() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |elapsed| {
        i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
    })
}
