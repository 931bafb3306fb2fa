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
//! line in this process without I/O (the CPU-only ceiling). The daemon, Valkey and the fake
//! Jetstream share the machine, so the numbers describe this machine only; see
//! `docs/benchmarks.md`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use atcr_indexer::config::{DEFAULT_BATCH_MAX_EVENTS, DEFAULT_QUEUE_CAPACITY};
use atcr_indexer::event;
use atcr_indexer::index::program::TtlSecs;
use atcr_indexer::index::Indexer;
use support::daemon::{Daemon, Options};
use support::events::generate_stream;
use support::jetstream::FakeJetstream;
use support::valkey::Valkey;

/// Events replayed when neither `--events` nor `REPLAY_EVENTS` says otherwise.
const DEFAULT_EVENTS: usize = 1_000_000;

/// Seed of the generated stream: the same size always replays the same bytes.
const SEED: u64 = 0xbe_4c4;

/// The unbatched baseline replays this fraction of the stream: it is slow by design.
const BASELINE_DIVISOR: usize = 20;

/// ...but at least this many lines, so that startup and the cursor's save interval stay small
/// against its duration.
const BASELINE_MIN_EVENTS: usize = 20_000;

/// Flags of the batched run: the daemon's defaults, logging at the production level (the test
/// harness asks for debug).
const BATCHED_FLAGS: [&str; 2] = ["--log-level", "info"];

/// Flags of the unbatched baseline: one event per Valkey batch.
const UNBATCHED_FLAGS: [&str; 4] = ["--log-level", "info", "--valkey-batch-max-events", "1"];

/// How often the stored cursor is read; finer than the daemon's one-second cursor saves.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How often the daemon's RSS is sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// A progress line goes to stderr every this many samples.
const PROGRESS_EVERY: usize = 10;

/// A replay that has not caught up by then is reported as a failure.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// RSS in the last quarter above the second quarter's by more than this counts as growth.
const GROWTH_LIMIT: f64 = 0.20;

/// Fewer RSS samples than this make the growth check meaningless.
const GROWTH_MIN_SAMPLES: usize = 8;

/// The cursor the daemon stores, as `tests/stream.rs` reads it.
const CURSOR_KEY: &str = "atcr:cursor:jetstream";

