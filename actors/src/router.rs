//! The [`Router`]: `(namespace, service, endpoint)` -> where the call runs.
//!
//! ```text
//! call ─> registry (this node's applied state) ─> the service's nodes, round-robin
//!           node address == this node and the service runs here ─> LocalService (actors)
//!           otherwise ─> RemoteCaller: another node's proxy, or a process service
//!         a node that cannot be reached (nothing sent) ─> the next node
//! ```
//!
//! A call forwarded by another node carries [`ROUTED_HEADER`] and is only served
//! locally, so a stale registry can never bounce a call between nodes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use micro_core::service::{Call, LocalService, RemoteCaller, Replies, ServiceCaller};
use micro_core::{Code, MicroError, Namespace};

use crate::registry::RegistryHandle;

/// Metadata key marking a call another node's router already routed.
pub const ROUTED_HEADER: &str = "micro-routed";
/// How long a routed call may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

type LocalKey = (Namespace, String);

/// Routes calls to in-node services, other nodes and processes.
#[derive(Debug, Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: RegistryHandle,
    remote: Arc<dyn RemoteCaller>,
    address: String,
    local: RwLock<BTreeMap<LocalKey, Arc<dyn LocalService>>>,
    next: AtomicUsize,
    timeout: Duration,
}

impl Router {
    /// A router for the node whose in-node services register `address`.
    pub fn new(registry: RegistryHandle, remote: Arc<dyn RemoteCaller>, address: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                remote,
                address,
                local: RwLock::new(BTreeMap::new()),
                next: AtomicUsize::new(0),
                timeout: DEFAULT_TIMEOUT,
            }),
        }
    }

    /// The address this node's in-node services register.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// How this node calls other nodes' proxies.
    pub fn remote(&self) -> Arc<dyn RemoteCaller> {
        self.inner.remote.clone()
    }

    /// Serves `name` in `namespace` from this node.
    pub fn add_local(&self, namespace: Namespace, name: &str, service: Arc<dyn LocalService>) {
        let mut local = self
            .inner
            .local
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        local.insert((namespace, name.to_owned()), service);
    }

    /// Stops serving `name` in `namespace` from this node; returns what was served.
    pub fn remove_local(&self, namespace: &Namespace, name: &str) -> Option<Arc<dyn LocalService>> {
        let mut local = self
            .inner
            .local
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        local.remove(&(namespace.clone(), name.to_owned()))
    }

    fn local(&self, namespace: &Namespace, name: &str) -> Option<Arc<dyn LocalService>> {
        let local = self
            .inner
            .local
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        local.get(&(namespace.clone(), name.to_owned())).cloned()
    }

    async fn route(self, call: Call) -> Result<Replies, MicroError> {
        let name = call.service.clone();
        let local = self.local(&call.namespace, &name);
        if call.metadata.contains_key(ROUTED_HEADER) {
            return match local {
                Some(service) => Ok(service.call(call)),
                None => Err(MicroError::new(
                    &name,
                    Code::NotFound,
                    format!("service {name} does not run on {}", self.inner.address),
                )),
            };
        }
        let services = self.inner.registry.lookup_local(&call.namespace, &name)?;
        let mut addresses: Vec<String> = services
            .iter()
            .flat_map(|s| s.nodes.iter().map(|n| n.address.clone()))
            .collect();
        addresses.sort();
        addresses.dedup();
        if addresses.is_empty() {
            return match local {
                // Serving here but not registered yet (it is starting): serve it.
                Some(service) => Ok(service.call(call)),
                None => Err(MicroError::new(
                    &name,
                    Code::NotFound,
                    format!("service {name} not found in namespace {}", call.namespace),
                )),
            };
        }
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for i in 0..addresses.len() {
            let address = &addresses[(start + i) % addresses.len()];
            if *address == self.inner.address
                && let Some(service) = &local
            {
                return Ok(service.call(call));
            }
            // Another node or a process; or this node's own proxy, for the core services
            // it serves over gRPC (the HTTP gateway reaches them this way). A call that
            // arrives there already routed is served locally or refused: no loops.
            let mut forwarded = call.clone();
            forwarded
                .metadata
                .insert(ROUTED_HEADER.to_owned(), self.inner.address.clone());
            match self
                .inner
                .remote
                .call(address, forwarded, self.inner.timeout)
                .await
            {
                // Unreachable: nothing was sent, so another node may take it.
                Err(err) if err.kind() == Code::Unavailable => last = Some(err),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| {
            MicroError::new(
                &name,
                Code::Unavailable,
                format!("no node of {name} can be reached"),
            )
        }))
    }
}

impl ServiceCaller for Router {
    fn dispatch(&self, call: Call) -> Replies {
        let routed = futures_util::stream::once(self.clone().route(call));
        Box::pin(routed.flat_map(|routed| match routed {
            Ok(replies) => replies,
            Err(err) => Box::pin(futures_util::stream::once(async move { Err(err) })) as Replies,
        }))
    }
}
