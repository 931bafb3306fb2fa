//! Secrets and exposure, with the shipped binary: a Valkey ACL user with a password, TLS to a
//! Valkey whose certificate a private CA signed, and no password or credential-bearing URL in
//! any log line, error message, metric or `check` output; the metrics listener on loopback.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use atcr_indexer::config::DEFAULT_METRICS_LISTEN;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use support::daemon::{Daemon, Options};
use support::events::generate_stream;
use support::jetstream::FakeJetstream;
use support::scenario::{cache, caught_up, log_tail, options, reference, scrape};
use support::valkey::{assert_same_keyspace, free_port, Valkey};

/// The ACL user the daemon logs in as.
const USER: &str = "indexer";

/// That user's password; it must never be printed.
const PASSWORD: &str = "s3cret-pass";

/// A password that Valkey refuses; it must never be printed either.
const WRONG_PASSWORD: &str = "wr0ng-pass-971";

/// `valkey-server` arguments that create [`USER`]: every key under the prefix, every command
/// except the dangerous ones (`FLUSHALL`, `KEYS`, `CONFIG`, `DEBUG`, …).
const ACL_USER: [&str; 7] = [
    "--user",
    USER,
    "on",
    ">s3cret-pass",
    "~atcr:*",
    "+@all",
    "-@dangerous",
];

/// How long a daemon that cannot use its Valkey may take to give up.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

fn stream(seed: u64) -> Vec<String> {
    generate_stream(400, seed)
}

/// `redis://<user>:<password>@127.0.0.1:<port>`.
fn url_with(user: &str, password: &str, port: u16) -> String {
    format!("redis://{user}:{password}@127.0.0.1:{port}")
}

/// Panics when `text` (named `what`) shows a password or the credentials of a URL.
fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, WRONG_PASSWORD, "indexer:s3", "indexer:wr"] {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

/// Runs `atcr-indexer check` with `env` and no `ATCR_INDEXER_*` variable of the test's own.
fn check(env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_atcr-indexer"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ATCR_INDEXER_") {
            command.env_remove(name);
        }
    }
    command
        .arg("check")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run atcr-indexer check")
}

/// Indexes `lines` through a daemon started with `options`, stops it, and returns it.
async fn index(valkey: &Valkey, jetstream: &FakeJetstream, options: &Options) -> Daemon {
    let mut daemon = Daemon::start(options);
    caught_up(valkey, jetstream, &daemon).await;
    assert!(daemon.stop().success(), "log:\n{}", log_tail(&daemon));
    daemon
}

