//! [`start_node`]: assembles and starts one node.

use std::net::SocketAddr;
use std::sync::Arc;

use micro_actors::NodeSupervisor;
use micro_actors::supervisor::SupervisorMsg;
use micro_cluster::{RaftNode, RaftNodeConfig};
use micro_core::Clock;
use micro_core::kv::{KvBackend, MemKvBackend};
use micro_gateway::ProxyDeps;
use ractor::ActorRef;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::exit::{CliError, OTHER};
use crate::node::{NodeConfig, StorageKind};

/// The implementations a node runs on: chosen by the binaries (production) or by tests.
#[derive(Debug)]
pub struct NodeDeps {
    /// Durable state.
    pub kv: Arc<dyn KvBackend>,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Where the gRPC proxy accepts connections.
    pub proxy_listener: TcpListener,
    /// Where the HTTP API accepts connections.
    pub api_listener: TcpListener,
    /// Seed of Raft's RNG (`None`: OS entropy).
    pub seed: Option<u64>,
}

/// A started node.
#[derive(Debug)]
pub struct RunningNode {
    /// The proxy's bound address.
    pub proxy_addr: SocketAddr,
    /// The API's bound address.
    pub api_addr: SocketAddr,
    raft: RaftNode,
    supervisor: ActorRef<SupervisorMsg>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
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
        CliError::new(
            OTHER,
            format!(
                "cannot open data dir {} (is another node using it?): {}",
                dir.display(),
                e.0
            ),
        )
    })?;
    Ok(Arc::new(kv))
}

#[cfg(not(feature = "rocksdb"))]
fn open_rocksdb(_config: &NodeConfig) -> Result<Arc<dyn KvBackend>, CliError> {
    Err(CliError::usage(
        "this build has no RocksDB (feature `rocksdb`): use --storage memory",
    ))
}

/// Starts a node: Raft (recovering or initializing its cluster), the service actors, and
/// the proxy and API servers on the given listeners.
pub async fn start_node(config: &NodeConfig, deps: NodeDeps) -> Result<RunningNode, CliError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| CliError::new(OTHER, format!("{what}: {e}"));
    let proxy_addr = deps
        .proxy_listener
        .local_addr()
        .map_err(|e| fail("proxy listener", &e))?;
    let api_addr = deps
        .api_listener
        .local_addr()
        .map_err(|e| fail("api listener", &e))?;
    let mut raft_config = RaftNodeConfig::single(config.node_id, config.peer_addr.clone());
    raft_config.seed = deps.seed;
    let raft = RaftNode::start(raft_config, deps.kv, deps.clock.clone())
        .await
        .map_err(|e| fail("raft", &e))?;
    let replicator: Arc<dyn micro_core::replicator::Replicator> = Arc::new(raft.clone());
    let (supervisor, handles) = NodeSupervisor::start(replicator.clone())
        .await
        .map_err(|e| fail("actors", &e))?;
    let (stop, stopped) = watch::channel(false);
    let proxy_deps = ProxyDeps {
        handles,
        replicator,
        clock: deps.clock,
    };
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(deps.proxy_listener);
    let proxy = tokio::spawn({
        let stopped = stopped.clone();
        async move {
            if let Err(err) =
                micro_gateway::serve_proxy(incoming, proxy_deps, wait_stop(stopped)).await
            {
                tracing::error!(%err, "proxy server failed");
            }
        }
    });
    let api = tokio::spawn(async move {
        if let Err(err) = micro_gateway::serve_api(deps.api_listener, wait_stop(stopped)).await {
            tracing::error!(%err, "api server failed");
        }
    });
    Ok(RunningNode {
        proxy_addr,
        api_addr,
        raft,
        supervisor,
        stop,
        servers: vec![proxy, api],
    })
}

async fn wait_stop(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone: stop then too.
    let _ = stopped.wait_for(|stop| *stop).await;
}

impl RunningNode {
    /// Stops serving, then stops the actors and Raft. Acknowledged writes stay durable.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for server in self.servers {
            let _ = server.await;
        }
        self.supervisor.stop(None);
        self.raft.shutdown().await;
    }
}
