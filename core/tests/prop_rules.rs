//! Property tests of rule evaluation ([`verify_access`]), the decoder of every request's
//! right to proceed; the fuzz target `rules` (fuzz/) drives the same function.
//!
//! ```text
//! rules (strings from a small pool: wildcards, case, paths; or anything) + account
//!   + resource + namespace ─verify_access─> Ok | Unauthorized | Forbidden
//! ```
//!
//! Properties: never a panic; the decision ignores the order the rules are stored in;
//! a grant of `*` admits every resource of its scope (anyone for a public rule, the
//! namespace's accounts for `*`, the accounts holding a custom scope); a public deny on
//! top refuses everything; a `/a/*` path wildcard admits `/a` and what lies under it.

use micro_core::auth::{
    Access, Account, AuthError, Resource, Rule, SCOPE_ACCOUNT, SCOPE_PUBLIC, verify_access,
};
use proptest::prelude::*;

/// Strings that matter to matching: wildcards, scopes, case variants, path prefixes.
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

/// A string from the pool, or anything short.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(&POOL[..]).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

fn resource() -> impl Strategy<Value = Resource> {
    (text(), text(), text()).prop_map(|(kind, name, endpoint)| Resource {
        kind,
        name,
        endpoint,
    })
}

/// A rule with a small priority (ties are common), never `i32::MAX`.
fn rule() -> impl Strategy<Value = Rule> {
    (text(), text(), resource(), any::<bool>(), -3..3i32).prop_map(
        |(id, scope, resource, granted, priority)| Rule {
            id,
            scope,
            resource,
            access: if granted {
                Access::Granted
            } else {
                Access::Denied
            },
            priority,
        },
    )
}

/// Rules whose ids are unique, so no two share a priority and an id.
fn unique_rules() -> impl Strategy<Value = Vec<Rule>> {
    proptest::collection::vec(rule(), 0..12).prop_map(|mut rules| {
        for (i, rule) in rules.iter_mut().enumerate() {
            rule.id = format!("{i}-{}", rule.id);
        }
        rules
    })
}

fn account() -> impl Strategy<Value = Account> {
    (
        text(),
        text(),
        proptest::collection::vec(text(), 0..4),
        text(),
    )
        .prop_map(|(id, kind, scopes, issuer)| Account {
            id,
            kind,
            scopes,
            issuer,
            ..Account::default()
        })
}

/// A rule on `kind:name:*` above every generated one.
fn top(scope: &str, kind: &str, name: &str, access: Access) -> Rule {
    Rule {
        id: "top".to_owned(),
        scope: scope.to_owned(),
        resource: Resource {
            kind: kind.to_owned(),
            name: name.to_owned(),
            endpoint: "*".to_owned(),
        },
        access,
        priority: i32::MAX,
    }
}

fn with(mut rules: Vec<Rule>, rule: Rule) -> Vec<Rule> {
    rules.push(rule);
    rules
}

proptest! {
    #[test]
    fn never_panics(
        rules in proptest::collection::vec(rule(), 0..12),
        account in proptest::option::of(account()),
        resource in resource(),
        namespace in text(),
    ) {
        let _ = verify_access(&rules, account.as_ref(), &resource, &namespace);
    }

    #[test]
    fn the_order_of_the_rules_does_not_matter(
        (rules, shuffled) in unique_rules()
            .prop_flat_map(|rules| (Just(rules.clone()), Just(rules).prop_shuffle())),
        account in proptest::option::of(account()),
        resource in resource(),
        namespace in text(),
    ) {
        prop_assert_eq!(
            verify_access(&rules, account.as_ref(), &resource, &namespace),
            verify_access(&shuffled, account.as_ref(), &resource, &namespace)
        );
    }

    #[test]
    fn a_public_grant_of_star_admits_anyone_to_every_resource(
        rules in proptest::collection::vec(rule(), 0..12),
        account in proptest::option::of(account()),
        resource in resource(),
        namespace in text(),
    ) {
        let rules = with(rules, top(SCOPE_PUBLIC, "*", "*", Access::Granted));
        prop_assert!(verify_access(&rules, account.as_ref(), &resource, &namespace).is_ok());
    }

    #[test]
    fn a_grant_of_star_to_scope_star_admits_exactly_the_namespace_accounts(
        rules in proptest::collection::vec(rule(), 0..12),
        account in account(),
        resource in resource(),
        namespace in text(),
    ) {
        let rules = with(rules, top(SCOPE_ACCOUNT, "*", "*", Access::Granted));
        let decision = verify_access(&rules, Some(&account), &resource, &namespace);
        if account.issuer == namespace {
            prop_assert!(decision.is_ok(), "{decision:?}");
        } else {
            prop_assert!(matches!(decision, Err(AuthError::Forbidden(_))), "{decision:?}");
        }
    }

    /// A grant of `service:NAME:*` to a custom scope: every endpoint of NAME, whatever its
    /// case, for an account of the namespace holding the scope.
    #[test]
    fn a_scoped_grant_of_a_service_admits_every_endpoint_of_it(
        rules in proptest::collection::vec(rule(), 0..12),
        mut account in account(),
        name in "[a-z]{1,8}",
        endpoint in ".{0,16}",
        upper in any::<bool>(),
    ) {
        account.issuer = "ns".to_owned();
        account.scopes.push("custom".to_owned());
        let rules = with(rules, top("custom", "service", &name, Access::Granted));
        let called = if upper { name.to_ascii_uppercase() } else { name };
        let resource = Resource::service(&called, &endpoint);
        prop_assert!(verify_access(&rules, Some(&account), &resource, "ns").is_ok());
    }

    #[test]
    fn a_public_deny_of_star_on_top_refuses_everything(
        rules in proptest::collection::vec(rule(), 0..12),
        account in proptest::option::of(account()),
        resource in resource(),
        namespace in text(),
    ) {
        let rules = with(rules, top(SCOPE_PUBLIC, "*", "*", Access::Denied));
        prop_assert!(verify_access(&rules, account.as_ref(), &resource, &namespace).is_err());
    }

    /// `/a/*` admits `/a` and everything under `/a/` (any case), nothing beside it.
    #[test]
    fn a_path_wildcard_admits_what_lies_under_it(
        prefix in "/[a-zé]{1,4}",
        rest in ".{0,8}",
        sibling in "[a-z]{1,3}",
    ) {
        let mut rule = top(SCOPE_PUBLIC, "*", "*", Access::Granted);
        rule.resource.endpoint = format!("{prefix}/*");
        let rules = [rule];
        let admitted = |endpoint: &str| {
            verify_access(&rules, None, &Resource::service("web", endpoint), "micro").is_ok()
        };
        let under = format!("{prefix}/{rest}");
        let upper = format!("{}/{rest}", prefix.to_ascii_uppercase());
        let beside = format!("{prefix}{sibling}");
        prop_assert!(admitted(&prefix), "{}", prefix);
        prop_assert!(admitted(&under), "{}", under);
        prop_assert!(admitted(&upper), "{}", upper);
        prop_assert!(!admitted(&beside), "{}", beside);
    }
}
