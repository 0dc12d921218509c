//! Real `micro-node` processes on fixed addresses, so a killed node restarts where its
//! peers and clients expect it, optionally inside a network namespace.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use micro_cli::client::Client;
use micro_core::Namespace;
use micro_proto::cluster::StatusRequest;

/// Tests take turns: see the crate docs.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Free loopback ports below Linux's ephemeral range (32768 and up), where no outgoing
/// connection takes them while their node is down.
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + u16::try_from(std::process::id() % 1000).unwrap() * 12;
    let mut ports = Vec::new();
    while ports.len() < n {
        let port = base + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    ports
}

/// One `micro-node` process (started and stopped many times on one data directory).
pub(crate) struct Proc {
    /// Its node id.
    pub(crate) id: u64,
    /// Its data directory.
    pub(crate) dir: PathBuf,
    /// Its proxy (gRPC) address.
    pub(crate) proxy: String,
    /// Its API (HTTP) address.
    pub(crate) api: String,
    /// Its peer address.
    pub(crate) peer: String,
    /// The network namespace it runs in, if any.
    pub(crate) netns: Option<String>,
    /// Flags beyond the addresses and the data directory.
    pub(crate) extra: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// A node (not started) with its data and log under `root`.
    pub(crate) fn new(id: u64, root: &Path, host: &str, ports: [u16; 3]) -> Self {
        Self {
            id,
            dir: root.join(format!("node{id}")),
            proxy: format!("{host}:{}", ports[0]),
            api: format!("{host}:{}", ports[1]),
            peer: format!("{host}:{}", ports[2]),
            netns: None,
            extra: Vec::new(),
            log: root.join(format!("node{id}.log")),
            child: None,
        }
    }

    /// Starts the node; panics (with its log's end) if it does not become ready.
    pub(crate) fn start(&mut self) {
        if let Err(err) = self.try_start() {
            panic!("node {} did not start: {err}", self.id);
        }
    }

    /// Starts the node and waits for its ready line; the end of its log if it exited
    /// (or did not become ready within a minute).
    pub(crate) fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "node {} is running", self.id);
        let bin = env!("CARGO_BIN_EXE_micro-node");
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut child = command
            .args(["--node-id", &self.id.to_string()])
            .args(["--data-dir", self.dir.to_str().unwrap()])
            .args(["--proxy-addr", &self.proxy, "--api-addr", &self.api])
            .args(["--peer-addr", &self.peer])
            .args(&self.extra)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn micro-node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.contains(" ready: ") && tx.send(()).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited ({status}): {}", self.log_since(log_start)));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("not ready in 60 s: {}", self.log_since(log_start)));
            }
        }
    }

    /// What the node logged from byte `from` of its log on.
    pub(crate) fn log_since(&self, from: u64) -> String {
        let mut file = std::fs::File::open(&self.log).unwrap();
        file.seek(SeekFrom::Start(from)).unwrap();
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        text
    }

    /// SIGKILL, as a crash: nothing is flushed or handed over.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as an operator's stop, waiting up to 30 s for the exit.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of [`Proc`]s founded together with `--peers`.
pub(crate) struct Cluster {
    /// The nodes, node id = index + 1.
    pub(crate) nodes: Vec<Proc>,
    /// Where data and logs live (kept when a test fails, for the logs).
    pub(crate) root: tempfile::TempDir,
}

impl Cluster {
    /// `size` nodes on loopback (not started).
    pub(crate) fn local(size: u64) -> Self {
        let root = tempfile::tempdir().unwrap();
        let hosts = (0..size).map(|_| ("127.0.0.1".to_owned(), None)).collect();
        Self::on(root, hosts, None)
    }

    /// A node per `(host, netns)` (not started); `ports` are the same on every host
    /// when given (each node has its own address), free loopback ports otherwise.
    pub(crate) fn on(
        root: tempfile::TempDir,
        hosts: Vec<(String, Option<String>)>,
        ports: Option<[u16; 3]>,
    ) -> Self {
        let mut nodes: Vec<Proc> = Vec::new();
        for (i, (host, netns)) in hosts.into_iter().enumerate() {
            let ports = ports.unwrap_or_else(|| {
                let p = free_ports(3);
                [p[0], p[1], p[2]]
            });
            let id = u64::try_from(i).unwrap() + 1;
            let mut node = Proc::new(id, root.path(), &host, ports);
            node.netns = netns;
            nodes.push(node);
        }
        let peers: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}={}", n.id, n.peer))
            .collect();
        let peers = peers.join(",");
        for node in &mut nodes {
            node.extra.extend(["--peers".to_owned(), peers.clone()]);
        }
        Self { nodes, root }
    }

    /// Starts every node.
    pub(crate) fn start_all(&mut self) {
        for node in &mut self.nodes {
            node.start();
        }
    }

    /// The leader node `index` sees among `voters` voters, if any.
    pub(crate) async fn leader_seen_by(&self, index: usize) -> Option<u64> {
        let client = Client::connect(&self.nodes[index].proxy, Namespace::default())
            .await
            .ok()?;
        let status = client
            .cluster()
            .status(StatusRequest {})
            .await
            .ok()?
            .into_inner();
        (status.leader != 0).then_some(status.leader)
    }

    /// Waits until every node among `among` names the same leader.
    pub(crate) async fn wait_leader(&self, among: &[usize], within: Duration) -> u64 {
        self.wait_leader_not(among, 0, within).await
    }

    /// Waits until every node among `among` names the same leader, other than `old`.
    pub(crate) async fn wait_leader_not(&self, among: &[usize], old: u64, within: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut seen = Vec::new();
            for i in among {
                seen.push(self.leader_seen_by(*i).await);
            }
            if let Some(Some(first)) = seen.first()
                && *first != old
                && seen.iter().all(|s| *s == Some(*first))
            {
                return *first;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader among {among:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The admin's token, logging in through any node (retrying while a leader is
    /// elected and auth bootstraps).
    pub(crate) async fn admin_token(&self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            for node in &self.nodes {
                if let Ok(client) = Client::connect(&node.proxy, Namespace::default()).await
                    && let Ok(client) = client.logged_in("admin", "micro").await
                    && let Some(token) = client.token()
                {
                    return token.to_owned();
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "cannot log in");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Each node's log, for a failure message.
    pub(crate) fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.id, tail(&n.log_since(0), 40)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A small deterministic RNG (xorshift64*), seeded per run so a schedule can be replayed.
pub(crate) struct Dice(u64);

impl Dice {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The seed from `MICRO_CHAOS_SEED`, else from the clock.
    pub(crate) fn seed_from_env() -> u64 {
        std::env::var("MICRO_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                u64::try_from(now.as_nanos() % u128::from(u64::MAX)).unwrap()
            })
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}
