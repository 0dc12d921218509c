//! [`RaftNode`]: one Raft member, assembled from its storage and peer network, and the
//! `Replicator` the services use.
//!
//! ```text
//! start: Flusher + KvLogStore + KvStateMachine + PeerNetwork ─> Raft::new (seeded) ─> ticker
//! (the caller serves the peer service, then) bootstrap:
//!     initialized already          -> nothing (a restart recovers from log and snapshot)
//!     no peers, no join            -> initialize a single-member cluster, wait to lead
//!     --peers, lowest id           -> initialize the founding members once
//!     --peers, other ids           -> wait to be contacted by the founder
//!     --join ADDR                  -> ask ADDR (which asks the leader) to add this node
//!     --standby                    -> wait to be added (`micro cluster add-node`)
//! ```

mod backup;
mod batcher;
mod membership;
mod propose;
mod status;

pub use backup::{RestoredSnapshot, restore_snapshot};
pub(crate) use status::fatal_error;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use micro_core::Clock;
use micro_core::kv::KvBackend;
use micro_core::rng::entropy_seed;
use openraft::Raft;
use tokio::task::JoinHandle;

use crate::peer::{PeerConnector, PeerNetwork};
use crate::{
    ClusterError, Flusher, KvLogStore, KvStateMachine, RaftNodeConfig, SeededRuntime, TypeConfig,
};

/// How long a write or read waits for a leader and a quorum before it fails.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// One running Raft member.
#[derive(Debug, Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    config: RaftNodeConfig,
    raft: Raft<TypeConfig>,
    kv: Arc<dyn KvBackend>,
    network: PeerNetwork,
    committed_index: Arc<AtomicU64>,
    /// A write since the last tick: log time moved without one.
    busy: AtomicBool,
    /// Leadership is being handed over: hold new proposals.
    transferring: AtomicBool,
    /// The leader said this node was removed (and none has replicated to it since).
    removed: AtomicBool,
    /// The log index of the membership entry that removed this node.
    removed_at: AtomicU64,
    /// Where local proposals queue for the batcher.
    proposals: tokio::sync::mpsc::Sender<batcher::Pending>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("node_id", &self.config.node_id)
            .finish_non_exhaustive()
    }
}

/// Makes a restarted node a follower that must win a new election to lead again.
///
/// openraft 0.9 restores a node whose saved vote is committed for itself as leader at
/// once, in the same term. But a leader counts toward a commit only once its own append
/// is flushed, so the followers can commit entries whose copy on the leader was never
/// synced; a crash loses them there, and the leader, resuming in the same term, would
/// reuse their log ids for new entries: two different entries under one log id, and an
/// acknowledged write lost (found by the simulation, seed 314). Saving the vote as not
/// committed keeps the term and whom this node voted for, so it still never votes twice
/// in a term, but a new election is needed, which Raft grants only to a node that holds
/// every committed entry.
async fn forget_leadership(log: &mut KvLogStore) -> Result<(), ClusterError> {
    use openraft::storage::RaftLogStorage;
    let storage = |e: openraft::StorageError<u64>| ClusterError::Raft(e.to_string());
    if let Some(mut vote) = log.read_vote().await.map_err(storage)?
        && vote.committed
    {
        vote.committed = false;
        log.save_vote(&vote).await.map_err(storage)?;
    }
    Ok(())
}

impl RaftNode {
    /// Starts a member on `kv`, dialling peers through `connector`. It takes part in
    /// Raft at once, but forms or joins a cluster only in [`RaftNode::bootstrap`], which
    /// the caller runs once the peer service is served.
    pub async fn start(
        config: RaftNodeConfig,
        kv: Arc<dyn KvBackend>,
        clock: Arc<dyn Clock>,
        connector: Arc<dyn PeerConnector>,
    ) -> Result<Self, ClusterError> {
        let raft_config = Arc::new(config.to_openraft()?);
        let flusher = Flusher::spawn(kv.clone());
        let mut log = KvLogStore::new(kv.clone(), flusher.clone());
        forget_leadership(&mut log).await?;
        let committed_index = log.committed_index();
        let machine = KvStateMachine::new(kv.clone(), flusher);
        let network = PeerNetwork::new(connector);
        let seed = config.seed.unwrap_or_else(entropy_seed);
        let raft = SeededRuntime::scope(
            seed,
            Raft::new(config.node_id, raft_config, network.clone(), log, machine),
        )
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let proposals = batcher::spawn(raft.clone(), clock.clone());
        let inner = Arc::new(Inner {
            proposals,
            config,
            raft,
            kv,
            network,
            committed_index,
            busy: AtomicBool::new(false),
            transferring: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            removed_at: AtomicU64::new(0),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        let node = Self { inner };
        let ticker = tokio::spawn(propose::tick_loop(Arc::downgrade(&node.inner)));
        node.keep_task(ticker);
        let watch = membership::election_watch(Arc::downgrade(&node.inner), seed);
        node.keep_task(tokio::spawn(watch));
        Ok(node)
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.inner.config.node_id
    }

    /// The openraft handle.
    pub(crate) fn raft(&self) -> &Raft<TypeConfig> {
        &self.inner.raft
    }

    fn keep_task(&self, task: JoinHandle<()>) {
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
    }

    /// Resolves when Raft stopped on a fatal error (storage failed, say), with what
    /// happened; never while it runs or after a requested shutdown. A node whose Raft is
    /// dead can serve nothing durable: its process should stop, so a supervisor restarts
    /// it on its storage or an operator sees why.
    pub async fn fatal(&self) -> String {
        let mut metrics = self.inner.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state
                && !matches!(fatal, openraft::error::Fatal::Stopped)
            {
                return fatal.to_string();
            }
            if metrics.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Stops Raft and the node's tasks. Writes acknowledged before are durable.
    pub async fn shutdown(&self) {
        let tasks: Vec<_> = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
            .collect();
        for task in tasks {
            task.abort();
        }
        if let Err(err) = self.inner.raft.shutdown().await {
            tracing::warn!(%err, "raft did not shut down cleanly");
        }
    }
}
