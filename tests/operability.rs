//! Operability: the files an operator runs beside the daemon, checked against the daemon itself.
//!
//! - `dashboards/alerts.yml` and `dashboards/prometheus.yml` pass `promtool`, and each alert
//!   fires in the situation it names and stays quiet in its look-alikes (`promtool test rules`
//!   on series written here, with the annotations the rule file gives);
//! - the dashboard and the rules use only names from the metrics catalogue;
//! - a real Prometheus scrapes a daemon fed by the fake Jetstream: every dashboard query returns
//!   data and every rule evaluates without error;
//! - `promtool check metrics` accepts scrapes taken while the daemon indexes;
//! - `/healthz`, `/readyz`, 404 and the `health` subcommand follow readiness;
//! - the Dockerfile and docker-compose.yml agree with the files and settings they use. No Docker
//!   engine runs here, so the image itself is not built.
//!
//! `prometheus` and `promtool` come from Debian's `prometheus` package, which `tests/run`
//! installs; without them these tests fail, never skip. Identity resolution is pointed at fake
//! hosts and the streams carry no `did:web` commits, so nothing leaves 127.0.0.1.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use atcr_indexer::metrics::{Kind, CATALOGUE};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::daemon::{Daemon, Options};
use support::events::*;
use support::identity::{did_document, FakeHost, AVATAR_CID};
use support::jetstream::FakeJetstream;
use support::valkey::Valkey;

/// Events fed to a daemon under load.
const STREAM_LEN: usize = 3_000;

/// The stream is pushed in this many slices, one per [`FEED_PAUSE`], so that scrapes land while
/// the daemon indexes.
const FEED_SLICES: usize = 10;

/// Pause between two slices of the stream.
const FEED_PAUSE: Duration = Duration::from_millis(800);

/// How long a daemon may take to index the stream, or to become ready.
const INDEX_TIMEOUT: Duration = Duration::from_secs(60);

/// Limit of one HTTP exchange with the daemon or Prometheus.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Scrapes Prometheus must hold before the dashboard queries run: `rate` needs two per window.
const SCRAPES_BEFORE_QUERIES: u32 = 5;

/// What the dashboard's variables stand for when its queries run here.
const SUBSTITUTIONS: [(&str, &str); 4] = [
    ("$__rate_interval", "1m"),
    ("$__interval", "1m"),
    ("${instance}", ".*"),
    ("$instance", ".*"),
];

/// The crate root: `dashboards/`, the Dockerfile and docker-compose.yml live there.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|error| panic!("cannot read {relative}: {error}"))
}

fn yaml(relative: &str) -> Value {
    yaml_serde::from_str(&read(relative))
        .unwrap_or_else(|error| panic!("{relative} is not YAML: {error}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read("dashboards/atcr-indexer.json")).expect("the dashboard is JSON")
}

/// A Prometheus tool on PATH; missing means the suite was not run through `tests/run`.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not on PATH: run tests/run, which installs Debian's prometheus")
        })
}

fn promtool(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(tool("promtool"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    let mut input = child.stdin.take().expect("piped stdin");
    std::io::Write::write_all(&mut input, stdin.unwrap_or_default().as_bytes())
        .expect("promtool reads its input");
    drop(input);
    child.wait_with_output().expect("promtool runs")
}

fn show(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every alerting rule of `dashboards/alerts.yml`.
fn alert_rules() -> Vec<Value> {
    let file = yaml("dashboards/alerts.yml");
    let groups = file["groups"].as_array().expect("rule groups");
    groups
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").clone())
        .collect()
}

/// Every query of the dashboard: panel targets and the variable's query.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut queries = Vec::new();
    collect_exprs(&dashboard["panels"], &mut queries);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        queries.extend(variable["definition"].as_str().map(str::to_owned));
    }
    queries
}

fn collect_exprs(value: &Value, queries: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            queries.extend(map.get("expr").and_then(Value::as_str).map(str::to_owned));
            map.values().for_each(|inner| collect_exprs(inner, queries));
        }
        Value::Array(items) => items.iter().for_each(|inner| collect_exprs(inner, queries)),
        _ => {}
    }
}

