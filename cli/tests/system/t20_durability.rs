//! Acknowledged writes are durable: SIGKILL the node, restart it, find every one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{Node, ok};
use crate::t30_grpc_contract::{connect, v3};

#[test]
fn a_write_survives_sigkill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path());
    ok(&node.micro(&["store", "write", "foo", "bar"]));
    node.kill();
    let node = Node::start(dir.path());
    assert_eq!(ok(&node.micro(&["store", "read", "foo"])), "bar\n");
}

/// Writers stream writes until the node dies under them; each remembers what was
/// acknowledged. After a restart, every acknowledged write must be there.
#[test]
fn every_acknowledged_write_survives_sigkill_mid_stream() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let token = node.token();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (proxy, acked, token) = (node.proxy.clone(), acked.clone(), token.clone());
            rt.spawn(async move {
                let mut client = connect(&proxy, &token).await;
                for i in 0..100_000 {
                    let key = format!("w{w}-{i}");
                    let record = v3::Record {
                        key: key.clone(),
                        value: key.clone().into_bytes(),
                        ..Default::default()
                    };
                    let request = v3::WriteRequest {
                        record: Some(record),
                        options: None,
                    };
                    if client.write(request).await.is_err() {
                        return;
                    }
                    acked.lock().unwrap().push(key);
                }
            })
        })
        .collect();

    tracing::info!("let writes flow, then kill the node under them");
    std::thread::sleep(Duration::from_millis(1500));
    node.kill();
    for writer in writers {
        rt.block_on(writer).unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "too few writes were acknowledged: {}",
        acked.len()
    );

    tracing::info!("restart and read back every acknowledged write");
    let node = Node::start(dir.path());
    // The login of the node's first life is in a home that died with it: the token is
    // still valid (the account and keys are durable), so use it across the restart.
    rt.block_on(async {
        let mut client = connect(&node.proxy, &token).await;
        for key in &acked {
            let request = v3::ReadRequest {
                key: key.clone(),
                options: None,
            };
            let reply = client
                .read(request)
                .await
                .unwrap_or_else(|e| panic!("{key} lost: {e}"));
            assert_eq!(reply.into_inner().records[0].value, key.as_bytes());
        }
    });
}
