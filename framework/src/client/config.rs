//! [`ConfigClient`]: the namespace's config (`config.Config`) with typed getters, as
//! Micro v3's `service/config` offered.

use std::collections::BTreeMap;
use std::time::Duration;

use micro_proto::config as pb;
use micro_proto::config::config_client::ConfigClient as Grpc;

use crate::client::Client;
use crate::error::Error;

/// The config client; get one with [`Client::config`]. It acts in the client's
/// namespace.
#[derive(Debug, Clone)]
pub struct ConfigClient {
    client: Client,
}

/// A config value; a missing path reads as a value that does not exist (as in v3), so
/// the typed getters fall back to their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigValue(Option<serde_json::Value>);

impl ConfigValue {
    /// Whether anything is stored at the path.
    pub fn exists(&self) -> bool {
        self.0.is_some()
    }

    /// The JSON value, if any.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.0.as_ref()
    }

    /// A boolean (`true`, or the strings "true"/"false"), else `default`.
    pub fn bool(&self, default: bool) -> bool {
        match &self.0 {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.parse().unwrap_or(default),
            _ => default,
        }
    }

    /// An integer (a number or a numeric string), else `default`.
    pub fn int(&self, default: i64) -> i64 {
        match &self.0 {
            Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(default),
            Some(serde_json::Value::String(s)) => s.parse().unwrap_or(default),
            _ => default,
        }
    }

    /// A float (a number or a numeric string), else `default`.
    pub fn float(&self, default: f64) -> f64 {
        match &self.0 {
            Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(default),
            Some(serde_json::Value::String(s)) => s.parse().unwrap_or(default),
            _ => default,
        }
    }

    /// A string (numbers and booleans as their text), else `default`.
    pub fn string(&self, default: &str) -> String {
        match &self.0 {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v.to_string(),
            _ => default.to_owned(),
        }
    }

    /// A duration: a number of seconds, or text like `10s`, `5m`, `2h`, `1d`, `250ms`.
    pub fn duration(&self, default: Duration) -> Duration {
        match &self.0 {
            Some(serde_json::Value::Number(n)) => n
                .as_f64()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .unwrap_or(default),
            Some(serde_json::Value::String(s)) => parse_duration(s).unwrap_or(default),
            _ => default,
        }
    }

    /// A list of strings (an array, or comma-separated text), else `default`.
    pub fn string_list(&self, default: &[&str]) -> Vec<String> {
        match &self.0 {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect(),
            Some(serde_json::Value::String(s)) => s.split(',').map(str::to_owned).collect(),
            _ => default.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// A map of strings (an object's values as text), else empty.
    pub fn string_map(&self) -> BTreeMap<String, String> {
        match &self.0 {
            Some(serde_json::Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), text)
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// Deserializes the value into `T` (plain serde, as v3's `Scan` was JSON unmarshal).
    pub fn scan<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        let value = self.0.clone().unwrap_or(serde_json::Value::Null);
        serde_json::from_value(value)
            .map_err(|e| crate::error::bad_request("config", format!("config value: {e}")))
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86_400.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

fn status(status: &tonic::Status) -> Error {
    micro_proto::micro_from_status("config", status)
}

impl ConfigClient {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    async fn get_with(&self, path: &str, secret: bool) -> Result<ConfigValue, Error> {
        let request = pb::GetRequest {
            namespace: self.client.namespace().to_string(),
            path: path.to_owned(),
            options: Some(pb::Options { secret }),
        };
        let reply = Grpc::new(self.client.channel())
            .get(self.client.request(request))
            .await;
        match reply {
            Ok(reply) => {
                let data = reply.into_inner().value.unwrap_or_default().data;
                let json = serde_json::from_str(&data).map_err(|e| {
                    crate::error::bad_request("config", format!("config reply: {e}"))
                })?;
                Ok(ConfigValue(Some(json)))
            }
            Err(s) if s.code() == tonic::Code::NotFound => Ok(ConfigValue(None)),
            Err(s) => Err(status(&s)),
        }
    }

    /// The value at `path` (secrets read as `"[secret]"`).
    pub async fn get(&self, path: &str) -> Result<ConfigValue, Error> {
        self.get_with(path, false).await
    }

    /// The value at `path` with its secrets opened.
    pub async fn get_secret(&self, path: &str) -> Result<ConfigValue, Error> {
        self.get_with(path, true).await
    }

    async fn set_with<T: serde::Serialize>(
        &self,
        path: &str,
        value: &T,
        secret: bool,
    ) -> Result<(), Error> {
        let data = serde_json::to_string(value)
            .map_err(|e| crate::error::bad_request("config", format!("config value: {e}")))?;
        let request = pb::SetRequest {
            namespace: self.client.namespace().to_string(),
            path: path.to_owned(),
            value: Some(pb::Value {
                data,
                format: "json".to_owned(),
            }),
            options: Some(pb::Options { secret }),
        };
        Grpc::new(self.client.channel())
            .set(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(())
    }

    /// Sets `path` to `value` (objects merge into what is there).
    pub async fn set<T: serde::Serialize>(&self, path: &str, value: &T) -> Result<(), Error> {
        self.set_with(path, value, false).await
    }

    /// Sets `path` to `value`, sealed: reads show `"[secret]"` unless asked for secrets.
    pub async fn set_secret<T: serde::Serialize>(
        &self,
        path: &str,
        value: &T,
    ) -> Result<(), Error> {
        self.set_with(path, value, true).await
    }

    /// Deletes the value at `path` and everything under it.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        let request = pb::DeleteRequest {
            namespace: self.client.namespace().to_string(),
            path: path.to_owned(),
        };
        Grpc::new(self.client.channel())
            .delete(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_coerce_and_fall_back() {
        let value = |json: serde_json::Value| ConfigValue(Some(json));
        assert_eq!(value(serde_json::json!("42")).int(0), 42);
        assert_eq!(value(serde_json::json!(42)).string(""), "42");
        assert!(value(serde_json::json!("true")).bool(false));
        assert_eq!(
            value(serde_json::json!("5m")).duration(Duration::ZERO),
            Duration::from_secs(300)
        );
        assert_eq!(
            value(serde_json::json!(1.5)).duration(Duration::ZERO),
            Duration::from_millis(1500)
        );
        assert_eq!(value(serde_json::json!("a,b")).string_list(&[]), ["a", "b"]);
        // Out of range falls back instead of panicking.
        assert_eq!(
            value(serde_json::json!(1e20)).duration(Duration::ZERO),
            Duration::ZERO
        );
        assert_eq!(
            value(serde_json::json!("300000000000000000d")).duration(Duration::ZERO),
            Duration::ZERO
        );
        let missing = ConfigValue(None);
        assert!(!missing.exists());
        assert_eq!(missing.int(7), 7);
        assert_eq!(missing.string_list(&["x"]), ["x"]);
        let map = value(serde_json::json!({"a": 1, "b": "two"})).string_map();
        assert_eq!(map["a"], "1");
        assert_eq!(map["b"], "two");
    }
}
