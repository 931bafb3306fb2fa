//! Configuration: the command line, the TOML file and the resolved [`Settings`].
//!
//! Settings come in four layers, each overriding the one before: built-in defaults (the
//! `DEFAULT_*` constants), the TOML file named by `--config`, environment variables, and flags.
//! [`Settings::resolve`] checks every value in one place, so the rest of the daemon only ever sees
//! valid settings; unknown keys in the file are errors. Invariant: the Valkey password leaves this
//! module in clear only through [`ValkeyUrl::expose_secret`]; `Debug`, `Display`, error messages
//! and [`Settings::redacted_toml`] all print credentials as `***`.

use std::convert::Infallible;
use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

/// Legacy v1 hosts, tried in order: they resume exactly on a `time_us` cursor.
pub const DEFAULT_JETSTREAM_URLS: [&str; 4] = [
    "wss://jetstream1.us-east.bsky.network/subscribe",
    "wss://jetstream2.us-east.bsky.network/subscribe",
    "wss://jetstream1.us-west.bsky.network/subscribe",
    "wss://jetstream2.us-west.bsky.network/subscribe",
];
/// Every ATCR collection, including ones this version derives nothing from.
pub const DEFAULT_COLLECTIONS: [&str; 1] = ["io.atcr.*"];
/// 0 means the parameter is not sent: a host that drops a large event could drop a delete.
pub const DEFAULT_MAX_MESSAGE_SIZE_BYTES: u32 = 0;
/// Far above any real ATCR event; it only stops a decompression bomb from exhausting memory.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// Enough for a TLS handshake across a continent; after that the next host is worth a try.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Identity and account events arrive several times a second, so this much silence is a dead link.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 90;
/// Legacy hosts never ping, so the client pings to keep a quiet connection provably alive.
pub const DEFAULT_PING_INTERVAL_SECS: u64 = 30;
/// First reconnect delay; short, because most disconnects are one-off.
pub const DEFAULT_BACKOFF_INITIAL_MS: u64 = 250;
/// Reconnect delay cap, so a host that comes back is found again within half a minute.
pub const DEFAULT_BACKOFF_MAX_SECS: u64 = 30;
/// The consumer name the key schema uses for the single consumer (`P:cursor:jetstream`).
pub const DEFAULT_CURSOR_NAME: &str = "jetstream";
/// Same-host reconnect margin; resume is inclusive and the `rev` rule absorbs duplicates.
pub const DEFAULT_CURSOR_REWIND_SECS: u64 = 5;
/// Wider margin on a host switch, because every host stamps events with its own clock.
pub const DEFAULT_CURSOR_FAILOVER_REWIND_SECS: u64 = 60;
/// Bounds the replay after a crash to about a second of events without a write per event.
pub const DEFAULT_CURSOR_SAVE_INTERVAL_SECS: u64 = 1;
/// A local Valkey on its standard port, for development.
pub const DEFAULT_VALKEY_URL: &str = "redis://127.0.0.1:6379";
/// The key prefix the AppView reads unless configured otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "atcr";
/// Enough events per round trip to catch up quickly, few enough to keep one pipeline short.
pub const DEFAULT_BATCH_MAX_EVENTS: usize = 512;
/// Holds seconds of filtered replay while Valkey is slow; when full, the socket waits.
pub const DEFAULT_QUEUE_CAPACITY: usize = 8192;
/// A command slower than this is treated as a lost connection rather than waited on.
pub const DEFAULT_COMMAND_TIMEOUT_SECS: u64 = 10;
/// Length of `P:recent:pushes` in the key schema.
pub const DEFAULT_RECENT_PUSHES: usize = 1000;
/// `record` class: a record missing from the cache is refetched from its PDS on demand.
pub const DEFAULT_TTL_RECORD_SECS: u64 = 3600;
/// `user` class: handles and PDS hosts change rarely, and identity events refresh them.
pub const DEFAULT_TTL_USER_SECS: u64 = 3600;
/// `index` class: an index costs many PDS reads to rebuild, so it lives longer than a record.
pub const DEFAULT_TTL_INDEX_SECS: u64 = 86_400;
/// `aggregate` class: 0 means no expiry, because stars and stats cannot be rebuilt from one PDS.
pub const DEFAULT_TTL_AGGREGATE_SECS: u64 = 0;
/// `tombstone` class: outlives any Jetstream replay window (24 h legacy, 36 h v2).
pub const DEFAULT_TTL_TOMBSTONE_SECS: u64 = 172_800;
/// Time to finish acknowledged writes and save the cursor, inside a usual 30 s stop timeout.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;

/// Loopback only by default: metrics and health are for the operator's scraper, not the world.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// The public PLC directory, which serves the DID documents of every `did:plc` account.
pub const DEFAULT_IDENTITY_PLC_URL: &str = "https://plc.directory";
/// Bluesky's image CDN, which serves the avatar of any account by DID and blob CID.
pub const DEFAULT_IDENTITY_AVATAR_CDN: &str =
    "https://cdn.bsky.app/img/avatar/plain/{did}/{cid}@jpeg";
/// Minutes of new accounts during a replay; beyond it a request is dropped and asked again later.
pub const DEFAULT_IDENTITY_QUEUE_CAPACITY: usize = 10_000;
/// Enough parallel lookups that one slow PDS does not stall the others, few enough to be polite.
pub const DEFAULT_IDENTITY_CONCURRENCY: usize = 8;
/// A healthy PLC directory or PDS answers in well under a second; longer is a hung host.
pub const DEFAULT_IDENTITY_REQUEST_TIMEOUT_SECS: u64 = 10;
/// Rides out a blip of a few seconds without hammering a host that is down.
pub const DEFAULT_IDENTITY_RETRIES: u32 = 3;
/// Ten minutes: a broken PDS is asked again soon, but not on every commit of its accounts.
pub const DEFAULT_IDENTITY_NEGATIVE_CACHE_SECS: u64 = 600;
/// Requests per second (and burst) to one host: well inside the PLC directory's published limits.
pub const DEFAULT_IDENTITY_PER_HOST_RATE: u32 = 10;
/// More retries than this only keeps a worker from other accounts while a host is down.
pub const MAX_IDENTITY_RETRIES: u32 = 10;
/// Start, connect and reconnect lines only; per-event detail is debug.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Most `wantedCollections` values a Jetstream host accepts.
pub const MAX_COLLECTIONS: usize = 100;
/// A longer rewind would start before the legacy replay window (24 h) and lose events silently.
pub const MAX_REWIND_SECS: u64 = 86_400;

/// The command line of `atcr-indexer`.
#[derive(clap::Parser, Debug)]
#[command(
    name = "atcr-indexer",
    version,
    about = "Keeps the ATCR AppView's Valkey cache warm from the Jetstream firehose",
    long_about = None
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each takes the same setting overrides.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Run the daemon.
    Run(Overrides),
    /// Validate a config file and print the resolved settings, secrets redacted.
    Check(Overrides),
    /// Print, as JSON, what the cache holds for one account or one repository.
    Inspect {
        /// Settings, as for `run`.
        #[command(flatten)]
        overrides: Overrides,
        /// The account's DID.
        did: String,
        /// One repository of that account; without it, the whole account.
        repository: Option<String>,
    },
    /// Exit 0 when the running daemon's `/readyz` answers 200 (for container health checks).
    Health(Overrides),
}

