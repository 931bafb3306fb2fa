//! atcr-indexer keeps the ATCR AppView's Valkey cache warm from the Jetstream firehose.
//!
//! Data flows one way, through two tasks joined by a bounded queue:
//!
//! ```text
//! jetstream (socket, zstd frames) ─► event (envelope) ─► records (validation)
//!     ─► index (pure: event → plan of atomic steps) ─► queue ─► writer ─► valkey (Lua steps)
//!                                                                  └─► cursor (after acks)
//! ```
//!
//! - [`config`]: settings from defaults, the TOML file, the environment and flags.
//! - [`jetstream`]: the WebSocket connection, reconnects, failover, frame decompression.
//! - [`event`]: the Jetstream v1 envelope; refuses what cannot be keyed safely.
//! - [`records`]: every `io.atcr.*` record shape, validated and normalised.
//! - [`index`]: the pure mapping from an event to the writes of `docs/keys.md`.
//! - [`writer`]: batches, retries while Valkey is down, saves the cursor behind the writes.
//! - [`valkey`]: the client, the Lua script that applies one step atomically, control keys.
//! - [`cursor`]: the start position and the acknowledged position.
//! - [`identity`]: background resolution of a DID to its handle, PDS and avatar (`P:{D}:user`),
//!   beside indexing and never in its way.
//! - [`inspect`]: the operator's read-only view of one account.
//! - [`metrics`]: every metric name and description, and the Prometheus exporter.
//! - [`health`]: the `/metrics`, `/healthz` and `/readyz` listener.
//! - [`daemon`] and [`shutdown`]: wiring, signals and the drain on stop.

pub mod config;
pub mod cursor;
pub mod daemon;
pub mod event;
pub mod health;
pub mod identity;
pub mod index;
pub mod inspect;
pub mod jetstream;
pub mod metrics;
pub mod records;
pub mod shutdown;
pub mod valkey;
pub mod writer;
