//! `micro events publish|consume|read`: durable event streams through the proxy.
//!
//! `consume` prints one line per event (the payload as UTF-8 text, or the whole event as
//! JSON with `--output json`). Without auto-ack it acks each event once its line is
//! written, so an event whose line never reached stdout is redelivered.

use std::io::Write;

use base64::Engine;
use futures::StreamExt;
use micro_proto::events as pb;
use micro_proto::events::store_client::StoreClient;
use micro_proto::events::stream_client::StreamClient;

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::commands::store::stdout_error;
use crate::exit::CliError;

/// `micro events ...`.
#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// Publish DATA on TOPIC; it is stored (replicated) before this returns
    #[command(
        after_help = "Example:\n  micro events publish orders '{\"id\":1}' --metadata source=web"
    )]
    Publish {
        /// The topic
        topic: String,
        /// The payload (sent as its UTF-8 bytes)
        data: String,
        /// A header, KEY=VALUE (repeatable)
        #[arg(long, value_parser = key_value)]
        metadata: Vec<(String, String)>,
    },
    /// Print each event on TOPIC as one line, until interrupted
    #[command(
        after_help = "Examples:\n  micro events consume orders --group billing\n  micro events consume orders --offset 1h   # replay the last hour, then follow\n  micro events consume orders --group billing --no-auto-ack --ack-wait 30s --retry-limit 5"
    )]
    Consume(ConsumeArgs),
    /// Print the events kept on TOPIC, oldest first
    #[command(after_help = "Example:\n  micro events read orders --limit 10 --output json")]
    Read {
        /// The topic
        topic: String,
        /// The most events to print [default: 250]
        #[arg(long)]
        limit: Option<u64>,
        /// Skip this many of the oldest events
        #[arg(long, default_value_t = 0)]
        skip: u64,
        /// Print a table or JSON instead of one payload per line
        #[arg(long, value_enum)]
        output: Option<Output>,
    },
}

/// The flags of `micro events consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// The topic
    topic: String,
    /// Join this consumer group: each event goes to one member
    #[arg(long)]
    group: Option<String>,
    /// Replay from a time before following live: a duration ago (10m, 2h, 1d), Unix
    /// seconds, or `all` for everything kept
    #[arg(long, value_parser = offset_secs)]
    offset: Option<i64>,
    /// Ack each event only once its line is written (redelivered otherwise)
    #[arg(long)]
    no_auto_ack: bool,
    /// With --no-auto-ack: how long an event may stay unacked before redelivery
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    ack_wait: std::time::Duration,
    /// With --no-auto-ack: redeliveries after the first (-1: no limit)
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    retry_limit: i64,
    /// Print each event as one JSON line instead of its payload
    #[arg(long, value_enum)]
    output: Option<Output>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// Unix seconds of `--offset`: `all`, Unix seconds (from 1e9, year 2001), or a duration
/// ago.
fn offset_secs(text: &str) -> Result<i64, String> {
    if text == "all" {
        return Ok(1);
    }
    let now = micro_core::Clock::now_ms(&micro_core::SystemClock) / 1000;
    if let Ok(secs) = text.parse::<u64>()
        && secs >= 1_000_000_000
    {
        return i64::try_from(secs).map_err(|e| e.to_string());
    }
    let ago =
        crate::duration::parse_secs(text).map_err(|e| format!("{e}; or Unix seconds, or `all`"))?;
    i64::try_from(now.saturating_sub(ago).max(1)).map_err(|e| e.to_string())
}

/// Runs an events command.
pub(super) async fn run(client: &Client, command: EventsCommand) -> Result<(), CliError> {
    match command {
        EventsCommand::Publish {
            topic,
            data,
            metadata,
        } => {
            let request = pb::PublishRequest {
                topic,
                metadata: metadata.into_iter().collect(),
                payload: data.into_bytes(),
                timestamp: 0,
            };
            StreamClient::new(client.channel())
                .publish(client.request(request))
                .await
                .map_err(|s| client.error(&s))?;
            Ok(())
        }
        EventsCommand::Consume(args) => consume(client, args).await,
        EventsCommand::Read {
            topic,
            limit,
            skip,
            output,
        } => {
            let request = pb::ReadRequest {
                topic,
                limit: limit.unwrap_or(0),
                offset: skip,
            };
            let events = StoreClient::new(client.channel())
                .max_decoding_message_size(micro_gateway::MESSAGE_LEN_MAX * 16)
                .read(client.request(request))
                .await
                .map_err(|s| client.error(&s))?
                .into_inner()
                .events;
            print_events(&events, output)
        }
    }
}

async fn consume(client: &Client, args: ConsumeArgs) -> Result<(), CliError> {
    let request = pb::ConsumeRequest {
        group: args.group.unwrap_or_default(),
        topic: args.topic,
        offset: args.offset.unwrap_or(0),
        auto_ack: !args.no_auto_ack,
        ack_wait: if args.no_auto_ack {
            i64::try_from(args.ack_wait.as_nanos()).unwrap_or(i64::MAX)
        } else {
            0
        },
        retry_limit: args.retry_limit,
    };
    let (ack_tx, ack_rx) = tokio::sync::mpsc::channel::<pb::AckRequest>(64);
    let acks = tokio_stream::wrappers::ReceiverStream::new(ack_rx);
    let mut events = micro_proto::consume::consume(client.channel(), client.request(request), acks)
        .await
        .map_err(|s| client.error(&s))?;
    while let Some(event) = events.next().await {
        let event = event.map_err(|s| client.error(&s))?;
        let line = match args.output {
            Some(Output::Json) => event_json(&event).to_string(),
            _ => String::from_utf8_lossy(&event.payload).into_owned(),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| stdout_error(&e))?;
        if args.no_auto_ack {
            let ack = pb::AckRequest {
                id: event.id,
                success: true,
            };
            if ack_tx.send(ack).await.is_err() {
                break;
            }
        }
    }
    Ok(())
}

fn print_events(events: &[pb::Event], output: Option<Output>) -> Result<(), CliError> {
    match output {
        None => {
            let mut out = std::io::stdout().lock();
            for event in events {
                out.write_all(&event.payload)
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(|e| stdout_error(&e))?;
            }
        }
        Some(Output::Json) => {
            let array: Vec<serde_json::Value> = events.iter().map(event_json).collect();
            println!("{}", serde_json::Value::Array(array));
        }
        Some(Output::Table) => {
            let rows = events
                .iter()
                .map(|e| {
                    let metadata: Vec<String> =
                        e.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![
                        e.id.clone(),
                        e.timestamp.to_string(),
                        String::from_utf8_lossy(&e.payload).into_owned(),
                        metadata.join(","),
                    ]
                })
                .collect();
            print_table(&["ID", "TIMESTAMP", "PAYLOAD", "METADATA"], rows);
        }
    }
    Ok(())
}

/// An event as JSON: the payload as text when it is UTF-8, else base64 under
/// `payload_base64`.
fn event_json(event: &pb::Event) -> serde_json::Value {
    let mut object = serde_json::json!({
        "id": event.id,
        "topic": event.topic,
        "timestamp": event.timestamp,
        "metadata": event.metadata,
    });
    match std::str::from_utf8(&event.payload) {
        Ok(text) => object["payload"] = text.into(),
        Err(_) => {
            object["payload_base64"] = base64::engine::general_purpose::STANDARD
                .encode(&event.payload)
                .into();
        }
    }
    object
}