fn main() {
    let events = requested_events();
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime for the fake Jetstream");
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

/// Everything one bench run measured.
struct Measured {
    stream: Stream,
    decode: DecodeRun,
    batched: Replay,
    baseline_len: usize,
    unbatched: Replay,
}

async fn measure(events: usize) -> Measured {
    eprintln!(
        "replay: generating {} events (seed {SEED:#x})",
        grouped(events)
    );
    let stream = Stream::generate(events);
    eprintln!("replay: decode-only baseline");
    let decode = decode_only(&stream);
    eprintln!("replay: batched replay of {} lines", grouped(events));
    let batched = replay(&stream, events, &BATCHED_FLAGS).await;
    let baseline_len = (events / BASELINE_DIVISOR).clamp(BASELINE_MIN_EVENTS.min(events), events);
    eprintln!(
        "replay: unbatched baseline over {} lines",
        grouped(baseline_len)
    );
    let unbatched = replay(&stream, baseline_len, &UNBATCHED_FLAGS).await;
    Measured {
        stream,
        decode,
        batched,
        baseline_len,
        unbatched,
    }
}

/// A generated stream and what the fake Jetstream delivers of it.
struct Stream {
    lines: Vec<String>,
    /// Per line, its `time_us` when the server delivers it; `None` when it filters it out.
    delivered: Vec<Option<i64>>,
}

impl Stream {
    fn generate(events: usize) -> Stream {
        let lines = generate_stream(events, SEED);
        let delivered = lines.iter().map(|line| delivered_time_us(line)).collect();
        Stream { lines, delivered }
    }

    /// The `time_us` of every delivered event among the first `len` lines, in order.
    fn delivered_times(&self, len: usize) -> Vec<i64> {
        self.delivered[..len].iter().flatten().copied().collect()
    }

    fn delivered_lines(&self) -> impl Iterator<Item = &String> {
        let lines = self.lines.iter().zip(&self.delivered);
        lines
            .filter(|(_, time_us)| time_us.is_some())
            .map(|(line, _)| line)
    }
}

/// `Some(time_us)` unless the server filters the line out (a commit outside `io.atcr.*`).
fn delivered_time_us(line: &str) -> Option<i64> {
    let event: serde_json::Value = serde_json::from_str(line).expect("generated lines are JSON");
    let collection = event["commit"]["collection"].as_str();
    let wanted = collection.is_none_or(|collection| collection.starts_with("io.atcr."));
    wanted.then(|| {
        event["time_us"]
            .as_i64()
            .expect("generated lines carry time_us")
    })
}

/// The CPU-only ceiling: decode and plan every delivered line on this thread.
struct DecodeRun {
    events: usize,
    skipped: usize,
    elapsed: Duration,
}

fn decode_only(stream: &Stream) -> DecodeRun {
    let ttl = TtlSecs {
        record: 3600,
        index: 86_400,
        aggregate: 0,
        tombstone: 172_800,
    };
    let indexer = Indexer::new("atcr", ttl, 1000);
    let (mut events, mut skipped) = (0, 0);
    let started = Instant::now();
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

/// What one daemon run over a slice of the stream measured.
struct Replay {
    events: usize,
    elapsed: Duration,
    samples: Vec<Sample>,
    peak_rss_kib: u64,
    cpu: CpuSeconds,
    valkey_keys: i64,
    valkey_memory: String,
}

/// One RSS reading and the events acknowledged by then.
struct Sample {
    at: Duration,
    rss_kib: u64,
    acknowledged: usize,
}

/// CPU time spent during one replay, in seconds.
struct CpuSeconds {
    daemon: f64,
    valkey: f64,
    bench: f64,
}

/// Replays the first `len` lines into a fresh Valkey through a daemon started with `flags`.
async fn replay(stream: &Stream, len: usize, flags: &[&str]) -> Replay {
    let times = stream.delivered_times(len);
    let (valkey, jetstream) = rig(&stream.lines[..len]);
    let valkey_pid = valkey_pid(&valkey);
    let cpu_before = (cpu_seconds(valkey_pid), cpu_seconds_of("self"));
    let mut options = Options::new(&jetstream.url(), &valkey.url());
    options.extra = flags.iter().map(|flag| flag.to_string()).collect();
    let started = Instant::now();
    let mut daemon = Daemon::start(&options);
    let pid = daemon_pid();
    let watch = Watch::new(&valkey, &times, pid, started);
    let (elapsed, samples) = watch.run(&mut daemon).await;
    let peak_rss_kib = status_kib(pid, "VmHWM:");
    let cpu = CpuSeconds {
        daemon: cpu_seconds(pid),
        valkey: cpu_seconds(valkey_pid) - cpu_before.0,
        bench: cpu_seconds_of("self") - cpu_before.1,
    };
    assert!(
        daemon.stop().success(),
        "clean stop; log:\n{}",
        daemon.log()
    );
    let (valkey_keys, valkey_memory) = valkey_usage(&valkey);
    Replay {
        events: times.len(),
        elapsed,
        samples,
        peak_rss_kib,
        cpu,
        valkey_keys,
        valkey_memory,
    }
}

/// A fresh Valkey and a fake Jetstream whose log holds `lines`.
fn rig(lines: &[String]) -> (Valkey, FakeJetstream) {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    (valkey, jetstream)
}

/// Polls the stored cursor until it covers the last delivered event, sampling RSS each second.
struct Watch<'a> {
    valkey: &'a Valkey,
    times: &'a [i64],
    pid: u32,
    started: Instant,
    samples: Vec<Sample>,
}

impl<'a> Watch<'a> {
    fn new(valkey: &'a Valkey, times: &'a [i64], pid: u32, started: Instant) -> Self {
        let samples = Vec::new();
        Watch {
            valkey,
            times,
            pid,
            started,
            samples,
        }
    }

    /// The time from daemon start until the cursor covered the last event, and the samples.
    async fn run(mut self, daemon: &mut Daemon) -> (Duration, Vec<Sample>) {
        let last = *self
            .times
            .last()
            .expect("the replayed slice delivers events");
        loop {
            let cursor = stored_cursor(self.valkey).unwrap_or(0);
            if cursor >= last {
                return (self.started.elapsed(), self.samples);
            }
            self.check(daemon);
            self.sample_if_due(cursor);
            tokio::time::sleep(POLL_INTERVAL).await;
        }
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
        let at = self.started.elapsed();
        let due = SAMPLE_INTERVAL * (self.samples.len() as u32 + 1);
        if at < due {
            return;
        }
        let rss_kib = status_kib(self.pid, "VmRSS:");
        let acknowledged = self.times.partition_point(|time_us| *time_us <= cursor);
        let sample = Sample {
            at,
            rss_kib,
            acknowledged,
        };
        self.progress(&sample);
        self.samples.push(sample);
    }

    fn progress(&self, sample: &Sample) {
        if (self.samples.len() + 1) % PROGRESS_EVERY == 0 {
            eprintln!(
                "replay: {:>5.0} s  {} / {} events acknowledged  rss {}",
                sample.at.as_secs_f64(),
                grouped(sample.acknowledged),
                grouped(self.times.len()),
                mib(sample.rss_kib)
            );
        }
    }
}

/// `HGET atcr:cursor:jetstream time_us`, when stored.
fn stored_cursor(valkey: &Valkey) -> Option<i64> {
    let reply = valkey.try_exec(&["HGET", CURSOR_KEY, "time_us"]).ok()?;
    reply.as_str().and_then(|text| text.parse().ok())
}

/// The PID of our `atcr-indexer` child, found in `/proc`: the harness keeps its `Child` private.
fn daemon_pid() -> u32 {
    let parent = std::process::id().to_string();
    let entries = std::fs::read_dir("/proc").expect("/proc is readable");
    let pids = entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok());
    let mut children = pids.filter(|pid: &u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name| status_field(&status, name).map(str::to_owned);
        field("Name:").as_deref() == Some("atcr-indexer") && field("PPid:") == Some(parent.clone())
    });
    children
        .next()
        .expect("the daemon runs as a child of the bench")
}

