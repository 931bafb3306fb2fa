//! A TCP proxy on 127.0.0.1 in front of a test Valkey: it delays every chunk in both directions,
//! and it can cut its connections and refuse new ones, so a test can make Valkey slow or
//! unreachable while the server itself keeps running (and stays readable by the test).
//!
//! Invariant: bytes are forwarded in order and unchanged; a delay postpones each chunk by the
//! same amount from the moment it was read, like network latency, without serialising the
//! delays (throughput is bounded only by a small queue of chunks per direction).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest chunk read at once.
const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks in flight per direction; the reader waits when the writer is this far behind.
const CHUNKS_IN_FLIGHT: usize = 256;

/// A delaying, cuttable TCP proxy; see the module documentation. Shuts down when dropped.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

/// State shared by the test handle, the accept loop and every connection.
struct Shared {
    target: SocketAddr,
    delay: Mutex<Duration>,
    blocked: AtomicBool,
    cut: watch::Sender<u64>,
    connections: AtomicUsize,
    chunks: AtomicUsize,
}

impl Shared {
    fn delay(&self) -> Duration {
        *self.delay.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Proxy {
    /// Listens on a free port and forwards to `127.0.0.1:target_port`, delaying each chunk by
    /// `delay`. Must be called inside a tokio runtime; the proxy runs on it.
    pub fn start(target_port: u16, delay: Duration) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound address").port();
        listener
            .set_nonblocking(true)
            .expect("set the listener non-blocking");
        let listener = TcpListener::from_std(listener).expect("register listener with tokio");
        let shared = Arc::new(Shared {
            target: SocketAddr::from(([127, 0, 0, 1], target_port)),
            delay: Mutex::new(delay),
            blocked: AtomicBool::new(false),
            cut: watch::Sender::new(0),
            connections: AtomicUsize::new(0),
            chunks: AtomicUsize::new(0),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(accept_loop(shared.clone(), listener, shutdown.clone()));
        Proxy {
            port,
            shared,
            shutdown,
        }
    }

    /// `redis://127.0.0.1:<port>`: the URL to give the daemon instead of Valkey's.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Changes the delay of every chunk read from now on.
    pub fn set_delay(&self, delay: Duration) {
        *self
            .shared
            .delay
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = delay;
    }

    /// While on, open connections are cut and new ones are accepted and closed at once.
    pub fn block(&self, on: bool) {
        self.shared.blocked.store(on, Ordering::SeqCst);
        if on {
            self.shared.cut.send_modify(|generation| *generation += 1);
        }
    }

    /// TCP connections accepted so far, refused ones included.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Chunks forwarded so far, both directions together.
    pub fn chunks(&self) -> usize {
        self.shared.chunks.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let client = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => continue,
            },
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        if shared.blocked.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        tokio::spawn(serve(shared.clone(), client, shutdown.clone()));
    }
}

/// Forwards one connection until either side closes, the proxy is blocked or shut down.
async fn serve(shared: Arc<Shared>, client: TcpStream, shutdown: CancellationToken) {
    let mut cut = shared.cut.subscribe();
    let Ok(server) = TcpStream::connect(shared.target).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let both = futures_util::future::join(
        pump(&shared, client_read, server_write),
        pump(&shared, server_read, client_write),
    );
    tokio::select! {
        () = shutdown.cancelled() => {}
        _ = cut.changed() => {}
        _ = both => {}
    }
}

/// Copies one direction, each chunk written `delay` after it was read; closes the write side
/// when the read side ends.
async fn pump(shared: &Shared, mut from: OwnedReadHalf, mut to: OwnedWriteHalf) {
    let (chunks, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_IN_FLIGHT);
    let reading = async move {
        loop {
            let mut chunk = vec![0u8; CHUNK_BYTES];
            let read = match from.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            chunk.truncate(read);
            let at = Instant::now() + shared.delay();
            if chunks.send((at, chunk)).await.is_err() {
                return;
            }
        }
    };
    let writing = async move {
        while let Some((at, chunk)) = due.recv().await {
            if at > Instant::now() {
                tokio::time::sleep_until(at).await;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            shared.chunks.fetch_add(1, Ordering::SeqCst);
        }
        let _ = to.shutdown().await;
    };
    futures_util::future::join(reading, writing).await;
}
