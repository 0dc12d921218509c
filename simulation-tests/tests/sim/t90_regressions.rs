//! Seeds that found real bugs, kept so the bugs stay fixed.

use micro_simulation_tests::{RunOptions, run_seed};

use crate::explain;

/// Seed 12 removes the standby node it added. The removed node never received the log
/// entry that removed it, so it kept campaigning and accepted client requests it could
/// not serve (each waited out the 5 s deadline): after healing, a client that kept
/// landing on it could not read for 15 s. The leader now tells a removed node, which
/// then stops campaigning and refuses requests at once ("not a member").
#[test]
fn seed_12_a_removed_node_does_not_hold_clients() {
    let report = run_seed(12, RunOptions::default());
    assert!(report.passed(), "{}", explain(&report));
}
