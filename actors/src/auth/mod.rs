//! Auth for a node: accounts, tokens and rules over the replicated state, and the checks
//! every door (proxy, HTTP api) makes.
//!
//! ```text
//! Token(id|name, secret) ─ read barrier ─ argon2 verify ─ propose refresh digest ─> JWT + refresh
//! Bearer JWT ─ RS256 verify with the cluster key (cached once) ─ account still in the
//!            locally applied state? ─> Account            (no Raft round trip per request)
//! check(account, namespace, resource) ─ rules as applied on this node ─> allow / 401 / 403
//! ```
//!
//! Rules and accounts are read from the local state on every check, so a rule change or
//! an account deletion takes effect on a node as soon as the node applies it.

pub mod backoff;
pub mod crypto;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use micro_core::auth::{
    ADMIN_DEFAULT_PASSWORD, ADMIN_ID, Account, AuthError, REFRESH_TOKENS_MAX, Resource, Rule,
    SCOPE_ADMIN, StoredAccount, TYPE_USER, authorize, authorize_admin, verify_access,
};
use micro_core::replicator::{ReplicaError, Replicator};
use micro_core::state::{Command, Response};
use micro_core::{Clock, HasCode, Namespace};

use crate::auth::crypto::Keys;

/// An access token's lifetime when the request names none (seconds).
pub const TOKEN_TTL_DEFAULT_SECS: u64 = 3600;
/// The longest access token lifetime granted (seconds).
pub const TOKEN_TTL_MAX_SECS: u64 = 24 * 3600;

/// A new account's fields, as `Auth.Generate` receives them.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// Its id (required).
    pub id: String,
    /// Its secret; a random one when empty.
    pub secret: String,
    /// `user` (default) or `service`.
    pub kind: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its labels.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// A second login name.
    pub name: String,
}

/// An issued token pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The RS256 JWT.
    pub access_token: String,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// Issued at (Unix seconds).
    pub created: i64,
    /// Expires at (Unix seconds).
    pub expiry: i64,
}

impl std::fmt::Debug for Token {
    // Tokens are credentials: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("created", &self.created)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

/// How a client proves who it is to `Auth.Token`.
#[derive(Clone)]
pub enum Credentials {
    /// An account id or name and its secret.
    Secret {
        /// Id or name.
        id: String,
        /// The secret.
        secret: String,
    },
    /// A refresh token from an earlier login.
    Refresh(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret { id, .. } => write!(f, "Credentials::Secret {{ id: {id:?}, .. }}"),
            Self::Refresh(_) => f.write_str("Credentials::Refresh(..)"),
        }
    }
}

/// The auth engine of a node; cheap to clone.
#[derive(Clone)]
pub struct AuthHandle {
    replicator: Arc<dyn Replicator>,
    clock: Arc<dyn Clock>,
    keys: Arc<OnceLock<Keys>>,
    verified: Arc<Mutex<HashMap<String, (Account, u64)>>>,
    hashing: Arc<tokio::sync::Semaphore>,
    backoff: Arc<backoff::LoginBackoff>,
}

/// Argon2 computations at once (each takes ~19 MiB and a core for tens of ms): a flood
/// of logins waits its turn instead of taking the node's memory.
const HASHING_MAX: usize = 2;

/// The most verified tokens remembered; the memory is cleared when it fills.
const VERIFIED_MAX: usize = 4096;

impl std::fmt::Debug for AuthHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthHandle").finish_non_exhaustive()
    }
}

#[allow(clippy::needless_pass_by_value)] // a `map_err` adaptor
fn replica(err: ReplicaError) -> AuthError {
    match err.code() {
        micro_core::Code::BadRequest => AuthError::Invalid(err.to_string()),
        _ => AuthError::Unavailable(err.to_string()),
    }
}

#[allow(clippy::needless_pass_by_value)] // a `map_err` adaptor
fn kv(err: micro_core::kv::KvError) -> AuthError {
    AuthError::Unavailable(format!("reading auth state: {}", err.0))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuthError::Unavailable(format!("auth worker failed: {e}")))?
}

