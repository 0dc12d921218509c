//! The entries of the replicated log.

use serde::{Deserialize, Serialize};

use crate::auth::{Rule, SigningKeys, StoredAccount};
use crate::events::{ClaimOptions, Event};
use crate::namespace::Namespace;
use crate::registry::Registration;
use crate::runtime::{Change, RuntimeService};
use crate::store::{Record, TablePath};

/// A change to the replicated state. Every variant is validated before it is proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Moves log time forward and purges what has expired.
    Tick,
    /// Writes a record; `record.expiry_secs` is its time to live.
    StorePut {
        /// Where the record lives.
        path: TablePath,
        /// The record.
        record: Record,
    },
    /// Deletes a record if it exists.
    StoreDelete {
        /// Where the record lives.
        path: TablePath,
        /// Its key.
        key: String,
    },
    /// Registers (or re-registers, renewing its TTL) one node of a service.
    RegistryRegister {
        /// The service's namespace (the registry's domain).
        namespace: Namespace,
        /// The validated registration.
        registration: Registration,
    },
    /// Removes nodes of a service version (all of them when `node_ids` is empty).
    RegistryDeregister {
        /// The service's namespace.
        namespace: Namespace,
        /// Service name.
        name: String,
        /// Service version.
        version: String,
        /// The nodes to remove.
        node_ids: Vec<String>,
    },
    /// Creates or replaces a runtime service's desired state.
    RuntimeUpsert {
        /// Its namespace.
        namespace: Namespace,
        /// The desired service.
        service: RuntimeService,
    },
    /// Removes a runtime service's desired state.
    RuntimeDelete {
        /// Its namespace.
        namespace: Namespace,
        /// Service name.
        name: String,
        /// Service version.
        version: String,
    },
    /// Changes a runtime service if the change's condition holds (else `Refused`).
    RuntimeChange {
        /// Its namespace.
        namespace: Namespace,
        /// Service name.
        name: String,
        /// Service version.
        version: String,
        /// The change.
        change: Change,
    },
    /// Stores the cluster's signing keys and its first admin, once.
    AuthBootstrap {
        /// The key pair.
        keys: SigningKeys,
        /// The admin of namespace `micro`, secret already hashed.
        admin: Box<StoredAccount>,
    },
    /// Creates an account unless its id or name is taken.
    AuthAccountCreate {
        /// Its namespace.
        namespace: Namespace,
        /// The account, secret already hashed.
        account: Box<StoredAccount>,
    },
    /// Replaces an account if it is still at `revision`.
    AuthAccountUpdate {
        /// Its namespace.
        namespace: Namespace,
        /// The new account (its revision one more than `revision`).
        account: Box<StoredAccount>,
        /// The revision the change was made from.
        revision: u64,
    },
    /// Deletes an account.
    AuthAccountDelete {
        /// Its namespace.
        namespace: Namespace,
        /// The account id.
        id: String,
    },
    /// Creates or replaces a rule.
    AuthRulePut {
        /// Its namespace.
        namespace: Namespace,
        /// The rule.
        rule: Rule,
    },
    /// Deletes a rule.
    AuthRuleDelete {
        /// Its namespace.
        namespace: Namespace,
        /// The rule id.
        id: String,
    },
    /// Writes config leaves (each replacing what was at and under its path).
    ConfigSet {
        /// Its namespace.
        namespace: Namespace,
        /// Leaves by path, secrets already encrypted.
        leaves: Vec<(String, crate::config::Leaf)>,
    },
    /// Deletes the config value at a path (all of it for the root).
    ConfigDelete {
        /// Its namespace.
        namespace: Namespace,
        /// The path.
        path: String,
    },
    /// Appends events to a topic's log.
    EventsAppend {
        /// Its namespace.
        namespace: Namespace,
        /// The topic.
        topic: String,
        /// The events, validated, ids given.
        events: Vec<Event>,
        /// How long they are kept (ms), the proposing node's setting.
        retention_ms: u64,
    },
    /// Hands a consumer group's next events to one of its members.
    EventsClaim {
        /// Its namespace.
        namespace: Namespace,
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// The claiming member (a consumer's id), for sharing events among members.
        member: String,
        /// How many, and how they are acked.
        options: ClaimOptions,
        /// Where a new group starts (log time, ms); `None` for new events only.
        start_ms: Option<u64>,
    },
    /// Settles a consumer group's leases: `(seq, true)` acks, `(seq, false)` nacks.
    EventsAck {
        /// Its namespace.
        namespace: Namespace,
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// The member acking (a nack counts only from the lease's holder).
        member: String,
        /// The acks and nacks.
        acks: Vec<(u64, bool)>,
    },
    /// Stores one chunk of a blob upload (staged until committed).
    BlobChunk {
        /// Its namespace.
        namespace: Namespace,
        /// The upload (unique per write).
        upload: String,
        /// The chunk's place in the blob, from 0.
        index: u32,
        /// Its bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Points blob `key` at a complete upload, dropping the chunks it replaces.
    BlobCommit {
        /// Its namespace.
        namespace: Namespace,
        /// The blob's key.
        key: String,
        /// The upload, its chunk count and size.
        manifest: crate::state::blobs::Manifest,
    },
    /// Deletes a blob and its chunks.
    BlobDelete {
        /// Its namespace.
        namespace: Namespace,
        /// The blob's key.
        key: String,
    },
    /// A member leaves its consumer group; what it held falls due at once.
    EventsLeave {
        /// Its namespace.
        namespace: Namespace,
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
}

/// A log entry's payload: a command stamped with the proposing leader's wall time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The leader's wall time when it proposed the command (Unix ms).
    pub at_ms: u64,
    /// The change.
    pub command: Command,
}

/// The result of applying one entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Response {
    /// Applied; nothing to report.
    #[default]
    Done,
    /// A delete was applied; `existed` says whether a live record was removed.
    Deleted {
        /// Whether the key held a record.
        existed: bool,
    },
    /// A tick was applied and purged this many expired records.
    Ticked {
        /// Records purged.
        purged: u64,
    },
    /// A conditional command found its condition false and changed nothing.
    Refused {
        /// Why, for the caller.
        reason: String,
    },
    /// Events were appended, the first at `seq`.
    Appended {
        /// The seq of the first event appended.
        seq: u64,
    },
    /// A consumer group handed these events to the claiming member, which reads them
    /// from its own node's log (a claim carries no payloads through Raft).
    Claimed {
        /// `(seq, attempt)` of each event, in the order to deliver them.
        claimed: Vec<(u64, u32)>,
        /// When the group's earliest lease falls due (log time, ms).
        next_deadline_ms: Option<u64>,
    },
}
