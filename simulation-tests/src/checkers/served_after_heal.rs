//! Property: **the healed cluster serves** (liveness). After every fault is healed,
//! each client must complete a linearizable read of every key within the final-reads
//! window.

use std::collections::BTreeSet;

use super::Violation;
use crate::history::Op;
use crate::plan::KEYS;

/// Checks that every client read every key at the end.
pub fn check(ops: &[Op], clients: u64) -> Vec<Violation> {
    let done: BTreeSet<(u64, &str)> = ops
        .iter()
        .filter(|op| op.final_read && op.is_ok())
        .map(|op| (op.process / 1_000_000, op.key.as_str()))
        .collect();
    let mut found = Vec::new();
    for client in 1..=clients {
        for key in KEYS {
            if !done.contains(&(client, key)) {
                found.push(Violation {
                    checker: "served_after_heal",
                    detail: format!("client {client} could not read {key} after healing"),
                });
            }
        }
    }
    found
}
