//! [`HandlerWrapper`]: middleware around every call of a service (Micro's
//! `WrapHandler`), for logging, auth checks, metrics.
//!
//! ```text
//! call ──> wrapper 0 ──next.run──> wrapper 1 ──next.run──> dispatch (decode, worker, encode)
//! ```
//!
//! Wrappers see the raw [`Call`] (body still encoded, content type set) and the encoded
//! replies; they may answer by themselves without calling `next`.
//!
//! ```
//! use micro::{Call, Next, Replies};
//! let log = |call: Call, next: Next| -> Replies {
//!     tracing::info!(endpoint = %call.endpoint, "call");
//!     next.run(call)
//! };
//! let service = micro::Service::new("helloworld").wrap_handler(log);
//! # let _ = service;
//! ```

use std::fmt;
use std::sync::Arc;

use micro_core::service::{Call, Replies};

/// Middleware around a service's calls.
///
/// Implementations must return promptly (do slow work inside the returned stream) and
/// must not panic: a wrapper runs on the caller's task, outside the supervised workers.
pub trait HandlerWrapper: Send + Sync + 'static {
    /// Handles `call`, usually by passing it (possibly changed) to `next`.
    fn call(&self, call: Call, next: Next) -> Replies;
}

impl<F> HandlerWrapper for F
where
    F: Fn(Call, Next) -> Replies + Send + Sync + 'static,
{
    fn call(&self, call: Call, next: Next) -> Replies {
        self(call, next)
    }
}

/// The rest of the chain after a wrapper: the next wrappers, then the dispatch.
#[derive(Clone)]
pub struct Next {
    chain: Arc<Chain>,
    index: usize,
}

/// The wrappers of a service and the dispatch they end in.
pub(crate) struct Chain {
    pub(crate) wrappers: Vec<Arc<dyn HandlerWrapper>>,
    pub(crate) dispatch: Box<dyn Fn(Call) -> Replies + Send + Sync>,
}

impl Next {
    /// The start of `chain`.
    pub(crate) fn start(chain: Arc<Chain>) -> Self {
        Self { chain, index: 0 }
    }

    /// Passes `call` on down the chain.
    pub fn run(self, call: Call) -> Replies {
        match self.chain.wrappers.get(self.index).cloned() {
            Some(wrapper) => {
                let next = Self {
                    chain: self.chain,
                    index: self.index + 1,
                };
                wrapper.call(call, next)
            }
            None => (self.chain.dispatch)(call),
        }
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field(
                "remaining_wrappers",
                &(self.chain.wrappers.len() - self.index),
            )
            .finish()
    }
}
