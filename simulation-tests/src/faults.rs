//! [`Fault`]s and the seeded schedule of the fault phase.
//!
//! The driver applies each fault when its time comes ([`crate::cluster::SimCluster`]);
//! at the end of the fault phase it heals everything: links repaired, holds released,
//! loss and delay back to normal, crashed nodes restarted. Clock skews stay: a skewed
//! clock is not a fault the cluster can heal, and log time must cope with it.

use std::collections::BTreeSet;

use crate::plan::{Dice, FAULT_PHASE_MS, FAULTS_FROM_MS};

/// Normal message latency bounds on every link (ms): well under the heartbeat.
pub const LATENCY_MIN_MS: u64 = 1;
/// See [`LATENCY_MIN_MS`].
pub const LATENCY_MAX_MS: u64 = 10;

/// One fault (or the end of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Cut `side` off from every other node (both directions).
    Partition {
        /// The nodes on one side.
        side: Vec<u64>,
    },
    /// Drop what `from` sends to `to` (one direction only).
    PartitionOneway {
        /// The sender whose messages are lost.
        from: u64,
        /// The receiver.
        to: u64,
    },
    /// Cut whichever node leads now off from all the others.
    IsolateLeader,
    /// Repair every link between nodes.
    RepairAll,
    /// Crash a node: its tasks stop at once and it loses every unsynced write.
    Crash(u64),
    /// Start a crashed node again (it recovers from what it had synced).
    Restart(u64),
    /// Set a node's clock skew.
    Skew {
        /// The node.
        node: u64,
        /// How far its clock reads ahead (negative: behind), in ms.
        ms: i64,
    },
    /// Lose messages: each link drops everything in flight about this many times a
    /// second (simulated TCP does not retransmit, so calls on it fail or time out).
    Loss {
        /// Expected drops per link per second.
        per_second: u64,
    },
    /// Messages take up to this long (ms), reordering traffic across connections.
    Delay {
        /// The maximum latency.
        max_ms: u64,
    },
    /// Hold every message between two nodes until released (a stall, then a burst).
    Hold {
        /// One node.
        a: u64,
        /// The other.
        b: u64,
    },
    /// Deliver what a [`Fault::Hold`] kept.
    Release {
        /// One node.
        a: u64,
        /// The other.
        b: u64,
    },
}

/// The fault phase of a run over `nodes` nodes: a fault every 0.3 to 1.5 s, each undone
/// a little later (crashes by a restart, partitions by a repair, and so on).
pub fn schedule(dice: &mut Dice, nodes: u64) -> Vec<(u64, Fault)> {
    let end = FAULTS_FROM_MS + FAULT_PHASE_MS;
    let mut faults = Vec::new();
    let mut crashed = BTreeSet::new();
    let mut at = FAULTS_FROM_MS + dice.between(0, 500);
    while at < end {
        let node = dice.between(1, nodes);
        let other = 1 + (node + dice.between(0, nodes - 2)) % nodes;
        let later = (at + dice.between(200, 3_000)).min(end);
        match dice.below(10) {
            0 | 1 => {
                let size = dice.between(1, nodes / 2);
                let side = (0..size).map(|i| 1 + (node + i) % nodes).collect();
                faults.push((at, Fault::Partition { side }));
                faults.push((later, Fault::RepairAll));
            }
            2 => {
                faults.push((
                    at,
                    Fault::PartitionOneway {
                        from: node,
                        to: other,
                    },
                ));
                faults.push((later, Fault::RepairAll));
            }
            3 | 4 => {
                faults.push((at, Fault::IsolateLeader));
                faults.push((later, Fault::RepairAll));
            }
            5 | 6 if crashed.insert(node) => {
                faults.push((at, Fault::Crash(node)));
                if dice.percent(80) {
                    crashed.remove(&node);
                    faults.push((later, Fault::Restart(node)));
                }
            }
            7 => {
                let ms = i64::try_from(dice.between(0, 6_000)).unwrap_or(0) - 3_000;
                faults.push((at, Fault::Skew { node, ms }));
            }
            8 => {
                let fault = if dice.percent(50) {
                    Fault::Loss {
                        per_second: dice.between(1, 20),
                    }
                } else {
                    Fault::Delay {
                        max_ms: dice.between(30, 300),
                    }
                };
                faults.push((at, fault));
                faults.push((later, Fault::Loss { per_second: 0 }));
                faults.push((
                    later,
                    Fault::Delay {
                        max_ms: LATENCY_MAX_MS,
                    },
                ));
            }
            _ => {
                faults.push((at, Fault::Hold { a: node, b: other }));
                let release = (at + dice.between(50, 600)).min(end);
                faults.push((release, Fault::Release { a: node, b: other }));
            }
        }
        at += dice.between(300, 1_500);
    }
    // Stable: faults due at the same time keep the order they were drawn in.
    faults.sort_by_key(|(at, _)| *at);
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_is_a_function_of_its_seed() {
        let a = schedule(&mut Dice::new(9), 3);
        let b = schedule(&mut Dice::new(9), 3);
        let c = schedule(&mut Dice::new(10), 3);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn faults_name_existing_nodes_and_never_a_node_with_itself() {
        for seed in 0..200 {
            for (_, fault) in schedule(&mut Dice::new(seed), 5) {
                match fault {
                    Fault::PartitionOneway { from: a, to: b }
                    | Fault::Hold { a, b }
                    | Fault::Release { a, b } => {
                        assert_ne!(a, b);
                        assert!((1..=5).contains(&a) && (1..=5).contains(&b));
                    }
                    Fault::Crash(n) | Fault::Restart(n) => assert!((1..=5).contains(&n)),
                    Fault::Partition { side } => assert!(!side.is_empty() && side.len() <= 2),
                    _ => {}
                }
            }
        }
    }
}
