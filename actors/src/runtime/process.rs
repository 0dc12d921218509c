//! One supervised process: an instance of a process service on this node.
//!
//! ```text
//! Supervisor::start ─> loop {
//!     spawn <bin> (RunAs user, own working dir, MICRO_* env, stdin = lifeline pipe)
//!       stdout/stderr lines ─> LogBook
//!     starting ─> registered at its address (registry, local read) ─> running
//!     exit ─> its registration removed ─> restart after backoff (0.5 s doubling to 8 s,
//!             back to 0.5 s after a minute up)
//!     stop ─> stdin closed (the framework then deregisters and drains) ─> killed after
//!             STOP_GRACE if it is still there
//! }
//! ```
//!
//! The lifeline: the process holds the read end of a pipe whose write end only the node
//! holds, and a `micro` service exits when it reads end-of-file
//! (`MICRO_LIFELINE=stdin`). A node that is SIGKILLed cannot stop its children, but the
//! kernel closes the pipe, so they stop themselves and never outlive it.

use std::path::PathBuf;
use std::time::Duration;

use micro_core::runtime::Status;
use micro_core::{Clock, Namespace, SystemClock};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::host::HostConfig;
use super::logs::{LogBook, LogKey, LogRecord};
use crate::registry::RegistryHandle;

/// How long a stopped process may take to exit before it is killed.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);
/// The first restart delay; doubled after each quick exit up to [`BACKOFF_MAX`].
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The longest restart delay.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// A process up this long is healthy again: its next restart waits [`BACKOFF_MIN`].
pub(crate) const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How often a starting process is looked for in the registry.
const READY_POLL: Duration = Duration::from_millis(250);

/// What the supervisor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcState {
    /// Starting, running, or error (it could not be started at all).
    pub(crate) status: Status,
    /// Restarts so far.
    pub(crate) restarts: u32,
    /// Why it last exited or failed.
    pub(crate) error: Option<String>,
    /// Where the current process listens.
    pub(crate) address: Option<String>,
}

/// Everything needed to launch one instance.
#[derive(Clone)]
pub(crate) struct Launch {
    /// The service's log.
    pub(crate) key: LogKey,
    /// Which instance.
    pub(crate) index: u32,
    /// The revision it runs.
    pub(crate) revision: u64,
    /// The executable.
    pub(crate) executable: PathBuf,
    /// Extra environment (`MICRO_*`).
    pub(crate) env: Vec<(String, String)>,
    /// The host the service listens on (the node's advertised host).
    pub(crate) host: String,
    /// Its working directory.
    pub(crate) work_dir: PathBuf,
}

impl std::fmt::Debug for Launch {
    // The environment carries the service's secret: only its names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Launch")
            .field("key", &self.key)
            .field("index", &self.index)
            .field("revision", &self.revision)
            .field("executable", &self.executable)
            .field("env", &env)
            .field("host", &self.host)
            .field("work_dir", &self.work_dir)
            .finish()
    }
}

/// A running supervisor; dropping it does not stop the process: call [`Supervisor::stop`].
#[derive(Debug)]
pub(crate) struct Supervisor {
    /// The revision it runs.
    pub(crate) revision: u64,
    state: watch::Receiver<ProcState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn now_secs() -> i64 {
    i64::try_from(SystemClock.now_ms() / 1000).unwrap_or(i64::MAX)
}

impl Supervisor {
    /// Starts supervising `launch`.
    pub(crate) fn start(
        launch: Launch,
        host: HostConfig,
        logs: LogBook,
        registry: RegistryHandle,
    ) -> Self {
        let (state_tx, state) = watch::channel(ProcState {
            status: Status::Starting,
            restarts: 0,
            error: None,
            address: None,
        });
        let (stop, stopped) = watch::channel(false);
        let revision = launch.revision;
        let run = Run {
            launch,
            host,
            logs,
            registry,
            state: state_tx,
            stopped,
        };
        let task = tokio::spawn(run.supervise());
        Self {
            revision,
            state,
            stop,
            task,
        }
    }

    /// What it last reported.
    pub(crate) fn state(&self) -> ProcState {
        self.state.borrow().clone()
    }

    /// Stops the process (gracefully, then by force) and waits for the supervisor.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct Run {
    launch: Launch,
    host: HostConfig,
    logs: LogBook,
    registry: RegistryHandle,
    state: watch::Sender<ProcState>,
    stopped: watch::Receiver<bool>,
}

/// How one run of the process ended.
enum Ended {
    Exited(String),
    Stopped,
}

impl Run {
    fn log(&self, stream: &str, message: impl Into<String>) {
        let record = LogRecord::new(now_secs(), stream, message)
            .with("instance", self.launch.index.to_string());
        self.logs.push(&self.launch.key, record);
    }

    fn report(&self, status: Status, error: Option<String>) {
        self.state.send_modify(|s| {
            s.status = status;
            s.error = error;
        });
    }

