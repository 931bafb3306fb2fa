//! Replays a generated Jetstream stream through the real `atcr-indexer` binary into a local
//! `valkey-server`, and reports the daemon's throughput and memory.
//!
//! Run it with `cargo bench --bench replay` (1,000,000 events), or choose the size with
//! `REPLAY_EVENTS=N` or `cargo bench --bench replay -- --events N` (the flag wins). Every event
//! is pushed to the in-process fake Jetstream before the daemon starts, so the daemon replays
//! from cursor 0 as fast as it can; a replay ends when the stored cursor reaches the last event
//! the server delivers (commits outside `io.atcr.*` are filtered out and never delivered).
//!
//! Two baselines are measured in the same run: the daemon with one event per Valkey batch over
//! a slice of the stream (the cost of not batching), and decoding and planning every delivered
//! line in this process without I/O (the CPU-only ceiling). The daemon, Valkey and the fakes
//! share the machine, so the numbers describe this machine only; see `docs/benchmarks.md`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use atcr_indexer::config::{DEFAULT_BATCH_MAX_EVENTS, DEFAULT_QUEUE_CAPACITY};
use atcr_indexer::event;
use atcr_indexer::index::program::TtlSecs;
use atcr_indexer::index::Indexer;
use atcr_indexer::metrics;
use support::daemon::{Daemon, Options};
use support::events::generate_stream;
use support::identity::{did_document, FakeHost, AVATAR_CID};
use support::jetstream::FakeJetstream;
use support::valkey::{RespValue, Valkey};

/// Events replayed when neither `--events` nor `REPLAY_EVENTS` says otherwise.
const DEFAULT_EVENTS: usize = 1_000_000;

/// Seed of the generated stream: the same size always replays the same bytes.
const SEED: u64 = 0xbe_4c4;

/// The unbatched baseline replays this fraction of the stream: large enough that the daemon's
/// one-second cursor saves, which bound the timing's precision, stay small against its length.
const BASELINE_DIVISOR: usize = 10;

/// ...and at least this many lines (all of a smaller stream).
const BASELINE_MIN_EVENTS: usize = 20_000;

/// Flags of the batched run: the daemon's defaults, logging at the production level (the test
/// harness asks for debug).
const BATCHED_FLAGS: [&str; 2] = ["--log-level", "info"];

/// Flags of the unbatched baseline: one event per Valkey batch.
const UNBATCHED_FLAGS: [&str; 4] = ["--log-level", "info", "--valkey-batch-max-events", "1"];

/// How often the stored cursor is read; finer than the daemon's one-second cursor saves.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How often the daemon's RSS and Valkey's script time are sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// A progress line goes to stderr every this many samples.
const PROGRESS_EVERY: usize = 10;

/// A replay that has not caught up by then is reported as a failure.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// How long the spawned daemon may take to show up in `/proc` under its own name.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(10);

/// RSS in the last quarter above the second quarter's by more than this counts as growth.
const GROWTH_LIMIT: f64 = 0.20;

/// Fewer samples than this make per-quarter figures meaningless.
const QUARTER_MIN_SAMPLES: usize = 8;

/// How many commands the report names as taking the most time inside the scripts.
const TOP_COMMANDS: usize = 3;

/// The cursor the daemon stores, as `tests/stream.rs` reads it.
const CURSOR_KEY: &str = "atcr:cursor:jetstream";

fn main() {
    let events = requested_events();
    confine_identity_lookups();
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime for the fakes");
    let measured = runtime.block_on(measure(events));
    println!("{}", report(&measured, started.elapsed()).join("\n"));
}

/// How many events to replay: `--events N` (or `--events=N`), then `REPLAY_EVENTS`.
fn requested_events() -> usize {
    let args: Vec<String> = std::env::args().collect();
    let after_flag = args.iter().position(|arg| arg == "--events");
    let flag = after_flag.map(|index| args.get(index + 1).expect("--events takes a count"));
    let joined = args.iter().find_map(|arg| arg.strip_prefix("--events="));
    let value = flag.map(String::as_str).or(joined).map(str::to_owned);
    let value = value.or_else(|| std::env::var("REPLAY_EVENTS").ok());
    let events = value.map_or(DEFAULT_EVENTS, |text| {
        let digits = text.replace(['_', ','], "");
        digits.parse().expect("the event count is a whole number")
    });
    assert!(events > 0, "the event count must be positive");
    events
}