/// The PID the server reports in `INFO server`.
fn valkey_pid(valkey: &Valkey) -> u32 {
    let info = valkey.exec(&["INFO", "server"]);
    let info = info.as_str().expect("INFO answers text");
    let pid = info
        .lines()
        .find_map(|line| line.strip_prefix("process_id:"));
    pid.and_then(|pid| pid.trim().parse().ok())
        .expect("INFO server names the process")
}

/// `DBSIZE` and `used_memory_human` after a replay.
fn valkey_usage(valkey: &Valkey) -> (i64, String) {
    let keys = valkey
        .exec(&["DBSIZE"])
        .as_int()
        .expect("DBSIZE answers a count");
    let info = valkey.exec(&["INFO", "memory"]);
    let info = info.as_str().unwrap_or_default();
    let used = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory_human:"));
    (keys, used.unwrap_or("?").trim().to_owned())
}

/// A `kB` field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let value = status_field(&status, name).expect("the kernel reports the field");
    let number = value.trim_end_matches("kB").trim();
    number.parse().expect("a kB count")
}

fn status_field<'s>(status: &'s str, name: &str) -> Option<&'s str> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    Some(line[name.len()..].trim())
}

/// User plus system CPU time of a process so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    cpu_seconds_of(&pid.to_string())
}

/// Like [`cpu_seconds`] for a `/proc` entry name (`self` included).
fn cpu_seconds_of(entry: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{entry}/stat")).expect("process stat");
    let (_, fields) = stat
        .rsplit_once(") ")
        .expect("stat has a command in parentheses");
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let ticks = |index: usize| fields[index].parse::<u64>().expect("clock ticks");
    // After the command come state (field 3), ... utime (14) and stime (15).
    (ticks(11) + ticks(12)) as f64 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf").arg("CLK_TCK").output().ok();
    let text = output.map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    text.and_then(|text| text.parse().ok()).unwrap_or(100.0)
}

