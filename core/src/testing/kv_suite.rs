//! The [`crate::kv::KvBackend`] conformance suite.

use crate::kv::{KeyRange, KvBackend, ScanOrder, Space, WriteBatch};

fn put(kv: &dyn KvBackend, space: Space, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::default();
    batch.put(space, key.to_vec(), value.to_vec());
    kv.write(batch).expect("write");
}

fn keys(kv: &dyn KvBackend, space: Space, range: &KeyRange, order: ScanOrder) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    kv.scan(space, range, order, &mut |k, _| {
        out.push(k.to_vec());
        true
    })
    .expect("scan");
    out
}

/// Runs every behavioural check of the `KvBackend` contract against fresh backends made
/// by `make`. Panics on the first violation.
///
/// ```
/// micro_core::testing::kv_backend_suite(micro_core::kv::MemKvBackend::new);
/// ```
pub fn kv_backend_suite<B: KvBackend>(make: impl Fn() -> B) {
    get_put_delete(&make());
    spaces_are_isolated(&make());
    scans_respect_range_order_and_stop(&make());
    delete_range_removes_half_open_range(&make());
    batches_apply_in_order(&make());
    sync_keeps_everything_readable(&make());
}

/// Checks that a crash keeps exactly a prefix of the written batches that includes every
/// synced one. `crash` simulates the crash in place.
pub fn kv_backend_crash_suite<B: KvBackend>(make: impl Fn() -> B, crash: impl Fn(&B)) {
    let kv = make();
    put(&kv, Space::Store, b"a", b"1");
    kv.sync().expect("sync");
    put(&kv, Space::Store, b"b", b"2");
    crash(&kv);
    assert_eq!(
        kv.get(Space::Store, b"a").expect("get"),
        Some(b"1".to_vec())
    );
    assert_eq!(
        kv.get(Space::Store, b"b").expect("get"),
        None,
        "unsynced write survived"
    );
    put(&kv, Space::Store, b"c", b"3");
    kv.sync().expect("sync");
    crash(&kv);
    assert_eq!(
        kv.get(Space::Store, b"c").expect("get"),
        Some(b"3".to_vec())
    );
}

fn get_put_delete(kv: &dyn KvBackend) {
    assert_eq!(kv.get(Space::Store, b"k").expect("get"), None);
    put(kv, Space::Store, b"k", b"v1");
    put(kv, Space::Store, b"k", b"v2");
    assert_eq!(
        kv.get(Space::Store, b"k").expect("get"),
        Some(b"v2".to_vec())
    );
    let mut batch = WriteBatch::default();
    batch.delete(Space::Store, b"k".to_vec());
    batch.delete(Space::Store, b"missing".to_vec());
    kv.write(batch).expect("write");
    assert_eq!(kv.get(Space::Store, b"k").expect("get"), None);
    put(kv, Space::Store, b"empty", b"");
    assert_eq!(
        kv.get(Space::Store, b"empty").expect("get"),
        Some(Vec::new())
    );
}

fn spaces_are_isolated(kv: &dyn KvBackend) {
    put(kv, Space::Store, b"k", b"store");
    put(kv, Space::Meta, b"k", b"meta");
    assert_eq!(
        kv.get(Space::Store, b"k").expect("get"),
        Some(b"store".to_vec())
    );
    assert_eq!(
        kv.get(Space::Meta, b"k").expect("get"),
        Some(b"meta".to_vec())
    );
    assert_eq!(
        keys(kv, Space::Log, &KeyRange::prefix(b""), ScanOrder::Asc).len(),
        0
    );
}

fn scans_respect_range_order_and_stop(kv: &dyn KvBackend) {
    for key in [&b"a1"[..], b"a2", b"a3", b"b1", b"\xff\xff"] {
        put(kv, Space::Store, key, b"x");
    }
    let asc = keys(kv, Space::Store, &KeyRange::prefix(b"a"), ScanOrder::Asc);
    assert_eq!(asc, vec![b"a1".to_vec(), b"a2".to_vec(), b"a3".to_vec()]);
    let desc = keys(kv, Space::Store, &KeyRange::prefix(b"a"), ScanOrder::Desc);
    assert_eq!(desc, vec![b"a3".to_vec(), b"a2".to_vec(), b"a1".to_vec()]);
    let all = keys(kv, Space::Store, &KeyRange::prefix(b""), ScanOrder::Asc);
    assert_eq!(all.len(), 5);
    assert_eq!(all.last(), Some(&b"\xff\xff".to_vec()));
    let top = keys(
        kv,
        Space::Store,
        &KeyRange::prefix(b"\xff"),
        ScanOrder::Desc,
    );
    assert_eq!(top, vec![b"\xff\xff".to_vec()]);
    let mut seen = 0;
    kv.scan(
        Space::Store,
        &KeyRange::prefix(b""),
        ScanOrder::Asc,
        &mut |_, _| {
            seen += 1;
            seen < 2
        },
    )
    .expect("scan");
    assert_eq!(seen, 2, "scan must stop when the visitor returns false");
    let range = KeyRange {
        start: b"a2".to_vec(),
        end: Some(b"b1".to_vec()),
    };
    let mid = keys(kv, Space::Store, &range, ScanOrder::Asc);
    assert_eq!(mid, vec![b"a2".to_vec(), b"a3".to_vec()]);
}

fn delete_range_removes_half_open_range(kv: &dyn KvBackend) {
    for i in 0u64..10 {
        put(kv, Space::Log, &i.to_be_bytes(), b"e");
    }
    let mut batch = WriteBatch::default();
    batch.delete_range(
        Space::Log,
        2u64.to_be_bytes().to_vec(),
        5u64.to_be_bytes().to_vec(),
    );
    kv.write(batch).expect("write");
    let left = keys(kv, Space::Log, &KeyRange::prefix(b""), ScanOrder::Asc);
    let left: Vec<u64> = left
        .iter()
        .map(|k| u64::from_be_bytes(k.as_slice().try_into().expect("8 bytes")))
        .collect();
    assert_eq!(left, vec![0, 1, 5, 6, 7, 8, 9]);
}

fn batches_apply_in_order(kv: &dyn KvBackend) {
    let mut batch = WriteBatch::default();
    batch.put(Space::Store, b"o".to_vec(), b"1".to_vec());
    batch.delete(Space::Store, b"o".to_vec());
    batch.put(Space::Store, b"o".to_vec(), b"3".to_vec());
    kv.write(batch).expect("write");
    assert_eq!(
        kv.get(Space::Store, b"o").expect("get"),
        Some(b"3".to_vec())
    );
}

fn sync_keeps_everything_readable(kv: &dyn KvBackend) {
    put(kv, Space::Raft, b"vote", b"1");
    kv.sync().expect("sync");
    kv.sync().expect("a second sync with nothing new");
    assert_eq!(
        kv.get(Space::Raft, b"vote").expect("get"),
        Some(b"1".to_vec())
    );
}
