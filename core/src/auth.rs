//! Auth: accounts, rules, and the decisions made from them.
//!
//! Everything here is pure: the signing and hashing live in `micro-actors`, the storage
//! in [`crate::state`]. Two checks guard every request, as in Micro v3:
//!
//! ```text
//! request ─> verify_access(rules of the namespace, account, service:<svc>:<Endpoint>)
//!        ─> the core service's own authorize / authorize_admin(account, namespace)
//! ```
//!
//! Rule evaluation follows v3's `VerifyAccess`: keep the rules whose resource matches
//! (type and name `*` or equal, endpoint `*`, equal or a `/a/*` path wildcard, all
//! case-insensitive), highest priority first; a public rule (scope `""`) decides for
//! everyone; other rules only for an account, which must belong to the namespace unless
//! the scope is `+`; `*` is any account of the namespace; otherwise the account needs
//! the rule's scope. No matching rule is a denial.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Code, HasCode};
use crate::namespace::DEFAULT_NAMESPACE;

/// The scope of a rule open to everyone, logged in or not.
pub const SCOPE_PUBLIC: &str = "";
/// The scope of a rule open to any account of the namespace.
pub const SCOPE_ACCOUNT: &str = "*";
/// The scope of a rule open to any account of any namespace.
pub const SCOPE_ANY_NAMESPACE_ACCOUNT: &str = "+";
/// The scope that makes an account an administrator of its namespace.
pub const SCOPE_ADMIN: &str = "admin";
/// The scope (and account type) of services.
pub const SCOPE_SERVICE: &str = "service";
/// The account type of people.
pub const TYPE_USER: &str = "user";
/// The account type of services.
pub const TYPE_SERVICE: &str = "service";
/// The id of the rule every namespace starts with.
pub const DEFAULT_RULE_ID: &str = "default";
/// The id of the administrator created at bootstrap in namespace `micro`.
pub const ADMIN_ID: &str = "admin";
/// The administrator's password unless one is set at first boot.
pub const ADMIN_DEFAULT_PASSWORD: &str = "micro";
/// The longest account id, name, rule id or scope accepted.
pub const NAME_LEN_MAX: usize = 255;
/// The most scopes, and the most metadata entries, an account may have (they ride in
/// every token).
pub const ACCOUNT_ITEMS_MAX: usize = 32;

/// An account as everyone but its secret's owner sees it: never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Account {
    /// Unique within the namespace.
    pub id: String,
    /// `user` or `service`.
    pub kind: String,
    /// Free-form labels.
    pub metadata: BTreeMap<String, String>,
    /// What the account may do (`admin`, `service`, or custom scopes).
    pub scopes: Vec<String>,
    /// The namespace the account belongs to (the JWT `iss`).
    pub issuer: String,
    /// An optional second login name (for example an email), unique in the namespace.
    pub name: String,
}

impl Account {
    /// Whether the account holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// An administrator of a namespace: scope `admin` or `service`, or type `service`.
    pub fn is_admin(&self) -> bool {
        self.has_scope(SCOPE_ADMIN) || self.has_scope(SCOPE_SERVICE) || self.kind == TYPE_SERVICE
    }

    /// Checks the fields a caller chooses.
    pub fn validate(&self) -> Result<(), AuthError> {
        check_name("account id", &self.id, false)?;
        check_name("account name", &self.name, true)?;
        if self.kind != TYPE_USER && self.kind != TYPE_SERVICE {
            return Err(AuthError::Invalid(format!(
                "account type must be {TYPE_USER} or {TYPE_SERVICE}, not {:?}",
                self.kind
            )));
        }
        for scope in &self.scopes {
            check_name("scope", scope, false)?;
        }
        for (key, value) in &self.metadata {
            check_name("metadata key", key, false)?;
            check_name("metadata value", value, true)?;
        }
        if self.scopes.len() > ACCOUNT_ITEMS_MAX || self.metadata.len() > ACCOUNT_ITEMS_MAX {
            return Err(AuthError::Invalid(format!(
                "an account has at most {ACCOUNT_ITEMS_MAX} scopes and {ACCOUNT_ITEMS_MAX} \
                 metadata entries"
            )));
        }
        Ok(())
    }
}

