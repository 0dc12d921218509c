//! [`RunningService`]: a started service; implements
//! [`micro_core::service::LocalService`] so a node (or a process's own gRPC server)
//! calls it with raw bodies.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use micro_core::Namespace;
use micro_core::registry;
use micro_core::replicator::BoxFuture;
use micro_core::service::{Call, LocalService, Replies};
use ractor::ActorRef;

use crate::dispatch::{Dispatcher, Route};
use crate::error::{self, Error};
use crate::handler::Handler;
use crate::hooks::{self, Hooks};
use crate::options::Options;
use crate::pool::{PoolHandle, PoolSupervisor, SupervisorArgs};
use crate::transcoder::Transcoder;
use crate::wrapper::{Chain, HandlerWrapper, Next};

/// How long stopping waits for running calls before the workers are killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A service whose handler actors run. Cloning is cheap and every clone is the same
/// service.
///
/// ```
/// # #[derive(Clone, PartialEq, prost::Message)] struct Ping { #[prost(string, tag = "1")] msg: String }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use micro_core::service::{Call, LocalService};
/// use futures::StreamExt;
/// let handler = micro::Handler::new("echo.Echo", &[])
///     .unary("Echo.Ping", "echo.Ping", "echo.Ping", |_ctx, req: Ping| async move { Ok(req) });
/// let running = micro::Service::new("echo").handle(handler).start_local().await.unwrap();
/// assert_eq!(running.describe().endpoints[0].name, "Echo.Ping");
/// let call = Call { endpoint: "Echo.Nope".into(), ..Call::default() };
/// let reply = running.call(call).next().await.unwrap();
/// assert_eq!(reply.unwrap_err().code, 404);
/// running.stop().await.unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct RunningService {
    inner: Arc<Inner>,
}

struct Inner {
    description: registry::Service,
    namespace: Namespace,
    chain: Arc<Chain>,
    supervisor: ActorRef<crate::pool::SupervisorMsg>,
    hooks: Hooks,
    stopped: Arc<AtomicBool>,
    debug: Arc<crate::debug::DebugState>,
}

/// What a service is launched from.
pub(crate) struct Parts {
    pub(crate) options: Options,
    pub(crate) handlers: Vec<Handler>,
    pub(crate) wrappers: Vec<Arc<dyn HandlerWrapper>>,
    pub(crate) hooks: Hooks,
}

impl RunningService {
    /// The registration this service makes (no nodes: the host adds its own).
    pub fn describe(&self) -> registry::Service {
        self.inner.description.clone()
    }

