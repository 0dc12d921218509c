//! `GET /metrics`: Prometheus text that a Prometheus parser reads, with request
//! counters and latencies that move under load, Raft gauges, and the backlog of a
//! consumer group.

use std::time::Duration;

use prometheus_parse::{Scrape, Value};

use crate::harness::{Node, http, ok};

fn scrape(node: &Node) -> Scrape {
    let (status, body) = http(&node.api, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text")
}

/// The value of `metric` whose labels include `labels` (0 if there is none).
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

#[test]
fn metrics_parse_and_move_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.login();
    let before = scrape(&node);
    let write = [
        ("service", "store"),
        ("endpoint", "Store.Write"),
        ("code", "0"),
    ];
    for i in 0..20 {
        ok(&node.micro(&["store", "write", &format!("k{i}"), "v"]));
    }
    let (status, _) = http(&node.api, "POST", "/nosuch/call", &[], b"{}");
    assert_eq!(status, 404);
    ok(&node.micro(&["events", "publish", "jobs", r#"{"n":1}"#]));
    let (_member, lines) = node.spawn_micro(&[
        "events", "consume", "jobs", "--group", "billing", "--offset", "all",
    ]);
    assert!(!crate::harness::drain(&lines, Duration::from_secs(3)).is_empty());
    ok(&node.micro(&["events", "publish", "jobs", r#"{"n":2}"#]));

    let after = scrape(&node);
    let grew = value(&after, "micro_requests_total", &write)
        - value(&before, "micro_requests_total", &write);
    assert!(grew >= 20.0, "store writes counted: {grew}");
    let latency = [("service", "store"), ("endpoint", "Store.Write")];
    assert!(value(&after, "micro_request_duration_seconds", &latency) >= 20.0);
    let http_404 = [("door", "http"), ("service", "nosuch"), ("code", "404")];
    assert_eq!(value(&after, "micro_requests_total", &http_404), 1.0);
    assert!(value(&after, "micro_raft_term", &[]) >= 1.0);
    assert_eq!(value(&after, "micro_raft_is_leader", &[]), 1.0);
    assert!(
        value(&after, "micro_raft_commit_index", &[])
            > value(&before, "micro_raft_commit_index", &[])
    );
    let group = [("topic", "jobs"), ("group", "billing")];
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric == "micro_events_backlog"
                && group.iter().all(|(k, v)| s.labels.get(k) == Some(*v))),
        "the group's backlog is there"
    );
}
