//! [`RaftNodeConfig`]: how a node takes part in Raft.

use std::time::Duration;

/// The default [`RaftNodeConfig::disk_reserve`]: 256 MiB, room for RocksDB to flush its
/// memtables and compact once writes stop.
pub const DISK_RESERVE_DEFAULT: u64 = 256 << 20;

/// The settings of one Raft member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftNodeConfig {
    /// This node's id (non-zero, unique in the cluster).
    pub node_id: u64,
    /// This node's peer address, as other members reach it.
    pub peer_addr: String,
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// How often an idle leader proposes a `Tick` to move log time (and purge expired
    /// records). A record stays visible at most about this long past its expiry.
    pub tick_interval: Duration,
    /// Take a snapshot (and purge the log behind it) after this many applied entries.
    pub snapshot_logs_since_last: u64,
    /// How many applied entries to keep in the log behind a snapshot (so a briefly
    /// lagging follower catches up from the log rather than a snapshot).
    pub logs_kept_behind_snapshot: u64,
    /// Bytes that must stay free on the disk under the data: below that, this node (as
    /// leader) refuses new proposals with `DiskFull` instead of letting the log run into
    /// "no space left on device", which openraft treats as fatal. 0 turns it off.
    pub disk_reserve: u64,
    /// Seed of openraft's RNG; `None` draws from the OS.
    pub seed: Option<u64>,
    /// The founding members (id -> peer address, this node included) of a cluster this
    /// node bootstraps with; empty for a single-member cluster or a joining node.
    pub peers: std::collections::BTreeMap<u64, String>,
    /// The peer address of a member of a running cluster to join through.
    pub join: Option<String>,
    /// Neither form nor join a cluster: wait to be added by `micro cluster add-node`.
    pub standby: bool,
    /// A planted bug (simulation only; see [`crate::InjectedBug`]).
    #[cfg(feature = "inject-bugs")]
    pub bug: Option<crate::InjectedBug>,
}

impl RaftNodeConfig {
    /// A single-member cluster of node `node_id`, with production timings.
    pub fn single(node_id: u64, peer_addr: impl Into<String>) -> Self {
        Self {
            node_id,
            peer_addr: peer_addr.into(),
            heartbeat: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(400),
            election_timeout_max: Duration::from_millis(800),
            tick_interval: Duration::from_millis(200),
            snapshot_logs_since_last: 5_000,
            logs_kept_behind_snapshot: 1_000,
            disk_reserve: DISK_RESERVE_DEFAULT,
            seed: None,
            peers: std::collections::BTreeMap::new(),
            join: None,
            standby: false,
            #[cfg(feature = "inject-bugs")]
            bug: None,
        }
    }

    /// The openraft configuration, validated.
    pub(crate) fn to_openraft(&self) -> Result<openraft::Config, crate::ClusterError> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = openraft::Config {
            cluster_name: "micro".to_owned(),
            heartbeat_interval: millis(self.heartbeat),
            election_timeout_min: millis(self.election_timeout_min),
            election_timeout_max: millis(self.election_timeout_max),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: self.logs_kept_behind_snapshot,
            purge_batch_size: 256,
            ..openraft::Config::default()
        };
        if self.node_id == 0 {
            return Err(crate::ClusterError::Config(
                "node id must not be 0".to_owned(),
            ));
        }
        config
            .validate()
            .map_err(|e| crate::ClusterError::Config(e.to_string()))
    }
}
