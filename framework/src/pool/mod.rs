//! Handlers as supervised ractor actors.
//!
//! ```text
//!                       PoolSupervisor (one per service; restarts failed workers)
//!                      /        |         \
//!   pool of handler 0: Worker  Worker ... Worker   (concurrency workers each)
//!   pool of handler 1: Worker  Worker ... Worker
//!
//! RunningService ──PoolHandle::call(invoke, ctx, body)──> least-loaded Worker
//!                <──────── Result<Output, Error> ───────── (awaited inside handle())
//! ```
//!
//! A worker serves one call at a time and awaits the handler inside its `handle`, so a
//! panic in the handler fails the actor: ractor catches it, the caller's reply port is
//! dropped (the caller answers 500 at once), and the supervisor replaces the worker in
//! its slot, so the next call finds a healthy one. Restarts happen only after a failing
//! call, so they are bounded by the calls made. A streaming handler's stream is driven
//! by the caller; [`crate::Handler`] guards it against panics itself.

mod handle;
mod supervisor;
mod worker;

pub(crate) use handle::PoolHandle;
pub(crate) use supervisor::{PoolSupervisor, SupervisorArgs, SupervisorMsg};
