//! Auth state: its keys, its part of `apply`, and its reads.
//!
//! Space `Auth`:
//! ```text
//! 0x00 ns id        -> StoredAccount
//! 0x01 ns rule_id   -> Rule
//! 0x02 ns           -> ()            (the namespace's rules are stored, not implied)
//! 0x03              -> SigningKeys   (set once, at bootstrap)
//! ```
//! A namespace whose rules were never written has the one rule `default` (everything
//! public) without storing it, so an anonymous caller naming a new namespace writes
//! nothing. The first rule change there stores `default` first, so deleting it sticks.

use crate::auth::{Rule, SigningKeys, StoredAccount};
use crate::kv::{KeyRange, KvBackend, KvError, ScanOrder, Space, WriteBatch};
use crate::namespace::Namespace;
use crate::state::Response;
use crate::state::keys::{decode, encode};
use crate::state::services::key;

const ACCOUNT_TAG: u8 = 0;
const RULE_TAG: u8 = 1;
const RULES_STORED_TAG: u8 = 2;
const KEYS_KEY: &[u8] = &[3];

fn scan_values<T: serde::de::DeserializeOwned>(
    kv: &dyn KvBackend,
    prefix: &[u8],
) -> Result<Vec<T>, KvError> {
    let mut out = Vec::new();
    kv.scan(
        Space::Auth,
        &KeyRange::prefix(prefix),
        ScanOrder::Asc,
        &mut |_, v| {
            if let Some(value) = decode(v) {
                out.push(value);
            }
            true
        },
    )?;
    Ok(out)
}

/// The account `id` of `namespace`.
pub(crate) fn account(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    id: &str,
) -> Result<Option<StoredAccount>, KvError> {
    Ok(kv
        .get(Space::Auth, &key(ACCOUNT_TAG, &[namespace.as_str(), id]))?
        .and_then(|b| decode(&b)))
}

/// Every account of `namespace`.
pub(crate) fn accounts(
    kv: &dyn KvBackend,
    namespace: &Namespace,
) -> Result<Vec<StoredAccount>, KvError> {
    scan_values(kv, &key(ACCOUNT_TAG, &[namespace.as_str()]))
}

/// The rules of `namespace` (`default` alone if none were ever written).
pub(crate) fn rules(kv: &dyn KvBackend, namespace: &Namespace) -> Result<Vec<Rule>, KvError> {
    if !rules_stored(kv, namespace)? {
        return Ok(vec![Rule::default_rule()]);
    }
    scan_values(kv, &key(RULE_TAG, &[namespace.as_str()]))
}

fn rules_stored(kv: &dyn KvBackend, namespace: &Namespace) -> Result<bool, KvError> {
    Ok(kv
        .get(Space::Auth, &key(RULES_STORED_TAG, &[namespace.as_str()]))?
        .is_some())
}

/// The cluster's signing keys, once bootstrapped.
pub(crate) fn keys(kv: &dyn KvBackend) -> Result<Option<SigningKeys>, KvError> {
    Ok(kv.get(Space::Auth, KEYS_KEY)?.and_then(|b| decode(&b)))
}

fn refused(reason: String) -> Response {
    Response::Refused { reason }
}

/// Stores the keys and the first admin unless a bootstrap already did.
pub(crate) fn bootstrap(
    kv: &dyn KvBackend,
    keys_in: &SigningKeys,
    admin: &StoredAccount,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    if keys(kv)?.is_some() {
        return Ok(refused("auth is already bootstrapped".to_owned()));
    }
    batch.put(Space::Auth, KEYS_KEY.to_vec(), encode(keys_in));
    let micro = Namespace::default();
    batch.put(
        Space::Auth,
        key(ACCOUNT_TAG, &[micro.as_str(), &admin.account.id]),
        encode(admin),
    );
    store_default_rule(&micro, batch);
    Ok(Response::Done)
}

fn store_default_rule(namespace: &Namespace, batch: &mut WriteBatch) {
    batch.put(
        Space::Auth,
        key(RULES_STORED_TAG, &[namespace.as_str()]),
        Vec::new(),
    );
    let rule = Rule::default_rule();
    batch.put(
        Space::Auth,
        key(RULE_TAG, &[namespace.as_str(), &rule.id]),
        encode(&rule),
    );
}

/// Creates an account unless its id, or its name, is taken in the namespace.
pub(crate) fn account_create(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    stored: &StoredAccount,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let id = &stored.account.id;
    let name = &stored.account.name;
    for other in accounts(kv, namespace)? {
        let taken = &other.account;
        // Logins look an id up first, then a name: no id may equal another's name.
        let clash = &taken.id == id
            || (!taken.name.is_empty() && &taken.name == id)
            || (!name.is_empty() && (&taken.name == name || &taken.id == name));
        if clash {
            return Ok(refused(format!(
                "account {id} (or its name) already exists in namespace {namespace}"
            )));
        }
    }
    batch.put(
        Space::Auth,
        key(ACCOUNT_TAG, &[namespace.as_str(), id]),
        encode(stored),
    );
    Ok(Response::Done)
}

