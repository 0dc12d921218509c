//! The framework's config client against a three-node cluster: typed getters, merges,
//! secrets, and a missing path that reads as "not there" rather than an error.

use std::time::Duration;

use crate::t20_process::{admin_session, cluster};

#[derive(Debug, PartialEq, serde::Deserialize)]
struct Db {
    host: String,
    port: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_client_reads_what_another_node_wrote() {
    let nodes = cluster().await;
    let writer = micro::Client::new(&nodes[0].proxy_addr.to_string()).unwrap();
    let admin = admin_session(&writer).await;
    let writer = writer.with_session(admin.clone()).config();
    let reader = micro::Client::new(&nodes[2].proxy_addr.to_string())
        .unwrap()
        .with_session(admin)
        .config();

    let db = serde_json::json!({"host": "x", "port": 5432});
    writer.set("app.db", &db).await.unwrap();
    writer.set("app.db.timeout", &"5s").await.unwrap();
    writer.set_secret("app.db.password", &"pw").await.unwrap();

    assert_eq!(reader.get("app.db.port").await.unwrap().int(0), 5432);
    let timeout = reader.get("app.db.timeout").await.unwrap();
    assert_eq!(timeout.duration(Duration::ZERO), Duration::from_secs(5));
    let password = reader.get("app.db.password").await.unwrap();
    assert_eq!(password.string(""), "[secret]");
    let password = reader.get_secret("app.db.password").await.unwrap();
    assert_eq!(password.string(""), "pw");
    let scanned: Db = reader.get("app.db").await.unwrap().scan().unwrap();
    assert_eq!(
        scanned,
        Db {
            host: "x".into(),
            port: 5432
        }
    );

    let missing = reader.get("app.nothing").await.unwrap();
    assert!(!missing.exists());
    assert_eq!(missing.string("fallback"), "fallback");
    writer.delete("app").await.unwrap();
    assert!(!reader.get("app.db").await.unwrap().exists());
    for node in nodes {
        node.shutdown().await;
    }
}
