//! The simulation's own tests: a CI-sized sweep, replay, and proof that the checkers
//! catch planted bugs. Every failure prints its seed and the command that replays it.

mod t10_sweep;
mod t20_replay;
mod t30_bugs;
mod t90_regressions;

use micro_simulation_tests::{Report, replay_command};

/// The report's summary, its violations and how to replay it, for assertion messages.
fn explain(report: &Report) -> String {
    let mut text = report.summary();
    for violation in &report.violations {
        text.push_str(&format!("\n  {violation}"));
    }
    text.push_str(&format!(
        "\n  replay: {}",
        replay_command(report.seed, report.plan.bug)
    ));
    text
}
