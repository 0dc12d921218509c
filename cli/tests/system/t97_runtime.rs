//! The runtime from source on a three-node cluster, as the user runs it:
//! `micro new greeter && micro run ./greeter`, calls and logs, a crashed process and a
//! crashed node, a crate that does not compile, a rolling update with callers running,
//! and `micro kill`.
//!
//! Builds run for real (`cargo build --release`) into one target directory shared by
//! every run of this test (`CARGO_TARGET_TMPDIR/runtime-builds`), so only the first run
//! on a machine compiles the framework's dependencies.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Node, ok, stderr};

fn build_dir() -> String {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("runtime-builds")
        .display()
        .to_string()
}

fn start_cluster(dirs: &[tempfile::TempDir]) -> Vec<Node> {
    let peers = crate::t40_cluster::peer_list();
    let build = build_dir();
    let nodes: Vec<Node> = (0..3)
        .map(|i| {
            let id = (i + 1).to_string();
            let flags = ["--node-id", &id, "--peers", &peers, "--build-dir", &build];
            Node::start_with(dirs[i].path(), &flags)
        })
        .collect();
    crate::t40_cluster::wait_leader(&nodes[0]);
    nodes
}

/// Polls `check` until it holds, for at most `limit`; how long it took.
fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
    started.elapsed()
}

