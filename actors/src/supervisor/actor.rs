//! [`NodeSupervisor`]: one-for-one supervision of the service actors of a node.
//!
//! A child that panics or returns an error from a hook is restarted with the same
//! arguments, and every handle is pointed at the new actor. More than [`RESTARTS_MAX`]
//! restarts within [`RESTART_WINDOW`] means something is persistently wrong: the
//! supervisor then stops, and the node with it, instead of spinning.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use micro_core::replicator::Replicator;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::store::{StoreActor, StoreArgs, StoreHandle};

/// The most restarts of one child within [`RESTART_WINDOW`].
pub const RESTARTS_MAX: usize = 5;
/// The window over which restarts are counted.
pub const RESTART_WINDOW: Duration = Duration::from_secs(10);
/// How long a request through a handle may take before it fails with a timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The typed handles of every service of a node.
#[derive(Debug, Clone)]
pub struct NodeHandles {
    /// The store service.
    pub store: StoreHandle,
}

/// The supervisor actor.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeSupervisor;

/// The supervisor takes no messages: it only reacts to its children.
#[derive(Debug)]
pub enum SupervisorMsg {}

/// What the supervisor is started with.
#[derive(Debug)]
pub struct SupervisorArgs {
    /// Shared by every service.
    pub replicator: Arc<dyn Replicator>,
    /// Receives the handles once the children run.
    pub handles: oneshot::Sender<NodeHandles>,
}

/// The supervisor's state.
#[derive(Debug)]
pub struct SupervisorState {
    replicator: Arc<dyn Replicator>,
    store: StoreHandle,
    store_cell: ActorCell,
    restarts: VecDeque<Instant>,
}

impl NodeSupervisor {
    /// Starts the supervisor and its children; returns it and the handles of the
    /// services.
    pub async fn start(
        replicator: Arc<dyn Replicator>,
    ) -> Result<(ActorRef<SupervisorMsg>, NodeHandles), SpawnErr> {
        let (tx, rx) = oneshot::channel();
        let args = SupervisorArgs {
            replicator,
            handles: tx,
        };
        let (supervisor, _) = Actor::spawn(None, Self, args).await?;
        let handles = rx
            .await
            .map_err(|_| SpawnErr::StartupFailed("supervisor stopped while starting".into()))?;
        Ok((supervisor, handles))
    }
}

async fn spawn_store(
    supervisor: &ActorRef<SupervisorMsg>,
    replicator: &Arc<dyn Replicator>,
) -> Result<ActorRef<crate::store::StoreMsg>, SpawnErr> {
    let args = StoreArgs {
        replicator: replicator.clone(),
    };
    let (store, _) = Actor::spawn_linked(None, StoreActor, args, supervisor.get_cell()).await?;
    Ok(store)
}

impl Actor for NodeSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let store = spawn_store(&myself, &args.replicator).await?;
        let handle = StoreHandle::new(store.clone(), REQUEST_TIMEOUT);
        // The starter may have given up waiting; the node then shuts us down anyway.
        let _ = args.handles.send(NodeHandles {
            store: handle.clone(),
        });
        Ok(SupervisorState {
            replicator: args.replicator,
            store: handle,
            store_cell: store.get_cell(),
            restarts: VecDeque::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        _state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {}
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".to_owned()))
            }
            _ => return Ok(()),
        };
        if cell.get_id() != state.store_cell.get_id() {
            return Ok(());
        }
        tracing::error!(actor = "store", %why, "service actor failed; restarting it");
        let now = Instant::now();
        state
            .restarts
            .retain(|at| now.duration_since(*at) < RESTART_WINDOW);
        if state.restarts.len() >= RESTARTS_MAX {
            return Err(format!(
                "store actor failed {RESTARTS_MAX} times within {RESTART_WINDOW:?}: giving up"
            )
            .into());
        }
        state.restarts.push_back(now);
        let store = spawn_store(&myself, &state.replicator).await?;
        state.store.replace(store.clone());
        state.store_cell = store.get_cell();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use micro_core::Namespace;
    use micro_core::replicator::MemReplicator;
    use micro_core::store::{ReadQuery, Record};

    use super::*;
    use crate::store::TableRef;

    #[tokio::test]
    async fn a_killed_store_actor_is_restarted_and_handles_follow_it() {
        let replicator = Arc::new(MemReplicator::new(Arc::new(micro_core::SystemClock)));
        let (supervisor, handles) = NodeSupervisor::start(replicator).await.unwrap();
        let table = TableRef::new(Namespace::default(), "", "");
        let record = Record {
            key: "k".into(),
            value: b"v".to_vec(),
            ..Record::default()
        };
        handles.store.write(table.clone(), record).await.unwrap();

        tracing::info!("kill the store actor as a crash would");
        let first = supervisor.get_children();
        assert_eq!(first.len(), 1);
        first[0].kill();
        let mut restarted = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let children = supervisor.get_children();
            if children.len() == 1 && children[0].get_id() != first[0].get_id() {
                restarted = true;
                break;
            }
        }
        assert!(restarted, "the supervisor did not restart the store actor");

        tracing::info!("the old handle reaches the new actor, and state lives in Raft");
        let query = ReadQuery {
            key: "k".into(),
            ..ReadQuery::default()
        };
        assert_eq!(
            handles
                .store
                .read(table, query, Default::default())
                .await
                .unwrap()[0]
                .value,
            b"v"
        );
        supervisor.stop(None);
    }
}
