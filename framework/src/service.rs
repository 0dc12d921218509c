//! [`Service`]: the builder a service author starts from (Micro v3's `service.New`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use micro_core::Namespace;

use crate::error::Error;
use crate::handler::Handler;
use crate::hooks::{Hooks, hook};
use crate::options::Options;
use crate::running::{Parts, RunningService};
use crate::wrapper::HandlerWrapper;

/// A service being assembled: its name and settings, handlers, wrappers and hooks.
///
/// Start it inside a node with [`Service::start_local`], or as its own process with
/// [`Service::run`] (registers through a node's proxy; reads [`crate::env`](mod@crate::env)).
///
/// ```
/// # use std::time::Duration;
/// let service = micro::Service::new("helloworld")
///     .version("v1")
///     .metadata("owner", "team-a")
///     .concurrency(4)
///     .register_ttl(Duration::from_secs(30))
///     .register_interval(Duration::from_secs(10))
///     .before_start(|| async { Ok(()) });
/// assert_eq!(service.name(), "helloworld");
/// ```
pub struct Service {
    pub(crate) options: Options,
    pub(crate) handlers: Vec<Handler>,
    pub(crate) wrappers: Vec<Arc<dyn HandlerWrapper>>,
    pub(crate) hooks: Hooks,
}

impl Service {
    /// A service registered as `name`, version `latest`, in namespace `micro`.
    pub fn new(name: &str) -> Self {
        Self {
            options: Options::new(name),
            handlers: Vec::new(),
            wrappers: Vec::new(),
            hooks: Hooks::default(),
        }
    }

    /// The registry name.
    pub fn name(&self) -> &str {
        &self.options.name
    }

    /// Sets the version (default `latest`).
    pub fn version(mut self, version: &str) -> Self {
        version.clone_into(&mut self.options.version);
        self
    }

    /// Sets the namespace a process service registers in (default `micro`).
    pub fn namespace(mut self, namespace: Namespace) -> Self {
        self.options.namespace = namespace;
        self
    }

    /// Adds a registry metadata entry.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.options
            .metadata
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// How long a registration lives without a refresh (default 90 s).
    pub fn register_ttl(mut self, ttl: Duration) -> Self {
        self.options.register_ttl = ttl;
        self
    }

    /// How often a process service refreshes its registration (default 30 s); must be
    /// shorter than the TTL.
    pub fn register_interval(mut self, interval: Duration) -> Self {
        self.options.register_interval = interval;
        self
    }

    /// Workers per handler: how many of its calls run at once (default 16, at most
    /// [`crate::options::CONCURRENCY_MAX`]).
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.options.concurrency = workers;
        self
    }

    /// How long one call may run before it fails with 408 (default 60 s).
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.options.handler_timeout = timeout;
        self
    }

    /// Serves the endpoints of `handler` (several handlers may be added).
    pub fn handle(mut self, handler: Handler) -> Self {
        self.handlers.push(handler);
        self
    }

    /// Wraps every call in `wrapper`; the first added runs outermost.
    pub fn wrap_handler(mut self, wrapper: impl HandlerWrapper) -> Self {
        self.wrappers.push(Arc::new(wrapper));
        self
    }

    /// Runs `f` before the service starts; an error aborts the start.
    pub fn before_start<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.hooks.before_start.push(hook(f));
        self
    }

    /// Runs `f` once the service serves (and, as a process, has registered).
    pub fn after_start<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.hooks.after_start.push(hook(f));
        self
    }

    /// Runs `f` when the service is asked to stop, before it deregisters.
    pub fn before_stop<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.hooks.before_stop.push(hook(f));
        self
    }

    /// Runs `f` once the service has stopped.
    pub fn after_stop<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.hooks.after_stop.push(hook(f));
        self
    }

    /// Starts the handlers' actors in this process and returns the running service,
    /// which a node hosts as a [`micro_core::service::LocalService`]. Runs the
    /// `before_start` and `after_start` hooks.
    ///
    /// The [`crate::env`](mod@crate::env) overrides are not read here: every in-node service shares the
    /// node's environment, which names none of them.
    pub async fn start_local(self) -> Result<RunningService, Error> {
        let options = self.options.validate()?;
        let parts = Parts {
            options,
            handlers: self.handlers,
            wrappers: self.wrappers,
            hooks: self.hooks,
        };
        crate::hooks::run_all(&parts.hooks.before_start).await?;
        let running = RunningService::launch(parts).await?;
        if let Err(err) = crate::hooks::run_all(&running.hooks().after_start).await {
            running.stop_actors().await;
            return Err(err);
        }
        Ok(running)
    }
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("options", &self.options)
            .field("handlers", &self.handlers)
            .field("wrappers", &self.wrappers.len())
            .field("hooks", &self.hooks)
            .finish()
    }
}
