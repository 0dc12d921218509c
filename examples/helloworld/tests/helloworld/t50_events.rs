//! The framework's events client across nodes: a subscriber handler (an actor) on one
//! node gets what a publisher on another sends; a failing handler's event comes back, a
//! panicking handler is replaced; history is read back in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use micro::client::{ConsumeOptions, EventsClient};

use crate::t20_process::{admin_session, cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_handler_gets_every_event_once_it_succeeds() {
    let nodes = cluster().await;
    let publisher = micro::Client::new(&nodes[0].proxy_addr.to_string()).unwrap();
    let admin = admin_session(&publisher).await;
    let publisher = publisher.with_session(admin.clone()).events();
    let subscriber = micro::Client::new(&nodes[2].proxy_addr.to_string())
        .unwrap()
        .with_session(admin)
        .events();

    // The handler fails "flaky" once and panics on "crash" once; both come back.
    let handled = Arc::new(Mutex::new(Vec::<String>::new()));
    let attempts = Arc::new(Mutex::new(BTreeMap::<String, u32>::new()));
    let (seen, attempts_in) = (handled.clone(), attempts.clone());
    let options = ConsumeOptions {
        group: Some("workers".into()),
        ack_wait: Some(Duration::from_secs(20)),
        ..ConsumeOptions::default()
    };
    let subscription = subscriber
        .subscribe("orders", options, move |event| {
            let (seen, attempts) = (seen.clone(), attempts_in.clone());
            async move {
                let body: String = event.json()?;
                let attempt = {
                    let mut attempts = attempts.lock().unwrap();
                    let n = attempts.entry(body.clone()).or_default();
                    *n += 1;
                    *n
                };
                match (body.as_str(), attempt) {
                    ("flaky", 1) => Err(micro::errors::internal("test", "not yet")),
                    ("crash", 1) => panic!("a handler bug"),
                    _ => {
                        seen.lock().unwrap().push(body);
                        Ok(())
                    }
                }
            }
        })
        .await
        .unwrap();
    for body in ["a", "flaky", "crash", "b"] {
        publisher
            .publish_json("orders", &body, BTreeMap::new())
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while handled.lock().unwrap().len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "handled {:?}",
            handled.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut got = handled.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, ["a", "b", "crash", "flaky"]);
    assert_eq!(attempts.lock().unwrap()["flaky"], 2);
    assert_eq!(attempts.lock().unwrap()["crash"], 2);
    subscription.stop();

    history_is_kept_in_order(&publisher, &subscriber).await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// History, in order, from any node; a replaying consumer sees it too.
async fn history_is_kept_in_order(publisher: &EventsClient, subscriber: &EventsClient) {
    let kept = publisher.read("orders", 0, 0).await.unwrap();
    let bodies: Vec<String> = kept.iter().map(|e| e.json().unwrap()).collect();
    assert_eq!(bodies, ["a", "flaky", "crash", "b"]);
    let replay = ConsumeOptions {
        offset: Some(1),
        ..ConsumeOptions::default()
    };
    let mut events = subscriber.consume("orders", replay).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.id, kept[0].id);
}
