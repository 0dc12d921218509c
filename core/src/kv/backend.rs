//! The [`KvBackend`] trait and its vocabulary.

use std::fmt::Debug;

use serde::{Deserialize, Serialize};

use crate::error::{Code, HasCode};
use crate::kv::WriteBatch;

/// A keyspace: a RocksDB column family, one per service plus Raft's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Space {
    /// Raft log entries, keyed by big-endian index.
    Log,
    /// Raft's own metadata: vote, committed, last purged.
    Raft,
    /// The state machine's metadata: last applied, membership, log time, snapshot.
    Meta,
    /// The store service: records, their expiry index and the catalogue.
    Store,
    /// The latest state-machine snapshot (kept so it can be sent to a lagging peer).
    Snapshot,
    /// The registry: service nodes and their expiry index.
    Registry,
    /// The runtime's desired state.
    Runtime,
    /// Auth: accounts, rules and the cluster's signing keys.
    Auth,
    /// Config: each namespace's leaves.
    Config,
    /// Events: topic logs, consumer groups and the retention index.
    Events,
    /// Blobs: manifests, chunks and uploads not yet committed.
    Blobs,
}

impl Space {
    /// Every space, in a fixed order.
    pub const ALL: [Self; 11] = [
        Self::Log,
        Self::Raft,
        Self::Meta,
        Self::Store,
        Self::Snapshot,
        Self::Registry,
        Self::Runtime,
        Self::Auth,
        Self::Config,
        Self::Events,
        Self::Blobs,
    ];

    /// The spaces that make up the replicated state machine (what a snapshot carries).
    pub const STATE: [Self; 8] = [
        Self::Meta,
        Self::Store,
        Self::Registry,
        Self::Runtime,
        Self::Auth,
        Self::Config,
        Self::Events,
        Self::Blobs,
    ];

    /// The stable name of the space (the RocksDB column family name).
    pub fn name(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Raft => "raft",
            Self::Meta => "meta",
            Self::Store => "store",
            Self::Snapshot => "snapshot",
            Self::Registry => "registry",
            Self::Runtime => "runtime",
            Self::Auth => "auth",
            Self::Config => "config",
            Self::Events => "events",
            Self::Blobs => "blobs",
        }
    }
}

/// Direction of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ScanOrder {
    /// Ascending key order.
    #[default]
    Asc,
    /// Descending key order.
    Desc,
}

/// A half-open key range `[start, end)`; `end = None` means unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Inclusive lower bound.
    pub start: Vec<u8>,
    /// Exclusive upper bound, or unbounded.
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// All keys starting with `prefix`.
    ///
    /// ```
    /// use micro_core::kv::KeyRange;
    /// let r = KeyRange::prefix(b"ab");
    /// assert_eq!(r.end, Some(b"ac".to_vec()));
    /// assert_eq!(KeyRange::prefix(&[0xff]).end, None);
    /// ```
    pub fn prefix(prefix: &[u8]) -> Self {
        Self {
            start: prefix.to_vec(),
            end: prefix_end(prefix),
        }
    }

    /// Whether `key` lies inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }
}

/// The smallest key greater than every key starting with `prefix`, if one exists.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A failure of the storage engine itself (I/O, corruption): never a business error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage failure: {0}")]
pub struct KvError(pub String);

impl HasCode for KvError {
    fn code(&self) -> Code {
        Code::Internal
    }
}

/// Ordered key-value storage with batched writes and an explicit durability point.
///
/// # Contract
/// - `write` applies a batch atomically: readers see all of it or none of it, at once
///   after it returns. It does not wait for the disk.
/// - `sync` returns once every batch written before the call is durable. A crash loses
///   at most the batches written after the last completed `sync`, and never leaves a
///   later batch without an earlier one (durability is in write order).
/// - `scan` visits keys of one space inside a range in the given order until the visitor
///   returns `false`. It sees one consistent view of the data.
/// - Every implementation passes [`crate::testing::kv_backend_suite`].
pub trait KvBackend: Send + Sync + Debug + 'static {
    /// The value stored under `key` in `space`.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;

    /// Visits the keys of `space` inside `range` in `order` until `visit` returns `false`.
    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        order: ScanOrder,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError>;

    /// Applies `batch` atomically, without waiting for the disk.
    fn write(&self, batch: WriteBatch) -> Result<(), KvError>;

    /// Makes every earlier write durable.
    fn sync(&self) -> Result<(), KvError>;

    /// Whether `sync` blocks the thread on real I/O (so async callers should move it to a
    /// blocking thread). In-memory backends return `false`.
    fn sync_blocks(&self) -> bool {
        false
    }

    /// Bytes free on the disk under the data, for writers that refuse to fill it
    /// (`None`: not on a disk, or unknown).
    fn free_space(&self) -> Option<u64> {
        None
    }
}
