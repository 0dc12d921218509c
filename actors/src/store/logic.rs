//! Pure store logic: validation and the commands requests turn into.

use micro_core::replicator::ReplicaError;
use micro_core::state::Command;
use micro_core::store::{Record, StoreError, TablePath};

use crate::store::TableRef;

/// Resolves a table reference (defaults of Micro).
pub fn resolve(table: &TableRef) -> Result<TablePath, StoreError> {
    TablePath::resolve(table.namespace.clone(), &table.database, &table.table)
}

/// The command that writes `record`, once it is valid.
pub fn put_command(table: &TableRef, record: Record) -> Result<Command, StoreError> {
    record.validate()?;
    Ok(Command::StorePut {
        path: resolve(table)?,
        record,
    })
}

/// The command that deletes `key`, once it is valid.
pub fn delete_command(table: &TableRef, key: String) -> Result<Command, StoreError> {
    if key.is_empty() {
        return Err(StoreError::Invalid("key must not be empty".to_owned()));
    }
    let probe = Record {
        key,
        ..Record::default()
    };
    probe.validate()?;
    Ok(Command::StoreDelete {
        path: resolve(table)?,
        key: probe.key,
    })
}

/// The store error for a replication failure.
pub fn replica_error(err: ReplicaError) -> StoreError {
    match err {
        ReplicaError::NoLeader(why) | ReplicaError::NoQuorum(why) => StoreError::Unavailable(why),
        ReplicaError::ShuttingDown => StoreError::Unavailable("node is shutting down".to_owned()),
        ReplicaError::Unknown(why) => StoreError::Timeout(why),
        ReplicaError::Rejected(why) => StoreError::Invalid(why),
        ReplicaError::Fatal(why) => StoreError::Internal(why),
        ReplicaError::DiskFull(why) => StoreError::DiskFull(format!("disk full: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use micro_core::Namespace;

    use super::*;

    #[test]
    fn invalid_requests_never_become_commands() {
        let table = TableRef::new(Namespace::default(), "", "");
        assert!(put_command(&table, Record::default()).is_err());
        assert!(delete_command(&table, String::new()).is_err());
        let huge = Record {
            key: "k".into(),
            value: vec![0; micro_core::store::VALUE_LEN_MAX + 1],
            ..Record::default()
        };
        assert!(matches!(
            put_command(&table, huge),
            Err(StoreError::TooLarge(_))
        ));
        let bad_table = TableRef::new(Namespace::default(), "", "a\nb");
        assert!(delete_command(&bad_table, "k".into()).is_err());
    }
}
