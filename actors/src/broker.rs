//! The broker's local hub: this node's subscribers, fan-out and queue groups.
//!
//! ```text
//! subscribe(ns, topic, queue?) ─> a bounded channel; a queue member also registers
//!     (node address, ns, topic, queue) as a node of `broker-queue` in `micro`, held by
//!     the runtime while this node has members, so publishers on any node find it
//! deliver_fanout(ns, topic, msg)        ─> every subscriber here without a queue
//! deliver_queue(ns, topic, queue, msg)  ─> one member of the queue here, round-robin
//! ```
//!
//! Ephemeral and at most once, as Micro v3's broker: nothing is stored, a subscriber
//! whose channel is full misses messages (it is too slow), one that is gone misses them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use micro_core::registry::{Node, Registration, Service};
use micro_core::{Code, MicroError, Namespace};
use tokio::sync::mpsc;

use crate::runtime::RuntimeHandle;

/// The registry service (in `micro`) whose nodes are the queue groups' members.
pub const QUEUE_SERVICE: &str = "broker-queue";
/// Messages a subscriber may have waiting before it misses new ones.
pub const SUBSCRIBER_BUFFER: usize = 1024;
/// The longest topic or queue name.
pub const NAME_LEN_MAX: usize = 255;

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerMessage {
    /// Headers.
    pub header: BTreeMap<String, String>,
    /// The payload.
    pub body: Vec<u8>,
}

type Topic = (Namespace, String);

#[derive(Debug)]
struct Subscriber {
    id: u64,
    queue: Option<String>,
    tx: mpsc::Sender<BrokerMessage>,
}

#[derive(Debug)]
struct Inner {
    subscribers: Mutex<HashMap<Topic, Vec<Subscriber>>>,
    next_id: AtomicU64,
    next_member: AtomicUsize,
    runtime: RuntimeHandle,
    address: String,
}

/// This node's broker hub; cheap to clone.
#[derive(Debug, Clone)]
pub struct BrokerHub {
    inner: Arc<Inner>,
}

/// A live subscription: messages arrive on `messages`; dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    /// The messages.
    pub messages: mpsc::Receiver<BrokerMessage>,
    guard: Unsubscribe,
}

impl Subscription {
    /// Splits into the messages and the guard that unsubscribes when dropped.
    pub fn into_parts(self) -> (mpsc::Receiver<BrokerMessage>, impl Send + 'static) {
        (self.messages, self.guard)
    }
}

#[derive(Debug)]
struct Unsubscribe {
    hub: BrokerHub,
    topic: Topic,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        self.hub.remove(&self.topic, self.id);
    }
}

