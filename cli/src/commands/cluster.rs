//! `micro cluster ...`.

use clap::Subcommand;
use micro_proto::cluster as pb;

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::exit::CliError;

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the leader, term, members and log positions as this node sees them
    #[command(
        after_help = "Examples:\n  micro cluster status\n  micro cluster status --output json"
    )]
    Status {
        /// Output format
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
}

pub(crate) async fn run(client: &Client, command: ClusterCommand) -> Result<(), CliError> {
    let ClusterCommand::Status { output } = command;
    let status = client
        .cluster()
        .status(client.request(pb::StatusRequest {}))
        .await
        .map_err(|s| client.error(&s))?
        .into_inner();
    match output {
        Output::Json => println!("{}", status_json(&status)),
        Output::Table => {
            let leader = if status.leader == 0 {
                "none".to_owned()
            } else {
                status.leader.to_string()
            };
            println!(
                "leader: {leader}  term: {}  commit: {}  applied: {}",
                status.term, status.commit_index, status.applied_index
            );
            let rows = status
                .members
                .iter()
                .map(|m| vec![m.id.to_string(), m.address.clone(), m.role.clone()])
                .collect();
            print_table(&["ID", "ADDRESS", "ROLE"], rows);
        }
    }
    Ok(())
}

fn status_json(status: &pb::StatusResponse) -> serde_json::Value {
    let members: Vec<_> = status
        .members
        .iter()
        .map(|m| serde_json::json!({ "id": m.id, "address": m.address, "role": m.role }))
        .collect();
    serde_json::json!({
        "leader": if status.leader == 0 { None } else { Some(status.leader) },
        "term": status.term,
        "members": members,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
    })
}