/// The `atcr_indexer_*` names a query mentions.
fn metric_names(query: &str) -> Vec<&str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    query
        .split(|c: char| !word(c))
        .filter(|token| token.starts_with("atcr_indexer_"))
        .collect()
}

/// Why `name` is not a series the daemon exposes, or `None` when it is one.
fn uncatalogued(name: &str) -> Option<String> {
    let kind = |name: &str| CATALOGUE.iter().find(|m| m.name == name).map(|m| m.kind);
    match kind(name) {
        Some(Kind::Histogram) => return Some(format!("{name} is a histogram: use a suffix")),
        Some(_) => return None,
        None => {}
    }
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix));
    match base.and_then(kind) {
        Some(Kind::Histogram) => None,
        _ => Some(format!("{name} is not in atcr_indexer::metrics::CATALOGUE")),
    }
}

#[test]
fn promtool_accepts_the_rules_and_the_scrape_config() {
    for args in [
        ["check", "rules", "dashboards/alerts.yml"],
        ["check", "config", "dashboards/prometheus.yml"],
    ] {
        let output = promtool(&args, None);
        assert!(
            output.status.success(),
            "promtool {args:?}: {}",
            show(&output)
        );
    }
}

#[test]
fn every_alert_waits_names_a_severity_and_says_what_to_do() {
    let rules = alert_rules();
    let names: BTreeSet<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(
        names.len(),
        rules.len(),
        "one alerting rule per name: {names:?}"
    );
    for rule in &rules {
        let name = rule["alert"].as_str().expect("alerting rules only");
        assert!(rule["for"].is_string(), "{name} has no `for:`");
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{name}: severity {severity:?}"
        );
        for annotation in ["summary", "description"] {
            let text = rule["annotations"][annotation].as_str().unwrap_or_default();
            assert!(
                text.len() > 20,
                "{name} has no useful {annotation}: {text:?}"
            );
        }
    }
    for required in [
        "AtcrIndexerLagHigh",
        "AtcrIndexerNoEvents",
        "AtcrIndexerNoCommits",
        "AtcrIndexerRecordsRejected",
        "AtcrIndexerValkeyErrors",
        "AtcrIndexerNotReady",
    ] {
        assert!(
            names.contains(required),
            "{required} missing from {names:?}"
        );
    }
}

#[test]
fn dashboard_and_rules_use_only_catalogued_metrics() {
    let dashboard = dashboard();
    let mut queries = dashboard_queries(&dashboard);
    let rules = alert_rules();
    queries.extend(
        rules
            .iter()
            .map(|rule| rule["expr"].as_str().expect("expr").to_owned()),
    );
    let used: BTreeSet<&str> = queries.iter().flat_map(|q| metric_names(q)).collect();
    let problems: Vec<String> = used.iter().filter_map(|name| uncatalogued(name)).collect();
    assert!(problems.is_empty(), "{problems:#?}");

    for (subject, name) in [
        ("throughput", "atcr_indexer_events_total"),
        ("lag", "atcr_indexer_stream_lag_seconds"),
        ("cursor age", "atcr_indexer_cursor_lag_seconds"),
        ("errors by reason", "atcr_indexer_valkey_errors_total"),
        (
            "rejections by reason",
            "atcr_indexer_records_rejected_total",
        ),
        (
            "Valkey latency",
            "atcr_indexer_valkey_batch_duration_seconds_bucket",
        ),
        ("reconnects", "atcr_indexer_jetstream_reconnects_total"),
        ("queue depth", "atcr_indexer_queue_depth"),
        ("replay state", "atcr_indexer_replaying"),
    ] {
        let shown = dashboard_queries(&dashboard)
            .iter()
            .any(|q| metric_names(q).contains(&name));
        assert!(shown, "no panel shows {subject} ({name})");
    }
}

