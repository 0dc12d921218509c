//! A three-node cluster of real `micro-node` processes: SIGKILL the leader under load.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Node, ok};
use crate::t30_grpc_contract::{connect, v3};

/// Free ports for three peers. A killed node restarts on its port, so the ports come
/// from below Linux's ephemeral range, where no outgoing connection can take them. Tests
/// of one process run in parallel: a shared counter keeps their clusters apart (two
/// clusters on the same ports would talk to each other).
pub(crate) fn peer_list() -> String {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + u16::try_from(std::process::id() % 1000).unwrap() * 12;
    let mut entries = Vec::new();
    while entries.len() < 3 {
        let port = base + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            entries.push(format!("{}=127.0.0.1:{port}", entries.len() + 1));
        }
    }
    entries.join(",")
}

fn status(node: &Node) -> serde_json::Value {
    serde_json::from_str(&ok(&node.micro(&["cluster", "status", "--output", "json"]))).unwrap()
}

/// Waits until `node` reports a leader among three voters; returns the leader's id.
pub(crate) fn wait_leader(node: &Node) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(node);
        let voters = s["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] != "learner")
            .count();
        if let (Some(leader), 3) = (s["leader"].as_u64(), voters) {
            return leader;
        }
        assert!(Instant::now() < deadline, "no leader: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigkill_of_the_leader_loses_no_acknowledged_write() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let peers = peer_list();
    let start = |id: usize| {
        let id_text = (id + 1).to_string();
        Node::start_with(dirs[id].path(), &["--node-id", &id_text, "--peers", &peers])
    };
    let mut nodes: Vec<Node> = [2, 0, 1].into_iter().map(start).collect();
    nodes.rotate_left(1); // back to node order 1, 2, 3
    let leader = wait_leader(&nodes[0]);
    let leader_index = usize::try_from(leader - 1).unwrap();
    for node in &nodes {
        assert_eq!(wait_leader(node), leader);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let token = nodes[0].token();
    let proxies = (0..3)
        .filter(|i| *i != leader_index)
        .map(|i| nodes[i].proxy.clone());
    let writers: Vec<_> = proxies
        .map(|proxy| {
            rt.spawn(write_until(
                proxy,
                token.clone(),
                acked.clone(),
                stop.clone(),
            ))
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    nodes[leader_index].kill();
    let before = acked.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        rt.block_on(writer).unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > before,
        "no write was acknowledged after the leader died"
    );

    let survivor = &nodes[(leader_index + 1) % 3];
    let new_leader = wait_leader(survivor);
    assert_ne!(new_leader, leader);
    rt.block_on(async {
        let mut client = connect(&survivor.proxy, &survivor.token()).await;
        for key in &acked {
            let reply = client
                .read(v3::ReadRequest {
                    key: key.clone(),
                    options: None,
                })
                .await;
            let reply = reply.unwrap_or_else(|e| panic!("acknowledged {key} lost: {e}"));
            assert_eq!(reply.into_inner().records[0].value, key.as_bytes());
        }
    });

    tracing::info!("the killed node restarts with the same flags and catches up");
    nodes[leader_index] = start(leader_index);
    wait_caught_up(&nodes[leader_index], acked.last().unwrap());
}

/// Waits until `node` has applied the write of `last` (a stale read finds it).
fn wait_caught_up(node: &Node, last: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !node
        .micro(&["store", "read", last, "--stale"])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the restarted node did not catch up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes distinct keys through `proxy` until `stop`, recording each acknowledged key.
async fn write_until(
    proxy: String,
    token: String,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut client = connect(&proxy, &token).await;
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        n += 1;
        let key = format!("{proxy}-{n}");
        let record = v3::Record {
            key: key.clone(),
            value: key.clone().into_bytes(),
            ..Default::default()
        };
        if client
            .write(v3::WriteRequest {
                record: Some(record),
                options: None,
            })
            .await
            .is_ok()
        {
            acked.lock().unwrap().push(key);
        }
    }
}