/// Replaces an account if it is still at `revision` (so two racing changes, say a
/// secret change and a refresh-token grant, never both win).
pub(crate) fn account_update(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    stored: &StoredAccount,
    revision: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let id = &stored.account.id;
    match account(kv, namespace, id)? {
        Some(current) if current.revision == revision => {
            batch.put(
                Space::Auth,
                key(ACCOUNT_TAG, &[namespace.as_str(), id]),
                encode(stored),
            );
            Ok(Response::Done)
        }
        Some(_) => Ok(refused(format!("account {id} changed meanwhile; retry"))),
        None => Ok(refused(format!(
            "account {id} does not exist in namespace {namespace}"
        ))),
    }
}

/// Deletes an account.
pub(crate) fn account_delete(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    id: &str,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let k = key(ACCOUNT_TAG, &[namespace.as_str(), id]);
    let existed = kv.get(Space::Auth, &k)?.is_some();
    batch.delete(Space::Auth, k);
    Ok(Response::Deleted { existed })
}

/// Creates or replaces a rule.
pub(crate) fn rule_put(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    rule: &Rule,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    if !rules_stored(kv, namespace)? {
        store_default_rule(namespace, batch);
    }
    batch.put(
        Space::Auth,
        key(RULE_TAG, &[namespace.as_str(), &rule.id]),
        encode(rule),
    );
    Ok(Response::Done)
}

/// Deletes a rule (`default` too: a namespace may be locked down).
pub(crate) fn rule_delete(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    id: &str,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let k = key(RULE_TAG, &[namespace.as_str(), id]);
    if !rules_stored(kv, namespace)? {
        batch.put(
            Space::Auth,
            key(RULES_STORED_TAG, &[namespace.as_str()]),
            Vec::new(),
        );
        return Ok(Response::Deleted {
            existed: id == crate::auth::DEFAULT_RULE_ID,
        });
    }
    let existed = kv.get(Space::Auth, &k)?.is_some();
    batch.delete(Space::Auth, k);
    Ok(Response::Deleted { existed })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::{Account, Resource};
    use crate::kv::MemKvBackend;
    use crate::state::{Command, StateReader};

    fn run(kv: &MemKvBackend, command: Command) -> Response {
        crate::state::apply_now(kv, 1, command)
    }

    fn stored(id: &str, name: &str) -> StoredAccount {
        StoredAccount {
            account: Account {
                id: id.into(),
                name: name.into(),
                kind: "user".into(),
                issuer: "micro".into(),
                ..Account::default()
            },
            secret_hash: "hash".into(),
            revision: 0,
            refresh: Vec::new(),
        }
    }

    #[test]
    fn bootstrap_once_then_accounts_and_rules_follow_their_conditions() {
        let kv = Arc::new(MemKvBackend::new());
        let reader = StateReader::new(kv.clone());
        let micro = Namespace::default();
        let keys = SigningKeys {
            private_der: b"p".to_vec(),
            public_der: b"q".to_vec(),
        };
        let boot = Command::AuthBootstrap {
            keys: keys.clone(),
            admin: Box::new(stored("admin", "")),
        };
        assert_eq!(run(&kv, boot.clone()), Response::Done);
        assert!(matches!(run(&kv, boot), Response::Refused { .. }));
        assert_eq!(reader.auth_keys().unwrap(), Some(keys));
        assert_eq!(
            reader.auth_rules(&micro).unwrap(),
            vec![Rule::default_rule()]
        );

        let create = |id: &str, name: &str| Command::AuthAccountCreate {
            namespace: micro.clone(),
            account: Box::new(stored(id, name)),
        };
        assert_eq!(run(&kv, create("alice", "a@x")), Response::Done);
        assert!(matches!(
            run(&kv, create("alice", "")),
            Response::Refused { .. }
        ));
        assert!(matches!(
            run(&kv, create("bob", "a@x")),
            Response::Refused { .. }
        ));

        let mut next = stored("alice", "a@x");
        next.revision = 1;
        let update = |account: StoredAccount, revision| Command::AuthAccountUpdate {
            namespace: micro.clone(),
            account: Box::new(account),
            revision,
        };
        assert_eq!(run(&kv, update(next.clone(), 0)), Response::Done);
        assert!(matches!(
            run(&kv, update(next, 0)),
            Response::Refused { .. }
        ));

        // A new namespace has `default` without storing it; deleting it sticks.
        let b = Namespace::new("b").unwrap();
        assert_eq!(reader.auth_rules(&b).unwrap(), vec![Rule::default_rule()]);
        let delete = Command::AuthRuleDelete {
            namespace: b.clone(),
            id: "default".into(),
        };
        assert_eq!(run(&kv, delete), Response::Deleted { existed: true });
        assert!(reader.auth_rules(&b).unwrap().is_empty());
        let rule = Rule {
            id: "mine".into(),
            scope: "*".into(),
            resource: Resource::service("x", "*"),
            access: crate::auth::Access::Granted,
            priority: 1,
        };
        let c = Namespace::new("c").unwrap();
        let put = Command::AuthRulePut {
            namespace: c.clone(),
            rule: rule.clone(),
        };
        assert_eq!(run(&kv, put), Response::Done);
        assert_eq!(
            reader.auth_rules(&c).unwrap(),
            vec![rule, Rule::default_rule()]
        );
    }
}
