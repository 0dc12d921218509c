//! Rule evaluation: `micro_core::auth::verify_access` on arbitrary rules, accounts,
//! resources and namespaces, built from mirror structs (the core types do not derive
//! `Arbitrary`). Strings come mostly from small pools, so wildcards, case and path
//! prefixes meet each other.
//!
//! Never a panic, and:
//! - the decision does not depend on the order the rules are stored in (when no two rules
//!   share a priority and an id, the only tie it cannot break);
//! - a public grant of `*:*:*` above every other rule admits anyone to anything;
//! - a public deny of `*:*:*` above every other rule refuses everyone everything;
//! - a grant of `*:*:*` to scope `*` above every other rule admits exactly the accounts
//!   of the namespace.

#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use micro_core::auth::{Access, Account, Resource, Rule, verify_access};

/// A string: mostly one of a few that matter to matching, sometimes anything.
#[derive(Arbitrary, Debug)]
enum Text {
    Pool(u8),
    Any(String),
}

const POOL: [&str; 16] = [
    "",
    "*",
    "+",
    "service",
    "SERVICE",
    "store",
    "Store",
    "micro",
    "foo",
    "admin",
    "Store.Read",
    "/a/*",
    "/a",
    "/a/b",
    "/A/b/c",
    "/é/*",
];

impl Text {
    fn string(&self) -> String {
        match self {
            Self::Pool(i) => POOL[usize::from(*i) % POOL.len()].to_owned(),
            Self::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct ArbResource {
    kind: Text,
    name: Text,
    endpoint: Text,
}

impl ArbResource {
    fn resource(&self) -> Resource {
        Resource {
            kind: self.kind.string(),
            name: self.name.string(),
            endpoint: self.endpoint.string(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct ArbRule {
    id: Text,
    scope: Text,
    resource: ArbResource,
    granted: bool,
    /// Small, so priorities tie often; never `i32::MAX`, which the properties use.
    priority: i8,
}

impl ArbRule {
    fn rule(&self) -> Rule {
        Rule {
            id: self.id.string(),
            scope: self.scope.string(),
            resource: self.resource.resource(),
            access: if self.granted {
                Access::Granted
            } else {
                Access::Denied
            },
            priority: i32::from(self.priority),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct ArbAccount {
    id: Text,
    kind: Text,
    scopes: Vec<Text>,
    issuer: Text,
}

impl ArbAccount {
    fn account(&self) -> Account {
        Account {
            id: self.id.string(),
            kind: self.kind.string(),
            scopes: self.scopes.iter().map(Text::string).collect(),
            issuer: self.issuer.string(),
            ..Account::default()
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    rules: Vec<ArbRule>,
    account: Option<ArbAccount>,
    resource: ArbResource,
    namespace: Text,
}

/// A rule on `*:*:*` above every rule of the input.
fn top(scope: &str, access: Access) -> Rule {
    Rule {
        id: "top".to_owned(),
        scope: scope.to_owned(),
        resource: Resource {
            kind: "*".to_owned(),
            name: "*".to_owned(),
            endpoint: "*".to_owned(),
        },
        access,
        priority: i32::MAX,
    }
}

fuzz_target!(|input: Input| {
    let rules: Vec<Rule> = input.rules.iter().map(ArbRule::rule).collect();
    let account = input.account.as_ref().map(ArbAccount::account);
    let resource = input.resource.resource();
    let namespace = input.namespace.string();
    let decision = verify_access(&rules, account.as_ref(), &resource, &namespace);

    let keys: BTreeSet<(i32, &str)> = rules.iter().map(|r| (r.priority, r.id.as_str())).collect();
    if keys.len() == rules.len() {
        let mut reversed = rules.clone();
        reversed.reverse();
        let again = verify_access(&reversed, account.as_ref(), &resource, &namespace);
        assert_eq!(again, decision, "the decision depends on the rules' order");
    }

    let with = |rule: Rule| {
        let mut all = rules.clone();
        all.push(rule);
        verify_access(&all, account.as_ref(), &resource, &namespace)
    };
    assert!(
        with(top("", Access::Granted)).is_ok(),
        "a public grant of * refused"
    );
    assert!(
        with(top("", Access::Denied)).is_err(),
        "a public deny of * admitted"
    );
    if let Some(account) = &account {
        let admitted = with(top("*", Access::Granted)).is_ok();
        assert_eq!(
            admitted,
            account.issuer == namespace,
            "a grant of * to scope * and an account of {}",
            account.issuer
        );
    }
});