#[test]
fn every_panel_queries_the_datasource_variable() {
    let dashboard = dashboard();
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let datasource = variables
        .iter()
        .find(|variable| variable["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    assert!(
        dashboard["id"].is_null(),
        "an importable dashboard has no id"
    );

    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(ids.insert(panel["id"].as_u64()), "duplicate id of {title}");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
}

/// The `instance` and `job` of every series in `dashboards/alerts.scenarios.yml`.
const TARGET: [(&str, &str); 2] = [("instance", "indexer:9464"), ("job", "atcr-indexer")];

/// `name{a="b", c="d"}` → the name and its labels.
fn selector(text: &str) -> (&str, Vec<(&str, &str)>) {
    let Some((name, rest)) = text.split_once('{') else {
        return (text, Vec::new());
    };
    let pairs = rest
        .trim_end_matches('}')
        .split(',')
        .filter(|p| !p.trim().is_empty());
    (name, pairs.map(label).collect())
}

/// `key="value"` → its key and value.
fn label(pair: &str) -> (&str, &str) {
    let (key, value) = pair.split_once('=').expect("label=\"value\"");
    (key.trim(), value.trim().trim_matches('"'))
}

/// `{{ $labels.x }}` of an annotation, filled in as Prometheus does.
fn expand(template: &str, labels: &BTreeMap<&str, &str>) -> String {
    let mut text = template.to_owned();
    for (name, value) in labels {
        text = text.replace(&format!("{{{{ $labels.{name} }}}}"), value);
    }
    assert!(!text.contains("{{"), "template left unexpanded: {text}");
    text
}

/// The alert `written` (`Name` or `Name{reason="x"}`) as promtool expects it: its name, and
/// the labels and annotations its rule gives it.
fn expected_alert(rules: &[Value], written: &str) -> (String, Value) {
    let (name, extra) = selector(written);
    let rule = rules.iter().find(|rule| rule["alert"] == name);
    let rule = rule.unwrap_or_else(|| panic!("no rule {name}"));
    let mut labels = BTreeMap::from(TARGET);
    labels.insert(
        "severity",
        rule["labels"]["severity"].as_str().expect("severity"),
    );
    labels.extend(extra);
    let annotations = rule["annotations"].as_object().expect("annotations").iter();
    let annotations: BTreeMap<&str, String> = annotations
        .map(|(key, text)| (key.as_str(), expand(text.as_str().expect("text"), &labels)))
        .collect();
    let expected = json!({"exp_labels": labels, "exp_annotations": annotations});
    (name.to_owned(), expected)
}

/// One scenario as a promtool test case.
fn rule_test(rules: &[Value], scenario: &Value) -> Value {
    let series = scenario["series"].as_object().expect("series").iter();
    let series: Vec<Value> = series
        .map(|(written, values)| {
            let (name, labels) = selector(written);
            let labels = TARGET
                .iter()
                .chain(&labels)
                .map(|(k, v)| format!(r#"{k}="{v}""#));
            let values = values.as_str().expect("quoted values");
            json!({"series": format!("{name}{{{}}}", labels.collect::<Vec<_>>().join(", ")),
                "values": values})
        })
        .collect();
    let mut checks: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for (key, firing) in [("fires", true), ("quiet", false)] {
        for (at, alerts) in scenario[key].as_object().into_iter().flatten() {
            for written in alerts.as_array().expect("a list of alerts") {
                let (name, expected) = expected_alert(rules, written.as_str().expect("alert"));
                let alerts = checks.entry((at.clone(), name)).or_default();
                alerts.extend(firing.then_some(expected));
            }
        }
    }
    let checks: Vec<Value> = checks
        .into_iter()
        .map(|((at, name), alerts)| {
            json!({"eval_time": at, "alertname": name, "exp_alerts": alerts})
        })
        .collect();
    json!({"name": scenario["name"], "interval": "1m", "input_series": series,
        "alert_rule_test": checks})
}

#[test]
fn each_alert_fires_in_its_situation_and_not_in_look_alikes() {
    let rules = alert_rules();
    let scenarios = yaml("dashboards/alerts.scenarios.yml");
    let scenarios = scenarios.as_array().expect("a list of scenarios");
    let fired: String = scenarios.iter().map(|s| s["fires"].to_string()).collect();
    for rule in &rules {
        let name = rule["alert"].as_str().expect("name");
        assert!(
            fired.contains(&format!("\"{name}")),
            "no scenario in which {name} fires"
        );
    }
    let tests: Vec<Value> = scenarios.iter().map(|s| rule_test(&rules, s)).collect();
    let rule_file = root().join("dashboards/alerts.yml");
    let file = json!({"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests});
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alerts.test.yml");
    std::fs::write(&path, file.to_string()).expect("write the rule tests");
    let output = promtool(&["test", "rules", path.to_str().expect("UTF-8 path")], None);
    assert!(
        output.status.success(),
        "promtool test rules: {}",
        show(&output)
    );
}

/// The daemon's listener or Prometheus, asked over HTTP/1.0 (both close after the answer).
async fn get(address: SocketAddr, target: &str) -> io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request = format!("GET {target} HTTP/1.0\r\nHost: {address}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, io::Error>(response)
    };
    let timed_out = |_| io::Error::new(io::ErrorKind::TimedOut, format!("GET {target}"));
    let response = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(timed_out)??;
    let text = String::from_utf8_lossy(&response);
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, text.to_string());
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok());
    Ok((status.ok_or_else(malformed)?, body.to_owned()))
}

/// A port nothing listens on, from the OS.
fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("bound address")
}

/// A daemon indexing a generated stream, with Valkey, the fake Jetstream, and a fake PLC
/// directory and PDS answering for half the accounts it resolves (the rest fail), so that
/// identity metrics exist too.
struct Indexing {
    valkey: Valkey,
    jetstream: FakeJetstream,
    daemon: Daemon,
    lines: Vec<String>,
    _plc: FakeHost,
    _pds: FakeHost,
}

impl Indexing {
    /// Starts everything; with `refuse`, the fake Jetstream refuses connections from the start.
    fn start(seed: u64, refuse: bool) -> Indexing {
        let (valkey, jetstream) = (Valkey::start(), FakeJetstream::new());
        jetstream.refuse(refuse);
        let (plc, pds) = (FakeHost::start(), FakeHost::start());
        for n in 0..4 {
            let did = did_plc(n);
            let handle = format!("sailor{n}.test");
            plc.serve_document(&did, did_document(&did, Some(&handle), Some(&pds.url())));
            pds.serve_profile(&did, Some(AVATAR_CID));
        }
        let mut options = Options::new(&jetstream.url(), &valkey.url());
        let flags = [
            "--identity-plc-url",
            &plc.url(),
            "--identity-request-timeout",
            "1",
        ];
        options.extra = flags.iter().map(|flag| flag.to_string()).collect();
        let daemon = Daemon::start(&options);
        Indexing {
            valkey,
            jetstream,
            daemon,
            lines: local_stream(seed),
            _plc: plc,
            _pds: pds,
        }
    }

    /// Pushes slice `index` of [`FEED_SLICES`].
    fn push_slice(&self, index: usize) {
        let size = self.lines.len().div_ceil(FEED_SLICES);
        let slice = self.lines.chunks(size).nth(index).unwrap_or_default();
        self.jetstream.push_all(slice.iter().cloned());
    }

    /// Waits until the saved cursor covers the last event delivered.
    async fn caught_up(&self) {
        let last = self
            .lines
            .iter()
            .rev()
            .find(|line| !line.contains(r#""collection":"app.bsky."#))
            .and_then(|line| time_us_of(line))
            .expect("a delivered event");
        let cursor = |valkey: &Valkey| {
            let reply = valkey
                .try_exec(&["HGET", "atcr:cursor:jetstream", "time_us"])
                .ok()?;
            reply.as_str().and_then(|text| text.parse::<i64>().ok())
        };
        let reached = self
            .valkey
            .wait_until(INDEX_TIMEOUT, |valkey| cursor(valkey) >= Some(last))
            .await;
        assert!(
            reached,
            "cursor never reached {last}; log:\n{}",
            self.daemon.log()
        );
    }
}

/// The generated stream without commits by `did:web` accounts (the holds), whose resolution
/// would leave the machine.
fn local_stream(seed: u64) -> Vec<String> {
    let mut lines = generate_stream(STREAM_LEN, seed);
    lines.retain(|line| {
        !(line.contains(r#""did":"did:web:"#) && line.contains(r#""kind":"commit""#))
    });
    lines
}

/// A real Prometheus scraping one daemon every second, with the shipped rules loaded.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [root().join("dashboards/alerts.yml")],
            "scrape_configs": [{"job_name": "atcr-indexer",
                "static_configs": [{"targets": [target]}]}],
        });
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config.to_string()).expect("write prometheus.yml");
        let address = free_address();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            address,
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The JSON answer of an API path; panics (with the log) when there is none.
    async fn api(&self, target: &str) -> Value {
        let (status, body) = get(self.address, target)
            .await
            .unwrap_or_else(|error| panic!("GET {target}: {error}\n{}", self.log()));
        serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("GET {target}: {status} {body}\n{}", self.log()))
    }

    async fn query(&self, expr: &str) -> Value {
        let encoded: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
        self.api(&format!("/api/v1/query?query={encoded}")).await
    }

    /// Waits until Prometheus holds `scrapes` samples of the daemon's `up` in the last minute.
    async fn wait_for_scrapes(&self, scrapes: u32) {
        let deadline = Instant::now() + INDEX_TIMEOUT;
        let expr = format!(r#"count_over_time(up{{job="atcr-indexer"}}[1m]) >= {scrapes}"#);
        while Instant::now() < deadline {
            if get(self.address, "/-/ready")
                .await
                .is_ok_and(|(status, _)| status == 200)
            {
                let answer = self.query(&expr).await;
                if answer["data"]["result"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "prometheus never had {scrapes} scrapes; log:\n{}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dashboard query with Grafana's variables filled in.
fn runnable(query: &str) -> String {
    SUBSTITUTIONS
        .iter()
        .fold(query.to_owned(), |text, (variable, value)| {
            text.replace(variable, value)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let indexing = Indexing::start(41, false);
    let prometheus = Prometheus::start(indexing.daemon.metrics_address());
    for slice in 0..FEED_SLICES {
        indexing.push_slice(slice);
        tokio::time::sleep(FEED_PAUSE).await;
    }
    indexing.caught_up().await;
    prometheus.wait_for_scrapes(SCRAPES_BEFORE_QUERIES).await;

    let mut empty = Vec::new();
    for query in dashboard_queries(&dashboard()) {
        let answer = match query.strip_prefix("label_values(atcr_indexer_build_info, ") {
            Some(label) => {
                let label = label.trim_end_matches(')');
                let target =
                    format!("/api/v1/label/{label}/values?match[]=atcr_indexer_build_info");
                prometheus.api(&target).await
            }
            None => prometheus.query(&runnable(&query)).await,
        };
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        let result = &answer["data"]["result"];
        let data = if answer["data"].is_array() {
            &answer["data"]
        } else {
            result
        };
        if data.as_array().is_none_or(Vec::is_empty) {
            empty.push(query);
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data: {empty:#?}"
    );

    for rule in alert_rules() {
        let expr = rule["expr"].as_str().expect("expr");
        let answer = prometheus.query(expr).await;
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
    }
    let rules = prometheus.api("/api/v1/rules").await;
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules"))
        .collect();
    assert_eq!(loaded.len(), alert_rules().len(), "{rules}");
    for rule in loaded {
        assert_eq!(
            rule["health"], "ok",
            "a rule that does not evaluate: {rule}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_check_metrics_accepts_scrapes_taken_while_indexing() {
    let indexing = Indexing::start(42, false);
    let address = indexing.daemon.metrics_address();
    let mut checked = 0;
    for slice in 0..FEED_SLICES {
        indexing.push_slice(slice);
        tokio::time::sleep(FEED_PAUSE).await;
        let (status, body) = get(address, "/metrics").await.expect("a scrape");
        assert_eq!(status, 200, "{body}");
        if !body.contains("atcr_indexer_valkey_batch_duration_seconds_bucket") {
            continue;
        }
        let output = promtool(&["check", "metrics"], Some(&body));
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !said.trim().is_empty() {
            eprintln!("promtool check metrics said:\n{said}");
        }
        assert!(
            !said.contains("atcr_indexer_"),
            "promtool check metrics finds problems in our metrics:\n{said}"
        );
        assert!(
            output.status.success(),
            "{}\nscrape:\n{body}",
            show(&output)
        );
        checked += 1;
    }
    assert!(
        checked >= FEED_SLICES / 2,
        "only {checked} scrapes had written batches"
    );
    indexing.caught_up().await;
}

/// Runs `atcr-indexer health` against `address`: its exit status and what it printed.
async fn health(address: SocketAddr) -> Output {
    let address = address.to_string();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_atcr-indexer"))
            .args(["health", "--metrics-listen", &address])
            .env_remove("ATCR_INDEXER_CONFIG")
            .env_remove("ATCR_INDEXER_METRICS_LISTEN")
            .output()
            .expect("atcr-indexer health runs")
    })
    .await
    .expect("the health command finished")
}

async fn wait_for_status(address: SocketAddr, path: &str, status: u16) -> (u16, String) {
    let deadline = Instant::now() + INDEX_TIMEOUT;
    loop {
        let answer = get(address, path).await.expect("the listener answers");
        if answer.0 == status || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_and_the_health_subcommand_follow_readiness() {
    let indexing = Indexing::start(43, true);
    indexing.push_slice(0);
    let address = indexing.daemon.metrics_address();

    assert_eq!(get(address, "/healthz").await.expect("healthz").0, 200);
    let (status, body) = wait_for_status(address, "/readyz", 503).await;
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: jetstream not connected\n")
    );
    let refused = health(address).await;
    assert!(
        !refused.status.success(),
        "health while not ready: {}",
        show(&refused)
    );

    indexing.jetstream.refuse(false);
    let (status, body) = wait_for_status(address, "/readyz", 200).await;
    assert_eq!(status, 200, "{body}\nlog:\n{}", indexing.daemon.log());
    let ready = health(address).await;
    assert!(
        ready.status.success(),
        "health when ready: {}",
        show(&ready)
    );
    assert_eq!(get(address, "/nowhere").await.expect("404").0, 404);

    let nobody = health(free_address()).await;
    assert!(
        !nobody.status.success(),
        "health with nothing listening: {}",
        show(&nobody)
    );
    assert!(
        String::from_utf8_lossy(&nobody.stderr).contains("no answer"),
        "{}",
        show(&nobody)
    );
}

/// The Dockerfile's instructions, continuation lines joined: `(KEYWORD, arguments)`.
fn dockerfile() -> Vec<(String, String)> {
    let text = read("Dockerfile").replace("\\\n", " ");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
            (
                keyword.to_uppercase(),
                rest.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

#[test]
fn the_image_builds_from_the_lock_file_and_runs_the_shipped_config() {
    let instructions = dockerfile();
    let all = |keyword: &str| -> Vec<&str> {
        let found = instructions.iter().filter(|(k, _)| k == keyword);
        found.map(|(_, rest)| rest.as_str()).collect()
    };
    let one = |keyword: &str| -> &str {
        let found = all(keyword);
        assert_eq!(found.len(), 1, "{keyword}: {found:?}");
        found[0]
    };
    let stages = all("FROM");
    assert_eq!(stages.len(), 2, "multi-stage: {stages:?}");
    assert!(stages[0].starts_with("rust:1") && stages[0].ends_with("-bookworm AS builder"));
    assert_eq!(stages[1], "debian:bookworm-slim");
    assert!(all("RUN")
        .iter()
        .any(|run| run.contains("cargo build --release --locked")));
    assert_eq!(one("ARG"), "ATCR_INDEXER_GIT_SHA=unknown");
    assert_eq!(one("USER"), "atcr:atcr");
    assert!(all("RUN").iter().any(|run| run.contains("--uid 10001")));
    assert_eq!(one("STOPSIGNAL"), "SIGTERM");
    assert_eq!(one("EXPOSE"), "9464");
    assert_eq!(one("ENTRYPOINT"), r#"["atcr-indexer"]"#);
    let config = "/etc/atcr-indexer/indexer.toml";
    assert_eq!(one("CMD"), format!(r#"["run", "--config", "{config}"]"#));
    assert!(one("HEALTHCHECK").ends_with(&format!(
        r#"CMD ["atcr-indexer", "health", "--config", "{config}"]"#
    )));
    assert!(all("COPY").contains(&format!("config/indexer.toml {config}").as_str()));

    let ignore = read(".dockerignore");
    for copy in all("COPY")
        .iter()
        .filter(|copy| !copy.starts_with("--from"))
    {
        let sources: Vec<&str> = copy.split_whitespace().collect();
        for source in &sources[..sources.len() - 1] {
            let top = source.split('/').next().unwrap_or(source);
            let kept = ignore
                .lines()
                .any(|line| line.trim_end_matches('/') == format!("!{top}"));
            assert!(
                kept,
                ".dockerignore keeps {source} out of the build context"
            );
        }
    }

    let environment: Vec<(&str, &str)> = all("ENV")
        .iter()
        .map(|env| env.split_once('=').expect("ENV KEY=value"))
        .collect();
    assert_eq!(
        environment,
        [("ATCR_INDEXER_METRICS_LISTEN", "0.0.0.0:9464")]
    );
    let checked = Command::new(env!("CARGO_BIN_EXE_atcr-indexer"))
        .args(["check", "--config", "config/indexer.toml"])
        .current_dir(root())
        .env_remove("ATCR_INDEXER_CONFIG")
        .envs(environment)
        .output()
        .expect("atcr-indexer check runs");
    assert!(checked.status.success(), "{}", show(&checked));
    let settings = String::from_utf8_lossy(&checked.stdout);
    assert!(
        settings.contains(r#"listen = "0.0.0.0:9464""#),
        "{settings}"
    );
}

/// `source:target[:mode]` bind mounts of a compose service whose source is a path here.
fn bind_mounts(service: &Value) -> Vec<(String, String)> {
    let volumes = service["volumes"].as_array().cloned().unwrap_or_default();
    volumes
        .iter()
        .filter_map(|volume| {
            let mut parts = volume.as_str().expect("short volume syntax").split(':');
            let (source, target) = (parts.next()?, parts.next()?);
            source
                .starts_with("./")
                .then(|| (source.to_owned(), target.to_owned()))
        })
        .collect()
}

fn mounted_at<'a>(mounts: &'a [(String, String)], source: &str) -> &'a str {
    let found = mounts.iter().find(|(from, _)| from == source);
    &found
        .unwrap_or_else(|| panic!("{source} is not mounted: {mounts:?}"))
        .1
}

#[test]
fn the_compose_stack_mounts_files_that_exist_where_each_service_reads_them() {
    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["atcr-indexer", "grafana", "prometheus", "valkey"])
    );
    for (name, service) in services {
        for (source, _) in bind_mounts(service) {
            assert!(
                root().join(&source).exists(),
                "{name} mounts {source}, which is missing"
            );
        }
    }

    let valkey = &services["valkey"];
    assert!(valkey["image"]
        .as_str()
        .is_some_and(|image| image.starts_with("valkey/valkey:8")));
    assert!(
        valkey["command"]
            .to_string()
            .contains(r#""--appendonly","yes""#),
        "{valkey}"
    );
    let indexer = &services["atcr-indexer"];
    assert_eq!(indexer["build"]["context"], ".");
    assert_eq!(
        indexer["environment"]["ATCR_INDEXER_VALKEY_URL"],
        "redis://valkey:6379"
    );

    let prometheus = bind_mounts(&services["prometheus"]);
    let config = mounted_at(&prometheus, "./dashboards/prometheus.yml");
    let rules = mounted_at(&prometheus, "./dashboards/alerts.yml");
    let scrape = yaml("dashboards/prometheus.yml");
    let rule_file = scrape["rule_files"][0].as_str().expect("a rule file");
    let config_dir = Path::new(config).parent().expect("a directory");
    assert_eq!(config_dir.join(rule_file), Path::new(rules));
    let target = &scrape["scrape_configs"][0]["static_configs"][0]["targets"][0];
    assert_eq!(
        target, "atcr-indexer:9464",
        "the compose service and the image's port"
    );

    let grafana = bind_mounts(&services["grafana"]);
    let provisioning = mounted_at(&grafana, "./dashboards/grafana/provisioning");
    assert_eq!(provisioning, "/etc/grafana/provisioning");
    let json = mounted_at(&grafana, "./dashboards/atcr-indexer.json");
    let providers = yaml("dashboards/grafana/provisioning/dashboards/atcr-indexer.yml");
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .expect("a path");
    assert_eq!(Path::new(json).parent(), Some(Path::new(path)));
    let sources = yaml("dashboards/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(sources["datasources"][0]["url"], "http://prometheus:9090");
    assert_eq!(sources["datasources"][0]["type"], "prometheus");
}
