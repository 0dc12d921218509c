//! A service's own login: the access token the framework attaches to the service's
//! calls, kept fresh in the background.
//!
//! ```text
//! MICRO_AUTH_ID + MICRO_AUTH_SECRET ─ Auth.Token ─> Session (token, refresh token)
//!     every 15 s: under a third of its life left? ─ refresh ─(fails)─> log in again
//! Client::new / from_channel ─ picks up the process's session ─> Authorization: Bearer
//! ```

use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use micro_core::Clock;

use crate::client::Client;
use crate::error::Error;

/// How often the refresher looks at the token.
const CHECK_EVERY: Duration = Duration::from_secs(15);
/// The lifetime a service asks for its tokens (seconds), as v3's services did.
pub const TOKEN_TTL_SECS: i64 = 600;

struct Inner {
    id: String,
    secret: String,
    token: RwLock<micro_proto::auth::Token>,
}

impl std::fmt::Debug for Inner {
    // The secret and the tokens are credentials: a `{:?}` of a client must not show them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.id)
            .finish_non_exhaustive()
    }
}

/// A logged-in account whose access token is refreshed before it expires; cheap to
/// clone. The refresher stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

static SERVICE_SESSION: OnceLock<Session> = OnceLock::new();

/// The process's own session (set by [`crate::Service::run`] from `MICRO_AUTH_ID` and
/// `MICRO_AUTH_SECRET`); every [`Client`] made afterwards sends its token.
pub fn service_session() -> Option<Session> {
    SERVICE_SESSION.get().cloned()
}

pub(crate) fn set_service_session(session: Session) {
    let _ = SERVICE_SESSION.set(session);
}

fn now_secs() -> i64 {
    i64::try_from(micro_core::SystemClock.now_ms() / 1000).unwrap_or(i64::MAX)
}

impl Session {
    /// Logs in as `id` with `secret` through `client`'s proxy and namespace.
    pub async fn login(client: &Client, id: &str, secret: &str) -> Result<Self, Error> {
        let token = client.auth().token(id, secret, TOKEN_TTL_SECS).await?;
        let session = Self {
            inner: Arc::new(Inner {
                id: id.to_owned(),
                secret: secret.to_owned(),
                token: RwLock::new(token),
            }),
        };
        tokio::spawn(refresh_loop(client.clone(), Arc::downgrade(&session.inner)));
        Ok(session)
    }

    /// The current access token.
    pub fn access_token(&self) -> String {
        self.inner
            .token
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .access_token
            .clone()
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.inner.id
    }
}

async fn refresh_loop(client: Client, session: Weak<Inner>) {
    // The refresher's own calls must not carry the token being replaced.
    let client = client.without_session();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let Some(inner) = session.upgrade() else {
            return;
        };
        let (refresh, created, expiry) = {
            let token = inner
                .token
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (token.refresh_token.clone(), token.created, token.expiry)
        };
        let life = (expiry - created).max(1);
        if expiry - now_secs() > life / 3 {
            continue;
        }
        let auth = client.auth();
        let fresh = match auth.refresh(&refresh, TOKEN_TTL_SECS).await {
            Ok(token) => Ok(token),
            // A refresh token dies with a secret change: log in again.
            Err(_) => auth.token(&inner.id, &inner.secret, TOKEN_TTL_SECS).await,
        };
        match fresh {
            Ok(token) => {
                *inner
                    .token
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = token;
            }
            Err(err) => {
                tracing::warn!(account = %inner.id, error = %err, "token refresh failed; retrying")
            }
        }
    }
}
