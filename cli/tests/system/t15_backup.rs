//! Backup and upgrades as an operator meets them: `micro store snapshot` of one node
//! restored into a fresh three-node cluster reads back every record; a damaged snapshot
//! restores nothing; a data directory of a newer format is refused by name.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use crate::harness::{Node, fails, ok};
use crate::t30_grpc_contract::{connect, v3};
use crate::t40_cluster::{peer_list, wait_leader};

/// (database, table) -> key -> (value, metadata, expiry seconds)
type Contents = BTreeMap<(String, String), BTreeMap<String, (Vec<u8>, Vec<(String, String)>, i64)>>;

/// 2,000 records of 1 KiB in `app/users` (over a MiB: the snapshot streams several
/// messages), a few with metadata in `app/orders`, and two from the CLI in the default
/// table, one with an expiry.
async fn fill(proxy: &str, token: &str) {
    let mut client = connect(proxy, token).await;
    for i in 0..2_010 {
        let (table, metadata) = if i < 2_000 {
            ("users", Default::default())
        } else {
            let field = v3::Field {
                r#type: "string".into(),
                value: format!("order-{i}"),
            };
            ("orders", [("ref".to_owned(), field)].into())
        };
        let record = v3::Record {
            key: format!("{table}/{i:05}"),
            value: vec![b'a' + u8::try_from(i % 26).unwrap(); 1024],
            expiry: 0,
            metadata,
        };
        let options = v3::WriteOptions {
            database: "app".into(),
            table: table.into(),
        };
        client
            .write(v3::WriteRequest {
                record: Some(record),
                options: Some(options),
            })
            .await
            .unwrap();
    }
}

/// Everything the namespace holds, read table by table.
async fn contents(node: &Node) -> Contents {
    let mut client = connect(&node.proxy, &node.token()).await;
    let mut out = Contents::new();
    for database in ["micro", "app"] {
        for table in ["micro", "users", "orders"] {
            let options = v3::ReadOptions {
                database: database.into(),
                table: table.into(),
                prefix: true,
                ..Default::default()
            };
            let read = client
                .read(v3::ReadRequest {
                    key: String::new(),
                    options: Some(options),
                })
                .await
                .unwrap()
                .into_inner();
            for r in read.records {
                let mut metadata: Vec<_> =
                    r.metadata.into_iter().map(|(k, f)| (k, f.value)).collect();
                metadata.sort();
                out.entry((database.to_owned(), table.to_owned()))
                    .or_default()
                    .insert(r.key, (r.value, metadata, r.expiry));
            }
        }
    }
    out
}

fn without_expiry(contents: &Contents) -> Contents {
    contents
        .iter()
        .map(|(table, records)| {
            let records = records
                .iter()
                .map(|(k, (v, m, e))| (k.clone(), (v.clone(), m.clone(), i64::from(*e > 0))))
                .collect();
            (table.clone(), records)
        })
        .collect()
}

#[test]
fn a_snapshot_restored_into_a_fresh_cluster_reads_back_every_record() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let source_dir = tempfile::tempdir().unwrap();
    let source = Node::start(source_dir.path());
    ok(&source.micro(&["store", "write", "greeting", "hello"]));
    ok(&source.micro(&["store", "write", "session", "abc", "--expiry", "1h"]));
    rt.block_on(fill(&source.proxy, &source.token()));
    let before = rt.block_on(contents(&source));
    assert_eq!(before.values().map(BTreeMap::len).sum::<usize>(), 2_012);

    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("micro.snap");
    let location = format!("file://{}", file.display());
    let said = ok(&source.micro(&["store", "snapshot", "--destination", &location]));
    assert!(said.contains("2012 records"), "{said}");
    let one_db = files.path().join("app.snap");
    let said = ok(&source.micro(&[
        "store",
        "snapshot",
        "--destination",
        one_db.to_str().unwrap(),
        "--database",
        "app",
    ]));
    assert!(said.contains("2010 records"), "{said}");
    drop(source);

    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let peers = peer_list();
    let nodes: Vec<Node> = (0..3)
        .map(|i| {
            let id = (i + 1).to_string();
            Node::start_with(dirs[i].path(), &["--node-id", &id, "--peers", &peers])
        })
        .collect();
    wait_leader(&nodes[0]);

    // A damaged file is refused before a single record is written.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    let damaged = files.path().join("damaged.snap");
    std::fs::write(&damaged, bytes).unwrap();
    let err = fails(
        &nodes[1].micro(&["store", "restore", "--source", damaged.to_str().unwrap()]),
        128,
    );
    assert!(
        err.contains("checksum") && err.contains("nothing was restored"),
        "{err}"
    );
    assert_eq!(ok(&nodes[1].micro(&["store", "databases"])), "");

    // Through a follower or the leader alike: the CLI talks to any node.
    let said = ok(&nodes[1].micro(&["store", "restore", "--source", &location]));
    assert!(said.contains("restored 2012 records"), "{said}");
    let after = rt.block_on(contents(&nodes[2]));
    assert_eq!(without_expiry(&after), without_expiry(&before));
    let session = &after[&("micro".to_owned(), "micro".to_owned())]["session"];
    assert!((3_500..=3_600).contains(&session.2), "expiry {}", session.2);
    // Restoring again changes nothing: every write replaces its record.
    ok(&nodes[0].micro(&["store", "restore", "--source", one_db.to_str().unwrap()]));
    assert_eq!(
        without_expiry(&rt.block_on(contents(&nodes[0]))),
        without_expiry(&before)
    );
}