fn check_name(what: &str, value: &str, empty_ok: bool) -> Result<(), AuthError> {
    if (value.is_empty() && !empty_ok)
        || value.len() > NAME_LEN_MAX
        || value.chars().any(char::is_control)
    {
        return Err(AuthError::Invalid(format!(
            "{what} must be 1 to {NAME_LEN_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

/// An account as stored: the account, its secret's argon2 hash, and its refresh tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAccount {
    /// The account.
    pub account: Account,
    /// The PHC string of the secret's argon2 hash.
    pub secret_hash: String,
    /// Bumped on every change, so concurrent changes cannot overwrite each other.
    pub revision: u64,
    /// SHA-256 digests (hex) of the live refresh tokens, newest last; a secret change
    /// empties it.
    pub refresh: Vec<String>,
}

/// The cluster's RS256 key pair, created once at bootstrap and replicated.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeys {
    /// PKCS#1 DER of the private key.
    pub private_der: Vec<u8>,
    /// PKCS#1 DER of the public key.
    pub public_der: Vec<u8>,
}

impl std::fmt::Debug for SigningKeys {
    // Never print key material, even in a debug log of a command.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys([redacted])")
    }
}

impl std::fmt::Debug for StoredAccount {
    // A hash is not the secret, but it is what an offline guess starts from: not in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAccount")
            .field("account", &self.account)
            .field("revision", &self.revision)
            .field("refresh_tokens", &self.refresh.len())
            .finish_non_exhaustive()
    }
}

/// The most refresh tokens an account keeps; the oldest is dropped for a new one.
pub const REFRESH_TOKENS_MAX: usize = 16;

/// A resource a rule guards: `type:name:endpoint`, e.g. `service:store:Store.Read`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Resource {
    /// Usually `service`.
    pub kind: String,
    /// The service name.
    pub name: String,
    /// The endpoint (`Store.Read`) or an HTTP path.
    pub endpoint: String,
}

impl Resource {
    /// The resource of a service endpoint.
    pub fn service(name: &str, endpoint: &str) -> Self {
        Self {
            kind: "service".to_owned(),
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
        }
    }

    /// Parses `type:name:endpoint` (the endpoint may itself hold `:`).
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let mut parts = text.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(kind), Some(name), Some(endpoint))
                if !kind.is_empty() && !name.is_empty() && !endpoint.is_empty() =>
            {
                Ok(Self {
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                    endpoint: endpoint.to_owned(),
                })
            }
            _ => Err(AuthError::Invalid(format!(
                "resource {text:?} must be type:name:endpoint, e.g. service:helloworld:*"
            ))),
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.endpoint)
    }
}

/// What a rule does to the requests it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// Let them through.
    Granted,
    /// Refuse them.
    Denied,
}

/// An access rule of a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique within the namespace.
    pub id: String,
    /// `""` public, `*` any account of the namespace, `+` any account, or a scope.
    pub scope: String,
    /// What it guards; `*` fields match anything.
    pub resource: Resource,
    /// Grant or deny.
    pub access: Access,
    /// Higher is considered first.
    pub priority: i32,
}

impl Rule {
    /// The rule every namespace starts with: everything public.
    pub fn default_rule() -> Self {
        Self {
            id: DEFAULT_RULE_ID.to_owned(),
            scope: SCOPE_PUBLIC.to_owned(),
            resource: Resource {
                kind: "*".to_owned(),
                name: "*".to_owned(),
                endpoint: "*".to_owned(),
            },
            access: Access::Granted,
            priority: 0,
        }
    }

