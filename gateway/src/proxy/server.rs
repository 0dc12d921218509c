//! [`serve_proxy`]: the tonic server of the proxy, on an injected listener.

use std::future::Future;
use std::sync::Arc;

use futures::Stream;
use micro_actors::NodeHandles;
use micro_core::Clock;
use micro_core::replicator::Replicator;
use micro_proto::auth::accounts_server::AccountsServer;
use micro_proto::auth::auth_server::AuthServer;
use micro_proto::auth::rules_server::RulesServer;
use micro_proto::broker::broker_server::BrokerServer;
use micro_proto::cluster::cluster_server::ClusterServer;
use micro_proto::config::config_server::ConfigServer;
use micro_proto::debug::debug_server::DebugServer;
use micro_proto::registry::registry_server::RegistryServer;
use micro_proto::runtime::runtime_server::RuntimeServer;
use micro_proto::store::store_server::StoreServer;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::server::Connected;

use crate::{
    AuthService, BackupService, BlobStoreService, ClusterService, ConfigService, DebugService,
    EventsStoreService, EventsStreamService, RegistryService, RuntimeService, SourceService,
    StoreService,
};

/// The largest gRPC message the proxy accepts or sends (a 1 MiB value plus headroom).
pub const MESSAGE_LEN_MAX: usize = 4 * 1024 * 1024;
/// Requests (HTTP/2 streams) one connection may have open at once; more are refused
/// with REFUSED_STREAM, which clients retry once one finishes.
pub(crate) const STREAMS_PER_CONNECTION_MAX: u32 = 256;
/// The largest header block (metadata) of a request.
pub(crate) const HEADER_LIST_LEN_MAX: u32 = 64 * 1024;

/// What the proxy serves from.
#[derive(Debug, Clone)]
pub struct ProxyDeps {
    /// The service actors.
    pub handles: NodeHandles,
    /// Cluster status.
    pub replicator: Arc<dyn Replicator>,
    /// Wall clock (for `Debug.Stats`).
    pub clock: Arc<dyn Clock>,
    /// The registry.
    pub registry: micro_actors::RegistryHandle,
    /// The runtime (in-node services).
    pub runtime: micro_actors::RuntimeHandle,
    /// Where calls to any other service go.
    pub router: micro_actors::Router,
    /// Events: topic logs and consumers.
    pub events: micro_actors::EventsHandle,
    /// Blobs, chunked through Raft.
    pub blobs: micro_actors::BlobHandle,
    /// Accounts, tokens and rules, checked on every request; `None` only in the
    /// simulation, where every caller acts as `micro`'s admin (it checks replication,
    /// not access).
    pub auth: Option<micro_actors::AuthHandle>,
    /// Where requests are counted.
    pub metrics: crate::Metrics,
}

/// Adds `auth.Auth`, `auth.Accounts` and `auth.Rules` when auth is on.
fn with_auth(
    routes: tonic::service::Routes,
    auth: Option<&micro_actors::AuthHandle>,
) -> tonic::service::Routes {
    match auth {
        Some(auth) => routes
            .add_service(AuthServer::new(AuthService::new(auth.clone())))
            .add_service(AccountsServer::new(AuthService::new(auth.clone())))
            .add_service(RulesServer::new(AuthService::new(auth.clone()))),
        None => routes,
    }
}

/// Adds `runtime.Runtime`, `runtime.Source` and `network.Network`.
fn with_runtime(routes: tonic::service::Routes, deps: &ProxyDeps) -> tonic::service::Routes {
    routes
        .add_service(micro_proto::network::network_server::NetworkServer::new(
            crate::proxy::NetworkService::new(
                deps.replicator.clone(),
                deps.registry.clone(),
                deps.runtime.clone(),
            ),
        ))
        .add_service(RuntimeServer::new(RuntimeService::new(
            deps.runtime.clone(),
            deps.registry.clone(),
            deps.router.remote(),
        )))
        .add_service(
            micro_proto::runtime::source_server::SourceServer::new(SourceService::new(
                deps.runtime.clone(),
            ))
            .max_decoding_message_size(MESSAGE_LEN_MAX),
        )
}

