//! What the Kubernetes runtime is told by the node's flags.

use std::time::Duration;

/// The image pods run by default: the project's image (`deploy/docker/Dockerfile`),
/// which holds `/usr/local/bin/micro`.
pub const IMAGE_DEFAULT: &str = "micro-rust/micro:latest";
/// What a Micro namespace's Kubernetes namespace starts with by default.
pub const NAMESPACE_PREFIX_DEFAULT: &str = "micro-";
/// The port a service listens on inside its pod (Micro v3's `MICRO_SERVICE_ADDRESS=:8080`).
pub const SERVICE_PORT: u16 = 8080;
/// The command each pod runs, followed by `--build <blob>`: `micro cell` fetches the
/// service's executable through the proxy with the service's own credentials and
/// executes it (see `cli/src/commands/cell.rs`).
pub const CELL_COMMAND: [&str; 2] = ["/usr/local/bin/micro", "cell"];
/// The name of the container that runs the service.
pub(super) const CONTAINER: &str = "service";
/// How often the leader brings Kubernetes in line and reads it back (and the node of
/// a service's first instance reads its pods' logs).
pub const SYNC_EVERY: Duration = Duration::from_secs(2);
/// How long an object applied unchanged is trusted to still be there: after this it is
/// applied again, which repairs what someone changed or deleted by hand.
pub const RESYNC_EVERY: Duration = Duration::from_secs(60);

/// The Kubernetes runtime's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeConfig {
    /// The image of every service's pods (it must hold `micro` as [`CELL_COMMAND`]).
    pub image: String,
    /// Prepended to a Micro namespace to name its Kubernetes namespace.
    pub namespace_prefix: String,
    /// The node proxy address as pods reach it, injected as `MICRO_PROXY` (usually a
    /// Kubernetes Service in front of the nodes, e.g. `micro.micro.svc:8081`;
    /// `https://...` with TLS).
    pub proxy: String,
    /// With TLS, the CA certificate (PEM) of the proxy, put in each service's Secret as
    /// `MICRO_PROXY_CA_PEM`.
    pub proxy_ca: Option<String>,
}

impl KubeConfig {
    /// The defaults, with pods reaching the proxy at `proxy`.
    pub fn new(proxy: String) -> Self {
        Self {
            image: IMAGE_DEFAULT.to_owned(),
            namespace_prefix: NAMESPACE_PREFIX_DEFAULT.to_owned(),
            proxy,
            proxy_ca: None,
        }
    }
}
