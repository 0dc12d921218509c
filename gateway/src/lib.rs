//! # micro-gateway
//!
//! The edges of a node. For now the gRPC proxy (:8081): it serves the core services'
//! gRPC contract (`/store.Store/*`, `/registry.Registry/*`, `/runtime.Runtime/*`,
//! `/debug.Debug/*`, `/cluster.Cluster/*`) by calling the service handles, and every
//! other `/<service>.<Handler>/<Method>` through the Router, as raw bytes, to an in-node
//! service, another node or a process; and the HTTP API (:8080), which turns
//! `/service/endpoint` + JSON into calls and serves `/health` and `/metrics`.
//!
//! ```text
//! gRPC client ─> tonic server (injected listener) ─> namespace from `Micro-Namespace`
//!     ─> StoreHandle (actor) ─> answer, or StoreError ─> micro error in a gRPC status
//! ```
//!
//! The server is built from an injected stream of connections ([`serve_proxy`]), so the
//! simulation can hand it simulated sockets.

mod api;
pub mod metrics;
mod proxy;

pub use metrics::Metrics;

#[doc(hidden)]
pub use api::fuzzing;
pub use api::{
    ApiState, AuthHook, AuthRequest, BODY_LIMIT_DEFAULT, VERSION, api_router, auth_hook,
    error_response, resolve, serve_api,
};

pub use proxy::{
    AuthService, BackupService, BlobStoreService, BrokerService, CONSISTENCY_HEADER, Caller,
    ClusterService, ConfigService, DebugService, Dial, EXEMPT, EventsStoreService,
    EventsStreamService, GrpcRemote, LOCAL_LOGS_HEADER, MESSAGE_LEN_MAX, NAMESPACE_HEADER,
    NetworkService, ProxyDeps, RegistryService, RuntimeService, SourceService, StoreService,
    WINDOW_HEADER, account_to_wire, bearer, caller_of, consistency_of, consume_options,
    event_to_wire, identify, namespace_from, namespace_of, serve_proxy,
};
