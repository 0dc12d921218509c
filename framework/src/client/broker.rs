//! [`BrokerClient`]: ephemeral publish and subscribe (`broker.Broker`) in the client's
//! namespace.

use std::collections::BTreeMap;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use micro_proto::broker as pb;
use micro_proto::broker::broker_client::BrokerClient as Grpc;

use crate::client::Client;
use crate::error::Error;

/// A message: headers and a body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerMessage {
    /// Headers (`Micro-Topic` names the topic).
    pub header: BTreeMap<String, String>,
    /// The payload.
    pub body: Vec<u8>,
}

/// The messages of a subscription, until it is dropped.
pub type Messages = Pin<Box<dyn Stream<Item = Result<BrokerMessage, Error>> + Send>>;

/// The broker client; get one with [`Client::broker`].
#[derive(Debug, Clone)]
pub struct BrokerClient {
    client: Client,
}

fn status(status: &tonic::Status) -> Error {
    micro_proto::micro_from_status("broker", status)
}

impl BrokerClient {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Publishes `body` on `topic`: every subscriber on every node gets it, and one
    /// member of each queue group. Nothing is kept for later subscribers.
    pub async fn publish(
        &self,
        topic: &str,
        body: Vec<u8>,
        header: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let request = pb::PublishRequest {
            topic: topic.to_owned(),
            message: Some(pb::Message {
                header: header.into_iter().collect(),
                body,
            }),
        };
        Grpc::new(self.client.channel())
            .publish(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(())
    }

    /// Subscribes to `topic`; with `queue`, as one member of that group (each message
    /// goes to one member). Dropping the stream unsubscribes.
    pub async fn subscribe(&self, topic: &str, queue: Option<&str>) -> Result<Messages, Error> {
        let request = pb::SubscribeRequest {
            topic: topic.to_owned(),
            queue: queue.unwrap_or_default().to_owned(),
        };
        // A subscription has no deadline: not the client's call timeout.
        let mut request = self.client.request(request);
        *request.metadata_mut() = {
            let mut metadata = request.metadata().clone();
            metadata.remove("grpc-timeout");
            metadata
        };
        let stream = Grpc::new(self.client.channel())
            .subscribe(request)
            .await
            .map_err(|s| status(&s))?
            .into_inner();
        Ok(Box::pin(stream.map(|message| {
            message
                .map(|m| BrokerMessage {
                    header: m.header.into_iter().collect(),
                    body: m.body,
                })
                .map_err(|s| status(&s))
        })))
    }
}
