//! The kill loop: three nodes under a mixed write, read and publish load; every few
//! seconds one node, chosen at random, is SIGKILLed and restarted. Afterwards: every
//! acknowledged write and event is there, and every key's history is linearizable.

use std::time::Duration;

use micro_checkers::linearizable::check_all;

use crate::harness::{Cluster, Dice, serial};
use crate::workload::{Load, missing_events, missing_keys};

/// How long the loop runs: `MICRO_CHAOS_SECS`, else a CI-sized minute.
fn round() -> Duration {
    let secs = std::env::var("MICRO_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

#[test]
fn sigkill_loop_loses_no_acknowledged_write_or_event_and_stays_linearizable() {
    let _turn = serial();
    let seed = Dice::seed_from_env();
    let mut dice = Dice::new(seed);
    println!("kill loop: MICRO_CHAOS_SEED={seed}, {:?}", round());
    let mut cluster = Cluster::local(3);
    cluster.start_all();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxies: Vec<String> = cluster.nodes.iter().map(|n| n.proxy.clone()).collect();
    let token = rt.block_on(cluster.admin_token());
    let load = {
        let _guard = rt.enter();
        Load::start(&proxies, &token, 4, 2, true)
    };

    let began = std::time::Instant::now();
    let mut kills = 0;
    while began.elapsed() < round() {
        std::thread::sleep(Duration::from_millis(2_000 + dice.below(3_000)));
        let victim = usize::try_from(dice.below(3)).unwrap();
        println!("{:>6} ms: SIGKILL node {}", load.now_ms(), victim + 1);
        cluster.nodes[victim].kill();
        kills += 1;
        std::thread::sleep(Duration::from_millis(500 + dice.below(2_000)));
        cluster.nodes[victim].start();
        println!("{:>6} ms: node {} restarted", load.now_ms(), victim + 1);
    }
    // The healed cluster serves on for a moment before the clients stop.
    std::thread::sleep(Duration::from_secs(2));
    let (mut observed, finals) = rt.block_on(async {
        cluster
            .wait_leader(&[0, 1, 2], Duration::from_secs(30))
            .await;
        let finals = load.final_reads(&proxies, &token).await;
        (load.finish().await, finals)
    });
    observed.ops.extend(finals);

    let acked = observed.acked();
    let missing = rt.block_on(missing_keys(&proxies, &token, &acked));
    let lost_events = rt.block_on(missing_events(&proxies, &token, &observed.events));
    let mut inconclusive = 0;
    let violations = check_all(&observed.ops, &mut inconclusive);
    report(seed, kills, &observed, acked.len(), inconclusive);
    assert!(kills > 0 && !acked.is_empty() && !observed.events.is_empty());
    assert!(
        missing.is_empty(),
        "acknowledged writes lost (seed {seed}): {missing:?}\n{}",
        cluster.logs()
    );
    assert!(
        lost_events.is_empty(),
        "acknowledged events lost (seed {seed}): {lost_events:?}"
    );
    assert!(
        violations.is_empty(),
        "not linearizable (seed {seed}): {violations:?}"
    );
    assert_eq!(inconclusive, 0, "the linearizability search gave up");
}

/// Prints the round's figures (the README and the closing notes quote them).
fn report(
    seed: u64,
    kills: u32,
    observed: &crate::workload::Observed,
    acked: usize,
    inconclusive: usize,
) {
    let unknown = observed
        .ops
        .iter()
        .filter(|op| !op.is_ok() && !op.final_read)
        .count();
    println!(
        "kill loop report: seed {seed}, {:.1} s, {kills} kills, {} register ops ({unknown} \
         unknown), {} writes ({} acknowledged), {} events acknowledged ({} failed), \
         availability {:.1}% of seconds, longest write gap {} ms, {inconclusive} keys \
         inconclusive",
        observed.elapsed_ms as f64 / 1000.0,
        observed.ops.len(),
        observed.puts.len(),
        acked,
        observed.events.len(),
        observed.events_failed,
        observed.availability() * 100.0,
        observed.longest_gap_ms(),
    );
}