/// Keeps the daemon's identity lookups on this machine. The generated holds are `did:web` hosts
/// on the internet, so HTTPS (the only scheme `did:web` uses) goes through a proxy on a closed
/// local port and fails at once; the fake PLC directory and PDS are plain HTTP on 127.0.0.1 and
/// bypass proxies. The daemon inherits this environment, set before any thread starts.
fn confine_identity_lookups() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = closed.local_addr().expect("a bound address").port();
    drop(closed);
    for name in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::set_var(name, format!("http://127.0.0.1:{port}"));
    }
    for name in ["NO_PROXY", "no_proxy"] {
        std::env::set_var(name, "127.0.0.1,localhost");
    }
}

/// Everything one bench run measured.
struct Measured {
    stream: Stream,
    decode: DecodeRun,
    batched: Replay,
    baseline_len: usize,
    unbatched: Replay,
    /// The 1-minute load average before and after: other work on the machine skews the run.
    load: (String, String),
    /// The source tree when the bench started, just after cargo built the daemon.
    source: String,
}

async fn measure(events: usize) -> Measured {
    let (load_before, source) = (load_average(), source());
    eprintln!("replay: generating {} events", grouped(events));
    let stream = Stream::generate(events);
    eprintln!("replay: decode-only baseline");
    let decode = decode_only(&stream);
    let baseline_len = (events / BASELINE_DIVISOR).clamp(BASELINE_MIN_EVENTS.min(events), events);
    let slice = stream.delivered_times(baseline_len).len();
    eprintln!("replay: batched replay of {} lines", grouped(events));
    let batched = replay(&stream, events, &BATCHED_FLAGS, slice).await;
    eprintln!(
        "replay: unbatched baseline, {} lines",
        grouped(baseline_len)
    );
    let unbatched = replay(&stream, baseline_len, &UNBATCHED_FLAGS, slice).await;
    let load = (load_before, load_average());
    Measured {
        stream,
        decode,
        batched,
        baseline_len,
        unbatched,
        load,
        source,
    }
}

/// A generated stream and what the fake Jetstream delivers of it.
struct Stream {
    lines: Vec<String>,
    /// Per line, its `time_us` when the server delivers it; `None` when it filters it out.
    delivered: Vec<Option<i64>>,
    /// Every DID that authors a delivered event: the accounts identity resolution looks up.
    accounts: BTreeSet<String>,
}

impl Stream {
    fn generate(events: usize) -> Stream {
        let lines = generate_stream(events, SEED);
        let mut accounts = BTreeSet::new();
        let delivered = lines
            .iter()
            .map(|line| delivered_event(line, &mut accounts));
        let delivered = delivered.collect();
        Stream {
            lines,
            delivered,
            accounts,
        }
    }

    /// The `time_us` of every delivered event among the first `len` lines, in order.
    fn delivered_times(&self, len: usize) -> Vec<i64> {
        self.delivered[..len].iter().flatten().copied().collect()
    }

    fn delivered_lines(&self) -> impl Iterator<Item = &String> {
        let lines = self.lines.iter().zip(&self.delivered);
        lines.filter_map(|(line, time_us)| time_us.and(Some(line)))
    }
}

/// `Some(time_us)` unless the server filters the line out (a commit outside `io.atcr.*`);
/// adds the author of a delivered event to `accounts`.
fn delivered_event(line: &str, accounts: &mut BTreeSet<String>) -> Option<i64> {
    let event: serde_json::Value = serde_json::from_str(line).expect("generated lines are JSON");
    let collection = event["commit"]["collection"].as_str();
    if !collection.is_none_or(|collection| collection.starts_with("io.atcr.")) {
        return None;
    }
    let did = event["did"].as_str().expect("generated lines carry a DID");
    if !accounts.contains(did) {
        accounts.insert(did.to_owned());
    }
    event["time_us"].as_i64()
}

/// The CPU-only ceiling: every delivered line decoded and planned on this thread.
struct DecodeRun {
    events: usize,
    skipped: usize,
    elapsed: Duration,
}

