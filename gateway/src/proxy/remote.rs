//! [`GrpcRemote`]: the router's way to other nodes and process services, raw gRPC over
//! channels from an injected dialer (tokio TCP in production, simulated in tests).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro_core::replicator::BoxFuture;
use micro_core::service::{Call, RemoteCaller, Replies};
use micro_core::{Code, MicroError};
use tonic::transport::Channel;

/// Opens a lazily connecting channel to `host:port`.
pub type Dial = Arc<dyn Fn(&str) -> Result<Channel, String> + Send + Sync>;

/// Calls services on other nodes and in processes, one cached channel per address.
#[derive(Clone)]
pub struct GrpcRemote {
    dial: Dial,
    channels: Arc<Mutex<BTreeMap<String, Channel>>>,
}

impl std::fmt::Debug for GrpcRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcRemote").finish_non_exhaustive()
    }
}

impl GrpcRemote {
    /// Calls through channels `dial` opens.
    pub fn new(dial: Dial) -> Self {
        Self {
            dial,
            channels: Arc::default(),
        }
    }

    fn channel(&self, address: &str) -> Result<Channel, String> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let channel = (self.dial)(address)?;
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }
}

impl RemoteCaller for GrpcRemote {
    fn call(
        &self,
        address: &str,
        call: Call,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Replies, MicroError>> {
        let channel = self.channel(address);
        let address = address.to_owned();
        Box::pin(async move {
            let channel = channel.map_err(|why| {
                MicroError::new(
                    &call.service,
                    Code::Unavailable,
                    format!("{address}: {why}"),
                )
            })?;
            micro_proto::raw::call(channel, call, timeout).await
        })
    }
}
