//! An in-process WebSocket server that plays a legacy Jetstream v1 host at `/subscribe`.
//!
//! The server owns one append-only log. Each connection replays the log from its cursor and
//! then follows it live, filtered by its `wantedCollections`, as `shared/spec/jetstream.md`
//! §2–§4 describe. The test steers misbehaviour (close, stall, refuse, HTTP errors, garbage
//! frames) through shared state that every connection re-reads before each frame, so a switch
//! takes effect at once on live connections too.
//!
//! Invariant: a connection's starting position is fixed inside the handshake callback, before
//! the upgrade response is written, so an event pushed after the client's `connect` returns is
//! always delivered to it.
//!
//! [`SilentHost`] plays a host that accepts TCP connections and never answers the handshake.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::{http, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// The zstd level the fake compresses with.
const COMPRESSION_LEVEL: i32 = 3;

/// A fake Jetstream v1 host; see the module documentation. Shuts down when dropped.
pub struct FakeJetstream {
    shared: Arc<Shared>,
    port: u16,
    shutdown: CancellationToken,
}

/// State shared by the test handle, the accept loop and every connection.
struct Shared {
    log: Mutex<Vec<Entry>>,
    behaviour: Mutex<Behaviour>,
    requests: Mutex<Vec<String>>,
    client_messages: Mutex<Vec<String>>,
    connections: AtomicUsize,
    upgrades: AtomicUsize,
    sent: AtomicUsize,
    changed: watch::Sender<u64>,
    dictionary: Option<Vec<u8>>,
}

/// One position in the log: an event, or a raw frame injected by the test.
enum Entry {
    Event(Event),
    Raw(Message),
}

struct Event {
    time_us: i64,
    commit_collection: Option<String>,
    json: String,
}

/// Misbehaviour switches, read by every connection before each frame.
#[derive(Default)]
struct Behaviour {
    close_after: Option<usize>,
    stalled: bool,
    refuse: bool,
    http_error: Option<u16>,
    generation: u64,
}

/// What one connection asked for, fixed at the handshake.
struct Subscription {
    wanted: Vec<String>,
    compress: bool,
    next: usize,
    live_from: usize,
    generation: u64,
}

/// What a connection does next.
enum Step {
    Send(Outgoing),
    Wait { read_client: bool },
    Drop,
}

