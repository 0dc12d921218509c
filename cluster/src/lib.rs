//! # micro-cluster
//!
//! Replication of a Micro node's durable state through Raft (openraft 0.9), on RocksDB in
//! production and on memory in tests and simulation. It implements micro-core's
//! [`Replicator`](micro_core::replicator::Replicator) port with [`RaftNode`].
//!
//! ```text
//!  propose(Command) ─> RaftNode ─> openraft ─> KvLogStore.append ─> kv.write (no fsync)
//!                                      │                  └─> Flusher: one fsync for all
//!                                      │                      pending appends (group commit)
//!                                      └─ committed ─> KvStateMachine.apply ─> core::state::apply
//! ```
//!
//! Storage is written once, against micro-core's `KvBackend`: [`RocksKvBackend`] (feature
//! `rocksdb`) and `MemKvBackend` both pass the same conformance suites (micro-core's and
//! openraft's own storage suite), so what the simulation tests is what production runs.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use micro_core::kv::MemKvBackend;
//! use micro_core::replicator::Replicator;
//! use micro_core::state::{Command, Response};
//! use micro_cluster::{RaftNode, RaftNodeConfig};
//!
//! let config = RaftNodeConfig::single(1, "127.0.0.1:8085");
//! let (kv, clock) = (Arc::new(MemKvBackend::new()), Arc::new(micro_core::SystemClock));
//! let node = RaftNode::start(config, kv, clock, Arc::new(micro_cluster::TcpConnector)).await.unwrap();
//! node.bootstrap().await.unwrap(); // a single-member cluster: it elects itself
//! assert!(matches!(node.propose(Command::Tick).await, Ok(Response::Ticked { .. })));
//! node.shutdown().await;
//! # });
//! ```

// openraft's storage and network traits return its `StorageError`, which is large; the
// signatures are openraft's, not ours to shrink.
#![allow(clippy::result_large_err)]

#[cfg(feature = "inject-bugs")]
mod bugs;
mod codec;
mod config;
mod error;
mod flusher;
mod log_store;
mod node;
mod peer;
mod proposal;
#[cfg(feature = "rocksdb")]
mod rocks;
mod runtime;
mod state_machine;
mod type_config;
mod verify;

#[cfg(feature = "inject-bugs")]
pub use bugs::InjectedBug;
pub use config::{DISK_RESERVE_DEFAULT, RaftNodeConfig};
pub use error::ClusterError;
pub use flusher::Flusher;
pub use log_store::KvLogStore;
pub use node::{REQUEST_DEADLINE, RaftNode};
pub use node::{RestoredSnapshot, restore_snapshot};
/// The peer payload codec, for the fuzz targets and property tests only.
#[doc(hidden)]
pub use peer::fuzzing;
pub use peer::{
    PeerClient, PeerConnector, PeerNetwork, PeerService, TcpConnector, TlsConnector, WIRE_FORMAT,
    WIRE_FORMAT_MIN, serve_peer,
};
pub use proposal::{Outcomes, Proposal};
#[cfg(feature = "rocksdb")]
pub use rocks::RocksKvBackend;
pub use runtime::SeededRuntime;
pub use state_machine::KvStateMachine;
pub use type_config::TypeConfig;
pub use verify::{StorageSummary, verify_storage};
