//! TLS: certificates from `micro-node certs`, a two-node cluster joined over mutual TLS, a
//! node (and raw clients) without a certificate from the cluster CA kept off the peer
//! port, and the CLI and the HTTP API over TLS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Node, fails, micro_in, ok};

/// Runs `micro-node certs ARGS` and checks it succeeded.
fn certs(args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_micro-node"))
        .arg("certs")
        .args(args)
        .output()
        .unwrap();
    ok(&output);
}

/// A CA in `dir` and certificates for `names` signed by it.
fn make_ca(dir: &Path, names: &[&str]) {
    let dir_text = dir.to_str().unwrap();
    certs(&["init", "--dir", dir_text]);
    for name in names {
        certs(&["issue", name, "--dir", dir_text]);
    }
}

/// The `--tls-*` flags of node `name` in `dir`.
fn tls_flags(dir: &Path, name: &str) -> Vec<String> {
    let file = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    vec![
        "--tls-cert".to_owned(),
        file(&format!("{name}.crt")),
        "--tls-key".to_owned(),
        file(&format!("{name}.key")),
        "--tls-ca".to_owned(),
        file("ca.crt"),
    ]
}

fn start(data: &Path, dir: &Path, name: &str, extra: &[&str]) -> Node {
    let mut flags: Vec<String> = vec!["--peer-addr".to_owned(), "127.0.0.1:0".to_owned()];
    flags.extend(extra.iter().map(|s| (*s).to_owned()));
    flags.extend(tls_flags(dir, name));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Node::start_with(data, &flags)
}

/// The CLI against a TLS proxy, trusting `ca`, with its own home.
struct TlsCli {
    home: tempfile::TempDir,
    proxy: String,
    ca: PathBuf,
}

impl TlsCli {
    fn new(proxy: &str, ca: &Path) -> Self {
        let cli = Self {
            home: tempfile::tempdir().unwrap(),
            proxy: proxy.to_owned(),
            ca: ca.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let login = cli.run(&["login", "--email", "admin", "--password", "micro"]);
            if login.status.success() {
                return cli;
            }
            assert!(
                Instant::now() < deadline,
                "cannot log in over TLS: {login:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let global = [
            "--proxy",
            &self.proxy,
            "--proxy-ca",
            self.ca.to_str().unwrap(),
        ];
        micro_in(self.home.path(), &global, args)
    }
}

/// Members of the cluster as `cli`'s node sees them.
fn member_ids(cli: &TlsCli) -> Vec<u64> {
    let status: serde_json::Value =
        serde_json::from_str(&ok(&cli.run(&["cluster", "status", "--output", "json"]))).unwrap();
    let mut ids: Vec<u64> = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

/// Calls the peer service's `Vote` at `peer` with an empty payload, over TLS trusting
/// `ca` and presenting `identity` (cert, key) if given: `Ok(code)` when the node
/// answered (whatever it answered), `Err` when the connection was refused.
async fn raw_vote(
    peer: &str,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<tonic::Code, String> {
    let mut tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(ca).unwrap()),
    );
    if let Some((cert, key)) = identity {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ));
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{peer}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut client = micro_proto::peer::peer_client::PeerClient::new(channel);
    match client.vote(micro_proto::peer::Payload::default()).await {
        Ok(_) => Ok(tonic::Code::Ok),
        // The node's own answer to a bad payload; a transport failure is Unknown or
        // Unavailable with no answer from the service.
        Err(status) if status.code() == tonic::Code::InvalidArgument => Ok(status.code()),
        Err(status) => Err(format!("{status:?}")),
    }
}

