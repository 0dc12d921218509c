use std::sync::Arc;

use super::*;
use crate::kv::MemKvBackend;
use crate::state::{Command, Request, Response, apply};

struct Fixture {
    kv: Arc<MemKvBackend>,
    reader: StateReader,
}

impl Fixture {
    fn new() -> Self {
        let kv = Arc::new(MemKvBackend::new());
        Self {
            reader: StateReader::new(kv.clone()),
            kv,
        }
    }

    fn run(&self, at_ms: u64, command: Command) -> Response {
        let applied = apply(self.kv.as_ref(), &Request { at_ms, command }).unwrap();
        self.kv.write(applied.batch).unwrap();
        applied.response
    }

    fn put(&self, at_ms: u64, path: &TablePath, key: &str, ttl: Option<u64>) {
        let record = Record {
            key: key.to_owned(),
            value: key.as_bytes().to_vec(),
            expiry_secs: ttl,
            ..Record::default()
        };
        self.run(
            at_ms,
            Command::StorePut {
                path: path.clone(),
                record,
            },
        );
    }
}

fn path(ns: &str, db: &str, table: &str) -> TablePath {
    TablePath::resolve(Namespace::new(ns).unwrap(), db, table).unwrap()
}

fn exact(key: &str) -> ReadQuery {
    ReadQuery {
        key: key.to_owned(),
        ..ReadQuery::default()
    }
}

