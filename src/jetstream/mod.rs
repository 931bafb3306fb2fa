//! The Jetstream v1 connection: subscribe, read frames, turn them into plans, hand them on.
//!
//! It owns the socket and nothing else. Frames become plans on this task (decompression,
//! decoding, validation and indexing are CPU work without I/O) and go to the writer through a
//! bounded channel: when the writer stalls the channel fills, this task stops reading, and TCP
//! pushes back on the server. Reconnects back off exponentially with jitter, move to the next
//! host when one fails, and resume a little before the last event received.

pub mod frame;

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::JetstreamSettings;
use crate::event;
use crate::index::{Indexer, Outcome, Plan};
use crate::metrics;
use frame::{Dictionary, FrameDecoder};

/// One planned event on its way to the writer.
#[derive(Debug)]
pub struct Item {
    /// The plan.
    pub plan: Plan,
    /// Index of the host that delivered it in the configured list.
    pub host: usize,
    /// Replay generation: bumped when the daemon restarts from the oldest event after Valkey
    /// lost its data, so the writer can tell old positions from new ones.
    pub epoch: u64,
}

/// Where to start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The live tail (no cursor).
    Live,
    /// Replay from this `time_us` (inclusive); 0 is the oldest retained event.
    At(i64),
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Shutdown,
    Replay,
    Idle,
    Closed,
    Error,
}

impl Ended {
    fn as_str(self) -> &'static str {
        match self {
            Ended::Shutdown => "shutdown",
            Ended::Replay => "replay",
            Ended::Idle => "idle_timeout",
            Ended::Closed => "closed",
            Ended::Error => "error",
        }
    }
}

/// The client side of one WebSocket connection.
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What became of one message.
enum Handled {
    Skipped,
    Sent { new_event: bool },
    End(Ended),
}

/// The clocks of one connection.
struct Timers {
    idle_deadline: Instant,
    ping: tokio::time::Interval,
    summary: tokio::time::Interval,
}

impl Timers {
    fn new(settings: &JetstreamSettings) -> Timers {
        let now = Instant::now();
        Timers {
            idle_deadline: now + settings.idle_timeout,
            ping: tokio::time::interval_at(now + settings.ping_interval, settings.ping_interval),
            summary: tokio::time::interval_at(now + SUMMARY_INTERVAL, SUMMARY_INTERVAL),
        }
    }
}

/// The WebSocket's own limit on one message, above the event cap so that an event between the
/// two is counted and skipped by the frame decoder instead of failing the connection (and being
/// delivered again after every reconnect). Only a message past this limit ends the connection.
fn socket_limit(max_event_bytes: usize) -> usize {
    max_event_bytes
        .saturating_mul(4)
        .max(max_event_bytes.saturating_add(SOCKET_LIMIT_MARGIN))
}

/// At least this much room between the event cap and the socket's limit.
const SOCKET_LIMIT_MARGIN: usize = 16 << 20;

/// An event stamped further than this ahead of our clock is refused: Jetstream stamps events
/// with its own clock, and a future cursor would resume in the future and skip everything.
const FUTURE_TOLERANCE_US: i64 = 3_600_000_000;

/// Reading further than this behind the wall clock is a replay.
const REPLAY_BEHIND_US: i64 = 60_000_000;

/// A replay ends when the reader is this close to the wall clock.
const REPLAY_CAUGHT_UP_US: i64 = 10_000_000;

/// Whether the reader is replaying history, for one log line at each end and a gauge.
#[derive(Default)]
struct ReplayWatch {
    since: Option<(std::time::Instant, u64)>,
}

impl ReplayWatch {
    fn observe(&mut self, time_us: i64) {
        let behind = crate::writer::now_us() - time_us;
        match &mut self.since {
            None if behind > REPLAY_BEHIND_US => {
                tracing::info!(behind_secs = behind / 1_000_000, "replay begun");
                metrics::replaying(true);
                self.since = Some((std::time::Instant::now(), 0));
            }
            Some((started, events)) if behind < REPLAY_CAUGHT_UP_US => {
                tracing::info!(
                    events = *events + 1,
                    seconds = started.elapsed().as_secs(),
                    "replay finished"
                );
                metrics::replaying(false);
                self.since = None;
            }
            Some((_, events)) => *events += 1,
            None => {}
        }
    }
}

/// How often the reader logs its summary of bad input (also at every disconnect).
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// Reads Jetstream until cancelled.
pub struct Reader {
    settings: JetstreamSettings,
    rewind: Duration,
    failover_rewind: Duration,
    allow_localhost: bool,
    dictionary: Option<std::sync::Arc<Dictionary>>,
    indexer: Indexer,
    items: mpsc::Sender<Item>,
    replay: watch::Receiver<u64>,
    cancel: CancellationToken,
    bad_input: BTreeMap<(&'static str, &'static str), u64>,
    replay_watch: ReplayWatch,
}

/// The reader's progress across connections.
struct Position {
    host: usize,
    start: Start,
    last_time_us: Option<i64>,
    epoch: u64,
}

