//! The client-visible [`History`]: every operation with when it was invoked, when it
//! completed and what it returned.

use std::sync::{Arc, Mutex};

/// What an operation asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Write `value` (unique across the run), with a time to live if `ttl_secs > 0`.
    Write {
        /// The value.
        value: String,
        /// Time to live in seconds; 0 for none.
        ttl_secs: u64,
    },
    /// Delete the key.
    Delete,
    /// Read the key (linearizable).
    Read,
}

/// What a read returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReadValue {
    /// No record.
    Absent,
    /// A record.
    Found {
        /// Its value.
        value: String,
        /// Seconds it has left to live (0: no expiry).
        expiry_secs: u64,
    },
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Acknowledged; reads carry what they returned.
    Ok(Option<ReadValue>),
    /// Failed or timed out: a write may or may not have been applied (now or later).
    Unknown,
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Op {
    /// The logical process that made it: a client gets a new one after each unknown
    /// outcome, so one process never has two operations open at once.
    pub process: u64,
    /// The key.
    pub key: String,
    /// What it asked.
    pub kind: OpKind,
    /// When it was sent, in ms since the run began (simulated or real time).
    pub invoke_ms: u64,
    /// When its answer arrived, in the same ms (for unknown outcomes, when it was given up).
    pub complete_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether it is one of the final reads after healing.
    pub final_read: bool,
}

impl Op {
    /// Whether it was acknowledged.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_))
    }

    /// When its effect must have happened by: its completion if acknowledged, never
    /// otherwise (an unknown write may apply at any later time).
    pub fn effective_deadline(&self) -> u64 {
        if self.is_ok() {
            self.complete_ms
        } else {
            u64::MAX
        }
    }

    /// The value it wrote, if it is a write.
    pub fn written(&self) -> Option<&str> {
        match &self.kind {
            OpKind::Write { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value it read, if it is an acknowledged read.
    pub fn read(&self) -> Option<&ReadValue> {
        match &self.outcome {
            Outcome::Ok(Some(value)) => Some(value),
            _ => None,
        }
    }
}

/// Every operation of a run, shared by the clients that record into it.
#[derive(Debug, Clone, Default)]
pub struct History {
    ops: Arc<Mutex<Vec<Op>>>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a finished operation.
    pub fn record(&self, op: Op) {
        self.ops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(op);
    }

    /// Every operation so far, in completion order.
    pub fn ops(&self) -> Vec<Op> {
        self.ops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The operations on `key`, in completion order.
pub fn of_key<'a>(ops: &'a [Op], key: &'a str) -> impl Iterator<Item = &'a Op> + 'a {
    ops.iter().filter(move |op| op.key == key)
}

/// Builders of hand-written histories, for the checkers' own tests.
pub mod fixtures {
    use super::{Op, OpKind, Outcome, ReadValue};

    /// An operation of process 1 on key `k0`.
    pub fn op(kind: OpKind, at: (u64, u64), outcome: Outcome) -> Op {
        Op {
            process: 1_000_000,
            key: "k0".to_owned(),
            kind,
            invoke_ms: at.0,
            complete_ms: at.1,
            outcome,
            final_read: false,
        }
    }

    /// An acknowledged write of `value` with a time to live of `ttl_secs`.
    pub fn write(value: &str, ttl_secs: u64, at: (u64, u64)) -> Op {
        let kind = OpKind::Write {
            value: value.to_owned(),
            ttl_secs,
        };
        op(kind, at, Outcome::Ok(None))
    }

    /// An acknowledged read that saw `value` (absent if `None`) with `left` seconds to live.
    pub fn read(value: Option<&str>, left: u64, at: (u64, u64)) -> Op {
        let seen = value.map_or(ReadValue::Absent, |v| ReadValue::Found {
            value: v.to_owned(),
            expiry_secs: left,
        });
        op(OpKind::Read, at, Outcome::Ok(Some(seen)))
    }
}
