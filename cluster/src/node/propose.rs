//! Writes and linearizable reads from any node: local on the leader, forwarded by a
//! follower, each within [`REQUEST_DEADLINE`].

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use micro_core::replicator::ReplicaError;
use micro_core::state::{Command, Response};
use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::time::Instant;

use crate::RaftNode;
use crate::node::status::fatal_error;
use crate::node::{Inner, REQUEST_DEADLINE};
use crate::peer::{CallError, PeerCall};

/// How long to wait before asking again who leads.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How long a leader asks again for a read index that a heartbeat round failed to
/// confirm, before refusing the read.
const READ_INDEX_RETRY: Duration = Duration::from_secs(1);

/// Ticks skipped in a row because of other writes after which the leader ticks anyway:
/// ticks also purge what expired (events' retention), which must not wait for a lull.
const BUSY_TICKS_SKIPPED_MAX: u32 = 5;

/// Proposes a `Tick` every `tick_interval` while this node leads and nothing else was
/// written, so log time (and expiry) moves on an idle cluster; under steady writes,
/// every [`BUSY_TICKS_SKIPPED_MAX`] intervals, so expired data is still purged.
pub(super) async fn tick_loop(inner: Weak<Inner>) {
    let Some(every) = inner.upgrade().map(|i| i.config.tick_interval) else {
        return;
    };
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut skipped = 0;
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let node = RaftNode { inner };
        let leading = node.leader().is_some_and(|(id, _)| id == node.node_id());
        if !leading {
            continue;
        }
        if node.inner.busy.swap(false, Ordering::Relaxed) && skipped < BUSY_TICKS_SKIPPED_MAX {
            skipped += 1;
            continue;
        }
        skipped = 0;
        if let Err(err) = node.propose_local(Command::Tick).await {
            tracing::debug!(%err, "tick not applied");
        }
    }
}

impl RaftNode {
    /// The leader this node knows of: its id and peer address.
    pub(crate) fn leader(&self) -> Option<(u64, String)> {
        // Called on every request: read the two fields under the borrow, clone nothing else.
        let receiver = self.inner.raft.metrics();
        let metrics = receiver.borrow();
        let id = metrics.current_leader?;
        let addr = metrics
            .membership_config
            .membership()
            .get_node(&id)?
            .addr
            .clone();
        Some((id, addr))
    }

    /// Whether this node is in the cluster's membership (voter or learner). A standby
    /// node not yet added, or a removed one, is not: it receives no log, so it can
    /// neither lead nor serve reads.
    pub(crate) fn is_member(&self) -> bool {
        if self.inner.removed.load(Ordering::Acquire) {
            return false;
        }
        let receiver = self.inner.raft.metrics();
        let metrics = receiver.borrow();
        let id = self.node_id();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .is_some()
    }

    /// Marks this node removed by the membership entry at log index `at`: it stops
    /// campaigning and serving until a leader replicates a later entry to it.
    pub(crate) fn removed_at(&self, at: u64) {
        self.inner.removed_at.fetch_max(at, Ordering::AcqRel);
        self.set_removed(true);
    }

    /// A leader replicated the log up to `index` to this node: past the entry that
    /// removed it, the node was added back.
    pub(crate) fn replicated_up_to(&self, index: u64) {
        if self.inner.removed.load(Ordering::Acquire)
            && index > self.inner.removed_at.load(Ordering::Acquire)
        {
            self.set_removed(false);
        }
    }

    /// Marks this node removed (it stops campaigning and serving) or a member again.
    fn set_removed(&self, removed: bool) {
        if self.inner.removed.swap(removed, Ordering::AcqRel) != removed {
            tracing::info!(
                node_id = self.node_id(),
                removed,
                "membership of this node changed"
            );
            self.inner.raft.runtime_config().elect(!removed);
        }
    }

    fn not_a_member(&self) -> ReplicaError {
        ReplicaError::NoLeader(format!(
            "node {} is not a member of a cluster (on standby, or removed); ask a member",
            self.node_id()
        ))
    }

    /// Proposes `command` on this node, which must lead; otherwise `NoLeader`.
    pub(crate) async fn propose_local(&self, command: Command) -> Result<Response, ReplicaError> {
        if self.inner.transferring.load(Ordering::Acquire) {
            return Err(ReplicaError::NoLeader(
                "leadership is being transferred".to_owned(),
            ));
        }
        self.check_disk()?;
        self.inner.busy.store(true, Ordering::Relaxed);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = self.inner.proposals.send((command, reply)).await;
        if queued.is_err() {
            return Err(ReplicaError::ShuttingDown);
        }
        #[cfg(feature = "inject-bugs")]
        if self.inner.config.bug == Some(crate::InjectedBug::AckBeforeCommit) {
            drop(answer);
            return Ok(Response::Done);
        }
        answer.await.unwrap_or(Err(ReplicaError::ShuttingDown))
    }

    /// Refuses to grow the log when the disk under the data is below its reserve. One
    /// `statvfs` per proposal (about a microsecond), so space freed counts at once.
    fn check_disk(&self) -> Result<(), ReplicaError> {
        let reserve = self.inner.config.disk_reserve;
        if reserve == 0 {
            return Ok(());
        }
        match self.inner.kv.free_space() {
            Some(free) if free < reserve => Err(ReplicaError::DiskFull(format!(
                "node {} has {} free on its data disk, below its reserve of {} \
                 (--disk-reserve); free space there, and writes resume",
                self.node_id(),
                mib(free),
                mib(reserve)
            ))),
            _ => Ok(()),
        }
    }