/// Checks a topic or queue name.
pub fn validate_name(what: &str, name: &str) -> Result<(), MicroError> {
    if name.is_empty() || name.len() > NAME_LEN_MAX || name.chars().any(char::is_control) {
        return Err(MicroError::new(
            "broker",
            Code::BadRequest,
            format!("a {what} must be 1 to {NAME_LEN_MAX} bytes without control characters"),
        ));
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl BrokerHub {
    /// A hub whose queue memberships the runtime keeps registered; `address` is this
    /// node's proxy, where other nodes deliver.
    pub fn new(runtime: RuntimeHandle, address: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                subscribers: Mutex::default(),
                next_id: AtomicU64::new(1),
                next_member: AtomicUsize::new(0),
                runtime,
                address,
            }),
        }
    }

    /// This node's proxy address.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    fn queue_node_id(&self, namespace: &Namespace, topic: &str, queue: &str) -> String {
        format!("{}|{namespace}|{topic}|{queue}", self.inner.address)
    }

    /// Subscribes to `topic` of `namespace`; with `queue`, as one member of that group
    /// (registered, so other nodes' publishers find it, before this returns).
    pub async fn subscribe(
        &self,
        namespace: Namespace,
        topic: &str,
        queue: Option<String>,
    ) -> Result<Subscription, MicroError> {
        validate_name("topic", topic)?;
        if let Some(queue) = &queue {
            validate_name("queue", queue)?;
        }
        let (tx, messages) = mpsc::channel(SUBSCRIBER_BUFFER);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let key = (namespace.clone(), topic.to_owned());
        let first_member = {
            let mut subscribers = lock(&self.inner.subscribers);
            let list = subscribers.entry(key.clone()).or_default();
            let first = queue
                .as_ref()
                .is_some_and(|q| !list.iter().any(|s| s.queue.as_ref() == Some(q)));
            list.push(Subscriber {
                id,
                queue: queue.clone(),
                tx,
            });
            first
        };
        let guard = Unsubscribe {
            hub: self.clone(),
            topic: key,
            id,
        };
        if let (true, Some(queue)) = (first_member, &queue) {
            let registration = self.queue_registration(&namespace, topic, queue);
            self.inner
                .runtime
                .hold(Namespace::default(), registration)
                .await;
        }
        Ok(Subscription { messages, guard })
    }

    fn queue_registration(&self, namespace: &Namespace, topic: &str, queue: &str) -> Registration {
        let mut registration = self.inner.runtime.registration(Service {
            name: QUEUE_SERVICE.to_owned(),
            version: "1".to_owned(),
            ..Service::default()
        });
        registration.node = Node {
            id: self.queue_node_id(namespace, topic, queue),
            address: self.inner.address.clone(),
            metadata: BTreeMap::from([
                ("namespace".to_owned(), namespace.to_string()),
                ("topic".to_owned(), topic.to_owned()),
                ("queue".to_owned(), queue.to_owned()),
            ]),
        };
        registration
    }

    fn remove(&self, topic: &Topic, id: u64) {
        let released_queue = {
            let mut subscribers = lock(&self.inner.subscribers);
            let Some(list) = subscribers.get_mut(topic) else {
                return;
            };
            let queue = list
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.queue.clone());
            list.retain(|s| s.id != id);
            let last_of_queue = queue
                .as_ref()
                .filter(|q| !list.iter().any(|s| s.queue.as_ref() == Some(*q)))
                .cloned();
            if list.is_empty() {
                subscribers.remove(topic);
            }
            last_of_queue
        };
        if let Some(queue) = released_queue {
            let node_id = self.queue_node_id(&topic.0, &topic.1, &queue);
            let runtime = self.inner.runtime.clone();
            // Dropped from a stream's end, maybe outside a runtime's async context.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { runtime.release(&Namespace::default(), &node_id).await });
            }
        }
    }

    /// Delivers to every subscriber of the topic here that has no queue; how many.
    pub fn deliver_fanout(
        &self,
        namespace: &Namespace,
        topic: &str,
        message: &BrokerMessage,
    ) -> usize {
        let subscribers = lock(&self.inner.subscribers);
        let Some(list) = subscribers.get(&(namespace.clone(), topic.to_owned())) else {
            return 0;
        };
        list.iter()
            .filter(|s| s.queue.is_none())
            .filter(|s| s.tx.try_send(message.clone()).is_ok())
            .count()
    }

    /// Delivers to one member of `queue` here (round-robin); whether one took it.
    pub fn deliver_queue(
        &self,
        namespace: &Namespace,
        topic: &str,
        queue: &str,
        message: &BrokerMessage,
    ) -> bool {
        let subscribers = lock(&self.inner.subscribers);
        let Some(list) = subscribers.get(&(namespace.clone(), topic.to_owned())) else {
            return false;
        };
        let members: Vec<&Subscriber> = list
            .iter()
            .filter(|s| s.queue.as_deref() == Some(queue))
            .collect();
        if members.is_empty() {
            return false;
        }
        let start = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        (0..members.len()).any(|i| {
            members[(start + i) % members.len()]
                .tx
                .try_send(message.clone())
                .is_ok()
        })
    }
}