/// The report block, one entry per line.
fn report(measured: &Measured, wall: Duration) -> Vec<String> {
    let mut lines = vec!["==== atcr-indexer replay benchmark ====".to_owned()];
    lines.extend(setting_lines(&measured.stream));
    lines.extend(throughput_lines(measured));
    lines.extend(memory_lines(&measured.batched));
    lines.extend(cost_lines(measured));
    lines.push(format!(
        "wall:        {:.0} s for the whole bench",
        wall.as_secs_f64()
    ));
    lines.push("==== end ====".to_owned());
    lines
}

fn setting_lines(stream: &Stream) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (total, delivered) = (stream.lines.len(), stream.delivered_lines().count());
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    vec![
        format!("date:        {now}"),
        format!("command:     cargo bench --bench replay -- --events {total}"),
        format!("argv:        {}", args.join(" ")),
        format!("machine:     {}", machine()),
        format!("valkey:      {}", valkey_version()),
        format!(
            "stream:      N = {} lines (seed {SEED:#x}): {} delivered, {} filtered by the server",
            grouped(total),
            grouped(delivered),
            grouped(total - delivered)
        ),
    ]
}

fn throughput_lines(measured: &Measured) -> Vec<String> {
    let (batched, unbatched) = (&measured.batched, &measured.unbatched);
    let (x, y) = (batched.rate(), unbatched.rate());
    let decode = &measured.decode;
    let z = rate(decode.events, decode.elapsed);
    let defaults = format!("batch {DEFAULT_BATCH_MAX_EVENTS}, queue {DEFAULT_QUEUE_CAPACITY}");
    vec![
        format!(
            "batched: {} ev/s; unbatched baseline: {} ev/s; ratio X/Y = {:.1}",
            ev(x),
            ev(y),
            x / y
        ),
        format!(
            "  batched:   {} (daemon defaults: {defaults})",
            batched.took(None)
        ),
        format!(
            "  unbatched: {} (--valkey-batch-max-events 1)",
            unbatched.took(Some(measured.baseline_len))
        ),
        format!(
            "  quarters:  {} ev/s (batched run, from the cursor samples)",
            quarter_rates(batched)
        ),
        format!(
            "decode-only: {} ev/s (decode + plan, 1 thread, no I/O); batched is {:.0}% of it",
            ev(z),
            100.0 * x / z
        ),
        format!(
            "  decoded:   {} delivered lines in {:.1} s, {} skipped",
            grouped(decode.events),
            decode.elapsed.as_secs_f64(),
            grouped(decode.skipped)
        ),
    ]
}

fn memory_lines(batched: &Replay) -> Vec<String> {
    let rss: Vec<u64> = batched
        .samples
        .iter()
        .map(|sample| sample.rss_kib)
        .collect();
    let (min, max) = (rss.iter().min(), rss.iter().max());
    let last = rss.last().map_or("n/a".to_owned(), |kib| mib(*kib));
    vec![
        format!(
            "daemon rss:  min {}, max {}, last {} ({} samples, every {} s); peak VmHWM {}",
            min.map_or("n/a".to_owned(), |kib| mib(*kib)),
            max.map_or("n/a".to_owned(), |kib| mib(*kib)),
            last,
            rss.len(),
            SAMPLE_INTERVAL.as_secs(),
            mib(batched.peak_rss_kib)
        ),
        format!("growth:      {}", growth(batched)),
    ]
}

fn cost_lines(measured: &Measured) -> Vec<String> {
    let batched = &measured.batched;
    vec![
        format!("cpu batched: {}", batched.cpu_shares()),
        format!("  unbatched: {}", measured.unbatched.cpu_shares()),
        format!(
            "valkey data: {} keys, used_memory {} after the batched run",
            grouped(batched.valkey_keys as usize),
            batched.valkey_memory
        ),
        "timing:      daemon start until the stored cursor covers the last delivered event;"
            .to_owned(),
        "             the daemon saves its cursor every 1 s, so a time may be up to 1 s long"
            .to_owned(),
    ]
}