#[test]
fn only_nodes_with_a_certificate_from_the_cluster_ca_join() {
    let certs_dir = tempfile::tempdir().unwrap();
    let rogue_dir = tempfile::tempdir().unwrap();
    make_ca(certs_dir.path(), &["node1", "node2"]);
    make_ca(rogue_dir.path(), &["rogue"]);
    let ca = certs_dir.path().join("ca.crt");
    let data: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();

    let node1 = start(data[0].path(), certs_dir.path(), "node1", &[]);
    let cli = TlsCli::new(&node1.proxy, &ca);
    let node2 = start(
        data[1].path(),
        certs_dir.path(),
        "node2",
        &["--node-id", "2", "--join", &node1.peer],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while member_ids(&cli) != [1, 2] {
        assert!(Instant::now() < deadline, "node 2 did not join over TLS");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A write through node 2 reaches the leader over the mutual-TLS peer port (retried
    // while node 2 catches up: until then the pair has no quorum).
    let cli2 = TlsCli::new(&node2.proxy, &ca);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let write = cli2.run(&["store", "write", "greeting", "over tls"]);
        if write.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no write through node 2: {write:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        ok(&cli.run(&["store", "read", "greeting"])).trim(),
        "over tls"
    );

    // A node whose certificate another CA signed cannot join.
    let _rogue = start(
        data[2].path(),
        rogue_dir.path(),
        "rogue",
        &["--node-id", "3", "--join", &node1.peer],
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(member_ids(&cli), [1, 2], "a node from another CA joined");

    only_members_reach_the_peer_port(&node1.peer, certs_dir.path(), rogue_dir.path());
    drop(node2);
}

/// A raw client cannot speak Raft to the peer port at `peer` without a certificate from
/// the CA in `certs`, even one that trusts the node's own certificate; a member's
/// certificate gets an answer.
fn only_members_reach_the_peer_port(peer: &str, certs: &Path, rogue: &Path) {
    let ca = certs.join("ca.crt");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cert = |dir: &Path, name: &str| {
        (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        )
    };
    let (good_cert, good_key) = cert(certs, "node2");
    let (bad_cert, bad_key) = cert(rogue, "rogue");
    let member = rt.block_on(raw_vote(peer, &ca, Some((&good_cert, &good_key))));
    assert_eq!(
        member,
        Ok(tonic::Code::InvalidArgument),
        "a member's certificate is let in"
    );
    let anonymous = rt.block_on(raw_vote(peer, &ca, None));
    assert!(
        anonymous.is_err(),
        "no certificate got through: {anonymous:?}"
    );
    let stranger = rt.block_on(raw_vote(peer, &ca, Some((&bad_cert, &bad_key))));
    assert!(
        stranger.is_err(),
        "a foreign certificate got through: {stranger:?}"
    );
    // Plaintext gets nowhere either.
    let plain = rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{peer}"))
            .unwrap()
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        micro_proto::peer::peer_client::PeerClient::new(channel)
            .vote(micro_proto::peer::Payload::default())
            .await
    });
    assert!(plain.is_err(), "plaintext got an answer: {plain:?}");
}

#[test]
fn the_cli_and_the_http_api_speak_tls() {
    let certs_dir = tempfile::tempdir().unwrap();
    make_ca(certs_dir.path(), &["node1"]);
    let ca = certs_dir.path().join("ca.crt");
    let data = tempfile::tempdir().unwrap();
    let node = start(data.path(), certs_dir.path(), "node1", &[]);
    let cli = TlsCli::new(&node.proxy, &ca);
    ok(&cli.run(&["store", "write", "k", "v"]));
    assert_eq!(ok(&cli.run(&["store", "read", "k"])).trim(), "v");

    // Without the CA the CLI says what is missing, and exits 4 (unreachable).
    let plain = micro_in(
        cli.home.path(),
        &["--proxy", &node.proxy],
        &["store", "read", "k"],
    );
    let err = fails(&plain, 4);
    assert!(err.contains("--proxy-ca"), "{err}");

    // An environment remembers the CA.
    let home = cli.home.path();
    let add = [
        "env",
        "add",
        "secure",
        &node.proxy,
        "--ca",
        ca.to_str().unwrap(),
    ];
    ok(&micro_in(home, &[], &add));
    assert_eq!(
        ok(&micro_in(
            home,
            &["--env", "secure"],
            &["store", "read", "k"]
        ))
        .trim(),
        "v"
    );

    // The HTTP API: health, and a routed call (to the store, through the node's own
    // TLS proxy) with the admin's token.
    let token = ok(&cli.run(&["user", "token"])).trim().to_owned();
    let (status, _) = https(&node.api, &ca, "GET", "/health", &[], b"");
    assert_eq!(status, 200);
    let auth = format!("Bearer {token}");
    let (status, body) = https(
        &node.api,
        &ca,
        "POST",
        "/store/read",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"key":"k"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"key\":\"k\""), "{body}");
    // Plain HTTP to the TLS port is refused, not served.
    let (status, _) = crate::harness::http_raw(&node.api, "GET", "/health", &[], b"");
    assert_ne!(status, 200);
}

/// One HTTP/1.1 request over TLS to `addr`, trusting `ca`: the status and the body.
fn https(
    addr: &str,
    ca: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let host = addr.rsplit_once(':').unwrap().0.to_owned();
    let name = rustls::pki_types::ServerName::try_from(host).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    stream
        .write_all(&crate::harness::http_request(
            addr, method, path, headers, body,
        ))
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let (status, text) = crate::harness::http_status(&response);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
