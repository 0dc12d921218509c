//! The CLI's logins and current namespace, kept under `MICRO_HOME` (`~/.micro`).
//!
//! ```text
//! ~/.micro/tokens.json   { "<proxy>/<namespace>": { account, access_token, refresh_token,
//!                                                    created, expiry } }   (mode 0600)
//! ~/.micro/config.json   environments and the current namespace of each
//!                        (see [`crate::environments`])
//! ```
//!
//! A login is keyed by the proxy address a command actually talks to and the namespace,
//! as Micro v3's token file was. A command in a namespace without its own login uses the
//! proxy's `micro` login (a `micro` admin may act in every namespace). A token within a
//! minute of expiry is refreshed before the command runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use micro_core::Namespace;
use micro_proto::auth as pb;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::exit::{CliError, OTHER};

/// Refresh a token when less than this is left (seconds).
const REFRESH_MARGIN_SECS: i64 = 60;
/// The lifetime the CLI asks for its access tokens (seconds), as v3's CLI did.
pub const TOKEN_TTL_SECS: i64 = 600;

/// One login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The account id.
    pub account: String,
    /// The access token (JWT).
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Issued at (Unix seconds).
    pub created: i64,
    /// Expires at (Unix seconds).
    pub expiry: i64,
}

fn home() -> PathBuf {
    crate::node::micro_home()
}

pub(crate) fn read_json<T: Default + for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<T, CliError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CliError::new(
                OTHER,
                format!(
                    "{} is not valid JSON ({e}); fix or delete it",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(CliError::new(
            OTHER,
            format!("reading {}: {e}", path.display()),
        )),
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file;
/// readable by the owner only, since it may hold tokens.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CliError> {
    let fail = |e: &dyn std::fmt::Display| {
        CliError::new(OTHER, format!("writing {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| fail(&e))?;
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(|e| fail(&e))?;
        file.write_all(&bytes).map_err(|e| fail(&e))?;
        file.sync_all().map_err(|e| fail(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| fail(&e))
}

fn key(proxy: &str, namespace: &Namespace) -> String {
    format!("{proxy}/{namespace}")
}

fn tokens_path() -> PathBuf {
    home().join("tokens.json")
}

/// The login stored for `proxy` and `namespace`.
pub fn login_for(proxy: &str, namespace: &Namespace) -> Result<Option<Login>, CliError> {
    let tokens: BTreeMap<String, Login> = read_json(&tokens_path())?;
    Ok(tokens.get(&key(proxy, namespace)).cloned())
}

/// Stores (or with `None` forgets) the login for `proxy` and `namespace`.
pub fn save_login(
    proxy: &str,
    namespace: &Namespace,
    login: Option<Login>,
) -> Result<(), CliError> {
    let path = tokens_path();
    let mut tokens: BTreeMap<String, Login> = read_json(&path)?;
    match login {
        Some(login) => tokens.insert(key(proxy, namespace), login),
        None => tokens.remove(&key(proxy, namespace)),
    };
    write_json(&path, &tokens)
}

/// The current namespace of `context` (an environment's name, or a proxy address given
/// with `--proxy`), if `micro user namespace set` chose one.
pub fn current_namespace(context: &str) -> Result<Option<String>, CliError> {
    Ok(crate::environments::read()?
        .namespaces
        .get(context)
        .cloned())
}

/// Sets the current namespace of `context`.
pub fn set_namespace(context: &str, namespace: &Namespace) -> Result<(), CliError> {
    crate::environments::update(|config| {
        config
            .namespaces
            .insert(context.to_owned(), namespace.to_string());
        Ok(())
    })
}

fn now_secs() -> i64 {
    let ms = micro_core::Clock::now_ms(&micro_core::SystemClock);
    i64::try_from(ms / 1000).unwrap_or(i64::MAX)
}

/// A login from a `Token` reply.
pub fn login_from(account: &str, token: pb::Token) -> Login {
    Login {
        account: account.to_owned(),
        access_token: token.access_token,
        refresh_token: token.refresh_token,
        created: token.created,
        expiry: token.expiry,
    }
}

/// `client` carrying the stored login for its proxy and namespace (else the proxy's
/// `micro` login), refreshed first when it is about to expire. Without a usable login
/// the client stays anonymous; the command then fails with a hint to log in.
pub async fn attach(client: Client) -> Result<Client, CliError> {
    let proxy = client.proxy().to_owned();
    let namespace = client.namespace().clone();
    let (login_ns, login) = match login_for(&proxy, &namespace)? {
        Some(login) => (namespace, Some(login)),
        None => {
            let micro = Namespace::default();
            let login = login_for(&proxy, &micro)?;
            (micro, login)
        }
    };
    let Some(mut login) = login else {
        return Ok(client);
    };
    if login.expiry - now_secs() < REFRESH_MARGIN_SECS {
        let request = pb::TokenRequest {
            refresh_token: login.refresh_token.clone(),
            token_expiry: TOKEN_TTL_SECS,
            options: Some(pb::Options {
                namespace: login_ns.to_string(),
            }),
            ..pb::TokenRequest::default()
        };
        match client.auth().token(client.request(request)).await {
            Ok(reply) => {
                let Some(token) = reply.into_inner().token else {
                    return Ok(client);
                };
                login = login_from(&login.account, token);
                save_login(&proxy, &login_ns, Some(login.clone()))?;
            }
            // An expired session: go on anonymously; the command's error says to log in.
            Err(_) => return Ok(client),
        }
    }
    Ok(client.with_token(Some(login.access_token)))
}
