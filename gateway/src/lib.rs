//! # micro-gateway
//!
//! The edges of a node. For now the gRPC proxy (:8081): it serves the core services'
//! gRPC contract (`/store.Store/*`, `/debug.Debug/*`, `/cluster.Cluster/*`) by calling
//! the service actors through their handles. The HTTP API (:8080) joins it later.
//!
//! ```text
//! gRPC client ─> tonic server (injected listener) ─> namespace from `Micro-Namespace`
//!     ─> StoreHandle (actor) ─> answer, or StoreError ─> micro error in a gRPC status
//! ```
//!
//! The server is built from an injected stream of connections ([`serve_proxy`]), so the
//! simulation can hand it simulated sockets.

mod api;
mod proxy;

pub use api::{VERSION, api_router, error_response, serve_api};

pub use proxy::{
    CONSISTENCY_HEADER, ClusterService, DebugService, MESSAGE_LEN_MAX, NAMESPACE_HEADER, ProxyDeps,
    StoreService, consistency_of, namespace_of, serve_proxy,
};
