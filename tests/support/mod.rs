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
//! - [`events`]: deterministic v1 event lines, a trained zstd dictionary and a generated mixed
//!   stream; it re-exports [`records`], the builders of valid io.atcr records.
#![allow(dead_code)]

pub mod daemon;
pub mod events;
pub mod identity;
pub mod jetstream;
pub mod records;
pub mod valkey;
