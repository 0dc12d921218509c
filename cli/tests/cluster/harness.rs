//! A cluster of in-process nodes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use micro_cli::client::Client;
use micro_cli::node::{NodeConfig, NodeDeps, RunningNode, StorageKind, start_node};
use micro_core::Namespace;
use micro_core::kv::MemKvBackend;
use micro_proto::cluster::StatusRequest;
use micro_proto::store::{ReadRequest, Record, WriteRequest};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// One member: its storage outlives restarts.
pub(crate) struct Member {
    pub(crate) config: NodeConfig,
    pub(crate) kv: Arc<MemKvBackend>,
    pub(crate) node: Option<RunningNode>,
}

/// A cluster under test.
pub(crate) struct TestCluster {
    pub(crate) members: BTreeMap<u64, Member>,
    /// The admin's access token, fetched once a leader exists and good on every member
    /// (one cluster key), so tests that take the majority away still have it.
    admin_token: std::sync::Mutex<Option<String>>,
}

fn config(id: u64, peer_addr: String, peers: BTreeMap<u64, String>) -> NodeConfig {
    NodeConfig {
        node_id: id,
        data_dir: std::env::temp_dir(),
        api_addr: "127.0.0.1:0".to_owned(),
        proxy_addr: "127.0.0.1:0".to_owned(),
        peer_addr,
        storage: StorageKind::Memory,
        peers,
        join: None,
        standby: false,
        snapshot_every: 100,
        body_limit: micro_cli::node::BODY_LIMIT_DEFAULT,
        admin_password: micro_cli::node::Secret("micro".to_owned()),
        events_retention: std::time::Duration::from_secs(24 * 3600),
        build_dir: None,
        run_as: None,
        disk_reserve: 0,
        tls: None,
        runtime: micro_cli::node::RuntimeConfig::Local,
    }
}

/// A free loopback address for a peer listener. Members are restarted on the same
/// address, so it is taken below Linux's ephemeral range (32768 and up): a port from that
/// range can be grabbed by any outgoing connection while its member is down.
pub(crate) async fn free_addr() -> String {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + u16::try_from(std::process::id() % 1000).unwrap() * 12;
    loop {
        let port = base + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 12_000;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener.local_addr().unwrap().to_string();
        }
    }
}

impl TestCluster {
    /// Configures `size` founding members (not started).
    pub(crate) async fn new(size: u64) -> Self {
        let mut peers = BTreeMap::new();
        for id in 1..=size {
            peers.insert(id, free_addr().await);
        }
        let members = peers
            .iter()
            .map(|(id, addr)| {
                let config = config(*id, addr.clone(), peers.clone());
                (
                    *id,
                    Member {
                        config,
                        kv: Arc::new(MemKvBackend::new()),
                        node: None,
                    },
                )
            })
            .collect();
        Self {
            members,
            admin_token: std::sync::Mutex::default(),
        }
    }

    /// Adds a member that waits to be added (`standby`) and starts it.
    pub(crate) async fn add_standby(&mut self, id: u64) -> String {
        let addr = free_addr().await;
        let mut config = config(id, addr.clone(), BTreeMap::new());
        config.standby = true;
        self.members.insert(
            id,
            Member {
                config,
                kv: Arc::new(MemKvBackend::new()),
                node: None,
            },
        );
        self.start(id).await;
        addr
    }

    /// Adds a member that joins through member `via` by itself (`--join`) and starts it.
    pub(crate) async fn add_joiner(&mut self, id: u64, via: u64) {
        let mut config = config(id, free_addr().await, BTreeMap::new());
        config.join = Some(self.members[&via].config.peer_addr.clone());
        self.members.insert(
            id,
            Member {
                config,
                kv: Arc::new(MemKvBackend::new()),
                node: None,
            },
        );
        self.start(id).await;
    }

    /// Starts (or restarts) member `id` on its storage.
    pub(crate) async fn start(&mut self, id: u64) {
        let member = self.members.get_mut(&id).unwrap();
        let deps = NodeDeps {
            kv: member.kv.clone(),
            clock: Arc::new(micro_core::SystemClock),
            proxy_listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            api_listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            peer_listener: bind_retrying(&member.config.peer_addr).await,
            connector: Arc::new(micro_cluster::TcpConnector),
            seed: Some(id),
            tune_raft: None,
            builtins: micro_cli::builtins(),
            enforce_auth: true,
        };
        member.node = Some(start_node(&member.config, deps).await.unwrap());
    }

    /// Starts every member, in the given order.
    pub(crate) async fn start_in(&mut self, order: &[u64]) {
        for id in order {
            self.start(*id).await;
        }
    }

    /// Crashes member `id`: it stops at once and loses what it had not synced.
    pub(crate) async fn kill(&mut self, id: u64) {
        let member = self.members.get_mut(&id).unwrap();
        if let Some(node) = member.node.take() {
            node.kill().await;
        }
        member.kv.crash();
    }

