//! Forming a cluster and reading from any node.

use std::time::Duration;

use micro_proto::cluster::StatusRequest;
use tokio::time::Instant;

use crate::harness::{TestCluster, read, write};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_started_in_any_order_form_one_cluster() {
    let mut cluster = TestCluster::new(3).await;
    tracing::info!("start the founder last: the others wait for it");
    cluster.start_in(&[3, 2]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.start(1).await;
    let leader = cluster.wait_leader(3).await;
    for id in 1..=3 {
        let status = cluster
            .anonymous(id)
            .await
            .cluster()
            .status(StatusRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.leader, leader);
        let roles: Vec<&str> = status.members.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles.iter().filter(|r| **r == "leader").count(),
            1,
            "{roles:?}"
        );
        assert_eq!(
            roles.iter().filter(|r| **r == "follower").count(),
            2,
            "{roles:?}"
        );
    }

    tracing::info!("restarting a member rejoins; it never forms a second cluster");
    cluster.kill(1).await;
    cluster.start(1).await;
    let again = cluster.wait_leader(3).await;
    let status = cluster
        .client(1)
        .await
        .cluster()
        .status(StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((status.leader, status.members.len()), (again, 3));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_on_one_node_is_read_linearizably_on_the_others() {
    let mut cluster = TestCluster::new(3).await;
    cluster.start_in(&[1, 2, 3]).await;
    cluster.wait_leader(3).await;
    let clients = [
        cluster.client(1).await,
        cluster.client(2).await,
        cluster.client(3).await,
    ];
    for i in 0..30 {
        let key = format!("k{i}");
        write(&clients[i % 3], &key).await.unwrap();
        let value = read(&clients[(i + 1) % 3], &key, false).await.unwrap();
        assert_eq!(
            value,
            key.as_bytes(),
            "a linearizable read missed an acknowledged write"
        );
    }

    tracing::info!("a stale read sees the write eventually");
    write(&clients[0], "stale").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if read(&clients[2], "stale", true)
            .await
            .is_ok_and(|v| v == b"stale")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the stale read never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop().await;
}
