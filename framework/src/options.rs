//! A service's settings: their defaults and limits.

use std::collections::BTreeMap;
use std::time::Duration;

use micro_core::Namespace;
use micro_core::registry::check_name;

use crate::env;
use crate::error::{self, Error};

/// How long a registration lives without a refresh, by default (Micro v3's 90 s).
pub const DEFAULT_REGISTER_TTL: Duration = Duration::from_secs(90);
/// How often a process service refreshes its registration, by default (30 s).
pub const DEFAULT_REGISTER_INTERVAL: Duration = Duration::from_secs(30);
/// Workers per handler, by default: the calls of one handler served at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// The most workers per handler.
pub const CONCURRENCY_MAX: usize = 1024;
/// How long one call may run before it fails with 408, by default.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(60);

/// A service's settings.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) namespace: Namespace,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) register_ttl: Duration,
    pub(crate) register_interval: Duration,
    pub(crate) concurrency: usize,
    pub(crate) handler_timeout: Duration,
}

impl Options {
    /// The defaults for a service called `name`.
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: "latest".to_owned(),
            namespace: Namespace::default(),
            metadata: BTreeMap::new(),
            register_ttl: DEFAULT_REGISTER_TTL,
            register_interval: DEFAULT_REGISTER_INTERVAL,
            concurrency: DEFAULT_CONCURRENCY,
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
        }
    }

    /// Applies the overrides of [`crate::env`](mod@crate::env) read through `var`, then validates.
    pub(crate) fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let set = |key: &str| var(key).filter(|v| !v.trim().is_empty());
        if let Some(name) = set(env::SERVICE_NAME) {
            self.name = name;
        }
        if let Some(version) = set(env::SERVICE_VERSION) {
            self.version = version;
        }
        if let Some(namespace) = set(env::NAMESPACE) {
            self.namespace = Namespace::new(namespace)
                .map_err(|e| error::bad_request(&self.name, format!("{}: {e}", env::NAMESPACE)))?;
        }
        if let Some(ttl) = set(env::REGISTER_TTL) {
            self.register_ttl = seconds(&self.name, env::REGISTER_TTL, &ttl)?;
        }
        if let Some(interval) = set(env::REGISTER_INTERVAL) {
            self.register_interval = seconds(&self.name, env::REGISTER_INTERVAL, &interval)?;
        }
        self.validate()
    }

    /// Checks the settings against their limits.
    pub(crate) fn validate(self) -> Result<Self, Error> {
        let invalid = |detail: String| error::bad_request(&self.name, detail);
        check_name("service name", &self.name, false).map_err(|e| invalid(e.to_string()))?;
        check_name("service version", &self.version, false).map_err(|e| invalid(e.to_string()))?;
        if !(1..=CONCURRENCY_MAX).contains(&self.concurrency) {
            return Err(invalid(format!(
                "concurrency {} must be between 1 and {CONCURRENCY_MAX}",
                self.concurrency
            )));
        }
        if self.register_interval.is_zero() || self.register_interval >= self.register_ttl {
            return Err(invalid(format!(
                "the register interval ({:?}) must be positive and shorter than the register \
                 TTL ({:?}), or the registration expires between refreshes",
                self.register_interval, self.register_ttl
            )));
        }
        if self.handler_timeout.is_zero() {
            return Err(invalid("the handler timeout must be positive".to_owned()));
        }
        Ok(self)
    }
}

fn seconds(id: &str, key: &str, value: &str) -> Result<Duration, Error> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| error::bad_request(id, format!("{key}={value:?} is not a number of seconds")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn environment_overrides_the_code() {
        let options = Options::new("from-code")
            .with_env(vars(&[
                (env::SERVICE_NAME, "from-env"),
                (env::SERVICE_VERSION, "v2"),
                (env::NAMESPACE, "team-a"),
                (env::REGISTER_TTL, "6"),
                (env::REGISTER_INTERVAL, "2"),
            ]))
            .unwrap();
        assert_eq!(options.name, "from-env");
        assert_eq!(options.version, "v2");
        assert_eq!(options.namespace.as_str(), "team-a");
        assert_eq!(options.register_ttl, Duration::from_secs(6));
        assert_eq!(options.register_interval, Duration::from_secs(2));
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(Options::new("").validate().is_err());
        let ttl = Options::new("a").with_env(vars(&[(env::REGISTER_TTL, "ten")]));
        assert_eq!(ttl.unwrap_err().code, 400);
        let interval = Options::new("a").with_env(vars(&[(env::REGISTER_INTERVAL, "90")]));
        assert_eq!(interval.unwrap_err().code, 400);
    }
}
