//! The runtime: replicated desired state ([`micro_core::runtime`]), and on every node a
//! reconciler that makes the node run what is assigned to it, in-node (services
//! compiled into the node) or as supervised processes (crates uploaded and built).
//!
//! ```text
//! micro run ./greeter ─> RuntimeHandle::create ─> service account <name>-<version>
//!                      ─> RuntimeUpsert{revision 1, build pending, instances placed}
//! each node, every RECONCILE_EVERY (reconcile.rs):
//!     builtin assigned here  ─> Builtin::start ─> Router::add_local ─> registry (TTL)
//!     build pending, instance 0 here ─> BuildClaim ─> build.rs ─> BuildDone
//!     built, instance here   ─> fetch the executable ─> process.rs Supervisor
//!     a newer revision built ─> start the new process, stop the old once it serves
//!     no longer assigned     ─> stop (in-node: Router::remove_local; process: stdin closed)
//!     each instance's state  ─> Change::Instance (only when it changed)
//! the leader, too:           ─> instances of nodes silent for DEAD_AFTER ─> Change::Place
//! every REGISTER_INTERVAL    ─> renew every registration this node holds
//! ```
//!
//! With the `kubernetes` feature and `RuntimeHandle::with_kubernetes`, uploaded
//! services are still built as above but run as Kubernetes Deployments instead of
//! processes (module `kube`, docs/KUBERNETES-RUNTIME.md).

mod build;
mod host;
#[cfg(feature = "kubernetes")]
pub mod kube;
mod logs;
mod process;
mod reconcile;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro_core::registry::{Node, Registration, Service};
use micro_core::replicator::Replicator;
use micro_core::runtime::{Build, Change, Credentials, Instance, RuntimeService, Source};
use micro_core::service::Builtins;
use micro_core::state::{Command, Response};
use micro_core::{Code, MicroError, Namespace};
use tokio::task::JoinHandle;

pub use build::{SOURCE_LEN_MAX, build_key, source_key};
pub use host::{HostConfig, RunAs, current_uid};
pub use logs::{LOG_LINE_LEN_MAX, LOG_LINES_MAX, LogBook, LogKey, LogRecord};

use crate::auth::AuthHandle;
use crate::blobs::BlobHandle;
use crate::registry::RegistryHandle;
use crate::router::Router;

/// How often a node compares desired and running services.
pub const RECONCILE_EVERY: Duration = Duration::from_millis(300);
/// How often a node renews its registrations.
pub const REGISTER_INTERVAL: Duration = Duration::from_secs(10);
/// The TTL of a node's registrations: three missed renewals.
pub const REGISTER_TTL: Duration = Duration::from_secs(30);
/// A node the leader has not heard from for this long has its instances placed
/// elsewhere.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);
/// The most instances one service may ask for.
pub const INSTANCES_MAX: u32 = 64;

/// A registration this node renews, and when it last succeeded.
#[derive(Debug, Clone)]
struct Held {
    registration: Registration,
    renewed: Option<tokio::time::Instant>,
}

/// How often the renewal loop looks for registrations that are due (or still failing).
const RENEW_CHECK: Duration = Duration::from_secs(1);

/// What a node needs to build and run process services.
#[derive(Debug, Clone)]
pub struct ProcessHost {
    /// Directories, user, cargo, proxy address.
    pub config: HostConfig,
    /// Where sources and executables live.
    pub blobs: BlobHandle,
    /// Makes the services' accounts (`None`: auth is off, no credentials injected).
    pub auth: Option<AuthHandle>,
}

/// What `micro run` asks for.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The namespace it runs in.
    pub namespace: Namespace,
    /// Its name.
    pub name: String,
    /// Its version (`latest` when empty).
    pub version: String,
    /// What to run.
    pub source: Source,
    /// How many instances (at least 1).
    pub instances: u32,
    /// Metadata to keep with it.
    pub metadata: BTreeMap<String, String>,
}

/// The runtime's typed handle.
#[derive(Debug, Clone)]
pub struct RuntimeHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    replicator: Arc<dyn Replicator>,
    registry: RegistryHandle,
    router: Router,
    builtins: Builtins,
    node_id: u64,
    host: Option<ProcessHost>,
    logs: LogBook,
    local: reconcile::Local,
    /// Registrations this node renews: in-node services and the core services.
    /// With when each was last registered successfully (`None`: not yet).
    held: Mutex<BTreeMap<(Namespace, String), Held>>,
    /// Where uploaded services run when not as processes of this node.
    #[cfg(feature = "kubernetes")]
    kube: Option<Arc<kube::KubeRuntime>>,
}

