//! `micro bench store` against an in-process node on memory storage: no request fails
//! and every key the write phase wrote reads back with its value.

use std::sync::Arc;

use micro_cli::client::Client;
use micro_cli::commands::bench::{Phase, StoreBenchOptions, bench_store};
use micro_cli::node::{
    NodeArgs, NodeConfig, NodeDeps, RunningNode, StorageKind, bind, open_storage, start_node,
};
use micro_core::Namespace;
use micro_proto::store as pb;

const REQUESTS: usize = 50;

/// Starts a one-node cluster on memory storage and connects a client to its proxy.
async fn start() -> (tempfile::TempDir, RunningNode, Client) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = NodeConfig::resolve(NodeArgs {
        storage: Some(StorageKind::Memory),
        data_dir: Some(dir.path().to_path_buf()),
        ..NodeArgs::default()
    })
    .expect("config");
    let deps = NodeDeps {
        kv: open_storage(&config).expect("memory storage"),
        clock: Arc::new(micro_core::SystemClock),
        proxy_listener: bind("--proxy-addr", "127.0.0.1:0").await.expect("bind"),
        api_listener: bind("--api-addr", "127.0.0.1:0").await.expect("bind"),
        peer_listener: bind("--peer-addr", "127.0.0.1:0").await.expect("bind"),
        connector: Arc::new(micro_cluster::TcpConnector),
        seed: Some(7),
        tune_raft: None,
        builtins: micro_cli::builtins(),
        enforce_auth: true,
    };
    let node = start_node(&config, deps).await.expect("start the node");
    let namespace = Namespace::new("micro").expect("a valid namespace");
    let client = Client::connect(&node.proxy_addr.to_string(), namespace)
        .await
        .expect("connect to the proxy");
    // The store is for admins: log in once auth is bootstrapped (a moment after start).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let client = loop {
        match client.clone().logged_in("admin", "micro").await {
            Ok(client) => break client,
            Err(err) if tokio::time::Instant::now() > deadline => panic!("cannot log in: {err}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    };
    (dir, node, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_store_writes_then_reads_every_key() {
    let (_dir, node, client) = start().await;

    tracing::info!("bench at concurrency 1 and 4");
    let options = StoreBenchOptions {
        requests: REQUESTS,
        concurrency: vec![1, 4],
        value_size: 64,
    };
    let report = bench_store(&client, &options).await.unwrap();
    assert_eq!(report.first_error, None);
    assert_eq!(report.levels.len(), 2);
    for (level, concurrency) in report.levels.iter().zip([1, 4]) {
        assert_eq!(level.concurrency, concurrency);
        for (stats, phase) in [(&level.write, Phase::Write), (&level.read, Phase::Read)] {
            assert_eq!((stats.phase, stats.errors), (phase, 0));
            assert_eq!(stats.latencies.len(), REQUESTS);
            assert!(stats.latencies.is_sorted());
            assert!(stats.percentile_ms(50) <= stats.percentile_ms(99));
        }
    }

    tracing::info!("every key written reads back, outside the benchmark too");
    let mut store = client.store();
    for level in &report.levels {
        for i in 0..REQUESTS {
            let key = format!("{}{i}", level.key_prefix);
            let reply = store
                .read(client.request(pb::ReadRequest {
                    key: key.clone(),
                    options: None,
                }))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(reply.records.len(), 1, "{key}");
            assert_eq!(reply.records[0].value.len(), options.value_size, "{key}");
        }
    }
    node.shutdown().await;
}

#[tokio::test]
async fn bad_options_are_usage_errors() {
    let (_dir, node, client) = start().await;
    for (requests, concurrency) in [(0, vec![1]), (1, vec![]), (1, vec![1, 0])] {
        let options = StoreBenchOptions {
            requests,
            concurrency,
            value_size: 1,
        };
        let err = bench_store(&client, &options).await.unwrap_err();
        assert_eq!(err.code, micro_cli::exit::USAGE);
    }
    node.shutdown().await;
}