/// Every setting as an optional flag with an environment twin; `None` leaves the layer below.
///
/// Flags are named `--<section>-<key>` without a `_secs` suffix, except `--collection`,
/// `--zstd-dictionary*`, `--key-prefix` and `--no-cursor`. Each environment variable is
/// `ATCR_INDEXER_` and the flag name in upper snake case, except `ATCR_INDEXER_COLLECTIONS`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Overrides {
    /// TOML config file; without it only defaults, environment and flags apply.
    #[arg(long = "config", env = "ATCR_INDEXER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Jetstream WebSocket URL; repeat (or comma-separate) to list hosts tried in order.
    #[arg(
        long = "jetstream-url",
        env = "ATCR_INDEXER_JETSTREAM_URL",
        value_name = "URL"
    )]
    #[arg(value_delimiter = ',')]
    pub jetstream_urls: Option<Vec<String>>,
    /// Collection NSID or `io.atcr.` prefix ending in `.*`; repeat for several.
    #[arg(
        long = "collection",
        env = "ATCR_INDEXER_COLLECTIONS",
        value_name = "NSID"
    )]
    #[arg(value_delimiter = ',')]
    pub collections: Option<Vec<String>>,
    /// zstd dictionary file; setting it asks Jetstream for compressed frames.
    #[arg(long, env = "ATCR_INDEXER_ZSTD_DICTIONARY", value_name = "PATH")]
    pub zstd_dictionary: Option<PathBuf>,
    /// Expected sha256 of the zstd dictionary file, 64 hex digits.
    #[arg(long, env = "ATCR_INDEXER_ZSTD_DICTIONARY_SHA256", value_name = "HEX")]
    pub zstd_dictionary_sha256: Option<String>,
    /// `maxMessageSizeBytes` sent to Jetstream; 0 sends nothing (recommended).
    #[arg(
        long,
        env = "ATCR_INDEXER_JETSTREAM_MAX_MESSAGE_SIZE_BYTES",
        value_name = "BYTES"
    )]
    pub jetstream_max_message_size_bytes: Option<u32>,
    /// Largest decompressed or text frame accepted, in bytes.
    #[arg(
        long,
        env = "ATCR_INDEXER_JETSTREAM_MAX_EVENT_BYTES",
        value_name = "BYTES"
    )]
    pub jetstream_max_event_bytes: Option<usize>,
    /// WebSocket connect timeout, in seconds.
    #[arg(
        long,
        env = "ATCR_INDEXER_JETSTREAM_CONNECT_TIMEOUT",
        value_name = "SECS"
    )]
    pub jetstream_connect_timeout: Option<u64>,
    /// Reconnect after this many seconds without any frame.
    #[arg(long, env = "ATCR_INDEXER_JETSTREAM_IDLE_TIMEOUT", value_name = "SECS")]
    pub jetstream_idle_timeout: Option<u64>,
    /// Seconds between client pings.
    #[arg(
        long,
        env = "ATCR_INDEXER_JETSTREAM_PING_INTERVAL",
        value_name = "SECS"
    )]
    pub jetstream_ping_interval: Option<u64>,
    /// First reconnect delay, in milliseconds.
    #[arg(
        long,
        env = "ATCR_INDEXER_JETSTREAM_BACKOFF_INITIAL_MS",
        value_name = "MS"
    )]
    pub jetstream_backoff_initial_ms: Option<u64>,
    /// Largest reconnect delay, in seconds.
    #[arg(long, env = "ATCR_INDEXER_JETSTREAM_BACKOFF_MAX", value_name = "SECS")]
    pub jetstream_backoff_max: Option<u64>,
    /// Consumer name; the cursor key is `<prefix>:cursor:<name>`.
    #[arg(long, env = "ATCR_INDEXER_CURSOR_NAME", value_name = "NAME")]
    pub cursor_name: Option<String>,
    /// Seconds to rewind the cursor on a same-host reconnect.
    #[arg(long, env = "ATCR_INDEXER_CURSOR_REWIND", value_name = "SECS")]
    pub cursor_rewind: Option<u64>,
    /// Seconds to rewind the cursor when switching hosts.
    #[arg(long, env = "ATCR_INDEXER_CURSOR_FAILOVER_REWIND", value_name = "SECS")]
    pub cursor_failover_rewind: Option<u64>,
    /// Seconds between cursor saves.
    #[arg(long, env = "ATCR_INDEXER_CURSOR_SAVE_INTERVAL", value_name = "SECS")]
    pub cursor_save_interval: Option<u64>,
    /// Where to start when Valkey holds no cursor.
    #[arg(long, env = "ATCR_INDEXER_NO_CURSOR", value_name = "START")]
    pub no_cursor: Option<NoCursor>,
    /// Valkey URL, `redis://` or `rediss://`, credentials allowed.
    #[arg(
        long,
        env = "ATCR_INDEXER_VALKEY_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub valkey_url: Option<ValkeyUrl>,
    /// Prefix of every key (`P` in the key schema).
    #[arg(long, env = "ATCR_INDEXER_KEY_PREFIX", value_name = "PREFIX")]
    pub key_prefix: Option<String>,
    /// PEM file of the CA that signs the Valkey server's certificate (`rediss://` only).
    #[arg(long, env = "ATCR_INDEXER_VALKEY_TLS_CA", value_name = "PATH")]
    pub valkey_tls_ca: Option<PathBuf>,
    /// Most events written in one Valkey round trip.
    #[arg(
        long,
        env = "ATCR_INDEXER_VALKEY_BATCH_MAX_EVENTS",
        value_name = "COUNT"
    )]
    pub valkey_batch_max_events: Option<usize>,
    /// Events buffered between the socket and the writer.
    #[arg(long, env = "ATCR_INDEXER_VALKEY_QUEUE_CAPACITY", value_name = "COUNT")]
    pub valkey_queue_capacity: Option<usize>,
    /// Valkey command timeout, in seconds.
    #[arg(long, env = "ATCR_INDEXER_VALKEY_COMMAND_TIMEOUT", value_name = "SECS")]
    pub valkey_command_timeout: Option<u64>,
    /// Length `<prefix>:recent:pushes` is trimmed to.
    #[arg(long, env = "ATCR_INDEXER_VALKEY_RECENT_PUSHES", value_name = "COUNT")]
    pub valkey_recent_pushes: Option<usize>,
    /// `record` class TTL, in seconds.
    #[arg(long, env = "ATCR_INDEXER_TTL_RECORD", value_name = "SECS")]
    pub ttl_record: Option<u64>,
    /// `user` class TTL, in seconds.
    #[arg(long, env = "ATCR_INDEXER_TTL_USER", value_name = "SECS")]
    pub ttl_user: Option<u64>,
    /// `index` class TTL, in seconds.
    #[arg(long, env = "ATCR_INDEXER_TTL_INDEX", value_name = "SECS")]
    pub ttl_index: Option<u64>,
    /// `aggregate` class TTL, in seconds; 0 means no expiry.
    #[arg(long, env = "ATCR_INDEXER_TTL_AGGREGATE", value_name = "SECS")]
    pub ttl_aggregate: Option<u64>,
    /// `tombstone` class TTL, in seconds; at least the `record` TTL.
    #[arg(long, env = "ATCR_INDEXER_TTL_TOMBSTONE", value_name = "SECS")]
    pub ttl_tombstone: Option<u64>,
    /// PLC directory that serves `did:plc` documents, `http://` or `https://` origin.
    #[arg(long, env = "ATCR_INDEXER_IDENTITY_PLC_URL", value_name = "URL")]
    pub identity_plc_url: Option<String>,
    /// Avatar URL template; `{cid}` (required) and `{did}` are replaced.
    #[arg(
        long,
        env = "ATCR_INDEXER_IDENTITY_AVATAR_CDN",
        value_name = "TEMPLATE"
    )]
    pub identity_avatar_cdn: Option<String>,
    /// Identity resolutions waiting for a worker; more are dropped until the next request.
    #[arg(
        long,
        env = "ATCR_INDEXER_IDENTITY_QUEUE_CAPACITY",
        value_name = "COUNT"
    )]
    pub identity_queue_capacity: Option<usize>,
    /// Identity resolutions running at once.
    #[arg(long, env = "ATCR_INDEXER_IDENTITY_CONCURRENCY", value_name = "COUNT")]
    pub identity_concurrency: Option<usize>,
    /// Timeout of one identity HTTP request, in seconds.
    #[arg(
        long,
        env = "ATCR_INDEXER_IDENTITY_REQUEST_TIMEOUT",
        value_name = "SECS"
    )]
    pub identity_request_timeout: Option<u64>,
    /// Retries of one identity HTTP request after a timeout, network error, 5xx or 429.
    #[arg(long, env = "ATCR_INDEXER_IDENTITY_RETRIES", value_name = "COUNT")]
    pub identity_retries: Option<u32>,
    /// Seconds a failed identity is not asked again (except after an identity event).
    #[arg(
        long,
        env = "ATCR_INDEXER_IDENTITY_NEGATIVE_CACHE",
        value_name = "SECS"
    )]
    pub identity_negative_cache: Option<u64>,
    /// Identity requests per second (and burst) to one host.
    #[arg(
        long,
        env = "ATCR_INDEXER_IDENTITY_PER_HOST_RATE",
        value_name = "COUNT"
    )]
    pub identity_per_host_rate: Option<u32>,
    /// Seconds allowed for draining after SIGTERM.
    #[arg(long, env = "ATCR_INDEXER_SHUTDOWN_GRACE", value_name = "SECS")]
    pub shutdown_grace: Option<u64>,
    /// Address of the `/metrics`, `/healthz` and `/readyz` listener.
    #[arg(long, env = "ATCR_INDEXER_METRICS_LISTEN", value_name = "ADDRESS")]
    pub metrics_listen: Option<String>,
    /// Log line format.
    #[arg(long, env = "ATCR_INDEXER_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, an `EnvFilter` directive such as `info,atcr_indexer=debug`.
    #[arg(long, env = "ATCR_INDEXER_LOG_LEVEL", value_name = "DIRECTIVE")]
    pub log_level: Option<String>,
    /// For tests only: accept `did:web` identities on localhost.
    #[arg(
        long,
        env = "ATCR_INDEXER_TESTING_ALLOW_LOCALHOST_DID_WEB",
        value_name = "BOOL"
    )]
    #[arg(num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub testing_allow_localhost_did_web: Option<bool>,
}

