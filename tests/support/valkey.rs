//! A real `valkey-server` child process on a private port, and a tiny blocking RESP2 client to
//! assert on what the indexer wrote.
//!
//! Invariant: the harness only ever talks to the server it started. The port comes from the
//! kernel's ephemeral range (never 6379), and startup checks that the process answering on it
//! is our child (`INFO server` reports its PID) before the struct is handed out.
//!
//! The binary is `valkey-server` from `PATH`, or the path in the `VALKEY_SERVER` variable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to answer PING after it is spawned (AOF loading included).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How long `stop` waits for a clean exit after SIGTERM before it kills.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Fresh ports tried before giving up; a collision with another process is rare.
const START_ATTEMPTS: usize = 5;

/// Socket timeout of the assertion client, so a hung server fails a test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The poll interval of `wait_for` and `wait_until`.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A `valkey-server` child process that is killed on drop.
pub struct Valkey {
    port: u16,
    persistent: bool,
    extra: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    connection: Mutex<Option<BufReader<TcpStream>>>,
}

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespValue {
    /// `+OK`-style status.
    Simple(String),
    /// `-ERR ...` error reply.
    Error(String),
    /// `:n` integer.
    Int(i64),
    /// Bulk string; `None` is the nil reply.
    Bulk(Option<Vec<u8>>),
    /// Array; `None` is the nil array.
    Array(Option<Vec<RespValue>>),
}

impl RespValue {
    /// The text of a simple string or a UTF-8 bulk string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            RespValue::Simple(text) => Some(text),
            RespValue::Bulk(Some(bytes)) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// An integer reply, or a string reply that parses as one (`GET` of a counter).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            RespValue::Int(value) => Some(*value),
            _ => self.as_str()?.parse().ok(),
        }
    }

    /// The elements of a non-nil array.
    pub fn as_array(&self) -> Option<&[RespValue]> {
        match self {
            RespValue::Array(Some(items)) => Some(items),
            _ => None,
        }
    }

    /// True for the nil bulk string and the nil array.
    pub fn is_nil(&self) -> bool {
        matches!(self, RespValue::Bulk(None) | RespValue::Array(None))
    }

    /// The elements as lossy UTF-8 strings (empty for anything but an array).
    pub fn strings(&self) -> Vec<String> {
        let items = self.as_array().unwrap_or_default();
        items.iter().map(RespValue::lossy).collect()
    }

    fn lossy(&self) -> String {
        match self {
            RespValue::Bulk(Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            RespValue::Simple(text) | RespValue::Error(text) => text.clone(),
            RespValue::Int(value) => value.to_string(),
            other => format!("{other:?}"),
        }
    }
}

/// The value of one key, in a form that compares deterministically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyValue {
    /// A string, as lossy UTF-8.
    String(String),
    /// A hash, field → value.
    Hash(BTreeMap<String, String>),
    /// A set's members.
    Set(BTreeSet<String>),
    /// A sorted set, member → score as Valkey prints it.
    ZSet(BTreeMap<String, String>),
    /// A list, in order.
    List(Vec<String>),
    /// Any other type, by name; its value is not read.
    Other(String),
}

/// One key of a dump: its value and its remaining time to live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDump {
    /// The value.
    pub value: KeyValue,
    /// Seconds left (`TTL`), `None` for a key without expiry.
    pub ttl_secs: Option<i64>,
}

