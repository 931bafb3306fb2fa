//! The shipped binary as an operator meets it: `check` on config files and secrets, `run`
//! against a Valkey or a Jetstream that is not up yet, signals and the shutdown grace period,
//! and `inspect`.

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::{Daemon, Options};
use support::events::*;
use support::jetstream::FakeJetstream;
use support::valkey::Valkey;

/// The account that pushes in these tests.
const OWNER: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";

/// The account that stars the owner's repository.
const STARRER: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";

/// A Valkey password that must never reach stdout, stderr or the log.
const PASSWORD: &str = "s3cretpw";

/// How long a daemon may take to index a handful of events (CI is a 2-core VM).
const INDEX_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a short-lived subcommand (`check`, `inspect`) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a log line the daemon is expected to write may take to appear.
const LOG_TIMEOUT: Duration = Duration::from_secs(30);

/// `--shutdown-grace` of the signal tests, in seconds.
const GRACE_SECS: u64 = 10;

/// What a finished subcommand left behind.
#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` and `env`, and no `ATCR_INDEXER_*` variable of the test's own.
async fn atcr_indexer(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let dir = tempfile::tempdir().expect("temp dir for the output");
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_atcr-indexer"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ATCR_INDEXER_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("stdout file"))
        .stderr(File::create(&stderr).expect("stderr file"));
    let mut child = command.spawn().expect("spawn atcr-indexer");

    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`atcr-indexer {}` still runs after {COMMAND_TIMEOUT:?}",
                args.join(" ")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let read = |path: &Path| std::fs::read_to_string(path).expect("output file");
    Finished {
        status,
        stdout: read(&stdout),
        stderr: read(&stderr),
    }
}

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn assert_no_password(text: &str) {
    assert!(!text.contains(PASSWORD), "the password leaked:\n{text}");
}

fn parse_toml(text: &str) -> toml::Table {
    toml::from_str(text).unwrap_or_else(|error| panic!("not TOML ({error}):\n{text}"))
}

/// The section `name` of a TOML document, as a table.
fn section<'a>(document: &'a toml::Table, name: &str) -> &'a toml::Table {
    let section = document.get(name).and_then(toml::Value::as_table);
    section.unwrap_or_else(|| panic!("no [{name}] table in {document:#?}"))
}

/// Equal settings; URL strings compare parsed, since `check` prints them normalised (an
/// origin gets the root path `/`).
fn same_setting(printed: &toml::Value, shipped: &toml::Value) -> bool {
    use toml::Value::{Array, String};
    match (printed, shipped) {
        (String(printed), String(shipped)) => {
            let (a, b) = (url::Url::parse(printed), url::Url::parse(shipped));
            printed == shipped || matches!((a, b), (Ok(a), Ok(b)) if a == b)
        }
        (Array(printed), Array(shipped)) => {
            let pairs = printed.iter().zip(shipped);
            printed.len() == shipped.len() && pairs.into_iter().all(|(a, b)| same_setting(a, b))
        }
        _ => printed == shipped,
    }
}

