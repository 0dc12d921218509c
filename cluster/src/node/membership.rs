//! Forming, joining and changing the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use micro_core::replicator::ReplicaError;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use tokio::time::Instant;

use crate::node::status::fatal_error;
use micro_core::cluster::MembershipChange;

use crate::peer::PeerCall;
use crate::{ClusterError, RaftNode};

/// How long a single-member cluster may take to elect itself.
const FIRST_LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long a joining node keeps asking to be added.
const JOIN_TRYING_MAX: Duration = Duration::from_secs(300);
/// How long a leadership transfer may take.
const TRANSFER_WAIT: Duration = Duration::from_secs(5);
/// How long a leadership transfer may keep a voter from campaigning: longer than a
/// transfer takes, so the suspension never cuts one short, but bounded, so a transfer
/// whose leader died midway cannot leave a voter unable ever to campaign.
const ELECT_SUSPEND_MAX: Duration = Duration::from_secs(15);
/// How long the leader tries to tell a removed node it was removed.
const TELL_REMOVED_WAIT: Duration = Duration::from_secs(2);
/// How many times a leader tries to tell a removed node so.
const TELL_REMOVED_ATTEMPTS: u32 = 5;

/// How long a voter may see no leader before it campaigns on a fresh random delay.
fn stuck_after(config: &crate::RaftNodeConfig) -> Duration {
    config.election_timeout_max * 2
}

/// Breaks elections that keep splitting.
///
/// openraft 0.9 draws a node's election timeout once, at start, and checks it on a tick
/// of 1.5 heartbeats, so voters whose timeouts round to the same tick campaign together
/// round after round and split the vote for as long as they run (simulation seed 1635:
/// five voters, no leader for 40 s after healing). Raft re-randomizes the timeout for
/// every election; this does the same for a voter that has seen no leader for
/// [`stuck_after`]: it waits a fresh random part of an election timeout and campaigns.
pub(super) async fn election_watch(inner: std::sync::Weak<super::Inner>, seed: u64) {
    use micro_core::rng::{Rng, SeededRng};
    let rng = SeededRng::new(seed ^ 0x5eed_e1ec);
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leaderless_since: Option<Instant> = None;
    loop {
        interval.tick().await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let node = RaftNode { inner: strong };
        if node.leader().is_some() || !node.is_voter() {
            leaderless_since = None;
            continue;
        }
        let since = *leaderless_since.get_or_insert_with(Instant::now);
        let config = &node.inner.config;
        if since.elapsed() < stuck_after(config) {
            continue;
        }
        let spread = u64::try_from(config.election_timeout_max.as_millis()).unwrap_or(800);
        let pause = Duration::from_millis(rng.next_u64() % spread.max(1));
        drop(node);
        tokio::time::sleep(pause).await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let node = RaftNode { inner: strong };
        if node.leader().is_none() && node.is_voter() {
            tracing::info!(
                node_id = node.node_id(),
                "elections keep failing; campaigning"
            );
            if let Err(err) = node.inner.raft.trigger().elect().await {
                tracing::warn!(%err, "could not start an election");
            }
        }
        leaderless_since = Some(Instant::now());
    }
}

