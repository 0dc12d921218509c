//! The Kubernetes runtime (cargo feature `kubernetes`, node flag `--runtime
//! kubernetes`): uploaded services run as Deployments in a Kubernetes cluster instead of
//! as processes of the nodes, as Micro v3's Kubernetes runtime ran them. Services
//! compiled into the node still run in-node.
//!
//! ```text
//! micro run ./greeter ─> RuntimeUpsert (as ever) ─> node of instance 0 builds it
//!                        ─> blob build://greeter:latest#1 (as ever)
//! leader, every SYNC_EVERY (sync.rs, kube_runtime.rs):
//!   Namespace micro-<ns>, Secret greeter-latest-auth (the service's credentials),
//!   Deployment greeter-latest (replicas = instances), Service greeter-latest
//!   ─> Deployment + pods read back ─> Change::Instance per instance (status.rs)
//!   ─> managed objects of killed services deleted
//! each pod: micro cell --build build://greeter:latest#1
//!   ─> logs in as the service, reads the blob through MICRO_PROXY, execs it
//!   ─> the service registers $(POD_IP):8080 through the proxy
//! node of instance 0: pod logs ─> LogBook ─> micro logs
//! ```
//!
//! Not run against a live cluster: the tests (`tests.rs`) replay the API exchanges
//! against a fake API server. See docs/KUBERNETES-RUNTIME.md.

mod config;
mod kube_runtime;
mod names;
mod objects;
mod status;
mod sync;
#[cfg(test)]
mod tests;

pub use config::{
    CELL_COMMAND, IMAGE_DEFAULT, KubeConfig, NAMESPACE_PREFIX_DEFAULT, RESYNC_EVERY, SERVICE_PORT,
    SYNC_EVERY,
};
pub use kube_runtime::KubeRuntime;