/// Where to start reading when Valkey holds no cursor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NoCursor {
    /// Replay from the oldest event the host retains (`cursor=0`).
    #[default]
    Oldest,
    /// Start at the live tail (no cursor sent).
    Live,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A Valkey connection URL that may hold credentials; it prints only in redacted form.
#[derive(Clone, PartialEq, Eq)]
pub struct ValkeyUrl(String);

impl ValkeyUrl {
    /// The URL with its credentials, to open the connection; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl FromStr for ValkeyUrl {
    type Err = Infallible;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(ValkeyUrl(raw.to_owned()))
    }
}

impl fmt::Debug for ValkeyUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_tuple("ValkeyUrl")
            .field(&redacted_valkey_url(&self.0))
            .finish()
    }
}

impl fmt::Display for ValkeyUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&redacted_valkey_url(&self.0))
    }
}

/// Replaces the user information (username and password) of a URL with `***`.
///
/// Works on the text, not a parsed URL, so that even a URL that does not parse is redacted:
/// everything between `://` (or the start) and the last `@` is replaced.
pub fn redacted_valkey_url(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |index| index + 3);
    match url[authority_start..].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &url[..authority_start],
            &url[authority_start + at..]
        ),
        None => url.to_owned(),
    }
}

/// Why the configuration cannot be used. Every variant is fatal: the daemon must not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}", path.display())]
    Unreadable {
        /// The file named by `--config`.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("invalid config file {}: {message}", path.display())]
    Parse {
        /// The file named by `--config`.
        path: PathBuf,
        /// Line, column and the parser's message, which names an unknown key.
        message: String,
    },
    /// A setting has a value outside its allowed range or form.
    #[error("invalid {key} = {value}: {reason}")]
    Invalid {
        /// The setting, as `section.key` in the file.
        key: &'static str,
        /// The value as given, quoted; a Valkey URL appears redacted.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The resolved, validated settings of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `[jetstream]`: where and how to read the firehose.
    pub jetstream: JetstreamSettings,
    /// `[cursor]`: how the resume position is kept.
    pub cursor: CursorSettings,
    /// `[valkey]`: the cache being written.
    pub valkey: ValkeySettings,
    /// `[ttl]`: expiry of each key class.
    pub ttl: TtlSettings,
    /// `[identity]`: how DIDs become handles, PDS hosts and avatars.
    pub identity: IdentitySettings,
    /// `[shutdown]`: how the daemon stops.
    pub shutdown: ShutdownSettings,
    /// `[metrics]`: where metrics and health are served.
    pub metrics: MetricsSettings,
    /// `[log]`: what is logged and how.
    pub log: LogSettings,
    /// `[testing]`: switches for test setups only.
    pub testing: TestingSettings,
}

/// `[jetstream]`: where and how to read the firehose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetstreamSettings {
    /// `ws://` or `wss://` endpoints, tried in order; never empty.
    pub urls: Vec<Url>,
    /// `wantedCollections` values, each under `io.atcr.`; 1 to [`MAX_COLLECTIONS`] of them.
    pub collections: Vec<String>,
    /// zstd dictionary file; when set, the connection asks for `compress=true`.
    pub zstd_dictionary: Option<PathBuf>,
    /// Expected sha256 of the dictionary file, lowercase hex; only set with a dictionary.
    pub zstd_dictionary_sha256: Option<String>,
    /// `maxMessageSizeBytes` to send; `None` (the default) sends nothing.
    pub max_message_size_bytes: Option<NonZeroU32>,
    /// Largest decompressed or text frame accepted; above zero.
    pub max_event_bytes: usize,
    /// WebSocket connect timeout; above zero.
    pub connect_timeout: Duration,
    /// Reconnect after this long without any frame; above `ping_interval`.
    pub idle_timeout: Duration,
    /// Time between client pings; above zero.
    pub ping_interval: Duration,
    /// First reconnect delay; above zero.
    pub backoff_initial: Duration,
    /// Largest reconnect delay; at least `backoff_initial`.
    pub backoff_max: Duration,
}

impl JetstreamSettings {
    /// Whether to ask for zstd-compressed frames (`compress=true`): only with a dictionary.
    pub fn compress(&self) -> bool {
        self.zstd_dictionary.is_some()
    }
}

/// `[cursor]`: how the resume position is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorSettings {
    /// Consumer name; the key is `<prefix>:cursor:<name>`. Only `[A-Za-z0-9._-]`.
    pub name: String,
    /// Same-host reconnect rewind; at most [`MAX_REWIND_SECS`].
    pub rewind: Duration,
    /// Host-switch rewind; at least `rewind`, at most [`MAX_REWIND_SECS`].
    pub failover_rewind: Duration,
    /// Time between cursor saves; above zero.
    pub save_interval: Duration,
    /// Where to start when Valkey holds no cursor.
    pub no_cursor: NoCursor,
}

/// `[valkey]`: the cache being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValkeySettings {
    /// Connection URL, `redis://` or `rediss://`, with a host.
    pub url: ValkeyUrl,
    /// Prefix of every key; non-empty, only `[A-Za-z0-9._-]`.
    pub prefix: String,
    /// CA certificate (PEM) trusted for `rediss://`; without it, the system's roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Most events written in one round trip; above zero.
    pub batch_max_events: usize,
    /// Events buffered between the socket and the writer; above zero.
    pub queue_capacity: usize,
    /// Command timeout; above zero.
    pub command_timeout: Duration,
    /// Length `<prefix>:recent:pushes` is trimmed to; above zero.
    pub recent_pushes: usize,
}

/// `[ttl]`: expiry of each key class (see the key schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlSettings {
    /// `record` class; above zero.
    pub record: Duration,
    /// `user` class; above zero.
    pub user: Duration,
    /// `index` class; above zero.
    pub index: Duration,
    /// `aggregate` class; `None` means no expiry (0 in the file).
    pub aggregate: Option<Duration>,
    /// `tombstone` class; at least `record`.
    pub tombstone: Duration,
}

/// `[identity]`: how DIDs become handles, PDS hosts and avatars (see `crate::identity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    /// PLC directory origin, `http://` or `https://`, without path, query or fragment.
    pub plc_url: Url,
    /// Avatar URL template holding `{cid}` and optionally `{did}`.
    pub avatar_cdn: String,
    /// Resolutions waiting for a worker; above zero.
    pub queue_capacity: usize,
    /// Resolutions running at once; above zero.
    pub concurrency: usize,
    /// Timeout of one HTTP request; above zero.
    pub request_timeout: Duration,
    /// Retries of one HTTP request; at most [`MAX_IDENTITY_RETRIES`].
    pub retries: u32,
    /// How long a failed DID is not asked again; above zero.
    pub negative_cache: Duration,
    /// Requests per second, and burst, to one host.
    pub per_host_rate: NonZeroU32,
}

/// `[metrics]`: where metrics and health are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Listener address of `/metrics`, `/healthz` and `/readyz`.
    pub listen: std::net::SocketAddr,
}

/// `[shutdown]`: how the daemon stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownSettings {
    /// Time allowed for draining after SIGTERM before exiting anyway.
    pub grace: Duration,
}

/// `[log]`: what is logged and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Line format.
    pub format: LogFormat,
    /// A valid `tracing_subscriber::EnvFilter` directive.
    pub level: String,
}

/// `[testing]`: switches for test setups only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestingSettings {
    /// Accept `did:web` identities on localhost.
    pub allow_localhost_did_web: bool,
}

impl Settings {
    /// Merges defaults, the config file, environment and flags, and checks every value.
    ///
    /// Environment and flags are already merged by clap into `overrides`; without
    /// `overrides.config` no file is read.
    pub fn resolve(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let file = match &overrides.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Settings::from_layers(file, overrides)
    }

