//! # micro-core
//!
//! The centre of Micro in Rust: the domain types every other crate speaks, the error
//! vocabulary, the replicated state machine and the ports (traits) behind which the outside
//! world hides.
//!
//! ```text
//!   gateway / cli ──> actors ──> Replicator (port) ──> cluster (openraft + RocksDB)
//!                                   │
//!                       state::apply(KvBackend, Request) ── pure, deterministic
//! ```
//!
//! - [`auth`]: accounts, rules and the access decisions made from them.
//! - [`config`]: each namespace's JSON tree of dot paths, as leaves.
//! - [`error`]: `Code` and the micro error `{id, code, detail, status}`.
//! - [`namespace`]: the tenant every request and every durable key belongs to.
//! - [`store`]: records, queries and their validation.
//! - [`state`]: the `Command` log entries, their pure `apply`, and reads of applied state.
//! - [`kv`]: the `KvBackend` port with an in-memory implementation.
//! - [`clock`], [`rng`]: injected time and randomness, so simulation can replace them.
//! - [`registry`], [`runtime`]: the registry's services and the runtime's desired state.
//! - [`service`]: the `LocalService` port in-node services implement.
//! - [`replicator`]: the port the services propose commands through.
//! - [`testing`]: conformance suites every implementation of a port must pass.
//!
//! ```
//! use micro_core::kv::{KvBackend, MemKvBackend, Space, WriteBatch};
//!
//! let kv = MemKvBackend::new();
//! let mut batch = WriteBatch::default();
//! batch.put(Space::Store, b"k".to_vec(), b"v".to_vec());
//! kv.write(batch).unwrap();
//! assert_eq!(kv.get(Space::Store, b"k").unwrap(), Some(b"v".to_vec()));
//! ```

pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod events;
pub mod kv;
pub mod namespace;
pub mod registry;
pub mod replicator;
pub mod rng;
pub mod runtime;
pub mod service;
pub mod state;
pub mod store;
pub mod testing;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Code, HasCode, MicroError};
pub use namespace::Namespace;
