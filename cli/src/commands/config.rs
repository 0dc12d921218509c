//! `micro config get|set|del`: the namespace's config tree, by dot path.

use micro_proto::config as pb;
use micro_proto::config::config_client::ConfigClient;

use crate::client::Client;
use crate::exit::CliError;

/// `micro config ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the value at PATH: a string alone, anything else as JSON
    #[command(after_help = "Example:\n  micro config get app.db.host")]
    Get {
        /// Dot path (empty: the whole tree)
        #[arg(default_value = "")]
        path: String,
        /// Show secret values instead of "[secret]"
        #[arg(long, short)]
        secret: bool,
        /// Output format [default: the value, pretty JSON for objects]: `json` prints
        /// it as compact JSON, `table` one PATH VALUE row per leaf
        #[arg(long, short = 'o')]
        output: Option<crate::commands::output::Output>,
    },
    /// Set PATH to VALUE (JSON if it parses, else a string); objects merge
    #[command(
        after_help = "Examples:\n  micro config set app.db '{\"host\":\"x\",\"port\":5432}'\n  micro config set app.db.password hunter2 --secret"
    )]
    Set {
        /// Dot path
        path: String,
        /// The value
        value: String,
        /// Store it encrypted; `get` shows "[secret]" unless asked with --secret
        #[arg(long, short)]
        secret: bool,
    },
    /// Delete the value at PATH (and everything under it)
    #[command(
        visible_alias = "delete",
        after_help = "Example:\n  micro config del app.db"
    )]
    Del {
        /// Dot path
        path: String,
    },
}

/// The JSON text a CLI value stands for: itself if it is JSON, else a JSON string.
fn as_json(value: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(json) => json.to_string(),
        Err(_) => serde_json::Value::String(value.to_owned()).to_string(),
    }
}

/// Runs a config command.
pub(super) async fn run(client: &Client, command: ConfigCommand) -> Result<(), CliError> {
    let mut config = ConfigClient::new(client.channel());
    let namespace = client.namespace().to_string();
    match command {
        ConfigCommand::Get {
            path,
            secret,
            output,
        } => {
            let request = pb::GetRequest {
                namespace,
                path: path.clone(),
                options: Some(pb::Options { secret }),
            };
            let reply = config
                .get(client.request(request))
                .await
                .map_err(|s| client.error(&s))?;
            let data = reply.into_inner().value.unwrap_or_default().data;
            if let Some(output) = output {
                print_value(&path, &data, output);
                return Ok(());
            }
            match serde_json::from_str::<serde_json::Value>(&data) {
                Ok(serde_json::Value::String(text)) => println!("{text}"),
                Ok(json @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                    println!("{}", serde_json::to_string_pretty(&json).unwrap_or(data));
                }
                _ => println!("{data}"),
            }
        }
        ConfigCommand::Set {
            path,
            value,
            secret,
        } => {
            let request = pb::SetRequest {
                namespace,
                path,
                value: Some(pb::Value {
                    data: as_json(&value),
                    format: "json".to_owned(),
                }),
                options: Some(pb::Options { secret }),
            };
            config
                .set(client.request(request))
                .await
                .map_err(|s| client.error(&s))?;
        }
        ConfigCommand::Del { path } => {
            let request = pb::DeleteRequest { namespace, path };
            config
                .delete(client.request(request))
                .await
                .map_err(|s| client.error(&s))?;
        }
    }
    Ok(())
}

/// A config value as compact JSON, or as one `PATH VALUE` row per leaf.
fn print_value(path: &str, data: &str, output: crate::commands::output::Output) {
    let value = serde_json::from_str::<serde_json::Value>(data)
        .unwrap_or_else(|_| serde_json::Value::String(data.to_owned()));
    if output == crate::commands::output::Output::Json {
        println!("{value}");
        return;
    }
    let mut rows = Vec::new();
    leaves(path, &value, &mut rows);
    crate::commands::output::print_table(&["PATH", "VALUE"], rows);
}

fn leaves(path: &str, value: &serde_json::Value, rows: &mut Vec<Vec<String>>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                leaves(&child_path, child, rows);
            }
        }
        serde_json::Value::String(text) => rows.push(vec![path.to_owned(), text.clone()]),
        other => rows.push(vec![path.to_owned(), other.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_json_when_they_parse_and_strings_otherwise() {
        assert_eq!(as_json("5432"), "5432");
        assert_eq!(as_json(r#"{"a":1}"#), r#"{"a":1}"#);
        assert_eq!(as_json("hunter2"), r#""hunter2""#);
        assert_eq!(as_json(r#""quoted""#), r#""quoted""#);
    }
}
