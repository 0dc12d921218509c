//! Wire <-> domain conversions.

use micro_core::cluster::ClusterStatus;
use micro_core::store::{Field, ListQuery, Order, ReadQuery, Record, StoreError};

use crate::{cluster as pb_cluster, store as pb};

/// A domain record from the wire. A negative expiry is invalid; zero means none.
pub fn record_from_wire(record: pb::Record) -> Result<Record, StoreError> {
    let expiry_secs = match record.expiry {
        0 => None,
        secs if secs < 0 => {
            return Err(StoreError::Invalid(format!(
                "expiry must not be negative, got {secs}"
            )));
        }
        secs => Some(secs.unsigned_abs()),
    };
    let metadata = record
        .metadata
        .into_iter()
        .map(|(k, f)| {
            (
                k,
                Field {
                    kind: f.r#type,
                    value: f.value,
                },
            )
        })
        .collect();
    Ok(Record {
        key: record.key,
        value: record.value,
        expiry_secs,
        metadata,
    })
}

/// The wire form of a domain record (`expiry` in seconds, 0 for none).
pub fn record_to_wire(record: Record) -> pb::Record {
    let metadata = record
        .metadata
        .into_iter()
        .map(|(k, f)| {
            (
                k,
                pb::Field {
                    r#type: f.kind,
                    value: f.value,
                },
            )
        })
        .collect();
    let expiry = record
        .expiry_secs
        .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
    pb::Record {
        key: record.key,
        value: record.value,
        expiry,
        metadata,
    }
}

/// The database, table and query of a read request.
pub fn read_options(
    key: String,
    options: Option<pb::ReadOptions>,
) -> Result<(String, String, ReadQuery), StoreError> {
    let o = options.unwrap_or_default();
    let query = ReadQuery {
        key,
        prefix: o.prefix,
        suffix: o.suffix,
        limit: o.limit,
        offset: o.offset,
        order: Order::parse(&o.order)?,
    };
    Ok((o.database, o.table, query))
}

/// The database, table and query of a list request.
pub fn list_options(
    options: Option<pb::ListOptions>,
) -> Result<(String, String, ListQuery), StoreError> {
    let o = options.unwrap_or_default();
    let query = ListQuery {
        prefix: o.prefix,
        suffix: o.suffix,
        limit: o.limit,
        offset: o.offset,
        order: Order::parse(&o.order)?,
    };
    Ok((o.database, o.table, query))
}

/// The wire form of a cluster status (leader 0 = none).
pub fn cluster_status_to_wire(status: ClusterStatus) -> pb_cluster::StatusResponse {
    pb_cluster::StatusResponse {
        node_id: status.node_id,
        leader: status.leader.unwrap_or(0),
        term: status.term,
        members: status
            .members
            .into_iter()
            .map(|m| pb_cluster::Member {
                id: m.id,
                address: m.address,
                role: m.role.as_str().to_owned(),
                silent_ms: m.silent_ms,
            })
            .collect(),
        commit_index: status.commit_index,
        applied_index: status.applied_index,
        snapshot_index: status.snapshot_index,
        purged_index: status.purged_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut record = Record {
            key: "k".into(),
            value: vec![0, 255],
            expiry_secs: Some(5),
            ..Record::default()
        };
        record.metadata.insert(
            "a".into(),
            Field {
                kind: "string".into(),
                value: "b".into(),
            },
        );
        assert_eq!(
            record_from_wire(record_to_wire(record.clone())).unwrap(),
            record
        );
        let negative = pb::Record {
            key: "k".into(),
            expiry: -1,
            ..pb::Record::default()
        };
        assert!(record_from_wire(negative).is_err());
    }
}