fn decode_only(stream: &Stream) -> DecodeRun {
    let (record, index, tombstone) = (3600, 86_400, 172_800);
    let ttl = TtlSecs {
        record,
        index,
        aggregate: 0,
        tombstone,
    };
    let indexer = Indexer::new("atcr", ttl, 1000);
    let (mut events, mut skipped, started) = (0, 0, Instant::now());
    for line in stream.delivered_lines() {
        match event::decode(line.as_bytes(), false) {
            Ok(event) => drop(black_box(indexer.plan(&event))),
            Err(_) => skipped += 1,
        }
        events += 1;
    }
    let elapsed = started.elapsed();
    DecodeRun {
        events,
        skipped,
        elapsed,
    }
}

/// What one daemon run over the first lines of the stream measured.
struct Replay {
    events: usize,
    elapsed: Duration,
    /// One per second, and a last one when the cursor covered every event.
    samples: Vec<Sample>,
    /// When the stored cursor first covered the baseline's slice.
    slice_done: Option<Duration>,
    peak_rss_kib: u64,
    /// CPU seconds of the daemon, Valkey, and this process (the fakes) during the replay.
    cpu: [f64; 3],
    valkey: ValkeyUsage,
    metrics: DaemonMetrics,
}

/// The daemon's RSS, the events acknowledged and Valkey's script totals at one moment.
#[derive(Clone, Copy, Default)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    acknowledged: usize,
    fcall_calls: f64,
    fcall_usec: f64,
}

/// Replays the first `len` lines into a fresh Valkey through a daemon started with `flags`,
/// noting when the first `slice` delivered events were acknowledged.
async fn replay(stream: &Stream, len: usize, flags: &[&str], slice: usize) -> Replay {
    let times = stream.delivered_times(len);
    let rig = Rig::start(&stream.lines[..len], &stream.accounts);
    let valkey_pid = rig.valkey_pid();
    let cpu_before = [0.0, cpu_seconds(&valkey_pid), cpu_seconds("self")];
    let (started, mut daemon) = (Instant::now(), Daemon::start(&rig.options(flags)));
    let pid = daemon_pid().to_string();
    let (valkey, slice) = (&rig.valkey, (slice, None));
    let watch = Watch {
        valkey,
        times: &times,
        pid: &pid,
        started,
        samples: vec![],
        slice,
    };
    let (elapsed, samples, slice_done) = watch.run(&mut daemon).await;
    let peak_rss_kib = status_kib(&pid, "VmHWM:");
    let cpu_after = [&pid, &valkey_pid, "self"].map(cpu_seconds);
    let cpu = [0, 1, 2].map(|index| cpu_after[index] - cpu_before[index]);
    let metrics = DaemonMetrics::scrape(&daemon);
    let stopped = daemon.stop().success();
    assert!(stopped, "the daemon stops cleanly; log:\n{}", daemon.log());
    let valkey = ValkeyUsage::read(&rig.valkey);
    let events = times.len();
    Replay {
        events,
        elapsed,
        samples,
        slice_done,
        peak_rss_kib,
        cpu,
        valkey,
        metrics,
    }
}

/// What one replay runs against: a fresh Valkey, a fake Jetstream holding the lines, and one
/// fake host playing the PLC directory and every account's PDS.
struct Rig {
    valkey: Valkey,
    jetstream: FakeJetstream,
    identity: FakeHost,
}

impl Rig {
    fn start(lines: &[String], accounts: &BTreeSet<String>) -> Rig {
        let jetstream = FakeJetstream::new();
        jetstream.push_all(lines.iter().cloned());
        let identity = FakeHost::start();
        for did in accounts {
            let handle = format!("{}.bench.test", did.rsplit(':').next().unwrap_or("x"));
            let document = did_document(did, Some(&handle), Some(&identity.url()));
            identity.serve_document(did, document);
            identity.serve_profile(did, Some(AVATAR_CID));
        }
        let valkey = Valkey::start();
        Rig {
            valkey,
            jetstream,
            identity,
        }
    }

    fn options(&self, flags: &[&str]) -> Options {
        let mut options = Options::new(&self.jetstream.url(), &self.valkey.url());
        options.extra = flags.iter().map(|flag| flag.to_string()).collect();
        let plc = ["--identity-plc-url".to_owned(), self.identity.url()];
        options.extra.extend(plc);
        options
    }

    /// The PID the server reports in `INFO server`.
    fn valkey_pid(&self) -> String {
        let info = self.valkey.exec(&["INFO", "server"]);
        let pid = info_value(&info, "process_id", "");
        assert!(pid > 0.0, "INFO server names the process");
        pid.to_string()
    }
}

