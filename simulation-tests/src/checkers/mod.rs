//! The checkers: one property per file, each a pure function over what a run observed.
//!
//! | file | property |
//! |---|---|
//! | `linearizable.rs` | each key's history is linearizable (Wing-Gong search) |
//! | `acked_durable.rs` | no acknowledged write or delete is lost (cheap oracle) |
//! | `single_leader.rs` | at most one leader per term |
//! | `replicas_converge.rs` | after healing, replicas apply the same state |
//! | `expiry.rs` | a record is never returned past its expiry in log time |
//! | `served_after_heal.rs` | after healing, the cluster serves again (liveness) |
//! | `registry.rs` | no phantom, deregistered or expired node is returned; nodes agree |
//! | `events.rs` | no acknowledged event lost, per-topic order, every event reaches its group |

pub mod acked_durable;
pub mod events;
pub mod expiry;
pub mod linearizable;
pub mod registry;
pub mod replicas_converge;
pub mod served_after_heal;
pub mod single_leader;

use std::collections::{BTreeMap, BTreeSet};

use crate::history::Op;

/// A property a run broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The checker that found it.
    pub checker: &'static str,
    /// What was wrong, with the operations or nodes involved.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.checker, self.detail)
    }
}

/// Everything the checkers look at.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// Every client operation.
    pub ops: Vec<Op>,
    /// For each term, every node some node saw lead it.
    pub leaders_by_term: BTreeMap<u64, BTreeSet<u64>>,
    /// The members of the healed cluster and, per member, its applied position and
    /// state digest once the run stopped waiting (`None`: it never reported).
    pub final_states: BTreeMap<u64, Option<(Vec<u8>, u64)>>,
    /// How many clients ran.
    pub clients: u64,
    /// The registrar's registry operations.
    pub registry: Vec<crate::registrar::RegOp>,
    /// What the events workload saw.
    pub events: crate::eventer::EventsObserved,
}

/// Runs every checker.
pub fn check_all(observed: &Observations) -> Vec<Violation> {
    let mut found = Vec::new();
    found.extend(single_leader::check(&observed.leaders_by_term));
    found.extend(served_after_heal::check(&observed.ops, observed.clients));
    found.extend(acked_durable::check(&observed.ops));
    found.extend(expiry::check(&observed.ops));
    found.extend(linearizable::check(&observed.ops));
    found.extend(replicas_converge::check(&observed.final_states));
    found.extend(registry::check(&observed.registry));
    found.extend(events::check(&observed.events));
    found
}
