//! The [`Replicator`] port: how services change and read the replicated state.
//!
//! ```text
//! actor --propose(Command)--> Replicator --(Raft: commit on a majority, fsync)--> apply
//!       <------ Response -----------------------------------------------------------+
//! actor --read_barrier()--> (read index: this node has applied all committed writes)
//!       --reader().store_read(..)--> local applied state
//! ```
//!
//! `micro-cluster` implements it with openraft; [`MemReplicator`] applies directly and
//! serves tests of the layers above.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::cluster::{ClusterStatus, Member, MembershipChange, Role};
use crate::error::{Code, HasCode};
use crate::kv::{KvBackend, MemKvBackend};
use crate::state::{Command, Request, Response, StateReader, apply};

/// A boxed, sendable future (ports are object-safe, so they return these).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a proposal or read barrier failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ReplicaError {
    /// No leader is known or reachable now; the request was not applied. Retry.
    #[error("no leader: {0}")]
    NoLeader(String),
    /// The request is invalid for the cluster as it is (e.g. a membership change naming a
    /// node that is not a member); nothing was changed.
    #[error("{0}")]
    Rejected(String),
    /// The request may or may not have been applied (the node lost track of it).
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// This node cannot reach a majority: the write was not committed within its
    /// deadline (it is applied later only if the majority is reached again).
    #[error("no quorum: {0}")]
    NoQuorum(String),
    /// The node is shutting down.
    #[error("node is shutting down")]
    ShuttingDown,
    /// The disk under this node's data is below its reserve: the write was refused
    /// before it reached the log, so nothing changed. Retry once space is freed.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// Storage failed; the node cannot go on.
    #[error("storage failure: {0}")]
    Fatal(String),
}

impl HasCode for ReplicaError {
    fn code(&self) -> Code {
        match self {
            Self::NoLeader(_) | Self::NoQuorum(_) | Self::ShuttingDown => Code::Unavailable,
            Self::Rejected(_) => Code::BadRequest,
            Self::Unknown(_) => Code::Timeout,
            Self::Fatal(_) => Code::Internal,
            Self::DiskFull(_) => Code::InsufficientStorage,
        }
    }
}

/// Replicates commands and serves reads of the replicated state.
///
/// # Contract
/// - `propose` resolves with the command's [`Response`] only once the command is
///   committed by a majority, durable on their disks, and applied on this node.
/// - `read_barrier` resolves once this node has applied every write committed before the
///   call (linearizable reads then read [`Replicator::reader`]).
/// - Both are cancellation-safe from the caller's side: dropping the future leaves the
///   outcome of a proposal unknown, never half-applied.
pub trait Replicator: Send + Sync + Debug + 'static {
    /// Proposes a command; see the contract above.
    fn propose(&self, command: Command) -> BoxFuture<'static, Result<Response, ReplicaError>>;

    /// Waits until local reads are linearizable.
    fn read_barrier(&self) -> BoxFuture<'static, Result<(), ReplicaError>>;

    /// Reads of the locally applied state.
    fn reader(&self) -> StateReader;

    /// How this node sees the cluster.
    fn status(&self) -> ClusterStatus;

    /// Changes membership or leadership (through the leader).
    fn change_membership(
        &self,
        change: MembershipChange,
    ) -> BoxFuture<'static, Result<(), ReplicaError>>;

    /// Resolves with the applied index once this node has applied past `index`: how a
    /// reader of the local state (an events consumer) waits for something new without
    /// polling. It never resolves on a node that stopped applying.
    fn applied_past(&self, index: u64) -> BoxFuture<'static, u64>;

    /// A snapshot of this node's whole replicated state, made now (after everything it
    /// has applied): what `micro cluster snapshot` saves and `micro-node restore` puts
    /// into a new data directory. Replicators that keep no Raft snapshots refuse.
    fn snapshot(&self) -> BoxFuture<'static, Result<StateSnapshot, ReplicaError>> {
        Box::pin(async {
            Err(ReplicaError::Rejected(
                "this node keeps no Raft snapshots (in-memory replicator)".to_owned(),
            ))
        })
    }
}

