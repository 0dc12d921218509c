//! The environment variables a service reads when it starts; they override what the
//! code set, as Micro v3's runtime injected them.

/// Registry name of the service.
pub const SERVICE_NAME: &str = "MICRO_SERVICE_NAME";
/// Version of the service.
pub const SERVICE_VERSION: &str = "MICRO_SERVICE_VERSION";
/// Namespace the service registers in (and calls as).
pub const NAMESPACE: &str = "MICRO_NAMESPACE";
/// Registration TTL in seconds (ours, so tests can shorten it).
pub const REGISTER_TTL: &str = "MICRO_REGISTER_TTL";
/// Re-registration interval in seconds (ours).
pub const REGISTER_INTERVAL: &str = "MICRO_REGISTER_INTERVAL";
/// `host:port` of a node's gRPC proxy (`https://host:port` when it speaks TLS);
/// required by [`crate::Service::run`].
pub const PROXY: &str = "MICRO_PROXY";
/// The CA certificate (PEM text) a TLS proxy's certificate chains to; injected by the
/// runtime of a node with TLS on.
pub const PROXY_CA_PEM: &str = "MICRO_PROXY_CA_PEM";
/// `host:port` a process service listens on (default `127.0.0.1:0`).
pub const SERVICE_ADDRESS: &str = "MICRO_SERVICE_ADDRESS";
/// The id of the service's own account (injected by the runtime); with
/// [`AUTH_SECRET`], the service logs in and its calls and registrations carry its token.
pub const AUTH_ID: &str = "MICRO_AUTH_ID";
/// The secret of the service's own account.
pub const AUTH_SECRET: &str = "MICRO_AUTH_SECRET";
/// `stdin` when the runtime started the process: it stops when stdin reaches
/// end-of-file, which happens when the node that started it is gone.
pub const LIFELINE: &str = "MICRO_LIFELINE";
