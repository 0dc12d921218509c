//! The gRPC proxy: one tonic server carrying every core service.

mod auth;
mod blobs;
mod broker;
mod cluster;
mod config;
mod debug;
mod events;
mod guard;
mod namespace;
mod network;
mod registry;
mod remote;
mod runtime;
mod server;
mod store;

pub use auth::{AuthService, account_to_wire};
pub use blobs::BlobStoreService;
pub use broker::BrokerService;
pub use cluster::ClusterService;
pub use config::ConfigService;
pub use debug::DebugService;
pub use events::{
    EventsStoreService, EventsStreamService, WINDOW_HEADER, consume_options, event_to_wire,
};
pub use guard::{Caller, EXEMPT, bearer, caller_of, identify};
pub use namespace::{
    CONSISTENCY_HEADER, NAMESPACE_HEADER, consistency_of, namespace_from, namespace_of,
};
pub use network::NetworkService;
pub use registry::RegistryService;
pub use remote::{Dial, GrpcRemote};
pub use runtime::{LOCAL_LOGS_HEADER, RuntimeService, SourceService};
pub use server::{MESSAGE_LEN_MAX, ProxyDeps, serve_proxy};
pub use store::{BackupService, StoreService};