    /// A client of member `id`'s proxy, logged in as the default admin (retrying while
    /// the cluster elects a leader and bootstraps auth).
    pub(crate) async fn client(&self, id: u64) -> Client {
        let client = self.anonymous(id).await;
        let cached = self.admin_token.lock().unwrap().clone();
        if cached.is_some() {
            return client.with_token(cached);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.clone().logged_in("admin", "micro").await {
                Ok(client) => {
                    *self.admin_token.lock().unwrap() = client.token().map(str::to_owned);
                    return client;
                }
                Err(err) if Instant::now() > deadline => panic!("cannot log in: {err}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// A client of member `id`'s proxy without a login (enough for `Cluster.Status`,
    /// which answers even while no leader is elected).
    pub(crate) async fn anonymous(&self, id: u64) -> Client {
        let node = self.members[&id].node.as_ref().expect("member is running");
        Client::connect(&node.proxy_addr.to_string(), Namespace::default())
            .await
            .unwrap()
    }

    /// Waits until every running member agrees on one leader with `voters` voters.
    pub(crate) async fn wait_leader(&self, voters: usize) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(leader) = self.agreed_leader(voters).await {
                // Log in while there is a leader, for clients made later without one.
                self.client(leader).await;
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader with {voters} voters"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn agreed_leader(&self, voters: usize) -> Option<u64> {
        let mut leaders = Vec::new();
        for (id, member) in &self.members {
            if member.node.is_none() {
                continue;
            }
            let client = self.anonymous(*id).await;
            let status = client
                .cluster()
                .status(StatusRequest {})
                .await
                .ok()?
                .into_inner();
            let counted = status
                .members
                .iter()
                .filter(|m| m.role != "learner")
                .count();
            if status.leader == 0 || counted != voters {
                return None;
            }
            leaders.push(status.leader);
        }
        leaders.dedup();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Stops every member.
    pub(crate) async fn stop(mut self) {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            self.kill(id).await;
        }
    }
}

async fn bind_retrying(addr: &str) -> TcpListener {
    for _ in 0..50 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind {addr}");
}

/// Writes `key` = `key` through `client`.
pub(crate) async fn write(client: &Client, key: &str) -> Result<(), tonic::Status> {
    let record = Record {
        key: key.to_owned(),
        value: key.as_bytes().to_vec(),
        ..Record::default()
    };
    let request = client.request(WriteRequest {
        record: Some(record),
        options: None,
    });
    client.store().write(request).await.map(|_| ())
}

/// Reads `key` through `client` (stale if asked), returning its value.
pub(crate) async fn read(
    client: &Client,
    key: &str,
    stale: bool,
) -> Result<Vec<u8>, tonic::Status> {
    let request = client.request_with(
        ReadRequest {
            key: key.to_owned(),
            options: None,
        },
        stale,
    );
    let reply = client.store().read(request).await?.into_inner();
    Ok(reply
        .records
        .into_iter()
        .next()
        .map(|r| r.value)
        .unwrap_or_default())
}

/// Clients writing distinct keys until told to stop, each remembering what was
/// acknowledged and when. Failed writes are retried with new keys after a pause.
pub(crate) struct Writers {
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(String, Instant)>>>,
}

impl Writers {
    /// Starts one writer per client.
    pub(crate) fn start(clients: Vec<Client>) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = clients
            .into_iter()
            .enumerate()
            .map(|(n, client)| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        i += 1;
                        let key = format!("writer{n}-{i}");
                        match write(&client, &key).await {
                            Ok(()) => acked.push((key, Instant::now())),
                            Err(err) => {
                                tracing::warn!(%err, "write failed; retrying");
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    acked
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the writers; returns every acknowledged key with its acknowledgement time.
    pub(crate) async fn finish(self) -> Vec<(String, Instant)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut acked = Vec::new();
        for task in self.tasks {
            acked.extend(task.await.unwrap());
        }
        acked
    }
}

/// Asserts every key is readable (linearizably) through `client`.
pub(crate) async fn assert_all_readable(client: &Client, keys: &[(String, Instant)]) {
    for (key, _) in keys {
        let value = read(client, key, false)
            .await
            .unwrap_or_else(|e| panic!("acknowledged {key} lost: {e}"));
        assert_eq!(value, key.as_bytes(), "{key} has a wrong value");
    }
}

/// The applied index member `id` reports.
pub(crate) async fn applied_index(cluster: &TestCluster, id: u64) -> u64 {
    let client = cluster.anonymous(id).await;
    client
        .cluster()
        .status(StatusRequest {})
        .await
        .map(|s| s.into_inner().applied_index)
        .unwrap_or(0)
}

/// Waits until member `id` has applied at least what member `leader` has.
pub(crate) async fn wait_caught_up(cluster: &TestCluster, id: u64, leader: u64) {
    let target = applied_index(cluster, leader).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while applied_index(cluster, id).await < target {
        assert!(
            Instant::now() < deadline,
            "node {id} did not catch up to {target}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