    /// Every resolved setting as TOML, in the config file's layout, with the Valkey URL redacted.
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(&self.to_file())
            .expect("settings hold only strings, integers, booleans and arrays of strings")
    }

    fn from_layers(mut file: FileConfig, overrides: &Overrides) -> Result<Settings, ConfigError> {
        file.apply(overrides);
        Ok(Settings {
            jetstream: JetstreamSettings::from_file(file.jetstream)?,
            cursor: CursorSettings::from_file(file.cursor)?,
            valkey: ValkeySettings::from_file(file.valkey)?,
            ttl: TtlSettings::from_file(file.ttl)?,
            identity: IdentitySettings::from_file(file.identity)?,
            shutdown: ShutdownSettings::from_file(file.shutdown),
            metrics: MetricsSettings::from_file(file.metrics)?,
            log: LogSettings::from_file(file.log)?,
            testing: TestingSettings::from_file(file.testing),
        })
    }

    fn to_file(&self) -> FileConfig {
        FileConfig {
            jetstream: self.jetstream.to_file(),
            cursor: self.cursor.to_file(),
            valkey: self.valkey.to_file(),
            ttl: self.ttl.to_file(),
            identity: self.identity.to_file(),
            shutdown: self.shutdown.to_file(),
            metrics: self.metrics.to_file(),
            log: self.log.to_file(),
            testing: self.testing.to_file(),
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    parse_file(&text, path)
}

fn parse_file(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|error| ConfigError::Parse {
        path: path.to_owned(),
        message: describe_toml_error(text, &error),
    })
}

/// Position and message only: toml's own `Display` quotes the source line, which may hold a
/// password.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            format!(
                "line {line}, column {column}: {}",
                redact_urls_in(error.message())
            )
        }
        None => redact_urls_in(error.message()),
    }
}

/// Redacts the user information of every `scheme://…@` in free text, such as a parser message
/// that quotes a Valkey URL written under the wrong key.
fn redact_urls_in(text: &str) -> String {
    let mut redacted = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find("://") {
        let (head, tail) = rest.split_at(index + 3);
        let end = tail.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'));
        let (token, after) = tail.split_at(end.unwrap_or(tail.len()));
        redacted.push_str(head);
        redacted.push_str(&redacted_valkey_url(token));
        rest = after;
    }
    redacted.push_str(rest);
    redacted
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    (line, column)
}

