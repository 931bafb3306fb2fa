//! Fake identity hosts over real HTTP/1.1 on 127.0.0.1: a PLC directory, PDSes and `did:web`
//! hosts, each a [`FakeHost`] that answers per route as the test configures it.
//!
//! A route is a request path; an XRPC request that names a `repo` is routed by path and repo
//! (see [`profile_path`]), so one fake PDS serves many accounts with different behaviour. Each
//! route has a steady [`Reply`] and a queue of one-shot replies served first (a 429 before the
//! document, a document before its edit). Every request is counted per route, answered with
//! `Connection: close`, and a route without a reply answers 404.
//!
//! Invariant: a host that hangs never answers, but notices the client hanging up, so
//! [`FakeHost::hanging`] counts only requests a client is still waiting on.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A valid CID, used as the avatar blob of fake profiles.
pub const AVATAR_CID: &str = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy";

/// Where a `did:web` host serves its document.
pub const DID_WEB_PATH: &str = "/.well-known/did.json";

/// Largest request head read; the resolver's requests are a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What a route answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with a JSON body.
    Json(String),
    /// This status with a JSON body.
    Status(u16, String),
    /// 200, `Content-Type: application/json`, and a body that is not JSON.
    Garbage,
    /// 429 with `Retry-After: <secs>`.
    TooMany {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// Never answers; the request stays open until the client gives up.
    Hang,
    /// Waits for [`FakeHost::release`], then answers with the inner reply.
    Held(Box<Reply>),
}

/// A fake HTTP host; see the module documentation. Shuts down when dropped.
pub struct FakeHost {
    shared: Arc<Shared>,
    port: u16,
    shutdown: CancellationToken,
}

#[derive(Default)]
struct Route {
    once: VecDeque<Reply>,
    steady: Option<Reply>,
}

struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    hits: Mutex<HashMap<String, usize>>,
    hanging: AtomicUsize,
    released: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeHost {
    /// Starts a host on a free port of 127.0.0.1. Must be called inside a tokio runtime.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound listener").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let listener = TcpListener::from_std(listener).expect("register listener with tokio");
        let shared = Arc::new(Shared {
            routes: Mutex::default(),
            hits: Mutex::default(),
            hanging: AtomicUsize::new(0),
            released: watch::Sender::new(false),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(accept_loop(shared.clone(), listener, shutdown.clone()));
        Self {
            shared,
            port,
            shutdown,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `did:web:localhost%3A<port>`: the DID whose document this host serves at
    /// [`DID_WEB_PATH`].
    pub fn did_web(&self) -> String {
        format!("did:web:localhost%3A{}", self.port)
    }

    /// Sets the steady reply of `route`.
    pub fn set(&self, route: &str, reply: Reply) {
        lock(&self.shared.routes)
            .entry(route.to_owned())
            .or_default()
            .steady = Some(reply);
    }

    /// Queues a one-shot reply of `route`, served before the steady one.
    pub fn push_once(&self, route: &str, reply: Reply) {
        lock(&self.shared.routes)
            .entry(route.to_owned())
            .or_default()
            .once
            .push_back(reply);
    }

    /// Serves `document` as the PLC directory's answer for `did`.
    pub fn serve_document(&self, did: &str, document: String) {
        self.set(&plc_path(did), Reply::Json(document));
    }

    /// Serves the `app.bsky.actor.profile/self` record of `did`, with or without an avatar.
    pub fn serve_profile(&self, did: &str, avatar_cid: Option<&str>) {
        self.set(
            &profile_path(did),
            Reply::Json(profile_record(did, avatar_cid)),
        );
    }

    /// Requests received on `route`.
    pub fn hits(&self, route: &str) -> usize {
        lock(&self.shared.hits).get(route).copied().unwrap_or(0)
    }

    /// Requests received on every route.
    pub fn total_hits(&self) -> usize {
        lock(&self.shared.hits).values().sum()
    }

    /// Requests that are hanging or held and whose client is still waiting.
    pub fn hanging(&self) -> usize {
        self.shared.hanging.load(Ordering::SeqCst)
    }

    /// Lets every [`Reply::Held`] request, present and future, answer.
    pub fn release(&self) {
        self.shared.released.send_replace(true);
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The PLC directory route of `did`.
pub fn plc_path(did: &str) -> String {
    format!("/{did}")
}

/// The route of `com.atproto.repo.getRecord` for the repository `did`.
pub fn profile_path(did: &str) -> String {
    format!("/xrpc/com.atproto.repo.getRecord?repo={did}")
}

/// A DID document naming `handle` in `alsoKnownAs` and `pds` as its `#atproto_pds` service.
pub fn did_document(did: &str, handle: Option<&str>, pds: Option<&str>) -> String {
    let aliases: Vec<String> = handle
        .iter()
        .map(|handle| format!("at://{handle}"))
        .collect();
    let services: Vec<serde_json::Value> = pds
        .iter()
        .map(|endpoint| {
            serde_json::json!({
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": endpoint,
            })
        })
        .collect();
    serde_json::json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "alsoKnownAs": aliases,
        "verificationMethod": [],
        "service": services,
    })
    .to_string()
}

/// A `getRecord` answer holding the profile of `did`.
pub fn profile_record(did: &str, avatar_cid: Option<&str>) -> String {
    let mut value = serde_json::json!({
        "$type": "app.bsky.actor.profile",
        "displayName": "A fake account",
    });
    if let Some(cid) = avatar_cid {
        value["avatar"] = serde_json::json!({
            "$type": "blob",
            "ref": { "$link": cid },
            "mimeType": "image/jpeg",
            "size": 12345,
        });
    }
    serde_json::json!({
        "uri": format!("at://{did}/app.bsky.actor.profile/self"),
        "cid": AVATAR_CID,
        "value": value,
    })
    .to_string()
}

/// The answer of a PDS that holds the repository but no profile record.
pub fn record_not_found() -> Reply {
    let body = r#"{"error":"RecordNotFound","message":"Could not locate record"}"#;
    Reply::Status(400, body.to_owned())
}

/// A syntactically valid `did:plc` DID, distinct for every `n`.
pub fn plc_did(n: u32) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut id = vec![b'a'; 24];
    let mut rest = n;
    for slot in id.iter_mut().rev() {
        *slot = ALPHABET[(rest % 32) as usize];
        rest /= 32;
    }
    format!("did:plc:{}", String::from_utf8_lossy(&id))
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve(shared.clone(), stream));
                }
            }
        }
        while connections.try_join_next().is_some() {}
    }
}