/// Polls the stored cursor until it covers the last delivered event, sampling every second.
struct Watch<'a> {
    valkey: &'a Valkey,
    times: &'a [i64],
    pid: &'a str,
    started: Instant,
    samples: Vec<Sample>,
    /// A number of events, and when the cursor first covered them.
    slice: (usize, Option<Duration>),
}

impl Watch<'_> {
    /// The time from daemon start until the cursor covered the last event, the samples, and
    /// when the cursor covered the slice.
    async fn run(mut self, daemon: &mut Daemon) -> (Duration, Vec<Sample>, Option<Duration>) {
        let last = *self.times.last().expect("the slice delivers events");
        loop {
            let cursor = stored_cursor(self.valkey).unwrap_or(0);
            if self.slice.1.is_none() && self.acknowledged(cursor) >= self.slice.0 {
                self.slice.1 = Some(self.started.elapsed());
            }
            if cursor >= last {
                let sample = self.sample(cursor);
                self.samples.push(sample);
                return (sample.at, self.samples, self.slice.1);
            }
            self.check(daemon);
            self.sample_if_due(cursor);
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn acknowledged(&self, cursor: i64) -> usize {
        self.times.partition_point(|time_us| *time_us <= cursor)
    }

    fn check(&self, daemon: &mut Daemon) {
        assert!(daemon.is_running(), "daemon exited; log:\n{}", daemon.log());
        let late = self.started.elapsed() > REPLAY_TIMEOUT;
        assert!(
            !late,
            "no catch-up in {REPLAY_TIMEOUT:?}; log:\n{}",
            daemon.log()
        );
    }

    fn sample_if_due(&mut self, cursor: i64) {
        let due = SAMPLE_INTERVAL * (self.samples.len() as u32 + 1);
        if self.started.elapsed() < due {
            return;
        }
        let sample = self.sample(cursor);
        self.samples.push(sample);
        if self.samples.len() % PROGRESS_EVERY == 0 {
            let (done, all) = (grouped(sample.acknowledged), grouped(self.times.len()));
            let (seconds, rss) = (sample.at.as_secs_f64(), mib(sample.rss_kib));
            eprintln!("replay: {seconds:>5.0} s  {done} / {all} events acknowledged  rss {rss}");
        }
    }

    fn sample(&self, cursor: i64) -> Sample {
        let at = self.started.elapsed();
        let stats = self.valkey.exec(&["INFO", "commandstats"]);
        Sample {
            at,
            rss_kib: status_kib(self.pid, "VmRSS:"),
            acknowledged: self.acknowledged(cursor),
            fcall_calls: info_value(&stats, "cmdstat_fcall", "calls"),
            fcall_usec: info_value(&stats, "cmdstat_fcall", "usec"),
        }
    }
}

/// `HGET atcr:cursor:jetstream time_us`, when stored.
fn stored_cursor(valkey: &Valkey) -> Option<i64> {
    let reply = valkey.try_exec(&["HGET", CURSOR_KEY, "time_us"]).ok()?;
    reply.as_str().and_then(|text| text.parse().ok())
}

/// The PID of our `atcr-indexer` child, found in `/proc` (the harness keeps its `Child`
/// private). Until the child has exec'd it still carries the bench's name, hence the wait.
fn daemon_pid() -> u32 {
    let deadline = Instant::now() + SPAWN_TIMEOUT;
    loop {
        let parent = std::process::id().to_string();
        let entries = std::fs::read_dir("/proc").expect("/proc is readable");
        let mut pids = entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok());
        let child = pids.find(|pid: &u32| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
            let status = status.unwrap_or_default();
            let is = |name, value: &str| status_field(&status, name) == Some(value);
            is("Name:", "atcr-indexer") && is("PPid:", &parent)
        });
        if let Some(pid) = child {
            return pid;
        }
        assert!(Instant::now() < deadline, "no atcr-indexer child in /proc");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A `kB` field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: &str, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let value = status_field(&status, name).expect("the kernel reports the field");
    value
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("a kB count")
}

fn status_field<'s>(status: &'s str, name: &str) -> Option<&'s str> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    Some(line[name.len()..].trim())
}

/// User plus system CPU time of a `/proc` entry (`self` or a PID) so far, in seconds.
fn cpu_seconds(entry: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{entry}/stat")).expect("process stat");
    let (_, fields) = stat
        .rsplit_once(") ")
        .expect("stat names the command in parentheses");
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let ticks = |index: usize| fields[index].parse::<u64>().expect("clock ticks");
    // The fields after the command start at state (3); utime is 14 and stime 15.
    (ticks(11) + ticks(12)) as f64 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf").arg("CLK_TCK").output().ok();
    let text = output.map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    text.and_then(|text| text.parse().ok()).unwrap_or(100.0)
}

