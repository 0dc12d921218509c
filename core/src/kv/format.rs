//! The data format stamp: which layout of keys and values a data directory holds.
//!
//! ```text
//! open ─> check_data_format(kv)
//!     no stamp, nothing stored     ─> stamp DATA_FORMAT (a new data directory)
//!     no stamp, data stored        ─> stamp 1 (written before stamps existed: format 1)
//!     DATA_FORMAT_MIN..=DATA_FORMAT ─> serve (an older format is upgraded here, when
//!                                      a later release has one to upgrade)
//!     anything else                ─> refuse, naming both formats
//! ```
//!
//! The stamp lives in space `Raft`, beside the vote: installing a snapshot replaces the
//! state spaces, never that one. A node refuses a newer format before it reads a single
//! entry, so a downgrade cannot misread a newer release's bytes and then write its own
//! over them.

use crate::kv::{KeyRange, KvBackend, KvError, ScanOrder, Space, WriteBatch};

/// The data format this release writes. Raise it when the encoding of anything stored
/// changes (a state key layout, a stored type, the Raft log entry), together with an
/// upgrade step from the previous format, or with `DATA_FORMAT_MIN` raised to say there
/// is none.
pub const DATA_FORMAT: u32 = 1;
/// The oldest data format this release opens (upgrading it in place).
pub const DATA_FORMAT_MIN: u32 = 1;
/// The key of the stamp in space `Raft`.
const STAMP_KEY: &[u8] = b"data_format";

/// What the check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatCheck {
    /// An empty data directory, now stamped with [`DATA_FORMAT`].
    Created,
    /// Data from before stamps existed, now stamped as format 1.
    Stamped,
    /// Data in a format this release reads.
    Current(u32),
}

/// Checks (and on first use writes) the data format stamp of `kv`. The error says what
/// was found and what to do.
pub fn check_data_format(kv: &dyn KvBackend) -> Result<FormatCheck, KvError> {
    if let Some(bytes) = kv.get(Space::Raft, STAMP_KEY)? {
        let format = <[u8; 4]>::try_from(bytes.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| KvError(format!("the data format stamp is damaged ({bytes:02x?})")))?;
        return check_known(format).map(|()| FormatCheck::Current(format));
    }
    let (format, found) = if is_empty(kv)? {
        (DATA_FORMAT, FormatCheck::Created)
    } else {
        (1, FormatCheck::Stamped)
    };
    check_known(format)?;
    stamp(kv, format)?;
    Ok(found)
}

/// Writes `format` as the stamp and makes it durable.
pub fn stamp(kv: &dyn KvBackend, format: u32) -> Result<(), KvError> {
    let mut batch = WriteBatch::default();
    batch.put(
        Space::Raft,
        STAMP_KEY.to_vec(),
        format.to_be_bytes().to_vec(),
    );
    kv.write(batch)?;
    kv.sync()
}

fn check_known(format: u32) -> Result<(), KvError> {
    if format > DATA_FORMAT {
        return Err(KvError(format!(
            "the data is in format {format}, written by a newer release; this one reads \
             formats {DATA_FORMAT_MIN} to {DATA_FORMAT}. Run the release that wrote it (or a \
             newer one), or restore a backup taken for this release (docs/DEPLOY.md, \
             \"Upgrades\")"
        )));
    }
    if format < DATA_FORMAT_MIN {
        return Err(KvError(format!(
            "the data is in format {format}, older than this release reads ({DATA_FORMAT_MIN} \
             to {DATA_FORMAT}). Upgrade through an intermediate release first \
             (docs/DEPLOY.md, \"Upgrades\")"
        )));
    }
    Ok(())
}

fn is_empty(kv: &dyn KvBackend) -> Result<bool, KvError> {
    let mut empty = true;
    for space in Space::ALL {
        kv.scan(
            space,
            &KeyRange::prefix(b""),
            ScanOrder::Asc,
            &mut |_, _| {
                empty = false;
                false
            },
        )?;
        if !empty {
            break;
        }
    }
    Ok(empty)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kv::MemKvBackend;

    #[test]
    fn a_new_directory_is_stamped_and_then_current() {
        let kv = MemKvBackend::new();
        assert_eq!(check_data_format(&kv).unwrap(), FormatCheck::Created);
        assert_eq!(
            check_data_format(&kv).unwrap(),
            FormatCheck::Current(DATA_FORMAT)
        );
    }

    #[test]
    fn data_from_before_stamps_is_format_one() {
        let kv = MemKvBackend::new();
        let mut batch = WriteBatch::default();
        batch.put(Space::Store, b"k".to_vec(), b"v".to_vec());
        kv.write(batch).unwrap();
        assert_eq!(check_data_format(&kv).unwrap(), FormatCheck::Stamped);
        assert_eq!(check_data_format(&kv).unwrap(), FormatCheck::Current(1));
    }

    #[test]
    fn a_newer_or_damaged_stamp_is_refused_by_name_and_left_alone() {
        let kv = MemKvBackend::new();
        stamp(&kv, DATA_FORMAT + 1).unwrap();
        let err = check_data_format(&kv).unwrap_err().0;
        assert!(
            err.contains(&format!("format {}", DATA_FORMAT + 1)) && err.contains("newer release"),
            "{err}"
        );
        // Refusing must not rewrite the stamp: the newer release still opens its data.
        assert_eq!(
            kv.get(Space::Raft, STAMP_KEY).unwrap().unwrap(),
            (DATA_FORMAT + 1).to_be_bytes()
        );
        let mut batch = WriteBatch::default();
        batch.put(Space::Raft, STAMP_KEY.to_vec(), vec![1, 2]);
        kv.write(batch).unwrap();
        assert!(check_data_format(&kv).unwrap_err().0.contains("damaged"));
    }
}
