//! [`start_node`]: assembles and starts one node.

use std::net::SocketAddr;
use std::sync::Arc;

use micro_actors::NodeSupervisor;
use micro_actors::supervisor::SupervisorMsg;
use micro_cluster::{PeerConnector, RaftNode, RaftNodeConfig};
use micro_core::Clock;
use micro_core::kv::{KvBackend, MemKvBackend};
use micro_gateway::ProxyDeps;
use ractor::ActorRef;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::exit::{CliError, OTHER};
use crate::node::listen::{ApiListener, Listen, Secured, incoming};
use crate::node::{NodeConfig, StorageKind, TlsPaths};
use micro_proto::tls::{TlsConfig, TlsError};

/// How long a graceful shutdown waits for open calls and streams before cutting them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A last change to a node's Raft settings (see [`NodeDeps::tune_raft`]).
pub type TuneRaft = Box<dyn FnOnce(&mut RaftNodeConfig) + Send>;

/// The implementations a node runs on: chosen by the binaries (production: tokio TCP,
/// RocksDB, the system clock) or by tests and the simulation (turmoil TCP, memory, a
/// simulated clock).
pub struct NodeDeps<L: Listen = TcpListener> {
    /// Durable state.
    pub kv: Arc<dyn KvBackend>,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Where the gRPC proxy accepts connections.
    pub proxy_listener: L,
    /// Where the HTTP API accepts connections.
    pub api_listener: L,
    /// Where peers reach this node (Raft and forwarded calls).
    pub peer_listener: L,
    /// How this node dials its peers.
    pub connector: Arc<dyn PeerConnector>,
    /// Seed of Raft's RNG (`None`: OS entropy).
    pub seed: Option<u64>,
    /// Last changes to the Raft settings derived from the configuration (the simulation
    /// sets its timings and, in bug-injection builds, a planted bug); `None` in production.
    pub tune_raft: Option<TuneRaft>,
    /// The services compiled into the node, which `micro run NAME` starts in-node.
    pub builtins: micro_core::service::Builtins,
    /// Check accounts and rules on every request (always, but in the simulation, which
    /// checks replication rather than access and treats every caller as an admin).
    pub enforce_auth: bool,
}

impl<L: Listen> std::fmt::Debug for NodeDeps<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDeps")
            .field("kv", &self.kv)
            .field("clock", &self.clock)
            .field("connector", &self.connector)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// A started node.
#[derive(Debug)]
pub struct RunningNode {
    /// The proxy's bound address.
    pub proxy_addr: SocketAddr,
    /// The API's bound address.
    pub api_addr: SocketAddr,
    /// The peer address this node advertises.
    pub peer_addr: String,
    raft: RaftNode,
    runtime: micro_actors::RuntimeHandle,
    supervisor: ActorRef<SupervisorMsg>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    /// The runtime's reconcile and renewal loops (they never end by themselves).
    loops: Vec<JoinHandle<()>>,
}

/// Binds a listener, with a usage error naming the flag when the address is bad or busy.
pub async fn bind(flag: &str, addr: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::new(OTHER, format!("cannot listen on {addr} ({flag}): {e}")))
}

/// Opens the storage the configuration names.
pub fn open_storage(config: &NodeConfig) -> Result<Arc<dyn KvBackend>, CliError> {
    match config.storage {
        StorageKind::Memory => Ok(Arc::new(MemKvBackend::new())),
        StorageKind::Rocksdb => open_rocksdb(config),
    }
}

#[cfg(feature = "rocksdb")]
fn open_rocksdb(config: &NodeConfig) -> Result<Arc<dyn KvBackend>, CliError> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(
            OTHER,
            format!("cannot create data dir {}: {e}", dir.display()),
        )
    })?;
    let kv = micro_cluster::RocksKvBackend::open(dir).map_err(|e| {
        if e.0.contains("Corruption") {
            return damaged(dir, &e.0);
        }
        CliError::new(
            OTHER,
            format!(
                "cannot open data dir {} (is another node using it?): {}",
                dir.display(),
                e.0
            ),
        )
    })?;
    // Before anything is decoded: another release's data is refused by its format, not
    // misreported as damage (or misread).
    let format = micro_core::kv::format::check_data_format(&kv).map_err(|e| {
        CliError::new(
            OTHER,
            format!("data dir {} cannot be opened: {}", dir.display(), e.0),
        )
    })?;
    tracing::info!(?format, "data format checked");
    let started = tokio::time::Instant::now();
    let summary = micro_cluster::verify_storage(&kv).map_err(|e| damaged(dir, &e))?;
    tracing::info!(
        keys = summary.keys,
        bytes = summary.bytes,
        log_entries = summary.log_entries,
        elapsed_ms = started.elapsed().as_millis(),
        "data dir verified"
    );
    Ok(Arc::new(kv))
}

