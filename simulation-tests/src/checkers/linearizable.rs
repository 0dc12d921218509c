//! Property: **each key's history is linearizable** against a register with TTLs.
//!
//! The search itself is `micro_checkers::linearizable` (shared with the fault tests on
//! real processes); this checker runs it over the workload's keys.

use super::Violation;
use crate::history::Op;

/// Checks every key.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    let mut inconclusive = 0;
    let found = micro_checkers::linearizable::check_all(ops, &mut inconclusive);
    if inconclusive > 0 {
        tracing::warn!(keys = inconclusive, "linearizability search gave up");
    }
    found
        .into_iter()
        .map(|(key, detail)| Violation {
            checker: "linearizable",
            detail: format!("key {key}: {detail}"),
        })
        .collect()
}
