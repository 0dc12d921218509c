//! [`StoreActor`]: dispatches store requests; the work runs in tasks it spawns.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use micro_core::replicator::{BoxFuture, Consistency, ReplicaError, Replicator};
use micro_core::store::StoreError;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::store::logic::{delete_command, put_command, replica_error, resolve};
use crate::store::message::Reply;
use crate::store::{StoreMsg, TableRef};

/// The most store requests one node works on at once; beyond it requests are refused
/// as unavailable instead of queueing without bound.
pub const IN_FLIGHT_MAX: usize = 16_384;

/// The store service actor.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreActor;

/// What the store actor is started with.
#[derive(Debug, Clone)]
pub struct StoreArgs {
    /// Where commands go and reads come from.
    pub replicator: Arc<dyn Replicator>,
}

/// The store actor's state.
#[derive(Debug)]
pub struct StoreState {
    replicator: Arc<dyn Replicator>,
    in_flight: Arc<AtomicUsize>,
}

impl Actor for StoreActor {
    type Msg = StoreMsg;
    type State = StoreState;
    type Arguments = StoreArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<StoreMsg>,
        args: StoreArgs,
    ) -> Result<StoreState, ActorProcessingErr> {
        Ok(StoreState {
            replicator: args.replicator,
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<StoreMsg>,
        message: StoreMsg,
        state: &mut StoreState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            StoreMsg::Read {
                table,
                query,
                consistency,
                reply,
            } => {
                on_read(state, table, query, consistency, reply);
            }
            StoreMsg::Write {
                table,
                record,
                reply,
            } => on_write(state, &table, record, reply),
            StoreMsg::Delete { table, key, reply } => on_delete(state, &table, key, reply),
            StoreMsg::List {
                table,
                query,
                consistency,
                reply,
            } => {
                on_list(state, table, query, consistency, reply);
            }
            StoreMsg::Databases { namespace, reply } => {
                let reader = state.replicator.reader();
                let barrier = state.replicator.read_barrier();
                spawn_reply(state, reply, async move {
                    barrier.await.map_err(replica_error)?;
                    reader.store_databases(&namespace)
                });
            }
            StoreMsg::Snapshot {
                namespace,
                database,
                reply,
            } => {
                let reader = state.replicator.reader();
                let barrier = state.replicator.read_barrier();
                spawn_reply(state, reply, async move {
                    if let Some(database) = &database {
                        // The same name checks as every other store request.
                        resolve(&TableRef::new(namespace.clone(), database.clone(), ""))?;
                    }
                    barrier.await.map_err(replica_error)?;
                    reader.store_snapshot(&namespace, database.as_deref())
                });
            }
            StoreMsg::Tables { table, reply } => {
                let reader = state.replicator.reader();
                let barrier = state.replicator.read_barrier();
                spawn_reply(state, reply, async move {
                    let path = resolve(&table)?;
                    barrier.await.map_err(replica_error)?;
                    reader.store_tables(&path.namespace, &path.database)
                });
            }
        }
        Ok(())
    }
}

/// The wait before a read: the replicator's barrier, or none for a stale read.
fn barrier(
    state: &StoreState,
    consistency: Consistency,
) -> BoxFuture<'static, Result<(), ReplicaError>> {
    match consistency {
        Consistency::Linearizable => state.replicator.read_barrier(),
        Consistency::Stale => Box::pin(async { Ok(()) }),
    }
}

fn on_read(
    state: &StoreState,
    table: TableRef,
    query: micro_core::store::ReadQuery,
    consistency: Consistency,
    reply: Reply<Vec<micro_core::store::Record>>,
) {
    let reader = state.replicator.reader();
    let barrier = barrier(state, consistency);
    spawn_reply(state, reply, async move {
        let path = resolve(&table)?;
        query.validate()?;
        barrier.await.map_err(replica_error)?;
        reader.store_read(&path, &query)
    });
}

fn on_list(
    state: &StoreState,
    table: TableRef,
    query: micro_core::store::ListQuery,
    consistency: Consistency,
    reply: Reply<Vec<String>>,
) {
    let reader = state.replicator.reader();
    let barrier = barrier(state, consistency);
    spawn_reply(state, reply, async move {
        let path = resolve(&table)?;
        barrier.await.map_err(replica_error)?;
        reader.store_list(&path, &query)
    });
}

fn on_write(
    state: &StoreState,
    table: &TableRef,
    record: micro_core::store::Record,
    reply: Reply<()>,
) {
    let command = match put_command(table, record) {
        Ok(command) => command,
        Err(err) => return answer(reply, Err(err)),
    };
    let proposal = state.replicator.propose(command);
    spawn_reply(state, reply, async move {
        proposal.await.map(|_| ()).map_err(replica_error)
    });
}

fn on_delete(state: &StoreState, table: &TableRef, key: String, reply: Reply<()>) {
    let command = match delete_command(table, key) {
        Ok(command) => command,
        Err(err) => return answer(reply, Err(err)),
    };
    let proposal = state.replicator.propose(command);
    spawn_reply(state, reply, async move {
        proposal.await.map(|_| ()).map_err(replica_error)
    });
}

/// Runs `work` in its own task and answers with its result, so the actor goes on to the
/// next message at once.
fn spawn_reply<T, F>(state: &StoreState, reply: Reply<T>, work: F)
where
    T: Send + 'static,
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let in_flight = state.in_flight.clone();
    if in_flight.fetch_add(1, Ordering::AcqRel) >= IN_FLIGHT_MAX {
        in_flight.fetch_sub(1, Ordering::AcqRel);
        let why = format!("more than {IN_FLIGHT_MAX} store requests in flight; retry");
        return answer(reply, Err(StoreError::Unavailable(why)));
    }
    tokio::spawn(async move {
        let result = work.await;
        in_flight.fetch_sub(1, Ordering::AcqRel);
        answer(reply, result);
    });
}

fn answer<T>(reply: Reply<T>, result: Result<T, StoreError>) {
    // The caller may have timed out and gone; its answer then has nowhere to go.
    if reply.send(result).is_err() {
        tracing::debug!("store caller went away before its answer");
    }
}
