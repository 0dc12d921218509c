//! [`PoolSupervisor`]: starts the workers of every handler pool of a service and
//! replaces any that fails (one-for-one).

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};

use super::handle::PoolHandle;
use super::worker::{WorkerActor, WorkerArgs, WorkerMsg};

/// The supervisor of a service's workers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PoolSupervisor;

/// The supervisor takes no messages: it only reacts to its workers.
#[derive(Debug)]
pub(crate) enum SupervisorMsg {}

/// What the supervisor starts: `concurrency` workers in each pool.
#[derive(Debug, Clone)]
pub(crate) struct SupervisorArgs {
    /// The registry name of the service, for logs.
    pub(crate) service: String,
    /// One empty pool per handler, filled by the supervisor.
    pub(crate) pools: Vec<PoolHandle>,
    /// Workers per pool.
    pub(crate) concurrency: usize,
    /// The longest one call may run.
    pub(crate) timeout: Duration,
}

/// The supervisor's state.
#[derive(Debug)]
pub(crate) struct SupervisorState {
    args: SupervisorArgs,
    restarts: u64,
}

impl PoolSupervisor {
    /// Starts the supervisor and, before this returns, every worker.
    pub(crate) async fn start(args: SupervisorArgs) -> Result<ActorRef<SupervisorMsg>, SpawnErr> {
        let (supervisor, _) = Actor::spawn(None, Self, args).await?;
        Ok(supervisor)
    }
}

async fn spawn_worker(
    supervisor: &ActorRef<SupervisorMsg>,
    timeout: Duration,
) -> Result<ActorRef<WorkerMsg>, SpawnErr> {
    let args = WorkerArgs { timeout };
    let (worker, _) = Actor::spawn_linked(None, WorkerActor, args, supervisor.get_cell()).await?;
    Ok(worker)
}

impl Actor for PoolSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        assert!(args.concurrency > 0, "a pool needs at least one worker");
        for pool in &args.pools {
            for _ in 0..args.concurrency {
                pool.push(spawn_worker(&myself, args.timeout).await?);
            }
        }
        Ok(SupervisorState { args, restarts: 0 })
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
        // Workers stop cleanly only when the service stops: nothing to restart then.
        let SupervisionEvent::ActorFailed(cell, why) = event else {
            return Ok(());
        };
        let Some(pool) = state.args.pools.iter().find(|p| p.contains(cell.get_id())) else {
            return Ok(());
        };
        state.restarts += 1;
        tracing::error!(
            service = %state.args.service,
            worker = %cell.get_id(),
            restarts = state.restarts,
            %why,
            "a handler worker failed (its call got a 500); restarting it"
        );
        let worker = spawn_worker(&myself, state.args.timeout).await?;
        let replaced = pool.replace(cell.get_id(), worker);
        debug_assert!(replaced, "the failed worker was found in this pool");
        Ok(())
    }
}
