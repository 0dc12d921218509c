//! Process mode: a service in its own OS process, serving its handlers over gRPC and
//! registering itself through a node's proxy.
//!
//! ```text
//! run(): MICRO_PROXY, MICRO_SERVICE_ADDRESS, env overrides ──> serve(listener, proxy, signal)
//!   before_start ─> actors ─> gRPC server (micro_proto::raw::router) ─> Register ─> after_start
//!   every register_interval: Register again (failures are logged; the next tick retries)
//!   SIGINT/SIGTERM: before_stop ─> Deregister ─> server stops ─> actors stop ─> after_stop
//! ```

use std::future::Future;
use std::time::Duration;

use micro_core::registry::Node;
use micro_core::rng::{Rng, SeededRng};
use micro_proto::raw::NAMESPACE_HEADER;
use micro_proto::registry as pb;
use micro_proto::registry::registry_client::RegistryClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;

use crate::env;
use crate::error::{self, Error};
use crate::hooks;
use crate::running::{Parts, RunningService, STOP_GRACE};
use crate::service::Service;

/// How long a stopping process keeps serving after it deregistered.
pub(crate) const DRAIN: Duration = Duration::from_millis(500);

/// How long one Register or Deregister call may take.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(5);

impl Service {
    /// Runs the service as its own process until SIGINT or SIGTERM: reads the
    /// [`crate::env`](mod@crate::env) overrides, listens on `MICRO_SERVICE_ADDRESS` (default
    /// `127.0.0.1:0`) and registers through the node proxy at `MICRO_PROXY`, which is
    /// required. Installs a `tracing` fmt subscriber if none is set.
    pub async fn run(mut self) -> Result<(), Error> {
        init_tracing();
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        self.options = self.options.with_env(var)?;
        let name = self.options.name.clone();
        let proxy = var(env::PROXY).ok_or_else(|| {
            error::bad_request(
                &name,
                format!(
                    "{} is not set: a process service registers and calls through a node's \
                     proxy; set it to the node's proxy address (host:port, e.g. \
                     127.0.0.1:8081) or start the service with `micro run`",
                    env::PROXY
                ),
            )
        })?;
        let address = var(env::SERVICE_ADDRESS).unwrap_or_else(|| "127.0.0.1:0".to_owned());
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|e| error::unavailable(&name, format!("cannot listen on {address}: {e}")))?;
        let channel = proxy_channel(&name, &proxy)?;
        if let (Some(id), Some(secret)) = (var(env::AUTH_ID), var(env::AUTH_SECRET)) {
            let client = crate::Client::from_channel(channel.clone())
                .with_namespace(self.options.namespace.clone());
            crate::session::set_service_session(login(&client, &name, &id, &secret).await?);
        }
        let lifeline = var(env::LIFELINE).is_some_and(|v| v == "stdin");
        let result = self
            .serve(listener, channel, shutdown_signal(lifeline))
            .await;
        if let Err(err) = &result {
            tracing::error!(service = %name, error = %err, "service failed");
        }
        result
    }

    /// Serves the handlers on `listener`, registers through the node proxy behind
    /// `proxy`, and stops when `shutdown` completes (process mode without the
    /// environment and signals, for tests and embedding).
    pub async fn serve(
        self,
        listener: TcpListener,
        proxy: Channel,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let interval = self.options.register_interval;
        let process = Process::start(self, listener, proxy).await?;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticker.tick() => process.registrar.register_logged().await,
            }
        }
        process.stop().await
    }
}

