//! Config through the CLI and HTTP on a three-node cluster: merges, secrets, isolation
//! between namespaces, and bad input.

use crate::harness::{fails, http, ok};
use crate::t50_services::start_cluster;

#[test]
fn config_merges_reads_the_same_everywhere_and_keeps_secrets_sealed() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = start_cluster(&dirs);
    let first = &nodes[0];
    ok(&first.micro(&["config", "set", "app.db", r#"{"host":"x","port":5432}"#]));
    ok(&first.micro(&["config", "set", "app.db.user", "u"]));
    ok(&first.micro(&[
        "config",
        "set",
        "app.db.password",
        "hunter2-secret",
        "--secret",
    ]));
    let expected = serde_json::json!({"host":"x","port":5432,"user":"u","password":"[secret]"});
    for node in &nodes {
        let got: serde_json::Value =
            serde_json::from_str(&ok(&node.micro(&["config", "get", "app.db"]))).unwrap();
        assert_eq!(got, expected, "through {}", node.proxy);
        // A string prints alone; a secret only when asked for.
        assert_eq!(ok(&node.micro(&["config", "get", "app.db.host"])), "x\n");
        assert_eq!(
            ok(&node.micro(&["config", "get", "app.db.password", "--secret"])),
            "hunter2-secret\n"
        );
    }
    // Never in clear on disk, on any node.
    for dir in &dirs {
        crate::t60_auth::node_files_never_hold(dir.path(), "hunter2-secret");
    }
    // Namespaces do not share config; deletes take subtrees.
    fails(
        &first.micro_with(&["--namespace", "other"], &["config", "get", "app"]),
        127,
    );
    ok(&first.micro(&["config", "del", "app.db"]));
    fails(&first.micro(&["config", "get", "app.db"]), 127);
    // Bad input: clear errors, nothing stored.
    let err = fails(&first.micro(&["config", "set", "a..b", "1"]), 127);
    assert!(err.contains("dot-separated"), "{err}");
    let bearer = format!("Bearer {}", first.token());
    let admin = [("authorization", bearer.as_str())];
    let bad = br#"{"path":"app","value":{"data":"{not json"}}"#;
    let (status, body) = http(&first.api, "POST", "/config/set", &admin, bad);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not valid JSON"), "{body}");
    // Config is for admins only.
    let (status, _) = http(&first.api, "POST", "/config/get", &[], br#"{"path":"app"}"#);
    assert_eq!(status, 401);
}