/// What a replay left in Valkey, and the time its scripts took.
struct ValkeyUsage {
    keys: i64,
    memory: String,
    /// `FCALL`s (one per step) and the microseconds they took in all.
    fcall: (f64, f64),
    /// The commands that took most time inside the scripts: name, calls, microseconds.
    inside: Vec<(String, f64, f64)>,
}

impl ValkeyUsage {
    fn read(valkey: &Valkey) -> ValkeyUsage {
        let stats = valkey.exec(&["INFO", "commandstats"]);
        let fcall = |field| info_value(&stats, "cmdstat_fcall", field);
        let memory = valkey.exec(&["INFO", "memory"]);
        let memory = memory.as_str().unwrap_or_default().lines();
        let memory = memory
            .into_iter()
            .find_map(|line| line.strip_prefix("used_memory_human:"));
        ValkeyUsage {
            keys: valkey.exec(&["DBSIZE"]).as_int().unwrap_or(-1),
            memory: memory.unwrap_or("?").trim().to_owned(),
            fcall: (fcall("calls"), fcall("usec")),
            inside: costliest_commands(&stats),
        }
    }
}

/// The commands other than `FCALL` with the most time in `INFO commandstats`: those the
/// scripts ran (the bench's own polls are a few cheap reads).
fn costliest_commands(stats: &RespValue) -> Vec<(String, f64, f64)> {
    let text = stats.as_str().unwrap_or_default();
    let names = text
        .lines()
        .filter_map(|line| line.strip_prefix("cmdstat_")?.split_once(':'));
    let names = names.map(|(name, _)| name).filter(|name| *name != "fcall");
    let mut commands: Vec<(String, f64, f64)> = names
        .map(|name| {
            let key = format!("cmdstat_{name}");
            let (calls, usec) = (
                info_value(stats, &key, "calls"),
                info_value(stats, &key, "usec"),
            );
            (name.to_owned(), calls, usec)
        })
        .collect();
    commands.sort_by(|a, b| b.2.total_cmp(&a.2));
    commands.truncate(TOP_COMMANDS);
    commands
}

/// A number from an INFO reply: `key:value`, or `key:field=value,...` when `field` is named.
fn info_value(info: &RespValue, key: &str, field: &str) -> f64 {
    let text = info.as_str().unwrap_or_default();
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}:")));
    let value = line.and_then(|line| match field {
        "" => Some(line),
        _ => line
            .split(',')
            .find_map(|pair| pair.strip_prefix(&format!("{field}="))),
    });
    value
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Counters the daemon exposes on `/metrics`, read at the end of a replay.
struct DaemonMetrics {
    batches: f64,
    round_trips: f64,
    steps: f64,
    identities_resolved: f64,
    identities_failed: f64,
}

impl DaemonMetrics {
    /// Reads `/metrics` once; all zero when it cannot be reached.
    fn scrape(daemon: &Daemon) -> DaemonMetrics {
        let text = http_get(daemon.metrics_address(), "/metrics").unwrap_or_default();
        let total = |name: &str| prometheus_total(&text, name);
        DaemonMetrics {
            batches: total(metrics::VALKEY_BATCHES),
            round_trips: total(metrics::VALKEY_ROUND_TRIPS),
            steps: total(metrics::VALKEY_STEPS),
            identities_resolved: total(metrics::IDENTITY_SUCCEEDED),
            identities_failed: total(metrics::IDENTITY_FAILED),
        }
    }
}

/// The body of a plain HTTP/1.0 GET.
fn http_get(address: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body);
    Ok(body.unwrap_or_default().to_owned())
}

/// The sum of a metric over all its label sets, in Prometheus text format.
fn prometheus_total(text: &str, name: &str) -> f64 {
    let samples = text.lines().filter_map(|line| {
        let rest = line.strip_prefix(name)?;
        let value = match rest.strip_prefix('{') {
            Some(labelled) => labelled.rsplit_once("} ")?.1,
            None => rest.strip_prefix(' ')?,
        };
        value.trim().parse::<f64>().ok()
    });
    samples.sum()
}

