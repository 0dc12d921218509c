//! openraft's own storage conformance suite, run against every backend, plus the
//! behaviour of a single-member `RaftNode` on them.

// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use micro_cluster::{
    Flusher, KvLogStore, KvStateMachine, RaftNode, RaftNodeConfig, TcpConnector, TypeConfig,
};
use micro_core::kv::{KvBackend, MemKvBackend};
use micro_core::replicator::Replicator;
use micro_core::state::{Command, Response};
use micro_core::store::{ReadQuery, Record, TablePath};
use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};

type MakeKv = fn() -> (Option<tempfile::TempDir>, Arc<dyn KvBackend>);

struct Builder(MakeKv);

impl StoreBuilder<TypeConfig, KvLogStore, KvStateMachine, Option<tempfile::TempDir>> for Builder {
    async fn build(
        &self,
    ) -> Result<(Option<tempfile::TempDir>, KvLogStore, KvStateMachine), StorageError<u64>> {
        let (guard, kv) = (self.0)();
        let flusher = Flusher::spawn(kv.clone());
        Ok((
            guard,
            KvLogStore::new(kv.clone(), flusher.clone()),
            KvStateMachine::new(kv, flusher),
        ))
    }
}

fn mem() -> (Option<tempfile::TempDir>, Arc<dyn KvBackend>) {
    (None, Arc::new(MemKvBackend::new()))
}

#[test]
fn memory_storage_passes_openraft_suite() {
    Suite::test_all(Builder(mem)).unwrap();
}

#[cfg(feature = "rocksdb")]
fn rocks() -> (Option<tempfile::TempDir>, Arc<dyn KvBackend>) {
    let dir = tempfile::tempdir().unwrap();
    let kv = micro_cluster::RocksKvBackend::open(dir.path()).unwrap();
    (Some(dir), Arc::new(kv))
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_storage_passes_openraft_suite() {
    Suite::test_all(Builder(rocks)).unwrap();
}

fn put(key: &str) -> Command {
    let path = TablePath::resolve(Default::default(), "", "").unwrap();
    Command::StorePut {
        path,
        record: Record {
            key: key.into(),
            value: b"v".to_vec(),
            ..Record::default()
        },
    }
}

#[tokio::test]
async fn a_single_member_recovers_acknowledged_writes_after_a_crash() {
    let kv = Arc::new(MemKvBackend::new());
    let clock = Arc::new(micro_core::SystemClock);
    let mut config = RaftNodeConfig::single(1, "127.0.0.1:1");
    config.snapshot_logs_since_last = 50;
    let node = start(config.clone(), kv.clone(), clock.clone()).await;
    for i in 0..120 {
        assert_eq!(
            node.propose(put(&format!("k{i}"))).await.unwrap(),
            Response::Done
        );
    }
    node.shutdown().await;
    // Everything acknowledged was synced; a crash loses only what was not.
    kv.crash();
    let node = start(config, kv.clone(), clock).await;
    node.read_barrier().await.unwrap();
    let path = TablePath::resolve(Default::default(), "", "").unwrap();
    for i in 0..120 {
        let query = ReadQuery {
            key: format!("k{i}"),
            ..ReadQuery::default()
        };
        assert!(node.reader().store_read(&path, &query).is_ok(), "k{i} lost");
    }
    let status = node.status();
    assert_eq!((status.leader, status.members.len()), (Some(1), 1));
    assert!(status.applied_index >= 120);
    node.shutdown().await;
}

async fn start(
    config: RaftNodeConfig,
    kv: Arc<MemKvBackend>,
    clock: Arc<micro_core::SystemClock>,
) -> RaftNode {
    let node = RaftNode::start(config, kv, clock, Arc::new(TcpConnector))
        .await
        .unwrap();
    node.bootstrap().await.unwrap();
    node
}

#[tokio::test]
async fn a_corrupt_log_entry_is_refused_with_a_clear_error() {
    let kv = Arc::new(MemKvBackend::new());
    let clock = Arc::new(micro_core::SystemClock);
    let config = RaftNodeConfig::single(1, "127.0.0.1:1");
    let node = start(config.clone(), kv.clone(), clock.clone()).await;
    node.propose(put("k")).await.unwrap();
    node.shutdown().await;

    tracing::info!("flip one bit of the last log entry, as a bad disk would");
    let mut last = None;
    let all = micro_core::kv::KeyRange::prefix(b"");
    kv.scan(
        micro_core::kv::Space::Log,
        &all,
        micro_core::kv::ScanOrder::Desc,
        &mut |k, v| {
            last = Some((k.to_vec(), v.to_vec()));
            false
        },
    )
    .unwrap();
    let (key, mut value) = last.unwrap();
    let end = value.len() - 1;
    value[end] ^= 0x01;
    let mut batch = micro_core::kv::WriteBatch::default();
    batch.put(micro_core::kv::Space::Log, key, value);
    kv.write(batch).unwrap();

    let connector = Arc::new(micro_cluster::TcpConnector);
    let err = match RaftNode::start(config, kv, clock, connector).await {
        Ok(node) => node.bootstrap().await.unwrap_err(),
        Err(err) => err,
    };
    assert!(err.to_string().contains("corrupt"), "{err}");
}
