//! Disk faults: damaged data files are refused at start with a clear error, and a full
//! disk makes writes fail cleanly and recover when space returns, keeping what was
//! stored.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use micro_checkers::history::{Outcome, ReadValue};
use micro_cli::client::Client;
use micro_core::Namespace;
use micro_proto::store::{Record, WriteRequest};

use crate::harness::{Cluster, serial};
use crate::workload::read;

/// Writes `n` keys (`k0`..) with 1 KiB values through node 0; returns a client.
async fn fill(cluster: &Cluster, n: usize) -> Client {
    let token = cluster.admin_token().await;
    let client = Client::connect(&cluster.nodes[0].proxy, Namespace::default())
        .await
        .unwrap()
        .with_token(Some(token));
    for i in 0..n {
        put(&client, &format!("k{i}")).await.unwrap();
    }
    client
}

async fn put(client: &Client, key: &str) -> Result<(), tonic::Status> {
    let record = Record {
        key: key.to_owned(),
        value: value_of(key),
        ..Record::default()
    };
    let request = client.request(WriteRequest {
        record: Some(record),
        options: None,
    });
    client.store().write(request).await.map(|_| ())
}

fn value_of(key: &str) -> Vec<u8> {
    key.repeat(1024 / key.len() + 1).into_bytes()[..1024].to_vec()
}

async fn assert_all_there(client: &Client, n: usize) {
    for i in 0..n {
        let key = format!("k{i}");
        let expected = String::from_utf8(value_of(&key)).unwrap();
        match read(client, &key).await {
            Outcome::Ok(Some(ReadValue::Found { value, .. })) => assert_eq!(value, expected),
            other => panic!("{key} lost or unreadable: {other:?}"),
        }
    }
}

/// The data directory's files whose name ends in `suffix`, largest first.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .map(|p| (std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0), p))
        .filter(|(len, _)| *len > 0)
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Overwrites 64 bytes in the middle of `file` with their complement, as a bad sector
/// or a stray write would.
fn damage(file: &Path) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let middle = f.metadata().unwrap().len() / 2;
    let mut bytes = [0u8; 64];
    f.seek(SeekFrom::Start(middle)).unwrap();
    let n = f.read(&mut bytes).unwrap();
    for b in &mut bytes[..n] {
        *b = !*b;
    }
    f.seek(SeekFrom::Start(middle)).unwrap();
    f.write_all(&bytes[..n]).unwrap();
    f.sync_all().unwrap();
}

/// Starts the damaged node and expects a refusal naming the damage, not a panic.
fn assert_refused(cluster: &mut Cluster, what: &str) {
    let err = cluster.nodes[0]
        .try_start()
        .expect_err(&format!("the node started on a damaged {what}"));
    assert!(
        err.contains("is damaged"),
        "unclear error for a damaged {what}: {err}"
    );
    assert!(
        !err.contains("panicked"),
        "panic on a damaged {what}: {err}"
    );
    println!("damaged {what}: {}", crate::harness::tail(&err, 1));
}

#[test]
fn a_damaged_log_is_refused_at_start() {
    let _turn = serial();
    let mut cluster = Cluster::local(1);
    cluster.start_all();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(fill(&cluster, 300));
    // SIGKILL: nothing is flushed, the writes live in the write-ahead log only.
    cluster.nodes[0].kill();
    let wal = files(&cluster.nodes[0].dir, ".log");
    assert!(!wal.is_empty(), "no write-ahead log in the data dir");
    damage(&wal[0]);
    assert_refused(&mut cluster, "write-ahead log");
}

#[test]
fn a_damaged_table_file_is_refused_at_start() {
    let _turn = serial();
    let mut cluster = Cluster::local(1);
    cluster.start_all();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(fill(&cluster, 300));
    drop(client);
    // SIGTERM: a graceful stop flushes the data into table (SST) files.
    cluster.nodes[0].stop();
    let tables = files(&cluster.nodes[0].dir, ".sst");
    assert!(!tables.is_empty(), "a graceful stop left no table files");
    // The restart reads them all: an undamaged directory starts.
    cluster.nodes[0].start();
    cluster.nodes[0].stop();
    let tables = files(&cluster.nodes[0].dir, ".sst");
    damage(&tables[0]);
    assert_refused(&mut cluster, "table file");
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Option<Self> {
        std::fs::create_dir_all(&at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .ok()?;
        status.success().then_some(Self(at))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the disk under `dir` with a file until the disk says "no space".
fn fill_disk(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5a_u8; 1 << 20];
    loop {
        if let Err(err) = file.write_all(&chunk) {
            assert_eq!(err.raw_os_error(), Some(28), "expected ENOSPC: {err}");
            break;
        }
    }
    path
}

/// The CLI, logged in as the admin against `proxy`.
fn micro(home: &Path, proxy: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_micro"))
        .args(["--proxy", proxy])
        .args(args)
        .env("MICRO_HOME", home)
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_refuses_writes_clearly_and_recovers_when_space_returns() {
    let _turn = serial();
    if !crate::t30_partition::is_root() {
        println!("skipped: mounting a small tmpfs for the data needs root");
        return;
    }
    let mut cluster = Cluster::local(1);
    let Some(disk) = Tmpfs::mount(cluster.root.path().join("disk"), "96m") else {
        println!("skipped: mount -t tmpfs failed here");
        return;
    };
    cluster.nodes[0].dir = disk.0.join("data");
    cluster.nodes[0]
        .extra
        .extend(["--disk-reserve".to_owned(), "16MiB".to_owned()]);
    cluster.start_all();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(fill(&cluster, 100));
    let home = tempfile::tempdir().unwrap();
    let proxy = cluster.nodes[0].proxy.clone();
    let login = micro(
        home.path(),
        &proxy,
        &["login", "--email", "admin", "--password", "micro"],
    );
    assert!(login.status.success());

    let filler = fill_disk(&disk.0);
    let refused = rt.block_on(put(&client, "late")).unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused}");
    assert!(refused.message().contains("disk full"), "{refused}");
    let cli = micro(home.path(), &proxy, &["store", "write", "late", "v"]);
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(
        !cli.status.success() && stderr.contains("disk full"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    println!("full disk: {}", stderr.trim());
    // Reads go on, and what was stored is intact.
    rt.block_on(assert_all_there(&client, 100));

    std::fs::remove_file(filler).unwrap();
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Err(err) = put(&client, "late").await {
            assert!(tokio::time::Instant::now() < deadline, "no recovery: {err}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let cli = micro(home.path(), &proxy, &["store", "write", "later", "v"]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );

    // A restart reads everything back (the start-up verification included).
    drop(client);
    cluster.nodes[0].stop();
    cluster.nodes[0].start();
    let client = rt.block_on(async {
        let token = cluster.admin_token().await;
        Client::connect(&proxy, Namespace::default())
            .await
            .unwrap()
            .with_token(Some(token))
    });
    rt.block_on(assert_all_there(&client, 100));
    cluster.nodes[0].kill();
    drop(disk);
}
