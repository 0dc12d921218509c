//! The store from the CLI: reads, writes, TTL, scans, catalogue, namespaces, bad input.

use std::time::Duration;

use crate::harness::{Node, fails, micro, ok};

#[test]
fn write_then_read_prints_the_value_alone() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    ok(&node.micro(&["store", "write", "foo", "bar"]));
    assert_eq!(ok(&node.micro(&["store", "read", "foo"])), "bar\n");
    let json = ok(&node.micro(&["store", "read", "foo", "--output", "json"]));
    let records: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(records[0]["value"], "bar");
    ok(&node.micro(&["store", "delete", "foo"]));
    let err = fails(&node.micro(&["store", "read", "foo"]), 127);
    assert!(
        err.contains("not found") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn records_expire_by_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    ok(&node.micro(&["store", "write", "t", "v", "--expiry", "2s"]));
    assert_eq!(ok(&node.micro(&["store", "read", "t"])), "v\n");
    std::thread::sleep(Duration::from_secs(3));
    let err = fails(&node.micro(&["store", "read", "t"]), 127);
    assert!(err.contains("not found"), "{err}");
    assert!(
        !ok(&node.micro(&["store", "list"]))
            .lines()
            .any(|k| k == "t")
    );
}

#[test]
fn scans_return_the_right_keys_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    for key in ["a1", "a2", "a3", "b1", "b2"] {
        ok(&node.micro(&["store", "write", key, &format!("v-{key}")]));
    }
    let list = |args: &[&str]| {
        let mut full = vec!["store", "list"];
        full.extend_from_slice(args);
        ok(&node.micro(&full))
    };
    assert_eq!(list(&["--prefix", "a"]), "a1\na2\na3\n");
    assert_eq!(list(&["--limit", "2"]), "a1\na2\n");
    assert_eq!(list(&["--offset", "3"]), "b1\nb2\n");
    assert_eq!(list(&["--order", "desc", "--limit", "2"]), "b2\nb1\n");
    assert_eq!(list(&["--suffix", "1"]), "a1\nb1\n");
    assert_eq!(
        ok(&node.micro(&["store", "read", "b", "--prefix"])),
        "v-b1\nv-b2\n"
    );
    assert_eq!(
        ok(&node.micro(&["store", "read", "2", "--suffix"])),
        "v-a2\nv-b2\n"
    );
    let verbose = ok(&node.micro(&["store", "read", "a1", "--verbose"]));
    assert!(
        verbose.contains("KEY") && verbose.contains("v-a1"),
        "{verbose}"
    );
}

#[test]
fn databases_tables_and_namespaces_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let a = ["--namespace", "a"];
    let b = ["--namespace", "b"];
    ok(&node.micro_with(&a, &["store", "write", "k", "in-a"]));
    ok(&node.micro_with(
        &a,
        &[
            "store",
            "write",
            "k2",
            "x",
            "--database",
            "orders",
            "--table",
            "2026",
        ],
    ));
    assert_eq!(ok(&node.micro_with(&a, &["store", "read", "k"])), "in-a\n");
    fails(&node.micro_with(&b, &["store", "read", "k"]), 127);
    assert_eq!(ok(&node.micro_with(&b, &["store", "list"])), "");
    assert_eq!(
        ok(&node.micro_with(&a, &["store", "databases"])),
        "a\norders\n"
    );
    assert_eq!(
        ok(&node.micro_with(&a, &["store", "tables", "--database", "orders"])),
        "2026\n"
    );
    assert_eq!(ok(&node.micro_with(&b, &["store", "databases"])), "");
}

#[test]
fn bad_input_gets_one_line_and_the_right_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    ok(&node.micro(&["store", "write", "keep", "me"]));
    let err = fails(&node.micro(&["store", "write", "", "x"]), 127);
    assert!(err.contains("key must not be empty"), "{err}");
    fails(
        &node.micro(&["store", "write", "k", "v", "--expiry", "soon"]),
        64,
    );
    fails(
        &node.micro(&["store", "read", "k", "--order", "sideways"]),
        64,
    );
    fails(&node.micro(&["store", "frobnicate"]), 64);
    fails(&node.micro(&["--namespace", "bad/ns", "store", "list"]), 64);
    let err = fails(
        &micro(&["--proxy", "127.0.0.1:1"], &["store", "read", "keep"]),
        4,
    );
    assert!(err.contains("cannot reach the proxy"), "{err}");
    assert_eq!(ok(&node.micro(&["store", "read", "keep"])), "me\n");
}

#[test]
fn cluster_status_reports_a_single_leader() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let json = ok(&node.micro(&["cluster", "status", "--output", "json"]));
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(status["leader"], 1);
    assert_eq!(status["members"][0]["role"], "leader");
    assert_eq!(status["members"][0]["address"], node.peer.as_str());
    assert!(status["applied_index"].as_u64().unwrap() >= 1);
    assert!(ok(&node.micro(&["cluster", "status"])).contains("leader"));
}
