//! Fixture builders for Jetstream v1 event lines, a zstd dictionary and a generated stream.
//!
//! Everything here is deterministic: the same calls give the same bytes, so a replay test can
//! compare two runs key for key. Event lines keep Jetstream's own field order (`did`, `time_us`,
//! `kind`, then the kind object). The record builders live in `records` and are re-exported
//! here, so `use support::events::*` brings in both.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Value};

pub use super::records::*;

/// 2026-03-01T00:00:00Z in microseconds: a plausible start for fixture clocks.
pub const EPOCH_US: i64 = 1_772_323_200_000_000;

/// A monotonic source of `time_us` values, as one Jetstream instance stamps them.
#[derive(Clone, Debug)]
pub struct Clock {
    next_us: i64,
    step_us: i64,
}

impl Clock {
    /// A clock whose first `next()` is `start_us`, then 1 ms apart.
    pub fn new(start_us: i64) -> Self {
        Self::with_step(start_us, 1_000)
    }

    /// A clock whose first `next()` is `start_us`, then `step_us` apart (at least 1).
    pub fn with_step(start_us: i64, step_us: i64) -> Self {
        Self {
            next_us: start_us,
            step_us: step_us.max(1),
        }
    }

    /// Returns the next `time_us`, strictly greater than every earlier one.
    pub fn next(&mut self) -> i64 {
        let time_us = self.next_us;
        self.next_us += self.step_us;
        time_us
    }

    /// The value the next call to `next()` returns.
    pub fn peek(&self) -> i64 {
        self.next_us
    }

    /// Moves the clock forward by `us` microseconds, leaving a gap in the stream.
    pub fn advance(&mut self, us: i64) {
        self.next_us += us.max(0);
    }
}

/// A generator of TID-like revisions that sort as strings in the order they are made.
#[derive(Clone, Debug)]
pub struct Revs {
    next_us: i64,
}

impl Revs {
    /// Revisions whose timestamp part starts at `start_us`.
    pub fn new(start_us: i64) -> Self {
        Self { next_us: start_us }
    }

    /// Returns a 13-character rev greater, as a string, than every earlier one.
    pub fn next(&mut self) -> String {
        let rev = tid(self.next_us, 0);
        self.next_us += 1;
        rev
    }
}

/// Extracts `time_us` from an event line, `None` when the line has none.
pub fn time_us_of(line: &str) -> Option<i64> {
    serde_json::from_str::<Value>(line)
        .ok()?
        .get("time_us")?
        .as_i64()
}

/// A commit event line. The record and its CID are written only when `record` is `Some`, so
/// `op = "delete"` with `None` gives the real delete shape.
pub fn event_commit(
    did: &str,
    clock: &mut Clock,
    rev: &str,
    op: &str,
    collection: &str,
    rkey: &str,
    record: Option<Value>,
) -> String {
    let body = match record {
        Some(record) => format!(
            r#","record":{},"cid":{}"#,
            record,
            quoted(&record_cid(&record))
        ),
        None => String::new(),
    };
    let commit = format!(
        r#"{{"rev":{},"operation":{},"collection":{},"rkey":{}{body}}}"#,
        quoted(rev),
        quoted(op),
        quoted(collection),
        quoted(rkey),
    );
    envelope(did, clock.next(), "commit", &commit)
}

/// A delete commit: no record, no CID.
pub fn event_delete(
    did: &str,
    clock: &mut Clock,
    rev: &str,
    collection: &str,
    rkey: &str,
) -> String {
    event_commit(did, clock, rev, "delete", collection, rkey, None)
}

/// An identity event; `handle` is often absent on the real wire.
pub fn event_identity(did: &str, clock: &mut Clock, handle: Option<&str>) -> String {
    let time_us = clock.next();
    let mut identity = json!({"did": did, "seq": relay_seq(time_us), "time": relay_time(time_us)});
    if let Some(handle) = handle {
        identity["handle"] = json!(handle);
    }
    envelope(did, time_us, "identity", &identity.to_string())
}