enum Outgoing {
    Json(String),
    Raw(Message),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeJetstream {
    /// Starts a server without a dictionary: `compress=true` is answered with HTTP 400.
    ///
    /// Must be called inside a tokio runtime; the server runs on it.
    pub fn new() -> Self {
        Self::start(None)
    }

    /// Starts a server that compresses with `dictionary` when a client asks for `compress=true`.
    pub fn with_dictionary(dictionary: Vec<u8>) -> Self {
        Self::start(Some(dictionary))
    }

    fn start(dictionary: Option<Vec<u8>>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("bound listener has an address")
            .port();
        listener
            .set_nonblocking(true)
            .expect("set the listener non-blocking");
        let listener = TcpListener::from_std(listener).expect("register listener with tokio");
        let shared = Arc::new(Shared {
            log: Mutex::default(),
            behaviour: Mutex::default(),
            requests: Mutex::default(),
            client_messages: Mutex::default(),
            connections: AtomicUsize::new(0),
            upgrades: AtomicUsize::new(0),
            sent: AtomicUsize::new(0),
            changed: watch::Sender::new(0),
            dictionary,
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(accept_loop(shared.clone(), listener, shutdown.clone()));
        Self {
            shared,
            port,
            shutdown,
        }
    }

    /// `ws://127.0.0.1:<port>/subscribe`, without a query.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/subscribe", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Appends one event line to the log and delivers it to live subscribers.
    ///
    /// Panics when the line is not JSON with an integer `time_us`: fixtures must be valid
    /// events (send garbage with [`FakeJetstream::inject_raw`]).
    pub fn push(&self, json: impl Into<String>) {
        let json = json.into();
        let value: Value = serde_json::from_str(&json)
            .unwrap_or_else(|error| panic!("pushed event is not JSON ({error}): {json}"));
        let time_us = value["time_us"]
            .as_i64()
            .unwrap_or_else(|| panic!("pushed event has no integer time_us: {json}"));
        let commit_collection = match value["kind"].as_str() {
            Some("commit") => Some(value["commit"]["collection"].as_str().unwrap_or("").into()),
            _ => None,
        };
        let event = Event {
            time_us,
            commit_collection,
            json,
        };
        lock(&self.shared.log).push(Entry::Event(event));
        self.shared.notify();
    }

    /// Pushes every line, in order.
    pub fn push_all<I, S>(&self, lines: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for line in lines {
            self.push(line);
        }
    }

    /// Queues `message` as-is (never compressed, never filtered) at the current end of the log.
    ///
    /// Only connections open now receive it; a later replay skips it.
    pub fn inject_raw(&self, message: Message) {
        lock(&self.shared.log).push(Entry::Raw(message));
        self.shared.notify();
    }

    /// Makes every connection drop its TCP stream, without a close frame, once it has sent `n`
    /// messages in total; `None` switches this off.
    pub fn close_after(&self, n: impl Into<Option<usize>>) {
        self.shared
            .change(|behaviour| behaviour.close_after = n.into());
    }

    /// Stops sending on every connection, keeping sockets open and leaving pings unanswered.
    pub fn stall(&self) {
        self.shared.change(|behaviour| behaviour.stalled = true);
    }

    /// Resumes sending where each connection stopped.
    pub fn unstall(&self) {
        self.shared.change(|behaviour| behaviour.stalled = false);
    }

    /// While on, new TCP connections are accepted and dropped at once, before the handshake.
    pub fn refuse(&self, on: bool) {
        self.shared.change(|behaviour| behaviour.refuse = on);
    }

    /// While `Some(status)`, upgrade requests are answered with that status and a text body.
    pub fn http_error(&self, status: Option<u16>) {
        self.shared
            .change(|behaviour| behaviour.http_error = status);
    }

    /// Drops every open connection now, without a close frame; new ones are served as usual.
    pub fn drop_connections(&self) {
        self.shared.change(|behaviour| behaviour.generation += 1);
    }

    /// The request target (path and query) of every HTTP request received, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    /// TCP connections accepted so far, refused ones and failed handshakes included.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections upgraded to WebSocket so far.
    pub fn upgrades(&self) -> usize {
        self.shared.upgrades.load(Ordering::SeqCst)
    }

    /// Data frames sent so far over all connections.
    pub fn messages_sent(&self) -> usize {
        self.shared.sent.load(Ordering::SeqCst)
    }

    /// Text frames received from clients (e.g. `options_update`), in order.
    pub fn client_messages(&self) -> Vec<String> {
        lock(&self.shared.client_messages).clone()
    }

    /// The event lines in the log, in order (injected raw frames left out).
    pub fn events(&self) -> Vec<String> {
        let log = lock(&self.shared.log);
        let events = log.iter().filter_map(|entry| match entry {
            Entry::Event(event) => Some(event.json.clone()),
            Entry::Raw(_) => None,
        });
        events.collect()
    }

    /// Compresses `json` exactly as the server does for `compress=true` clients.
    pub fn compress(&self, json: &str) -> Vec<u8> {
        let dictionary = self.shared.dictionary.as_deref().unwrap_or_default();
        zstd::bulk::Compressor::with_dictionary(COMPRESSION_LEVEL, dictionary)
            .and_then(|mut compressor| compressor.compress(json.as_bytes()))
            .expect("zstd compresses in memory")
    }

    /// Waits (in real time) until at least `n` connections have been upgraded.
    pub async fn wait_for_upgrades(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.upgrades() < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Default for FakeJetstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FakeJetstream {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A zstd frame (with `dictionary` when given) that inflates to `len` bytes of spaces.
///
/// Spaces make the payload plausible JSON whitespace, so only a decompressed-size cap stops it.
pub fn zstd_bomb(dictionary: Option<&[u8]>, len: usize) -> Vec<u8> {
    let payload = vec![b' '; len];
    let dictionary = dictionary.unwrap_or_default();
    zstd::bulk::Compressor::with_dictionary(19, dictionary)
        .and_then(|mut compressor| compressor.compress(&payload))
        .expect("zstd compresses in memory")
}

impl Shared {
    fn notify(&self) {
        self.changed.send_modify(|version| *version += 1);
    }

    fn change(&self, edit: impl FnOnce(&mut Behaviour)) {
        edit(&mut lock(&self.behaviour));
        self.notify();
    }

    /// Decides the next step of a connection that has sent `sent` messages.
    fn next_step(&self, subscription: &mut Subscription, sent: usize) -> Step {
        let behaviour = lock(&self.behaviour);
        if behaviour.generation != subscription.generation {
            return Step::Drop;
        }
        if behaviour.close_after.is_some_and(|limit| sent >= limit) {
            return Step::Drop;
        }
        if behaviour.stalled {
            return Step::Wait { read_client: false };
        }
        drop(behaviour);
        let log = lock(&self.log);
        while let Some(entry) = log.get(subscription.next) {
            let index = subscription.next;
            subscription.next += 1;
            match entry {
                Entry::Event(event) if subscription.wants(event) => {
                    return Step::Send(Outgoing::Json(event.json.clone()));
                }
                Entry::Raw(message) if index >= subscription.live_from => {
                    return Step::Send(Outgoing::Raw(message.clone()));
                }
                _ => {}
            }
        }
        Step::Wait { read_client: true }
    }

    /// Handles the upgrade request: records it, applies forced errors, parses the query.
    fn on_request(&self, request: &Request) -> Result<Subscription, Rejection> {
        let target = request.uri().to_string();
        lock(&self.requests).push(target);
        let (forced, generation) = {
            let behaviour = lock(&self.behaviour);
            (behaviour.http_error, behaviour.generation)
        };
        if let Some(status) = forced {
            return Err(Rejection(status, "fake jetstream: forced error"));
        }
        if request.uri().path() != "/subscribe" {
            return Err(Rejection(404, "not found"));
        }
        let query = Query::parse(request)?;
        if query.compress && self.dictionary.is_none() {
            return Err(Rejection(400, "fake jetstream has no zstd dictionary"));
        }
        Ok(self.subscribe(query, generation))
    }

    fn subscribe(&self, query: Query, generation: u64) -> Subscription {
        let log = lock(&self.log);
        let live_from = log.len();
        let next = match query.cursor {
            None => live_from,
            Some(cursor) => log
                .iter()
                .position(|entry| matches!(entry, Entry::Event(e) if e.time_us >= cursor))
                .unwrap_or(live_from),
        };
        Subscription {
            wanted: query.wanted,
            compress: query.compress,
            next,
            live_from,
            generation,
        }
    }
}

/// The parsed `/subscribe` query.
struct Query {
    wanted: Vec<String>,
    cursor: Option<i64>,
    compress: bool,
}

impl Query {
    fn parse(request: &Request) -> Result<Self, Rejection> {
        let raw = request.uri().query().unwrap_or("");
        let mut query = Query {
            wanted: Vec::new(),
            cursor: None,
            compress: socket_encoding_zstd(request),
        };
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "wantedCollections" => query.wanted.push(checked_collection(&value)?),
                "cursor" => query.cursor = Some(checked_cursor(&value)?),
                "compress" => query.compress |= value == "true",
                _ => {}
            }
        }
        Ok(query)
    }
}

fn socket_encoding_zstd(request: &Request) -> bool {
    let header = request.headers().get("Socket-Encoding");
    header.is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"zstd"))
}

/// Legacy hosts treat a negative cursor like 0 and reject what is not an integer.
fn checked_cursor(value: &str) -> Result<i64, Rejection> {
    match value.parse::<i64>() {
        Ok(cursor) => Ok(cursor.max(0)),
        Err(_) => Err(Rejection(400, "invalid cursor")),
    }
}

/// A full NSID or a prefix ending in `.*`; a `*` anywhere else is rejected.
fn checked_collection(value: &str) -> Result<String, Rejection> {
    let stem = value.strip_suffix(".*").unwrap_or(value);
    if value.is_empty() || stem.contains('*') {
        return Err(Rejection(400, "invalid wantedCollections"));
    }
    Ok(value.to_string())
}

/// A refused upgrade: HTTP status and plain-text body.
struct Rejection(u16, &'static str);

impl Rejection {
    fn into_response(self) -> ErrorResponse {
        let Rejection(status, body) = self;
        let mut response = http::Response::new(Some(format!("{body}\n")));
        *response.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// The handshake callback: decides the subscription before the response is written.
struct Handshake<'a> {
    shared: &'a Shared,
    subscription: &'a mut Option<Subscription>,
}

impl Callback for Handshake<'_> {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        match self.shared.on_request(request) {
            Ok(subscription) => {
                *self.subscription = Some(subscription);
                Ok(response)
            }
            Err(rejection) => Err(rejection.into_response()),
        }
    }
}

impl Subscription {
    /// Identity and account events always pass; commits pass when their collection is wanted.
    fn wants(&self, event: &Event) -> bool {
        let Some(collection) = &event.commit_collection else {
            return true;
        };
        self.wanted.is_empty()
            || self
                .wanted
                .iter()
                .any(|w| collection_matches(w, collection))
    }
}

fn collection_matches(wanted: &str, collection: &str) -> bool {
    match wanted.strip_suffix('*') {
        Some(prefix) => collection.starts_with(prefix),
        None => wanted == collection,
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        if lock(&shared.behaviour).refuse {
            drop(stream);
            continue;
        }
        tokio::spawn(serve(shared.clone(), stream, shutdown.clone()));
    }
}

/// Runs one connection: handshake, then replay and live delivery until dropped.
async fn serve(shared: Arc<Shared>, stream: TcpStream, shutdown: CancellationToken) {
    let mut subscription = None;
    let callback = Handshake {
        shared: &shared,
        subscription: &mut subscription,
    };
    let accepted = tokio::select! {
        _ = shutdown.cancelled() => return,
        accepted = tokio_tungstenite::accept_hdr_async(stream, callback) => accepted,
    };
    let (Ok(mut ws), Some(mut subscription)) = (accepted, subscription) else {
        return;
    };
    shared.upgrades.fetch_add(1, Ordering::SeqCst);
    let mut connection = Connection::new(&shared, &subscription);
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = connection.run(&mut ws, &mut subscription) => {}
    }
}