impl Reader {
    /// A reader sending plans to `items`. A change on `replay` restarts it from the oldest event.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: JetstreamSettings,
        (rewind, failover_rewind): (Duration, Duration),
        allow_localhost: bool,
        dictionary: Option<Dictionary>,
        indexer: Indexer,
        items: mpsc::Sender<Item>,
        replay: watch::Receiver<u64>,
        cancel: CancellationToken,
    ) -> Reader {
        Reader {
            settings,
            rewind,
            failover_rewind,
            allow_localhost,
            dictionary: dictionary.map(std::sync::Arc::new),
            indexer,
            items,
            replay,
            cancel,
            bad_input: BTreeMap::new(),
            replay_watch: ReplayWatch::default(),
        }
    }

    /// Runs until cancelled, starting at `start` on host `host`.
    pub async fn run(mut self, start: Start, host: usize) {
        let epoch = *self.replay.borrow_and_update();
        let mut position = Position {
            host,
            start,
            last_time_us: None,
            epoch,
        };
        let mut backoff = self.backoff();
        while !self.cancel.is_cancelled() {
            let (ended, progressed) = self.connect_once(&mut position).await;
            if progressed {
                backoff = self.backoff();
            }
            match ended {
                Ended::Shutdown => break,
                Ended::Replay => {
                    position.start = Start::At(0);
                    position.last_time_us = None;
                    position.epoch = *self.replay.borrow_and_update();
                    continue;
                }
                _ => {}
            }
            if !progressed {
                self.next_host(&mut position);
            } else {
                position.start = self.resume(&position, self.rewind);
            }
            let delay = backoff.next().unwrap_or(self.settings.backoff_max);
            tokio::select! {
                () = self.cancel.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn backoff(&self) -> backon::ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(self.settings.backoff_initial)
            .with_max_delay(self.settings.backoff_max)
            .with_jitter()
            .without_max_times()
            .build()
    }

    fn next_host(&self, position: &mut Position) {
        let hosts = self.settings.urls.len();
        if hosts > 1 {
            position.host = (position.host + 1) % hosts;
            position.start = self.resume(position, self.failover_rewind);
        } else {
            position.start = self.resume(position, self.rewind);
        }
    }

    /// Resume a little before the last event received, or where the last attempt would have.
    ///
    /// The rewind must not reach back to where the ended connection started: a host that drops
    /// every connection after fewer events than the rewind spans would replay the same stretch
    /// for ever. `time_us` strictly increases on one connection, so that stretch was complete.
    fn resume(&self, position: &Position, rewind: Duration) -> Start {
        let rewind_us = i64::try_from(rewind.as_micros()).unwrap_or(i64::MAX);
        let Some(last) = position.last_time_us else {
            return position.start;
        };
        let rewound = last.saturating_sub(rewind_us).max(0);
        match position.start {
            Start::At(start) if rewound <= start && rewind == self.rewind => Start::At(last),
            _ => Start::At(rewound),
        }
    }

    async fn connect_once(&mut self, position: &mut Position) -> (Ended, bool) {
        let url = subscribe_url(&self.settings, position.host, position.start);
        let host = host_label(&self.settings.urls[position.host]);
        let config = WebSocketConfig::default()
            .max_message_size(Some(socket_limit(self.settings.max_event_bytes)))
            .max_frame_size(Some(socket_limit(self.settings.max_event_bytes)));
        let connecting =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false);
        let socket = tokio::select! {
            () = self.cancel.cancelled() => return (Ended::Shutdown, false),
            result = timeout(self.settings.connect_timeout, connecting) => result,
        };
        let socket = match socket {
            Ok(Ok((socket, _response))) => socket,
            Ok(Err(error)) => return self.failed(&host, "connect", &error.to_string()),
            Err(_) => return self.failed(&host, "connect_timeout", "no handshake in time"),
        };
        tracing::info!(host = %host, cursor = ?position.start, "connected to jetstream");
        metrics::connected(&host, true);
        let result = self.read(socket, position).await;
        metrics::connected(&host, false);
        self.summarise();
        if result.0 != Ended::Shutdown {
            tracing::info!(host = %host, reason = result.0.as_str(), "jetstream connection ended");
            metrics::reconnect(&host, result.0.as_str());
        }
        result
    }

    fn failed(&self, host: &str, reason: &'static str, detail: &str) -> (Ended, bool) {
        tracing::warn!(host = %host, reason, error = %detail, "jetstream connection failed");
        metrics::reconnect(host, reason);
        (Ended::Error, false)
    }

    async fn read(&mut self, socket: Socket, position: &mut Position) -> (Ended, bool) {
        let (mut sink, mut stream) = socket.split();
        let dictionary = self.dictionary.clone();
        let decoder = FrameDecoder::new(dictionary.as_deref(), self.settings.max_event_bytes);
        let Ok(mut decoder) = decoder else {
            return (Ended::Error, false);
        };
        let mut timers = Timers::new(&self.settings);
        let mut progressed = false;
        loop {
            let message = match self.next_message(&mut stream, &mut sink, &mut timers).await {
                Ok(message) => message,
                Err(ended) => return (ended, progressed),
            };
            match self.handle(&message, &mut decoder, position).await {
                Handled::Skipped => {}
                Handled::Sent { new_event } => progressed |= new_event,
                Handled::End(ended) => return (ended, progressed),
            }
        }
    }

    /// Waits for the next message, pinging, summarising and watching the idle deadline.
    async fn next_message(
        &mut self,
        stream: &mut SplitStream<Socket>,
        sink: &mut SplitSink<Socket, Message>,
        timers: &mut Timers,
    ) -> Result<Message, Ended> {
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Err(Ended::Shutdown),
                _ = self.replay.changed() => return Err(Ended::Replay),
                () = tokio::time::sleep_until(timers.idle_deadline) => return Err(Ended::Idle),
                _ = timers.ping.tick() => {
                    if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return Err(Ended::Error);
                    }
                }
                _ = timers.summary.tick() => self.summarise(),
                message = stream.next() => {
                    timers.idle_deadline = Instant::now() + self.settings.idle_timeout;
                    return match message {
                        None => Err(Ended::Closed),
                        Some(Err(error)) => {
                            tracing::warn!(%error, "jetstream read failed");
                            Err(Ended::Error)
                        }
                        Some(Ok(message)) => Ok(message),
                    };
                }
            }
        }
    }

    /// Turns one message into an item on the queue, waiting while the queue is full.
    async fn handle(
        &mut self,
        message: &Message,
        decoder: &mut FrameDecoder<'_>,
        position: &mut Position,
    ) -> Handled {
        let json = match message {
            Message::Text(text) => {
                metrics::text_frame();
                decoder.text(text.as_bytes())
            }
            Message::Binary(bytes) => {
                metrics::compressed_bytes(bytes.len());
                decoder.binary(bytes)
            }
            Message::Close(_) => return Handled::End(Ended::Closed),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Handled::Skipped,
        };
        let json = match json {
            Ok(json) => json,
            Err(error) => {
                metrics::frame_rejected(error.as_str());
                self.count_bad("frame", error.as_str());
                return Handled::Skipped;
            }
        };
        metrics::frame(json.len());
        let newest = position.last_time_us;
        let Some(item) = self.item(json, position) else {
            return Handled::Skipped;
        };
        let new_event = newest.is_none_or(|newest| item.plan.time_us > newest);
        tokio::select! {
            () = self.cancel.cancelled() => Handled::End(Ended::Shutdown),
            sent = self.items.send(item) => match sent {
                Ok(()) => Handled::Sent { new_event },
                Err(_) => Handled::End(Ended::Shutdown),
            },
        }
    }

    fn item(&mut self, json: &[u8], position: &mut Position) -> Option<Item> {
        let decoded = event::decode(json, self.allow_localhost).and_then(|event| {
            let future = event.time_us > crate::writer::now_us() + FUTURE_TOLERANCE_US;
            if future {
                Err(event::SkipReason::TimeUs)
            } else {
                Ok(event)
            }
        });
        let event = match decoded {
            Ok(event) => event,
            Err(reason) => {
                metrics::event_skipped(reason.as_str());
                self.count_bad("event", reason.as_str());
                return None;
            }
        };
        position.last_time_us = Some(position.last_time_us.unwrap_or(0).max(event.time_us));
        self.replay_watch.observe(event.time_us);
        let plan = self.indexer.plan(&event);
        metrics::event_planned(&event, &plan);
        if let Outcome::Rejected(rejection) = &plan.outcome {
            tracing::debug!(did = %event.did, reason = rejection.reason.as_str(),
                detail = %rejection, "record rejected; applied as a delete");
            self.count_bad("record", rejection.reason.as_str());
        }
        Some(Item {
            plan,
            host: position.host,
            epoch: position.epoch,
        })
    }
}