fn replica_error(err: &micro_core::replicator::ReplicaError) -> MicroError {
    MicroError::from_error("runtime", err)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn error(code: Code, detail: impl Into<String>) -> MicroError {
    MicroError::new("runtime", code, detail)
}

impl RuntimeHandle {
    /// The runtime of node `node_id`, starting `builtins` when asked; process services
    /// only with [`RuntimeHandle::with_processes`].
    pub fn new(
        replicator: Arc<dyn Replicator>,
        registry: RegistryHandle,
        router: Router,
        builtins: Builtins,
        node_id: u64,
    ) -> Self {
        Self::build(replicator, registry, router, builtins, node_id, None)
    }

    /// The same runtime, also building and running uploaded crates on `host`.
    #[must_use]
    pub fn with_processes(self, host: ProcessHost) -> Self {
        #[cfg_attr(not(feature = "kubernetes"), allow(unused_mut))]
        let mut new = self.rebuilt(Some(host));
        #[cfg(feature = "kubernetes")]
        if let Some(kube) = &self.inner.kube {
            new = new.with_kubernetes(kube.clone());
        }
        new
    }

    /// A new handle on the same replicator, registry, router and builtins, with `host`.
    fn rebuilt(&self, host: Option<ProcessHost>) -> Self {
        let inner = &self.inner;
        Self::build(
            inner.replicator.clone(),
            inner.registry.clone(),
            inner.router.clone(),
            inner.builtins.clone(),
            inner.node_id,
            host,
        )
    }

    /// The same runtime, running uploaded crates (built as ever) as Kubernetes
    /// Deployments through `kube` instead of as processes; the loop that does it starts
    /// with [`RuntimeHandle::spawn`].
    #[cfg(feature = "kubernetes")]
    #[must_use]
    pub fn with_kubernetes(self, kube: Arc<kube::KubeRuntime>) -> Self {
        let mut new = self.rebuilt(self.inner.host.clone());
        Arc::get_mut(&mut new.inner)
            .expect("a handle just built is not shared yet")
            .kube = Some(kube);
        new
    }

    /// Whether uploaded services run on Kubernetes rather than as processes here.
    #[cfg(feature = "kubernetes")]
    fn on_kubernetes(&self) -> bool {
        self.inner.kube.is_some()
    }

    /// Whether uploaded services run on Kubernetes (never, in a build without it).
    #[cfg(not(feature = "kubernetes"))]
    #[allow(clippy::unused_self)] // the same signature as with the feature
    fn on_kubernetes(&self) -> bool {
        false
    }

    fn build(
        replicator: Arc<dyn Replicator>,
        registry: RegistryHandle,
        router: Router,
        builtins: Builtins,
        node_id: u64,
        host: Option<ProcessHost>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                replicator,
                registry,
                router,
                builtins,
                node_id,
                host,
                logs: LogBook::default(),
                local: reconcile::Local::default(),
                held: Mutex::new(BTreeMap::new()),
                #[cfg(feature = "kubernetes")]
                kube: None,
            }),
        }
    }

    /// The names of the services compiled into this node.
    pub fn builtin_names(&self) -> Vec<String> {
        self.inner.builtins.keys().cloned().collect()
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    /// The logs of the services this node runs.
    pub fn logs(&self) -> &LogBook {
        &self.inner.logs
    }

    /// Whether this node builds and runs uploaded crates.
    pub fn runs_processes(&self) -> bool {
        self.inner.host.is_some()
    }

    /// The blob store sources go to (`None` without process services).
    pub fn blobs(&self) -> Option<&BlobHandle> {
        self.inner.host.as_ref().map(|h| &h.blobs)
    }

    /// Asks the cluster to run a service: placed on the least loaded nodes, built first
    /// when it comes from an upload.
    pub async fn create(&self, request: CreateRequest) -> Result<(), MicroError> {
        let CreateRequest {
            namespace,
            name,
            version,
            source,
            instances,
            metadata,
        } = request;
        let version = if version.is_empty() {
            "latest".to_owned()
        } else {
            version
        };
        check_instances(instances)?;
        self.check_source(&namespace, &source).await?;
        self.barrier().await?;
        let all = self.all()?;
        if all
            .iter()
            .any(|(ns, s)| *ns == namespace && s.name == name && s.version == version)
        {
            return Err(error(
                Code::Conflict,
                format!(
                    "service {name}:{version} is already running in namespace {namespace} \
                     (use `micro update {name}`, or `micro kill {name}` first)"
                ),
            ));
        }
        let nodes = self.place(&all, &[], instances as usize);
        let credentials = self
            .credentials(&namespace, &name, &version, &source)
            .await?;
        let service = RuntimeService {
            build: matches!(source, Source::Upload(_)).then_some(Build::Pending),
            name,
            version,
            source,
            revision: 1,
            instances: nodes.into_iter().map(Instance::pending).collect(),
            credentials,
            metadata,
            updated_ms: 0,
        };
        self.propose(Command::RuntimeUpsert { namespace, service })
            .await
            .map(|_| ())
    }

    async fn check_source(&self, namespace: &Namespace, source: &Source) -> Result<(), MicroError> {
        match source {
            Source::Builtin(name) if !self.inner.builtins.contains_key(name) => {
                let known = self.builtin_names().join(", ");
                Err(error(
                    Code::NotFound,
                    format!(
                        "no service named {name:?} is compiled into the node (known: {known}); \
                         to build a crate, run `micro run ./path/to/crate`"
                    ),
                ))
            }
            Source::Builtin(_) => Ok(()),
            Source::Upload(key) => {
                let Some(host) = &self.inner.host else {
                    return Err(error(
                        Code::BadRequest,
                        "this node does not build or run processes",
                    ));
                };
                host.blobs.open(namespace, key).await.map(|_| ())
            }
        }
    }

    /// The account an uploaded service logs in with, made afresh.
    async fn credentials(
        &self,
        namespace: &Namespace,
        name: &str,
        version: &str,
        source: &Source,
    ) -> Result<Option<Credentials>, MicroError> {
        let (
            Source::Upload(_),
            Some(ProcessHost {
                auth: Some(auth), ..
            }),
        ) = (source, &self.inner.host)
        else {
            return Ok(None);
        };
        let id = format!("{name}-{version}");
        let secret = auth
            .service_account(namespace, &id)
            .await
            .map_err(|e| error(Code::Internal, format!("cannot create account {id}: {e}")))?;
        Ok(Some(Credentials { id, secret }))
    }

    /// The desired services of `namespace` (only `name` if given), linearizably.
    pub async fn read(
        &self,
        namespace: &Namespace,
        name: Option<&str>,
    ) -> Result<Vec<RuntimeService>, MicroError> {
        self.barrier().await?;
        let services = self
            .inner
            .replicator
            .reader()
            .runtime_services(Some(namespace))
            .map_err(|e| error(Code::Internal, e.0))?;
        Ok(services
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| name.is_none_or(|n| n == s.name))
            .collect())
    }

    /// A new revision of service `name` (every version when `version` is empty): an
    /// uploaded service is built again from its (re-uploaded) source and rolled out
    /// instance by instance; `instances` changes how many run.
    pub async fn update(
        &self,
        namespace: &Namespace,
        name: &str,
        version: &str,
        instances: Option<u32>,
    ) -> Result<(), MicroError> {
        if let Some(n) = instances {
            check_instances(n)?;
        }
        let services = self.matching(namespace, name, version).await?;
        let all = self.all()?;
        for service in services {
            let place = match instances {
                Some(n) => {
                    let current: Vec<u64> = service.instances.iter().map(|i| i.node_id).collect();
                    self.place(&all, &current, n as usize)
                }
                None => Vec::new(),
            };
            let change = Change::Revise {
                revision: service.revision,
                place,
            };
            self.change(namespace, &service, change).await?;
        }
        Ok(())
    }

    /// Stops service `name` (every version when `version` is empty), removes its
    /// account and its builds.
    pub async fn delete(
        &self,
        namespace: Namespace,
        name: &str,
        version: &str,
    ) -> Result<(), MicroError> {
        for service in self.matching(&namespace, name, version).await? {
            self.propose(Command::RuntimeDelete {
                namespace: namespace.clone(),
                name: name.to_owned(),
                version: service.version.clone(),
            })
            .await?;
            for address in service
                .instances
                .iter()
                .filter_map(|i| i.address.as_deref())
            {
                deregister_at(&self.inner.registry, &namespace, name, address).await;
            }
            self.clean_up(&namespace, &service).await;
        }
        Ok(())
    }

    /// Removes what a deleted service left: its account, source and executables.
    async fn clean_up(&self, namespace: &Namespace, service: &RuntimeService) {
        let Some(host) = &self.inner.host else { return };
        if let (Some(auth), Some(credentials)) = (&host.auth, &service.credentials)
            && let Err(err) = auth.drop_service_account(namespace, &credentials.id).await
        {
            tracing::warn!(%err, "removing a service account failed");
        }
        if let Source::Upload(source) = &service.source {
            let prefix = format!("build://{}:{}#", service.name, service.version);
            let mut keys = host
                .blobs
                .list(namespace, &prefix)
                .await
                .unwrap_or_default();
            keys.push(source.clone());
            for key in keys {
                if let Err(err) = host.blobs.delete(namespace, &key).await {
                    tracing::warn!(%err, key, "removing a blob of a killed service failed");
                }
            }
        }
    }

    async fn matching(
        &self,
        namespace: &Namespace,
        name: &str,
        version: &str,
    ) -> Result<Vec<RuntimeService>, MicroError> {
        let services: Vec<RuntimeService> = self
            .read(namespace, Some(name))
            .await?
            .into_iter()
            .filter(|s| version.is_empty() || s.version == version)
            .collect();
        if services.is_empty() {
            return Err(error(
                Code::NotFound,
                format!("service {name} is not running in namespace {namespace}"),
            ));
        }
        Ok(services)
    }

    async fn change(
        &self,
        namespace: &Namespace,
        service: &RuntimeService,
        change: Change,
    ) -> Result<(), MicroError> {
        let command = Command::RuntimeChange {
            namespace: namespace.clone(),
            name: service.name.clone(),
            version: service.version.clone(),
            change,
        };
        match self.propose(command).await? {
            Response::Refused { reason } => {
                Err(error(Code::Conflict, format!("{reason}; try again")))
            }
            _ => Ok(()),
        }
    }

    async fn barrier(&self) -> Result<(), MicroError> {
        self.inner
            .replicator
            .read_barrier()
            .await
            .map_err(|e| replica_error(&e))
    }

    /// Keeps `registration` registered (renewed every [`REGISTER_INTERVAL`]) until
    /// [`RuntimeHandle::release`]; registers it at once.
    pub async fn hold(&self, namespace: Namespace, registration: Registration) {
        let key = (namespace.clone(), registration.node.id.clone());
        let held = Held {
            registration: registration.clone(),
            renewed: None,
        };
        lock(&self.inner.held).insert(key.clone(), held);
        self.renew(key, registration).await;
    }

    /// Registers one held registration and records the success; a failure is retried
    /// by the renewal loop within [`RENEW_CHECK`].
    async fn renew(&self, key: (Namespace, String), registration: Registration) {
        let result = self
            .inner
            .registry
            .register(key.0.clone(), registration)
            .await;
        let mut held = lock(&self.inner.held);
        let Some(entry) = held.get_mut(&key) else {
            return;
        };
        match result {
            Ok(()) => entry.renewed = Some(tokio::time::Instant::now()),
            // Before its first success (a node still joining) failures are expected.
            Err(err) if entry.renewed.is_none() => {
                tracing::debug!(%err, "registration not accepted yet; retrying");
            }
            Err(err) => tracing::warn!(%err, "renewing a registration failed; retrying"),
        }
    }

    /// Stops renewing a registration and deregisters it.
    pub async fn release(&self, namespace: &Namespace, node_id: &str) {
        let held = lock(&self.inner.held).remove(&(namespace.clone(), node_id.to_owned()));
        if let Some(Held { registration, .. }) = held {
            let service = &registration.service;
            let result = self
                .inner
                .registry
                .deregister(
                    namespace.clone(),
                    &service.name,
                    &service.version,
                    vec![node_id.to_owned()],
                )
                .await;
            if let Err(err) = result {
                tracing::warn!(%err, "deregistration failed; the TTL will remove it");
            }
        }
    }

    /// Deregisters everything this node holds (on graceful shutdown).
    pub async fn release_all(&self) {
        let held: Vec<(Namespace, String)> = lock(&self.inner.held).keys().cloned().collect();
        for (namespace, node_id) in held {
            self.release(&namespace, &node_id).await;
        }
    }

    fn all(&self) -> Result<Vec<(Namespace, RuntimeService)>, MicroError> {
        self.inner
            .replicator
            .reader()
            .runtime_services(None)
            .map_err(|e| error(Code::Internal, e.0))
    }

    /// The nodes of `count` instances of a service: those in `keep` first (up to
    /// `count`), then, one at a time, the live member with the fewest instances,
    /// preferring one that hosts none of this service's yet.
    fn place(&self, all: &[(Namespace, RuntimeService)], keep: &[u64], count: usize) -> Vec<u64> {
        let live = self.live_members();
        let mut load: BTreeMap<u64, usize> = live.iter().map(|id| (*id, 0)).collect();
        for (_, s) in all {
            for instance in &s.instances {
                if let Some(n) = load.get_mut(&instance.node_id) {
                    *n += 1;
                }
            }
        }
        let mut placed: Vec<u64> = keep.iter().copied().take(count).collect();
        while placed.len() < count {
            let next = load
                .iter()
                .min_by_key(|(id, n)| (placed.contains(id), **n, **id))
                .map_or(self.inner.node_id, |(id, _)| *id);
            *load.entry(next).or_default() += 1;
            placed.push(next);
        }
        placed
    }

    /// The members this node believes are up: itself, and (on the leader) those heard
    /// from within [`DEAD_AFTER`]; a follower cannot tell, so it counts every member.
    fn live_members(&self) -> BTreeSet<u64> {
        let status = self.inner.replicator.status();
        let leading = status.leader == Some(self.inner.node_id);
        let mut live: BTreeSet<u64> = status
            .members
            .iter()
            .filter(|m| {
                m.id == self.inner.node_id
                    || !leading
                    || self.inner.local.heard_recently(m.silent_ms)
            })
            .map(|m| m.id)
            .collect();
        live.insert(self.inner.node_id);
        live
    }

    async fn propose(&self, command: Command) -> Result<Response, MicroError> {
        self.inner
            .replicator
            .propose(command)
            .await
            .map_err(|e| replica_error(&e))
    }

    /// Starts the reconciler and renewal loops (and with Kubernetes, its sync loop);
    /// they end when the returned tasks are aborted.
    pub fn spawn(&self) -> Vec<JoinHandle<()>> {
        #[cfg_attr(not(feature = "kubernetes"), allow(unused_mut))]
        let mut loops = self.spawn_local();
        #[cfg(feature = "kubernetes")]
        if let Some(kube) = &self.inner.kube {
            loops.push(self.spawn_kube(kube.clone()));
        }
        loops
    }

    fn spawn_local(&self) -> Vec<JoinHandle<()>> {
        let reconcile = {
            let this = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(RECONCILE_EVERY);
                loop {
                    tick.tick().await;
                    this.reconcile().await;
                }
            })
        };
        let renew = {
            let this = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(RENEW_CHECK);
                loop {
                    tick.tick().await;
                    let due: Vec<_> = lock(&this.inner.held)
                        .iter()
                        .filter(|(_, h)| {
                            h.renewed.is_none_or(|at| at.elapsed() >= REGISTER_INTERVAL)
                        })
                        .map(|(key, h)| (key.clone(), h.registration.clone()))
                        .collect();
                    for (key, registration) in due {
                        this.renew(key, registration).await;
                    }
                }
            })
        };
        vec![reconcile, renew]
    }

    /// Stops every process this node runs (on graceful shutdown).
    pub async fn stop_processes(&self) {
        self.inner.local.stop_all().await;
    }

    /// The registration of a service this node serves in-node (or a core service).
    pub fn registration(&self, service: Service) -> Registration {
        let node = Node {
            id: self.node_name(&service.name),
            address: self.inner.router.address().to_owned(),
            metadata: BTreeMap::from([
                ("protocol".to_owned(), "grpc".to_owned()),
                ("node".to_owned(), self.inner.node_id.to_string()),
            ]),
        };
        Registration {
            service,
            node,
            ttl_secs: Some(REGISTER_TTL.as_secs()),
        }
    }

    fn node_name(&self, service: &str) -> String {
        format!("{service}-node{}", self.inner.node_id)
    }
}

/// Deregisters every node of service `name` registered at `address` (a process that
/// died, or whose node died, without deregistering).
async fn deregister_at(
    registry: &RegistryHandle,
    namespace: &Namespace,
    name: &str,
    address: &str,
) {
    let Ok(services) = registry.lookup_local(namespace, name) else {
        return;
    };
    for service in services.iter() {
        let nodes: Vec<String> = service
            .nodes
            .iter()
            .filter(|n| n.address == address)
            .map(|n| n.id.clone())
            .collect();
        if nodes.is_empty() {
            continue;
        }
        let result = registry
            .deregister(namespace.clone(), name, &service.version, nodes)
            .await;
        if let Err(err) = result {
            tracing::debug!(%err, "removing a dead process's registration failed");
        }
    }
}

fn check_instances(n: u32) -> Result<(), MicroError> {
    if (1..=INSTANCES_MAX).contains(&n) {
        Ok(())
    } else {
        Err(error(
            Code::BadRequest,
            format!("instances must be between 1 and {INSTANCES_MAX}, got {n}"),
        ))
    }
}
