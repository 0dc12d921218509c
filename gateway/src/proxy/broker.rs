//! `broker.Broker`: ephemeral pub/sub across the cluster.
//!
//! ```text
//! Publish on node P ─> P's subscribers without a queue
//!                   ─> each other node with such subscribers of the topic (registered in
//!                      `broker-queue` like a queue group), "deliver to your fan-out
//!                      subscribers"
//!                   ─> per queue group of the topic (members found in the registry's
//!                      `broker-queue`): one member node, round-robin, "deliver to one
//!                      member of queue Q" (P itself when it has the chosen member)
//! ```
//!
//! A forwarded publish carries `micro-broker-deliver` and is only delivered locally, so
//! it never travels further. (Any account of the namespace may send that header too and
//! so deliver to one node only; it cannot reach another namespace. Authenticating
//! node-to-node forwards waits for the peer credentials of #12.) Every call needs an account of the namespace (v3: "an
//! account is required"); topics and queues live in the caller's namespace.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{Stream, StreamExt};
use micro_actors::RegistryHandle;
use micro_actors::broker::{
    BrokerHub, BrokerMessage, FANOUT, GROUP_METADATA, QUEUE_SERVICE, TOPIC_METADATA, group_digest,
    topic_digest, validate_name,
};
use micro_core::service::{CONTENT_PROTO, Call, RemoteCaller};
use micro_core::{MicroError, Namespace};
use micro_proto::broker as pb;
use micro_proto::broker::broker_server::Broker;
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::proxy::guard::require_account;
use crate::proxy::namespace_of;

/// The metadata key of a forwarded publish: `fanout`, or `queue:<name>`.
const DELIVER_HEADER: &str = "micro-broker-deliver";
/// How long a forwarded publish may take.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The `broker.Broker` gRPC service.
#[derive(Debug, Clone)]
pub struct BrokerService {
    hub: BrokerHub,
    registry: RegistryHandle,
    remote: Arc<dyn RemoteCaller>,
    next: Arc<AtomicUsize>,
}

type MessageStream = Pin<Box<dyn Stream<Item = Result<pb::Message, Status>> + Send>>;

fn status(err: &MicroError) -> Status {
    micro_proto::status_from_micro(err)
}

impl BrokerService {
    /// A broker over this node's `hub`, finding other nodes in `registry` and reaching
    /// them through `remote`.
    pub fn new(hub: BrokerHub, registry: RegistryHandle, remote: Arc<dyn RemoteCaller>) -> Self {
        Self {
            hub,
            registry,
            remote,
            next: Arc::default(),
        }
    }

    /// Sends the publish to node `address` for local delivery there.
    async fn forward(
        &self,
        address: &str,
        namespace: &Namespace,
        request: &pb::PublishRequest,
        token: Option<&str>,
        deliver: String,
    ) -> Result<(), MicroError> {
        let mut metadata = std::collections::BTreeMap::from([(DELIVER_HEADER.to_owned(), deliver)]);
        if let Some(token) = token {
            metadata.insert("authorization".to_owned(), token.to_owned());
        }
        let call = Call {
            namespace: namespace.clone(),
            service: "broker".to_owned(),
            endpoint: "Broker.Publish".to_owned(),
            content_type: CONTENT_PROTO.to_owned(),
            metadata,
            body: request.encode_to_vec(),
        };
        let mut replies = self.remote.call(address, call, FORWARD_TIMEOUT).await?;
        while let Some(reply) = replies.next().await {
            reply?;
        }
        Ok(())
    }

