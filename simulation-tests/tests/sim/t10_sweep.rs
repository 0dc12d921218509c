//! The CI sweep: a fixed range of seeds, every property must hold in each.

use micro_simulation_tests::{RunOptions, run_seed_catching};

use crate::explain;

/// Seeds the CI sweep runs (`SIM_CI_SEEDS` overrides); the `sim` binary runs long sweeps.
const CI_SEEDS: u64 = 16;

#[test]
fn every_property_holds_across_the_ci_seeds() {
    let count = std::env::var("SIM_CI_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_SEEDS);
    let mut failures = Vec::new();
    for seed in 1..=count {
        let report = run_seed_catching(seed, RunOptions::default());
        println!("{}", report.summary());
        assert!(report.ops.0 > 0, "seed {seed} ran no operations");
        if !report.passed() {
            failures.push(explain(&report));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
