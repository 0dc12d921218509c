//! Adding, removing and handing over leadership under write load.

use std::time::Duration;

use micro_proto::cluster::{AddNodeRequest, RemoveNodeRequest, TransferLeaderRequest};

use crate::harness::{TestCluster, Writers, assert_all_readable};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_transfer_and_remove_under_load_lose_no_write() {
    let mut cluster = TestCluster::new(3).await;
    cluster.start_in(&[1, 2, 3]).await;
    cluster.wait_leader(3).await;
    let writers = Writers::start(vec![cluster.client(2).await, cluster.client(3).await]);
    tokio::time::sleep(Duration::from_millis(500)).await;

    tracing::info!("add a fourth node through a member that may not lead");
    let addr = cluster.add_standby(4).await;
    let admin = cluster.client(2).await;
    let request = admin.request(AddNodeRequest {
        id: 4,
        address: addr,
    });
    admin.cluster().add_node(request).await.unwrap();
    cluster.wait_leader(4).await;

    tracing::info!("hand leadership to the new node");
    let request = admin.request(TransferLeaderRequest { id: 4 });
    admin.cluster().transfer_leader(request).await.unwrap();
    // Every member learns of the new leader with its first heartbeat.
    assert_eq!(cluster.wait_leader(4).await, 4);

    tracing::info!("remove node 1 and stop it");
    let request = admin.request(RemoveNodeRequest { id: 1 });
    admin.cluster().remove_node(request).await.unwrap();
    cluster.kill(1).await;
    cluster.members.remove(&1);
    let leader = cluster.wait_leader(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let acked = writers.finish().await;
    assert!(
        acked.len() > 50,
        "too few writes during the changes: {}",
        acked.len()
    );
    assert_all_readable(&cluster.client(leader).await, &acked).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_started_with_join_becomes_a_voter() {
    let mut cluster = TestCluster::new(3).await;
    cluster.start_in(&[1, 2, 3]).await;
    cluster.wait_leader(3).await;
    crate::harness::write(&cluster.client(1).await, "before-join")
        .await
        .unwrap();
    cluster.add_joiner(4, 3).await;
    cluster.wait_leader(4).await;
    let value = crate::harness::read(&cluster.client(4).await, "before-join", false)
        .await
        .unwrap();
    assert_eq!(value, b"before-join");

    tracing::info!("a transfer to a node that is not a member is refused as a bad request");
    let admin = cluster.client(4).await;
    let err = admin
        .cluster()
        .transfer_leader(admin.request(TransferLeaderRequest { id: 9 }))
        .await;
    assert_eq!(err.unwrap_err().code(), tonic::Code::InvalidArgument);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_node_stops_campaigning_and_refuses_requests() {
    let mut cluster = TestCluster::new(3).await;
    cluster.start_in(&[1, 2, 3]).await;
    let leader = cluster.wait_leader(3).await;
    let removed = if leader == 3 { 2 } else { 3 };
    let admin = cluster.client(leader).await;
    let request = admin.request(RemoveNodeRequest { id: removed });
    admin.cluster().remove_node(request).await.unwrap();

    tracing::info!("the removed node says so instead of waiting for a leader");
    let client = cluster.client(removed).await;
    let mut refused = None;
    for _ in 0..50 {
        match crate::harness::read(&client, "anything", false).await {
            Err(status) if status.message().contains("not a member") => {
                refused = Some(status);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let refused = refused.expect("the removed node never said it was removed");
    assert_eq!(refused.code(), tonic::Code::Unavailable);

    tracing::info!("the remaining two still serve");
    crate::harness::write(&cluster.client(leader).await, "after-removal")
        .await
        .unwrap();
    cluster.stop().await;
}
