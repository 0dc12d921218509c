//! [`RaftNode`]: one Raft member, assembled from its storage, and the `Replicator` the
//! services use.
//!
//! ```text
//! start: Flusher + KvLogStore + KvStateMachine ─> Raft::new (seeded) ─> initialize once
//!        ─> wait for a leader ─> ticker (Tick every tick_interval while leader and idle)
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use micro_core::Clock;
use micro_core::cluster::{ClusterStatus, Member, Role};
use micro_core::kv::KvBackend;
use micro_core::replicator::{BoxFuture, ReplicaError, Replicator};
use micro_core::rng::entropy_seed;
use micro_core::state::{Command, Request, Response, StateReader};
use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::{BasicNode, Raft, ServerState};
use tokio::task::JoinHandle;

use crate::{
    ClusterError, Flusher, KvLogStore, KvStateMachine, NoPeerNetwork, RaftNodeConfig,
    SeededRuntime, TypeConfig,
};

/// How long `start` waits for a single-member cluster to elect itself.
const FIRST_LEADER_WAIT: Duration = Duration::from_secs(10);

/// One running Raft member.
#[derive(Debug, Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: u64,
    raft: Raft<TypeConfig>,
    kv: Arc<dyn KvBackend>,
    clock: Arc<dyn Clock>,
    committed_index: Arc<AtomicU64>,
    busy: AtomicBool,
    ticker: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl RaftNode {
    /// Starts a member on `kv` as a single-member cluster: it initializes the cluster on
    /// first start (never again: restarts recover from the log and snapshot) and waits
    /// until it leads.
    pub async fn start(
        config: RaftNodeConfig,
        kv: Arc<dyn KvBackend>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClusterError> {
        let raft_config = Arc::new(config.to_openraft()?);
        let flusher = Flusher::spawn(kv.clone());
        let log = KvLogStore::new(kv.clone(), flusher.clone());
        let committed_index = log.committed_index();
        let machine = KvStateMachine::new(kv.clone(), flusher);
        let seed = config.seed.unwrap_or_else(entropy_seed);
        let raft = SeededRuntime::scope(
            seed,
            Raft::new(config.node_id, raft_config, NoPeerNetwork, log, machine),
        )
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        initialize_once(&raft, &config).await?;
        raft.wait(Some(FIRST_LEADER_WAIT))
            .current_leader(config.node_id, "single-member cluster elects itself")
            .await
            .map_err(|e| {
                ClusterError::Raft(format!("no leader after {FIRST_LEADER_WAIT:?}: {e}"))
            })?;
        let inner = Arc::new(Inner {
            node_id: config.node_id,
            raft,
            kv,
            clock,
            committed_index,
            busy: AtomicBool::new(false),
            ticker: std::sync::Mutex::new(None),
        });
        let ticker = tokio::spawn(tick_loop(Arc::downgrade(&inner), config.tick_interval));
        *inner
            .ticker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ticker);
        Ok(Self { inner })
    }

    /// Stops Raft and the ticker. Writes acknowledged before are durable.
    pub async fn shutdown(&self) {
        let ticker = self
            .inner
            .ticker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(ticker) = ticker {
            ticker.abort();
        }
        if let Err(err) = self.inner.raft.shutdown().await {
            tracing::warn!(%err, "raft did not shut down cleanly");
        }
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

async fn initialize_once(
    raft: &Raft<TypeConfig>,
    config: &RaftNodeConfig,
) -> Result<(), ClusterError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
    if initialized {
        tracing::info!(node_id = config.node_id, "recovered existing cluster state");
        return Ok(());
    }
    let members = BTreeMap::from([(
        config.node_id,
        BasicNode {
            addr: config.peer_addr.clone(),
        },
    )]);
    match raft.initialize(members).await {
        // Another start raced us to it: the cluster is initialized either way.
        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
        Err(err) => Err(ClusterError::Raft(format!("initialize: {err}"))),
    }
}

async fn tick_loop(inner: std::sync::Weak<Inner>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let leading = inner.raft.metrics().borrow().current_leader == Some(inner.node_id);
        // A write since the last tick already moved log time: no tick needed.
        if !leading || inner.busy.swap(false, Ordering::Relaxed) {
            continue;
        }
        let request = Request {
            at_ms: inner.clock.now_ms(),
            command: Command::Tick,
        };
        if let Err(err) = inner.raft.client_write(request).await {
            tracing::debug!(%err, "tick not applied");
        }
    }
}

fn write_error(err: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ReplicaError {
    match err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            ReplicaError::NoLeader(f.leader_id.map_or_else(
                || "no leader elected".to_owned(),
                |id| format!("leader is node {id}"),
            ))
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ReplicaError::Unknown(e.to_string())
        }
        RaftError::Fatal(fatal) => fatal_error(fatal),
    }
}

fn read_error(err: RaftError<u64, CheckIsLeaderError<u64, BasicNode>>) -> ReplicaError {
    match err {
        RaftError::APIError(e) => ReplicaError::NoLeader(e.to_string()),
        RaftError::Fatal(fatal) => fatal_error(fatal),
    }
}

fn fatal_error(fatal: Fatal<u64>) -> ReplicaError {
    match fatal {
        Fatal::Stopped => ReplicaError::ShuttingDown,
        other => ReplicaError::Fatal(other.to_string()),
    }
}

impl Replicator for RaftNode {
    fn propose(&self, command: Command) -> BoxFuture<'static, Result<Response, ReplicaError>> {
        let inner = self.inner.clone();
        inner.busy.store(true, Ordering::Relaxed);
        Box::pin(async move {
            let request = Request {
                at_ms: inner.clock.now_ms(),
                command,
            };
            let written = inner
                .raft
                .client_write(request)
                .await
                .map_err(write_error)?;
            Ok(written.data)
        })
    }

    fn read_barrier(&self) -> BoxFuture<'static, Result<(), ReplicaError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            inner
                .raft
                .ensure_linearizable()
                .await
                .map(|_| ())
                .map_err(read_error)
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
            })
            .collect();
        ClusterStatus {
            node_id: metrics.id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            members,
            commit_index: self.inner.committed_index.load(Ordering::Relaxed),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
        }
    }
}
