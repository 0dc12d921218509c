//! [`PoolHandle`]: sends a call to the least-loaded healthy worker of a handler's pool.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorId, ActorRef, ActorStatus};
use tokio::sync::Notify;

use super::worker::WorkerMsg;
use crate::context::Context;
use crate::error::{self, Error};
use crate::handler::{Invoke, Output};

/// The most calls queued or running on one worker; past it calls fail with 503 instead
/// of piling up in unbounded mailboxes.
pub(crate) const CALLS_PER_WORKER_MAX: usize = 64;
/// How long a call waits for a crashed worker to be replaced when no other is healthy.
pub(crate) const RESTART_WAIT: Duration = Duration::from_secs(2);

/// The workers of one handler. Cloning is cheap; the supervisor swaps restarted workers
/// into their slots, and every clone sees them.
#[derive(Debug, Clone, Default)]
pub(crate) struct PoolHandle {
    slots: Arc<RwLock<Vec<Slot>>>,
    restarted: Arc<Notify>,
}

#[derive(Debug)]
struct Slot {
    actor: ActorRef<WorkerMsg>,
    in_flight: Arc<AtomicUsize>,
    /// Cleared by the first caller that sees the worker die, so later calls skip it
    /// until the supervisor puts a new worker in the slot.
    healthy: Arc<AtomicBool>,
}

/// A picked worker; counts the call against it until dropped.
struct Lease {
    actor: ActorRef<WorkerMsg>,
    in_flight: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PoolHandle {
    /// Adds a worker.
    pub(crate) fn push(&self, actor: ActorRef<WorkerMsg>) {
        self.write().push(Slot::new(actor));
    }

    /// Puts `actor` in the slot of the worker `failed`; false if it is not in this pool.
    pub(crate) fn replace(&self, failed: ActorId, actor: ActorRef<WorkerMsg>) -> bool {
        let mut slots = self.write();
        let Some(slot) = slots.iter_mut().find(|s| s.actor.get_id() == failed) else {
            return false;
        };
        *slot = Slot::new(actor);
        drop(slots);
        self.restarted.notify_waiters();
        true
    }

    /// Whether `actor` is one of this pool's workers.
    pub(crate) fn contains(&self, actor: ActorId) -> bool {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots.iter().any(|s| s.actor.get_id() == actor)
    }

    /// Runs `invoke` on the least-loaded healthy worker. A worker that dies before
    /// replying (its handler panicked) makes this a 500; a stopped or full pool a 503.
    pub(crate) async fn call(
        &self,
        invoke: Invoke,
        ctx: Context,
        body: Vec<u8>,
    ) -> Result<Output, Error> {
        let id = ctx.service().to_owned();
        let endpoint = ctx.endpoint().to_owned();
        let lease = self.lease(&id).await?;
        let sent = lease
            .actor
            .call(
                |reply| WorkerMsg::Call {
                    invoke,
                    ctx,
                    body,
                    reply,
                },
                None,
            )
            .await;
        match sent {
            Ok(CallResult::Success(result)) => result,
            Ok(CallResult::SenderError | CallResult::Timeout) | Err(_) => {
                lease.healthy.store(false, Ordering::Relaxed);
                Err(error::internal(
                    &id,
                    format!("{endpoint} failed: the handler crashed (see the service log)"),
                ))
            }
        }
    }

    /// A healthy worker, waiting up to [`RESTART_WAIT`] for a restart if none is.
    async fn lease(&self, id: &str) -> Result<Lease, Error> {
        let restarted = self.restarted.notified();
        tokio::pin!(restarted);
        restarted.as_mut().enable();
        if let Some(lease) = self.try_lease(id)? {
            return Ok(lease);
        }
        let _ = tokio::time::timeout(RESTART_WAIT, restarted).await;
        self.try_lease(id)?
            .ok_or_else(|| error::unavailable(id, format!("{id} has no healthy worker")))
    }

    fn try_lease(&self, id: &str) -> Result<Option<Lease>, Error> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        if slots.is_empty() {
            return Err(error::unavailable(id, format!("{id} is not running")));
        }
        let Some(slot) = slots
            .iter()
            .filter(|s| s.is_healthy())
            .min_by_key(|s| s.in_flight.load(Ordering::Relaxed))
        else {
            return Ok(None);
        };
        if slot.in_flight.load(Ordering::Relaxed) >= CALLS_PER_WORKER_MAX {
            return Err(error::unavailable(
                id,
                format!("{id} is busy: every worker has {CALLS_PER_WORKER_MAX} calls queued"),
            ));
        }
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(Some(Lease {
            actor: slot.actor.clone(),
            in_flight: slot.in_flight.clone(),
            healthy: slot.healthy.clone(),
        }))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Slot>> {
        self.slots.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Slot {
    fn new(actor: ActorRef<WorkerMsg>) -> Self {
        Self {
            actor,
            in_flight: Arc::new(AtomicUsize::new(0)),
            healthy: Arc::new(AtomicBool::new(true)),
        }
    }

    fn is_healthy(&self) -> bool {
        // A fresh worker may still be `Starting`: messages sent now are queued for it.
        self.healthy.load(Ordering::Relaxed)
            && matches!(
                self.actor.get_status(),
                ActorStatus::Starting | ActorStatus::Running
            )
    }
}
