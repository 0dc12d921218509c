//! The broker's local hub: this node's subscribers, fan-out and queue groups.
//!
//! ```text
//! subscribe(ns, topic, queue?) ─> a bounded channel; the first member of a queue group
//!     here registers this node as a node of `broker-queue` in `micro` (held by the
//!     runtime until its last member here leaves), so publishers on any node find it
//! deliver_fanout(ns, topic, msg)        ─> every subscriber here without a queue
//! deliver_queue(ns, topic, group, msg)  ─> one member of the group here, round-robin
//! ```
//!
//! A group is named in the registry only by a digest of (namespace, topic, queue), so
//! the public `micro` registry shows no tenant's topic or queue names, and node ids have
//! a fixed length. Registering and releasing a group are serialised, and a release
//! re-checks that the group is still empty here, so a member that joins while the last
//! one leaves is never left unregistered.
//!
//! Ephemeral and at most once, as Micro v3's broker: nothing is stored, a subscriber
//! whose channel is full misses messages (it is too slow), one that is gone misses them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use micro_core::registry::{Node, Registration, Service};
use micro_core::{Code, MicroError, Namespace};
use sha2::Digest;
use tokio::sync::mpsc;

use crate::runtime::RuntimeHandle;

/// The registry service (in `micro`) whose nodes are the queue groups' members.
pub const QUEUE_SERVICE: &str = "broker-queue";
/// Messages a subscriber may have waiting before it misses new ones.
pub const SUBSCRIBER_BUFFER: usize = 256;
/// The registry metadata key holding a group's digest.
pub const GROUP_METADATA: &str = "group";
/// The registry metadata key holding a topic's digest.
pub const TOPIC_METADATA: &str = "topic";
/// The membership of subscribers without a queue, registered like a queue group (its
/// control character keeps it apart from every queue name a user can give), so a
/// publisher forwards only to the nodes that have such subscribers for the topic.
pub const FANOUT: &str = "\u{0}fanout";
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

impl Subscriber {
    /// The group it counts in: its queue, or [`FANOUT`].
    fn membership(&self) -> &str {
        self.queue.as_deref().unwrap_or(FANOUT)
    }
}