/// The per-connection sending state.
struct Connection<'a> {
    shared: &'a Shared,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    changed: watch::Receiver<u64>,
    sent: usize,
}

impl<'a> Connection<'a> {
    fn new(shared: &'a Shared, subscription: &Subscription) -> Self {
        let compressor = match (&shared.dictionary, subscription.compress) {
            (Some(dictionary), true) => Some(
                zstd::bulk::Compressor::with_dictionary(COMPRESSION_LEVEL, dictionary)
                    .expect("a trained dictionary loads"),
            ),
            _ => None,
        };
        Self {
            shared,
            compressor,
            changed: shared.changed.subscribe(),
            sent: 0,
        }
    }

    /// Returning drops the socket: no close frame is ever sent.
    async fn run(&mut self, ws: &mut WebSocketStream<TcpStream>, subscription: &mut Subscription) {
        loop {
            self.changed.borrow_and_update();
            match self.shared.next_step(subscription, self.sent) {
                Step::Drop => return,
                Step::Send(outgoing) => {
                    if ws.send(self.encode(outgoing)).await.is_err() {
                        return;
                    }
                    self.sent += 1;
                    self.shared.sent.fetch_add(1, Ordering::SeqCst);
                }
                Step::Wait { read_client } => {
                    if !self.wait(ws, subscription, read_client).await {
                        return;
                    }
                }
            }
        }
    }

