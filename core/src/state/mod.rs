//! The replicated state machine: log entries ([`Request`] = a [`Command`] stamped with the
//! leader's wall time), their pure, deterministic [`apply`], and reads of the applied
//! state ([`StateReader`]).
//!
//! ```text
//! leader: Request { at_ms: clock.now_ms(), command }  ──Raft log──>  every replica:
//!     apply(kv, request) -> Applied { batch, response }   (same log => same state)
//!     kv.write(batch)
//! ```
//!
//! **Log time.** Expiry is judged against the log time: the largest `at_ms` applied so
//! far, never a replica's own clock, so every replica agrees on what has expired. The
//! leader proposes [`Command::Tick`] periodically so log time moves when nothing else is
//! written; ticks also purge expired records.

mod apply;
mod auth;
pub mod blobs;
mod command;
mod config;
mod events;
mod keys;
mod reader;
mod services;

pub use apply::{Applied, PURGE_PER_TICK, apply};
pub use command::{Command, Request, Response};
pub use reader::{LIST_KEYS_MAX, READ_RECORDS_MAX, StateReader};

/// Applies `command` at log time `at_ms` and writes its batch: the step every state
/// test repeats.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn apply_now(kv: &dyn crate::kv::KvBackend, at_ms: u64, command: Command) -> Response {
    let applied = apply(kv, &Request { at_ms, command }).unwrap();
    kv.write(applied.batch).unwrap();
    applied.response
}