/// The refusal to start on a damaged data directory, with the way out.
#[cfg(feature = "rocksdb")]
fn damaged(dir: &std::path::Path, why: &dyn std::fmt::Display) -> CliError {
    CliError::new(
        OTHER,
        format!(
            "data dir {} is damaged, so this node will not serve from it: {why}. Move the \
             directory aside and restore a backup, or, in a cluster, remove this node \
             (micro cluster remove-node ID) and add it back empty with --join so it copies \
             the state from the others",
            dir.display()
        ),
    )
}

#[cfg(not(feature = "rocksdb"))]
fn open_rocksdb(_config: &NodeConfig) -> Result<Arc<dyn KvBackend>, CliError> {
    Err(CliError::usage(
        "this build has no RocksDB (feature `rocksdb`): use --storage memory",
    ))
}

/// Starts a node: Raft (recovering its state, or forming or joining its cluster), the
/// service actors, and the proxy, API and peer servers on the given listeners.
pub async fn start_node<L: Listen>(
    config: &NodeConfig,
    deps: NodeDeps<L>,
) -> Result<RunningNode, CliError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| CliError::new(OTHER, format!("{what}: {e}"));
    let deps = secured(config, deps)?;
    let (proxy_addr, api_addr, peer_addr) = addresses(config, &deps)?;
    let raft_config = raft_config(config, &peer_addr, deps.seed, deps.tune_raft);
    let connector = deps.connector.clone();
    let raft = RaftNode::start(raft_config, deps.kv, deps.clock.clone(), deps.connector)
        .await
        .map_err(|e| fail("raft", &e))?;
    let (stop, stopped, mut servers) = serve_peer_port(deps.peer_listener, &raft);
    raft.bootstrap().await.map_err(|e| fail("raft", &e))?;
    let replicator: Arc<dyn micro_core::replicator::Replicator> = Arc::new(raft.clone());
    let (supervisor, handles) = NodeSupervisor::start(replicator.clone())
        .await
        .map_err(|e| fail("actors", &e))?;
    let proxy_advertised = proxy_address(config, proxy_addr, &peer_addr);
    let (registry, router, runtime) = services(
        &replicator,
        connector,
        proxy_advertised.clone(),
        deps.builtins,
        config.node_id,
    );
    let (events, blobs) = data_handles(config, deps.seed, &deps.clock, &replicator);
    let auth = (deps.enforce_auth)
        .then(|| micro_actors::AuthHandle::new(replicator.clone(), deps.clock.clone()));
    let runtime = hosted(config, runtime, proxy_advertised, (&blobs, &auth)).await?;
    let metrics = micro_gateway::Metrics::default();
    let (api_state, bootstrap) = api_state(
        config,
        &router,
        &registry,
        auth.as_ref(),
        &replicator,
        (&metrics, api_addr),
    );
    let proxy_deps = ProxyDeps {
        events,
        blobs,
        handles,
        replicator: replicator.clone(),
        clock: deps.clock,
        registry,
        runtime: runtime.clone(),
        router,
        auth,
        metrics: metrics.clone(),
    };
    let mut loops: Vec<_> = bootstrap.into_iter().collect();
    loops.push(metrics.spawn_sampler(replicator.clone()));
    servers.extend(serve_front(
        (deps.proxy_listener, deps.api_listener),
        proxy_deps,
        api_state,
        &stopped,
    ));
    loops.extend(runtime.spawn());
    register_core_services(&runtime);
    Ok(RunningNode {
        proxy_addr,
        api_addr,
        peer_addr,
        raft,
        runtime,
        supervisor,
        stop,
        servers,
        loops,
    })
}

