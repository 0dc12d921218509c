//! `micro network nodes|routes|services|graph`: the routing plane of `network.Network`.

use clap::Subcommand;
use micro_proto::network as pb;
use micro_proto::network::network_client::NetworkClient;

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::exit::CliError;

/// The `micro network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// The nodes: id, proxy address, peer address, role
    #[command(after_help = "Example:\n  micro network nodes")]
    Nodes {
        /// Output format
        #[arg(long, short = 'o', default_value = "table")]
        output: Output,
    },
    /// Every route: which node serves each instance of each service, and how
    #[command(after_help = "Example:\n  micro network routes --service helloworld")]
    Routes {
        /// Only this service
        #[arg(long)]
        service: Option<String>,
        /// Output format
        #[arg(long, short = 'o', default_value = "table")]
        output: Output,
    },
    /// Each instance of each service and the node that serves it
    #[command(after_help = "Example:\n  micro network services")]
    Services {
        /// Output format
        #[arg(long, short = 'o', default_value = "table")]
        output: Output,
    },
    /// This node and its peers
    #[command(after_help = "Example:\n  micro network graph")]
    Graph,
}

/// Runs `micro network ...`.
pub(crate) async fn run(client: &Client, command: NetworkCommand) -> Result<(), CliError> {
    let mut network = NetworkClient::new(client.channel());
    let fail = |s: &tonic::Status| client.error(s);
    match command {
        NetworkCommand::Nodes { output } => {
            let nodes = network
                .nodes(client.request(pb::NodesRequest { depth: 1 }))
                .await
                .map_err(|s| fail(&s))?
                .into_inner()
                .nodes;
            print_nodes(&nodes, output);
        }
        NetworkCommand::Routes { service, output } => {
            let query = pb::Query {
                service: service.unwrap_or_default(),
                ..pb::Query::default()
            };
            let routes = routes(client, &mut network, query).await?;
            print_routes(&routes, output, false);
        }
        NetworkCommand::Services { output } => {
            let routes = routes(client, &mut network, pb::Query::default()).await?;
            print_routes(&routes, output, true);
        }
        NetworkCommand::Graph => {
            let graph = network
                .graph(client.request(pb::GraphRequest { depth: 1 }))
                .await
                .map_err(|s| fail(&s))?
                .into_inner();
            print_graph(graph.root.as_ref(), 0);
        }
    }
    Ok(())
}

async fn routes(
    client: &Client,
    network: &mut NetworkClient<tonic::transport::Channel>,
    query: pb::Query,
) -> Result<Vec<micro_proto::router::Route>, CliError> {
    let request = client.request(pb::RoutesRequest { query: Some(query) });
    let mut routes = network
        .routes(request)
        .await
        .map_err(|s| client.error(&s))?
        .into_inner()
        .routes;
    routes.sort_by(|a, b| {
        (&a.service, &a.router, &a.address).cmp(&(&b.service, &b.router, &b.address))
    });
    Ok(routes)
}

fn print_nodes(nodes: &[pb::Node], output: Output) {
    let meta = |n: &pb::Node, k: &str| n.metadata.get(k).cloned().unwrap_or_default();
    match output {
        Output::Json => {
            let items: Vec<serde_json::Value> = nodes
                .iter()
                .map(|n| {
                    serde_json::json!({
                        "id": n.id, "address": n.address, "network": n.network,
                        "peer": meta(n, "peer"), "role": meta(n, "role"),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(items));
        }
        Output::Table => {
            let rows = nodes
                .iter()
                .map(|n| {
                    vec![
                        n.id.clone(),
                        n.address.clone(),
                        meta(n, "peer"),
                        meta(n, "role"),
                    ]
                })
                .collect();
            print_table(&["ID", "PROXY", "PEER", "ROLE"], rows);
        }
    }
}

fn print_routes(routes: &[micro_proto::router::Route], output: Output, by_service: bool) {
    let meta =
        |r: &micro_proto::router::Route, k: &str| r.metadata.get(k).cloned().unwrap_or_default();
    let node = |r: &micro_proto::router::Route| {
        if r.router.is_empty() {
            "-".to_owned()
        } else {
            r.router.clone()
        }
    };
    match output {
        Output::Json => {
            let items: Vec<serde_json::Value> = routes
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "service": r.service, "version": meta(r, "version"),
                        "instance": meta(r, "instance"), "address": r.address,
                        "node": r.router, "gateway": r.gateway, "link": r.link,
                        "metric": r.metric,
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(items));
        }
        Output::Table if by_service => {
            let rows = routes
                .iter()
                .map(|r| {
                    vec![
                        r.service.clone(),
                        meta(r, "version"),
                        meta(r, "instance"),
                        node(r),
                        r.address.clone(),
                    ]
                })
                .collect();
            print_table(&["SERVICE", "VERSION", "INSTANCE", "NODE", "ADDRESS"], rows);
        }
        Output::Table => {
            let rows = routes
                .iter()
                .map(|r| {
                    vec![
                        r.service.clone(),
                        r.address.clone(),
                        r.gateway.clone(),
                        node(r),
                        r.link.clone(),
                        r.metric.to_string(),
                    ]
                })
                .collect();
            print_table(
                &["SERVICE", "ADDRESS", "GATEWAY", "NODE", "LINK", "METRIC"],
                rows,
            );
        }
    }
}

fn print_graph(peer: Option<&pb::Peer>, depth: usize) {
    let Some(peer) = peer else { return };
    if let Some(node) = &peer.node {
        let role = node.metadata.get("role").cloned().unwrap_or_default();
        println!(
            "{}node {} {} ({role})",
            "  ".repeat(depth),
            node.id,
            node.address
        );
    }
    for child in &peer.peers {
        print_graph(Some(child), depth + 1);
    }
}
