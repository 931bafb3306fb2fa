//! The integration-test harness: a real Valkey, a fake Jetstream and event fixtures.
//!
//! Each test binary includes it with `mod support;` and uses the part it needs:
//! - [`valkey`]: a `valkey-server` child on a private port, with a RESP client and keyspace
//!   dumps for assertions;
//! - [`jetstream`]: an in-process WebSocket server playing a v1 `/subscribe` host that can
//!   replay, filter, compress, close, stall, refuse and send garbage;
//! - [`events`]: deterministic v1 event lines, io.atcr records, a trained zstd dictionary and
//!   a generated mixed stream.
#![allow(dead_code)]

pub mod daemon;
pub mod events;
pub mod jetstream;
pub mod valkey;