impl AuthHandle {
    /// Auth over `replicator`'s state, with `clock` for token times.
    pub fn new(replicator: Arc<dyn Replicator>, clock: Arc<dyn Clock>) -> Self {
        Self {
            replicator,
            clock,
            keys: Arc::default(),
            verified: Arc::default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHING_MAX)),
            backoff: Arc::default(),
        }
    }

    /// Creates the cluster's key pair and the `admin` account of namespace `micro` with
    /// `admin_password`, unless a bootstrap already happened (then does nothing).
    /// Returns whether this call bootstrapped.
    pub async fn bootstrap(&self, admin_password: &str) -> Result<bool, AuthError> {
        if self.replicator.reader().auth_keys().map_err(kv)?.is_some() {
            return Ok(false);
        }
        let password = admin_password.to_owned();
        let (keys, hash) =
            blocking(move || Ok((crypto::generate_keys()?, crypto::hash_secret(&password)?)))
                .await?;
        let admin = StoredAccount {
            account: Account {
                id: ADMIN_ID.to_owned(),
                kind: TYPE_USER.to_owned(),
                scopes: vec![SCOPE_ADMIN.to_owned()],
                issuer: micro_core::namespace::DEFAULT_NAMESPACE.to_owned(),
                ..Account::default()
            },
            secret_hash: hash,
            revision: 0,
            refresh: Vec::new(),
        };
        let response = self
            .replicator
            .propose(Command::AuthBootstrap {
                keys,
                admin: Box::new(admin),
            })
            .await
            .map_err(replica)?;
        Ok(response == Response::Done)
    }

    /// Whether `admin` of `micro` still has the default password (worth a warning).
    pub async fn admin_has_default_password(&self) -> bool {
        let Ok(Some(admin)) = self
            .replicator
            .reader()
            .auth_account(&Namespace::default(), ADMIN_ID)
        else {
            return false;
        };
        blocking(move || {
            Ok(crypto::secret_matches(
                ADMIN_DEFAULT_PASSWORD,
                &admin.secret_hash,
            ))
        })
        .await
        .unwrap_or(false)
    }

    /// Runs an argon2 computation off the async threads, at most [`HASHING_MAX`] at once.
    async fn argon<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AuthError::Unavailable("auth is shutting down".to_owned()))?;
        blocking(f).await
    }

    fn keys(&self) -> Result<&Keys, AuthError> {
        if let Some(keys) = self.keys.get() {
            return Ok(keys);
        }
        let stored = self.replicator.reader().auth_keys().map_err(kv)?;
        let stored = stored.ok_or_else(|| {
            AuthError::Unavailable("auth is not bootstrapped yet; retry in a moment".to_owned())
        })?;
        // The keys never change once stored, so the first load is kept for good.
        Ok(self.keys.get_or_init(|| Keys::new(&stored)))
    }

    /// The account behind a bearer token: its signature and expiry hold and the account
    /// still exists on this node. Any failure is `Unauthorized`.
    ///
    /// A token whose signature was checked once is remembered (RSA verification is the
    /// costly part); its expiry and its account's existence are checked every time.
    pub fn verify(&self, token: &str) -> Result<Account, AuthError> {
        let remembered = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned();
        let (account, exp) = match remembered {
            Some(found) => found,
            None => {
                let found = self.keys()?.verify(token)?;
                let mut verified = self
                    .verified
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if verified.len() >= VERIFIED_MAX {
                    verified.clear();
                }
                verified.insert(token.to_owned(), found.clone());
                found
            }
        };
        if exp <= self.now_secs() {
            return Err(AuthError::Unauthorized(format!(
                "the token has expired: {}",
                micro_core::auth::LOGIN_HINT
            )));
        }
        let namespace = Namespace::new(account.issuer.as_str())
            .map_err(|e| AuthError::Unauthorized(e.to_string()))?;
        let stored = self
            .replicator
            .reader()
            .auth_account(&namespace, &account.id)
            .map_err(kv)?;
        // The account as it is now (its scopes may have changed since the token was
        // issued, or it may have been deleted and made again with fewer).
        stored.map(|s| s.account).ok_or_else(|| {
            AuthError::Unauthorized(format!(
                "account {} of namespace {namespace} no longer exists: {}",
                account.id,
                micro_core::auth::LOGIN_HINT
            ))
        })
    }

    /// Whether `account` (or nobody) may call `resource` in `namespace`, by the rules
    /// this node has applied.
    pub fn check(
        &self,
        account: Option<&Account>,
        namespace: &Namespace,
        resource: &Resource,
    ) -> Result<(), AuthError> {
        let rules = self.replicator.reader().auth_rules(namespace).map_err(kv)?;
        verify_access(&rules, account, resource, namespace.as_str())
    }

    fn now_secs(&self) -> u64 {
        self.clock.now_ms() / 1000
    }

    /// Creates an account in `namespace` (caller must administer it) and returns it with
    /// its secret, the only time the secret is ever shown.
    pub async fn generate(
        &self,
        caller: Option<&Account>,
        namespace: &Namespace,
        new: NewAccount,
    ) -> Result<(Account, String), AuthError> {
        authorize_admin(caller, namespace.as_str())?;
        let account = Account {
            id: new.id,
            kind: if new.kind.is_empty() {
                TYPE_USER.to_owned()
            } else {
                new.kind
            },
            metadata: new.metadata,
            scopes: new.scopes,
            issuer: namespace.to_string(),
            name: new.name,
        };
        account.validate()?;
        let secret = if new.secret.is_empty() {
            crypto::random_secret()?
        } else {
            new.secret
        };
        let to_hash = secret.clone();
        let secret_hash = self.argon(move || crypto::hash_secret(&to_hash)).await?;
        let stored = StoredAccount {
            account: account.clone(),
            secret_hash,
            revision: 0,
            refresh: Vec::new(),
        };
        let command = Command::AuthAccountCreate {
            namespace: namespace.clone(),
            account: Box::new(stored),
        };
        match self.replicator.propose(command).await.map_err(replica)? {
            Response::Refused { reason } => Err(AuthError::Conflict(reason)),
            _ => Ok((account, secret)),
        }
    }

    fn find_account(
        &self,
        namespace: &Namespace,
        id_or_name: &str,
    ) -> Result<Option<StoredAccount>, AuthError> {
        let reader = self.replicator.reader();
        if let Some(found) = reader.auth_account(namespace, id_or_name).map_err(kv)? {
            return Ok(Some(found));
        }
        Ok(reader
            .auth_accounts(namespace)
            .map_err(kv)?
            .into_iter()
            .find(|s| !s.account.name.is_empty() && s.account.name == id_or_name))
    }

    /// Issues a token pair for `namespace` (`Auth.Token`): a login with a secret records
    /// a new refresh token; a refresh token is honoured while its account lives and its
    /// secret is unchanged.
    pub async fn token(
        &self,
        namespace: &Namespace,
        credentials: Credentials,
        ttl_secs: u64,
    ) -> Result<Token, AuthError> {
        let denied = || {
            AuthError::Unauthorized(format!("wrong account or secret for namespace {namespace}"))
        };
        self.replicator.read_barrier().await.map_err(replica)?;
        let (account, refresh) = match credentials {
            Credentials::Refresh(token) => {
                let (ns, id) = crypto::refresh_token_owner(&token).ok_or_else(denied)?;
                let ns = Namespace::new(ns).map_err(|_| denied())?;
                let stored = self.find_account(&ns, &id)?.ok_or_else(denied)?;
                if !stored.refresh.contains(&crypto::digest(&token)) {
                    return Err(AuthError::Unauthorized(
                        "the refresh token is no longer valid: log in again".to_owned(),
                    ));
                }
                (stored.account, token)
            }
            Credentials::Secret { id, secret } => {
                let now = self.clock.now_ms();
                let wait = self.backoff.wait_ms(namespace.as_str(), &id, now);
                if wait > 0 {
                    return Err(AuthError::TooManyAttempts(format!(
                        "too many failed logins for {id:?} in namespace {namespace}: retry in \
                         {} s",
                        wait.div_ceil(1000)
                    )));
                }
                let found = self.find_account(namespace, &id)?;
                // An unknown account costs a hash too, so timing does not tell which exist.
                let hash = found
                    .as_ref()
                    .map_or_else(|| crypto::DUMMY_HASH.to_owned(), |s| s.secret_hash.clone());
                let matches = self
                    .argon(move || Ok(crypto::secret_matches(&secret, &hash)))
                    .await?;
                let Some(stored) = found.filter(|_| matches) else {
                    self.backoff.failed(namespace.as_str(), &id, now);
                    return Err(denied());
                };
                self.backoff.succeeded(namespace.as_str(), &id);
                let refresh = self.grant_refresh(namespace, stored.clone()).await?;
                (stored.account, refresh)
            }
        };
        let ttl = match ttl_secs {
            0 => TOKEN_TTL_DEFAULT_SECS,
            n => n.min(TOKEN_TTL_MAX_SECS),
        };
        let now = self.now_secs();
        let access_token = self.keys()?.sign(&account, now, ttl)?;
        let secs = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(Token {
            access_token,
            refresh_token: refresh,
            created: secs(now),
            expiry: secs(now.saturating_add(ttl)),
        })
    }

    async fn grant_refresh(
        &self,
        namespace: &Namespace,
        mut stored: StoredAccount,
    ) -> Result<String, AuthError> {
        let checked_hash = stored.secret_hash.clone();
        let token = crypto::new_refresh_token(namespace.as_str(), &stored.account.id)?;
        // A racing change of the same account makes the update refuse; re-read and retry.
        for _ in 0..5 {
            let revision = stored.revision;
            stored.revision += 1;
            stored.refresh.push(crypto::digest(&token));
            let excess = stored.refresh.len().saturating_sub(REFRESH_TOKENS_MAX);
            stored.refresh.drain(..excess);
            let id = stored.account.id.clone();
            let command = Command::AuthAccountUpdate {
                namespace: namespace.clone(),
                account: Box::new(stored),
                revision,
            };
            match self.replicator.propose(command).await.map_err(replica)? {
                Response::Refused { .. } => {
                    // The secret that was checked must still be the account's: a login
                    // racing a secret change (or a delete and re-create) gets nothing.
                    self.replicator.read_barrier().await.map_err(replica)?;
                    let current = self.find_account(namespace, &id)?;
                    stored = current
                        .filter(|c| c.secret_hash == checked_hash)
                        .ok_or_else(|| {
                            AuthError::Unauthorized(format!(
                                "account {id} changed while logging in: log in again"
                            ))
                        })?;
                }
                _ => return Ok(token),
            }
        }
        Err(AuthError::Unavailable(
            "the account kept changing; retry".to_owned(),
        ))
    }

    /// The accounts of `namespace`, without secrets (caller must administer it).
    pub fn list_accounts(
        &self,
        caller: Option<&Account>,
        namespace: &Namespace,
    ) -> Result<Vec<Account>, AuthError> {
        authorize_admin(caller, namespace.as_str())?;
        let accounts = self
            .replicator
            .reader()
            .auth_accounts(namespace)
            .map_err(kv)?;
        Ok(accounts.into_iter().map(|s| s.account).collect())
    }

    /// Deletes an account (caller must administer the namespace, and not be it).
    pub async fn delete_account(
        &self,
        caller: Option<&Account>,
        namespace: &Namespace,
        id: &str,
    ) -> Result<(), AuthError> {
        authorize_admin(caller, namespace.as_str())?;
        if caller.is_some_and(|c| c.id == id && c.issuer == namespace.as_str()) {
            return Err(AuthError::Invalid(
                "you cannot delete your own account".to_owned(),
            ));
        }
        let command = Command::AuthAccountDelete {
            namespace: namespace.clone(),
            id: id.to_owned(),
        };
        self.delete(command, &format!("account {id}"), namespace)
            .await
    }

    /// The runtime's own door: (re)creates service account `id` of `namespace` (type
    /// and scope `service`) with a fresh random secret and returns the secret. The
    /// runtime checked its caller already (an admin of the namespace runs services).
    pub async fn service_account(
        &self,
        namespace: &Namespace,
        id: &str,
    ) -> Result<String, AuthError> {
        self.drop_service_account(namespace, id).await?;
        let system = Account {
            id: "runtime".to_owned(),
            kind: micro_core::auth::TYPE_SERVICE.to_owned(),
            metadata: std::collections::BTreeMap::new(),
            scopes: vec![micro_core::auth::SCOPE_SERVICE.to_owned()],
            issuer: Namespace::default().to_string(),
            name: String::new(),
        };
        let new = NewAccount {
            id: id.to_owned(),
            secret: String::new(),
            kind: micro_core::auth::TYPE_SERVICE.to_owned(),
            scopes: vec![micro_core::auth::SCOPE_SERVICE.to_owned()],
            metadata: std::collections::BTreeMap::from([(
                "created_by".to_owned(),
                "runtime".to_owned(),
            )]),
            name: String::new(),
        };
        let (_, secret) = self.generate(Some(&system), namespace, new).await?;
        Ok(secret)
    }

    /// Removes service account `id` of `namespace` if it exists (the runtime's door,
    /// when it stops a service).
    pub async fn drop_service_account(
        &self,
        namespace: &Namespace,
        id: &str,
    ) -> Result<(), AuthError> {
        let command = Command::AuthAccountDelete {
            namespace: namespace.clone(),
            id: id.to_owned(),
        };
        self.replicator.propose(command).await.map_err(replica)?;
        Ok(())
    }

    /// Proposes a delete; deleting what does not exist is `NotFound`.
    async fn delete(
        &self,
        command: Command,
        what: &str,
        namespace: &Namespace,
    ) -> Result<(), AuthError> {
        match self.replicator.propose(command).await.map_err(replica)? {
            Response::Deleted { existed: false } => Err(AuthError::NotFound(format!(
                "{what} does not exist in namespace {namespace}"
            ))),
            _ => Ok(()),
        }
    }

    /// Changes an account's secret, voiding its refresh tokens. The old secret is needed
    /// unless the caller is a `micro` admin or a service account of the namespace.
    pub async fn change_secret(
        &self,
        caller: Option<&Account>,
        namespace: &Namespace,
        id: &str,
        old_secret: &str,
        new_secret: &str,
    ) -> Result<(), AuthError> {
        if new_secret.is_empty() {
            return Err(AuthError::Invalid("the new secret is empty".to_owned()));
        }
        self.replicator.read_barrier().await.map_err(replica)?;
        let mut stored = self.find_account(namespace, id)?.ok_or_else(|| {
            AuthError::NotFound(format!(
                "account {id} does not exist in namespace {namespace}"
            ))
        })?;
        let privileged = caller.is_some_and(|c| {
            (c.issuer == micro_core::namespace::DEFAULT_NAMESPACE && c.has_scope(SCOPE_ADMIN))
                || (c.issuer == namespace.as_str() && c.kind == micro_core::auth::TYPE_SERVICE)
        });
        if !privileged {
            let (old, hash) = (old_secret.to_owned(), stored.secret_hash.clone());
            if !self
                .argon(move || Ok(crypto::secret_matches(&old, &hash)))
                .await?
            {
                return Err(AuthError::Unauthorized(
                    "the old secret is wrong".to_owned(),
                ));
            }
        }
        let new = new_secret.to_owned();
        stored.secret_hash = self.argon(move || crypto::hash_secret(&new)).await?;
        stored.refresh.clear();
        let revision = stored.revision;
        stored.revision += 1;
        let command = Command::AuthAccountUpdate {
            namespace: namespace.clone(),
            account: Box::new(stored),
            revision,
        };
        match self.replicator.propose(command).await.map_err(replica)? {
            Response::Refused { reason } => Err(AuthError::Conflict(reason)),
            _ => Ok(()),
        }
    }

    /// The rules of `namespace` (any account of it may list them).
    pub fn list_rules(
        &self,
        caller: Option<&Account>,
        namespace: &Namespace,
    ) -> Result<Vec<Rule>, AuthError> {
        authorize(caller, namespace.as_str())?;
        self.replicator.reader().auth_rules(namespace).map_err(kv)
    }

    /// Creates or replaces a rule (caller must administer the namespace).
    pub async fn create_rule(
        &self,
        caller: Option<&Account>,
        namespace: &Namespace,
        rule: Rule,
    ) -> Result<(), AuthError> {
        authorize_admin(caller, namespace.as_str())?;
        rule.validate()?;
        let command = Command::AuthRulePut {
            namespace: namespace.clone(),
            rule,
        };
        self.replicator.propose(command).await.map_err(replica)?;
        Ok(())
    }

    /// Deletes a rule (caller must administer the namespace).
    pub async fn delete_rule(
        &self,
        caller: Option<&Account>,
        namespace: &Namespace,
        id: &str,
    ) -> Result<(), AuthError> {
        authorize_admin(caller, namespace.as_str())?;
        let command = Command::AuthRuleDelete {
            namespace: namespace.clone(),
            id: id.to_owned(),
        };
        self.delete(command, &format!("rule {id}"), namespace).await
    }
}

#[cfg(test)]
mod tests;
