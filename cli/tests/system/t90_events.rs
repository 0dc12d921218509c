//! Events across a three-node cluster, through the CLI and through gRPC clients: a publish
//! on one node consumed on another, a consumer group sharing a topic, redelivery of
//! nacked and unacked events up to the retry limit, replay with an offset, and events
//! that survive SIGKILL of a node and a restart of the whole cluster.

use std::collections::BTreeSet;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use micro_proto::events as pb;
use tokio_stream::StreamExt;

use crate::harness::{Node, drain, fails, ok};
use crate::t60_auth::{authed, channel};

/// Waits for `want` on `lines`, returning everything read up to it.
fn wait_for(lines: &Receiver<String>, want: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen.iter().any(|l| l == want) {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("{want:?} never arrived; got {seen:?}"));
        if let Ok(line) = lines.recv_timeout(left) {
            seen.push(line);
        }
    }
    seen
}

fn read(node: &Node, topic: &str) -> Vec<String> {
    ok(&node.micro(&["events", "read", topic]))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn start(dirs: &[tempfile::TempDir], peers: &str, id: usize) -> Node {
    let id_text = (id + 1).to_string();
    Node::start_with(dirs[id].path(), &["--node-id", &id_text, "--peers", peers])
}

#[test]
fn events_flow_between_nodes_groups_share_them_and_they_survive_restarts() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let peers = crate::t40_cluster::peer_list();
    let mut nodes: Vec<Node> = (0..3).map(|id| start(&dirs, &peers, id)).collect();
    crate::t40_cluster::wait_leader(&nodes[0]);

    // Published through node 1, consumed through node 3; a replay gets history first.
    let (_live, live) = nodes[2].spawn_micro(&["events", "consume", "orders", "--offset", "all"]);
    ok(&nodes[0].micro(&["events", "publish", "orders", "e1", "--metadata", "k=v"]));
    wait_for(&live, "e1");
    ok(&nodes[1].micro(&["events", "publish", "orders", "e2"]));
    wait_for(&live, "e2");
    let (_replay, replay) = nodes[1].spawn_micro(&[
        "events", "consume", "orders", "--offset", "all", "--output", "json",
    ]);
    let line = replay.recv_timeout(Duration::from_secs(20)).unwrap();
    let first: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(first["payload"], "e1");
    assert_eq!(first["metadata"]["k"], "v");
    assert_eq!(first["topic"], "orders");
    assert_eq!(first["id"].as_str().unwrap().len(), 36);
    ok(&nodes[2].micro(&["events", "publish", "orders", "e3"]));
    let replayed: Vec<serde_json::Value> = drain(&replay, Duration::from_secs(3))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let payloads: Vec<&str> = replayed
        .iter()
        .map(|e| e["payload"].as_str().unwrap())
        .collect();
    assert_eq!(payloads, ["e2", "e3"], "history in order, then live");

    group_members_share_a_topic(&nodes);

    tracing::info!("SIGKILL a node; the others take writes; it catches up on restart");
    nodes[2].kill();
    ok(&nodes[0].micro(&["events", "publish", "orders", "e4"]));
    nodes[2] = start(&dirs, &peers, 2);
    assert_eq!(read(&nodes[2], "orders"), ["e1", "e2", "e3", "e4"]);

    tracing::info!("restart the whole cluster: every acknowledged event is still there");
    for node in &mut nodes {
        node.kill();
    }
    nodes = (0..3).map(|id| start(&dirs, &peers, id)).collect();
    crate::t40_cluster::wait_leader(&nodes[0]);
    for node in &nodes {
        assert_eq!(read(node, "orders"), ["e1", "e2", "e3", "e4"]);
    }
    let limited = ok(&nodes[0].micro(&["events", "read", "orders", "--limit", "2", "--skip", "1"]));
    assert_eq!(limited, "e2\ne3\n");

    // Bad input: clear errors, and a lone payload past the limit is refused.
    let err = fails(&nodes[0].micro(&["events", "publish", "", "x"]), 127);
    assert!(err.contains("topic"), "{err}");
    let err = fails(
        &nodes[0].micro(&["events", "consume", "orders", "--offset", "soon"]),
        64,
    );
    assert!(err.contains("duration"), "{err}");
    let token = nodes[0].token();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut stream = pb::stream_client::StreamClient::new(channel(&nodes[0].proxy).await)
            .max_encoding_message_size(8 << 20);
        let big = pb::PublishRequest {
            topic: "orders".into(),
            payload: vec![b'x'; (1 << 20) + 1],
            ..Default::default()
        };
        let err = stream
            .publish(authed(Some(&token), "micro", big))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
        assert!(err.message().contains("payload"), "{err}");
    });
}

