//! `network.Network`: the routing plane made visible. The network is the cluster: its
//! nodes are the Raft members (with the proxy address each registered), and a route
//! leads to every registered instance of a service through the node that serves it.
//!
//! ```text
//! Nodes    ─> cluster members + their proxies (from the nodes' `runtime` registrations)
//! Routes   ─> registry (the caller's namespace) × who serves each instance:
//!               in-node or core service: registration metadata `node`
//!               process started by the runtime: the instance's node in the runtime state
//!               a process started by hand: unknown (router "")
//! Services ─> the namespace's service names;  Graph ─> this node and its peers
//! ```

use std::collections::{BTreeMap, HashMap};

use micro_actors::{RegistryHandle, RuntimeHandle};
use micro_core::Namespace;
use micro_core::replicator::{Consistency, Replicator};
use micro_proto::network as pb;
use micro_proto::network::network_server::Network;
use micro_proto::router::Route;
use tonic::{Request, Response, Status};

use crate::proxy::guard::require_account;

/// The network this cluster is.
pub(crate) const NETWORK: &str = "micro";

/// The `network.Network` gRPC service.
#[derive(Debug, Clone)]
pub struct NetworkService {
    replicator: std::sync::Arc<dyn Replicator>,
    registry: RegistryHandle,
    runtime: RuntimeHandle,
}

impl NetworkService {
    /// A network service over this node's view of the cluster.
    pub fn new(
        replicator: std::sync::Arc<dyn Replicator>,
        registry: RegistryHandle,
        runtime: RuntimeHandle,
    ) -> Self {
        Self {
            replicator,
            registry,
            runtime,
        }
    }

    /// Each member's proxy address, from the `runtime` registrations the nodes hold.
    fn proxies(&self) -> BTreeMap<u64, String> {
        let Ok(services) = self.registry.lookup_local(&Namespace::default(), "runtime") else {
            return BTreeMap::new();
        };
        services
            .iter()
            .flat_map(|s| s.nodes.iter())
            .filter_map(|n| Some((n.metadata.get("node")?.parse().ok()?, n.address.clone())))
            .collect()
    }

    fn nodes(&self) -> Vec<pb::Node> {
        let status = self.replicator.status();
        let proxies = self.proxies();
        status
            .members
            .iter()
            .map(|m| {
                let mut metadata = HashMap::from([
                    ("peer".to_owned(), m.address.clone()),
                    ("role".to_owned(), m.role.as_str().to_owned()),
                ]);
                if let Some(ms) = m.silent_ms {
                    metadata.insert("silent_ms".to_owned(), ms.to_string());
                }
                pb::Node {
                    id: m.id.to_string(),
                    address: proxies.get(&m.id).cloned().unwrap_or_default(),
                    network: NETWORK.to_owned(),
                    metadata,
                    status: Some(pb::Status {
                        error: Some(pb::Error {
                            count: 0,
                            msg: String::new(),
                        }),
                    }),
                }
            })
            .collect()
    }

    /// Which node serves each process instance the runtime placed: address -> node id.
    async fn hosts(&self, namespace: &Namespace) -> BTreeMap<String, u64> {
        let services = self.runtime.read(namespace, None).await.unwrap_or_default();
        services
            .iter()
            .flat_map(|s| s.instances.iter())
            .filter_map(|i| Some((i.address.clone()?, i.node_id)))
            .collect()
    }

