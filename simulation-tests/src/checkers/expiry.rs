//! Property: **a record is never returned once the cluster's log time has passed its
//! expiry**. Log time only moves forward, so for reads of one TTL write:
//! - the seconds left are between 1 and its TTL (0 or more would mean expired or never
//!   expiring), and a record written without a TTL never shows one;
//! - a read that began after another ended never shows more seconds left.

use super::Violation;
use crate::history::{Op, OpKind, ReadValue};

/// Checks the expiry every read showed.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    let ttl_of = |key: &str, value: &str| {
        ops.iter().find_map(|op| match &op.kind {
            OpKind::Write { value: v, ttl_secs } if op.key == key && v == value => Some(*ttl_secs),
            _ => None,
        })
    };
    let reads: Vec<(&Op, &str, u64)> = ops
        .iter()
        .filter_map(|op| match op.read()? {
            ReadValue::Found { value, expiry_secs } => Some((op, value.as_str(), *expiry_secs)),
            ReadValue::Absent => None,
        })
        .collect();
    let mut found = Vec::new();
    for (read, value, left) in &reads {
        // A value nobody wrote is the durability checker's to report.
        let Some(ttl) = ttl_of(&read.key, value) else {
            continue;
        };
        let valid = if ttl == 0 {
            *left == 0
        } else {
            (1..=ttl).contains(left)
        };
        if !valid {
            found.push(violation(format!(
                "{} = {value:?} (ttl {ttl}s) read with {left}s left at {} ms",
                read.key, read.invoke_ms
            )));
        }
    }
    for (first, value, left) in &reads {
        let later = reads.iter().find(|(second, v, l)| {
            v == value
                && second.key == first.key
                && second.invoke_ms > first.complete_ms
                && l > left
        });
        if let Some((second, _, more)) = later {
            found.push(violation(format!(
                "{} = {value:?}: {left}s left at {} ms, then {more}s left at {} ms",
                first.key, first.complete_ms, second.invoke_ms
            )));
        }
    }
    found
}

fn violation(detail: String) -> Violation {
    Violation {
        checker: "expiry",
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::fixtures;

    fn read(at: (u64, u64), left: u64) -> Op {
        fixtures::read(Some("a"), left, at)
    }

    fn write(ttl_secs: u64) -> Op {
        fixtures::write("a", ttl_secs, (0, 1))
    }

    #[test]
    fn time_left_only_shrinks() {
        assert!(check(&[write(3), read((2, 3), 3), read((4, 5), 2)]).is_empty());
        assert_eq!(
            check(&[write(3), read((2, 3), 2), read((4, 5), 3)]).len(),
            1
        );
        // Overlapping reads may see either.
        assert!(check(&[write(3), read((2, 5), 2), read((4, 6), 3)]).is_empty());
    }

    #[test]
    fn time_left_stays_within_the_ttl() {
        assert_eq!(check(&[write(2), read((2, 3), 3)]).len(), 1);
        assert_eq!(check(&[write(2), read((2, 3), 0)]).len(), 1);
        assert_eq!(check(&[write(0), read((2, 3), 1)]).len(), 1);
        assert!(check(&[write(0), read((2, 3), 0)]).is_empty());
    }
}
