//! A rolling restart: each node in turn is stopped (SIGTERM, as an operator or a
//! Kubernetes rollout does) and started again while clients write. No acknowledged
//! write may be lost, and writes may pause only for a short blip around each stop.

use std::time::Duration;

use crate::harness::{Cluster, serial};
use crate::workload::{Load, missing_keys};

/// The longest pause in acknowledged writes a rolling restart may cause: a leader
/// election (0.4-0.8 s), the clients noticing and moving on, with room for a loaded
/// machine. Measured figures are in the test's output and the README.
const BLIP_MAX: Duration = Duration::from_secs(5);

#[test]
fn a_rolling_restart_loses_nothing_and_pauses_writes_only_briefly() {
    let _turn = serial();
    let mut cluster = Cluster::local(3);
    cluster.start_all();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxies: Vec<String> = cluster.nodes.iter().map(|n| n.proxy.clone()).collect();
    let token = rt.block_on(cluster.admin_token());
    rt.block_on(cluster.wait_leader(&[0, 1, 2], Duration::from_secs(30)));
    let load = {
        let _guard = rt.enter();
        Load::start(&proxies, &token, 0, 3, false)
    };
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..3 {
        let leader = rt.block_on(cluster.leader_seen_by(i));
        println!(
            "{:>6} ms: stopping node {} (leader: {leader:?})",
            load.now_ms(),
            i + 1
        );
        cluster.nodes[i].stop();
        cluster.nodes[i].start();
        rt.block_on(cluster.wait_leader(&[0, 1, 2], Duration::from_secs(30)));
        println!("{:>6} ms: node {} back", load.now_ms(), i + 1);
        std::thread::sleep(Duration::from_secs(2));
    }
    let observed = rt.block_on(load.finish());
    let acked = observed.acked();
    let failed = observed.puts.len() - acked.len();
    let gap = observed.longest_gap_ms();
    println!(
        "rolling restart report: {:.1} s, {} writes acknowledged, {failed} failed, \
         longest pause {gap} ms, availability {:.1}% of seconds",
        observed.elapsed_ms as f64 / 1000.0,
        acked.len(),
        observed.availability() * 100.0
    );
    let missing = rt.block_on(missing_keys(&proxies, &token, &acked));
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    assert!(
        Duration::from_millis(gap) <= BLIP_MAX,
        "writes paused for {gap} ms\n{}",
        cluster.logs()
    );
}