impl Reader {
    /// Counts one bad input by stage (`frame`, `event`, `record`) and bounded reason.
    fn count_bad(&mut self, stage: &'static str, reason: &'static str) {
        *self.bad_input.entry((stage, reason)).or_default() += 1;
    }

    /// Logs what bad input was skipped since the last summary, once, instead of per event.
    fn summarise(&mut self) {
        if self.bad_input.is_empty() {
            return;
        }
        let counts: Vec<String> = self
            .bad_input
            .iter()
            .map(|((stage, reason), count)| format!("{stage}.{reason}={count}"))
            .collect();
        tracing::info!(counts = %counts.join(" "), "bad input skipped");
        self.bad_input.clear();
    }
}

/// The `/subscribe` URL for one host and start position.
pub fn subscribe_url(settings: &JetstreamSettings, host: usize, start: Start) -> Url {
    let mut url = settings.urls[host].clone();
    {
        let mut query = url.query_pairs_mut();
        for collection in &settings.collections {
            query.append_pair("wantedCollections", collection);
        }
        if let Start::At(time_us) = start {
            query.append_pair("cursor", &time_us.to_string());
        }
        if settings.compress() {
            query.append_pair("compress", "true");
        }
        if let Some(size) = settings.max_message_size_bytes {
            query.append_pair("maxMessageSizeBytes", &size.to_string());
        }
    }
    url
}

/// The host part of a URL, the only part of it that goes into logs and labels.
pub fn host_label(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => "unknown".to_owned(),
    }
}