    async fn supervise(mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let started = tokio::time::Instant::now();
            let ended = self.run_once().await;
            let why = match ended {
                Ended::Stopped => return,
                Ended::Exited(why) => why,
            };
            if started.elapsed() >= HEALTHY_AFTER {
                backoff = BACKOFF_MIN;
            }
            self.state.send_modify(|s| {
                s.restarts += 1;
                s.status = Status::Starting;
                s.error = Some(why.clone());
            });
            self.log("runtime", format!("{why}; restarting in {backoff:?}"));
            let stopped = self.stopped.clone();
            if wait_stop(stopped, backoff).await {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Starts the process once and supervises it until it exits or is stopped.
    async fn run_once(&mut self) -> Ended {
        let address = match free_address(&self.launch.host) {
            Ok(address) => address,
            Err(why) => return Ended::Exited(why),
        };
        let mut command = self.host.command(&self.launch.executable);
        command
            .current_dir(&self.launch.work_dir)
            .envs(self.launch.env.iter().map(|(k, v)| (k, v)))
            .env("MICRO_SERVICE_ADDRESS", &address)
            .env("MICRO_LIFELINE", "stdin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                let why = format!("cannot start {}: {e}", self.launch.executable.display());
                self.report(Status::Error, Some(why.clone()));
                return Ended::Exited(why);
            }
        };
        let pid = child.id().unwrap_or(0);
        self.state
            .send_modify(|s| s.address = Some(address.clone()));
        self.log(
            "runtime",
            format!("started pid {pid}, listening on {address}"),
        );
        let lifeline = child.stdin.take();
        let pumps = self.pump(&mut child);
        // The guard of `borrow` must be gone before `report` writes to the channel.
        let last_error = self.state.borrow().error.clone();
        self.report(Status::Starting, last_error);
        let mut stop = self.stopped.clone();
        let ready = tokio::select! {
            status = child.wait() => Err(Ended::Exited(exit_reason(pid, status))),
            () = self.until_ready(&address) => Ok(()),
            _ = stop.wait_for(|s| *s) => Err(Ended::Stopped),
        };
        let ended = match ready {
            Err(ended) => ended,
            Ok(()) => {
                self.report(Status::Running, None);
                tokio::select! {
                    status = child.wait() => Ended::Exited(exit_reason(pid, status)),
                    _ = stop.wait_for(|s| *s) => Ended::Stopped,
                }
            }
        };
        if matches!(ended, Ended::Stopped) {
            drop(lifeline);
            match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                Ok(_) => self.log("runtime", format!("pid {pid} stopped")),
                Err(_) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    self.log("runtime", format!("pid {pid} killed after {STOP_GRACE:?}"));
                }
            }
        }
        for pump in pumps {
            let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
        }
        self.forget_registration(&address).await;
        ended
    }

    /// Copies the child's output lines into the log.
    fn pump(&self, child: &mut tokio::process::Child) -> Vec<JoinHandle<()>> {
        let mut pumps = Vec::new();
        let out = child.stdout.take().map(|s| {
            (
                "stdout",
                Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            )
        });
        let err = child.stderr.take().map(|s| {
            (
                "stderr",
                Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            )
        });
        for (stream, reader) in [out, err].into_iter().flatten() {
            let logs = self.logs.clone();
            let key = self.launch.key.clone();
            let index = self.launch.index.to_string();
            pumps.push(tokio::spawn(async move {
                let mut lines = BufReader::new(reader).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let record =
                        LogRecord::new(now_secs(), stream, line).with("instance", index.clone());
                    logs.push(&key, record);
                }
            }));
        }
        pumps
    }

    /// Resolves once the service has registered a node at `address`.
    async fn until_ready(&self, address: &str) {
        let (namespace, name, _) = &self.launch.key;
        loop {
            if self.registered(namespace, name, address) {
                return;
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    fn registered(&self, namespace: &Namespace, name: &str, address: &str) -> bool {
        self.registry
            .lookup_local(namespace, name)
            .is_ok_and(|services| {
                services
                    .iter()
                    .any(|s| s.nodes.iter().any(|n| n.address == address))
            })
    }

    /// Removes what a process that died without deregistering left in the registry, so
    /// nobody is routed to it until its TTL runs out.
    async fn forget_registration(&self, address: &str) {
        let (namespace, name, _) = &self.launch.key;
        super::deregister_at(&self.registry, namespace, name, address).await;
    }
}

fn exit_reason(pid: u32, status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(status) => format!("pid {pid} exited ({status})"),
        Err(e) => format!("pid {pid} could not be waited for: {e}"),
    }
}

/// Sleeps `delay`; `true` if a stop came first.
async fn wait_stop(mut stopped: watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        _ = stopped.wait_for(|s| *s) => true,
    }
}

/// A free port on `host`, for the process to listen on (picked here so the runtime
/// knows the address it will register).
fn free_address(host: &str) -> Result<String, String> {
    let listener = std::net::TcpListener::bind((host, 0))
        .map_err(|e| format!("no free port on {host}: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("no free port on {host}: {e}"))?
        .port();
    Ok(format!("{host}:{port}"))
}
