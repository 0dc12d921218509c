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
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use micro_core::service::{Call, LocalService, RemoteCaller, Replies, ServiceCaller};
use micro_core::{Code, MicroError, Namespace};

use crate::registry::RegistryHandle;

/// Metadata key marking a call another node's router already routed.
pub const ROUTED_HEADER: &str = "micro-routed";
/// Metadata naming the registry node (instance) a call must go to.
pub const NODE_HEADER: &str = "micro-node";
/// Metadata carrying a call's trace id; the router sets one when a call has none.
pub const TRACE_HEADER: &str = "micro-trace-id";
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
    /// Trace ids are this (the node's address, hashed) and a counter: unique per node
    /// and, unlike random ones, the same in every replay of a simulation.
    trace_base: u32,
    next_trace: AtomicU32,
    /// Where the router's own spans go, once the node sets it.
    spans: Spans,
}

/// The sink of the router's spans, once set.
#[derive(Default)]
struct Spans(std::sync::OnceLock<SpanSink>);

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Spans(set)"
        } else {
            "Spans(unset)"
        })
    }
}

/// Receives a span: trace id, name, start (Unix ms) and duration.
pub type SpanSink = Arc<dyn Fn(String, String, u64, Duration) + Send + Sync>;

impl Router {
    /// A router for the node whose in-node services register `address`.
    pub fn new(registry: RegistryHandle, remote: Arc<dyn RemoteCaller>, address: String) -> Self {
        let trace_base = address.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        Self {
            inner: Arc::new(Inner {
                registry,
                remote,
                address,
                local: RwLock::new(BTreeMap::new()),
                next: AtomicUsize::new(0),
                trace_base,
                next_trace: AtomicU32::new(0),
                spans: Spans::default(),
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

    /// The addresses serving `call`'s service (only node `micro-node` when it is set:
    /// `micro stats` asks each instance in turn).
    fn addresses(&self, call: &Call) -> Result<Vec<String>, MicroError> {
        let name = &call.service;
        let services = self.inner.registry.lookup_local(&call.namespace, name)?;
        let only = call.metadata.get(NODE_HEADER);
        let addresses: Vec<String> = services
            .iter()
            .flat_map(|s| s.nodes.iter())
            .filter(|n| only.is_none_or(|id| *id == n.id))
            .map(|n| n.address.clone())
            .collect();
        match only {
            Some(id) if addresses.is_empty() => Err(MicroError::new(
                name,
                Code::NotFound,
                format!("service {name} has no node {id}"),
            )),
            _ => Ok(addresses),
        }
    }

    /// `call` as sent to another node or process: marked routed, and a core service's
    /// `Debug.*` addressed to its node's `/debug.Debug/*`.
    fn forwarded(&self, call: &Call) -> Call {
        let mut forwarded = call.clone();
        forwarded
            .metadata
            .insert(ROUTED_HEADER.to_owned(), self.inner.address.clone());
        if micro_core::registry::CORE_SERVICE_NAMES.contains(&call.service.as_str())
            && forwarded.endpoint.starts_with("Debug.")
        {
            "debug".clone_into(&mut forwarded.service);
        }
        forwarded
    }

    /// Sends the router's spans (time to route a call and get its first answer's head)
    /// to `sink`; only the first sink set counts.
    pub fn record_spans(&self, sink: SpanSink) {
        let _ = self.inner.spans.0.set(sink);
    }

    async fn route(self, mut call: Call) -> Result<Replies, MicroError> {
        if !call.metadata.contains_key(TRACE_HEADER) {
            let id = self.inner.next_trace.fetch_add(1, Ordering::Relaxed);
            call.metadata.insert(
                TRACE_HEADER.to_owned(),
                format!("{:x}{id:08x}", self.inner.trace_base),
            );
        }
        let Some(sink) = self.inner.spans.0.get().cloned() else {
            return self.route_traced(call).await;
        };
        let trace = call.metadata.get(TRACE_HEADER).cloned().unwrap_or_default();
        let name = format!("router {}.{}", call.service, call.endpoint);
        let began_ms = micro_core::Clock::now_ms(&micro_core::SystemClock);
        let started = tokio::time::Instant::now();
        let routed = self.route_traced(call).await;
        sink(trace, name, began_ms, started.elapsed());
        routed
    }

    async fn route_traced(self, call: Call) -> Result<Replies, MicroError> {
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
        let mut addresses = self.addresses(&call)?;
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
            let forwarded = self.forwarded(&call);
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