/// `deps` with each listener behind TLS when the configuration names TLS files: the
/// proxy and the API with the node's certificate, the peer port mutual.
fn secured<L: Listen>(
    config: &NodeConfig,
    deps: NodeDeps<L>,
) -> Result<NodeDeps<Secured<L>>, CliError> {
    let tls = config.tls.as_ref().map(TlsPaths::load).transpose()?;
    let acceptor = |make: fn(&TlsConfig) -> Result<tokio_rustls::TlsAcceptor, TlsError>| {
        tls.as_ref()
            .map(make)
            .transpose()
            .map_err(|e| CliError::usage(format!("TLS: {e}")))
    };
    Ok(NodeDeps {
        proxy_listener: Secured::new(
            deps.proxy_listener,
            acceptor(TlsConfig::front_acceptor)?,
            "proxy",
        ),
        api_listener: Secured::new(
            deps.api_listener,
            acceptor(TlsConfig::http_acceptor)?,
            "api",
        ),
        peer_listener: Secured::new(
            deps.peer_listener,
            acceptor(TlsConfig::peer_acceptor)?,
            "peer",
        ),
        kv: deps.kv,
        clock: deps.clock,
        connector: deps.connector,
        seed: deps.seed,
        tune_raft: deps.tune_raft,
        builtins: deps.builtins,
        enforce_auth: deps.enforce_auth,
    })
}

/// Serves the peer port (Raft and forwarded calls) until the returned sender says stop.
fn serve_peer_port<L: Listen>(
    listener: L,
    raft: &RaftNode,
) -> (
    watch::Sender<bool>,
    watch::Receiver<bool>,
    Vec<JoinHandle<()>>,
) {
    let (stop, stopped) = watch::channel(false);
    let server = spawn_server(
        "peer",
        micro_cluster::serve_peer(incoming(listener), raft.clone(), wait_stop(stopped.clone())),
    );
    (stop, stopped, vec![server])
}

/// Starts the proxy and the API servers.
fn serve_front<L: Listen>(
    (proxy, api): (L, L),
    proxy_deps: ProxyDeps,
    api_state: micro_gateway::ApiState,
    stopped: &watch::Receiver<bool>,
) -> [JoinHandle<()>; 2] {
    [
        spawn_server(
            "proxy",
            micro_gateway::serve_proxy(incoming(proxy), proxy_deps, wait_stop(stopped.clone())),
        ),
        spawn_server(
            "api",
            micro_gateway::serve_api(ApiListener(api), api_state, wait_stop(stopped.clone())),
        ),
    ]
}

/// The API's state counting into `metrics` (the router's spans too), with trace ids
/// unique to this node.
fn observed(
    state: micro_gateway::ApiState,
    metrics: &micro_gateway::Metrics,
    (router, replicator): (
        &micro_actors::Router,
        &Arc<dyn micro_core::replicator::Replicator>,
    ),
    node_id: u64,
    api_addr: SocketAddr,
) -> micro_gateway::ApiState {
    let sink = metrics.clone();
    router.record_spans(Arc::new(move |trace, name, began_ms, elapsed| {
        sink.span(trace, name, "router", began_ms, elapsed);
    }));
    let base = (u32::try_from(node_id).unwrap_or(0) << 16) | u32::from(api_addr.port());
    state
        .with_metrics(metrics.clone(), replicator.clone())
        .with_trace_base(base)
}

/// The API's state with the auth hook, and the auth bootstrap loop, when auth is on.
fn api_state(
    config: &NodeConfig,
    router: &micro_actors::Router,
    registry: &micro_actors::RegistryHandle,
    auth: Option<&micro_actors::AuthHandle>,
    replicator: &Arc<dyn micro_core::replicator::Replicator>,
    (metrics, api_addr): (&micro_gateway::Metrics, SocketAddr),
) -> (micro_gateway::ApiState, Option<JoinHandle<()>>) {
    let state = micro_gateway::ApiState::new(
        Arc::new(router.clone()),
        registry.clone(),
        config.body_limit,
    );
    let state = observed(
        state,
        metrics,
        (router, replicator),
        config.node_id,
        api_addr,
    );
    let Some(auth) = auth else {
        return (state, None);
    };
    let password = config.admin_password.0.clone();
    let bootstrap = tokio::spawn(bootstrap_auth(auth.clone(), replicator.clone(), password));
    (
        state.with_auth(micro_gateway::auth_hook(auth.clone())),
        Some(bootstrap),
    )
}