/// A dump of a keyspace: key → value and TTL, sorted by key.
pub type Keyspace = BTreeMap<String, KeyDump>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Valkey {
    /// Starts a server without persistence (`--save "" --appendonly no`).
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Starts a server with an append-only file fsynced on every write, in its own tempdir.
    pub fn start_persistent() -> Self {
        Self::launch(true)
    }

    /// Starts a server without persistence and with `extra` arguments after the usual ones
    /// (`--user …` ACL rules, `--tls-port …`); a restart passes them again. The harness client
    /// still uses the plain port as the `default` user.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::launch_with(false, extra.iter().map(|arg| arg.to_string()).collect())
    }

    fn launch(persistent: bool) -> Self {
        Self::launch_with(persistent, Vec::new())
    }

    fn launch_with(persistent: bool, extra: Vec<String>) -> Self {
        let dir = tempfile::tempdir().expect("create a tempdir for valkey");
        let mut valkey = Self {
            port: 0,
            persistent,
            extra,
            dir,
            child: None,
            connection: Mutex::new(None),
        };
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            valkey.port = free_port();
            match valkey.spawn() {
                Ok(child) => {
                    valkey.child = Some(child);
                    return valkey;
                }
                Err(failure) => failures.push(failure),
            }
        }
        panic!("valkey did not start: {failures:?}\n{}", valkey.log_tail());
    }

    /// Spawns the server on `self.port` and waits until it answers as our child.
    fn spawn(&self) -> Result<Child, String> {
        let mut child = self
            .command()
            .spawn()
            .map_err(|error| format!("spawn {}: {error}", binary()))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("port {}: exited with {status}", self.port));
            }
            if self.answers_as(child.id()) {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                kill_and_reap(&mut child);
                return Err(format!(
                    "port {}: no PONG within {START_TIMEOUT:?}",
                    self.port
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(binary());
        let port = self.port.to_string();
        let log = self.log_path();
        command
            .args(["--port", &port, "--bind", "127.0.0.1", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(["--save", ""]);
        if self.persistent {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        command
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// True when the server on our port answers PING and reports `pid` as its process.
    fn answers_as(&self, pid: u32) -> bool {
        if !ping(self.port) {
            return false;
        }
        let fresh = Self::connect(self.port).ok();
        let info = fresh.and_then(|mut stream| roundtrip(&mut stream, &["INFO", "server"]).ok());
        let info = info.as_ref().and_then(RespValue::as_str).unwrap_or("");
        info.lines()
            .any(|line| line.trim() == format!("process_id:{pid}"))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's port (never 6379).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (where the append-only files live).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("valkey.log")
    }

    /// The last 40 lines of the server log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// True while the server process runs.
    pub fn is_running(&mut self) -> bool {
        let child = self.child.as_mut();
        child.is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Stops the server with SIGTERM (a clean shutdown), killing it if it lingers.
    pub fn stop(&mut self) {
        self.forget_connection();
        let Some(mut child) = self.child.take() else {
            return;
        };
        let terminated = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while terminated && Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(POLL_INTERVAL);
        }
        kill_and_reap(&mut child);
    }

    /// Kills the server with SIGKILL, as a crash would; nothing is flushed.
    pub fn kill9(&mut self) {
        self.forget_connection();
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }

    /// Stops the server if it runs, then starts it again on the same port, directory and
    /// persistence mode, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(failure) if Instant::now() >= deadline => {
                    panic!("valkey did not restart: {failure}\n{}", self.log_tail())
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn forget_connection(&self) {
        *lock(&self.connection) = None;
    }

    fn connect(port: u16) -> io::Result<BufReader<TcpStream>> {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(BufReader::new(stream))
    }

    /// Sends one command and reads its reply; an `Error` reply is `Ok`, I/O failure is `Err`.
    ///
    /// A kept connection that turns out broken (server restarted) is replaced and the command
    /// sent once more.
    pub fn try_exec(&self, args: &[&str]) -> io::Result<RespValue> {
        let mut connection = lock(&self.connection);
        if let Some(stream) = connection.as_mut() {
            if let Ok(reply) = roundtrip(stream, args) {
                return Ok(reply);
            }
        }
        *connection = None;
        let mut stream = Self::connect(self.port)?;
        let reply = roundtrip(&mut stream, args)?;
        *connection = Some(stream);
        Ok(reply)
    }

    /// Sends one command and returns its reply; panics when the server cannot be reached.
    pub fn exec(&self, args: &[&str]) -> RespValue {
        self.try_exec(args).unwrap_or_else(|error| {
            panic!("valkey on port {}: {args:?} failed: {error}", self.port)
        })
    }

    /// True when the server answers PING now.
    pub fn ping(&self) -> bool {
        matches!(self.try_exec(&["PING"]), Ok(RespValue::Simple(pong)) if pong == "PONG")
    }

    /// Every key starting with `prefix`, found with SCAN (never KEYS).
    pub fn keys(&self, prefix: &str) -> BTreeSet<String> {
        let pattern = format!("{}*", glob_escape(prefix));
        let mut keys = BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let reply = self.exec(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"]);
            let parts = reply.as_array().unwrap_or_default();
            let (Some(next), Some(batch)) = (parts.first(), parts.get(1)) else {
                panic!("SCAN answered {reply:?}");
            };
            keys.extend(batch.strings());
            cursor = next.lossy();
            if cursor == "0" {
                return keys;
            }
        }
    }

    /// A deterministic dump of every key starting with `prefix`: type, value and TTL.
    ///
    /// Take it while nothing writes: a key that expires between SCAN and its read is left out.
    pub fn dump(&self, prefix: &str) -> Keyspace {
        let mut keyspace = Keyspace::new();
        for key in self.keys(prefix) {
            let ttl = self.exec(&["TTL", &key]).as_int();
            let ttl_secs = match ttl {
                Some(-2) | None => continue,
                Some(-1) => None,
                Some(seconds) => Some(seconds),
            };
            if let Some(value) = self.read_value(&key) {
                keyspace.insert(key, KeyDump { value, ttl_secs });
            }
        }
        keyspace
    }

    fn read_value(&self, key: &str) -> Option<KeyValue> {
        let kind = self.exec(&["TYPE", key]).lossy();
        let value = match kind.as_str() {
            "none" => return None,
            "string" => KeyValue::String(self.exec(&["GET", key]).lossy()),
            "hash" => KeyValue::Hash(pairs(&self.exec(&["HGETALL", key]))),
            "set" => KeyValue::Set(
                self.exec(&["SMEMBERS", key])
                    .strings()
                    .into_iter()
                    .collect(),
            ),
            "zset" => KeyValue::ZSet(pairs(&self.exec(&["ZRANGE", key, "0", "-1", "WITHSCORES"]))),
            "list" => KeyValue::List(self.exec(&["LRANGE", key, "0", "-1"]).strings()),
            other => KeyValue::Other(other.to_string()),
        };
        Some(value)
    }

    /// Polls `pred` every 20 ms until it holds or `timeout` passes; blocks the calling thread.
    ///
    /// In an async test prefer [`Valkey::wait_until`], which leaves the worker free.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Valkey) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Like [`Valkey::wait_for`], but sleeps on the tokio timer between polls (real time).
    pub async fn wait_until(&self, timeout: Duration, pred: impl Fn(&Valkey) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for Valkey {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl fmt::Debug for Valkey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Valkey")
            .field("port", &self.port)
            .field("persistent", &self.persistent)
            .field("dir", &self.dir.path())
            .finish()
    }
}

fn binary() -> String {
    std::env::var("VALKEY_SERVER").unwrap_or_else(|_| "valkey-server".to_string())
}

/// A port the kernel just handed out and released; never 6379, which belongs to another Redis.
pub fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("bound listener has an address")
            .port();
        if port != 6379 {
            return port;
        }
    }
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// An inline `PING` on a fresh connection; false on any failure, `-LOADING` included.
fn ping(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// Escapes the glob characters of SCAN's MATCH so a prefix matches literally.
fn glob_escape(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for character in prefix.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// A flat `[k1, v1, k2, v2, …]` reply as a sorted map.
fn pairs(reply: &RespValue) -> BTreeMap<String, String> {
    let items = reply.strings();
    let pairs = items.chunks(2).filter_map(|pair| match pair {
        [key, value] => Some((key.clone(), value.clone())),
        _ => None,
    });
    pairs.collect()
}

fn roundtrip(stream: &mut BufReader<TcpStream>, args: &[&str]) -> io::Result<RespValue> {
    let mut command = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        command.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        command.extend_from_slice(arg.as_bytes());
        command.extend_from_slice(b"\r\n");
    }
    stream.get_mut().write_all(&command)?;
    read_reply(stream)
}

fn read_reply(reader: &mut impl BufRead) -> io::Result<RespValue> {
    let line = read_line(reader)?;
    let (tag, rest) = line.split_at(line.len().min(1));
    match tag {
        "+" => Ok(RespValue::Simple(rest.to_string())),
        "-" => Ok(RespValue::Error(rest.to_string())),
        ":" => Ok(RespValue::Int(parse_length(rest)?)),
        "$" => read_bulk(reader, parse_length(rest)?),
        "*" => read_array(reader, parse_length(rest)?),
        _ => Err(invalid(format!("unexpected RESP line {line:?}"))),
    }
}

fn read_bulk(reader: &mut impl BufRead, length: i64) -> io::Result<RespValue> {
    let Ok(length) = usize::try_from(length) else {
        return Ok(RespValue::Bulk(None));
    };
    let mut bytes = vec![0u8; length + 2];
    reader.read_exact(&mut bytes)?;
    bytes.truncate(length);
    Ok(RespValue::Bulk(Some(bytes)))
}

fn read_array(reader: &mut impl BufRead, length: i64) -> io::Result<RespValue> {
    let Ok(length) = usize::try_from(length) else {
        return Ok(RespValue::Array(None));
    };
    let items = (0..length).map(|_| read_reply(reader));
    Ok(RespValue::Array(Some(items.collect::<io::Result<_>>()?)))
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "valkey closed",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn parse_length(text: &str) -> io::Result<i64> {
    text.parse()
        .map_err(|_| invalid(format!("bad RESP number {text:?}")))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Lists how two keyspaces differ: values exactly, TTLs by presence and to within 10 % or 5 s
/// (the two runs set them at different instants). Empty when they match.
pub fn keyspace_differences(a: &Keyspace, b: &Keyspace) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|key| key_difference(key, a.get(key), b.get(key)))
        .collect()
}

fn key_difference(key: &str, a: Option<&KeyDump>, b: Option<&KeyDump>) -> Option<String> {
    match (a, b) {
        (Some(a), None) => Some(format!("{key}: only in the first: {a:?}")),
        (None, Some(b)) => Some(format!("{key}: only in the second: {b:?}")),
        (Some(a), Some(b)) if a.value != b.value => Some(format!(
            "{key}: value differs\n  first:  {:?}\n  second: {:?}",
            a.value, b.value
        )),
        (Some(a), Some(b)) if !ttls_match(a.ttl_secs, b.ttl_secs) => Some(format!(
            "{key}: TTL differs: {:?} vs {:?}",
            a.ttl_secs, b.ttl_secs
        )),
        _ => None,
    }
}

fn ttls_match(a: Option<i64>, b: Option<i64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let tolerance = (a.max(b) / 10).max(5);
            (a - b).abs() <= tolerance
        }
        _ => false,
    }
}

/// Panics with the first differing keys unless the two keyspaces match (see
/// [`keyspace_differences`]).
pub fn assert_same_keyspace(a: &Keyspace, b: &Keyspace) {
    let differences = keyspace_differences(a, b);
    if differences.is_empty() {
        return;
    }
    let shown: Vec<&String> = differences.iter().take(10).collect();
    panic!(
        "keyspaces differ in {} of {} / {} keys; first differences:\n{}",
        differences.len(),
        a.len(),
        b.len(),
        shown
            .iter()
            .map(|line| line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
