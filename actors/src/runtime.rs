//! The runtime service for in-node services: replicated desired state, and on every node
//! a reconciler that makes this node run what is assigned to it.
//!
//! ```text
//! micro run helloworld ─> RuntimeHandle::create ─propose RuntimeUpsert{node_id: least loaded}
//! each node, every RECONCILE_EVERY:
//!     desired (assigned here) - running  ─> Builtin::start ─> Router::add_local
//!                                           ─> registry Register (TTL) ─> status running
//!     running - desired                 ─> Router::remove_local ─> registry Deregister
//!     every REGISTER_INTERVAL           ─> renew every registration this node holds
//!                                          (a failed one is retried every second)
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro_core::registry::{Node, Registration, Service};
use micro_core::replicator::Replicator;
use micro_core::runtime::{RuntimeService, Source, Status};
use micro_core::service::{Builtins, LocalService};
use micro_core::state::{Command, Response};
use micro_core::{Code, MicroError, Namespace};
use tokio::task::JoinHandle;

use crate::registry::RegistryHandle;
use crate::router::Router;

/// How often a node compares desired and running services.
pub const RECONCILE_EVERY: Duration = Duration::from_millis(300);
/// How often a node renews its registrations.
pub const REGISTER_INTERVAL: Duration = Duration::from_secs(10);
/// The TTL of a node's registrations: three missed renewals.
pub const REGISTER_TTL: Duration = Duration::from_secs(30);

type Key = (Namespace, String, String);

/// A registration this node renews, and when it last succeeded.
#[derive(Debug, Clone)]
struct Held {
    registration: Registration,
    renewed: Option<tokio::time::Instant>,
}

/// How often the renewal loop looks for registrations that are due (or still failing).
const RENEW_CHECK: Duration = Duration::from_secs(1);

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
    running: Mutex<BTreeMap<Key, Arc<dyn LocalService>>>,
    /// Registrations this node renews: in-node services and the core services.
    /// With when each was last registered successfully (`None`: not yet).
    held: Mutex<BTreeMap<(Namespace, String), Held>>,
}