    /// Proposes `command` through whichever node leads, retrying while there is none.
    pub(crate) async fn propose_anywhere(
        &self,
        command: Command,
    ) -> Result<Response, ReplicaError> {
        let deadline = Instant::now() + REQUEST_DEADLINE;
        loop {
            let attempt = match self.leader() {
                Some((id, _)) if id == self.node_id() => self.propose_local(command.clone()).await,
                Some((_, addr)) => self.forward(&addr, &command, deadline).await,
                // Waiting would not help: no leader will ever contact this node.
                None if !self.is_member() => return Err(self.not_a_member()),
                None => Err(ReplicaError::NoLeader("no leader is elected".to_owned())),
            };
            match attempt {
                Err(ReplicaError::NoLeader(why)) if Instant::now() + RETRY_PAUSE < deadline => {
                    tracing::debug!(%why, "retrying a write");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    async fn forward(
        &self,
        addr: &str,
        command: &Command,
        deadline: Instant,
    ) -> Result<Response, ReplicaError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let call = PeerCall::Forward(Box::new(command.clone()));
        match self
            .inner
            .network
            .call::<Result<Response, ReplicaError>>(addr, &call, left)
            .await
        {
            Ok(answer) => answer,
            // Not delivered: safe to try again.
            Err(CallError::Unreachable(why)) => Err(ReplicaError::NoLeader(why)),
            Err(CallError::Network(why)) => Err(ReplicaError::Unknown(format!(
                "the leader at {addr} did not answer ({why}); the write may or may not be applied"
            ))),
        }
    }

    /// The read index on this node, which must lead: every write committed before the
    /// call is at or below it.
    pub(crate) async fn read_index_local(&self) -> Result<u64, ReplicaError> {
        // One heartbeat round that misses a follower (a starved process, a dropped
        // connection) fails the check at once; the check has no effect, so it is asked
        // again for a short while before the read is refused.
        let retry_until = Instant::now() + READ_INDEX_RETRY;
        loop {
            match self.read_index_once().await {
                Err(ReplicaError::NoQuorum(_)) if Instant::now() < retry_until => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    async fn read_index_once(&self) -> Result<u64, ReplicaError> {
        let check = self.inner.raft.ensure_linearizable();
        match tokio::time::timeout(REQUEST_DEADLINE, check).await {
            Ok(Ok(read_log_id)) => Ok(read_log_id.map_or(0, |id| id.index)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => {
                Err(ReplicaError::NoLeader("this node does not lead".to_owned()))
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                Err(ReplicaError::NoQuorum(e.to_string()))
            }
            Ok(Err(RaftError::Fatal(fatal))) => Err(fatal_error(fatal)),
            Err(_) => Err(ReplicaError::NoQuorum(format!(
                "leadership not confirmed by a majority within {REQUEST_DEADLINE:?}"
            ))),
        }
    }

    /// Waits until local reads are linearizable: on the leader its read index, on a
    /// follower the leader's read index applied locally.
    pub(crate) async fn barrier(&self) -> Result<(), ReplicaError> {
        #[cfg(feature = "inject-bugs")]
        if self.inner.config.bug == Some(crate::InjectedBug::StaleRead) {
            return Ok(());
        }
        // A non-member's state stopped (or never started) following the log: a read
        // index from the leader would never be applied here.
        if !self.is_member() {
            return Err(self.not_a_member());
        }
        let deadline = Instant::now() + REQUEST_DEADLINE;
        loop {
            let attempt = match self.leader() {
                Some((id, _)) if id == self.node_id() => self.read_index_local().await,
                Some((_, addr)) => self.remote_read_index(&addr, deadline).await,
                None => Err(ReplicaError::NoLeader("no leader is elected".to_owned())),
            };
            match attempt {
                Ok(index) => return self.wait_applied(index, deadline).await,
                Err(ReplicaError::NoLeader(_)) if Instant::now() + RETRY_PAUSE < deadline => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn remote_read_index(&self, addr: &str, deadline: Instant) -> Result<u64, ReplicaError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let answer =
            self.inner
                .network
                .call::<Result<u64, ReplicaError>>(addr, &PeerCall::ReadIndex, left);
        match answer.await {
            Ok(answer) => answer,
            Err(err) => Err(ReplicaError::NoLeader(err.to_string())),
        }
    }

    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), ReplicaError> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.inner
            .raft
            .wait(Some(left))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|e| {
                ReplicaError::NoQuorum(format!("not caught up to the read index {index}: {e}"))
            })
    }
}

/// `n` bytes in MiB, for messages.
fn mib(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // a figure for people
    let value = n as f64 / f64::from(1u32 << 20);
    format!("{value:.1} MiB")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use micro_core::kv::MemKvBackend;

    use crate::{RaftNode, RaftNodeConfig, TcpConnector};

    /// CI once saw a removed node keep waiting for a leader: a heartbeat sent before
    /// the removal arrived after the leader's "you were removed" and made it a member
    /// again. Only replication past the removing entry may do that.
    #[tokio::test]
    async fn a_heartbeat_from_before_the_removal_does_not_make_a_node_a_member_again() {
        let kv = Arc::new(MemKvBackend::new());
        let config = RaftNodeConfig::single(1, "127.0.0.1:1");
        let clock = Arc::new(micro_core::SystemClock);
        let node = RaftNode::start(config, kv, clock, Arc::new(TcpConnector))
            .await
            .unwrap();
        node.bootstrap().await.unwrap();
        assert!(node.is_member());

        node.removed_at(5);
        node.replicated_up_to(3);
        node.replicated_up_to(5);
        assert!(!node.is_member(), "a stale heartbeat re-admitted the node");

        node.replicated_up_to(6);
        assert!(node.is_member(), "replication past the removal is a re-add");
        node.shutdown().await;
    }
}