/// A node's Raft snapshot, as its storage keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSnapshot {
    /// The node that made it.
    pub node_id: u64,
    /// The last log index it covers.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The stored snapshot (checksummed), for `micro-node restore`.
    pub bytes: Vec<u8>,
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Consistency {
    /// Sees every write acknowledged before the read began (the default).
    #[default]
    Linearizable,
    /// Reads this node's applied state as it is: fast, possibly behind the leader.
    Stale,
}

impl Consistency {
    /// Parses the `Micro-Consistency` header: `stale`, or `linearizable` (or empty).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "" | "linearizable" | "strong" => Some(Self::Linearizable),
            "stale" => Some(Self::Stale),
            _ => None,
        }
    }
}

/// A single-node replicator that applies each proposal at once to an in-memory backend.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use micro_core::replicator::{MemReplicator, Replicator};
/// use micro_core::state::{Command, Response};
///
/// let replicator = MemReplicator::new(Arc::new(micro_core::SystemClock));
/// assert_eq!(replicator.propose(Command::Tick).await.unwrap(), Response::Ticked { purged: 0 });
/// # });
/// ```
#[derive(Debug)]
pub struct MemReplicator {
    kv: Arc<MemKvBackend>,
    clock: Arc<dyn Clock>,
    applied: Arc<Mutex<Applied>>,
}

/// The applied count and who waits for it to move.
#[derive(Debug, Default)]
struct Applied {
    index: u64,
    waiting: Vec<std::task::Waker>,
}

fn lock(applied: &Mutex<Applied>) -> std::sync::MutexGuard<'_, Applied> {
    applied
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemReplicator {
    /// A replicator over a fresh in-memory backend, stamping commands with `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            kv: Arc::new(MemKvBackend::new()),
            clock,
            applied: Arc::default(),
        }
    }

    fn apply_now(&self, command: Command) -> Result<Response, ReplicaError> {
        // The lock serializes apply+write, as the Raft log serializes entries.
        let mut applied = lock(&self.applied);
        let request = Request {
            at_ms: self.clock.now_ms(),
            command,
        };
        let out = apply(self.kv.as_ref(), &request).map_err(|e| ReplicaError::Fatal(e.0))?;
        self.kv
            .write(out.batch)
            .map_err(|e| ReplicaError::Fatal(e.0))?;
        applied.index += 1;
        for waker in applied.waiting.drain(..) {
            waker.wake();
        }
        Ok(out.response)
    }
}

impl Replicator for MemReplicator {
    fn propose(&self, command: Command) -> BoxFuture<'static, Result<Response, ReplicaError>> {
        let result = self.apply_now(command);
        Box::pin(async move { result })
    }

    fn read_barrier(&self) -> BoxFuture<'static, Result<(), ReplicaError>> {
        Box::pin(async { Ok(()) })
    }

    fn reader(&self) -> StateReader {
        StateReader::new(self.kv.clone())
    }

    fn status(&self) -> ClusterStatus {
        let applied = lock(&self.applied).index;
        ClusterStatus {
            node_id: 1,
            leader: Some(1),
            term: 1,
            members: vec![Member {
                id: 1,
                address: "memory".to_owned(),
                role: Role::Leader,
                silent_ms: None,
            }],
            commit_index: applied,
            applied_index: applied,
            snapshot_index: 0,
            purged_index: 0,
        }
    }

    fn applied_past(&self, index: u64) -> BoxFuture<'static, u64> {
        let applied = self.applied.clone();
        Box::pin(std::future::poll_fn(move |cx| {
            let mut applied = lock(&applied);
            if applied.index > index {
                return std::task::Poll::Ready(applied.index);
            }
            applied.waiting.push(cx.waker().clone());
            std::task::Poll::Pending
        }))
    }

    fn change_membership(
        &self,
        change: MembershipChange,
    ) -> BoxFuture<'static, Result<(), ReplicaError>> {
        let why = format!("an in-memory single node has no membership to change ({change:?})");
        Box::pin(async move { Err(ReplicaError::Rejected(why)) })
    }
}
