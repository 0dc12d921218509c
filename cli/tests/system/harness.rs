//! Starting nodes and running the CLI.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `micro-node` process, and a CLI home (`MICRO_HOME`) of its own for the logins.
pub(crate) struct Node {
    child: Child,
    pub(crate) proxy: String,
    pub(crate) peer: String,
    pub(crate) api: String,
    home: tempfile::TempDir,
    logged_in: std::sync::OnceLock<()>,
}

impl Node {
    /// Starts a node on `data_dir` with ports chosen by the OS, and waits for its ready line.
    pub(crate) fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &["--peer-addr", "127.0.0.1:0"])
    }

    /// Starts a node with `extra` flags (proxy and API on OS-chosen ports).
    pub(crate) fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        Self::spawn(data_dir, extra, Stdio::inherit(), "warn")
    }

    /// Starts a node whose log (at `info`) goes to the file `log`.
    pub(crate) fn start_logging(data_dir: &Path, log: &Path) -> Self {
        Self::start_logging_with(data_dir, log, &[])
    }

    /// Starts a node with `extra` flags whose log (at `info`) goes to the file `log`.
    pub(crate) fn start_logging_with(data_dir: &Path, log: &Path, extra: &[&str]) -> Self {
        Self::start_logging_at(data_dir, log, "info", extra)
    }

    /// Starts a node with `extra` flags whose log at `level` (a `RUST_LOG` filter) goes
    /// to the file `log`.
    pub(crate) fn start_logging_at(
        data_dir: &Path,
        log: &Path,
        level: &str,
        extra: &[&str],
    ) -> Self {
        let file = std::fs::File::create(log).unwrap();
        let mut flags = vec!["--peer-addr", "127.0.0.1:0"];
        flags.extend_from_slice(extra);
        Self::spawn(data_dir, &flags, Stdio::from(file), level)
    }

    fn spawn(data_dir: &Path, extra: &[&str], stderr: Stdio, level: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_micro-node"))
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .args(["--proxy-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn micro-node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.contains(" ready: ") && tx.send(line).is_err() {
                    return;
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("micro-node did not become ready");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .expect("the ready line names every address")
                .to_owned()
        };
        Self {
            child,
            proxy: field("proxy="),
            peer: field("peer="),
            api: field("api="),
            home: tempfile::tempdir().unwrap(),
            logged_in: std::sync::OnceLock::new(),
        }
    }

    /// Logs the CLI in as the default admin, once, retrying while the cluster elects a
    /// leader and bootstraps auth.
    pub(crate) fn login(&self) {
        self.logged_in.get_or_init(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let login = ["login", "--email", "admin", "--password", "micro"];
                let output = self.micro_anonymous(self.home.path(), &login);
                if output.status.success() {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "cannot log in: {}",
                    stderr(&output)
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    }

    /// The admin's access token (logging in first).
    pub(crate) fn token(&self) -> String {
        ok(&self.micro(&["user", "token"])).trim().to_owned()
    }

    /// Starts a long-running CLI command (a subscriber, say), logged in as the admin;
    /// its stdout lines arrive on the receiver. Killed when the guard drops.
    pub(crate) fn spawn_micro(&self, args: &[&str]) -> (ChildGuard, mpsc::Receiver<String>) {
        self.login();
        let mut child = Command::new(env!("CARGO_BIN_EXE_micro"))
            .args(["--proxy", &self.proxy])
            .args(args)
            .env("MICRO_HOME", self.home.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn micro");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        (ChildGuard(child), rx)
    }

    /// Runs the CLI with `home` as `MICRO_HOME` (a fresh one is anonymous).
    pub(crate) fn micro_anonymous(&self, home: &Path, args: &[&str]) -> Output {
        micro_in(home, &["--proxy", &self.proxy], args)
    }

    /// Kills the node with SIGKILL, as a crash would, and waits for it to be gone.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Runs the CLI against this node, logged in as the admin.
    pub(crate) fn micro(&self, args: &[&str]) -> Output {
        self.micro_with(&[], args)
    }

    /// Runs the CLI against this node, logged in as the admin, with `global` flags.
    pub(crate) fn micro_with(&self, global: &[&str], args: &[&str]) -> Output {
        self.login();
        let mut flags = vec!["--proxy", self.proxy.as_str()];
        flags.extend_from_slice(global);
        micro_in(self.home.path(), &flags, args)
    }
}

/// Kills a spawned process when dropped.
pub(crate) struct ChildGuard(pub(crate) Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the `micro` binary with `global` then `args`, with no login.
pub(crate) fn micro(global: &[&str], args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    micro_in(home.path(), global, args)
}

/// Runs the `micro` binary with `home` as `MICRO_HOME`.
pub(crate) fn micro_in(home: &Path, global: &[&str], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_micro"))
        .args(global)
        .args(args)
        .env("MICRO_HOME", home)
        .env_remove("MICRO_PROXY")
        .env_remove("MICRO_NAMESPACE")
        .output()
        .expect("run micro")
}

/// Adds `Authorization: Bearer <token>` to every request of a generated client.
#[derive(Clone)]
pub(crate) struct Bearer(pub(crate) String);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let value = format!("Bearer {}", self.0)
            .parse()
            .map_err(|_| tonic::Status::invalid_argument("token"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

/// A channel whose requests carry a bearer token.
pub(crate) type Authed = tonic::codegen::InterceptedService<tonic::transport::Channel, Bearer>;

/// Stdout as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub(crate) fn ok(output: &Output) -> String {
    assert!(output.status.success(), "micro failed: {}", stderr(output));
    stdout(output)
}

/// Asserts a failure with `code`, a single line on stderr and nothing on stdout; returns stderr.
#[track_caller]
pub(crate) fn fails(output: &Output, code: i32) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert!(
        output.stdout.is_empty(),
        "stdout must carry only results: {}",
        stdout(output)
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    err
}

/// The bytes of an HTTP/1.1 request to `addr` that closes the connection after it.
pub(crate) fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The status of an HTTP response, and the response as text (0 when there is none).
pub(crate) fn http_status(response: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Sends one HTTP/1.1 request to `addr`; the status and the whole response (headers
/// included).
pub(crate) fn http_raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the api");
    stream
        .write_all(&http_request(addr, method, path, headers, body))
        .unwrap();
    let mut response = Vec::new();
    // The server may close on an oversized body before reading it all: keep what came.
    let _ = stream.read_to_end(&mut response);
    http_status(&response)
}

/// Sends one HTTP/1.1 request to `addr` (as curl would) and returns the status and body.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let (status, response) = http_raw(addr, method, path, headers, body);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Drains what arrived on `lines` (a spawned command's stdout) within `wait`.
pub(crate) fn drain(lines: &mpsc::Receiver<String>, wait: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + wait;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => out.push(line),
            Err(_) => break,
        }
    }
    out
}
