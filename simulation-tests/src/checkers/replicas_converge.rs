//! Property: **replicas' state machines are identical after healing**. Once the faults
//! are healed and the clients are done, every member of the cluster must reach the same
//! applied position with byte-identical replicated state (records, expiry index,
//! catalogue, log time and membership).

use std::collections::BTreeMap;

use super::Violation;

/// Checks the members' final positions and digests.
pub fn check(final_states: &BTreeMap<u64, Option<(Vec<u8>, u64)>>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (id, state) in final_states {
        if state.is_none() {
            found.push(Violation {
                checker: "replicas_converge",
                detail: format!("member n{id} never reported an applied state"),
            });
        }
    }
    let distinct: std::collections::BTreeSet<_> = final_states.values().flatten().collect();
    if distinct.len() > 1 {
        found.push(Violation {
            checker: "replicas_converge",
            detail: format!("members differ after healing: {final_states:?}"),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_or_silent_members_are_caught() {
        let same = BTreeMap::from([(1, Some((vec![1], 7))), (2, Some((vec![1], 7)))]);
        assert!(check(&same).is_empty());
        let differ = BTreeMap::from([(1, Some((vec![1], 7))), (2, Some((vec![1], 8)))]);
        assert_eq!(check(&differ).len(), 1);
        let silent = BTreeMap::from([(1, Some((vec![1], 7))), (2, None)]);
        assert_eq!(check(&silent).len(), 1);
    }
}