    /// The namespace the service was configured with.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.namespace
    }

    /// This service as the port a node hosts.
    pub fn as_local_service(&self) -> Arc<dyn LocalService> {
        Arc::new(self.clone())
    }

    /// Whether [`RunningService::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Acquire)
    }

    /// Stops the service: `before_stop` hooks, then the actors (running calls get up to
    /// [`STOP_GRACE`]), then `after_stop` hooks. Later calls fail with 503. Stopping
    /// twice does nothing the second time.
    pub async fn stop(&self) -> Result<(), Error> {
        if self.inner.stopped.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let before = hooks::run_each("before_stop", &self.inner.hooks.before_stop).await;
        self.stop_actors().await;
        let after = hooks::run_each("after_stop", &self.inner.hooks.after_stop).await;
        before.and(after)
    }

    /// Starts the actors of `parts` (no hooks run).
    pub(crate) async fn launch(parts: Parts) -> Result<Self, Error> {
        let Parts {
            options,
            handlers,
            wrappers,
            hooks,
        } = parts;
        let id = options.name.clone();
        let id_for_debug = id.clone();
        let transcoder = Transcoder::new(handlers.iter().map(Handler::descriptor))?;
        let proto_service = handlers.first().map(|h| h.proto_service().to_owned());
        let (routes, pools) = routes(&id, handlers)?;
        let description = crate::describe::describe(&options, proto_service, &transcoder, &routes);
        let args = SupervisorArgs {
            service: id.clone(),
            pools,
            concurrency: options.concurrency,
            timeout: options.handler_timeout,
        };
        let supervisor = PoolSupervisor::start(args)
            .await
            .map_err(|e| error::internal(&id, format!("cannot start the handler actors: {e}")))?;
        let stopped = Arc::new(AtomicBool::new(false));
        let dispatcher = Arc::new(Dispatcher::new(id, routes, transcoder, stopped.clone()));
        let chain = Arc::new(Chain {
            wrappers,
            dispatch: Box::new(move |call| dispatcher.dispatch(call)),
        });
        tracing::info!(
            service = %description.name,
            version = %description.version,
            endpoints = description.endpoints.len(),
            "service started"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                description,
                namespace: options.namespace,
                chain,
                supervisor,
                hooks,
                stopped,
                debug: crate::debug::DebugState::new(&id_for_debug),
            }),
        })
    }

    /// The lifecycle hooks.
    pub(crate) fn hooks(&self) -> &Hooks {
        &self.inner.hooks
    }

    /// Stops the actors without running hooks, for a start that failed half-way and for
    /// process mode (which runs the hooks around deregistration itself).
    pub(crate) async fn stop_actors(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        let supervisor = &self.inner.supervisor;
        supervisor
            .stop_children_and_wait(None, Some(STOP_GRACE))
            .await;
        if supervisor
            .stop_and_wait(None, Some(STOP_GRACE))
            .await
            .is_err()
        {
            supervisor.kill();
        }
        tracing::info!(service = %self.inner.description.name, "service stopped");
    }
}

impl LocalService for RunningService {
    fn describe(&self) -> registry::Service {
        Self::describe(self)
    }

    fn call(&self, call: Call) -> Replies {
        if crate::debug::is_debug(&call.endpoint) {
            let answer = self.inner.debug.answer(&call);
            return Box::pin(futures::stream::once(async move { answer }));
        }
        let span = Arc::new(std::sync::Mutex::new(Some(self.inner.debug.begin(&call))));
        let on_error = span.clone();
        let take = |slot: &std::sync::Mutex<Option<crate::debug::SpanGuard>>| {
            slot.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        };
        let replies = Next::start(self.inner.chain.clone())
            .run(call)
            .inspect(move |item| {
                if item.is_err()
                    && let Some(guard) = take(&on_error)
                {
                    guard.finish(true);
                }
            });
        // The span of a call that ended without an error closes when its stream ends.
        let end = futures::stream::once(async move {
            if let Some(guard) = take(&span) {
                guard.finish(false);
            }
        })
        .filter_map(|()| async { None });
        Box::pin(replies.chain(end))
    }

    fn stop(&self) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move {
            // The host only needs the service gone; a failed hook was logged already.
            if let Err(err) = Self::stop(&this).await {
                tracing::warn!(service = %this.inner.description.name, error = %err, "stopped with an error");
            }
        })
    }
}

impl fmt::Debug for RunningService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningService")
            .field("name", &self.inner.description.name)
            .field("version", &self.inner.description.version)
            .field("stopped", &self.is_stopped())
            .finish_non_exhaustive()
    }
}

/// The route of every endpoint, and one worker pool per handler.
fn routes(id: &str, handlers: Vec<Handler>) -> Result<(Vec<Route>, Vec<PoolHandle>), Error> {
    let mut routes: Vec<Route> = Vec::new();
    let mut pools = Vec::with_capacity(handlers.len());
    for handler in handlers {
        let pool = PoolHandle::default();
        for (info, invoke) in handler.into_endpoints() {
            if routes.iter().any(|r| r.info.name == info.name) {
                return Err(error::bad_request(
                    id,
                    format!("endpoint {} is served by two handlers", info.name),
                ));
            }
            routes.push(Route {
                info,
                invoke,
                pool: pool.clone(),
            });
        }
        pools.push(pool);
    }
    Ok((routes, pools))
}
