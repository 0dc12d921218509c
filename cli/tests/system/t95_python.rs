//! A client in another language: `clients/python/micro_test.py` generates Python stubs
//! with grpcio-tools from our own `.proto` files and drives one node's proxy as a Micro
//! v3 SDK user would (auth, store, registry, config, events with acks, broker, errors).
//!
//! Without Python's `grpcio` and `grpcio-tools` the test skips with a note on stderr,
//! unless `MICRO_REQUIRE_PYTHON=1` (set by CI), where it fails instead.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Node;

/// How long the script may run before it is killed (it takes a few seconds).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether `python3` can import the gRPC packages; fails when CI requires them.
fn python_ready() -> bool {
    let imported = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if imported {
        return true;
    }
    let required = std::env::var("MICRO_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "MICRO_REQUIRE_PYTHON=1 but `python3 -c \"import grpc, grpc_tools\"` fails: \
         run `python3 -m pip install -r clients/python/requirements.txt`"
    );
    eprintln!(
        "skipping t95_python: python3 lacks grpcio/grpcio-tools \
         (pip install -r clients/python/requirements.txt)"
    );
    false
}

/// Runs the script against `proxy` from the workspace root, killing it after
/// [`SCRIPT_TIMEOUT`]; returns whether it succeeded, its stdout and its stderr.
fn run_script(proxy: &str) -> (bool, String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut child = Command::new("python3")
        .arg(root.join("clients/python/micro_test.py"))
        .current_dir(&root)
        .env("MICRO_PROXY", proxy)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    // Drain both pipes on threads so a chatty script cannot block on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, mut err) = (out.join().unwrap(), err.join().unwrap());
    if status.is_none() {
        err.push_str(&format!("\nkilled after {SCRIPT_TIMEOUT:?}"));
    }
    (status.is_some_and(|s| s.success()), out, err)
}

#[test]
fn a_python_client_generated_from_our_protos_does_what_an_sdk_user_does() {
    if !python_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    tracing::info!("wait until the node serves logins, so the script's time is its own");
    node.login();

    tracing::info!("run the Python client against the node's proxy");
    let started = Instant::now();
    let (success, out, err) = run_script(&node.proxy);
    assert!(
        success,
        "clients/python/micro_test.py failed after {:?}\n--- stdout\n{out}--- stderr\n{err}",
        started.elapsed()
    );
    assert!(
        out.contains("ok: errors"),
        "the script stopped early:\n{out}"
    );
}
