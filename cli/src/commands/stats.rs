//! `micro stats [SERVICE]`: `Debug.Stats` of every instance of a service (or of every
//! node), one row each, asked through the proxy with `micro-node` naming the instance.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use micro_core::service::{CONTENT_PROTO, Call};
use micro_proto::debug as pb;
use micro_proto::registry as reg;
use prost::Message;

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::exit::CliError;

/// Flags of `micro stats`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  micro stats\n  micro stats helloworld --output json")]
pub struct StatsArgs {
    /// The service [default: the nodes themselves]
    pub service: Option<String>,
    /// Output format
    #[arg(long, short = 'o', default_value = "table")]
    pub output: Output,
}

const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// One instance's answer.
struct Row {
    node: String,
    address: String,
    stats: Result<pb::StatsResponse, String>,
}

/// `micro stats [SERVICE]`.
pub(crate) async fn run(client: &Client, args: StatsArgs) -> Result<(), CliError> {
    // Every node registers `runtime`: its instances are the nodes.
    let name = args.service.clone().unwrap_or_else(|| "runtime".to_owned());
    let request = client.request(reg::GetRequest {
        service: name.clone(),
        options: None,
    });
    let services = client
        .registry()
        .get_service(request)
        .await
        .map_err(|s| client.error(&s))?
        .into_inner()
        .services;
    let nodes: Vec<reg::Node> = services.into_iter().flat_map(|s| s.nodes).collect();
    let mut rows = Vec::new();
    for node in nodes {
        let stats = ask(client, &name, &node.id).await;
        let label = node
            .metadata
            .get("node")
            .filter(|_| args.service.is_none())
            .map_or_else(|| node.id.clone(), |n| format!("node {n}"));
        rows.push(Row {
            node: label,
            address: node.address,
            stats,
        });
    }
    match args.output {
        Output::Json => print_json(&rows),
        Output::Table => print_rows(rows),
    }
    Ok(())
}

async fn ask(client: &Client, service: &str, node: &str) -> Result<pb::StatsResponse, String> {
    let mut metadata = BTreeMap::from([("micro-node".to_owned(), node.to_owned())]);
    if let Some(token) = client.token() {
        metadata.insert("authorization".to_owned(), format!("Bearer {token}"));
    }
    let call = Call {
        namespace: client.namespace().clone(),
        service: service.to_owned(),
        endpoint: "Debug.Stats".to_owned(),
        content_type: CONTENT_PROTO.to_owned(),
        metadata,
        body: pb::StatsRequest::default().encode_to_vec(),
    };
    let mut replies = micro_proto::raw::call(client.channel(), call, ASK_TIMEOUT)
        .await
        .map_err(|e| e.detail)?;
    match replies.next().await {
        Some(Ok(bytes)) => pb::StatsResponse::decode(bytes.as_slice()).map_err(|e| e.to_string()),
        Some(Err(e)) => Err(e.detail),
        None => Err("no answer".to_owned()),
    }
}

fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h{}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d{}h", secs / 86_400, (secs % 86_400) / 3600),
    }
}

/// `2026-12-01 06:59:43` (UTC) of Unix seconds `secs`.
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        (rest % 3600) / 60,
        rest % 60
    )
}

fn print_rows(rows: Vec<Row>) {
    let table = rows
        .into_iter()
        .map(|row| match row.stats {
            Ok(s) => vec![
                row.node,
                row.address,
                utc(s.started),
                duration(s.uptime),
                format!("{:.1} MiB", s.memory as f64 / (1024.0 * 1024.0)),
                s.threads.to_string(),
                s.requests.to_string(),
                s.errors.to_string(),
            ],
            Err(why) => {
                let mut cells = vec![row.node, row.address, format!("unavailable: {why}")];
                cells.resize(8, String::new());
                cells
            }
        })
        .collect();
    print_table(
        &[
            "NODE", "ADDRESS", "STARTED", "UPTIME", "MEMORY", "THREADS", "REQUESTS", "ERRORS",
        ],
        table,
    );
}

fn print_json(rows: &[Row]) {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| match &row.stats {
            Ok(s) => serde_json::json!({
                "node": row.node, "address": row.address, "started": s.started,
                "uptime": s.uptime, "memory": s.memory, "threads": s.threads,
                "requests": s.requests, "errors": s.errors,
            }),
            Err(why) => serde_json::json!({
                "node": row.node, "address": row.address, "error": why,
            }),
        })
        .collect();
    println!("{}", serde_json::Value::Array(items));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_print_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_796_107_586), "2026-12-01 06:46:26");
        assert_eq!(duration(3725), "1h2m");
    }
}
