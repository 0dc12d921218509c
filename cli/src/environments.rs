//! Environments: named proxy addresses the CLI can switch between (Micro v3's `micro
//! env`), kept in `~/.micro/config.json` beside the current namespaces.
//!
//! ```text
//! config.json { "env": "staging",
//!               "envs": { "staging": { "proxy": "127.0.0.2:8081", "description": "" } },
//!               "namespaces": { "<env name, or proxy address for --proxy>": "<ns>" } }
//! which proxy: --proxy / MICRO_PROXY, else the environment of --env / MICRO_ENV,
//!              else config.env, else `local` (127.0.0.1:8081)
//! ```
//!
//! Logins stay keyed by proxy address (`session`), so two environments at different
//! addresses keep separate logins while `--proxy ADDR` and an environment pointing at
//! ADDR share one. Every read-modify-write of the file holds an exclusive lock on
//! `config.lock`, so two commands changing it at once cannot lose each other's change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::exit::{CliError, OTHER};

/// The built-in environment.
pub const LOCAL: &str = "local";
/// Its proxy.
pub const LOCAL_PROXY: &str = "127.0.0.1:8081";

/// One stored environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Env {
    /// The proxy address (`host:port`).
    pub proxy: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// The CA certificate file the proxy's certificate chains to; with it the CLI
    /// speaks TLS to the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<std::path::PathBuf>,
}

/// `config.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Config {
    /// The current environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env: Option<String>,
    /// Stored environments.
    #[serde(default)]
    pub(crate) envs: BTreeMap<String, Env>,
    /// The current namespace per environment (or per proxy address given with --proxy).
    #[serde(default)]
    pub(crate) namespaces: BTreeMap<String, String>,
}

fn path() -> std::path::PathBuf {
    crate::node::micro_home().join("config.json")
}

/// Reads the configuration.
pub(crate) fn read() -> Result<Config, CliError> {
    crate::session::read_json(&path())
}

/// Changes the configuration under an exclusive lock.
pub(crate) fn update<T>(
    change: impl FnOnce(&mut Config) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let home = crate::node::micro_home();
    std::fs::create_dir_all(&home)
        .map_err(|e| CliError::new(OTHER, format!("creating {}: {e}", home.display())))?;
    let lock_path = home.join("config.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| CliError::new(OTHER, format!("opening {}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| CliError::new(OTHER, format!("locking {}: {e}", lock_path.display())))?;
    let mut config = read()?;
    let result = change(&mut config)?;
    crate::session::write_json(&path(), &config)?;
    Ok(result)
}

/// Where a command goes: the proxy, and the key of its current namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The proxy address.
    pub proxy: String,
    /// The environment's name, or the proxy address when `--proxy` chose it.
    pub context: String,
    /// The CA to trust, for a TLS proxy: `--proxy-ca`, else the environment's.
    pub ca: Option<std::path::PathBuf>,
}

/// Resolves `--proxy`, `--env` and `--proxy-ca` (flags or their variables) against the
/// stored configuration.
pub fn resolve(
    proxy: Option<&str>,
    env: Option<&str>,
    ca: Option<&std::path::Path>,
) -> Result<Target, CliError> {
    if let Some(proxy) = proxy.filter(|p| !p.is_empty()) {
        return Ok(Target {
            proxy: proxy.to_owned(),
            context: proxy.to_owned(),
            ca: ca.map(std::path::Path::to_path_buf),
        });
    }
    let config = read()?;
    let name = env
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .or(config.env.clone())
        .unwrap_or_else(|| LOCAL.to_owned());
    let proxy = proxy_of(&config, &name)?;
    let ca = ca
        .map(std::path::Path::to_path_buf)
        .or_else(|| config.envs.get(&name).and_then(|e| e.ca.clone()));
    Ok(Target {
        proxy,
        context: name,
        ca,
    })
}

fn proxy_of(config: &Config, name: &str) -> Result<String, CliError> {
    if name == LOCAL {
        return Ok(LOCAL_PROXY.to_owned());
    }
    config
        .envs
        .get(name)
        .map(|e| e.proxy.clone())
        .ok_or_else(|| {
            CliError::usage(format!(
                "no environment named {name:?}; `micro env` lists them, `micro env add {name} \
                 HOST:PORT` adds it"
            ))
        })
}

/// Every environment, `local` first, with its proxy and description.
pub fn list() -> Result<(String, Vec<(String, Env)>), CliError> {
    let config = read()?;
    let current = config.env.clone().unwrap_or_else(|| LOCAL.to_owned());
    let mut all = vec![(
        LOCAL.to_owned(),
        Env {
            proxy: LOCAL_PROXY.to_owned(),
            description: "Local running Micro Server".to_owned(),
            ca: None,
        },
    )];
    all.extend(config.envs);
    Ok((current, all))
}

fn check_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{name:?}: an environment name is letters, digits, '-', '_' and '.'"
        )))
    }
}

/// Adds (or replaces) environment `name` at `proxy` (an address without a port gets
/// `:443`, as in v3), trusting the CA certificate in file `ca` when one is given.
pub fn add(
    name: &str,
    proxy: &str,
    description: &str,
    ca: Option<&std::path::Path>,
) -> Result<(), CliError> {
    check_name(name)?;
    if name == LOCAL {
        return Err(CliError::usage("`local` is built in and cannot be changed"));
    }
    if proxy.trim().is_empty() {
        return Err(CliError::usage("the proxy address is empty"));
    }
    let proxy = if proxy.contains(':') {
        proxy.to_owned()
    } else {
        format!("{proxy}:443")
    };
    let ca = ca.map(checked_ca).transpose()?;
    update(|config| {
        config.envs.insert(
            name.to_owned(),
            Env {
                proxy,
                description: description.to_owned(),
                ca,
            },
        );
        Ok(())
    })
}

/// `path` made absolute, once it is known to hold a CA certificate, so the environment
/// works from any directory.
fn checked_ca(path: &std::path::Path) -> Result<std::path::PathBuf, CliError> {
    let pem = std::fs::read(path)
        .map_err(|e| CliError::usage(format!("--ca {}: {e}", path.display())))?;
    micro_proto::tls::trust(&pem)
        .map_err(|e| CliError::usage(format!("--ca {}: {e}", path.display())))?;
    std::path::absolute(path).map_err(|e| CliError::usage(format!("--ca {}: {e}", path.display())))
}

/// Makes `name` the current environment.
pub fn set(name: &str) -> Result<(), CliError> {
    update(|config| {
        proxy_of(config, name)?;
        config.env = (name != LOCAL).then(|| name.to_owned());
        Ok(())
    })
}

/// Deletes environment `name` (the current one goes back to `local`).
pub fn delete(name: &str) -> Result<(), CliError> {
    if name == LOCAL {
        return Err(CliError::usage("`local` is built in and cannot be deleted"));
    }
    update(|config| {
        if config.envs.remove(name).is_none() {
            return Err(CliError::usage(format!("no environment named {name:?}")));
        }
        if config.env.as_deref() == Some(name) {
            config.env = None;
        }
        config.namespaces.remove(name);
        Ok(())
    })
}