/// An account event; `status` is normally set only when `active` is false.
pub fn event_account(did: &str, clock: &mut Clock, active: bool, status: Option<&str>) -> String {
    let time_us = clock.next();
    let mut account = json!({
        "active": active,
        "did": did,
        "seq": relay_seq(time_us),
        "time": relay_time(time_us),
    });
    if let Some(status) = status {
        account["status"] = json!(status);
    }
    envelope(did, time_us, "account", &account.to_string())
}

fn envelope(did: &str, time_us: i64, kind: &str, body: &str) -> String {
    format!(
        r#"{{"did":{},"time_us":{time_us},"kind":{},{}:{body}}}"#,
        quoted(did),
        quoted(kind),
        quoted(kind)
    )
}

fn quoted(text: &str) -> String {
    Value::from(text).to_string()
}

fn relay_seq(time_us: i64) -> i64 {
    30_000_000_000 + (time_us / 1_000) % 1_000_000_000
}

fn relay_time(time_us: i64) -> String {
    DateTime::from_timestamp_micros(time_us - 300_000)
        .expect("fixture times are within chrono's range")
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A small zstd dictionary (at most 16 KiB) trained on a fixed generated stream.
///
/// The real v1 dictionary is not shipped with the tests; this one plays its part, and its ID
/// appears in every frame header just as the real one's does. Training is deterministic.
pub fn train_dictionary() -> Vec<u8> {
    let samples = generate_stream(1_200, 0x5eed);
    zstd::dict::from_samples(&samples, 16 * 1024).expect("training on 1,200 events succeeds")
}

/// A deterministic mixed stream of `n` event lines, strictly increasing in `time_us`.
///
/// About half are identity and account events of bystanders, a tenth are `app.bsky.feed.like`
/// commits (which a `wantedCollections=io.atcr.*` filter must drop), the rest `io.atcr.*`
/// activity of eight sailors on two holds: pushes (manifest and tag with one rev, then hold
/// layer and stats records), tag moves and deletes, manifest deletes, stars and unstars,
/// pull counts, scans, repo pages and profiles. The same `(n, seed)` gives the same lines.
pub fn generate_stream(n: usize, seed: u64) -> Vec<String> {
    let mut generator = StreamGenerator::new(seed);
    while generator.lines.len() < n {
        generator.step();
    }
    generator.lines.truncate(n);
    generator.lines
}

/// A tiny xorshift64 generator, enough for reproducible fixture streams.
#[derive(Clone, Debug)]
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator seeded with `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..bound` (`bound` at least 1).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

const REPOSITORIES: [&str; 4] = ["webapp", "api", "tools/psql-client", "db"];
const TAGS: [&str; 3] = ["latest", "v1", "stable"];

/// One image pushed by the generated stream, remembered so later events can refer to it.
#[derive(Clone, Debug)]
struct Pushed {
    did: String,
    repository: String,
    digest: String,
    tag: String,
    tag_rkey: String,
}

struct StreamGenerator {
    rng: Xorshift,
    clock: Clock,
    lines: Vec<String>,
    pushes: u64,
    images: Vec<Pushed>,
    stars: Vec<(String, String)>,
    counts: BTreeMap<(String, String, String), (u64, u64)>,
}

impl StreamGenerator {
    fn new(seed: u64) -> Self {
        Self {
            rng: Xorshift::new(seed),
            clock: Clock::new(EPOCH_US),
            lines: Vec::new(),
            pushes: 0,
            images: Vec::new(),
            stars: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    fn step(&mut self) {
        let gap = 200 + self.rng.below(1_800) as i64;
        self.clock.advance(gap);
        match self.rng.below(100) {
            0..=34 => self.identity(),
            35..=54 => self.account(),
            55..=64 => self.like(),
            65..=74 => self.push(),
            75..=77 => self.move_tag(),
            78..=79 => self.delete_tag(),
            80..=81 => self.delete_manifest(),
            82..=86 => self.add_star(),
            87..=88 => self.remove_star(),
            89..=93 => self.pull(),
            94..=96 => self.scan(),
            97..=98 => self.page(),
            _ => self.profile(),
        }
    }

    fn sailor(&mut self) -> String {
        did_plc(self.rng.below(8))
    }

    fn bystander(&mut self) -> String {
        did_plc(1_000 + self.rng.below(500))
    }

    fn hold(&mut self) -> &'static str {
        if self.rng.below(4) == 0 {
            HOLD_DID_2
        } else {
            HOLD_DID
        }
    }

    fn rev(&mut self) -> String {
        tid(self.clock.peek(), (self.rng.below(1_024)) as u16)
    }

    fn now(&self) -> String {
        datetime(self.clock.peek())
    }

    fn commit(&mut self, did: &str, rev: &str, op: &str, collection: &str, rkey: &str, r: Value) {
        let record = (op != "delete").then_some(r);
        let line = event_commit(did, &mut self.clock, rev, op, collection, rkey, record);
        self.lines.push(line);
    }

    fn identity(&mut self) {
        let did = self.bystander();
        let handle = (self.rng.below(3) == 0).then(|| format!("user{}.bsky.social", did.len()));
        let line = event_identity(&did, &mut self.clock, handle.as_deref());
        self.lines.push(line);
    }

    fn account(&mut self) {
        let did = self.bystander();
        let inactive = self.rng.below(10) == 0;
        let status = inactive.then_some("deactivated");
        let line = event_account(&did, &mut self.clock, !inactive, status);
        self.lines.push(line);
    }

    fn like(&mut self) {
        let did = self.bystander();
        let rev = self.rev();
        let rkey = self.rev();
        let subject = at_uri(&did_plc(2_000), "app.bsky.feed.post", &rkey);
        let record = json!({"$type": "app.bsky.feed.like", "createdAt": self.now(),
            "subject": {"uri": subject, "cid": blob_cid(&rkey)}});
        self.commit(&did, &rev, "create", "app.bsky.feed.like", &rkey, record);
    }

    fn push(&mut self) {
        self.pushes += 1;
        let did = self.sailor();
        let repository = REPOSITORIES[self.rng.below(4) as usize].to_string();
        let tag_name = TAGS[self.rng.below(3) as usize].to_string();
        let seed = format!("push-{}", self.pushes);
        let layers: Vec<Descriptor> = (0..1 + self.rng.below(3))
            .map(|i| Descriptor::layer(&format!("{seed}-{i}")))
            .collect();
        let image = Pushed {
            digest: digest(&seed),
            tag_rkey: self.existing_tag_rkey(&did, &repository, &tag_name),
            did,
            repository,
            tag: tag_name,
        };
        self.push_records(&image, &layers);
        self.hold_records(&image, &layers);
        self.images.push(image);
    }

    fn existing_tag_rkey(&mut self, did: &str, repository: &str, tag_name: &str) -> String {
        let existing = self.images.iter().rev().find(|image| {
            image.did == did && image.repository == repository && image.tag == tag_name
        });
        match existing {
            Some(image) => image.tag_rkey.clone(),
            None => self.rev(),
        }
    }

    fn push_records(&mut self, image: &Pushed, layers: &[Descriptor]) {
        let rev = self.rev();
        let now = self.now();
        let rkey = digest_hex(&image.digest).to_string();
        let config = Descriptor::config(&image.digest);
        let manifest = manifest_image(&image.repository, &image.digest, &config, layers, &now);
        self.commit(&image.did, &rev, "create", MANIFEST, &rkey, manifest);
        let uri = at_uri(&image.did, MANIFEST, &rkey);
        let tag_record = tag(&image.repository, &image.tag, &uri, &now);
        self.commit(&image.did, &rev, "create", TAG, &image.tag_rkey, tag_record);
    }

    fn hold_records(&mut self, image: &Pushed, layers: &[Descriptor]) {
        let hold = self.hold();
        let uri = at_uri(&image.did, MANIFEST, digest_hex(&image.digest));
        for layer in layers {
            let (rev, now) = (self.rev(), self.now());
            let record = hold_layer(layer, &image.did, &uri, &now);
            self.commit(hold, &rev, "create", LAYER, &rev, record);
        }
        self.count(hold, &image.did, &image.repository, 0, 1);
    }

    fn count(&mut self, hold: &str, owner: &str, repository: &str, pulls: u64, pushes: u64) {
        let key = (hold.to_string(), owner.to_string(), repository.to_string());
        let entry = self.counts.entry(key).or_default();
        entry.0 += pulls;
        entry.1 += pushes;
        let (pull_count, push_count) = *entry;
        let (rev, now) = (self.rev(), self.now());
        let record = hold_stats(owner, repository, pull_count, push_count, &now);
        let op = if pull_count + push_count == 1 {
            "create"
        } else {
            "update"
        };
        self.commit(
            hold,
            &rev,
            op,
            STATS,
            &stats_rkey(owner, repository),
            record,
        );
    }

    fn pick_image(&mut self) -> Option<Pushed> {
        if self.images.is_empty() {
            return None;
        }
        let index = self.rng.below(self.images.len() as u64) as usize;
        Some(self.images[index].clone())
    }

    fn move_tag(&mut self) {
        let Some(image) = self.pick_image() else {
            return self.identity();
        };
        let (rev, now) = (self.rev(), self.now());
        let uri = at_uri(&image.did, MANIFEST, digest_hex(&image.digest));
        let record = tag(&image.repository, &image.tag, &uri, &now);
        self.commit(&image.did, &rev, "update", TAG, &image.tag_rkey, record);
    }

    fn delete_tag(&mut self) {
        let Some(image) = self.pick_image() else {
            return self.identity();
        };
        let rev = self.rev();
        self.commit(
            &image.did,
            &rev,
            "delete",
            TAG,
            &image.tag_rkey,
            Value::Null,
        );
    }

    fn delete_manifest(&mut self) {
        let Some(image) = self.pick_image() else {
            return self.identity();
        };
        self.images.retain(|other| other.digest != image.digest);
        let rev = self.rev();
        let rkey = digest_hex(&image.digest).to_string();
        self.commit(&image.did, &rev, "delete", MANIFEST, &rkey, Value::Null);
    }

    fn add_star(&mut self) {
        let Some(image) = self.pick_image() else {
            return self.identity();
        };
        let starrer = self.sailor();
        let (rev, now) = (self.rev(), self.now());
        let record = if self.rng.below(4) == 0 {
            star_old(&image.did, &image.repository, &now)
        } else {
            star(&image.did, &image.repository, &now)
        };
        self.commit(&starrer, &rev, "create", STAR, &rev, record);
        self.stars.push((starrer, rev));
    }

    fn remove_star(&mut self) {
        if self.stars.is_empty() {
            return self.identity();
        }
        let index = self.rng.below(self.stars.len() as u64) as usize;
        let (starrer, rkey) = self.stars.remove(index);
        let rev = self.rev();
        self.commit(&starrer, &rev, "delete", STAR, &rkey, Value::Null);
    }

    fn pull(&mut self) {
        let Some(image) = self.pick_image() else {
            return self.identity();
        };
        let hold = self.hold();
        self.count(hold, &image.did, &image.repository, 1, 0);
    }

    fn scan(&mut self) {
        let Some(image) = self.pick_image() else {
            return self.identity();
        };
        let counts = Severities {
            critical: self.rng.below(2),
            high: self.rng.below(5),
            medium: self.rng.below(20),
            low: self.rng.below(40),
        };
        let (rev, now) = (self.rev(), self.now());
        let uri = at_uri(&image.did, MANIFEST, digest_hex(&image.digest));
        let record = hold_scan(&uri, &image.repository, &image.did, counts, &now);
        let rkey = digest_hex(&image.digest).to_string();
        self.commit(HOLD_DID, &rev, "create", SCAN, &rkey, record);
    }

    fn page(&mut self) {
        let Some(image) = self.pick_image() else {
            return self.identity();
        };
        let (rev, now) = (self.rev(), self.now());
        let description = format!("# {}\n\nBuilt by the fixture stream.", image.repository);
        let record = repo_page(&image.repository, &description, &now);
        let rkey = image.repository.replace('/', "-");
        self.commit(&image.did, &rev, "update", REPO_PAGE, &rkey, record);
    }

    fn profile(&mut self) {
        let did = self.sailor();
        let (rev, now) = (self.rev(), self.now());
        let record = sailor_profile(Some(HOLD_DID), &now);
        self.commit(&did, &rev, "update", PROFILE, "self", record);
    }
}