fn status(node: &Node, name: &str) -> serde_json::Value {
    let text = ok(&node.micro(&["status", name, "--output", "json"]));
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    all.as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

fn call(node: &Node) -> Option<String> {
    let out = node.micro(&["greeter", "call", "--name=x"]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The pids of the greeter processes the logs say were started and that still run.
fn live_pids(node: &Node) -> BTreeSet<u32> {
    let logs = ok(&node.micro(&["logs", "greeter"]));
    logs.lines()
        .filter_map(|l| l.strip_prefix("started pid "))
        .filter_map(|rest| rest.split(',').next()?.parse().ok())
        .filter(|pid: &u32| Path::new(&format!("/proc/{pid}")).exists())
        .collect()
}

fn hosts(node: &Node) -> Vec<u64> {
    status(node, "greeter")["metadata"]["node"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

#[test]
fn a_crate_goes_from_source_to_a_supervised_service_on_the_cluster() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = start_cluster(&dirs);
    let work = tempfile::tempdir().unwrap();
    let greeter = work.path().join("greeter");
    let path = greeter.to_str().unwrap();
    ok(&nodes[0].micro(&["new", "greeter", "--dir", path]));
    let started = Instant::now();
    let run = ok(&nodes[0].micro(&["run", path, "--instances", "2"]));
    eprintln!("built and running in {:?}: {run}", started.elapsed());
    assert!(run.contains("running (2/2 instances)"), "{run}");
    for node in &nodes {
        let reply = call(node).expect("greeter answers through every node");
        assert!(reply.contains("Hello x"), "{reply}");
    }
    let logs = ok(&nodes[2].micro(&["logs", "greeter"]));
    assert!(logs.contains("serving"), "the service's own output: {logs}");
    assert!(logs.contains("Finished"), "the build's output: {logs}");

    crashed_process_restarts(&nodes[0]);
    broken_crate_fails_alone(&nodes[0], work.path());
    rolling_update_drops_no_call(&nodes[0], &greeter);
    let mut seen = live_pids(&nodes[0]);
    dead_node_is_replaced(&mut nodes);
    seen.extend(live_pids(&nodes[0]));
    kill_removes_everything(&nodes[0], &seen);
}

fn crashed_process_restarts(node: &Node) {
    // A follower of the logs, from before the crash: it sees the restart happen.
    let (_follower, lines) = node.spawn_micro(&["logs", "greeter", "-f", "-n", "1"]);
    std::thread::sleep(Duration::from_secs(1));
    let before = live_pids(node);
    let victim = *before.iter().next().expect("a running greeter process");
    let killed = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let took = within(Duration::from_secs(10), "greeter running again", || {
        let pids = live_pids(node);
        let st = status(node, "greeter");
        pids.len() == 2
            && !pids.contains(&victim)
            && st["status"] == "running"
            && st["metadata"]["instances"] == "2/2"
    });
    eprintln!("a SIGKILLed greeter process ran again after {took:?}");
    let followed = crate::harness::drain(&lines, Duration::from_secs(2));
    assert!(
        followed
            .iter()
            .any(|l| l.contains(&format!("pid {victim} exited")))
            && followed.iter().any(|l| l.starts_with("started pid ")),
        "micro logs -f shows the crash and the restart as they happen: {followed:?}"
    );
    assert_eq!(status(node, "greeter")["metadata"]["restarts"], "1");
    assert!(call(node).is_some());
}

fn broken_crate_fails_alone(node: &Node, work: &Path) {
    let broken = work.join("broken");
    let path = broken.to_str().unwrap();
    ok(&node.micro(&["new", "broken", "--dir", path]));
    edit(
        &broken.join("src/main.rs"),
        "msg: format!(\"Hello {}\", req.name),",
        "msg: 42,",
    );
    let out = node.micro(&["run", path]);
    assert!(
        !out.status.success(),
        "a crate that does not compile cannot run"
    );
    let err = stderr(&out);
    assert!(err.contains("error[E0308]"), "the compiler's error: {err}");
    let st = status(node, "broken");
    assert_eq!(st["status"], "error", "{st}");
    let error = st["metadata"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("mismatched types"), "{st}");
    let table = ok(&node.micro(&["status", "broken"]));
    assert!(table.contains("error[E0308]"), "{table}");
    let logs = ok(&node.micro(&["logs", "broken"]));
    assert!(logs.contains("error[E0308]"), "{logs}");
    assert!(call(node).is_some(), "greeter undisturbed");
    ok(&node.micro(&["kill", "broken"]));
}

fn rolling_update_drops_no_call(node: &Node, greeter: &Path) {
    edit(&greeter.join("src/main.rs"), "\"Hello {}\"", "\"Howdy {}\"");
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let caller = {
        let (stop, calls, failures) = (stop.clone(), calls.clone(), failures.clone());
        let proxy = node.proxy.clone();
        let home = tempfile::tempdir().unwrap();
        ok(&node.micro_anonymous(
            home.path(),
            &["login", "--email", "admin", "--password", "micro"],
        ));
        std::thread::spawn(move || {
            let mut seen_howdy = false;
            while !stop.load(Ordering::Relaxed) {
                let out = crate::harness::micro_in(
                    home.path(),
                    &["--proxy", &proxy],
                    &["greeter", "call", "--name=x"],
                );
                calls.fetch_add(1, Ordering::Relaxed);
                if out.status.success() {
                    seen_howdy |= String::from_utf8_lossy(&out.stdout).contains("Howdy");
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("failed call: {}", stderr(&out));
                }
            }
            seen_howdy
        })
    };
    let update = ok(&node.micro(&["update", "greeter"]));
    assert!(update.contains("running (2/2 instances)"), "{update}");
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let seen_howdy = caller.join().unwrap();
    let (calls, failures) = (
        calls.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    eprintln!("rolling update: {calls} calls, {failures} failed");
    assert_eq!(failures, 0, "no call may fail during a rolling update");
    assert!(calls > 10, "the caller ran through the rollout: {calls}");
    assert!(seen_howdy);
    for _ in 0..10 {
        let reply = call(node).unwrap();
        assert!(
            reply.contains("Howdy x"),
            "only the new behaviour is served: {reply}"
        );
    }
}

fn dead_node_is_replaced(nodes: &mut [Node]) {
    let build = status(&nodes[0], "greeter")["metadata"]["build"].clone();
    let before = hosts(&nodes[0]);
    // Kill a host that is not the node the CLI talks to.
    let victim = *before
        .iter()
        .find(|n| **n != 1)
        .expect("an instance off node 1");
    nodes[usize::try_from(victim).unwrap() - 1].kill();
    let took = within(
        Duration::from_secs(30),
        "greeter re-placed off the dead node",
        || {
            let st = status(&nodes[0], "greeter");
            let now = hosts(&nodes[0]);
            now.len() == 2
                && !now.contains(&victim)
                && st["metadata"]["instances"] == "2/2"
                && call(&nodes[0]).is_some()
        },
    );
    eprintln!("the instance of SIGKILLed node {victim} ran elsewhere after {took:?}");
    let st = status(&nodes[0], "greeter");
    assert_eq!(st["metadata"]["build"], build, "no rebuild: {st}");
    assert!(call(&nodes[0]).unwrap().contains("Howdy x"));
}

/// `pids`: every greeter process seen, the dead node's included (its lifeline ended
/// them when the node died).
fn kill_removes_everything(node: &Node, pids: &BTreeSet<u32>) {
    assert!(!pids.is_empty());
    ok(&node.micro(&["kill", "greeter"]));
    within(Duration::from_secs(20), "greeter processes gone", || {
        pids.iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    });
    within(Duration::from_secs(10), "greeter deregistered", || {
        !ok(&node.micro(&["services"]))
            .lines()
            .any(|l| l == "greeter")
    });
    assert!(status(node, "greeter").is_null());
}