/// Creates the cluster's signing keys and first admin once: whichever node leads first
/// proposes them (a second proposal is refused by the state machine, so racing leaders
/// are harmless). Then warns while `admin` still has the default password.
async fn bootstrap_auth(
    auth: micro_actors::AuthHandle,
    replicator: Arc<dyn micro_core::replicator::Replicator>,
    admin_password: String,
) {
    loop {
        if matches!(replicator.reader().auth_keys(), Ok(Some(_))) {
            break;
        }
        let status = replicator.status();
        if status.leader == Some(status.node_id) {
            match auth.bootstrap(&admin_password).await {
                Ok(true) => tracing::info!("auth bootstrapped: signing keys and the admin account"),
                Ok(false) => {}
                Err(err) => tracing::warn!("auth bootstrap failed, retrying: {err}"),
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    if auth.admin_has_default_password().await {
        tracing::warn!(
            "account admin of namespace micro still has the default password \"micro\": \
             change it with `micro user set password` or start the first node with --admin-password"
        );
    }
}

/// The bound proxy and API addresses and the peer address to advertise.
fn addresses<L: Listen>(
    config: &NodeConfig,
    deps: &NodeDeps<L>,
) -> Result<(SocketAddr, SocketAddr, String), CliError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| CliError::new(OTHER, format!("{what}: {e}"));
    let proxy_addr = deps
        .proxy_listener
        .local_addr()
        .map_err(|e| fail("proxy listener", &e))?;
    let api_addr = deps
        .api_listener
        .local_addr()
        .map_err(|e| fail("api listener", &e))?;
    let bound_peer = deps
        .peer_listener
        .local_addr()
        .map_err(|e| fail("peer listener", &e))?;
    // With port 0 the OS chose the port: advertise the one it chose.
    let peer_addr = if config.peer_addr.ends_with(":0") {
        bound_peer.to_string()
    } else {
        config.peer_addr.clone()
    };
    Ok((proxy_addr, api_addr, peer_addr))
}

/// The Raft settings of a node advertising `peer_addr`.
fn raft_config(
    config: &NodeConfig,
    peer_addr: &str,
    seed: Option<u64>,
    tune: Option<TuneRaft>,
) -> RaftNodeConfig {
    let mut raft_config = RaftNodeConfig::single(config.node_id, peer_addr.to_owned());
    raft_config.seed = seed;
    raft_config.peers.clone_from(&config.peers);
    raft_config.join.clone_from(&config.join);
    raft_config.standby = config.standby;
    raft_config.snapshot_logs_since_last = config.snapshot_every;
    raft_config.logs_kept_behind_snapshot = config.snapshot_every / 5;
    raft_config.disk_reserve = config.disk_reserve;
    if let Some(tune) = tune {
        tune(&mut raft_config);
    }
    raft_config
}

/// The registry, the router and the runtime of a node whose proxy others reach at
/// `address`.
fn services(
    replicator: &Arc<dyn micro_core::replicator::Replicator>,
    connector: Arc<dyn PeerConnector>,
    address: String,
    builtins: micro_core::service::Builtins,
    node_id: u64,
) -> (
    micro_actors::RegistryHandle,
    micro_actors::Router,
    micro_actors::RuntimeHandle,
) {
    let registry = micro_actors::RegistryHandle::new(replicator.clone());
    // Nodes' proxies register with `https://` when TLS is on; process services, without.
    let dial: micro_gateway::Dial =
        Arc::new(move |addr: &str| match addr.strip_prefix("https://") {
            Some(secure) => connector.channel(secure),
            None => connector.plain_channel(addr),
        });
    let remote = Arc::new(micro_gateway::GrpcRemote::new(dial));
    let router = micro_actors::Router::new(registry.clone(), remote, address);
    let runtime = micro_actors::RuntimeHandle::new(
        replicator.clone(),
        registry.clone(),
        router.clone(),
        builtins,
        node_id,
    );
    (registry, router, runtime)
}

/// Registers the core services this node serves, in namespace `micro`, renewed by the
/// runtime for as long as the node runs.
fn register_core_services(runtime: &micro_actors::RuntimeHandle) {
    for service in crate::node::core_services::core_services() {
        let registration = runtime.registration(service);
        let runtime = runtime.clone();
        // Registering needs a leader; the runtime renews until it succeeds.
        tokio::spawn(async move {
            runtime
                .hold(micro_core::Namespace::default(), registration)
                .await;
        });
    }
}

/// The node's events and blob engines. Their ids (events, consumers, uploads) come from
/// OS entropy, or, in the simulation, from the node's seed and the (simulated) time of
/// this start, so a run replays and a restarted node does not hand out its previous
/// run's ids again.
fn data_handles(
    config: &NodeConfig,
    seed: Option<u64>,
    clock: &Arc<dyn micro_core::Clock>,
    replicator: &Arc<dyn micro_core::replicator::Replicator>,
) -> (micro_actors::EventsHandle, micro_actors::BlobHandle) {
    let seed = seed.map_or_else(micro_core::rng::entropy_seed, |seed| {
        seed.rotate_left(29) ^ clock.now_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15)
    });
    let ids: Arc<dyn micro_core::rng::Rng> = Arc::new(micro_core::rng::SeededRng::new(seed));
    let events = micro_actors::EventsHandle::new(
        replicator.clone(),
        clock.clone(),
        ids.clone(),
        config.events_retention,
    );
    (
        events,
        micro_actors::BlobHandle::new(replicator.clone(), ids),
    )
}

/// Where and as whom this node builds and runs process services: under
/// `DATA_DIR/runtime`, as `--run-as` (by default the node's own user, but `nobody` when
/// the node is root: builds and services are untrusted code).
fn process_host(
    config: &NodeConfig,
    proxy: String,
    blobs: &micro_actors::BlobHandle,
    auth: &Option<micro_actors::AuthHandle>,
) -> Result<micro_actors::runtime::ProcessHost, CliError> {
    use micro_actors::runtime::{HostConfig, ProcessHost, RunAs, current_uid};
    let mut host = HostConfig::new(
        &config.data_dir.join("runtime"),
        config.build_dir.clone(),
        proxy,
    );
    if let Some(tls) = &config.tls {
        let ca = std::fs::read_to_string(&tls.ca).map_err(|e| {
            CliError::usage(format!("TLS: cannot read CA {}: {e}", tls.ca.display()))
        })?;
        host.proxy_ca = Some(ca);
    }
    let user = match (&config.run_as, current_uid()) {
        (Some(name), _) => Some(name.as_str()),
        (None, Some(0)) => Some("nobody"),
        (None, _) => None,
    };
    if let Some(name) = user {
        let user = RunAs::lookup(name).map_err(|e| CliError::usage(format!("--run-as: {e}")))?;
        let switching = current_uid() != Some(user.uid);
        if switching && current_uid() != Some(0) {
            return Err(CliError::usage(format!(
                "--run-as {name}: only a node running as root can run builds and services \
                 as another user"
            )));
        }
        host.run_as = switching.then_some(user);
    }
    Ok(ProcessHost {
        config: host,
        blobs: blobs.clone(),
        auth: auth.clone(),
    })
}

/// `runtime` building and running uploaded services: as processes of this node, or
/// (`--runtime kubernetes`) as Kubernetes Deployments.
async fn hosted(
    config: &NodeConfig,
    runtime: micro_actors::RuntimeHandle,
    proxy: String,
    (blobs, auth): (&micro_actors::BlobHandle, &Option<micro_actors::AuthHandle>),
) -> Result<micro_actors::RuntimeHandle, CliError> {
    let runtime = runtime.with_processes(process_host(config, proxy.clone(), blobs, auth)?);
    on_kubernetes(config, runtime, &proxy).await
}

/// `runtime` running uploaded services as Kubernetes Deployments when the
/// configuration says so, with kube's standard configuration (in-cluster, else
/// KUBECONFIG); pods reach the proxy at `--kube-proxy`, else at `proxy`.
#[cfg(feature = "kubernetes")]
async fn on_kubernetes(
    config: &NodeConfig,
    runtime: micro_actors::RuntimeHandle,
    proxy: &str,
) -> Result<micro_actors::RuntimeHandle, CliError> {
    use micro_actors::runtime::kube::{KubeConfig, KubeRuntime};
    let crate::node::RuntimeConfig::Kubernetes(settings) = &config.runtime else {
        return Ok(runtime);
    };
    let mut kube = KubeConfig::new(settings.proxy.clone().unwrap_or_else(|| proxy.to_owned()));
    kube.image.clone_from(&settings.image);
    kube.namespace_prefix.clone_from(&settings.namespace_prefix);
    if let Some(tls) = &config.tls {
        let ca = std::fs::read_to_string(&tls.ca).map_err(|e| {
            CliError::usage(format!("TLS: cannot read CA {}: {e}", tls.ca.display()))
        })?;
        kube.proxy_ca = Some(ca);
    }
    let kube = KubeRuntime::infer(kube).await.map_err(CliError::usage)?;
    tracing::info!(config = ?kube.config(), "uploaded services run on Kubernetes");
    Ok(runtime.with_kubernetes(Arc::new(kube)))
}

/// `runtime` as it is: this build has no Kubernetes runtime (a configuration that asks
/// for it is refused).
#[cfg(not(feature = "kubernetes"))]
#[allow(clippy::unused_async)] // the same signature as with the feature
async fn on_kubernetes(
    config: &NodeConfig,
    runtime: micro_actors::RuntimeHandle,
    _proxy: &str,
) -> Result<micro_actors::RuntimeHandle, CliError> {
    match config.runtime {
        crate::node::RuntimeConfig::Local => Ok(runtime),
        crate::node::RuntimeConfig::Kubernetes(_) => {
            Err(CliError::usage(crate::node::NO_KUBERNETES))
        }
    }
}

/// The proxy's address as this node registers it. With TLS it carries the scheme: every
/// node's router then dials it (and the services this node runs reach it) over TLS,
/// while plaintext process services, registered without one, stay plaintext.
fn proxy_address(config: &NodeConfig, proxy: SocketAddr, peer_addr: &str) -> String {
    match &config.tls {
        Some(_) => format!("https://{}", advertised(proxy, peer_addr)),
        None => advertised(proxy, peer_addr),
    }
}

/// The address other nodes reach this node's proxy at: the bound one, unless it is a
/// wildcard, then the peer address's host with the proxy's port.
fn advertised(proxy: SocketAddr, peer_addr: &str) -> String {
    if !proxy.ip().is_unspecified() {
        return proxy.to_string();
    }
    let host = peer_addr.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
    format!("{host}:{}", proxy.port())
}

/// Runs a server in its own task, logging how it ended if it failed.
fn spawn_server<E: std::fmt::Display>(
    name: &'static str,
    server: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(err) = server.await {
            tracing::error!(%err, server = name, "server failed");
        }
    })
}

