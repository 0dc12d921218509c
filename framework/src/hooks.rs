//! Lifecycle hooks (`before_start`, `after_start`, `before_stop`, `after_stop`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::error::Error;

/// One hook: an async function run at a point of the service's life.
pub(crate) type Hook = Arc<dyn Fn() -> BoxFuture<'static, Result<(), Error>> + Send + Sync>;

/// The hooks of a service, in the order they were added.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) before_start: Vec<Hook>,
    pub(crate) after_start: Vec<Hook>,
    pub(crate) before_stop: Vec<Hook>,
    pub(crate) after_stop: Vec<Hook>,
}

/// Boxes an async function as a [`Hook`].
pub(crate) fn hook<F, Fut>(f: F) -> Hook
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    Arc::new(move || f().boxed())
}

/// Runs `hooks` in order, stopping at the first error.
pub(crate) async fn run_all(hooks: &[Hook]) -> Result<(), Error> {
    for hook in hooks {
        hook().await?;
    }
    Ok(())
}

/// Runs every hook of `hooks` even if some fail (for stopping), logging failures;
/// returns the first error.
pub(crate) async fn run_each(what: &str, hooks: &[Hook]) -> Result<(), Error> {
    let mut first = None;
    for hook in hooks {
        if let Err(err) = hook().await {
            tracing::warn!(hook = what, error = %err, "a lifecycle hook failed");
            first.get_or_insert(err);
        }
    }
    first.map_or(Ok(()), Err)
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("before_start", &self.before_start.len())
            .field("after_start", &self.after_start.len())
            .field("before_stop", &self.before_stop.len())
            .field("after_stop", &self.after_stop.len())
            .finish()
    }
}
