//! Whole-node backups from Raft snapshots.
//!
//! ```text
//! micro cluster snapshot ─> RaftNode::fresh_snapshot: trigger a snapshot covering all
//!     this node has applied, wait for it, read it back from space Snapshot (checksummed)
//! micro-node restore FILE ─> restore_snapshot(empty storage, node id):
//!     install the snapshot (state spaces, space Snapshot), purge the log up to it, and
//!     vote in its term, so the node starts as a member that has applied everything up
//!     to the snapshot and elects leaders in later terms only
//! ```
//!
//! Each member of the old cluster restored from the same file (same ids and peer
//! addresses) forms the cluster again with that state; one node restored from a
//! single-member cluster's file is that cluster.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use micro_core::kv::{KvBackend, Space};
use micro_core::replicator::{ReplicaError, StateSnapshot};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{LogId, SnapshotMeta, Vote};

use crate::state_machine::{SNAPSHOT_KEY, open_stored_snapshot};
use crate::{ClusterError, Flusher, KvLogStore, KvStateMachine, RaftNode};

/// How long a node may take to build the snapshot it was asked for.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(120);

/// What a restore put into the storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredSnapshot {
    /// The last log index the state covers.
    pub index: u64,
    /// Its term.
    pub term: u64,
    /// The cluster's members then: id and peer address. Start each restored node with
    /// its id and address.
    pub members: BTreeMap<u64, String>,
}

fn position(meta: &SnapshotMeta<u64, openraft::BasicNode>) -> Option<LogId<u64>> {
    meta.last_log_id
}

impl RaftNode {
    /// A snapshot of everything this node has applied, made now.
    pub(crate) async fn fresh_snapshot(&self) -> Result<StateSnapshot, ReplicaError> {
        let raft = &self.inner.raft;
        let wanted = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
        let covered = |m: &openraft::RaftMetrics<u64, openraft::BasicNode>| {
            m.snapshot.is_some_and(|s| s.index >= wanted)
        };
        if !covered(&raft.metrics().borrow()) {
            raft.trigger()
                .snapshot()
                .await
                .map_err(crate::node::fatal_error)?;
            raft.wait(Some(SNAPSHOT_WAIT))
                .metrics(covered, "a snapshot of everything applied")
                .await
                .map_err(|e| ReplicaError::Unknown(format!("no snapshot: {e}")))?;
        }
        let bytes = self
            .inner
            .kv
            .get(Space::Snapshot, SNAPSHOT_KEY)
            .map_err(|e| ReplicaError::Fatal(format!("reading the snapshot: {}", e.0)))?
            .ok_or_else(|| ReplicaError::Unknown("the snapshot was purged; retry".to_owned()))?;
        let (meta, _) = open_stored_snapshot(&bytes)
            .map_err(|e| ReplicaError::Fatal(format!("the stored snapshot: {e}")))?;
        let last = position(&meta)
            .ok_or_else(|| ReplicaError::Unknown("the snapshot covers nothing yet".to_owned()))?;
        Ok(StateSnapshot {
            node_id: self.inner.config.node_id,
            index: last.index,
            term: last.leader_id.term,
            bytes,
        })
    }
}

/// Puts a stored snapshot (what [`StateSnapshot::bytes`] holds) into `kv`, which must be
/// empty, as the state of node `node_id`. Nothing is written when the snapshot is
/// damaged.
pub async fn restore_snapshot(
    kv: Arc<dyn KvBackend>,
    node_id: u64,
    bytes: &[u8],
) -> Result<RestoredSnapshot, ClusterError> {
    let (meta, data) = open_stored_snapshot(bytes)
        .map_err(|e| ClusterError::Storage(format!("the snapshot is damaged: {e}")))?;
    let last = position(&meta)
        .ok_or_else(|| ClusterError::Storage("the snapshot covers no log entry".to_owned()))?;
    let members: BTreeMap<u64, String> = meta
        .last_membership
        .membership()
        .nodes()
        .map(|(id, node)| (*id, node.addr.clone()))
        .collect();
    if !members.contains_key(&node_id) {
        let ids: Vec<_> = members.keys().collect();
        return Err(ClusterError::Config(format!(
            "node {node_id} was not a member when the snapshot was taken (members: {ids:?})"
        )));
    }
    let storage = |e: &dyn std::fmt::Display| ClusterError::Storage(e.to_string());
    let flusher = Flusher::spawn(kv.clone());
    let mut state = KvStateMachine::new(kv.clone(), flusher.clone());
    state
        .install_snapshot(&meta, Box::new(Cursor::new(data)))
        .await
        .map_err(|e| storage(&e))?;
    let mut log = KvLogStore::new(kv, flusher.clone());
    log.save_vote(&Vote::new(last.leader_id.term, node_id))
        .await
        .map_err(|e| storage(&e))?;
    log.purge(last).await.map_err(|e| storage(&e))?;
    flusher.sync().await.map_err(|e| storage(&e.0))?;
    Ok(RestoredSnapshot {
        index: last.index,
        term: last.leader_id.term,
        members,
    })
}
