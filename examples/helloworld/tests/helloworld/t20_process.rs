//! The helloworld binary as its own process against a three-node cluster (in this test
//! process, memory storage): it registers through `MICRO_PROXY`, every node routes calls
//! to it (gRPC and the HTTP api), and after SIGKILL its registration expires by TTL; a registry Watch sees the
//! create and the delete.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use helloworld::pb;
use micro_cli::node::{NodeConfig, NodeDeps, RunningNode, StorageKind, start_node};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// The name the process registers under (so it cannot be confused with an in-node one).
const NAME: &str = "greeter";

pub(crate) async fn cluster() -> Vec<RunningNode> {
    let mut peer_listeners = Vec::new();
    let mut peers = BTreeMap::new();
    for id in 1..=3_u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        peers.insert(id, listener.local_addr().unwrap().to_string());
        peer_listeners.push(listener);
    }
    let mut nodes = Vec::new();
    for (id, peer_listener) in (1..=3_u64).zip(peer_listeners) {
        let config = NodeConfig {
            node_id: id,
            data_dir: std::env::temp_dir(),
            api_addr: "127.0.0.1:0".to_owned(),
            proxy_addr: "127.0.0.1:0".to_owned(),
            peer_addr: peers[&id].clone(),
            storage: StorageKind::Memory,
            peers: peers.clone(),
            join: None,
            standby: false,
            snapshot_every: 1000,
            body_limit: micro_cli::node::BODY_LIMIT_DEFAULT,
            admin_password: micro_cli::node::Secret("micro".to_owned()),
            events_retention: std::time::Duration::from_secs(3600),
            build_dir: None,
            run_as: None,
            disk_reserve: 0,
            tls: None,
            runtime: micro_cli::node::RuntimeConfig::Local,
        };
        let deps = NodeDeps {
            kv: Arc::new(micro_core::kv::MemKvBackend::new()),
            clock: Arc::new(micro_core::SystemClock),
            proxy_listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            api_listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            peer_listener,
            connector: Arc::new(micro_cluster::TcpConnector),
            seed: Some(id),
            tune_raft: None,
            builtins: micro_cli::builtins(),
            enforce_auth: true,
        };
        nodes.push(start_node(&config, deps).await.unwrap());
    }
    nodes
}

/// Starts the helloworld binary against `proxy`, re-registering every second with a
/// 3-second TTL.
fn spawn_process(proxy: &str, account: &micro::client::auth_types::Account) -> KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_helloworld"))
        .env("MICRO_PROXY", proxy)
        .env("MICRO_AUTH_ID", &account.id)
        .env("MICRO_AUTH_SECRET", &account.secret)
        .env("MICRO_SERVICE_NAME", NAME)
        .env("MICRO_REGISTER_TTL", "3")
        .env("MICRO_REGISTER_INTERVAL", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the helloworld binary");
    KillOnDrop(child)
}

/// The service process, killed when the test ends however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST path` with a JSON body to the HTTP api at `addr`, as curl does; the reply body.
async fn http_post(addr: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// Every node's HTTP api routes `/greeter/helloworld/call` to the process.
async fn answers_over_http(nodes: &[RunningNode]) {
    for node in nodes {
        let body = http_post(
            &node.api_addr.to_string(),
            // `/greeter/call` would be `Greeter.Call`: name the handler too.
            &format!("/{NAME}/helloworld/call"),
            r#"{"name":"John"}"#,
        )
        .await;
        assert_eq!(
            body, r#"{"msg":"Hello John"}"#,
            "through the HTTP api of {}",
            node.api_addr
        );
    }
}

/// The next `delete` event of `watch` (within 5 s per event).
async fn next_delete(
    watch: &mut micro::ReplyStream<micro_core::registry::WatchEvent>,
) -> micro_core::registry::WatchEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("the watch reports the expiry")
            .unwrap()
            .unwrap();
        if event.action == "delete" {
            return event;
        }
    }
}

async fn registered(client: &micro::Client) -> bool {
    client
        .registry()
        .list()
        .await
        .is_ok_and(|services| services.iter().any(|s| s.name == NAME))
}

/// The default admin's session, once the cluster has bootstrapped auth.
pub(crate) async fn admin_session(client: &micro::Client) -> micro::session::Session {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match micro::session::Session::login(client, "admin", "micro").await {
            Ok(admin) => return admin,
            Err(err) => assert!(Instant::now() < deadline, "cannot log in: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registering needs an admin or service account: the admin makes one for the process,
/// which logs in with it as the runtime's services do.
async fn service_account(client: &micro::Client) -> micro::client::auth_types::Account {
    let admin = admin_session(client).await;
    let account = client
        .clone()
        .with_session(admin)
        .auth()
        .generate("greeter-service", "", "service", &[])
        .await
        .unwrap();
    assert!(!account.secret.is_empty());
    account
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_service_registers_serves_everywhere_and_expires_after_sigkill() {
    let nodes = cluster().await;
    let clients: Vec<micro::Client> = nodes
        .iter()
        .map(|n| micro::Client::new(&n.proxy_addr.to_string()).unwrap())
        .collect();
    until("a leader", Duration::from_secs(20), || async {
        nodes[0].cluster_status().leader.is_some()
    })
    .await;
    let mut watch = clients[2].registry().watch(NAME).await.unwrap();

    let account = service_account(&clients[0]).await;
    let mut process = spawn_process(&nodes[0].proxy_addr.to_string(), &account);
    for client in &clients {
        until(
            "the process in the registry",
            Duration::from_secs(20),
            || registered(client),
        )
        .await;
        let reply: pb::CallResponse = client
            .call(
                NAME,
                "Helloworld.Call",
                &pb::CallRequest {
                    name: "John".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(reply.msg, "Hello John");
    }
    answers_over_http(&nodes).await;
    let created = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the watch reports the registration")
        .unwrap()
        .unwrap();
    assert_eq!(
        (created.action.as_str(), created.service.name.as_str()),
        ("create", NAME)
    );

    process.0.kill().unwrap();
    process.0.wait().unwrap();
    let killed_at = Instant::now();
    for client in &clients {
        until(
            "the registration to expire",
            Duration::from_secs(15),
            || async { !registered(client).await },
        )
        .await;
    }
    // TTL 3 s after the last renewal, plus at most a tick: well within the wait.
    assert!(killed_at.elapsed() < Duration::from_secs(10));
    let deleted = next_delete(&mut watch).await;
    assert_eq!(deleted.service.name, NAME);
    let err = clients[1]
        .call::<_, pb::CallResponse>(NAME, "Helloworld.Call", &pb::CallRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), micro::Code::NotFound, "{err}");
    drop((watch, clients));
    for node in nodes {
        node.shutdown().await;
    }
}