#[test]
fn ttl_is_judged_by_log_time_and_purged_by_ticks() {
    let f = Fixture::new();
    let p = path("micro", "", "");
    f.put(10_000, &p, "t", Some(2));
    let read = f.reader.store_read(&p, &exact("t")).unwrap();
    assert_eq!(read[0].expiry_secs, Some(2));
    f.run(11_001, Command::Tick);
    assert_eq!(
        f.reader.store_read(&p, &exact("t")).unwrap()[0].expiry_secs,
        Some(1)
    );
    f.run(12_000, Command::Tick);
    assert!(matches!(
        f.reader.store_read(&p, &exact("t")),
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        f.reader
            .store_list(&p, &ListQuery::default())
            .unwrap()
            .is_empty()
    );
    assert!(
        f.reader
            .store_tables(&p.namespace, "micro")
            .unwrap()
            .is_empty()
    );
    // The tick purged the record and its index entry: nothing of it is left.
    let mut left = 0;
    f.kv.scan(
        Space::Store,
        &KeyRange::prefix(b""),
        ScanOrder::Asc,
        &mut |_, _| {
            left += 1;
            true
        },
    )
    .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn log_time_never_goes_backwards() {
    let f = Fixture::new();
    let p = path("micro", "", "");
    f.put(50_000, &p, "a", Some(10));
    f.put(1_000, &p, "b", Some(10));
    assert_eq!(f.reader.log_time_ms().unwrap(), 50_000);
    assert_eq!(
        f.reader.store_read(&p, &exact("b")).unwrap()[0].expiry_secs,
        Some(10)
    );
}

#[test]
fn overwrite_replaces_expiry() {
    let f = Fixture::new();
    let p = path("micro", "", "");
    f.put(0, &p, "k", Some(1));
    f.put(0, &p, "k", None);
    f.run(5_000, Command::Tick);
    assert_eq!(
        f.reader.store_read(&p, &exact("k")).unwrap()[0].expiry_secs,
        None
    );
    assert_eq!(
        f.reader.store_tables(&p.namespace, "micro").unwrap(),
        vec!["micro"]
    );
}

#[test]
fn lists_honour_prefix_suffix_order_limit_offset() {
    let f = Fixture::new();
    let p = path("micro", "", "");
    for key in ["a1", "a2", "a3", "b1", "b2x", "ab"] {
        f.put(0, &p, key, None);
    }
    let list = |q: ListQuery| f.reader.store_list(&p, &q).unwrap();
    let q = |prefix: &str| ListQuery {
        prefix: prefix.to_owned(),
        ..ListQuery::default()
    };
    assert_eq!(list(q("a")), ["a1", "a2", "a3", "ab"]);
    assert_eq!(
        list(ListQuery {
            limit: 2,
            offset: 1,
            ..q("a")
        }),
        ["a2", "a3"]
    );
    assert_eq!(
        list(ListQuery {
            order: Order::Desc,
            limit: 2,
            ..q("")
        }),
        ["b2x", "b1"]
    );
    assert_eq!(
        list(ListQuery {
            suffix: "1".to_owned(),
            ..q("")
        }),
        ["a1", "b1"]
    );
}

#[test]
fn reads_honour_prefix_suffix_order_limit() {
    let f = Fixture::new();
    let p = path("micro", "", "");
    for key in ["a1", "a2", "a3", "b1", "b2x", "ab"] {
        f.put(0, &p, key, None);
    }
    let read = |q: ReadQuery| -> Vec<String> {
        f.reader
            .store_read(&p, &q)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect()
    };
    assert_eq!(
        read(ReadQuery {
            prefix: true,
            ..exact("b")
        }),
        ["b1", "b2x"]
    );
    assert_eq!(
        read(ReadQuery {
            suffix: true,
            ..exact("1")
        }),
        ["a1", "b1"]
    );
    assert_eq!(
        read(ReadQuery {
            prefix: true,
            order: Order::Desc,
            limit: 1,
            ..exact("a")
        }),
        ["ab"]
    );
    assert!(
        read(ReadQuery {
            prefix: true,
            ..exact("zz")
        })
        .is_empty()
    );
}

#[test]
fn namespaces_and_tables_are_isolated_and_catalogued() {
    let f = Fixture::new();
    f.put(0, &path("a", "", ""), "k", None);
    f.put(0, &path("a", "db2", "t"), "k2", None);
    f.put(0, &path("a", "db2", "u"), "k3", None);
    let b = path("b", "a", "micro");
    assert!(f.reader.store_read(&b, &exact("k")).is_err());
    assert!(
        f.reader
            .store_list(&b, &ListQuery::default())
            .unwrap()
            .is_empty()
    );
    let ns_a = Namespace::new("a").unwrap();
    assert_eq!(f.reader.store_databases(&ns_a).unwrap(), ["a", "db2"]);
    assert_eq!(f.reader.store_tables(&ns_a, "db2").unwrap(), ["t", "u"]);
    assert!(
        f.reader
            .store_databases(&Namespace::new("b").unwrap())
            .unwrap()
            .is_empty()
    );
    let deleted = f.run(
        0,
        Command::StoreDelete {
            path: path("a", "db2", "u"),
            key: "k3".into(),
        },
    );
    assert_eq!(deleted, Response::Deleted { existed: true });
    assert_eq!(f.reader.store_tables(&ns_a, "db2").unwrap(), ["t"]);
    let again = f.run(
        0,
        Command::StoreDelete {
            path: path("a", "db2", "u"),
            key: "k3".into(),
        },
    );
    assert_eq!(again, Response::Deleted { existed: false });
}

#[test]
fn a_snapshot_holds_every_live_record_of_the_namespace_and_no_other() {
    let f = Fixture::new();
    f.put(1_000, &path("a", "", ""), "k1", None);
    f.put(1_000, &path("a", "db2", "t"), "k2", Some(10));
    f.put(1_000, &path("a", "db2", "u"), "gone", Some(1));
    // Namespace "ab" shares a's first byte: the length prefix keeps it out.
    f.put(1_000, &path("ab", "", ""), "other", None);
    f.put(1_000, &path("b", "a", "micro"), "other", None);
    f.run(3_000, Command::Tick);
    let ns_a = Namespace::new("a").unwrap();
    let all = f.reader.store_snapshot(&ns_a, None).unwrap();
    let seen: Vec<_> = all
        .iter()
        .map(|(p, r)| {
            (
                p.database.as_str(),
                p.table.as_str(),
                r.key.as_str(),
                r.expiry_secs,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("a", "micro", "k1", None), ("db2", "t", "k2", Some(8))]
    );
    let one = f.reader.store_snapshot(&ns_a, Some("db2")).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].1.value, b"k2");
}
