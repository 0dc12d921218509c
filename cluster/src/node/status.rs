//! The `Replicator` face of a node, its status, and error mapping.

use std::sync::atomic::Ordering;

use micro_core::cluster::{ClusterStatus, Member, MembershipChange, Role};
use micro_core::replicator::{BoxFuture, ReplicaError, Replicator};
use micro_core::state::{Command, Response, StateReader};
use openraft::ServerState;
use openraft::error::Fatal;

use crate::RaftNode;

/// The replica error of a fatal Raft error.
pub(crate) fn fatal_error(fatal: Fatal<u64>) -> ReplicaError {
    match fatal {
        Fatal::Stopped => ReplicaError::ShuttingDown,
        other => ReplicaError::Fatal(other.to_string()),
    }
}

impl Replicator for RaftNode {
    fn propose(&self, command: Command) -> BoxFuture<'static, Result<Response, ReplicaError>> {
        let node = self.clone();
        Box::pin(async move { node.propose_anywhere(command).await })
    }

    fn read_barrier(&self) -> BoxFuture<'static, Result<(), ReplicaError>> {
        let node = self.clone();
        Box::pin(async move { node.barrier().await })
    }

    fn change_membership(
        &self,
        change: MembershipChange,
    ) -> BoxFuture<'static, Result<(), ReplicaError>> {
        let node = self.clone();
        Box::pin(async move { Self::change_membership(&node, change).await })
    }

    fn snapshot(
        &self,
    ) -> BoxFuture<'static, Result<micro_core::replicator::StateSnapshot, ReplicaError>> {
        let node = self.clone();
        Box::pin(async move { node.fresh_snapshot().await })
    }

    fn applied_past(&self, index: u64) -> BoxFuture<'static, u64> {
        let mut metrics = self.inner.raft.metrics();
        Box::pin(async move {
            loop {
                let applied = metrics
                    .borrow_and_update()
                    .last_applied
                    .map_or(0, |id| id.index);
                if applied > index {
                    return applied;
                }
                if metrics.changed().await.is_err() {
                    // Raft stopped: nothing will be applied here again.
                    std::future::pending::<()>().await;
                }
            }
        })
    }

    fn reader(&self) -> StateReader {
        StateReader::new(self.inner.kv.clone())
    }

    fn status(&self) -> ClusterStatus {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let role_of = |id: u64| match (id == metrics.id, metrics.current_leader == Some(id)) {
            (_, true) => Role::Leader,
            (true, false) if metrics.state == ServerState::Candidate => Role::Candidate,
            _ if voters.contains(&id) => Role::Follower,
            _ => Role::Learner,
        };
        let members = membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                address: node.addr.clone(),
                role: role_of(*id),
                silent_ms: (*id != metrics.id)
                    .then(|| self.inner.network.silent_ms(&node.addr))
                    .flatten(),
            })
            .collect();
        ClusterStatus {
            node_id: metrics.id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            members,
            commit_index: self.inner.committed_index.load(Ordering::Relaxed),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
            purged_index: metrics.purged.map_or(0, |id| id.index),
        }
    }
}