/// The TOML file as written: every key optional, unknown keys rejected. Also the shape that
/// [`Settings::redacted_toml`] prints.
#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    jetstream: JetstreamFile,
    cursor: CursorFile,
    valkey: ValkeyFile,
    ttl: TtlFile,
    identity: IdentityFile,
    shutdown: ShutdownFile,
    metrics: MetricsFile,
    log: LogFile,
    testing: TestingFile,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct JetstreamFile {
    urls: Option<Vec<String>>,
    collections: Option<Vec<String>>,
    zstd_dictionary: Option<PathBuf>,
    zstd_dictionary_sha256: Option<String>,
    max_message_size_bytes: Option<u32>,
    max_event_bytes: Option<usize>,
    connect_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    ping_interval_secs: Option<u64>,
    backoff_initial_ms: Option<u64>,
    backoff_max_secs: Option<u64>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct CursorFile {
    name: Option<String>,
    rewind_secs: Option<u64>,
    failover_rewind_secs: Option<u64>,
    save_interval_secs: Option<u64>,
    no_cursor: Option<NoCursor>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct ValkeyFile {
    url: Option<String>,
    prefix: Option<String>,
    tls_ca_file: Option<PathBuf>,
    batch_max_events: Option<usize>,
    queue_capacity: Option<usize>,
    command_timeout_secs: Option<u64>,
    recent_pushes: Option<usize>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct TtlFile {
    record_secs: Option<u64>,
    user_secs: Option<u64>,
    index_secs: Option<u64>,
    aggregate_secs: Option<u64>,
    tombstone_secs: Option<u64>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct IdentityFile {
    plc_url: Option<String>,
    avatar_cdn: Option<String>,
    queue_capacity: Option<usize>,
    concurrency: Option<usize>,
    request_timeout_secs: Option<u64>,
    retries: Option<u32>,
    negative_cache_secs: Option<u64>,
    per_host_rate: Option<u32>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct ShutdownFile {
    grace_secs: Option<u64>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct MetricsFile {
    listen: Option<String>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct LogFile {
    format: Option<LogFormat>,
    level: Option<String>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct TestingFile {
    allow_localhost_did_web: Option<bool>,
}

/// Replaces `slot` with `value` when `value` is set: the higher layer wins.
fn replace<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        slot.clone_from(value);
    }
}

impl FileConfig {
    fn apply(&mut self, overrides: &Overrides) {
        self.jetstream.apply(overrides);
        self.cursor.apply(overrides);
        self.valkey.apply(overrides);
        self.ttl.apply(overrides);
        self.identity.apply(overrides);
        replace(&mut self.shutdown.grace_secs, &overrides.shutdown_grace);
        replace(&mut self.metrics.listen, &overrides.metrics_listen);
        replace(&mut self.log.format, &overrides.log_format);
        replace(&mut self.log.level, &overrides.log_level);
        let allow_localhost = &overrides.testing_allow_localhost_did_web;
        replace(&mut self.testing.allow_localhost_did_web, allow_localhost);
    }
}

impl JetstreamFile {
    fn apply(&mut self, overrides: &Overrides) {
        replace(&mut self.urls, &overrides.jetstream_urls);
        replace(&mut self.collections, &overrides.collections);
        replace(&mut self.zstd_dictionary, &overrides.zstd_dictionary);
        replace(
            &mut self.zstd_dictionary_sha256,
            &overrides.zstd_dictionary_sha256,
        );
        replace(
            &mut self.max_message_size_bytes,
            &overrides.jetstream_max_message_size_bytes,
        );
        replace(
            &mut self.max_event_bytes,
            &overrides.jetstream_max_event_bytes,
        );
        replace(
            &mut self.connect_timeout_secs,
            &overrides.jetstream_connect_timeout,
        );
        replace(
            &mut self.idle_timeout_secs,
            &overrides.jetstream_idle_timeout,
        );
        replace(
            &mut self.ping_interval_secs,
            &overrides.jetstream_ping_interval,
        );
        replace(
            &mut self.backoff_initial_ms,
            &overrides.jetstream_backoff_initial_ms,
        );
        replace(&mut self.backoff_max_secs, &overrides.jetstream_backoff_max);
    }
}

impl CursorFile {
    fn apply(&mut self, overrides: &Overrides) {
        replace(&mut self.name, &overrides.cursor_name);
        replace(&mut self.rewind_secs, &overrides.cursor_rewind);
        replace(
            &mut self.failover_rewind_secs,
            &overrides.cursor_failover_rewind,
        );
        replace(
            &mut self.save_interval_secs,
            &overrides.cursor_save_interval,
        );
        replace(&mut self.no_cursor, &overrides.no_cursor);
    }
}

impl ValkeyFile {
    fn apply(&mut self, overrides: &Overrides) {
        let url = overrides
            .valkey_url
            .as_ref()
            .map(|url| url.expose_secret().to_owned());
        replace(&mut self.url, &url);
        replace(&mut self.prefix, &overrides.key_prefix);
        replace(&mut self.tls_ca_file, &overrides.valkey_tls_ca);
        replace(
            &mut self.batch_max_events,
            &overrides.valkey_batch_max_events,
        );
        replace(&mut self.queue_capacity, &overrides.valkey_queue_capacity);
        replace(
            &mut self.command_timeout_secs,
            &overrides.valkey_command_timeout,
        );
        replace(&mut self.recent_pushes, &overrides.valkey_recent_pushes);
    }
}

impl TtlFile {
    fn apply(&mut self, overrides: &Overrides) {
        replace(&mut self.record_secs, &overrides.ttl_record);
        replace(&mut self.user_secs, &overrides.ttl_user);
        replace(&mut self.index_secs, &overrides.ttl_index);
        replace(&mut self.aggregate_secs, &overrides.ttl_aggregate);
        replace(&mut self.tombstone_secs, &overrides.ttl_tombstone);
    }
}

impl IdentityFile {
    fn apply(&mut self, overrides: &Overrides) {
        replace(&mut self.plc_url, &overrides.identity_plc_url);
        replace(&mut self.avatar_cdn, &overrides.identity_avatar_cdn);
        replace(&mut self.queue_capacity, &overrides.identity_queue_capacity);
        replace(&mut self.concurrency, &overrides.identity_concurrency);
        replace(
            &mut self.request_timeout_secs,
            &overrides.identity_request_timeout,
        );
        replace(&mut self.retries, &overrides.identity_retries);
        replace(
            &mut self.negative_cache_secs,
            &overrides.identity_negative_cache,
        );
        replace(&mut self.per_host_rate, &overrides.identity_per_host_rate);
    }
}

fn invalid(key: &'static str, value: impl fmt::Debug, reason: impl Into<String>) -> ConfigError {
    let value = redact_urls_in(&format!("{value:?}"));
    ConfigError::Invalid {
        key,
        value,
        reason: redact_urls_in(&reason.into()),
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

/// A count or size that must be above zero, or its default.
fn nonzero<T>(key: &'static str, value: Option<T>, default: T) -> Result<T, ConfigError>
where
    T: Copy + Default + PartialEq + fmt::Debug,
{
    let value = value.unwrap_or(default);
    if value == T::default() {
        return Err(invalid(key, value, "must be greater than 0"));
    }
    Ok(value)
}

fn nonzero_secs(
    key: &'static str,
    value: Option<u64>,
    default: u64,
) -> Result<Duration, ConfigError> {
    nonzero(key, value, default).map(Duration::from_secs)
}

fn rewind_secs(
    key: &'static str,
    value: Option<u64>,
    default: u64,
) -> Result<Duration, ConfigError> {
    let value = value.unwrap_or(default);
    if value > MAX_REWIND_SECS {
        let reason = format!("must be at most {MAX_REWIND_SECS}, the legacy replay window");
        return Err(invalid(key, value, reason));
    }
    Ok(Duration::from_secs(value))
}

/// A name that goes into key names: no braces (hash tags) and no colons (separators).
fn key_part(
    key: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if value.is_empty() || !value.chars().all(allowed) {
        let reason = "must be non-empty and use only letters, digits, '.', '_' and '-'";
        return Err(invalid(key, value, reason));
    }
    Ok(value)
}

fn jetstream_urls(values: Option<Vec<String>>) -> Result<Vec<Url>, ConfigError> {
    let values = values.unwrap_or_else(|| strings(&DEFAULT_JETSTREAM_URLS));
    if values.is_empty() {
        return Err(invalid("jetstream.urls", values, "needs at least one URL"));
    }
    values.iter().map(|value| jetstream_url(value)).collect()
}

fn jetstream_url(value: &str) -> Result<Url, ConfigError> {
    const KEY: &str = "jetstream.urls";
    let url = Url::parse(value).map_err(|error| invalid(KEY, value, error.to_string()))?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(invalid(KEY, value, "scheme must be ws:// or wss://"));
    }
    if !url.has_host() {
        return Err(invalid(KEY, value, "has no host"));
    }
    Ok(url)
}

fn collections(values: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    const KEY: &str = "jetstream.collections";
    let values = values.unwrap_or_else(|| strings(&DEFAULT_COLLECTIONS));
    if values.is_empty() || values.len() > MAX_COLLECTIONS {
        return Err(invalid(
            KEY,
            values,
            format!("needs 1 to {MAX_COLLECTIONS} values"),
        ));
    }
    if let Some(bad) = values.iter().find(|value| !is_atcr_collection(value)) {
        let reason = "must be an io.atcr. NSID or an io.atcr. prefix ending in .*";
        return Err(invalid(KEY, bad, reason));
    }
    Ok(values)
}

/// `io.atcr.manifest`, `io.atcr.hold.*` and `io.atcr.*` pass; `io.atcr.ho*` does not.
fn is_atcr_collection(collection: &str) -> bool {
    let (base, wildcard) = match collection.strip_suffix(".*") {
        Some(base) => (base, true),
        None => (collection, false),
    };
    let under_atcr = base.starts_with("io.atcr.") || (wildcard && base == "io.atcr");
    let is_segment = |segment: &str| {
        !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    under_atcr && base.split('.').all(is_segment)
}

fn sha256_hex(value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    if value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid(
            "jetstream.zstd_dictionary_sha256",
            value,
            "must be 64 hex digits",
        ));
    }
    Ok(Some(value.to_ascii_lowercase()))
}

fn valkey_url(value: Option<String>) -> Result<ValkeyUrl, ConfigError> {
    const KEY: &str = "valkey.url";
    let value = value.unwrap_or_else(|| DEFAULT_VALKEY_URL.to_owned());
    let shown = redacted_valkey_url(&value);
    let url = Url::parse(&value).map_err(|error| invalid(KEY, &shown, error.to_string()))?;
    if !matches!(url.scheme(), "redis" | "rediss") {
        return Err(invalid(KEY, shown, "scheme must be redis:// or rediss://"));
    }
    if !url.has_host() {
        return Err(invalid(KEY, shown, "has no host"));
    }
    Ok(ValkeyUrl(value))
}

fn plc_url(value: Option<String>) -> Result<Url, ConfigError> {
    const KEY: &str = "identity.plc_url";
    let value = value.unwrap_or_else(|| DEFAULT_IDENTITY_PLC_URL.to_owned());
    let url = Url::parse(&value).map_err(|error| invalid(KEY, &value, error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(invalid(
            KEY,
            value,
            "must be an http:// or https:// URL with a host",
        ));
    }
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !bare || !url.username().is_empty() || url.password().is_some() {
        let reason = "must be an origin only: no credentials, path, query or fragment";
        return Err(invalid(KEY, value, reason));
    }
    Ok(url)
}

/// A template whose every expansion is an `http(s)` URL, and which names the blob.
fn avatar_cdn(value: Option<String>) -> Result<String, ConfigError> {
    const KEY: &str = "identity.avatar_cdn";
    let value = value.unwrap_or_else(|| DEFAULT_IDENTITY_AVATAR_CDN.to_owned());
    if !value.contains("{cid}") {
        return Err(invalid(KEY, value, "must contain {cid}"));
    }
    let sample = value
        .replace("{did}", "did:plc:abc")
        .replace("{cid}", "bafkrei");
    match Url::parse(&sample) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(value),
        _ => Err(invalid(
            KEY,
            value,
            "must expand to an http:// or https:// URL",
        )),
    }
}

fn identity_retries(value: Option<u32>) -> Result<u32, ConfigError> {
    let value = value.unwrap_or(DEFAULT_IDENTITY_RETRIES);
    if value > MAX_IDENTITY_RETRIES {
        let reason = format!("must be at most {MAX_IDENTITY_RETRIES}");
        return Err(invalid("identity.retries", value, reason));
    }
    Ok(value)
}

fn per_host_rate(value: Option<u32>) -> Result<NonZeroU32, ConfigError> {
    let value = value.unwrap_or(DEFAULT_IDENTITY_PER_HOST_RATE);
    let reason = "must be greater than 0";
    NonZeroU32::new(value).ok_or_else(|| invalid("identity.per_host_rate", value, reason))
}

fn log_level(value: Option<String>) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
    if value.trim().is_empty() {
        return Err(invalid("log.level", value, "must not be empty"));
    }
    match tracing_subscriber::EnvFilter::try_new(&value) {
        Ok(_) => Ok(value),
        Err(error) => Err(invalid("log.level", value, error.to_string())),
    }
}

fn secs(duration: Duration) -> Option<u64> {
    Some(duration.as_secs())
}

impl JetstreamSettings {
    fn from_file(file: JetstreamFile) -> Result<Self, ConfigError> {
        let max_message_size = file
            .max_message_size_bytes
            .unwrap_or(DEFAULT_MAX_MESSAGE_SIZE_BYTES);
        let settings = JetstreamSettings {
            urls: jetstream_urls(file.urls)?,
            collections: collections(file.collections)?,
            zstd_dictionary: file.zstd_dictionary,
            zstd_dictionary_sha256: sha256_hex(file.zstd_dictionary_sha256)?,
            max_message_size_bytes: NonZeroU32::new(max_message_size),
            max_event_bytes: nonzero(
                "jetstream.max_event_bytes",
                file.max_event_bytes,
                DEFAULT_MAX_EVENT_BYTES,
            )?,
            connect_timeout: nonzero_secs(
                "jetstream.connect_timeout_secs",
                file.connect_timeout_secs,
                DEFAULT_CONNECT_TIMEOUT_SECS,
            )?,
            idle_timeout: nonzero_secs(
                "jetstream.idle_timeout_secs",
                file.idle_timeout_secs,
                DEFAULT_IDLE_TIMEOUT_SECS,
            )?,
            ping_interval: nonzero_secs(
                "jetstream.ping_interval_secs",
                file.ping_interval_secs,
                DEFAULT_PING_INTERVAL_SECS,
            )?,
            backoff_initial: nonzero(
                "jetstream.backoff_initial_ms",
                file.backoff_initial_ms,
                DEFAULT_BACKOFF_INITIAL_MS,
            )
            .map(Duration::from_millis)?,
            backoff_max: Duration::from_secs(
                file.backoff_max_secs.unwrap_or(DEFAULT_BACKOFF_MAX_SECS),
            ),
        };
        settings.checked()
    }

    /// Rules that tie two settings together.
    fn checked(self) -> Result<Self, ConfigError> {
        if self.zstd_dictionary_sha256.is_some() && self.zstd_dictionary.is_none() {
            let reason = "needs jetstream.zstd_dictionary";
            return Err(invalid(
                "jetstream.zstd_dictionary_sha256",
                &self.zstd_dictionary_sha256,
                reason,
            ));
        }
        if self.ping_interval >= self.idle_timeout {
            let reason = format!(
                "must be below jetstream.idle_timeout_secs ({})",
                self.idle_timeout.as_secs()
            );
            return Err(invalid(
                "jetstream.ping_interval_secs",
                self.ping_interval.as_secs(),
                reason,
            ));
        }
        if self.backoff_max < self.backoff_initial {
            let reason = "must be at least jetstream.backoff_initial_ms";
            return Err(invalid(
                "jetstream.backoff_max_secs",
                self.backoff_max.as_secs(),
                reason,
            ));
        }
        Ok(self)
    }

    fn to_file(&self) -> JetstreamFile {
        let urls = self
            .urls
            .iter()
            .map(|url| url.as_str().to_owned())
            .collect();
        let dictionary = self.zstd_dictionary.as_ref();
        JetstreamFile {
            urls: Some(urls),
            collections: Some(self.collections.clone()),
            zstd_dictionary: dictionary
                .map(|path| PathBuf::from(path.to_string_lossy().into_owned())),
            zstd_dictionary_sha256: self.zstd_dictionary_sha256.clone(),
            max_message_size_bytes: Some(self.max_message_size_bytes.map_or(0, NonZeroU32::get)),
            max_event_bytes: Some(self.max_event_bytes),
            connect_timeout_secs: secs(self.connect_timeout),
            idle_timeout_secs: secs(self.idle_timeout),
            ping_interval_secs: secs(self.ping_interval),
            backoff_initial_ms: u64::try_from(self.backoff_initial.as_millis()).ok(),
            backoff_max_secs: secs(self.backoff_max),
        }
    }
}

impl CursorSettings {
    fn from_file(file: CursorFile) -> Result<Self, ConfigError> {
        let settings = CursorSettings {
            name: key_part("cursor.name", file.name, DEFAULT_CURSOR_NAME)?,
            rewind: rewind_secs(
                "cursor.rewind_secs",
                file.rewind_secs,
                DEFAULT_CURSOR_REWIND_SECS,
            )?,
            failover_rewind: rewind_secs(
                "cursor.failover_rewind_secs",
                file.failover_rewind_secs,
                DEFAULT_CURSOR_FAILOVER_REWIND_SECS,
            )?,
            save_interval: nonzero_secs(
                "cursor.save_interval_secs",
                file.save_interval_secs,
                DEFAULT_CURSOR_SAVE_INTERVAL_SECS,
            )?,
            no_cursor: file.no_cursor.unwrap_or_default(),
        };
        if settings.failover_rewind < settings.rewind {
            let reason = "must be at least cursor.rewind_secs";
            let value = settings.failover_rewind.as_secs();
            return Err(invalid("cursor.failover_rewind_secs", value, reason));
        }
        Ok(settings)
    }

    fn to_file(&self) -> CursorFile {
        CursorFile {
            name: Some(self.name.clone()),
            rewind_secs: secs(self.rewind),
            failover_rewind_secs: secs(self.failover_rewind),
            save_interval_secs: secs(self.save_interval),
            no_cursor: Some(self.no_cursor),
        }
    }
}

impl ValkeySettings {
    fn from_file(file: ValkeyFile) -> Result<Self, ConfigError> {
        Ok(ValkeySettings {
            url: valkey_url(file.url)?,
            prefix: key_part("valkey.prefix", file.prefix, DEFAULT_KEY_PREFIX)?,
            tls_ca_file: file.tls_ca_file,
            batch_max_events: nonzero(
                "valkey.batch_max_events",
                file.batch_max_events,
                DEFAULT_BATCH_MAX_EVENTS,
            )?,
            queue_capacity: nonzero(
                "valkey.queue_capacity",
                file.queue_capacity,
                DEFAULT_QUEUE_CAPACITY,
            )?,
            command_timeout: nonzero_secs(
                "valkey.command_timeout_secs",
                file.command_timeout_secs,
                DEFAULT_COMMAND_TIMEOUT_SECS,
            )?,
            recent_pushes: nonzero(
                "valkey.recent_pushes",
                file.recent_pushes,
                DEFAULT_RECENT_PUSHES,
            )?,
        })
    }

    fn to_file(&self) -> ValkeyFile {
        ValkeyFile {
            url: Some(self.url.to_string()),
            prefix: Some(self.prefix.clone()),
            tls_ca_file: self.tls_ca_file.clone(),
            batch_max_events: Some(self.batch_max_events),
            queue_capacity: Some(self.queue_capacity),
            command_timeout_secs: secs(self.command_timeout),
            recent_pushes: Some(self.recent_pushes),
        }
    }
}

impl TtlSettings {
    fn from_file(file: TtlFile) -> Result<Self, ConfigError> {
        let aggregate = file.aggregate_secs.unwrap_or(DEFAULT_TTL_AGGREGATE_SECS);
        let settings = TtlSettings {
            record: nonzero_secs("ttl.record_secs", file.record_secs, DEFAULT_TTL_RECORD_SECS)?,
            user: nonzero_secs("ttl.user_secs", file.user_secs, DEFAULT_TTL_USER_SECS)?,
            index: nonzero_secs("ttl.index_secs", file.index_secs, DEFAULT_TTL_INDEX_SECS)?,
            aggregate: (aggregate > 0).then(|| Duration::from_secs(aggregate)),
            tombstone: nonzero_secs(
                "ttl.tombstone_secs",
                file.tombstone_secs,
                DEFAULT_TTL_TOMBSTONE_SECS,
            )?,
        };
        if settings.tombstone < settings.record {
            let reason = "must be at least ttl.record_secs, or a delete is forgotten too early";
            return Err(invalid(
                "ttl.tombstone_secs",
                settings.tombstone.as_secs(),
                reason,
            ));
        }
        Ok(settings)
    }

    fn to_file(&self) -> TtlFile {
        TtlFile {
            record_secs: secs(self.record),
            user_secs: secs(self.user),
            index_secs: secs(self.index),
            aggregate_secs: Some(self.aggregate.map_or(0, |ttl| ttl.as_secs())),
            tombstone_secs: secs(self.tombstone),
        }
    }
}

impl IdentitySettings {
    fn from_file(file: IdentityFile) -> Result<Self, ConfigError> {
        Ok(IdentitySettings {
            plc_url: plc_url(file.plc_url)?,
            avatar_cdn: avatar_cdn(file.avatar_cdn)?,
            queue_capacity: nonzero(
                "identity.queue_capacity",
                file.queue_capacity,
                DEFAULT_IDENTITY_QUEUE_CAPACITY,
            )?,
            concurrency: nonzero(
                "identity.concurrency",
                file.concurrency,
                DEFAULT_IDENTITY_CONCURRENCY,
            )?,
            request_timeout: nonzero_secs(
                "identity.request_timeout_secs",
                file.request_timeout_secs,
                DEFAULT_IDENTITY_REQUEST_TIMEOUT_SECS,
            )?,
            retries: identity_retries(file.retries)?,
            negative_cache: nonzero_secs(
                "identity.negative_cache_secs",
                file.negative_cache_secs,
                DEFAULT_IDENTITY_NEGATIVE_CACHE_SECS,
            )?,
            per_host_rate: per_host_rate(file.per_host_rate)?,
        })
    }

    fn to_file(&self) -> IdentityFile {
        IdentityFile {
            plc_url: Some(self.plc_url.as_str().to_owned()),
            avatar_cdn: Some(self.avatar_cdn.clone()),
            queue_capacity: Some(self.queue_capacity),
            concurrency: Some(self.concurrency),
            request_timeout_secs: secs(self.request_timeout),
            retries: Some(self.retries),
            negative_cache_secs: secs(self.negative_cache),
            per_host_rate: Some(self.per_host_rate.get()),
        }
    }
}

impl MetricsSettings {
    fn from_file(file: MetricsFile) -> Result<Self, ConfigError> {
        let listen = file
            .listen
            .unwrap_or_else(|| DEFAULT_METRICS_LISTEN.to_owned());
        let parsed = listen.parse().map_err(|_| ConfigError::Invalid {
            key: "metrics.listen",
            value: listen.clone(),
            reason: "expected an IP address and port, such as 127.0.0.1:9464".to_owned(),
        })?;
        Ok(MetricsSettings { listen: parsed })
    }

    fn to_file(&self) -> MetricsFile {
        MetricsFile {
            listen: Some(self.listen.to_string()),
        }
    }
}

impl ShutdownSettings {
    fn from_file(file: ShutdownFile) -> Self {
        let grace = file.grace_secs.unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS);
        ShutdownSettings {
            grace: Duration::from_secs(grace),
        }
    }

    fn to_file(&self) -> ShutdownFile {
        ShutdownFile {
            grace_secs: secs(self.grace),
        }
    }
}

impl LogSettings {
    fn from_file(file: LogFile) -> Result<Self, ConfigError> {
        Ok(LogSettings {
            format: file.format.unwrap_or_default(),
            level: log_level(file.level)?,
        })
    }

    fn to_file(&self) -> LogFile {
        LogFile {
            format: Some(self.format),
            level: Some(self.level.clone()),
        }
    }
}

impl TestingSettings {
    fn from_file(file: TestingFile) -> Self {
        TestingSettings {
            allow_localhost_did_web: file.allow_localhost_did_web.unwrap_or(false),
        }
    }

    fn to_file(&self) -> TestingFile {
        TestingFile {
            allow_localhost_did_web: Some(self.allow_localhost_did_web),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    const SHIPPED: &str = include_str!("../config/indexer.toml");

    fn defaults() -> Settings {
        Settings::resolve(&Overrides::default()).expect("built-in defaults are valid")
    }

    fn from_text(text: &str, overrides: &Overrides) -> Result<Settings, ConfigError> {
        let file = parse_file(text, Path::new("test.toml"))?;
        Settings::from_layers(file, overrides)
    }

    fn error_for(text: &str) -> String {
        match from_text(text, &Overrides::default()) {
            Ok(settings) => panic!("expected an error for {text:?}, got {settings:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn run_overrides(args: &[&str]) -> Overrides {
        let argv = ["atcr-indexer", "run"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Run(overrides),
            }) => overrides,
            other => panic!("expected `run` to parse, got {other:?}"),
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_environment_twin() {
        let command = Cli::command();
        let run = command.find_subcommand("run").expect("run is defined");
        for arg in run.get_arguments().filter(|arg| arg.get_long().is_some()) {
            let env = arg.get_env().and_then(|env| env.to_str());
            let long = arg.get_long().unwrap_or_default();
            assert!(
                env.is_some_and(|env| env.starts_with("ATCR_INDEXER_")) || long == "help",
                "--{long} has environment variable {env:?}"
            );
        }
    }

    #[test]
    fn defaults_match_constants() {
        let settings = defaults();
        assert_eq!(settings.jetstream.urls.len(), 4);
        assert_eq!(
            settings.jetstream.urls[0].as_str(),
            DEFAULT_JETSTREAM_URLS[0]
        );
        assert_eq!(settings.jetstream.collections, ["io.atcr.*"]);
        assert!(!settings.jetstream.compress());
        assert_eq!(settings.jetstream.max_message_size_bytes, None);
        assert_eq!(settings.jetstream.max_event_bytes, 16 * 1024 * 1024);
        assert_eq!(
            settings.jetstream.backoff_initial,
            Duration::from_millis(250)
        );
        assert_eq!(settings.cursor.name, "jetstream");
        assert_eq!(settings.cursor.no_cursor, NoCursor::Oldest);
        assert_eq!(
            settings.valkey.url.expose_secret(),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(settings.valkey.prefix, "atcr");
        assert_eq!(settings.ttl.aggregate, None);
        assert_eq!(settings.ttl.tombstone, Duration::from_secs(172_800));
        assert_eq!(settings.log.format, LogFormat::Text);
        assert!(!settings.testing.allow_localhost_did_web);
    }

    #[test]
    fn shipped_file_resolves_to_the_defaults() {
        let shipped = from_text(SHIPPED, &Overrides::default());
        assert_eq!(shipped.expect("config/indexer.toml resolves"), defaults());
    }

    #[test]
    fn shipped_file_lists_every_setting() {
        let shipped: toml::Table = toml::from_str(SHIPPED).expect("shipped file is TOML");
        let printed: toml::Table = toml::from_str(&defaults().redacted_toml()).expect("TOML");
        for (section, keys) in &printed {
            let keys = keys.as_table().expect("every top-level entry is a section");
            for key in keys.keys() {
                let present = shipped
                    .get(section)
                    .and_then(|table| table.get(key))
                    .is_some();
                assert!(present, "config/indexer.toml lacks {section}.{key}");
            }
        }
    }

    #[test]
    fn file_overrides_defaults() {
        let text =
            "[ttl]\nrecord_secs = 60\n[cursor]\nno_cursor = \"live\"\n[log]\nformat = \"json\"";
        let settings = from_text(text, &Overrides::default()).expect("valid file");
        assert_eq!(settings.ttl.record, Duration::from_secs(60));
        assert_eq!(settings.cursor.no_cursor, NoCursor::Live);
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(
            settings.ttl.user,
            Duration::from_secs(DEFAULT_TTL_USER_SECS)
        );
    }

    #[test]
    fn flag_overrides_file() {
        let text = "[ttl]\nrecord_secs = 60\n[valkey]\nprefix = \"from-file\"";
        let overrides = run_overrides(&["--ttl-record", "120", "--no-cursor", "live"]);
        let settings = from_text(text, &overrides).expect("valid file and flags");
        assert_eq!(settings.ttl.record, Duration::from_secs(120));
        assert_eq!(settings.cursor.no_cursor, NoCursor::Live);
        assert_eq!(settings.valkey.prefix, "from-file");
    }

    #[test]
    fn resolve_reads_the_named_file() {
        let mut file = tempfile::NamedTempFile::new().expect("temporary file");
        std::io::Write::write_all(&mut file, b"[valkey]\nprefix = \"staging\"\n").expect("write");
        let overrides = Overrides {
            config: Some(file.path().to_owned()),
            ..Overrides::default()
        };
        let settings = Settings::resolve(&overrides).expect("valid file");
        assert_eq!(settings.valkey.prefix, "staging");
    }

    #[test]
    fn missing_file_is_unreadable() {
        let path = PathBuf::from("/nonexistent/atcr-indexer.toml");
        let overrides = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let error = Settings::resolve(&overrides).expect_err("file does not exist");
        assert!(
            matches!(error, ConfigError::Unreadable { .. }),
            "got {error:?}"
        );
    }

    #[test]
    fn unknown_key_is_rejected_and_named() {
        let error = error_for("[jetstream]\nidle_timeout = 5\n");
        assert!(error.contains("idle_timeout"), "{error}");
        assert!(error.contains("line 2"), "{error}");
        let error = error_for("[valkee]\nurl = \"redis://host\"\n");
        assert!(error.contains("valkee"), "{error}");
    }

    #[test]
    fn repeated_jetstream_url_keeps_order() {
        let second = "wss://jetstream.us-west.bsky.network/subscribe";
        let first = "ws://localhost:6008/subscribe";
        let overrides = run_overrides(&["--jetstream-url", second, "--jetstream-url", first]);
        let settings = Settings::resolve(&overrides).expect("valid URLs");
        let urls: Vec<&str> = settings.jetstream.urls.iter().map(Url::as_str).collect();
        assert_eq!(urls, [second, first]);
    }

    #[test]
    fn jetstream_url_needs_websocket_scheme() {
        let error = error_for("[jetstream]\nurls = [\"https://jetstream.example/subscribe\"]");
        assert!(error.contains("jetstream.urls"), "{error}");
        assert!(
            error.contains("https://jetstream.example/subscribe"),
            "{error}"
        );
        assert!(error_for("[jetstream]\nurls = []").contains("at least one"));
    }

    #[test]
    fn valkey_url_needs_redis_scheme() {
        let error = error_for("[valkey]\nurl = \"http://cache:6379\"");
        assert!(
            error.contains("valkey.url") && error.contains("redis://"),
            "{error}"
        );
        let accepted = from_text(
            "[valkey]\nurl = \"rediss://cache:6380/2\"",
            &Overrides::default(),
        );
        assert!(accepted.is_ok(), "{accepted:?}");
    }

    #[test]
    fn collections_must_be_under_io_atcr() {
        for bad in [
            "app.bsky.*",
            "io.atcr",
            "io.atcr.",
            "io.atcr.ho*",
            "io.atcrx.manifest",
        ] {
            let error = error_for(&format!("[jetstream]\ncollections = [{bad:?}]"));
            assert!(error.contains(bad), "{error}");
        }
        let good = "[jetstream]\ncollections = [\"io.atcr.manifest\", \"io.atcr.hold.*\"]";
        assert!(from_text(good, &Overrides::default()).is_ok());
    }

    #[test]
    fn prefix_rejects_separators_and_hash_tags() {
        for bad in ["", "a:b", "{atcr}", "at cr"] {
            let error = error_for(&format!("[valkey]\nprefix = {bad:?}"));
            assert!(error.contains("valkey.prefix"), "{error}");
        }
        let overrides = run_overrides(&["--key-prefix", "atcr-staging.v1_0"]);
        assert!(Settings::resolve(&overrides).is_ok());
    }

    #[test]
    fn zero_ttls_are_rejected_except_aggregate() {
        for key in ["record_secs", "user_secs", "index_secs", "tombstone_secs"] {
            let error = error_for(&format!("[ttl]\n{key} = 0"));
            assert!(error.contains(&format!("ttl.{key} = 0")), "{error}");
        }
        let settings = from_text("[ttl]\naggregate_secs = 30", &Overrides::default());
        assert_eq!(
            settings.expect("valid").ttl.aggregate,
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn tombstone_must_outlive_record() {
        let error = error_for("[ttl]\nrecord_secs = 7200\ntombstone_secs = 3600");
        assert!(error.contains("ttl.tombstone_secs = 3600"), "{error}");
    }

    #[test]
    fn cross_setting_rules_hold() {
        let error = error_for("[jetstream]\nping_interval_secs = 90");
        assert!(error.contains("jetstream.ping_interval_secs"), "{error}");
        let error = error_for("[cursor]\nrewind_secs = 120");
        assert!(error.contains("cursor.failover_rewind_secs"), "{error}");
        let error = error_for("[cursor]\nfailover_rewind_secs = 90000");
        assert!(error.contains("replay window"), "{error}");
        let error = error_for("[jetstream]\nzstd_dictionary_sha256 = \"00\"");
        assert!(error.contains("64 hex"), "{error}");
    }

    #[test]
    fn dictionary_turns_compression_on() {
        let hash = "B8D77B46933ACEECBDD5275A01241EFC985C970C78162B8150CF67A26522F70C";
        let overrides = run_overrides(&[
            "--zstd-dictionary",
            "/etc/dict",
            "--zstd-dictionary-sha256",
            hash,
        ]);
        let settings = Settings::resolve(&overrides).expect("valid dictionary settings");
        assert!(settings.jetstream.compress());
        assert_eq!(
            settings.jetstream.zstd_dictionary_sha256,
            Some(hash.to_ascii_lowercase())
        );
    }

    #[test]
    fn identity_defaults_match_constants() {
        let identity = defaults().identity;
        assert_eq!(identity.plc_url.as_str(), "https://plc.directory/");
        assert_eq!(identity.avatar_cdn, DEFAULT_IDENTITY_AVATAR_CDN);
        assert_eq!(identity.queue_capacity, 10_000);
        assert_eq!(identity.concurrency, 8);
        assert_eq!(identity.request_timeout, Duration::from_secs(10));
        assert_eq!(identity.retries, 3);
        assert_eq!(identity.negative_cache, Duration::from_secs(600));
        assert_eq!(identity.per_host_rate.get(), 10);
    }

    #[test]
    fn identity_flags_override_file() {
        let text = "[identity]\nconcurrency = 2\nretries = 5\nplc_url = \"http://127.0.0.1:2582\"";
        let overrides = run_overrides(&[
            "--identity-concurrency",
            "4",
            "--identity-per-host-rate",
            "3",
            "--identity-negative-cache",
            "30",
        ]);
        let identity = from_text(text, &overrides).expect("valid").identity;
        assert_eq!(identity.concurrency, 4);
        assert_eq!(identity.retries, 5);
        assert_eq!(identity.per_host_rate.get(), 3);
        assert_eq!(identity.negative_cache, Duration::from_secs(30));
        assert_eq!(identity.plc_url.as_str(), "http://127.0.0.1:2582/");
    }

    #[test]
    fn identity_zero_sizes_are_rejected() {
        let keys = [
            "queue_capacity",
            "concurrency",
            "request_timeout_secs",
            "negative_cache_secs",
            "per_host_rate",
        ];
        for key in keys {
            let error = error_for(&format!("[identity]\n{key} = 0"));
            assert!(error.contains(&format!("identity.{key} = 0")), "{error}");
        }
        let settings = from_text("[identity]\nretries = 0", &Overrides::default());
        assert_eq!(settings.expect("no retries is valid").identity.retries, 0);
        let error = error_for("[identity]\nretries = 11");
        assert!(error.contains("identity.retries = 11"), "{error}");
    }

    #[test]
    fn identity_plc_url_must_be_an_origin() {
        for bad in [
            "ftp://plc.example",
            "https://plc.example/v1",
            "https://plc.example/?x=1",
            "https://user:secret@plc.example",
            "plc.example",
        ] {
            let error = error_for(&format!("[identity]\nplc_url = {bad:?}"));
            assert!(error.contains("identity.plc_url"), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn identity_avatar_cdn_must_name_the_blob() {
        for bad in ["https://cdn.example/{did}", "cdn.example/{cid}", "{cid}"] {
            let error = error_for(&format!("[identity]\navatar_cdn = {bad:?}"));
            assert!(error.contains("identity.avatar_cdn"), "{error}");
        }
        let good = "[identity]\navatar_cdn = \"http://127.0.0.1:9/img/{cid}\"";
        assert!(from_text(good, &Overrides::default()).is_ok());
    }

    #[test]
    fn bad_log_level_is_rejected() {
        let error = error_for("[log]\nlevel = \"atcr_indexer=loud\"");
        assert!(error.contains("log.level"), "{error}");
    }

    #[test]
    fn redaction_hides_credentials() {
        let cases = [
            ("redis://user:secret@host:6379/0", "redis://***@host:6379/0"),
            ("rediss://:secret@host", "rediss://***@host"),
            ("redis://host:6379", "redis://host:6379"),
            ("user:secret@host", "***@host"),
        ];
        for (url, redacted) in cases {
            assert_eq!(redacted_valkey_url(url), redacted);
        }
    }

    #[test]
    fn password_never_printed() {
        for url in ["redis://user:secret@host:6379/0", "rediss://:secret@host"] {
            let overrides = run_overrides(&["--valkey-url", url]);
            let settings = Settings::resolve(&overrides).expect("valid URL");
            assert_eq!(settings.valkey.url.expose_secret(), url);
            let printed = [
                settings.redacted_toml(),
                format!("{settings:?}"),
                format!("{overrides:?}"),
            ];
            for text in printed {
                assert!(!text.contains("secret") && text.contains("***"), "{text}");
            }
        }
    }

    #[test]
    fn password_never_in_errors() {
        let texts = [
            "[valkey]\nurl = \"http://user:secret@host\"",
            "[valkey]\nurl = \"redis://user:secret@host:notaport\"",
            "[valkey]\nurl = \"redis://user:secret@\"",
            "[valkey]\nurl = \"redis://user:secret@host\nprefix = 1",
            "[jetstream]\nurls = \"redis://:secret@host\"",
            "[jetstream]\nurls = [\"redis://:secret@host\"]",
        ];
        for text in texts {
            let error = error_for(text);
            assert!(!error.contains("secret"), "{error}");
            assert!(!format!("{error:?}").contains("secret"), "{error:?}");
        }
    }

    #[test]
    fn help_hides_the_valkey_url_from_the_environment() {
        let command = Cli::command();
        let run = command.find_subcommand("run").expect("run is defined");
        let arg = run
            .get_arguments()
            .find(|arg| arg.get_long() == Some("valkey-url"));
        assert!(arg
            .expect("--valkey-url is defined")
            .is_hide_env_values_set());
    }

    #[test]
    fn urls_in_free_text_are_redacted() {
        let text = "invalid type: string \"redis://u:secret@h/0\", expected `rediss://:secret@x`";
        let expected = "invalid type: string \"redis://***@h/0\", expected `rediss://***@x`";
        assert_eq!(redact_urls_in(text), expected);
    }

    #[test]
    fn redacted_toml_resolves_back() {
        let overrides = run_overrides(&[
            "--valkey-url",
            "redis://host:6379/1",
            "--ttl-aggregate",
            "9",
        ]);
        let settings = Settings::resolve(&overrides).expect("valid");
        let again = from_text(&settings.redacted_toml(), &Overrides::default());
        assert_eq!(again.expect("printed settings resolve"), settings);
    }

    #[test]
    fn testing_switch_does_not_swallow_the_did() {
        let argv = [
            "atcr-indexer",
            "inspect",
            "--testing-allow-localhost-did-web",
            "did:web:x",
        ];
        let Ok(Cli {
            command: Command::Inspect { overrides, did, .. },
        }) = Cli::try_parse_from(argv)
        else {
            panic!("expected `inspect` to parse");
        };
        assert_eq!(did, "did:web:x");
        assert_eq!(overrides.testing_allow_localhost_did_web, Some(true));
        let overrides = run_overrides(&["--testing-allow-localhost-did-web=false"]);
        assert_eq!(overrides.testing_allow_localhost_did_web, Some(false));
    }
}
