//! Failover, catch-up and the minority.

use std::time::Duration;

use micro_proto::cluster::StatusRequest;
use tokio::time::Instant;

use crate::harness::{TestCluster, Writers, assert_all_readable, wait_caught_up, write};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_fails_over_within_3s_and_loses_nothing() {
    let mut cluster = TestCluster::new(3).await;
    cluster.start_in(&[1, 2, 3]).await;
    let leader = cluster.wait_leader(3).await;
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let mut clients = Vec::new();
    for id in &followers {
        clients.push(cluster.client(*id).await);
        clients.push(cluster.client(*id).await);
    }
    let writers = Writers::start(clients);
    tokio::time::sleep(Duration::from_millis(800)).await;

    tracing::info!(leader, "kill the leader under load");
    let killed_at = Instant::now();
    cluster.kill(leader).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let acked = writers.finish().await;
    let first_after = acked
        .iter()
        .map(|(_, at)| *at)
        .filter(|at| *at > killed_at)
        .min();
    let gap = first_after.expect("no write succeeded after the kill") - killed_at;
    assert!(
        gap <= Duration::from_secs(3),
        "writes resumed only after {gap:?}"
    );

    let new_leader = cluster.wait_leader(3).await;
    assert_ne!(new_leader, leader);
    assert_all_readable(&cluster.client(new_leader).await, &acked).await;

    tracing::info!("the killed node restarts and catches up");
    cluster.start(leader).await;
    wait_caught_up(&cluster, leader, new_leader).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_behind_the_purged_log_catches_up_by_snapshot() {
    let mut cluster = TestCluster::new(3).await;
    cluster.start_in(&[1, 2, 3]).await;
    let leader = cluster.wait_leader(3).await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    let left_at = crate::harness::applied_index(&cluster, lagging).await;
    cluster.kill(lagging).await;

    tracing::info!("10,000 writes land while the follower is down; snapshots purge the log");
    let client = cluster.client(leader).await;
    let mut tasks = Vec::new();
    for t in 0..32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..313 {
                write(&client, &format!("s{t}-{i}")).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let status = client
        .cluster()
        .status(StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        status.purged_index > left_at,
        "the leader's log was not purged past the follower ({} <= {left_at})",
        status.purged_index
    );
    cluster.start(lagging).await;
    wait_caught_up(&cluster, lagging, leader).await;
    let follower = cluster.client(lagging).await;
    for key in ["s0-0", "s15-200", "s31-312"] {
        let value = crate::harness::read(&follower, key, true).await.unwrap();
        assert_eq!(value, key.as_bytes());
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_without_a_majority_fails_unavailable_within_its_deadline() {
    let mut cluster = TestCluster::new(3).await;
    cluster.start_in(&[1, 2, 3]).await;
    let leader = cluster.wait_leader(3).await;
    for id in (1..=3).filter(|id| *id != leader) {
        cluster.kill(id).await;
    }
    let client = cluster.client(leader).await;
    let started = Instant::now();
    let err = write(&client, "lonely").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    cluster.stop().await;
}
