//! The gRPC proxy: one tonic server carrying every core service.

mod cluster;
mod debug;
mod namespace;
mod registry;
mod remote;
mod runtime;
mod server;
mod store;

pub use cluster::ClusterService;
pub use debug::DebugService;
pub use namespace::{CONSISTENCY_HEADER, NAMESPACE_HEADER, consistency_of, namespace_of};
pub use registry::RegistryService;
pub use remote::{Dial, GrpcRemote};
pub use runtime::RuntimeService;
pub use server::{MESSAGE_LEN_MAX, ProxyDeps, serve_proxy};
pub use store::StoreService;
