//! The registry service: which services run where, per namespace, replicated through Raft.
//!
//! ```text
//! Register / Deregister ─validate─> Replicator::propose(RegistryRegister | ..Deregister)
//! GetService / ListServices ─read barrier─> StateReader::registry_services (live nodes only)
//! Watch ─> a task diffing the namespace's registry at each applied change ─> events
//! ```
//!
//! Registrations carry a TTL that the cluster judges by log time: a node that stops
//! re-registering disappears on every replica at the same point of the log.

use std::sync::Arc;
use std::time::Duration;

use micro_core::registry::{Registration, RegistryError, Service, WatchEvent, check_name, diff};
use micro_core::replicator::{Consistency, Replicator};
use micro_core::state::Command;
use micro_core::{Code, MicroError, Namespace};
use tokio::sync::mpsc;

/// How often a watch looks for changes.
pub const WATCH_POLL: Duration = Duration::from_millis(100);

/// How long a routing lookup is reused: callers route by a view at most this old, and
/// the state is not read and decoded on every call.
pub const LOOKUP_CACHE_TTL: Duration = Duration::from_millis(100);

type LookupCache =
    std::collections::HashMap<(Namespace, String), (tokio::time::Instant, Arc<Vec<Service>>)>;

/// The registry's typed handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct RegistryHandle {
    replicator: Arc<dyn Replicator>,
    lookups: Arc<std::sync::Mutex<LookupCache>>,
}

fn replica_error(err: &micro_core::replicator::ReplicaError) -> MicroError {
    MicroError::from_error("registry", err)
}

fn kv_error(err: &micro_core::kv::KvError) -> MicroError {
    MicroError::new("registry", Code::Internal, err.0.clone())
}

impl RegistryHandle {
    /// A handle proposing through `replicator`.
    pub fn new(replicator: Arc<dyn Replicator>) -> Self {
        Self {
            replicator,
            lookups: Arc::default(),
        }
    }

    /// Registers (or renews) one node of a service.
    pub async fn register(
        &self,
        namespace: Namespace,
        registration: Registration,
    ) -> Result<(), MicroError> {
        let registration = registration
            .validate()
            .map_err(|e| MicroError::from_error("registry", &e))?;
        self.replicator
            .propose(Command::RegistryRegister {
                namespace,
                registration,
            })
            .await
            .map_err(|e| replica_error(&e))?;
        Ok(())
    }

    /// Removes nodes of a service version (every node when `node_ids` is empty).
    pub async fn deregister(
        &self,
        namespace: Namespace,
        name: &str,
        version: &str,
        node_ids: Vec<String>,
    ) -> Result<(), MicroError> {
        let invalid = |e: RegistryError| MicroError::from_error("registry", &e);
        check_name("service name", name, false).map_err(invalid)?;
        let version = if version.is_empty() {
            "latest"
        } else {
            version
        };
        self.replicator
            .propose(Command::RegistryDeregister {
                namespace,
                name: name.to_owned(),
                version: version.to_owned(),
                node_ids,
            })
            .await
            .map_err(|e| replica_error(&e))?;
        Ok(())
    }

    /// The versions of service `name`; `NotFound` when none has a live node.
    pub async fn get(
        &self,
        namespace: &Namespace,
        name: &str,
        consistency: Consistency,
    ) -> Result<Vec<Service>, MicroError> {
        let services = self.list_named(namespace, Some(name), consistency).await?;
        if services.is_empty() {
            return Err(MicroError::new(
                "registry",
                Code::NotFound,
                format!("service {name} not found in namespace {namespace}"),
            ));
        }
        Ok(services)
    }

    /// Every live service of the namespace.
    pub async fn list(
        &self,
        namespace: &Namespace,
        consistency: Consistency,
    ) -> Result<Vec<Service>, MicroError> {
        self.list_named(namespace, None, consistency).await
    }

    /// The services this node has applied, without a read barrier (for routing), as
    /// seen at most [`LOOKUP_CACHE_TTL`] ago. A core service (see
    /// [`micro_core::registry::CORE_SERVICE_NAMES`]) is always looked up in `micro`,
    /// where the nodes register them (and nobody else may), so a caller of namespace `a`
    /// reaches the real `store`, which then checks the caller itself. Other services
    /// never cross namespaces.
    pub fn lookup_local(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<Arc<Vec<Service>>, MicroError> {
        if micro_core::registry::CORE_SERVICE_NAMES.contains(&name) {
            return self.lookup_exact(&Namespace::default(), name);
        }
        self.lookup_exact(namespace, name)
    }

    fn lookup_exact(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<Arc<Vec<Service>>, MicroError> {
        let key = (namespace.clone(), name.to_owned());
        let now = tokio::time::Instant::now();
        let cached = {
            let lookups = self
                .lookups
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            lookups
                .get(&key)
                .filter(|(at, _)| now.duration_since(*at) < LOOKUP_CACHE_TTL)
                .map(|(_, services)| services.clone())
        };
        if let Some(services) = cached {
            return Ok(services);
        }
        let services = Arc::new(
            self.replicator
                .reader()
                .registry_services(namespace, Some(name))
                .map_err(|e| kv_error(&e))?,
        );
        let mut lookups = self
            .lookups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Names callers invent must not grow the cache without bound.
        if lookups.len() >= 4096 {
            lookups.clear();
        }
        lookups.insert(key, (now, services.clone()));
        Ok(services)
    }

    async fn list_named(
        &self,
        namespace: &Namespace,
        name: Option<&str>,
        consistency: Consistency,
    ) -> Result<Vec<Service>, MicroError> {
        if consistency == Consistency::Linearizable {
            self.replicator
                .read_barrier()
                .await
                .map_err(|e| replica_error(&e))?;
        }
        self.replicator
            .reader()
            .registry_services(namespace, name)
            .map_err(|e| kv_error(&e))
    }

    /// Watches the namespace (one service if `name` is given): the receiver gets every
    /// create, update and delete as this node applies them, until it is dropped. The
    /// services present when the watch starts are not reported.
    pub fn watch(&self, namespace: Namespace, name: Option<String>) -> mpsc::Receiver<WatchEvent> {
        let (tx, rx) = mpsc::channel(256);
        let reader = self.replicator.reader();
        let replicator = self.replicator.clone();
        tokio::spawn(async move {
            let read = || reader.registry_services(&namespace, name.as_deref()).ok();
            let mut seen = read().unwrap_or_default();
            let mut applied = replicator.status().applied_index;
            let mut tick = tokio::time::interval(WATCH_POLL);
            loop {
                tick.tick().await;
                if tx.is_closed() {
                    return;
                }
                let now_applied = replicator.status().applied_index;
                if now_applied == applied {
                    continue;
                }
                applied = now_applied;
                let Some(current) = read() else { continue };
                let at = reader.log_time_ms().unwrap_or(0) / 1000;
                let timestamp = i64::try_from(at).unwrap_or(i64::MAX);
                for event in diff(&seen, &current, timestamp) {
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                seen = current;
            }
        });
        rx
    }
}
