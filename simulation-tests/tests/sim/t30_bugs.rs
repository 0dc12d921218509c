//! The checkers bite: each planted bug is caught within a bounded number of seeds, and
//! replaying the failing seed fails the same way.

use micro_cluster::InjectedBug;
use micro_simulation_tests::{RunOptions, run_seed_catching};

use crate::explain;

/// The most seeds a planted bug may survive.
const SEEDS_MAX: u64 = 8;

fn caught(bug: InjectedBug) {
    let options = RunOptions {
        bug: Some(bug),
        keep_trace: false,
    };
    let failing = (1..=SEEDS_MAX)
        .map(|seed| run_seed_catching(seed, options))
        .inspect(|report| println!("{}", report.summary()))
        .find(|report| !report.passed());
    let Some(report) = failing else {
        panic!("{} survived seeds 1..={SEEDS_MAX}", bug.name());
    };
    println!("{} caught:\n{}", bug.name(), explain(&report));
    let replay = run_seed_catching(report.seed, options);
    assert_eq!(
        replay.violations, report.violations,
        "the replay failed differently"
    );
    assert_eq!(
        replay.trace_hash, report.trace_hash,
        "the replay ran differently"
    );
}

#[test]
fn acknowledging_before_commit_is_caught() {
    caught(InjectedBug::AckBeforeCommit);
}

#[test]
fn reading_without_a_read_index_is_caught() {
    caught(InjectedBug::StaleRead);
}