/// Waits for a daemon that must give up on its own; panics while it still runs.
async fn failed(daemon: &mut Daemon) -> String {
    let status = daemon.exit_within(EXIT_TIMEOUT).await;
    let log = daemon.log();
    let status = status.unwrap_or_else(|| panic!("the daemon kept running; log:\n{log}"));
    assert!(!status.success(), "it exited with {status}; log:\n{log}");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_with_a_password_indexes_everything() {
    let lines = stream(41);
    let valkey = Valkey::start_with(&ACL_USER);
    let refused = valkey.exec(&["ACL", "DRYRUN", USER, "FLUSHALL"]);
    let refused = refused.as_str().unwrap_or_default().to_owned();
    assert!(
        refused.contains("no permissions"),
        "the user is restricted: {refused}"
    );
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    let url = url_with(USER, PASSWORD, valkey.port());
    let mut daemon = Daemon::start(&options(&jetstream.url(), &url));
    caught_up(&valkey, &jetstream, &daemon).await;
    let clients = valkey.exec(&["CLIENT", "LIST"]);
    let clients = clients.as_str().unwrap_or_default();
    assert!(
        clients.contains(&format!("user={USER} ")),
        "the daemon is logged in as {USER}:\n{clients}"
    );
    assert!(daemon.stop().success(), "log:\n{}", log_tail(&daemon));
    assert_no_secret("the log", &daemon.log());
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_plainly_without_printing_it() {
    let valkey = Valkey::start_with(&ACL_USER);
    let jetstream = FakeJetstream::new();
    let url = url_with(USER, WRONG_PASSWORD, valkey.port());
    let mut daemon = Daemon::start(&options(&jetstream.url(), &url));
    let log = failed(&mut daemon).await;
    let said = ["WRONGPASS", "invalid username-password"];
    assert!(
        said.iter().any(|words| log.contains(words)),
        "the log says the credentials were refused:\n{log}"
    );
    assert_no_secret("the log", &log);
}

/// A CA, and a certificate it signed for `127.0.0.1` and `localhost`, as PEM files.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn generate() -> Certificates {
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "atcr-indexer test CA");
        let ca_certificate = ca.self_signed(&ca_key).expect("self-signed CA");
        let issuer = Issuer::new(ca, ca_key);
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(names).expect("server params");
        let server_certificate = server
            .signed_by(&server_key, &issuer)
            .expect("CA-signed server certificate");
        let write = |name: &str, pem: String| {
            std::fs::write(dir.path().join(name), pem).expect("write PEM");
        };
        write("ca.pem", ca_certificate.pem());
        write("server.pem", server_certificate.pem());
        write("server.key", server_key.serialize_pem());
        Certificates { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A Valkey that also listens for TLS on the returned port, with the certificates' server
/// certificate, not asking clients for one.
fn tls_valkey(certificates: &Certificates) -> (Valkey, u16) {
    let port = free_port();
    let (certificate, key) = (
        certificates.path("server.pem"),
        certificates.path("server.key"),
    );
    let valkey = Valkey::start_with(&[
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        path_str(&certificate),
        "--tls-key-file",
        path_str(&key),
        "--tls-auth-clients",
        "no",
    ]);
    (valkey, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_private_ca_indexes_everything() {
    let lines = stream(42);
    let certificates = Certificates::generate();
    let (valkey, tls_port) = tls_valkey(&certificates);
    let jetstream = FakeJetstream::new();
    jetstream.push_all(lines.iter().cloned());
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let mut options = options(&jetstream.url(), &url);
    let ca = certificates.path("ca.pem");
    options
        .extra
        .extend(["--valkey-tls-ca".to_owned(), path_str(&ca).to_owned()]);
    index(&valkey, &jetstream, &options).await;
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

/// Without `--valkey-tls-ca` the system roots decide, and they do not trust the test CA: the
/// handshake fails, the log names the certificate, nothing is written, and the daemon exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_without_the_private_ca_fails_the_handshake() {
    let certificates = Certificates::generate();
    let (valkey, tls_port) = tls_valkey(&certificates);
    let jetstream = FakeJetstream::new();
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let mut daemon = Daemon::start(&options(&jetstream.url(), &url));
    let named = wait_for_log(&daemon, "InvalidCertificate(UnknownIssuer)").await;
    assert!(
        named,
        "the log names the untrusted certificate:\n{}",
        daemon.log()
    );
    let keys = valkey.keys("");
    assert!(keys.is_empty(), "nothing was written: {keys:?}");
    let status = daemon.wait();
    assert!(
        !status.success(),
        "an untrusted certificate is fatal; log:\n{}",
        log_tail(&daemon)
    );
}

/// An untrusted certificate is a TLS setup error, which retrying cannot fix, so the daemon
/// gives up as it does for refused credentials (`Store::wait`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_valkey_certificate_ends_the_daemon() {
    let certificates = Certificates::generate();
    let (_valkey, tls_port) = tls_valkey(&certificates);
    let jetstream = FakeJetstream::new();
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let mut daemon = Daemon::start(&options(&jetstream.url(), &url));
    let log = failed(&mut daemon).await;
    assert!(log.contains("UnknownIssuer"), "{log}");
}

/// Waits until the daemon's log contains `needle`; false after 20 s.
async fn wait_for_log(daemon: &Daemon, needle: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if daemon.log().contains(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Start, index, a Valkey restart that loses the data, index again, stop: the password and the
/// URL's credentials appear in no log line, no `/metrics` page and no `check` output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_in_the_log_metrics_or_check_through_a_lifecycle() {
    let lines = stream(43);
    let (first, second) = lines.split_at(lines.len() / 2);
    let mut valkey = Valkey::start_with(&ACL_USER);
    let jetstream = FakeJetstream::new();
    jetstream.push_all(first.iter().cloned());
    let url = url_with(USER, PASSWORD, valkey.port());
    let mut daemon = Daemon::start(&options(&jetstream.url(), &url));
    caught_up(&valkey, &jetstream, &daemon).await;
    let before = scrape(daemon.metrics_address());

    valkey.restart();
    jetstream.push_all(second.iter().cloned());
    caught_up(&valkey, &jetstream, &daemon).await;
    let after = scrape(daemon.metrics_address());
    assert!(daemon.stop().success(), "log:\n{}", log_tail(&daemon));

    let log = daemon.log();
    assert!(
        log.contains("valkey lost its data"),
        "the restart was noticed:\n{log}"
    );
    assert_no_secret("the log", &log);
    assert_no_secret("/metrics before the restart", &before);
    assert_no_secret("/metrics after the restart", &after);
    let checked = check(&[("ATCR_INDEXER_VALKEY_URL", &url)]);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    let shown = format!("redis://***@127.0.0.1:{}", valkey.port());
    assert!(stdout.contains(&shown), "check shows {shown}:\n{stdout}");
    assert_no_secret("check's stdout", &stdout);
    assert_no_secret("check's stderr", &String::from_utf8_lossy(&checked.stderr));
    assert_same_keyspace(&reference(&lines).await, &cache(&valkey));
}

#[test]
fn the_metrics_listener_binds_to_loopback_by_default() {
    let default: SocketAddr = DEFAULT_METRICS_LISTEN.parse().expect("a socket address");
    assert!(default.ip().is_loopback(), "{default}");
    let checked = check(&[]);
    assert!(checked.status.success(), "{checked:?}");
    let stdout = String::from_utf8_lossy(&checked.stdout);
    let listen = format!("listen = \"{DEFAULT_METRICS_LISTEN}\"");
    assert!(stdout.contains(&listen), "check prints {listen}:\n{stdout}");
}