    /// Checks the fields a caller chooses.
    pub fn validate(&self) -> Result<(), AuthError> {
        check_name("rule id", &self.id, false)?;
        check_name("scope", &self.scope, true)?;
        let resource = &self.resource;
        for part in [&resource.kind, &resource.name, &resource.endpoint] {
            check_name("resource", part, false)?;
        }
        Ok(())
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No (valid) account: log in first.
    #[error("{0}")]
    Unauthorized(String),
    /// An account that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Malformed input.
    #[error("{0}")]
    Invalid(String),
    /// An id or name already taken.
    #[error("{0}")]
    Conflict(String),
    /// No such account or rule.
    #[error("{0}")]
    NotFound(String),
    /// The cluster could not do it now.
    #[error("{0}")]
    Unavailable(String),
    /// Too many failed logins for an account: wait before trying again.
    #[error("{0}")]
    TooManyAttempts(String),
}

impl HasCode for AuthError {
    fn code(&self) -> Code {
        match self {
            Self::Unauthorized(_) => Code::Unauthorized,
            Self::Forbidden(_) => Code::Forbidden,
            Self::Invalid(_) => Code::BadRequest,
            Self::Conflict(_) => Code::Conflict,
            Self::NotFound(_) => Code::NotFound,
            Self::Unavailable(_) => Code::Unavailable,
            Self::TooManyAttempts(_) => Code::TooManyRequests,
        }
    }
}

/// The hint every "log in first" error carries, so nobody is left guessing.
pub const LOGIN_HINT: &str = "log in with `micro login` or send `Authorization: Bearer <token>`";

fn unauthorized(what: &str) -> AuthError {
    AuthError::Unauthorized(format!("{what} needs an account: {LOGIN_HINT}"))
}

fn matches(pattern: &str, value: &str) -> bool {
    pattern == "*" || pattern.eq_ignore_ascii_case(value)
}

/// Whether `pattern` is `/a/*` and `endpoint` is `/a` or lies under `/a/` (v3 builds
/// the wildcards `/a/*`, `/a/b/*`, ... of every prefix of the endpoint, itself included).
fn path_wildcard(pattern: &str, endpoint: &str) -> bool {
    let Some(prefix) = pattern.strip_suffix('*').filter(|p| p.ends_with('/')) else {
        return false;
    };
    let bare = &prefix[..prefix.len() - 1];
    endpoint.eq_ignore_ascii_case(bare)
        || (endpoint.len() >= prefix.len()
            && endpoint.is_char_boundary(prefix.len())
            && endpoint[..prefix.len()].eq_ignore_ascii_case(prefix))
}

/// Decides whether `account` (or nobody) may reach `resource` in `namespace` under
/// `rules`, as Micro v3's `VerifyAccess` does.
///
/// ```
/// use micro_core::auth::{verify_access, Account, Resource, Rule, AuthError};
/// let rules = vec![Rule::default_rule()];
/// let store = Resource::service("store", "Store.Read");
/// assert!(verify_access(&rules, None, &store, "micro").is_ok());
/// assert!(matches!(verify_access(&[], None, &store, "micro"), Err(AuthError::Unauthorized(_))));
/// ```
pub fn verify_access(
    rules: &[Rule],
    account: Option<&Account>,
    resource: &Resource,
    namespace: &str,
) -> Result<(), AuthError> {
    let mut relevant: Vec<&Rule> = rules
        .iter()
        .filter(|rule| {
            let r = &rule.resource;
            matches(&r.kind, &resource.kind)
                && matches(&r.name, &resource.name)
                && (matches(&r.endpoint, &resource.endpoint)
                    || path_wildcard(&r.endpoint, &resource.endpoint))
        })
        .collect();
    // Equal priorities in id order: the same decision on every node, whatever order the
    // rules were stored in.
    relevant.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
    let denied = |account: Option<&Account>| match account {
        None => unauthorized(&resource.to_string()),
        Some(a) => AuthError::Forbidden(format!(
            "account {} of namespace {} may not call {resource} in namespace {namespace}",
            a.id, a.issuer
        )),
    };
    for rule in relevant {
        let decide = || match rule.access {
            Access::Granted => Ok(()),
            Access::Denied => Err(denied(account)),
        };
        if rule.scope == SCOPE_PUBLIC {
            return decide();
        }
        let Some(acc) = account else { continue };
        if rule.scope != SCOPE_ANY_NAMESPACE_ACCOUNT && acc.issuer != namespace {
            return Err(denied(account));
        }
        if rule.scope == SCOPE_ACCOUNT
            || rule.scope == SCOPE_ANY_NAMESPACE_ACCOUNT
            || acc.has_scope(&rule.scope)
        {
            return decide();
        }
    }
    Err(denied(account))
}

/// v3's `Authorize`: any account of `namespace`, or a `micro` admin or service account.
pub fn authorize(account: Option<&Account>, namespace: &str) -> Result<(), AuthError> {
    let Some(account) = account else {
        return Err(unauthorized(&format!("namespace {namespace}")));
    };
    if account.issuer == namespace || (account.issuer == DEFAULT_NAMESPACE && account.is_admin()) {
        return Ok(());
    }
    Err(AuthError::Forbidden(format!(
        "account {} of namespace {} may not use namespace {namespace}",
        account.id, account.issuer
    )))
}

/// v3's `AuthorizeAdmin`: [`authorize`], and the account is an admin or a service.
pub fn authorize_admin(account: Option<&Account>, namespace: &str) -> Result<(), AuthError> {
    authorize(account, namespace)?;
    match account {
        Some(a) if a.is_admin() => Ok(()),
        Some(a) => Err(AuthError::Forbidden(format!(
            "account {} needs scope admin or service in namespace {namespace}",
            a.id
        ))),
        None => Err(unauthorized(&format!("namespace {namespace}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, ns: &str, scopes: &[&str]) -> Account {
        Account {
            id: id.into(),
            kind: TYPE_USER.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            issuer: ns.into(),
            ..Account::default()
        }
    }

    fn rule(id: &str, scope: &str, resource: &str, access: Access, priority: i32) -> Rule {
        Rule {
            id: id.into(),
            scope: scope.into(),
            resource: Resource::parse(resource).unwrap(),
            access,
            priority,
        }
    }

    #[test]
    fn locked_down_namespace_needs_an_account_and_public_rules_reopen_services() {
        let rules = vec![
            rule("onlyloggedin", "*", "*:*:*", Access::Granted, 0),
            rule("hw", "", "service:helloworld:*", Access::Granted, 0),
        ];
        let hello = Resource::service("helloworld", "Helloworld.Call");
        let store = Resource::service("store", "Store.Read");
        assert!(verify_access(&rules, None, &hello, "micro").is_ok());
        assert!(matches!(
            verify_access(&rules, None, &store, "micro"),
            Err(AuthError::Unauthorized(_))
        ));
        let alice = account("alice", "micro", &[]);
        assert!(verify_access(&rules, Some(&alice), &store, "micro").is_ok());
        // An account of another namespace is refused unless the scope is `+`.
        let bob = account("bob", "b", &["admin"]);
        assert!(matches!(
            verify_access(&rules, Some(&bob), &store, "micro"),
            Err(AuthError::Forbidden(_))
        ));
        let any = vec![rule("any", "+", "*:*:*", Access::Granted, 0)];
        assert!(verify_access(&any, Some(&bob), &store, "micro").is_ok());
    }

    #[test]
    fn priorities_scopes_and_endpoint_wildcards() {
        let rules = vec![
            rule("grant", "*", "service:api:*", Access::Granted, 0),
            rule(
                "deny-admin",
                "*",
                "service:api:/admin/*",
                Access::Denied,
                10,
            ),
            rule("ops", "ops", "service:api:/admin/*", Access::Granted, 20),
        ];
        let alice = account("alice", "micro", &[]);
        let ops = account("olga", "micro", &["ops"]);
        let admin_path = Resource::service("api", "/Admin/users");
        // `/admin/*` covers `/admin` itself, as in v3.
        assert!(matches!(
            verify_access(
                &rules,
                Some(&alice),
                &Resource::service("api", "/admin"),
                "micro"
            ),
            Err(AuthError::Forbidden(_))
        ));
        assert!(matches!(
            verify_access(&rules, Some(&alice), &admin_path, "micro"),
            Err(AuthError::Forbidden(_))
        ));
        assert!(verify_access(&rules, Some(&ops), &admin_path, "micro").is_ok());
        let other = Resource::service("API", "/public");
        assert!(verify_access(&rules, Some(&alice), &other, "micro").is_ok());
        // A public denial refuses even accounts.
        let closed = vec![rule("closed", "", "*:*:*", Access::Denied, 0)];
        assert!(matches!(
            verify_access(&closed, Some(&alice), &other, "micro"),
            Err(AuthError::Forbidden(_))
        ));
    }

    #[test]
    fn authorize_lets_micro_admins_everywhere_and_others_home() {
        let a = account("a", "a", &[]);
        let micro_admin = account("admin", "micro", &["admin"]);
        let micro_user = account("u", "micro", &[]);
        assert!(authorize(Some(&a), "a").is_ok());
        assert!(authorize(Some(&a), "b").is_err());
        assert!(authorize(Some(&micro_admin), "b").is_ok());
        assert!(authorize(Some(&micro_user), "b").is_err());
        assert!(authorize_admin(Some(&a), "a").is_err());
        assert!(authorize_admin(Some(&micro_admin), "a").is_ok());
        assert!(matches!(
            authorize_admin(None, "a"),
            Err(AuthError::Unauthorized(_))
        ));
    }

    #[test]
    fn resources_parse_and_validate() {
        assert_eq!(
            Resource::parse("service:store:Store.Read").unwrap(),
            Resource::service("store", "Store.Read")
        );
        assert_eq!(
            Resource::parse("service:api:/a:b").unwrap().endpoint,
            "/a:b"
        );
        assert!(Resource::parse("service:store").is_err());
        assert!(Resource::parse("::x").is_err());
    }
}
