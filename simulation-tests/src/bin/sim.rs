//! `sim`: long simulation sweeps and exact replays.
//!
//! ```text
//! sim                       seeds 1..=SIM_SEEDS (default 100)
//! sim --from 1000 --count 500
//! sim --seed 42 [--trace]   replay one seed (SIM_SEED=42 works too)
//! sim --regressions         the seeds that once found bugs (RELEASE_REGRESSIONS)
//! sim --bug stale-read      plant a bug (ack-before-commit, stale-read)
//! RUST_LOG=openraft=debug sim --seed 42    the nodes' logs too
//! ```
//! Exits 1 if any seed broke a property, printing each failing seed's replay command.

use std::process::ExitCode;

use micro_cluster::InjectedBug;
use micro_simulation_tests::{RELEASE_REGRESSIONS, RunOptions, replay_command, run_seed_catching};

struct Args {
    from: u64,
    count: u64,
    /// Run exactly these seeds instead of a range.
    seeds: Option<Vec<u64>>,
    options: RunOptions,
}

fn parse() -> Result<Args, String> {
    let env_u64 = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut args = Args {
        from: 1,
        count: env_u64("SIM_SEEDS").unwrap_or(100),
        seeds: None,
        options: RunOptions::default(),
    };
    if let Some(seed) = env_u64("SIM_SEED") {
        (args.from, args.count) = (seed, 1);
    }
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut value = |flag: &str| words.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| text.parse::<u64>().map_err(|e| format!("{text:?}: {e}"));
        match word.as_str() {
            "--seed" => (args.from, args.count) = (number(value("--seed")?)?, 1),
            "--from" => args.from = number(value("--from")?)?,
            "--count" => args.count = number(value("--count")?)?,
            "--bug" => {
                let name = value("--bug")?;
                let bug = InjectedBug::parse(&name).ok_or_else(|| {
                    format!("unknown bug {name:?} (ack-before-commit, stale-read)")
                })?;
                args.options.bug = Some(bug);
            }
            "--trace" => args.options.keep_trace = true,
            "--regressions" => {
                args.seeds = Some(RELEASE_REGRESSIONS.iter().map(|(seed, _)| *seed).collect());
            }
            other => return Err(format!("unknown argument {other:?} (see the source's doc)")),
        }
    }
    args.options.keep_trace |= std::env::var_os("SIM_TRACE").is_some();
    Ok(args)
}

#[allow(clippy::disallowed_methods)] // wall time of the sweep, for the report only
fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("sim: {why}");
            return ExitCode::from(64);
        }
    };
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    let seeds = args
        .seeds
        .clone()
        .unwrap_or_else(|| (args.from..args.from.saturating_add(args.count)).collect());
    for &seed in &seeds {
        let report = run_seed_catching(seed, args.options);
        for line in &report.trace {
            println!("{line}");
        }
        println!("{}", report.summary());
        if !report.passed() {
            for violation in &report.violations {
                println!("  {violation}");
            }
            println!("  replay: {}", replay_command(seed, args.options.bug));
            failed.push(seed);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} seeds in {secs:.1} s ({:.2} s per seed); failed: {failed:?}",
        seeds.len(),
        secs / seeds.len().max(1) as f64
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
