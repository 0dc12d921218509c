//! The node side of the runtime: every [`super::RECONCILE_EVERY`], make this node run
//! exactly the instances assigned to it, report how they do, and, on the leader, move
//! instances off nodes that stopped answering. Long work (builds, downloads, stops)
//! runs in tasks of its own, so a tick never waits for it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use micro_core::Namespace;
use micro_core::runtime::{Build, Change, Instance, RuntimeService, Source, Status};
use micro_core::service::LocalService;
use micro_core::state::{Command, Response};

use super::build::{BuildJob, read_blob};
use super::logs::LogKey;
use super::process::{Launch, Supervisor};
use super::{DEAD_AFTER, ProcessHost, RuntimeHandle, lock};

/// One instance: namespace, name, version, index.
type InstKey = (Namespace, String, String, u32);

/// The largest executable a node downloads.
const EXECUTABLE_LEN_MAX: u64 = 1024 * 1024 * 1024;

/// A process instance: the supervisor serving, and during a rollout the one replacing it.
#[derive(Debug)]
struct Proc {
    current: Supervisor,
    next: Option<Supervisor>,
}

/// What a node says of one of its instances.
#[derive(Debug)]
struct Reported {
    status: Status,
    error: Option<String>,
    restarts: u32,
    address: Option<String>,
}

/// What this node runs, and what it is busy with.
#[derive(Debug, Default)]
pub(super) struct Local {
    builtins: Mutex<BTreeMap<LogKey, Arc<dyn LocalService>>>,
    procs: Mutex<BTreeMap<InstKey, Proc>>,
    building: Mutex<BTreeSet<(LogKey, u64)>>,
    fetching: Mutex<BTreeSet<PathBuf>>,
    leader_since: Mutex<Option<tokio::time::Instant>>,
}

impl Local {
    /// Whether a member last heard from `silent_ms` ago counts as up (a member never
    /// heard from counts as up until this node has led for [`DEAD_AFTER`]).
    pub(super) fn heard_recently(&self, silent_ms: Option<u64>) -> bool {
        let dead_ms = u64::try_from(DEAD_AFTER.as_millis()).unwrap_or(u64::MAX);
        match silent_ms {
            Some(ms) => ms < dead_ms,
            None => lock(&self.leader_since).is_none_or(|since| since.elapsed() < DEAD_AFTER),
        }
    }

    /// Stops every process (node shutdown).
    pub(super) async fn stop_all(&self) {
        let procs = std::mem::take(&mut *lock(&self.procs));
        let stops = procs.into_values().flat_map(|p| {
            let mut all = vec![p.current];
            all.extend(p.next);
            all
        });
        futures_util::future::join_all(stops.map(Supervisor::stop)).await;
    }
}

fn now_secs() -> i64 {
    use micro_core::Clock as _;
    i64::try_from(micro_core::SystemClock.now_ms() / 1000).unwrap_or(i64::MAX)
}

impl RuntimeHandle {
    pub(super) async fn reconcile(&self) {
        let Ok(all) = self.all() else { return };
        let leading = self.track_leadership();
        let me = self.inner.node_id;
        let mut builtins_wanted = BTreeSet::new();
        let mut procs_wanted = BTreeSet::new();
        for (namespace, service) in &all {
            let mine: Vec<u32> = (0u32..)
                .zip(&service.instances)
                .filter(|(_, i)| i.node_id == me)
                .map(|(index, _)| index)
                .collect();
            match &service.source {
                Source::Builtin(builtin) => {
                    if !mine.is_empty() {
                        let key = (
                            namespace.clone(),
                            service.name.clone(),
                            service.version.clone(),
                        );
                        builtins_wanted.insert(key.clone());
                        self.ensure_builtin(key, service, builtin, &mine).await;
                    }
                }
                Source::Upload(source) => {
                    if self.inner.host.is_none() {
                        continue;
                    }
                    self.maybe_build(namespace, service, source).await;
                    if self.on_kubernetes() {
                        // Its Deployment runs it (kube/sync.rs), not this node.
                        continue;
                    }
                    for index in mine {
                        let key = (
                            namespace.clone(),
                            service.name.clone(),
                            service.version.clone(),
                            index,
                        );
                        procs_wanted.insert(key.clone());
                        self.ensure_process(key, service).await;
                    }
                }
            }
        }
        self.stop_unwanted(&builtins_wanted, &procs_wanted).await;
        if leading {
            self.replace_dead(&all).await;
        }
    }

