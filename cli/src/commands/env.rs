//! `micro env`: list, add, set, get and delete environments ([`crate::environments`]).

use clap::Subcommand;

use crate::commands::output::{Output, print_table};
use crate::environments;
use crate::exit::CliError;

/// The `micro env` subcommands.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// List the environments, the current one marked with `*`
    #[command(after_help = "Example:\n  micro env list --output json")]
    List {
        /// Output format [default: one `* name` line each]
        #[arg(long, short = 'o')]
        output: Option<Output>,
    },
    /// Add an environment (an address without a port gets :443)
    #[command(after_help = "Example:\n  micro env add staging 10.0.0.5:8081")]
    Add {
        /// Its name
        name: String,
        /// Its proxy address (HOST:PORT)
        proxy: String,
        /// What it is
        #[arg(long, default_value = "")]
        description: String,
        /// The CA certificate (PEM) the proxy's certificate chains to: talk TLS to it
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
    },
    /// Make an environment the current one
    #[command(after_help = "Example:\n  micro env set staging")]
    Set {
        /// Its name
        name: String,
    },
    /// Print the current environment's name
    #[command(after_help = "Example:\n  micro env get")]
    Get,
    /// Delete an environment
    #[command(after_help = "Example:\n  micro env del staging")]
    Del {
        /// Its name
        name: String,
    },
}

/// Runs `micro env [COMMAND]`.
pub(crate) fn run(command: Option<EnvCommand>) -> Result<(), CliError> {
    match command.unwrap_or(EnvCommand::List { output: None }) {
        EnvCommand::List { output } => list(output),
        EnvCommand::Add {
            name,
            proxy,
            description,
            ca,
        } => environments::add(&name, &proxy, &description, ca.as_deref()),
        EnvCommand::Set { name } => environments::set(&name),
        EnvCommand::Get => {
            println!("{}", environments::list()?.0);
            Ok(())
        }
        EnvCommand::Del { name } => environments::delete(&name),
    }
}

fn list(output: Option<Output>) -> Result<(), CliError> {
    let (current, all) = environments::list()?;
    match output {
        None => {
            for (name, _) in &all {
                let mark = if *name == current { "*" } else { " " };
                println!("{mark} {name}");
            }
        }
        Some(Output::Json) => {
            let items: Vec<serde_json::Value> = all
                .iter()
                .map(|(name, env)| {
                    serde_json::json!({
                        "name": name, "proxy": env.proxy, "description": env.description,
                        "current": *name == current,
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(items));
        }
        Some(Output::Table) => {
            let rows = all
                .into_iter()
                .map(|(name, env)| {
                    let mark = if name == current { "*" } else { "" };
                    vec![mark.to_owned(), name, env.proxy, env.description]
                })
                .collect();
            print_table(&["", "NAME", "PROXY", "DESCRIPTION"], rows);
        }
    }
    Ok(())
}
