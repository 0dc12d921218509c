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
    /// Add a node (as a learner, then a voter once it has caught up)
    #[command(after_help = "Example:\n  micro cluster add-node 4 127.0.0.4:8085")]
    AddNode {
        /// The new node's id
        id: u64,
        /// Its peer address (HOST:PORT)
        peer_addr: String,
    },
    /// Remove a node from the cluster
    #[command(after_help = "Example:\n  micro cluster remove-node 2")]
    RemoveNode {
        /// The node's id
        id: u64,
    },
    /// Make another voter the leader
    #[command(after_help = "Example:\n  micro cluster transfer-leader 3")]
    TransferLeader {
        /// The voter to lead
        id: u64,
    },
    /// Save a Raft snapshot of the node's whole state (a whole-node backup; restore it
    /// with `micro-node restore`)
    #[command(
        after_help = "Example:\n  micro cluster snapshot --destination file:///backups/node.snap"
    )]
    Snapshot {
        /// Where to write it: file:///path or a path
        #[arg(long)]
        destination: String,
    },
}

pub(crate) async fn run(client: &Client, command: ClusterCommand) -> Result<(), CliError> {
    let mut cluster = client.cluster();
    let fail = |s: tonic::Status| client.error(&s);
    match command {
        ClusterCommand::Status { output } => status(client, output).await,
        ClusterCommand::AddNode { id, peer_addr } => {
            let request = pb::AddNodeRequest {
                id,
                address: peer_addr,
            };
            cluster
                .add_node(client.request(request))
                .await
                .map_err(fail)?;
            Ok(())
        }
        ClusterCommand::RemoveNode { id } => {
            cluster
                .remove_node(client.request(pb::RemoveNodeRequest { id }))
                .await
                .map_err(fail)?;
            Ok(())
        }
        ClusterCommand::Snapshot { destination } => {
            crate::commands::backup::save(client, &destination).await
        }
        ClusterCommand::TransferLeader { id } => {
            let request = pb::TransferLeaderRequest { id };
            cluster
                .transfer_leader(client.request(request))
                .await
                .map_err(fail)?;
            Ok(())
        }
    }
}

async fn status(client: &Client, output: Output) -> Result<(), CliError> {
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
        "snapshot_index": status.snapshot_index,
        "purged_index": status.purged_index,
    })
}