    /// The queue groups of a topic and the nodes that have members of each.
    fn queue_groups(
        &self,
        namespace: &Namespace,
        topic: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, MicroError> {
        let services = self
            .registry
            .lookup_local(&Namespace::default(), QUEUE_SERVICE)?;
        let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let wanted = topic_digest(namespace, topic);
        for node in services.iter().flat_map(|s| s.nodes.iter()) {
            let meta = |key: &str| node.metadata.get(key).map(String::as_str);
            if meta(TOPIC_METADATA) == Some(wanted.as_str())
                && let Some(group) = meta(GROUP_METADATA)
            {
                groups
                    .entry(group.to_owned())
                    .or_default()
                    .push(node.address.clone());
            }
        }
        for addresses in groups.values_mut() {
            addresses.sort();
            addresses.dedup();
        }
        Ok(groups)
    }

    /// Delivers one message of the group with digest `group` to a member on one of
    /// `addresses`, trying the next node when one cannot take it.
    async fn deliver_to_group(
        &self,
        namespace: &Namespace,
        request: &pb::PublishRequest,
        message: &BrokerMessage,
        token: Option<&str>,
        (group, addresses): (&str, &[String]),
    ) {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..addresses.len() {
            let address = &addresses[(start + i) % addresses.len()];
            let delivered = if address == self.hub.address() {
                self.hub
                    .deliver_queue(namespace, &request.topic, group, message)
            } else {
                let deliver = format!("queue:{group}");
                self.forward(address, namespace, request, token, deliver)
                    .await
                    .is_ok()
            };
            if delivered {
                return;
            }
        }
    }
}

fn to_domain(message: Option<pb::Message>, topic: &str) -> BrokerMessage {
    let message = message.unwrap_or_default();
    let mut header: std::collections::BTreeMap<String, String> =
        message.header.into_iter().collect();
    header
        .entry("Micro-Topic".to_owned())
        .or_insert_with(|| topic.to_owned());
    BrokerMessage {
        header,
        body: message.body,
    }
}

#[tonic::async_trait]
impl Broker for BrokerService {
    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let namespace = namespace_of(&request)?;
        require_account(&request, &namespace, "broker")?;
        let header = |key: &str| {
            request
                .metadata()
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (deliver, token) = (header(DELIVER_HEADER), header("authorization"));
        let body = request.into_inner();
        validate_name("topic", &body.topic).map_err(|e| status(&e))?;
        let message = to_domain(body.message.clone(), &body.topic);
        match deliver.as_deref() {
            Some("fanout") => {
                self.hub.deliver_fanout(&namespace, &body.topic, &message);
            }
            Some(other) => {
                if let Some(queue) = other.strip_prefix("queue:") {
                    self.hub
                        .deliver_queue(&namespace, &body.topic, queue, &message);
                }
            }
            None => {
                self.hub.deliver_fanout(&namespace, &body.topic, &message);
                let mut groups = self
                    .queue_groups(&namespace, &body.topic)
                    .map_err(|e| status(&e))?;
                // Only nodes with subscribers of the topic hear of it.
                let fanout = groups
                    .remove(&group_digest(&namespace, &body.topic, FANOUT))
                    .unwrap_or_default();
                let others = fanout.iter().filter(|a| *a != self.hub.address());
                let fanouts = others.map(|address| {
                    self.forward(
                        address,
                        &namespace,
                        &body,
                        token.as_deref(),
                        "fanout".to_owned(),
                    )
                });
                for result in futures::future::join_all(fanouts).await {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "a node missed a broker message");
                    }
                }
                for (digest, addresses) in &groups {
                    let group = (digest.as_str(), addresses.as_slice());
                    self.deliver_to_group(&namespace, &body, &message, token.as_deref(), group)
                        .await;
                }
            }
        }
        Ok(Response::new(pb::Empty {}))
    }

    type SubscribeStream = MessageStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let namespace = namespace_of(&request)?;
        require_account(&request, &namespace, "broker")?;
        let body = request.into_inner();
        let queue = Some(body.queue).filter(|q| !q.is_empty());
        let subscription = self
            .hub
            .subscribe(namespace, &body.topic, queue)
            .await
            .map_err(|e| status(&e))?;
        let (messages, guard) = subscription.into_parts();
        // The guard lives as long as the stream: the client going away unsubscribes.
        let stream = tokio_stream::wrappers::ReceiverStream::new(messages).map(move |m| {
            let _subscribed = &guard;
            Ok(pb::Message {
                header: m.header.into_iter().collect(),
                body: m.body,
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
