//! Property: **at most one leader per term** (Raft's election safety). Every node's view
//! (itself as leader, or whom it follows) is sampled through the run; two different
//! leaders for one term is a violation.

use std::collections::{BTreeMap, BTreeSet};

use super::Violation;

/// Checks the leaders seen per term.
pub fn check(leaders_by_term: &BTreeMap<u64, BTreeSet<u64>>) -> Vec<Violation> {
    leaders_by_term
        .iter()
        .filter(|(_, leaders)| leaders.len() > 1)
        .map(|(term, leaders)| Violation {
            checker: "single_leader",
            detail: format!("term {term} had leaders {leaders:?}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut seen = BTreeMap::new();
        seen.insert(3, BTreeSet::from([1]));
        assert!(check(&seen).is_empty());
        seen.insert(4, BTreeSet::from([1, 2]));
        assert_eq!(check(&seen).len(), 1);
    }
}
