//! [`Dispatcher`]: the end of the wrapper chain. Finds the endpoint, transcodes JSON,
//! hands the call to the handler's worker pool and encodes the replies.
//!
//! ```text
//! Call{endpoint, content_type, body}
//!   ├─ unknown endpoint ───────────────> 404 naming the known endpoints
//!   ├─ JSON? body ─Transcoder──> protobuf (malformed: 400)
//!   ├─ PoolHandle::call ──> worker ──> Output::Unary(bytes) | Output::Stream(replies)
//!   └─ JSON? each reply ─Transcoder──> JSON
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use futures::stream;
use micro_core::service::{Call, Replies, is_json};

use crate::context::Context;
use crate::error::{self, Error};
use crate::handler::{EndpointInfo, Invoke, Output};
use crate::pool::PoolHandle;
use crate::transcoder::Transcoder;

/// One endpoint: its contract, implementation and the pool that runs it.
pub(crate) struct Route {
    pub(crate) info: EndpointInfo,
    pub(crate) invoke: Invoke,
    pub(crate) pool: PoolHandle,
}

/// Routes calls of one service to its endpoints.
pub(crate) struct Dispatcher {
    id: String,
    routes: BTreeMap<String, Route>,
    transcoder: Transcoder,
    stopped: Arc<AtomicBool>,
}

impl Dispatcher {
    /// A dispatcher for the service `id`.
    pub(crate) fn new(
        id: String,
        routes: Vec<Route>,
        transcoder: Transcoder,
        stopped: Arc<AtomicBool>,
    ) -> Self {
        let routes = routes
            .into_iter()
            .map(|r| (r.info.name.clone(), r))
            .collect();
        Self {
            id,
            routes,
            transcoder,
            stopped,
        }
    }

    /// Serves `call`; every failure is an `Err` item, never a panic.
    pub(crate) fn dispatch(self: &Arc<Self>, call: Call) -> Replies {
        let this = self.clone();
        let replies = stream::once(async move {
            match this.serve(call).await {
                Ok(replies) => replies,
                Err(err) => failed(err),
            }
        });
        Box::pin(replies.flatten())
    }

    async fn serve(&self, call: Call) -> Result<Replies, Error> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(error::unavailable(
                &self.id,
                format!("{} is stopped", self.id),
            ));
        }
        let route = self.route(&call.endpoint)?;
        let json = is_json(&call.content_type);
        let ctx = Context::from_call(&call);
        let body = if json {
            self.transcoder
                .json_to_proto(&self.id, &route.info.request, &call.body)
                .map_err(|e| in_endpoint(e, &call.endpoint))?
        } else {
            call.body
        };
        let output = route.pool.call(route.invoke.clone(), ctx, body).await?;
        let replies: Replies = match output {
            Output::Unary(reply) => Box::pin(stream::once(async move { Ok(reply) })),
            Output::Stream(replies) => replies,
        };
        if !json {
            return Ok(replies);
        }
        let transcoder = self.transcoder.clone();
        let id = self.id.clone();
        let response = route.info.response.clone();
        Ok(Box::pin(replies.map(move |reply| {
            reply.and_then(|bytes| transcoder.proto_to_json(&id, &response, &bytes))
        })))
    }

    fn route(&self, endpoint: &str) -> Result<&Route, Error> {
        self.routes.get(endpoint).ok_or_else(|| {
            let known: Vec<&str> = self.routes.keys().map(String::as_str).collect();
            error::not_found(
                &self.id,
                format!(
                    "service {} has no endpoint {endpoint:?}; it serves: {}",
                    self.id,
                    known.join(", ")
                ),
            )
        })
    }
}

/// A reply stream holding one error.
fn failed(err: Error) -> Replies {
    Box::pin(stream::once(async move { Err(err) }))
}

fn in_endpoint(mut err: Error, endpoint: &str) -> Error {
    err.detail = format!("{endpoint}: {}", err.detail);
    err
}