async fn serve(shared: Arc<Shared>, mut stream: TcpStream) {
    let Some(target) = read_target(&mut stream).await else {
        return;
    };
    let route = route_of(&target);
    *lock(&shared.hits).entry(route.clone()).or_default() += 1;
    let reply = next_reply(&shared, &route);
    answer(&shared, &mut stream, reply).await;
}

fn next_reply(shared: &Shared, route: &str) -> Option<Reply> {
    let mut routes = lock(&shared.routes);
    let route = routes.get_mut(route)?;
    route.once.pop_front().or_else(|| route.steady.clone())
}

async fn answer(shared: &Shared, stream: &mut TcpStream, reply: Option<Reply>) {
    let reply = match reply {
        None => Reply::Status(404, r#"{"error":"NotFound"}"#.to_owned()),
        Some(Reply::Hang) => return hang(shared, stream).await,
        Some(Reply::Held(inner)) => match hold(shared, stream).await {
            true => *inner,
            false => return,
        },
        Some(other) => other,
    };
    let (status, extra, body) = match reply {
        Reply::Json(body) => (200, String::new(), body),
        Reply::Status(status, body) => (status, String::new(), body),
        Reply::Garbage => (200, String::new(), "<html>this is not JSON".to_owned()),
        Reply::TooMany { retry_after_secs } => {
            let header = format!("Retry-After: {retry_after_secs}\r\n");
            (429, header, r#"{"error":"RateLimitExceeded"}"#.to_owned())
        }
        Reply::Hang | Reply::Held(_) => return,
    };
    let head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Keeps the request open until the client hangs up.
async fn hang(shared: &Shared, stream: &mut TcpStream) {
    shared.hanging.fetch_add(1, Ordering::SeqCst);
    let mut buffer = [0_u8; 256];
    while matches!(stream.read(&mut buffer).await, Ok(read) if read > 0) {}
    shared.hanging.fetch_sub(1, Ordering::SeqCst);
}

/// Waits for [`FakeHost::release`]; `false` when the client hung up first.
async fn hold(shared: &Shared, stream: &mut TcpStream) -> bool {
    shared.hanging.fetch_add(1, Ordering::SeqCst);
    let mut released = shared.released.subscribe();
    let mut buffer = [0_u8; 256];
    let answered = loop {
        tokio::select! {
            _ = released.wait_for(|released| *released) => break true,
            read = stream.read(&mut buffer) => {
                if !matches!(read, Ok(read) if read > 0) {
                    break false;
                }
            }
        }
    };
    shared.hanging.fetch_sub(1, Ordering::SeqCst);
    answered
}

/// The request target of the request line, once the whole head has arrived.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 || head.len() > MAX_HEAD_BYTES {
            return None;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next()?;
    line.split_whitespace().nth(1).map(str::to_owned)
}

/// The path, plus `?repo=<repo>` (decoded) when the query names a repository.
fn route_of(target: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let repo = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("repo="))
        .map(percent_decode);
    match repo {
        Some(repo) => format!("{path}?repo={repo}"),
        None => percent_decode(path),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3);
        let value = hex.and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (bytes[index], value) {
            (b'%', Some(value)) => {
                decoded.push(value);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