impl Replay {
    fn rate(&self) -> f64 {
        rate(self.events, self.elapsed)
    }

    /// The samples at 0, 25, 50, 75 and 100 % of the run, when there are enough.
    fn quarter_points(&self) -> Option<Vec<Sample>> {
        if self.samples.len() < QUARTER_MIN_SAMPLES {
            return None;
        }
        let at = |quarter: u32| {
            let boundary = self.elapsed * quarter / 4;
            let taken = self
                .samples
                .iter()
                .rev()
                .find(|sample| sample.at <= boundary);
            taken.copied().unwrap_or_default()
        };
        Some((0..=4).map(at).collect())
    }

    /// Mean RSS of the samples taken between fractions `from` and `to` of the run.
    fn mean_rss(&self, from: f64, to: f64) -> Option<f64> {
        let total = self.elapsed.as_secs_f64();
        let span = from * total..=to * total;
        let inside = self
            .samples
            .iter()
            .filter(|s| span.contains(&s.at.as_secs_f64()));
        let rss: Vec<f64> = inside.map(|sample| sample.rss_kib as f64).collect();
        (!rss.is_empty()).then(|| rss.iter().sum::<f64>() / rss.len() as f64)
    }

    /// "N events in T s".
    fn took(&self) -> String {
        let (events, seconds) = (grouped(self.events), self.elapsed.as_secs_f64());
        format!("{events} events in {seconds:.1} s")
    }

    /// CPU seconds of each process and its share of one core over the replay.
    fn cpu_shares(&self) -> String {
        let wall = self.elapsed.as_secs_f64();
        let share = |seconds: f64| format!("{seconds:.1} s ({:.0}%)", 100.0 * seconds / wall);
        let [daemon, valkey, bench] = self.cpu.map(share);
        format!("daemon {daemon}, valkey {valkey}, bench and fakes {bench}")
    }

    /// How the daemon grouped its writes, from its own counters.
    fn batching(&self) -> String {
        let (batches, round_trips) = (self.metrics.batches, self.metrics.round_trips);
        if batches == 0.0 {
            return "n/a (no /metrics)".to_owned();
        }
        let size = self.events as f64 / batches;
        let (trips, steps) = (
            round_trips / batches,
            self.metrics.steps / round_trips.max(1.0),
        );
        let batches = grouped(batches as usize);
        format!(
            "{batches} of {size:.1} events, {trips:.1} round trips each, {steps:.1} steps per trip"
        )
    }

    /// The steps Valkey ran and their time, against the CPU Valkey used.
    fn valkey_work(&self) -> String {
        let (calls, usec) = self.valkey.fcall;
        let (mean, seconds, cpu) = (usec / calls.max(1.0), usec / 1e6, self.cpu[1]);
        let calls = grouped(calls as usize);
        format!("{calls} fcall of {mean:.0} us: {seconds:.1} s in scripts, {cpu:.1} s valkey cpu")
    }

    /// Where the script time went, by command.
    fn script_commands(&self) -> String {
        let commands = self.valkey.inside.iter().map(|(name, calls, usec)| {
            let (calls, seconds) = (grouped(*calls as usize), usec / 1e6);
            format!("{name} {seconds:.1} s ({calls})")
        });
        commands.collect::<Vec<_>>().join("; ")
    }
}

/// The report block, one entry per line.
fn report(measured: &Measured, wall: Duration) -> Vec<String> {
    let mut lines = vec!["==== atcr-indexer replay benchmark ====".to_owned()];
    lines.extend(setting_lines(measured));
    lines.extend(throughput_lines(measured));
    lines.extend(quarter_lines(&measured.batched));
    lines.extend(decode_lines(measured));
    lines.extend(memory_lines(&measured.batched));
    lines.extend(cost_lines(measured));
    let wall = wall.as_secs_f64();
    lines.push(format!("wall:        {wall:.0} s for the whole bench"));
    lines.push("==== end ====".to_owned());
    lines
}

fn setting_lines(measured: &Measured) -> Vec<String> {
    let stream = &measured.stream;
    let (before, after) = &measured.load;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (total, delivered) = (stream.lines.len(), stream.delivered_lines().count());
    let filtered = grouped(total - delivered);
    let (lines, delivered) = (grouped(total), grouped(delivered));
    vec![
        format!(
            "date:        {}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
        ),
        format!("command:     cargo bench --bench replay -- --events {total}"),
        format!("argv:        {}", args.join(" ")),
        format!("source:      {}", measured.source),
        format!("machine:     {}", machine()),
        format!("valkey:      {}", valkey_version()),
        format!("load:        1-minute load average {before} before the bench, {after} after"),
        format!("stream:      N = {lines} lines (seed {SEED:#x}), {delivered} delivered"),
        format!("  filtered:   {filtered} commits outside io.atcr.*, never delivered"),
    ]
}