#[test]
fn bad_locations_and_files_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let err = fails(
        &node.micro(&["store", "snapshot", "--destination", "s3://bucket/x"]),
        64,
    );
    assert!(err.contains("only file://"), "{err}");
    let files = tempfile::tempdir().unwrap();
    let missing = files.path().join("missing.snap");
    let err = fails(
        &node.micro(&["store", "restore", "--source", missing.to_str().unwrap()]),
        128,
    );
    assert!(
        err.contains("cannot read") && err.lines().count() == 1,
        "{err}"
    );
    let newer = files.path().join("newer.snap");
    std::fs::write(&newer, b"micro-store-snapshot 7\n{}\n\0\0\0\0").unwrap();
    let err = fails(
        &node.micro(&["store", "restore", "--source", newer.to_str().unwrap()]),
        128,
    );
    assert!(err.contains("format 7 is newer"), "{err}");
}

#[test]
fn a_data_dir_of_a_newer_format_is_refused_by_name_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    {
        let node = Node::start(&data);
        ok(&node.micro(&["store", "write", "kept", "yes"]));
    }
    let newer = micro_core::kv::format::DATA_FORMAT + 1;
    {
        let kv = micro_cluster::RocksKvBackend::open(&data).unwrap();
        micro_core::kv::format::stamp(&kv, newer).unwrap();
    }
    let output = Command::new(env!("CARGO_BIN_EXE_micro-node"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["--proxy-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"])
        .args(["--peer-addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started on format {newer}: {err}");
    assert!(
        err.contains(&format!("format {newer}")) && err.contains("newer release"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Still the newer release's data: set the stamp back, and the record is there.
    {
        let kv = micro_cluster::RocksKvBackend::open(&data).unwrap();
        micro_core::kv::format::stamp(&kv, micro_core::kv::format::DATA_FORMAT).unwrap();
    }
    let node = Node::start(&data);
    assert_eq!(ok(&node.micro(&["store", "read", "kept"])), "yes\n");
}

/// Runs `micro-node restore` with `args`.
fn restore_node(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_micro-node"))
        .arg("restore")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_whole_node_snapshot_rebuilds_the_cluster_as_it_was() {
    let peers = peer_list();
    let start_all = |dirs: &[tempfile::TempDir]| -> Vec<Node> {
        (0..3)
            .map(|i| {
                let id = (i + 1).to_string();
                Node::start_with(dirs[i].path(), &["--node-id", &id, "--peers", &peers])
            })
            .collect()
    };
    let old_dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let old = start_all(&old_dirs);
    wait_leader(&old[0]);
    ok(&old[0].micro(&["store", "write", "kept", "yes"]));
    ok(&old[0].micro(&[
        "store",
        "write",
        "row",
        "1",
        "--database",
        "app",
        "--table",
        "t",
    ]));
    ok(&old[1].micro(&["config", "set", "feature.flag", "true"]));
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("node.snap");
    // From a follower or the leader alike: each member holds the whole state.
    let said = ok(&old[2].micro(&[
        "cluster",
        "snapshot",
        "--destination",
        file.to_str().unwrap(),
    ]));
    assert!(said.contains("snapshot of node 3"), "{said}");
    ok(&old[0].micro(&["store", "write", "later", "not in the snapshot"]));
    drop(old);

    let new_dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    refusals(&file, &new_dirs[0].path().join("data"), old_dirs[0].path());
    restore_all(&file, &new_dirs);
    let new = start_all(&new_dirs);
    wait_leader(&new[1]);
    assert_eq!(ok(&new[1].micro(&["store", "read", "kept"])), "yes\n");
    assert_eq!(
        ok(&new[2].micro(&["store", "read", "row", "--database", "app", "--table", "t"])),
        "1\n"
    );
    assert_eq!(
        ok(&new[0].micro(&["config", "get", "feature.flag"])).trim(),
        "true"
    );
    fails(&new[0].micro(&["store", "read", "later"]), 127);
    // And the restored cluster takes writes.
    ok(&new[0].micro(&["store", "write", "after-restore", "ok"]));
    assert_eq!(
        ok(&new[2].micro(&["store", "read", "after-restore"])),
        "ok\n"
    );
}

/// A damaged file, or an occupied directory: refused, nothing written.
fn refusals(file: &std::path::Path, target: &std::path::Path, occupied_dir: &std::path::Path) {
    let mut damaged = std::fs::read(file).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    let bad = file.with_extension("bad");
    std::fs::write(&bad, damaged).unwrap();
    let bad_run = restore_node(&[
        "--source",
        bad.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&bad_run.stderr);
    assert!(
        !bad_run.status.success() && err.contains("checksum"),
        "{err}"
    );
    assert!(
        !target.exists(),
        "a refused restore made {}",
        target.display()
    );
    let occupied = restore_node(&[
        "--source",
        file.to_str().unwrap(),
        "--data-dir",
        occupied_dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&occupied.stderr);
    assert!(
        !occupied.status.success() && err.contains("not empty"),
        "{err}"
    );
}

/// Restores one directory per member from `file`, each with its own id.
fn restore_all(file: &std::path::Path, dirs: &[tempfile::TempDir]) {
    for (i, dir) in dirs.iter().enumerate() {
        let id = (i + 1).to_string();
        let out = restore_node(&[
            "--source",
            file.to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--node-id",
            &id,
        ]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.contains(&format!("restored node {id}"))
                && said.contains("--node-id 3 --peer-addr"),
            "{said}"
        );
    }
}