/// Asserts that every key of the `shipped` file has its value in the `printed` settings.
fn assert_resolved(printed: &str, shipped: &str) {
    let (printed_table, shipped) = (parse_toml(printed), parse_toml(shipped));
    for (name, keys) in &shipped {
        let keys = keys.as_table().expect("a config file holds only tables");
        for (key, value) in keys {
            let resolved = section(&printed_table, name).get(key);
            let same = resolved.is_some_and(|resolved| same_setting(resolved, value));
            assert!(
                same,
                "{name}.{key}: {resolved:?}, file {value}; printed:\n{printed}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_accepts_the_shipped_config_and_prints_the_resolved_settings() {
    let path = config_dir().join("indexer.toml");
    let checked = atcr_indexer(&["check", "--config", path_str(&path)], &[]).await;
    assert!(checked.status.success(), "{checked:#?}");
    let shipped = std::fs::read_to_string(&path).expect("shipped config");
    assert_resolved(&checked.stdout, &shipped);

    let args = [
        "check",
        "--config",
        path_str(&path),
        "--key-prefix",
        "staging",
    ];
    let overridden = atcr_indexer(&args, &[]).await;
    assert!(overridden.status.success(), "{overridden:#?}");
    let printed = parse_toml(&overridden.stdout);
    let prefix = section(&printed, "valkey").get("prefix");
    assert_eq!(prefix.and_then(toml::Value::as_str), Some("staging"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_settings_check_again_to_the_same_settings() {
    let path = config_dir().join("indexer.toml");
    let checked = atcr_indexer(&["check", "--config", path_str(&path)], &[]).await;
    assert!(checked.status.success(), "{checked:#?}");
    let dir = tempfile::tempdir().expect("temp dir");
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, &checked.stdout).expect("write printed settings");
    let again = atcr_indexer(&["check", "--config", path_str(&printed)], &[]).await;
    assert!(again.status.success(), "{again:#?}");
    assert_eq!(again.stdout, checked.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_rejects_an_unknown_key_and_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "[valkey]\nprefix = \"atcr\"\nbatch_size = 10\n",
            "batch_size",
            "line 3",
        ),
        (
            "[valkee]\nurl = \"redis://cache:6379\"\n",
            "valkee",
            "line 1",
        ),
    ];
    for (index, (text, key, line)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("unknown-{index}.toml"));
        std::fs::write(&path, text).expect("write config");
        let checked = atcr_indexer(&["check", "--config", path_str(&path)], &[]).await;
        assert!(
            !checked.status.success(),
            "{text} was accepted: {checked:#?}"
        );
        assert!(
            checked.stderr.contains(key) && checked.stderr.contains(line),
            "the error names {key} at {line}: {checked:#?}"
        );
        assert!(
            checked.stdout.is_empty(),
            "nothing resolved is printed: {checked:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_never_prints_the_valkey_password() {
    let url = format!("redis://user:{PASSWORD}@127.0.0.1:7000");
    let by_flag = atcr_indexer(&["check", "--valkey-url", &url], &[]).await;
    let by_env = atcr_indexer(&["check"], &[("ATCR_INDEXER_VALKEY_URL", &url)]).await;
    for checked in [by_flag, by_env] {
        assert!(checked.status.success(), "{checked:#?}");
        let redacted = "url = \"redis://***@127.0.0.1:7000\"";
        assert!(checked.stdout.contains(redacted), "{checked:#?}");
        assert_no_password(&checked.stdout);
        assert_no_password(&checked.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_valkey_url_and_the_help_never_print_the_password() {
    let url = format!("http://user:{PASSWORD}@127.0.0.1:7000");
    let rejected = atcr_indexer(&["check", "--valkey-url", &url], &[]).await;
    assert!(!rejected.status.success(), "{rejected:#?}");
    assert!(rejected.stderr.contains("valkey.url"), "{rejected:#?}");
    assert_no_password(&rejected.stderr);

    let url = format!("redis://:{PASSWORD}@127.0.0.1:7000");
    let help = atcr_indexer(&["run", "--help"], &[("ATCR_INDEXER_VALKEY_URL", &url)]).await;
    assert!(help.status.success(), "{help:#?}");
    assert!(help.stdout.contains("ATCR_INDEXER_VALKEY_URL"), "{help:#?}");
    assert_no_password(&help.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_in_config_passes_check() {
    let entries = std::fs::read_dir(config_dir()).expect("config/ exists");
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable config/ entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "config/ holds no file");
    for file in files {
        let checked = atcr_indexer(&["check", "--config", path_str(&file)], &[]).await;
        assert!(checked.status.success(), "{}: {checked:#?}", file.display());
    }
}

/// Event lines for the tests: manifest creates by [`OWNER`], 1 ms apart, one repository each.
struct Events {
    clock: Clock,
    revs: Revs,
}

impl Events {
    fn new() -> Self {
        Events {
            clock: Clock::new(EPOCH_US),
            revs: Revs::new(EPOCH_US),
        }
    }

    /// `count` manifests, in repositories `<prefix>0`, `<prefix>1`, ….
    fn manifests(&mut self, prefix: &str, count: usize) -> Vec<String> {
        (0..count)
            .map(|index| self.manifest(&format!("{prefix}{index}")))
            .collect()
    }

    fn manifest(&mut self, repository: &str) -> String {
        let seed = format!("{repository}-{}", self.clock.peek());
        let digest = digest(&seed);
        let config = Descriptor::config(&seed);
        let layers = [Descriptor::layer(&seed)];
        let at = datetime(self.clock.peek());
        let record = manifest_image(repository, &digest, &config, &layers, &at);
        let rev = self.revs.next();
        let rkey = digest_hex(&digest);
        event_commit(
            OWNER,
            &mut self.clock,
            &rev,
            "create",
            MANIFEST,
            rkey,
            Some(record),
        )
    }
}

fn last_time_us(lines: &[String]) -> i64 {
    lines
        .last()
        .and_then(|line| time_us_of(line))
        .expect("events")
}

/// The stored cursor; `None` when it is absent or Valkey does not answer.
fn cursor(valkey: &Valkey) -> Option<i64> {
    let reply = valkey.try_exec(&["HGET", "atcr:cursor:jetstream", "time_us"]);
    reply.ok()?.as_str()?.parse().ok()
}

/// Waits until the stored cursor covers `last`.
async fn caught_up(valkey: &Valkey, daemon: &Daemon, last: i64) {
    let reached = valkey
        .wait_until(INDEX_TIMEOUT, |valkey| cursor(valkey) >= Some(last))
        .await;
    let log = daemon.log();
    assert!(
        reached,
        "cursor {:?} never reached {last}; log:\n{log}",
        cursor(valkey)
    );
}

/// Waits until the daemon's log contains `needle`.
async fn wait_for_log(daemon: &Daemon, needle: &str) -> bool {
    let deadline = Instant::now() + LOG_TIMEOUT;
    while !daemon.log().contains(needle) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Waits until `jetstream` has sent `count` events in all.
async fn sent(jetstream: &FakeJetstream, daemon: &Daemon, count: usize) {
    let deadline = Instant::now() + INDEX_TIMEOUT;
    while jetstream.messages_sent() < count {
        let log = daemon.log();
        assert!(
            Instant::now() < deadline,
            "{count} events never sent; log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A daemon started while its Valkey, reached as `user:PASSWORD@`, is down: once it has said
/// so, and two seconds have passed, it must still run and must not have logged the password.
async fn daemon_waiting_for(valkey: &mut Valkey, user: &str, jetstream: &FakeJetstream) -> Daemon {
    let url = format!("redis://{user}:{PASSWORD}@127.0.0.1:{}", valkey.port());
    valkey.stop();
    let started = Instant::now();
    let mut daemon = Daemon::start(&Options::new(&jetstream.url(), &url));

    let warned = wait_for_log(&daemon, "valkey unreachable; retrying").await;
    let log = daemon.log();
    assert!(warned, "no plain unreachable warning; log:\n{log}");
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed())).await;
    assert!(
        daemon.is_running(),
        "the daemon gave up; log:\n{}",
        daemon.log()
    );
    assert_no_password(&daemon.log());
    daemon
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_says_plainly_that_valkey_is_unreachable_without_its_password() {
    let mut valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let mut daemon = daemon_waiting_for(&mut valkey, "", &jetstream).await;

    assert!(
        daemon.stop().success(),
        "SIGTERM while waiting; log:\n{}",
        daemon.log()
    );
    assert_no_password(&daemon.log());
}

/// The user is `default`: a passwordless Valkey accepts any password for it in the two-argument
/// `AUTH`, so the restarted harness server needs no `requirepass` (which a connection attempt
/// could race) while the URL still carries one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_indexes_once_a_valkey_that_was_down_comes_up() {
    let mut valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let lines = Events::new().manifests("app", 5);
    jetstream.push_all(lines.iter().cloned());
    let mut daemon = daemon_waiting_for(&mut valkey, "default", &jetstream).await;

    valkey.restart();
    caught_up(&valkey, &daemon, last_time_us(&lines)).await;
    assert!(daemon.stop().success(), "log:\n{}", daemon.log());
    assert_no_password(&daemon.log());
}

/// Indexes events, then stops on `signal`: the drain must save the cursor of the last event.
async fn a_signal_drains_and_saves_the_last_cursor(signal: &str) {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let lines = Events::new().manifests("app", 20);
    jetstream.push_all(lines.iter().cloned());
    let mut options = Options::new(&jetstream.url(), &valkey.url());
    options.cursor_save_interval_secs = 3600;
    options.extra = vec!["--shutdown-grace".into(), GRACE_SECS.to_string()];
    let mut daemon = Daemon::start(&options);
    let repositories = |valkey: &Valkey| {
        let count = valkey.try_exec(&["ZCARD", &format!("atcr:{{{OWNER}}}:repos")]);
        count.ok().and_then(|count| count.as_int())
    };
    let written = valkey
        .wait_until(INDEX_TIMEOUT, |valkey| repositories(valkey) == Some(20))
        .await;
    assert!(written, "events never written; log:\n{}", daemon.log());
    assert_eq!(
        cursor(&valkey),
        None,
        "only the drain may save the cursor here"
    );

    daemon.signal(signal);
    let status = daemon.exit_within(Duration::from_secs(GRACE_SECS)).await;
    let log = daemon.log();
    assert_eq!(
        status.and_then(|status| status.code()),
        Some(0),
        "log:\n{log}"
    );
    assert_eq!(cursor(&valkey), Some(last_time_us(&lines)), "log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_saves_the_last_cursor_and_exits_0() {
    a_signal_drains_and_saves_the_last_cursor("-TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_saves_the_last_cursor_and_exits_0() {
    a_signal_drains_and_saves_the_last_cursor("-INT").await;
}

/// A daemon that indexed a first stretch and then lost Valkey while holding a second one, so
/// its drain cannot finish; and the cursor it had stored before the outage.
async fn stuck_daemon(
    valkey: &mut Valkey,
    jetstream: &FakeJetstream,
    extra: &[&str],
) -> (Daemon, i64) {
    let mut events = Events::new();
    let before = events.manifests("before", 5);
    jetstream.push_all(before.iter().cloned());
    let mut options = Options::new(&jetstream.url(), &valkey.url());
    options.extra = extra.iter().map(|flag| flag.to_string()).collect();
    let daemon = Daemon::start(&options);
    caught_up(valkey, &daemon, last_time_us(&before)).await;
    let acknowledged = cursor(valkey).expect("caught up, so a cursor is stored");

    valkey.stop();
    let during = events.manifests("during", 5);
    jetstream.push_all(during.iter().cloned());
    sent(jetstream, &daemon, before.len() + during.len()).await;
    let holding = wait_for_log(&daemon, "valkey write failed; holding the stream").await;
    assert!(
        holding,
        "the writer never held a batch; log:\n{}",
        daemon.log()
    );
    (daemon, acknowledged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_without_draining() {
    let mut valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut daemon, _) = stuck_daemon(&mut valkey, &jetstream, &[]).await;

    daemon.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        daemon.is_running(),
        "the drain should block; log:\n{}",
        daemon.log()
    );
    daemon.signal("-TERM");
    let status = daemon.exit_within(Duration::from_secs(2)).await;
    let log = daemon.log();
    assert_eq!(
        status.and_then(|status| status.code()),
        Some(130),
        "log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_ends_a_drain_that_cannot_finish() {
    let mut valkey = Valkey::start_persistent();
    let jetstream = FakeJetstream::new();
    let grace = ["--shutdown-grace", "2"];
    let (mut daemon, acknowledged) = stuck_daemon(&mut valkey, &jetstream, &grace).await;

    let signalled = Instant::now();
    daemon.signal("-TERM");
    let status = daemon.exit_within(Duration::from_secs(5)).await;
    let (elapsed, log) = (signalled.elapsed(), daemon.log());
    let status = status.unwrap_or_else(|| panic!("still running 5 s after SIGTERM; log:\n{log}"));
    assert!(!status.success(), "exit {status}; log:\n{log}");
    assert!(
        elapsed >= Duration::from_millis(1_900),
        "left before the grace period: {elapsed:?}"
    );
    assert!(
        log.contains("grace period"),
        "the error names the grace period; log:\n{log}"
    );

    valkey.restart();
    let stored = cursor(&valkey);
    let kept = stored.is_some_and(|stored| stored <= acknowledged);
    assert!(
        kept,
        "cursor {stored:?}, acknowledged {acknowledged}; log:\n{log}"
    );
}

/// Pushes one image to `web` (manifest, tag, page, a star, hold stats) and a manifest to `api`.
fn push_image(jetstream: &FakeJetstream) -> (String, Vec<Descriptor>) {
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    let at = datetime(clock.peek());
    let layers = vec![Descriptor::layer("web-1"), Descriptor::layer("web-2")];
    let web = digest("manifest-web");
    let rkey = digest_hex(&web).to_owned();
    let manifest = manifest_image("web", &web, &Descriptor::config("web"), &layers, &at);
    let uri = at_uri(OWNER, MANIFEST, &rkey);
    let stats_key = stats_rkey(OWNER, "web");
    let api = digest("manifest-api");
    let api_manifest = manifest_image("api", &api, &Descriptor::config("api"), &layers, &at);
    let records = [
        (OWNER, MANIFEST, rkey.as_str(), manifest),
        (OWNER, TAG, "t1", tag("web", "latest", &uri, &at)),
        (OWNER, REPO_PAGE, "web", repo_page("web", "# Web", &at)),
        (STARRER, STAR, "s1", star(OWNER, "web", &at)),
        (
            HOLD_DID,
            STATS,
            &stats_key,
            hold_stats(OWNER, "web", 5, 1, &at),
        ),
        (OWNER, MANIFEST, digest_hex(&api), api_manifest),
    ];
    for (did, collection, rkey, record) in records {
        let rev = revs.next();
        let line = event_commit(
            did,
            &mut clock,
            &rev,
            "create",
            collection,
            rkey,
            Some(record),
        );
        jetstream.push(line);
    }
    (web, layers)
}

/// Runs the daemon until it has indexed every event of `jetstream`, then stops it.
async fn index(valkey: &Valkey, jetstream: &FakeJetstream) {
    let last = jetstream.events().last().and_then(|line| time_us_of(line));
    let mut daemon = Daemon::start(&Options::new(&jetstream.url(), &valkey.url()));
    caught_up(valkey, &daemon, last.expect("events")).await;
    assert!(daemon.stop().success(), "log:\n{}", daemon.log());
}

/// `atcr-indexer inspect` against `valkey`, its JSON parsed.
async fn inspect(valkey: &Valkey, args: &[&str]) -> Value {
    let url = valkey.url();
    let mut argv = vec!["inspect", "--valkey-url", &url];
    argv.extend_from_slice(args);
    let inspected = atcr_indexer(&argv, &[]).await;
    assert!(inspected.status.success(), "{inspected:#?}");
    let parsed = serde_json::from_str(&inspected.stdout);
    parsed.unwrap_or_else(|error| panic!("not JSON ({error}): {inspected:#?}"))
}

fn assert_web(web: &Value, digest: &str, layers: &[Descriptor]) {
    let manifests = web["manifests"].as_array().expect("manifests array");
    assert_eq!(manifests.len(), 1, "{web:#}");
    assert_eq!(manifests[0]["digest"], digest, "{web:#}");
    let listed = manifests[0]["layers"].as_array().expect("layers array");
    let listed: Vec<&str> = listed.iter().filter_map(|l| l["digest"].as_str()).collect();
    let pushed: Vec<&str> = layers.iter().map(|layer| layer.digest.as_str()).collect();
    assert_eq!(listed, pushed, "{web:#}");
    assert_eq!(web["tags"]["latest"]["digest"], digest, "{web:#}");
    assert_eq!(web["page"]["description"], "# Web", "{web:#}");
    assert_eq!(web["stars"], 1, "{web:#}");
    let stats = &web["stats"][HOLD_DID];
    assert_eq!(
        (&stats["pullCount"], &stats["pushCount"]),
        (&5.into(), &1.into()),
        "{web:#}"
    );
}

fn names(object: &Value) -> Vec<&str> {
    let object = object.as_object().expect("a JSON object");
    object.keys().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_prints_an_account_and_one_repository() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (digest, layers) = push_image(&jetstream);
    index(&valkey, &jetstream).await;

    let account = inspect(&valkey, &[OWNER]).await;
    assert_eq!(account["did"], OWNER);
    assert_eq!(
        names(&account["repositories"]),
        ["api", "web"],
        "{account:#}"
    );
    assert_eq!(names(&account["repository"]), ["api", "web"], "{account:#}");
    assert_web(&account["repository"]["web"], &digest, &layers);

    let repository = inspect(&valkey, &[OWNER, "web"]).await;
    assert_eq!(names(&repository["repository"]), ["web"], "{repository:#}");
    assert_web(&repository["repository"]["web"], &digest, &layers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_of_an_unknown_did_prints_an_empty_result() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    push_image(&jetstream);
    index(&valkey, &jetstream).await;

    let unknown = "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz";
    let account = inspect(&valkey, &[unknown]).await;
    assert_eq!(account["did"], unknown);
    assert_eq!(account["user"], Value::Null, "{account:#}");
    assert!(names(&account["repositories"]).is_empty(), "{account:#}");
    assert!(names(&account["repository"]).is_empty(), "{account:#}");
}

/// The times at which `jetstream` saw connection attempts during `window`, the first included.
async fn attempts(jetstream: &FakeJetstream, daemon: &Daemon, window: Duration) -> Vec<Instant> {
    let deadline = Instant::now() + LOG_TIMEOUT;
    while jetstream.connections() == 0 {
        assert!(
            Instant::now() < deadline,
            "never connected; log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut times = vec![Instant::now()];
    let end = Instant::now() + window;
    while Instant::now() < end {
        let seen = jetstream.connections();
        times.resize(seen.max(times.len()), Instant::now());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_jetstream_is_retried_with_backoff_then_indexed() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    jetstream.refuse(true);
    let lines = Events::new().manifests("app", 5);
    jetstream.push_all(lines.iter().cloned());
    let daemon = Daemon::start(&Options::new(&jetstream.url(), &valkey.url()));
    let times = attempts(&jetstream, &daemon, Duration::from_secs(2)).await;
    jetstream.refuse(false);

    let log = daemon.log();
    assert!(
        (3..=20).contains(&times.len()),
        "{} attempts in 2 s; log:\n{log}",
        times.len()
    );
    let gaps: Vec<Duration> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let (first, last) = (gaps[0], gaps[gaps.len() - 1]);
    assert!(last >= first * 2, "the delay grows: gaps {gaps:?}");
    assert!(log.contains("jetstream connection failed"), "log:\n{log}");
    caught_up(&valkey, &daemon, last_time_us(&lines)).await;
}
