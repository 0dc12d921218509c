//! Reproducibility: the same seed gives the same trace; another seed does not.

use micro_simulation_tests::{RunOptions, run_seed};

#[test]
fn the_same_seed_replays_the_same_trace() {
    let first = run_seed(7, RunOptions::default());
    let again = run_seed(7, RunOptions::default());
    let other = run_seed(8, RunOptions::default());
    println!(
        "{}\n{}\n{}",
        first.summary(),
        again.summary(),
        other.summary()
    );
    assert_eq!(
        first.trace_hash, again.trace_hash,
        "seed 7 did not replay exactly"
    );
    assert_eq!(first.ops, again.ops);
    assert_ne!(
        first.trace_hash, other.trace_hash,
        "seeds 7 and 8 ran the same"
    );
}