impl RaftNode {
    /// Whether this node is a voter of the cluster it knows (and was not removed).
    pub(crate) fn is_voter(&self) -> bool {
        if self.inner.removed.load(Ordering::Acquire) {
            return false;
        }
        let metrics = self.inner.raft.metrics();
        let id = self.node_id();
        metrics
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id)
    }

    /// Forms or joins the cluster as configured; see the module documentation.
    pub async fn bootstrap(&self) -> Result<(), ClusterError> {
        let raft = &self.inner.raft;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let config = &self.inner.config;
        if initialized {
            tracing::info!(node_id = config.node_id, "recovered existing cluster state");
            return Ok(());
        }
        if config.standby {
            tracing::info!(
                node_id = config.node_id,
                "standing by to be added to a cluster"
            );
            return Ok(());
        }
        if let Some(addr) = config.join.clone() {
            let node = self.clone();
            self.keep_task(tokio::spawn(async move { node.join_through(&addr).await }));
            return Ok(());
        }
        let founders: BTreeMap<u64, BasicNode> = if config.peers.is_empty() {
            BTreeMap::from([(
                config.node_id,
                BasicNode {
                    addr: config.peer_addr.clone(),
                },
            )])
        } else {
            config
                .peers
                .iter()
                .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
                .collect()
        };
        // Exactly one founder initializes, so concurrent starts cannot form two clusters.
        if founders.keys().next() != Some(&config.node_id) {
            tracing::info!(
                node_id = config.node_id,
                "waiting for the founder to form the cluster"
            );
            return Ok(());
        }
        match raft.initialize(founders.clone()).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(err) => return Err(ClusterError::Raft(format!("initialize: {err}"))),
        }
        if founders.len() == 1 {
            raft.wait(Some(FIRST_LEADER_WAIT))
                .current_leader(config.node_id, "single-member cluster elects itself")
                .await
                .map_err(|e| {
                    ClusterError::Raft(format!("no leader after {FIRST_LEADER_WAIT:?}: {e}"))
                })?;
        }
        Ok(())
    }

    async fn join_through(&self, addr: &str) {
        let change = MembershipChange::AddNode {
            id: self.node_id(),
            addr: self.inner.config.peer_addr.clone(),
        };
        let give_up = Instant::now() + JOIN_TRYING_MAX;
        while Instant::now() < give_up {
            let call = PeerCall::Membership(change.clone());
            match self
                .inner
                .network
                .call::<Result<(), ReplicaError>>(addr, &call, JOIN_TRYING_MAX)
                .await
            {
                Ok(Ok(())) => {
                    tracing::info!(node_id = self.node_id(), via = addr, "joined the cluster");
                    return;
                }
                Ok(Err(err)) => tracing::warn!(%err, via = addr, "join refused; retrying"),
                Err(err) => tracing::warn!(%err, via = addr, "join call failed; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::error!(
            via = addr,
            "could not join the cluster within {JOIN_TRYING_MAX:?}"
        );
    }

    /// Changes membership or leadership through whichever node leads.
    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), ReplicaError> {
        match self.leader() {
            Some((id, _)) if id == self.node_id() => self.change_local(change).await,
            Some((_, addr)) => {
                let call = PeerCall::Membership(change);
                let deadline = TRANSFER_WAIT + super::REQUEST_DEADLINE * 12;
                self.inner
                    .network
                    .call::<Result<(), ReplicaError>>(&addr, &call, deadline)
                    .await
                    .map_err(|e| ReplicaError::NoLeader(e.to_string()))?
            }
            None => Err(ReplicaError::NoLeader("no leader is elected".to_owned())),
        }
    }

    /// Runs a membership change on this node, which must lead.
    async fn change_local(&self, change: MembershipChange) -> Result<(), ReplicaError> {
        if self.leader().is_none_or(|(id, _)| id != self.node_id()) {
            return Err(ReplicaError::NoLeader("this node does not lead".to_owned()));
        }
        let raft = &self.inner.raft;
        let result = match change {
            MembershipChange::AddNode { id, addr } => {
                // As a learner first, so it catches up before it counts for the quorum.
                raft.add_learner(id, BasicNode { addr }, true)
                    .await
                    .map_err(write_error)?;
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
            }
            MembershipChange::RemoveNode { id } => {
                let voters: BTreeSet<u64> = raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .collect();
                let change = if voters.contains(&id) {
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                };
                let addr = self.member_addr(id);
                let removed = raft.change_membership(change, false).await;
                if let (Ok(written), Some(addr)) = (&removed, addr) {
                    self.tell_removed(addr, written.log_id.index);
                }
                removed
            }
            MembershipChange::TransferLeader { id } => return self.transfer_leader(id).await,
        };
        result.map(|_| ()).map_err(write_error)
    }

    /// The peer address of member `id`.
    fn member_addr(&self, id: u64) -> Option<String> {
        let metrics = self.inner.raft.metrics();
        let node = metrics
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .cloned();
        node.map(|n| n.addr)
    }

    /// Tells a removed node so, best effort: it would otherwise campaign and accept
    /// client requests it can never serve, since no leader sends it the log entry that
    /// removed it. Retried a few times: one lost message (a busy machine, a dropped
    /// connection) would leave it waiting for a leader for good.
    fn tell_removed(&self, addr: String, at: u64) {
        let network = self.inner.network.clone();
        tokio::spawn(async move {
            for attempt in 1..=TELL_REMOVED_ATTEMPTS {
                let told = network
                    .call::<Result<(), ReplicaError>>(
                        &addr,
                        &PeerCall::Removed(at),
                        TELL_REMOVED_WAIT,
                    )
                    .await;
                match told {
                    Ok(_) => return,
                    Err(err) if attempt == TELL_REMOVED_ATTEMPTS => {
                        tracing::info!(%err, addr, "could not tell a removed node it was removed");
                    }
                    Err(_) => tokio::time::sleep(TELL_REMOVED_WAIT / 4).await,
                }
            }
        });
    }

    /// Hands leadership to voter `target`: holds new writes, stops heartbeats so the
    /// followers' leader lease expires, keeps the other voters from campaigning, and asks
    /// the target to campaign. Everything is restored whatever the outcome.
    async fn transfer_leader(&self, target: u64) -> Result<(), ReplicaError> {
        if target == self.node_id() {
            return Ok(());
        }
        let membership = self.inner.raft.metrics().borrow().membership_config.clone();
        let voters: Vec<u64> = membership.membership().voter_ids().collect();
        let Some(target_node) = membership.membership().get_node(&target).cloned() else {
            return Err(ReplicaError::Rejected(format!(
                "node {target} is not a member"
            )));
        };
        if !voters.contains(&target) {
            return Err(ReplicaError::Rejected(format!(
                "node {target} is a learner, not a voter"
            )));
        }
        let others: Vec<String> = voters
            .iter()
            .filter(|id| **id != target && **id != self.node_id())
            .filter_map(|id| membership.membership().get_node(id).map(|n| n.addr.clone()))
            .collect();
        self.set_elect_everywhere(&others, false).await;
        let outcome = self.hand_over(target, &target_node.addr).await;
        self.set_elect_everywhere(&others, true).await;
        outcome
    }

    async fn hand_over(&self, target: u64, target_addr: &str) -> Result<(), ReplicaError> {
        let raft = &self.inner.raft;
        self.inner.transferring.store(true, Ordering::Release);
        raft.runtime_config().heartbeat(false);
        raft.runtime_config().elect(false);
        let lease = self.inner.config.election_timeout_max + Duration::from_millis(100);
        tokio::time::sleep(lease).await;
        let call = PeerCall::Campaign;
        let campaign = self
            .inner
            .network
            .call::<Result<(), ReplicaError>>(target_addr, &call, TRANSFER_WAIT)
            .await;
        let elected = match campaign {
            Ok(Ok(())) => raft
                .wait(Some(TRANSFER_WAIT))
                .metrics(|m| m.current_leader == Some(target), "transfer leadership")
                .await
                .map(|_| ())
                .map_err(|e| {
                    ReplicaError::Unknown(format!("node {target} did not take over: {e}"))
                }),
            Ok(Err(err)) => Err(err),
            Err(err) => Err(ReplicaError::Unknown(format!(
                "node {target} unreachable: {err}"
            ))),
        };
        raft.runtime_config().heartbeat(true);
        raft.runtime_config().elect(true);
        self.inner.transferring.store(false, Ordering::Release);
        elected
    }

    async fn set_elect_everywhere(&self, addrs: &[String], enabled: bool) {
        for addr in addrs {
            let call = PeerCall::SetElect(enabled);
            if let Err(err) = self
                .inner
                .network
                .call::<Result<(), ReplicaError>>(addr, &call, TRANSFER_WAIT)
                .await
            {
                tracing::warn!(%err, addr, enabled, "could not set elections on a voter");
            }
        }
    }

    /// Starts an election on this node now (the last step of a leadership transfer).
    /// Allows this node to campaign again, or suspends its elections for at most
    /// [`ELECT_SUSPEND_MAX`] (a leadership transfer elsewhere). A removed node stays
    /// silent whatever it is asked.
    pub(crate) fn set_elect(&self, enabled: bool) {
        let removed = self.inner.removed.load(Ordering::Acquire);
        self.inner.raft.runtime_config().elect(enabled && !removed);
        if enabled {
            return;
        }
        let inner = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            tokio::time::sleep(ELECT_SUSPEND_MAX).await;
            if let Some(inner) = inner.upgrade()
                && !inner.removed.load(Ordering::Acquire)
            {
                inner.raft.runtime_config().elect(true);
            }
        });
    }

    pub(crate) async fn campaign(&self) -> Result<(), ReplicaError> {
        self.inner.raft.runtime_config().elect(true);
        self.inner.raft.trigger().elect().await.map_err(fatal_error)
    }
}

fn write_error(err: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ReplicaError {
    match err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            ReplicaError::NoLeader("this node no longer leads".to_owned())
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ReplicaError::Rejected(e.to_string())
        }
        RaftError::Fatal(fatal) => fatal_error(fatal),
    }
}