fn throughput_lines(measured: &Measured) -> Vec<String> {
    let (batched, unbatched) = (&measured.batched, &measured.unbatched);
    let (x, y) = (batched.rate(), unbatched.rate());
    let ratio = x / y;
    let defaults = format!("batch {DEFAULT_BATCH_MAX_EVENTS}, queue {DEFAULT_QUEUE_CAPACITY}");
    let (took, slice_took) = (batched.took(), unbatched.took());
    let slice = grouped(measured.baseline_len);
    let (x, y) = (ev(x), ev(y));
    vec![
        format!("batched: {x} ev/s; unbatched baseline: {y} ev/s; ratio X/Y {ratio:.2}"),
        format!("  batched:    {took} (daemon defaults: {defaults})"),
        format!("  unbatched:  {slice_took}, first {slice} lines, --valkey-batch-max-events 1"),
        format!("  same slice: {}", same_slice(batched, unbatched)),
    ]
}

/// The batched run over the baseline's slice, from when its cursor covered that slice.
fn same_slice(batched: &Replay, unbatched: &Replay) -> String {
    let Some(took) = batched.slice_done else {
        return "n/a (the cursor never covered the slice)".to_owned();
    };
    let x = rate(unbatched.events, took);
    let (ratio, seconds, x) = (x / unbatched.rate(), took.as_secs_f64(), ev(x));
    format!("batched covered it after {seconds:.1} s: {x} ev/s, ratio {ratio:.2}")
}

fn quarter_lines(batched: &Replay) -> Vec<String> {
    let Some(points) = batched.quarter_points() else {
        return vec!["  quarters:   n/a (run too short)".to_owned()];
    };
    let pairs = points.windows(2);
    let rates = pairs.clone().map(|pair| {
        let seconds = (pair[1].at - pair[0].at).as_secs_f64().max(f64::EPSILON);
        ev((pair[1].acknowledged - pair[0].acknowledged) as f64 / seconds)
    });
    let script = pairs.map(|pair| {
        let calls = (pair[1].fcall_calls - pair[0].fcall_calls).max(1.0);
        format!("{:.0}", (pair[1].fcall_usec - pair[0].fcall_usec) / calls)
    });
    let rates = rates.collect::<Vec<_>>().join(" / ");
    let script = script.collect::<Vec<_>>().join(" / ");
    vec![
        format!("  quarters:   {rates} ev/s (batched run)"),
        format!("  script:     {script} us per fcall (batched run)"),
    ]
}

fn decode_lines(measured: &Measured) -> Vec<String> {
    let decode = &measured.decode;
    let z = rate(decode.events, decode.elapsed);
    let share = 100.0 * measured.batched.rate() / z;
    let (seconds, skipped) = (decode.elapsed.as_secs_f64(), grouped(decode.skipped));
    let (z, events) = (ev(z), grouped(decode.events));
    vec![
        format!("decode-only: {z} ev/s (decode + plan, 1 thread, no I/O)"),
        format!("  decoded:    {events} delivered lines in {seconds:.2} s, {skipped} skipped"),
        format!("  batched replay runs at {share:.1}% of the decode-only rate"),
    ]
}

fn memory_lines(batched: &Replay) -> Vec<String> {
    let rss: Vec<u64> = batched
        .samples
        .iter()
        .map(|sample| sample.rss_kib)
        .collect();
    let show = |kib: Option<&u64>| kib.map_or("n/a".to_owned(), |kib| mib(*kib));
    let (min, max, last) = (
        show(rss.iter().min()),
        show(rss.iter().max()),
        show(rss.last()),
    );
    let (peak, samples) = (mib(batched.peak_rss_kib), rss.len());
    vec![
        format!("daemon rss:  min {min}, max {max}, last {last}; peak VmHWM {peak}"),
        format!("  sampled:    {samples} times, once a second, during the batched run"),
        format!("  growth:     {}", growth(batched)),
    ]
}