/// Logs the service in with its credentials, retrying for a while: the node may still
/// be electing a leader or bootstrapping auth when the service starts.
async fn login(
    client: &crate::Client,
    name: &str,
    id: &str,
    secret: &str,
) -> Result<crate::session::Session, Error> {
    let mut attempts = 0;
    loop {
        match crate::session::Session::login(client, id, secret).await {
            Ok(session) => {
                tracing::info!(service = %name, account = %id, "logged in");
                return Ok(session);
            }
            // Wrong credentials will not get better by waiting.
            Err(err) if err.kind() == micro_core::Code::Unauthorized || attempts >= 30 => {
                return Err(err);
            }
            Err(err) => {
                attempts += 1;
                tracing::warn!(service = %name, error = %err, "login failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// A lazily connected channel to the node proxy at `address` (`host:port`, or
/// `https://host:port`, trusting the CA of [`env::PROXY_CA_PEM`](crate::env::PROXY_CA_PEM)).
pub(crate) fn proxy_channel(id: &str, address: &str) -> Result<Channel, Error> {
    let tls = if address.starts_with("https://") {
        let ca = std::env::var(crate::env::PROXY_CA_PEM).map_err(|_| {
            error::bad_request(
                id,
                format!(
                    "proxy {address} speaks TLS: set {} to its CA certificate (PEM)",
                    crate::env::PROXY_CA_PEM
                ),
            )
        })?;
        let tls = micro_proto::tls::trust(ca.as_bytes())
            .map_err(|e| error::bad_request(id, format!("{}: {e}", crate::env::PROXY_CA_PEM)))?;
        Some(tls)
    } else {
        None
    };
    let endpoint = micro_proto::tls::endpoint(address, tls)
        .map_err(|e| error::bad_request(id, format!("invalid proxy address {address:?}: {e}")))?;
    Ok(endpoint.connect_lazy())
}

/// A serving process service.
struct Process {
    running: RunningService,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    stop_server: oneshot::Sender<()>,
    registrar: Registrar,
}

impl Process {
    async fn start(service: Service, listener: TcpListener, proxy: Channel) -> Result<Self, Error> {
        let options = service.options.validate()?;
        let name = options.name.clone();
        let address = listener
            .local_addr()
            .map_err(|e| error::unavailable(&name, format!("no listening address: {e}")))?;
        let ttl = options.register_ttl;
        let parts = Parts {
            options,
            handlers: service.handlers,
            wrappers: service.wrappers,
            hooks: service.hooks,
        };
        hooks::run_all(&parts.hooks.before_start).await?;
        let running = RunningService::launch(parts).await?;
        let router = micro_proto::raw::router(running.as_local_service());
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(tonic::service::Routes::from(router))
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move {
                    let _ = stopped.await;
                }),
        );
        let node = Node {
            id: format!("{name}-{:016x}", SeededRng::from_entropy().next_u64()),
            address: address.to_string(),
            metadata: Default::default(),
        };
        tracing::info!(service = %name, node = %node.id, %address, "serving");
        let registrar = Registrar::new(proxy, &running, node, ttl);
        let process = Self {
            running,
            server,
            stop_server,
            registrar,
        };
        process.registrar.register_logged().await;
        if let Err(err) = hooks::run_all(&process.running.hooks().after_start).await {
            let _ = process.stop().await;
            return Err(err);
        }
        Ok(process)
    }

    async fn stop(self) -> Result<(), Error> {
        let name = self.running.describe().name;
        tracing::info!(service = %name, "stopping");
        let hooks = self.running.hooks().clone();
        let before = hooks::run_each("before_stop", &hooks.before_stop).await;
        if let Err(err) = self.registrar.deregister().await {
            tracing::warn!(service = %name, error = %err, "deregistration failed; the TTL will expire it");
        }
        // Every node routes by its own applied copy of the registry: give them a moment
        // to apply the deregistration before new connections are refused.
        tokio::time::sleep(DRAIN).await;
        let _ = self.stop_server.send(());
        match tokio::time::timeout(STOP_GRACE, self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::warn!(service = %name, error = %err, "server failed"),
            Ok(Err(err)) => tracing::warn!(service = %name, error = %err, "server task failed"),
            Err(_) => tracing::warn!(service = %name, "server did not stop in time"),
        }
        self.running.stop_actors().await;
        let after = hooks::run_each("after_stop", &hooks.after_stop).await;
        before.and(after)
    }
}

/// Registers and deregisters one node of the service through the proxy.
struct Registrar {
    client: RegistryClient<Channel>,
    service: pb::Service,
    namespace: String,
}

impl Registrar {
    fn new(proxy: Channel, running: &RunningService, node: Node, ttl: Duration) -> Self {
        let mut service = running.describe();
        service.nodes = vec![node];
        let namespace = running.namespace().as_str().to_owned();
        let mut service = micro_proto::service_to_wire(service, &namespace);
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        service.options = Some(pb::Options {
            ttl,
            domain: namespace.clone(),
        });
        Self {
            client: RegistryClient::new(proxy),
            service,
            namespace,
        }
    }

    /// Registers, logging a failure (the next interval retries).
    async fn register_logged(&self) {
        let mut client = self.client.clone();
        let name = self.service.name.clone();
        match tokio::time::timeout(REGISTER_TIMEOUT, client.register(self.request())).await {
            Ok(Ok(_)) => tracing::debug!(service = %name, "registered"),
            Ok(Err(status)) => {
                let err = micro_proto::micro_from_status("registry", &status);
                tracing::warn!(service = %name, error = %err, "registration failed; retrying later");
            }
            Err(_) => tracing::warn!(service = %name, "registration timed out; retrying later"),
        }
    }

    async fn deregister(&self) -> Result<(), Error> {
        let mut client = self.client.clone();
        match tokio::time::timeout(REGISTER_TIMEOUT, client.deregister(self.request())).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(micro_proto::micro_from_status("registry", &status)),
            Err(_) => Err(error::timeout("registry", "deregistration timed out")),
        }
    }

    fn request(&self) -> tonic::Request<pb::Service> {
        let mut request = tonic::Request::new(self.service.clone());
        request.set_timeout(REGISTER_TIMEOUT);
        if let Ok(namespace) = self.namespace.parse() {
            request.metadata_mut().insert(NAMESPACE_HEADER, namespace);
        }
        // Registering needs an admin or service account of the namespace: the
        // service's own, when it has credentials.
        if let Some(session) = crate::session::service_session()
            && let Ok(value) = format!("Bearer {}", session.access_token()).parse()
        {
            request
                .metadata_mut()
                .insert(crate::AUTHORIZATION_METADATA, value);
        }
        request
    }
}

/// Completes on SIGINT or SIGTERM.
/// SIGINT, SIGTERM, or (with `lifeline`) end-of-file on stdin: the runtime that started
/// this process holds the other end, so the process stops when the node is gone.
async fn shutdown_signal(lifeline: bool) {
    let closed = async {
        if !lifeline {
            return std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        loop {
            match tokio::io::AsyncReadExt::read(&mut stdin, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        tracing::info!("the runtime closed stdin; stopping");
    };
    tokio::select! {
        () = signals() => {}
        () = closed => {}
    }
}

async fn signals() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                () = interrupt => {}
                _ = terminate.recv() => {}
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    interrupt.await;
}

/// Installs a fmt subscriber (filter from `RUST_LOG`, default `info`) unless one is set.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // An error means a subscriber is already installed: keep it.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer())
        .with(crate::debug::log_layer())
        .try_init();
}
