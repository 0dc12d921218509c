//! # helloworld
//!
//! The example service: `Helloworld.Call` greets, `Helloworld.Stream` counts. A node
//! compiles it in and hosts it with [`micro::Service::start_local`]; the `helloworld`
//! binary runs it as its own process.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use futures::StreamExt;
//! use micro::{Call, Replies};
//! use micro_core::service::{CONTENT_JSON, LocalService};
//!
//! let service = helloworld::service().start_local().await.unwrap();
//! let call = Call {
//!     endpoint: "Helloworld.Call".into(),
//!     content_type: CONTENT_JSON.into(),
//!     body: br#"{"name":"Alice"}"#.to_vec(),
//!     ..Call::default()
//! };
//! let reply = service.call(call).next().await.unwrap().unwrap();
//! assert_eq!(reply, br#"{"msg":"Hello Alice"}"#);
//! service.stop().await.unwrap();
//! # });
//! ```

use std::time::Duration;

use futures::StreamExt;
use micro::{Context, Error, ReplyStream};

/// The generated messages, the [`pb::Helloworld`] trait and [`pb::helloworld_handler`].
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations
)]
pub mod pb {
    micro::include_proto!("helloworld");
}

/// The registry name of the service.
pub const NAME: &str = "helloworld";
/// The most messages one `Helloworld.Stream` call sends.
pub const STREAM_COUNT_MAX: i64 = 1000;
/// The pause between two streamed messages.
pub const STREAM_DELAY: Duration = Duration::from_millis(10);

/// The helloworld service, ready to start in a node or run as a process.
pub fn service() -> micro::Service {
    micro::Service::new(NAME).handle(pb::helloworld_handler(Helloworld))
}

/// The implementation of the `helloworld.Helloworld` proto service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Helloworld;

impl pb::Helloworld for Helloworld {
    async fn call(&self, _ctx: Context, req: pb::CallRequest) -> Result<pb::CallResponse, Error> {
        Ok(pb::CallResponse {
            msg: format!("Hello {}", req.name),
        })
    }

    async fn stream(
        &self,
        ctx: Context,
        req: pb::StreamRequest,
    ) -> Result<ReplyStream<pb::StreamResponse>, Error> {
        if !(0..=STREAM_COUNT_MAX).contains(&req.count) {
            return Err(micro::errors::bad_request(
                ctx.service(),
                format!(
                    "count must be between 0 and {STREAM_COUNT_MAX}, got {}",
                    req.count
                ),
            ));
        }
        let counts = futures::stream::iter(1..=req.count).then(|count| async move {
            tokio::time::sleep(STREAM_DELAY).await;
            Ok(pb::StreamResponse { count })
        });
        Ok(Box::pin(counts))
    }
}