    /// Whether this node leads; remembers since when.
    fn track_leadership(&self) -> bool {
        let leading = self.inner.replicator.status().leader == Some(self.inner.node_id);
        let mut since = lock(&self.inner.local.leader_since);
        match (leading, *since) {
            (true, None) => *since = Some(tokio::time::Instant::now()),
            (false, Some(_)) => *since = None,
            _ => {}
        }
        leading
    }

    async fn stop_unwanted(&self, builtins: &BTreeSet<LogKey>, procs: &BTreeSet<InstKey>) {
        let gone: Vec<(LogKey, Arc<dyn LocalService>)> = {
            let mut running = lock(&self.inner.local.builtins);
            let keys: Vec<LogKey> = running
                .keys()
                .filter(|k| !builtins.contains(*k))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| running.remove(&k).map(|s| (k, s)))
                .collect()
        };
        for ((namespace, name, _), service) in gone {
            self.inner.router.remove_local(&namespace, &name);
            service.stop().await;
            let node_id = self.node_name(&name);
            self.release(&namespace, &node_id).await;
            tracing::info!(service = %name, %namespace, "stopped in-node service");
        }
        let stopped: Vec<(InstKey, Proc)> = {
            let mut running = lock(&self.inner.local.procs);
            let keys: Vec<InstKey> = running
                .keys()
                .filter(|k| !procs.contains(*k))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| running.remove(&k).map(|p| (k, p)))
                .collect()
        };
        for ((namespace, name, version, _), proc) in stopped {
            let key = (namespace, name, version);
            let logs = self.inner.logs.clone();
            let still_runs = lock(&self.inner.local.procs)
                .keys()
                .any(|k| k.0 == key.0 && k.1 == key.1 && k.2 == key.2);
            tokio::spawn(async move {
                if let Some(next) = proc.next {
                    next.stop().await;
                }
                proc.current.stop().await;
                if !still_runs {
                    logs.forget(&key);
                }
            });
        }
    }

    async fn ensure_builtin(
        &self,
        key: LogKey,
        service: &RuntimeService,
        builtin: &str,
        mine: &[u32],
    ) {
        let running = lock(&self.inner.local.builtins).contains_key(&key);
        let outcome = if running {
            Ok(())
        } else {
            self.start_builtin(&key, builtin).await
        };
        let (status, error) = match outcome {
            Ok(()) => (Status::Running, None),
            Err(why) => (Status::Error, Some(why)),
        };
        for index in mine {
            self.report(&key.0, service, *index, status, error.clone(), 0)
                .await;
        }
    }

    async fn start_builtin(&self, key: &LogKey, builtin: &str) -> Result<(), String> {
        let (namespace, name, version) = key;
        let Some(builtin) = self.inner.builtins.get(builtin).cloned() else {
            return Err(format!("this node has no compiled-in service {builtin:?}"));
        };
        let service = builtin.start().await.map_err(|e| {
            tracing::error!(err = %e, service = %name, "in-node service failed to start");
            e.detail
        })?;
        self.inner
            .router
            .add_local(namespace.clone(), name, service.clone());
        lock(&self.inner.local.builtins).insert(key.clone(), service.clone());
        let mut described = service.describe();
        described.name.clone_from(name);
        described.version.clone_from(version);
        let registration = self.registration(described);
        self.hold(namespace.clone(), registration).await;
        tracing::info!(service = %name, %namespace, "started in-node service");
        Ok(())
    }

    /// Records how instance `index` does, unless the state already says so.
    async fn report(
        &self,
        namespace: &Namespace,
        service: &RuntimeService,
        index: u32,
        status: Status,
        error: Option<String>,
        restarts: u32,
    ) {
        let state = Reported {
            status,
            error,
            restarts,
            address: None,
        };
        self.report_revision(namespace, service, index, state, service.revision)
            .await;
    }

    async fn report_revision(
        &self,
        namespace: &Namespace,
        service: &RuntimeService,
        index: u32,
        state: Reported,
        revision: u64,
    ) {
        let Reported {
            status,
            error,
            restarts,
            address,
        } = state;
        let Some(known) = service.instances.get(index as usize) else {
            return;
        };
        let wanted = Instance {
            node_id: self.inner.node_id,
            status,
            revision,
            error: error.clone(),
            restarts,
            address: address.clone(),
        };
        if *known == wanted {
            return;
        }
        let command = Command::RuntimeChange {
            namespace: namespace.clone(),
            name: service.name.clone(),
            version: service.version.clone(),
            change: Change::Instance {
                index,
                node_id: self.inner.node_id,
                status,
                revision,
                error,
                restarts,
                address,
            },
        };
        if let Err(err) = self.inner.replicator.propose(command).await {
            tracing::debug!(%err, "recording an instance's status failed; retrying");
        }
    }

    /// Builds revision `service.revision` if it is pending and instance 0 is here.
    async fn maybe_build(&self, namespace: &Namespace, service: &RuntimeService, source: &str) {
        let Some(host) = self.inner.host.clone() else {
            return;
        };
        let me = self.inner.node_id;
        let key: LogKey = (
            namespace.clone(),
            service.name.clone(),
            service.version.clone(),
        );
        let job_key = (key.clone(), service.revision);
        let busy = lock(&self.inner.local.building).contains(&job_key);
        let change = match service.build {
            Some(Build::Pending)
                if service.instances.first().is_some_and(|i| i.node_id == me) && !busy =>
            {
                Change::BuildClaim {
                    revision: service.revision,
                    node_id: me,
                }
            }
            // This node was building it before it restarted: give it up, then claim it.
            Some(Build::Building { node_id }) if node_id == me && !busy => Change::BuildReset {
                revision: service.revision,
                node_id: me,
            },
            _ => return,
        };
        let claiming = matches!(change, Change::BuildClaim { .. });
        let command = Command::RuntimeChange {
            namespace: namespace.clone(),
            name: service.name.clone(),
            version: service.version.clone(),
            change,
        };
        match self.inner.replicator.propose(command).await {
            Ok(Response::Done) if claiming => {}
            _ => return,
        }
        lock(&self.inner.local.building).insert(job_key.clone());
        self.spawn_build(host, job_key, source.to_owned());
    }

    /// Builds `job` in the background and records the outcome.
    fn spawn_build(&self, host: ProcessHost, job: (LogKey, u64), source: String) {
        let this = self.clone();
        let me = self.inner.node_id;
        let (key, revision) = job.clone();
        tokio::spawn(async move {
            let job_run = BuildJob {
                host: &host.config,
                blobs: &host.blobs,
                logs: &this.inner.logs,
                namespace: key.0.clone(),
                name: key.1.clone(),
                version: key.2.clone(),
                revision,
                source,
                node_id: me,
                now_secs,
            };
            let outcome = job_run.run().await;
            let command = Command::RuntimeChange {
                namespace: key.0.clone(),
                name: key.1.clone(),
                version: key.2.clone(),
                change: Change::BuildDone {
                    revision,
                    node_id: me,
                    outcome,
                },
            };
            if let Err(err) = this.inner.replicator.propose(command).await {
                tracing::warn!(%err, "recording a build's outcome failed; it will be rebuilt");
            }
            lock(&this.inner.local.building).remove(&job);
        });
    }

    /// Runs instance `key` of `service` at its current revision once it is built.
    async fn ensure_process(&self, key: InstKey, service: &RuntimeService) {
        let Some(host) = self.inner.host.clone() else {
            return;
        };
        let (namespace, name, version, index) = key.clone();
        if let Some(blob) = service.executable() {
            let path = host
                .config
                .bin
                .join(namespace.as_str())
                .join(format!("{name}-{version}-r{}", service.revision));
            if path.is_file() {
                self.roll(&host, &key, service, path);
            } else {
                self.fetch(&namespace, blob, path);
            }
        }
        let state = lock(&self.inner.local.procs)
            .get(&key)
            .map(|p| (p.current.state(), p.current.revision));
        match state {
            Some((state, revision)) => {
                let reported = Reported {
                    status: state.status,
                    error: state.error,
                    restarts: state.restarts,
                    address: state.address,
                };
                self.report_revision(&namespace, service, index, reported, revision)
                    .await;
            }
            None => {
                let (status, error) = match &service.build {
                    Some(Build::Failed { error }) => (Status::Error, Some(error.clone())),
                    _ => (Status::Pending, None),
                };
                let reported = Reported {
                    status,
                    error,
                    restarts: 0,
                    address: None,
                };
                self.report_revision(&namespace, service, index, reported, 0)
                    .await;
            }
        }
    }

    /// Starts the process of instance `key`, or during a rollout its successor, and
    /// stops the predecessor once the successor serves.
    fn roll(
        &self,
        host: &ProcessHost,
        key: &InstKey,
        service: &RuntimeService,
        executable: PathBuf,
    ) {
        let mut procs = lock(&self.inner.local.procs);
        let Some(proc) = procs.get_mut(key) else {
            let current = self.supervise(host, key, service, executable);
            procs.insert(
                key.clone(),
                Proc {
                    current,
                    next: None,
                },
            );
            return;
        };
        if proc.current.revision == service.revision {
            return;
        }
        let next_serves = match &proc.next {
            None => {
                proc.next = Some(self.supervise(host, key, service, executable));
                false
            }
            Some(next) if next.revision != service.revision => {
                // A newer revision arrived mid-rollout: replace the successor.
                let stale = proc
                    .next
                    .replace(self.supervise(host, key, service, executable));
                if let Some(stale) = stale {
                    tokio::spawn(stale.stop());
                }
                false
            }
            Some(next) => next.state().status == Status::Running,
        };
        if next_serves && let Some(next) = proc.next.take() {
            let old = std::mem::replace(&mut proc.current, next);
            tokio::spawn(old.stop());
        }
    }

    fn supervise(
        &self,
        host: &ProcessHost,
        key: &InstKey,
        service: &RuntimeService,
        executable: PathBuf,
    ) -> Supervisor {
        let (namespace, name, version, index) = key.clone();
        let work_dir = host
            .config
            .work
            .join(namespace.as_str())
            .join(format!("{name}-{version}-{index}"));
        if let Err(err) = host.config.make_dir(&work_dir) {
            tracing::warn!(%err, dir = %work_dir.display(), "cannot create a working directory");
        }
        let mut env = vec![
            ("MICRO_PROXY".to_owned(), host.config.proxy.clone()),
            ("MICRO_NAMESPACE".to_owned(), namespace.to_string()),
            ("MICRO_SERVICE_NAME".to_owned(), name.clone()),
            ("MICRO_SERVICE_VERSION".to_owned(), version.clone()),
            // Logs are read as plain text, not on a terminal; a service logs at info
            // whatever level the node itself logs at.
            ("NO_COLOR".to_owned(), "1".to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        if let Some(ca) = &host.config.proxy_ca {
            env.push(("MICRO_PROXY_CA_PEM".to_owned(), ca.clone()));
        }
        if let Some(credentials) = &service.credentials {
            env.push(("MICRO_AUTH_ID".to_owned(), credentials.id.clone()));
            env.push(("MICRO_AUTH_SECRET".to_owned(), credentials.secret.clone()));
        }
        let listen_host = self
            .inner
            .router
            .address()
            .trim_start_matches("https://")
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h)
            .to_owned();
        let launch = Launch {
            key: (namespace, name, version),
            index,
            revision: service.revision,
            executable,
            env,
            host: listen_host,
            work_dir,
        };
        Supervisor::start(
            launch,
            host.config.clone(),
            self.inner.logs.clone(),
            self.inner.registry.clone(),
        )
    }

    /// Downloads executable `blob` to `path` in the background (once at a time).
    fn fetch(&self, namespace: &Namespace, blob: &str, path: PathBuf) {
        let Some(host) = self.inner.host.clone() else {
            return;
        };
        if !lock(&self.inner.local.fetching).insert(path.clone()) {
            return;
        }
        let this = self.clone();
        let (namespace, blob) = (namespace.clone(), blob.to_owned());
        tokio::spawn(async move {
            let result = async {
                let data = read_blob(&host.blobs, &namespace, &blob, EXECUTABLE_LEN_MAX)
                    .await
                    .map_err(|e| e.detail)?;
                write_executable(&path, &data).await
            }
            .await;
            if let Err(why) = result {
                tracing::warn!(blob, why, "fetching an executable failed; retrying");
            }
            lock(&this.inner.local.fetching).remove(&path);
        });
    }

    /// On the leader: moves instances off members not heard from for [`DEAD_AFTER`],
    /// and frees builds such a member had claimed.
    async fn replace_dead(&self, all: &[(Namespace, RuntimeService)]) {
        let live = self.live_members();
        for (namespace, service) in all {
            let mut changes = Vec::new();
            let mut hosting: Vec<u64> = service
                .instances
                .iter()
                .map(|i| i.node_id)
                .filter(|n| live.contains(n))
                .collect();
            for (index, instance) in (0u32..).zip(&service.instances) {
                if live.contains(&instance.node_id) {
                    continue;
                }
                let placed = self.place(all, &hosting, hosting.len() + 1);
                let Some(to) = placed.last().copied() else {
                    continue;
                };
                hosting.push(to);
                if let Some(address) = &instance.address {
                    super::deregister_at(&self.inner.registry, namespace, &service.name, address)
                        .await;
                }
                changes.push(Change::Place {
                    index,
                    from: instance.node_id,
                    to,
                });
                tracing::warn!(
                    service = %service.name, from = instance.node_id, to,
                    "a node stopped answering; moving its instance"
                );
            }
            if let Some(Build::Building { node_id }) = service.build
                && !live.contains(&node_id)
            {
                changes.push(Change::BuildReset {
                    revision: service.revision,
                    node_id,
                });
            }
            for change in changes {
                let command = Command::RuntimeChange {
                    namespace: namespace.clone(),
                    name: service.name.clone(),
                    version: service.version.clone(),
                    change,
                };
                if let Err(err) = self.inner.replicator.propose(command).await {
                    tracing::debug!(%err, "moving an instance failed; retrying");
                }
            }
        }
    }
}

/// Writes an executable atomically (a temp file renamed), mode 0755.
async fn write_executable(path: &std::path::Path, data: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no parent", path.display()))?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let temp = path.with_extension("part");
    tokio::fs::write(&temp, data)
        .await
        .map_err(|e| format!("cannot write {}: {e}", temp.display()))?;
    tokio::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))
        .await
        .map_err(|e| format!("cannot make {} executable: {e}", temp.display()))?;
    tokio::fs::rename(&temp, path)
        .await
        .map_err(|e| format!("cannot move {} into place: {e}", path.display()))
}
