//! The integration-test harness: a real Valkey, a fake Jetstream and event fixtures.
//!
//! Each test binary includes it with `mod support;` and uses the part it needs:
//! - [`daemon`]: the shipped `atcr-indexer` binary run as a child process;
//! - [`valkey`]: a `valkey-server` child on a private port, with a RESP client and keyspace
//!   dumps for assertions;
//! - [`jetstream`]: an in-process WebSocket server playing a v1 `/subscribe` host that can
//!   replay, filter, compress, close, stall, refuse and send garbage;
//! - [`identity`]: fake PLC directory, PDS and `did:web` hosts over HTTP on 127.0.0.1, with
//!   per-route replies (documents, profiles, hangs, 5xx, garbage, 429) and request counters;
//! - [`proxy`]: a TCP proxy in front of Valkey that delays every chunk, cuts its connections
//!   and refuses new ones;
//! - [`scenario`]: what the fault scenarios share: the cursor, catching up, the cache, the
//!   keyspace of an uninterrupted run, `/metrics` samples and the daemon's memory;
//! - [`hostile`]: the hostile-input corpus (named bad frames, envelopes and records with the
//!   reason each must be counted under) and the key-grammar check of a Valkey after a run;
//! - [`events`]: deterministic v1 event lines, a trained zstd dictionary and a generated mixed
//!   stream; it re-exports [`records`], the builders of valid io.atcr records.
#![allow(dead_code)]

pub mod daemon;
pub mod events;
pub mod hostile;
pub mod identity;
pub mod jetstream;
pub mod proxy;
pub mod records;
pub mod scenario;
pub mod valkey;