/// The unbounded-growth check: last quarter's mean RSS against the second quarter's.
fn growth(replay: &Replay) -> String {
    let enough = replay.samples.len() >= QUARTER_MIN_SAMPLES;
    let means = (replay.mean_rss(0.25, 0.5), replay.mean_rss(0.75, 1.0));
    let (Some(second), Some(last), true) = (means.0, means.1, enough) else {
        return "n/a (run too short for quarters)".to_owned();
    };
    let change = last / second - 1.0;
    let verdict = if change > GROWTH_LIMIT {
        "UNBOUNDED GROWTH"
    } else {
        "bounded"
    };
    let (last, second) = (mib(last as u64), mib(second as u64));
    let (change, limit) = (100.0 * change, 100.0 * GROWTH_LIMIT);
    format!("last quarter {last} vs second {second}: {change:+.1}% (limit +{limit:.0}%): {verdict}")
}

fn cost_lines(measured: &Measured) -> Vec<String> {
    let (batched, unbatched) = (&measured.batched, &measured.unbatched);
    let identity = &batched.metrics;
    let resolved = grouped(identity.identities_resolved as usize);
    let failed = grouped(identity.identities_failed as usize);
    let (keys, memory) = (
        grouped(batched.valkey.keys.max(0) as usize),
        &batched.valkey.memory,
    );
    vec![
        format!("cpu:         batched: {}", batched.cpu_shares()),
        format!("             unbatched: {}", unbatched.cpu_shares()),
        format!("valkey:      batched: {}", batched.valkey_work()),
        format!("             unbatched: {}", unbatched.valkey_work()),
        format!(
            "  in scripts: {} (batched; seconds, calls)",
            batched.script_commands()
        ),
        format!("  keyspace:   {keys} keys, used_memory {memory} after the batched run"),
        format!("batches:     batched: {}", batched.batching()),
        format!("             unbatched: {}", unbatched.batching()),
        format!("identity:    {resolved} resolved, {failed} failed (batched run, loopback hosts)"),
        "timing:      from daemon start until the stored cursor covers the last delivered"
            .to_owned(),
        "             event; the daemon saves it every second, so times run up to 1 s long"
            .to_owned(),
    ]
}

/// The commit checked out and whether the work tree differs from it, and when the daemon binary
/// was built: what the daemon was built from, unless the tree changed during the build.
fn source() -> String {
    let git = |args: &[&str]| {
        let output = Command::new("git").args(args).output().ok();
        output.map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).filter(|commit| !commit.is_empty());
    let changed = git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "Cargo.toml",
        "Cargo.lock",
    ]);
    let changed = changed.is_some_and(|changed| !changed.is_empty());
    let dirty = if changed {
        " with uncommitted changes"
    } else {
        ""
    };
    let binary = std::fs::metadata(env!("CARGO_BIN_EXE_atcr-indexer")).and_then(|m| m.modified());
    let built = binary.map(chrono::DateTime::<chrono::Utc>::from);
    let built = built.map_or("?".to_owned(), |at| at.format("%H:%M:%S UTC").to_string());
    let commit = commit.as_deref().unwrap_or("unknown commit");
    format!("{commit}{dirty} at bench start; daemon built {built}")
}

/// Cores, memory, CPU model and kernel of this machine.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let (meminfo, cpuinfo) = (read("/proc/meminfo"), read("/proc/cpuinfo"));
    let memory = status_field(&meminfo, "MemTotal:").unwrap_or("? kB");
    let memory = memory
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_or("?".to_owned(), gib);
    let model = status_field(&cpuinfo, "model name").map(|model| model.trim_start_matches(':'));
    let model = model.unwrap_or("unknown CPU").trim();
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{cores} cores (nproc), {memory} RAM, {model}, Linux {}",
        kernel.trim()
    )
}

/// The 1-minute load average, as `/proc/loadavg` gives it.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_owned()
}

/// `valkey-server --version`, of the binary the harness runs.
fn valkey_version() -> String {
    let binary = std::env::var("VALKEY_SERVER").unwrap_or_else(|_| "valkey-server".to_owned());
    let output = Command::new(&binary).arg("--version").output();
    let output = output.expect("valkey-server --version runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn rate(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// A rate rounded to whole events per second, with thousands separators.
fn ev(rate: f64) -> String {
    grouped(rate.round() as usize)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn gib(kib: u64) -> String {
    format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0))
}

/// `1234567` as `1,234,567`.
fn grouped(number: usize) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
