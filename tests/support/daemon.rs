//! The real `atcr-indexer` binary as a child process, pointed at a test Valkey and Jetstream.
//!
//! Tests run the shipped binary, not a library call, so that flags, signals, exit codes and
//! restarts are exercised the way an operator meets them.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a stopped daemon may take to drain and exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `atcr-indexer run`.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Settings a test may change; each becomes a flag.
#[derive(Clone, Debug)]
pub struct Options {
    /// Jetstream URLs, tried in order.
    pub jetstream: Vec<String>,
    /// `redis://` URL of the test Valkey.
    pub valkey: String,
    /// Dictionary bytes; written to a file and passed with `--zstd-dictionary`.
    pub dictionary: Option<Vec<u8>>,
    /// Extra flags.
    pub extra: Vec<String>,
    /// `--cursor-save-interval`, in seconds (1 unless a test needs the periodic save out of
    /// the way).
    pub cursor_save_interval_secs: u64,
    /// `--metrics-listen`; port 0 (the default here) lets parallel daemons coexist, and
    /// [`Daemon::metrics_address`] reads the port chosen.
    pub metrics_listen: String,
}

impl Options {
    /// One Jetstream host and one Valkey, everything else at test-friendly values.
    pub fn new(jetstream: &str, valkey: &str) -> Options {
        Options {
            jetstream: vec![jetstream.to_owned()],
            valkey: valkey.to_owned(),
            dictionary: None,
            extra: Vec::new(),
            cursor_save_interval_secs: 1,
            metrics_listen: "127.0.0.1:0".to_owned(),
        }
    }
}

impl Daemon {
    /// Starts the daemon; it logs to a file that [`Daemon::log`] returns.
    pub fn start(options: &Options) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir for the daemon");
        let log = dir.path().join("daemon.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_atcr-indexer"));
        command.arg("run").arg("--valkey-url").arg(&options.valkey);
        for url in &options.jetstream {
            command.arg("--jetstream-url").arg(url);
        }
        if let Some(bytes) = &options.dictionary {
            let path = dir.path().join("test.zdict");
            std::fs::write(&path, bytes).expect("write dictionary");
            command.arg("--zstd-dictionary").arg(path);
        }
        let save_interval = options.cursor_save_interval_secs.to_string();
        command
            .args(["--cursor-save-interval", &save_interval])
            .args(["--metrics-listen", &options.metrics_listen])
            .args(["--jetstream-backoff-initial-ms", "50"])
            .args(["--jetstream-backoff-max", "1"])
            .args(&options.extra)
            .env("ATCR_INDEXER_LOG_LEVEL", "debug,fred=info")
            // No test asks the real PLC directory; a test's own --identity-plc-url wins.
            .env("ATCR_INDEXER_IDENTITY_PLC_URL", "http://127.0.0.1:1")
            .env_remove("ATCR_INDEXER_CONFIG")
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("log file"))
            .stderr(File::options().append(true).open(&log).expect("log file"));
        let child = command.spawn().expect("spawn atcr-indexer");
        Daemon {
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    /// The address the metrics listener bound, read from the log (waits up to 10 s).
    pub fn metrics_address(&self) -> std::net::SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            let found = log.lines().find(|line| line.contains("serving /metrics"));
            let address = found.and_then(|line| {
                let (_, rest) = line.split_once("address=")?;
                rest.split_whitespace()
                    .next()?
                    .trim_matches('"')
                    .parse()
                    .ok()
            });
            if let Some(address) = address {
                return address;
            }
            assert!(
                Instant::now() < deadline,
                "no metrics listener in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait()
    }

    /// Sends a signal by name (`-TERM`, `-INT`, `-KILL`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {name} {pid} failed");
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        self.signal("-KILL");
        self.wait();
    }

    /// Waits for the process to exit on its own.
    pub fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not exit in time; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` (polling on the tokio timer) for the process to exit on its own;
    /// `None` while it still runs.
    pub async fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