/// Adds `store.BlobStore`, `store.Backup`, `events.Stream` and `events.Store`.
fn with_data(routes: tonic::service::Routes, deps: &ProxyDeps) -> tonic::service::Routes {
    routes
        .add_service(
            micro_proto::store::blob_store_server::BlobStoreServer::new(BlobStoreService::new(
                deps.blobs.clone(),
            ))
            .max_decoding_message_size(MESSAGE_LEN_MAX)
            .max_encoding_message_size(MESSAGE_LEN_MAX),
        )
        .add_service(
            micro_proto::store::backup_server::BackupServer::new(BackupService::new(
                deps.handles.store.clone(),
            ))
            .max_encoding_message_size(MESSAGE_LEN_MAX),
        )
        .add_service(EventsStreamService::new(deps.events.clone()))
        .add_service(
            micro_proto::events::store_server::StoreServer::new(EventsStoreService::new(
                deps.events.clone(),
            ))
            .max_encoding_message_size(MESSAGE_LEN_MAX),
        )
}

/// Serves the proxy on every connection `incoming` yields until `shutdown` resolves.
///
/// Built from a stream of connections rather than an address, so production passes a
/// tokio `TcpListener` stream and the simulation a simulated one.
pub async fn serve_proxy<I, IO, IE>(
    incoming: I,
    deps: ProxyDeps,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error>
where
    I: Stream<Item = Result<IO, IE>>,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let store = StoreService::new(deps.handles.store.clone());
    let debug = DebugService::new(deps.clock.clone(), &store, deps.metrics.clone());
    let routes = tonic::service::Routes::new(
        StoreServer::new(store)
            .max_decoding_message_size(MESSAGE_LEN_MAX)
            .max_encoding_message_size(MESSAGE_LEN_MAX),
    )
    .add_service(DebugServer::new(debug))
    .add_service(ClusterServer::new(ClusterService::new(
        deps.replicator.clone(),
    )))
    .add_service(
        RegistryServer::new(RegistryService::new(deps.registry.clone()))
            .max_decoding_message_size(MESSAGE_LEN_MAX),
    )
    .add_service(
        ConfigServer::new(ConfigService::new(micro_actors::ConfigHandle::new(
            deps.replicator.clone(),
        )))
        .max_decoding_message_size(MESSAGE_LEN_MAX),
    );
    let routes = with_runtime(routes, &deps);
    let hub = micro_actors::BrokerHub::new(deps.runtime.clone(), deps.router.address().to_owned());
    let broker = crate::BrokerService::new(hub, deps.registry.clone(), deps.router.remote());
    let routes = routes.add_service(
        BrokerServer::new(broker)
            .max_decoding_message_size(MESSAGE_LEN_MAX)
            .max_encoding_message_size(MESSAGE_LEN_MAX),
    );
    let routes = with_data(routes, &deps);
    let routes = with_auth(routes, deps.auth.as_ref());
    // Every path no core service claims goes through the router as raw bytes.
    let router = micro_proto::raw::router(Arc::new(deps.router));
    // The guard sees every request first, core service or routed.
    let guarded = routes
        .prepare()
        .into_axum_router()
        .fallback_service(router)
        // Innermost, so the metrics count the corrected status.
        .layer(axum::middleware::from_fn(
            micro_proto::bad_protobuf_is_invalid_argument,
        ))
        .layer(axum::middleware::from_fn_with_state(
            deps.auth,
            crate::proxy::guard::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            deps.metrics,
            crate::metrics::grpc_layer,
        ));
    let routes = tonic::service::Routes::from(guarded);
    tonic::transport::Server::builder()
        .max_concurrent_streams(STREAMS_PER_CONNECTION_MAX)
        .http2_max_header_list_size(HEADER_LIST_LEN_MAX)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
