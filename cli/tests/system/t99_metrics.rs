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

/// `micro stats` has a row per instance; `Debug.Log` and `Debug.Trace` of a service answer
/// with its records and the spans of a call whose trace id the api returned.
#[test]
fn stats_per_instance_and_the_trace_of_a_call() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = crate::t50_services::start_cluster(&dirs);
    let run = ok(&nodes[0].micro(&["run", "helloworld", "--instances", "3"]));
    assert!(run.contains("running (3/3 instances)"), "{run}");
    let token = nodes[0].token();
    let bearer = format!("Bearer {token}");
    let (status, reply, trace) = {
        let (status, raw) = crate::harness::http_raw(
            &nodes[1].api,
            "POST",
            "/helloworld/call",
            &[("Authorization", &bearer)],
            br#"{"name":"Ada"}"#,
        );
        let trace = raw
            .lines()
            .find_map(|l| l.strip_prefix("micro-trace-id: "))
            .map(|t| t.trim().to_owned())
            .expect("the api returns the call's trace id");
        (status, raw, trace)
    };
    assert_eq!(status, 200, "{reply}");
    // The instance that served it has the span; ask each.
    let stats: serde_json::Value = serde_json::from_str(&ok(&nodes[0].micro(&[
        "stats",
        "helloworld",
        "--output",
        "json",
    ])))
    .unwrap();
    let rows = stats.as_array().unwrap();
    assert_eq!(rows.len(), 3, "one row per instance: {stats}");
    let served: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert!(served >= 1, "{stats}");
    let table = ok(&nodes[0].micro(&["stats"]));
    assert_eq!(
        table.lines().count(),
        4,
        "a header and a row per node: {table}"
    );
    let traced = format!(r#"{{"id":"{trace}"}}"#);
    let found = (0..20).any(|_| {
        let spans = ok(&nodes[2].micro(&["call", "helloworld", "Debug.Trace", &traced]));
        spans.contains("helloworld.Helloworld.Call")
    });
    assert!(found, "Debug.Trace finds the span of trace {trace}");
    // The node the call came in through has its own span of it (a core service's Debug
    // is some node's: ask until node 2 answers).
    let door = (0..30).any(|_| {
        ok(&nodes[1].micro(&["call", "store", "Debug.Trace", &traced]))
            .contains("http /helloworld/call")
    });
    assert!(door, "node 2 kept the api's span of trace {trace}");
    let health = ok(&nodes[0].micro(&["call", "helloworld", "Debug.Health", "{}"]));
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");
    let log = ok(&nodes[0].micro(&["call", "helloworld", "Debug.Log", r#"{"count":5}"#]));
    assert!(log.contains("records"), "{log}");
    network_shows_who_serves_what(&nodes);
}

/// `micro network`: three nodes, and each helloworld instance on its own node.
fn network_shows_who_serves_what(nodes: &[Node]) {
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&ok(&nodes[1].micro(args))).unwrap()
    };
    let members = json(&["network", "nodes", "--output", "json"]);
    assert_eq!(members.as_array().unwrap().len(), 3, "{members}");
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .all(|n| !n["address"].as_str().unwrap().is_empty())
    );
    let services = json(&["network", "services", "--output", "json"]);
    let hello: Vec<&serde_json::Value> = services
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["service"] == "helloworld")
        .collect();
    let mut serving: Vec<&str> = hello.iter().map(|r| r["node"].as_str().unwrap()).collect();
    serving.sort_unstable();
    assert_eq!(serving, ["1", "2", "3"], "{services}");
    let routes = ok(&nodes[1].micro(&["network", "routes", "--service", "helloworld"]));
    assert_eq!(routes.lines().count(), 4, "{routes}");
    let graph = ok(&nodes[1].micro(&["network", "graph"]));
    assert_eq!(graph.lines().count(), 3, "{graph}");
    assert!(
        graph.starts_with("node 2 "),
        "the answering node is the root: {graph}"
    );
}

#[test]
fn a_node_logs_json_lines_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    let data = dir.path().join("data");
    let node = Node::start_logging_with(&data, &log, &["--log-format", "json"]);
    node.login();
    drop(node);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
}
