//! The framework's broker client across nodes: a subscriber on one node hears what a
//! publisher on another sends.

use std::time::Duration;

use futures::StreamExt;

use crate::t20_process::{admin_session, cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_node_hears_a_publisher_on_another() {
    let nodes = cluster().await;
    let publisher = micro::Client::new(&nodes[0].proxy_addr.to_string()).unwrap();
    let admin = admin_session(&publisher).await;
    let publisher = publisher.with_session(admin.clone()).broker();
    let subscriber = micro::Client::new(&nodes[2].proxy_addr.to_string())
        .unwrap()
        .with_session(admin)
        .broker();
    let mut messages = subscriber.subscribe("greetings", None).await.unwrap();
    // The subscription is open once the stream is; a publish now reaches it.
    let header = std::collections::BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    let mut got = None;
    for _ in 0..50 {
        publisher
            .publish("greetings", b"hi".to_vec(), header.clone())
            .await
            .unwrap();
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(200), messages.next()).await
        {
            got = Some(message.unwrap());
            break;
        }
    }
    let message = got.expect("the subscriber heard nothing");
    assert_eq!(message.body, b"hi");
    assert_eq!(message.header["k"], "v");
    assert_eq!(message.header["Micro-Topic"], "greetings");
    drop(messages);
    for node in nodes {
        node.shutdown().await;
    }
}