async fn wait_stop(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone: stop then too.
    let _ = stopped.wait_for(|stop| *stop).await;
}

impl RunningNode {
    /// How this node sees the cluster now: its role, term, leader and log positions.
    pub fn cluster_status(&self) -> micro_core::cluster::ClusterStatus {
        micro_core::replicator::Replicator::status(&self.raft)
    }

    /// Resolves if the node's Raft stopped on a fatal error (storage failed), with what
    /// happened; pending while it runs.
    pub async fn fatal(&self) -> String {
        self.raft.fatal().await
    }

    /// Stops the node at once, as a crash would (no graceful drain of connections).
    pub async fn kill(self) {
        for task in self.loops.iter().chain(&self.servers) {
            task.abort();
        }
        self.supervisor.stop(None);
        self.raft.shutdown().await;
    }

    /// Stops serving, then stops the actors and Raft. Acknowledged writes stay durable.
    /// The node's registrations are withdrawn first, so callers stop routing to it.
    pub async fn shutdown(self) {
        for task in &self.loops {
            task.abort();
        }
        self.runtime.stop_processes().await;
        let withdraw = self.runtime.release_all();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), withdraw).await;
        let _ = self.stop.send(true);
        // Open streams (a registry Watch, say) would hold a graceful stop forever: they
        // get a grace period, then are cut.
        let grace = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for mut server in self.servers {
            if tokio::time::timeout_at(grace, &mut server).await.is_err() {
                server.abort();
            }
        }
        self.supervisor.stop(None);
        self.raft.shutdown().await;
    }
}