impl Replay {
    fn rate(&self) -> f64 {
        rate(self.events, self.elapsed)
    }

    /// "N events in T s", naming the slice when it is not the whole stream.
    fn took(&self, slice: Option<usize>) -> String {
        let slice = slice.map_or(String::new(), |len| {
            format!(" of the first {}", grouped(len))
        });
        let seconds = self.elapsed.as_secs_f64();
        format!("{} events{slice} in {seconds:.1} s", grouped(self.events))
    }

    /// CPU seconds of each process and the share of one core over the replay.
    fn cpu_shares(&self) -> String {
        let wall = self.elapsed.as_secs_f64();
        let share = |seconds: f64| format!("{seconds:.1} s ({:.0}%)", 100.0 * seconds / wall);
        let cpu = &self.cpu;
        let (daemon, valkey, bench) = (share(cpu.daemon), share(cpu.valkey), share(cpu.bench));
        format!("daemon {daemon}, valkey {valkey}, fake jetstream (bench) {bench} of one core")
    }

    /// Events acknowledged by `at`, from the last sample taken by then.
    fn acknowledged_at(&self, at: Duration) -> usize {
        if at >= self.elapsed {
            return self.events;
        }
        let taken = self.samples.iter().rev().find(|sample| sample.at <= at);
        taken.map_or(0, |sample| sample.acknowledged)
    }

    /// Mean RSS of the samples taken between fractions `from` and `to` of the run.
    fn mean_rss(&self, from: f64, to: f64) -> Option<f64> {
        let span = from * self.elapsed.as_secs_f64()..to * self.elapsed.as_secs_f64();
        let inside = self
            .samples
            .iter()
            .filter(|s| span.contains(&s.at.as_secs_f64()));
        let rss: Vec<f64> = inside.map(|sample| sample.rss_kib as f64).collect();
        (!rss.is_empty()).then(|| rss.iter().sum::<f64>() / rss.len() as f64)
    }
}

/// The acknowledgement rate in each quarter of a run.
fn quarter_rates(replay: &Replay) -> String {
    if replay.samples.len() < GROWTH_MIN_SAMPLES {
        return "n/a (run too short)".to_owned();
    }
    let quarter = replay.elapsed / 4;
    let rates = (0..4u32).map(|index| {
        let done = replay.acknowledged_at(quarter * (index + 1));
        let before = replay.acknowledged_at(quarter * index);
        ev(rate(done - before, quarter))
    });
    rates.collect::<Vec<_>>().join(" / ")
}

/// The unbounded-growth check: last quarter's mean RSS against the second quarter's.
fn growth(replay: &Replay) -> String {
    let means = (replay.mean_rss(0.25, 0.5), replay.mean_rss(0.75, 1.01));
    let (Some(second), Some(last)) = means else {
        return "n/a (run too short for quarters)".to_owned();
    };
    if replay.samples.len() < GROWTH_MIN_SAMPLES {
        return "n/a (run too short for quarters)".to_owned();
    }
    let change = last / second - 1.0;
    let verdict = if change > GROWTH_LIMIT {
        "UNBOUNDED GROWTH"
    } else {
        "bounded"
    };
    format!(
        "last quarter mean {} vs second quarter mean {}: {:+.1}% (limit +{:.0}%): {verdict}",
        mib(last as u64),
        mib(second as u64),
        100.0 * change,
        100.0 * GROWTH_LIMIT
    )
}

/// Cores, memory, CPU model and kernel of this machine.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = status_field(&meminfo, "MemTotal:").unwrap_or("? kB");
    let memory = memory
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_or("?".to_owned(), gib);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = status_field(&cpuinfo, "model name").map(|model| model.trim_start_matches(':'));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let model = model.unwrap_or("unknown CPU").trim();
    format!(
        "{cores} cores (nproc), {memory} RAM, {model}, Linux {}",
        kernel.trim()
    )
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