/// Two members of one group on nodes 1 and 3 split 20 events: none lost, none twice,
/// both get some.
fn group_members_share_a_topic(nodes: &[Node]) {
    let member = [
        "events",
        "consume",
        "jobs",
        "--group",
        "billing",
        "--no-auto-ack",
    ];
    let (_a, a) = nodes[0].spawn_micro(&member);
    let (_b, b) = nodes[2].spawn_micro(&member);
    // Members take a moment to join: probe until both have had one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut heard_a, mut heard_b) = (false, false);
    let mut probes = 0;
    while !(heard_a && heard_b) {
        assert!(Instant::now() < deadline, "a member never got a probe");
        ok(&nodes[1].micro(&["events", "publish", "jobs", &format!("probe-{probes}")]));
        probes += 1;
        heard_a |= !drain(&a, Duration::from_millis(300)).is_empty();
        heard_b |= !drain(&b, Duration::from_millis(300)).is_empty();
    }
    drain(&a, Duration::from_millis(500));
    drain(&b, Duration::from_millis(500));
    for i in 0..20 {
        ok(&nodes[1].micro(&["events", "publish", "jobs", &format!("job-{i}")]));
    }
    let got_a = drain(&a, Duration::from_secs(3));
    let got_b = drain(&b, Duration::from_secs(1));
    let all: Vec<&String> = got_a.iter().chain(&got_b).collect();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    let expected: BTreeSet<String> = (0..20).map(|i| format!("job-{i}")).collect();
    assert_eq!(all.len(), 20, "duplicated or lost: {got_a:?} {got_b:?}");
    assert_eq!(unique, expected.iter().collect());
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "{got_a:?} {got_b:?}"
    );
}

#[test]
fn nacked_and_unacked_events_come_back_until_the_retry_limit() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let token = node.token();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (acks, ack_rx) = tokio::sync::mpsc::channel(16);
        let consume = pb::ConsumeRequest {
            group: "workers".into(),
            topic: "retry".into(),
            auto_ack: false,
            ack_wait: Duration::from_millis(800).as_nanos().try_into().unwrap(),
            retry_limit: 2,
            ..Default::default()
        };
        let mut events = micro_proto::consume::consume(
            channel(&node.proxy).await,
            authed(Some(&token), "micro", consume),
            tokio_stream::wrappers::ReceiverStream::new(ack_rx),
        )
        .await
        .unwrap();
        let mut stream = pb::stream_client::StreamClient::new(channel(&node.proxy).await);

        // A nack brings the event back at once, long before ack_wait; an ack ends it.
        stream
            .publish(authed(Some(&token), "micro", publish("nack-me")))
            .await
            .unwrap();
        let first = next(&mut events).await;
        let nacked = Instant::now();
        acks.send(pb::AckRequest {
            id: first.id.clone(),
            success: false,
        })
        .await
        .unwrap();
        let again = next(&mut events).await;
        assert_eq!(again.id, first.id);
        assert!(
            nacked.elapsed() < Duration::from_millis(700),
            "{:?}",
            nacked.elapsed()
        );
        acks.send(pb::AckRequest {
            id: again.id,
            success: true,
        })
        .await
        .unwrap();

        // Never acked: delivered once and retried twice, ack_wait apart, then dropped.
        stream
            .publish(authed(Some(&token), "micro", publish("ignore-me")))
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_secs(3), events.next()).await
        {
            let event = event.unwrap();
            assert_eq!(event.payload, b"ignore-me");
            deliveries.push(Instant::now());
        }
        assert_eq!(deliveries.len(), 3, "1 delivery + retry_limit 2");
        for pair in deliveries.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(700),
                "{:?}",
                pair[1] - pair[0]
            );
        }
    });
}

#[test]
fn a_generated_server_streaming_client_gets_events_auto_acked() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let token = node.token();
    ok(&node.micro(&["events", "publish", "retry", "nack-me"]));
    ok(&node.micro(&["events", "publish", "retry", "ignore-me"]));
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut stream = pb::stream_client::StreamClient::new(channel(&node.proxy).await);
        // It half-closes after its request, and still gets events.
        let mut generated = pb::stream_client::StreamClient::new(channel(&node.proxy).await);
        let request = pb::ConsumeRequest {
            topic: "retry".into(),
            offset: 1,
            ..Default::default()
        };
        let mut replay = generated
            .consume(authed(Some(&token), "micro", request))
            .await
            .unwrap()
            .into_inner();
        let bodies = [
            next(&mut replay).await.payload,
            next(&mut replay).await.payload,
        ];
        assert_eq!(bodies, [b"nack-me".to_vec(), b"ignore-me".to_vec()]);

        // Anonymous callers are refused.
        let err = stream
            .publish(authed(None, "micro", publish("x")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    });
}

/// A publish of `body` on topic `retry`.
fn publish(body: &str) -> pb::PublishRequest {
    pb::PublishRequest {
        topic: "retry".into(),
        payload: body.as_bytes().to_vec(),
        ..Default::default()
    }
}

async fn next(events: &mut tonic::codec::Streaming<pb::Event>) -> pb::Event {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("no event within 5 s")
        .unwrap()
        .unwrap()
}