#[derive(Debug)]
struct Inner {
    subscribers: Mutex<HashMap<Topic, Vec<Subscriber>>>,
    /// The groups registered for this node; the lock serialises registering and
    /// releasing them.
    registered: tokio::sync::Mutex<std::collections::HashSet<String>>,
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

fn digest(parts: &[&str]) -> String {
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        // Length-prefixed, so no two different lists of parts hash alike.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest naming a topic of a namespace in the registry.
pub fn topic_digest(namespace: &Namespace, topic: &str) -> String {
    digest(&[namespace.as_str(), topic])
}

/// The digest naming a queue group of a topic in the registry.
pub fn group_digest(namespace: &Namespace, topic: &str, queue: &str) -> String {
    digest(&[namespace.as_str(), topic, queue])
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
                registered: tokio::sync::Mutex::default(),
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
        format!(
            "{}|{}",
            self.inner.address,
            group_digest(namespace, topic, queue)
        )
    }

    /// Subscribes to `topic` of `namespace`; with `queue`, as one member of that group.
    /// The node's membership (of the queue, or of the topic's fan-out) is registered, so
    /// other nodes' publishers find it, before this returns.
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
        lock(&self.inner.subscribers)
            .entry(key.clone())
            .or_default()
            .push(Subscriber {
                id,
                queue: queue.clone(),
                tx,
            });
        let guard = Unsubscribe {
            hub: self.clone(),
            topic: key,
            id,
        };
        let membership = queue.as_deref().unwrap_or(FANOUT);
        let node_id = self.queue_node_id(&namespace, topic, membership);
        let mut registered = self.inner.registered.lock().await;
        if !registered.contains(&node_id) {
            let registration = self.queue_registration(&namespace, topic, membership);
            self.inner
                .runtime
                .hold(Namespace::default(), registration)
                .await;
            registered.insert(node_id);
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
                (TOPIC_METADATA.to_owned(), topic_digest(namespace, topic)),
                (
                    GROUP_METADATA.to_owned(),
                    group_digest(namespace, topic, queue),
                ),
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
            let membership = list
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.membership().to_owned());
            list.retain(|s| s.id != id);
            let last_of_membership =
                membership.filter(|m| !list.iter().any(|s| s.membership() == m));
            if list.is_empty() {
                subscribers.remove(topic);
            }
            last_of_membership
        };
        if let Some(queue) = released_queue {
            let hub = self.clone();
            let topic = topic.clone();
            // Dropped from a stream's end, maybe outside a runtime's async context; the
            // registration's TTL then retires it.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { hub.release_if_empty(&topic, &queue).await });
            }
        }
    }

    /// Withdraws this node's registration of a group, unless a member joined meanwhile.
    async fn release_if_empty(&self, topic: &Topic, queue: &str) {
        let node_id = self.queue_node_id(&topic.0, &topic.1, queue);
        let mut registered = self.inner.registered.lock().await;
        let has_members = lock(&self.inner.subscribers)
            .get(topic)
            .is_some_and(|list| list.iter().any(|s| s.membership() == queue));
        if !has_members && registered.remove(&node_id) {
            self.inner
                .runtime
                .release(&Namespace::default(), &node_id)
                .await;
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

    /// Delivers to one member here of the group whose digest is `group` (round-robin);
    /// whether one took it.
    pub fn deliver_queue(
        &self,
        namespace: &Namespace,
        topic: &str,
        group: &str,
        message: &BrokerMessage,
    ) -> bool {
        let subscribers = lock(&self.inner.subscribers);
        let Some(list) = subscribers.get(&(namespace.clone(), topic.to_owned())) else {
            return false;
        };
        let members: Vec<&Subscriber> = list
            .iter()
            .filter(|s| {
                s.queue
                    .as_deref()
                    .is_some_and(|q| group_digest(namespace, topic, q) == group)
            })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use micro_core::replicator::{BoxFuture, MemReplicator, Replicator};
    use micro_core::service::{Call, RemoteCaller, Replies};

    use super::*;
    use crate::{RegistryHandle, Router};

    #[derive(Debug)]
    struct Nowhere;

    impl RemoteCaller for Nowhere {
        fn call(
            &self,
            address: &str,
            _call: Call,
            _timeout: Duration,
        ) -> BoxFuture<'static, Result<Replies, MicroError>> {
            let err = MicroError::new("test", Code::Unavailable, format!("{address} is nowhere"));
            Box::pin(async move { Err(err) })
        }
    }

    async fn hub() -> (BrokerHub, RegistryHandle) {
        let clock = Arc::new(micro_core::SystemClock);
        let replicator: Arc<dyn Replicator> = Arc::new(MemReplicator::new(clock));
        let registry = RegistryHandle::new(replicator.clone());
        let router = Router::new(registry.clone(), Arc::new(Nowhere), "127.0.0.1:1".into());
        let runtime = RuntimeHandle::new(
            replicator,
            registry.clone(),
            router,
            micro_core::service::Builtins::default(),
            1,
        );
        (BrokerHub::new(runtime, "127.0.0.1:1".into()), registry)
    }

    async fn registered_groups(registry: &RegistryHandle) -> usize {
        let services = registry
            .get(&Namespace::default(), QUEUE_SERVICE, Default::default())
            .await
            .unwrap_or_default();
        services.iter().map(|s| s.nodes.len()).sum()
    }

    #[tokio::test]
    async fn a_member_joining_as_the_last_one_leaves_keeps_the_group_registered() {
        let (hub, registry) = hub().await;
        let ns = Namespace::default();
        let first = hub
            .subscribe(ns.clone(), "jobs", Some("w".into()))
            .await
            .unwrap();
        assert_eq!(registered_groups(&registry).await, 1);
        // The last member leaves and another joins at once: the release must not win.
        drop(first);
        let second = hub
            .subscribe(ns.clone(), "jobs", Some("w".into()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(registered_groups(&registry).await, 1);
        let group = group_digest(&ns, "jobs", "w");
        let message = BrokerMessage::default();
        assert!(hub.deliver_queue(&ns, "jobs", &group, &message));
        drop(second);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(registered_groups(&registry).await, 0);
        assert!(!hub.deliver_queue(&ns, "jobs", &group, &message));
    }

    #[test]
    fn digests_keep_names_apart_and_private() {
        let ns = Namespace::default();
        assert_ne!(group_digest(&ns, "a|b", "c"), group_digest(&ns, "a", "b|c"));
        assert!(!group_digest(&ns, "orders", "w").contains("orders"));
        assert_eq!(group_digest(&ns, "t", "q").len(), 32);
    }
}