    async fn routes(&self, namespace: &Namespace, query: &pb::Query) -> Result<Vec<Route>, Status> {
        let services = self
            .registry
            .list(namespace, Consistency::Stale)
            .await
            .map_err(|e| micro_proto::status_from_micro(&e))?;
        let hosts = self.hosts(namespace).await;
        let proxies = self.proxies();
        let mut routes = Vec::new();
        for service in services {
            for node in &service.nodes {
                let router = node
                    .metadata
                    .get("node")
                    .and_then(|n| n.parse::<u64>().ok())
                    .or_else(|| hosts.get(&node.address).copied());
                let gateway = router
                    .and_then(|r| proxies.get(&r).cloned())
                    .unwrap_or_default();
                let link = if gateway == node.address {
                    "local"
                } else {
                    "grpc"
                };
                let route = Route {
                    service: service.name.clone(),
                    address: node.address.clone(),
                    gateway,
                    network: NETWORK.to_owned(),
                    router: router.map(|r| r.to_string()).unwrap_or_default(),
                    link: link.to_owned(),
                    metric: if link == "local" { 1 } else { 10 },
                    metadata: HashMap::from([
                        ("version".to_owned(), service.version.clone()),
                        ("instance".to_owned(), node.id.clone()),
                    ]),
                };
                if matches(query, &route) {
                    routes.push(route);
                }
            }
        }
        Ok(routes)
    }
}

fn matches(query: &pb::Query, route: &Route) -> bool {
    let is = |want: &str, have: &str| want.is_empty() || want == have;
    is(&query.service, &route.service)
        && is(&query.address, &route.address)
        && is(&query.gateway, &route.gateway)
        && is(&query.router, &route.router)
        && is(&query.network, &route.network)
}

fn namespace_of<T>(request: &Request<T>) -> Result<Namespace, Status> {
    let namespace = crate::proxy::namespace_from(request, None, "network")?;
    require_account(request, &namespace, "network")?;
    Ok(namespace)
}

#[tonic::async_trait]
impl Network for NetworkService {
    async fn connect(
        &self,
        _request: Request<pb::ConnectRequest>,
    ) -> Result<Response<pb::ConnectResponse>, Status> {
        Err(Status::failed_precondition(
            "nodes join the network as cluster members: start them with --join, or `micro \
             cluster add`",
        ))
    }

    async fn graph(
        &self,
        request: Request<pb::GraphRequest>,
    ) -> Result<Response<pb::GraphResponse>, Status> {
        namespace_of(&request)?;
        let me = self.replicator.status().node_id.to_string();
        let mut nodes = self.nodes();
        let at = nodes.iter().position(|n| n.id == me);
        let root = at.map(|i| nodes.remove(i));
        let peers = nodes
            .into_iter()
            .map(|node| pb::Peer {
                node: Some(node),
                peers: Vec::new(),
            })
            .collect();
        Ok(Response::new(pb::GraphResponse {
            root: Some(pb::Peer { node: root, peers }),
        }))
    }

    async fn nodes(
        &self,
        request: Request<pb::NodesRequest>,
    ) -> Result<Response<pb::NodesResponse>, Status> {
        namespace_of(&request)?;
        Ok(Response::new(pb::NodesResponse {
            nodes: self.nodes(),
        }))
    }

    async fn routes(
        &self,
        request: Request<pb::RoutesRequest>,
    ) -> Result<Response<pb::RoutesResponse>, Status> {
        let namespace = namespace_of(&request)?;
        let query = request.into_inner().query.unwrap_or_default();
        let routes = self.routes(&namespace, &query).await?;
        Ok(Response::new(pb::RoutesResponse { routes }))
    }

    async fn services(
        &self,
        request: Request<pb::ServicesRequest>,
    ) -> Result<Response<pb::ServicesResponse>, Status> {
        let namespace = namespace_of(&request)?;
        let services = self
            .registry
            .list(&namespace, Consistency::Stale)
            .await
            .map_err(|e| micro_proto::status_from_micro(&e))?;
        let mut names: Vec<String> = services.into_iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        Ok(Response::new(pb::ServicesResponse { services: names }))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        namespace_of(&request)?;
        let status = self.replicator.status();
        let silent: Vec<String> = status
            .members
            .iter()
            .filter(|m| m.silent_ms.is_some_and(|ms| ms > 5000))
            .map(|m| format!("node {} silent for {} ms", m.id, m.silent_ms.unwrap_or(0)))
            .collect();
        let error = pb::Error {
            count: u32::try_from(silent.len()).unwrap_or(u32::MAX),
            msg: silent.join("; "),
        };
        Ok(Response::new(pb::StatusResponse {
            status: Some(pb::Status { error: Some(error) }),
        }))
    }
}