fn replica_error(err: &micro_core::replicator::ReplicaError) -> MicroError {
    MicroError::from_error("runtime", err)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RuntimeHandle {
    /// The runtime of node `node_id`, starting `builtins` when asked.
    pub fn new(
        replicator: Arc<dyn Replicator>,
        registry: RegistryHandle,
        router: Router,
        builtins: Builtins,
        node_id: u64,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                replicator,
                registry,
                router,
                builtins,
                node_id,
                running: Mutex::new(BTreeMap::new()),
                held: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The names of the services compiled into this node.
    pub fn builtin_names(&self) -> Vec<String> {
        self.inner.builtins.keys().cloned().collect()
    }

    /// Asks the cluster to run compiled-in service `name` (on the least loaded node).
    pub async fn create(
        &self,
        namespace: Namespace,
        name: &str,
        version: &str,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), MicroError> {
        if !self.inner.builtins.contains_key(name) {
            let known = self.builtin_names().join(", ");
            return Err(MicroError::new(
                "runtime",
                Code::NotFound,
                format!("no service named {name:?} is compiled into the node (known: {known})"),
            ));
        }
        let version = if version.is_empty() {
            "latest"
        } else {
            version
        };
        self.inner
            .replicator
            .read_barrier()
            .await
            .map_err(|e| replica_error(&e))?;
        let all = self.all()?;
        if all
            .iter()
            .any(|(ns, s)| *ns == namespace && s.name == name && s.version == version)
        {
            return Err(MicroError::new(
                "runtime",
                Code::Conflict,
                format!("service {name}:{version} is already running in namespace {namespace}"),
            ));
        }
        let node_id = self.least_loaded(&all);
        let service = RuntimeService {
            name: name.to_owned(),
            version: version.to_owned(),
            source: Source::Builtin(name.to_owned()),
            node_id,
            status: Status::Pending,
            metadata,
            updated_ms: 0,
        };
        self.propose(Command::RuntimeUpsert { namespace, service })
            .await
            .map(|_| ())
    }

    /// The desired services of `namespace` (only `name` if given).
    pub async fn read(
        &self,
        namespace: &Namespace,
        name: Option<&str>,
    ) -> Result<Vec<RuntimeService>, MicroError> {
        self.inner
            .replicator
            .read_barrier()
            .await
            .map_err(|e| replica_error(&e))?;
        let services = self
            .inner
            .replicator
            .reader()
            .runtime_services(Some(namespace))
            .map_err(|e| MicroError::new("runtime", Code::Internal, e.0))?;
        Ok(services
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| name.is_none_or(|n| n == s.name))
            .collect())
    }

    /// Stops service `name` (every version when `version` is empty).
    pub async fn delete(
        &self,
        namespace: Namespace,
        name: &str,
        version: &str,
    ) -> Result<(), MicroError> {
        let versions: Vec<String> = self
            .read(&namespace, Some(name))
            .await?
            .into_iter()
            .filter(|s| version.is_empty() || s.version == version)
            .map(|s| s.version)
            .collect();
        if versions.is_empty() {
            return Err(MicroError::new(
                "runtime",
                Code::NotFound,
                format!("service {name} is not running in namespace {namespace}"),
            ));
        }
        for version in versions {
            self.propose(Command::RuntimeDelete {
                namespace: namespace.clone(),
                name: name.to_owned(),
                version,
            })
            .await?;
        }
        Ok(())
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
            .map_err(|e| MicroError::new("runtime", Code::Internal, e.0))
    }

    fn least_loaded(&self, all: &[(Namespace, RuntimeService)]) -> u64 {
        let mut load: BTreeMap<u64, usize> = self
            .inner
            .replicator
            .status()
            .members
            .iter()
            .map(|m| (m.id, 0))
            .collect();
        if load.is_empty() {
            load.insert(self.inner.node_id, 0);
        }
        for (_, s) in all {
            if let Some(n) = load.get_mut(&s.node_id) {
                *n += 1;
            }
        }
        load.into_iter()
            .min_by_key(|(id, n)| (*n, *id))
            .map_or(self.inner.node_id, |(id, _)| id)
    }

    async fn propose(&self, command: Command) -> Result<Response, MicroError> {
        self.inner
            .replicator
            .propose(command)
            .await
            .map_err(|e| replica_error(&e))
    }

    /// Starts the reconciler and renewal loops; they end when the returned tasks are
    /// aborted.
    pub fn spawn(&self) -> Vec<JoinHandle<()>> {
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

    async fn reconcile(&self) {
        let Ok(all) = self.all() else { return };
        let mine: BTreeMap<Key, RuntimeService> = all
            .into_iter()
            .filter(|(_, s)| s.node_id == self.inner.node_id)
            .map(|(ns, s)| ((ns, s.name.clone(), s.version.clone()), s))
            .collect();
        let running: Vec<Key> = lock(&self.inner.running).keys().cloned().collect();
        for key in running {
            if !mine.contains_key(&key) {
                self.stop(&key).await;
            }
        }
        for (key, desired) in mine {
            let is_running = lock(&self.inner.running).contains_key(&key);
            if is_running {
                if desired.status != Status::Running {
                    self.set_status(&key.0, desired, Status::Running, None)
                        .await;
                }
                continue;
            }
            self.start(key, desired).await;
        }
    }

    async fn start(&self, key: Key, desired: RuntimeService) {
        let (namespace, name, version) = key.clone();
        let Source::Builtin(builtin) = &desired.source;
        let Some(builtin) = self.inner.builtins.get(builtin).cloned() else {
            let why = format!("this node has no compiled-in service {builtin:?}");
            self.set_status(&namespace, desired, Status::Error, Some(why))
                .await;
            return;
        };
        if desired.status == Status::Error {
            return;
        }
        match builtin.start().await {
            Ok(service) => {
                self.inner
                    .router
                    .add_local(namespace.clone(), &name, service.clone());
                lock(&self.inner.running).insert(key, service.clone());
                let mut described = service.describe();
                described.name.clone_from(&name);
                described.version.clone_from(&version);
                let registration = self.registration(described);
                self.hold(namespace.clone(), registration).await;
                tracing::info!(service = %name, %namespace, "started in-node service");
                self.set_status(&namespace, desired, Status::Running, None)
                    .await;
            }
            Err(err) => {
                tracing::error!(%err, service = %name, "in-node service failed to start");
                self.set_status(&namespace, desired, Status::Error, Some(err.detail))
                    .await;
            }
        }
    }

    async fn stop(&self, key: &Key) {
        let (namespace, name, _) = key;
        let service = lock(&self.inner.running).remove(key);
        self.inner.router.remove_local(namespace, name);
        if let Some(service) = service {
            service.stop().await;
        }
        let node_id = self.node_name(name);
        self.release(namespace, &node_id).await;
        tracing::info!(service = %name, %namespace, "stopped in-node service");
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

    async fn set_status(
        &self,
        namespace: &Namespace,
        mut service: RuntimeService,
        status: Status,
        error: Option<String>,
    ) {
        service.status = status;
        match error {
            Some(why) => {
                service.metadata.insert("error".to_owned(), why);
            }
            None => {
                service.metadata.remove("error");
            }
        }
        let command = Command::RuntimeUpsert {
            namespace: namespace.clone(),
            service,
        };
        if let Err(err) = self.propose(command).await {
            tracing::warn!(%err, "recording a runtime status failed; retrying");
        }
    }
}