    /// Waits for a change or a client frame; false when the connection is over.
    async fn wait(
        &mut self,
        ws: &mut WebSocketStream<TcpStream>,
        subscription: &mut Subscription,
        read_client: bool,
    ) -> bool {
        tokio::select! {
            changed = self.changed.changed() => changed.is_ok(),
            frame = ws.next(), if read_client => match frame {
                Some(Ok(message)) => {
                    self.on_client_message(message, subscription);
                    true
                }
                _ => false,
            },
        }
    }

    fn on_client_message(&self, message: Message, subscription: &mut Subscription) {
        let Message::Text(text) = message else {
            return;
        };
        lock(&self.shared.client_messages).push(text.to_string());
        let Ok(update) = serde_json::from_str::<Value>(&text) else {
            return;
        };
        if update["type"] != "options_update" {
            return;
        }
        let wanted = update["payload"]["wantedCollections"].as_array();
        subscription.wanted = wanted
            .into_iter()
            .flatten()
            .filter_map(|value| value.as_str().map(str::to_string))
            .collect();
    }

    fn encode(&mut self, outgoing: Outgoing) -> Message {
        match (outgoing, &mut self.compressor) {
            (Outgoing::Raw(message), _) => message,
            (Outgoing::Json(json), None) => Message::text(json),
            (Outgoing::Json(json), Some(compressor)) => {
                let frame = compressor
                    .compress(json.as_bytes())
                    .expect("zstd compresses in memory");
                Message::binary(frame)
            }
        }
    }
}

/// A host that accepts TCP connections and never answers: a WebSocket handshake to it hangs
/// until the client gives up. Accepted sockets stay open until the host is dropped.
pub struct SilentHost {
    port: u16,
    accepted: Arc<AtomicUsize>,
    shutdown: CancellationToken,
}

impl SilentHost {
    /// Listens on a free port. Must be called inside a tokio runtime.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound address").port();
        listener
            .set_nonblocking(true)
            .expect("set the listener non-blocking");
        let listener = TcpListener::from_std(listener).expect("register listener with tokio");
        let accepted = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        tokio::spawn(hold_silently(listener, accepted.clone(), shutdown.clone()));
        Self {
            port,
            accepted,
            shutdown,
        }
    }

    /// `ws://127.0.0.1:<port>/subscribe`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/subscribe", self.port)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentHost {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn hold_silently(
    listener: TcpListener,
    accepted: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    let mut open = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            connection = listener.accept() => {
                if let Ok((stream, _)) = connection {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    open.push(stream);
                }
            }
        }
    }
}
