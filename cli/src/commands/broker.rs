//! `micro broker publish|subscribe`: ephemeral pub/sub through the proxy.

use futures::StreamExt;
use micro_proto::broker as pb;
use micro_proto::broker::broker_client::BrokerClient;

use crate::client::Client;
use crate::exit::CliError;

/// `micro broker ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BrokerCommand {
    /// Publish DATA on TOPIC to every subscriber (and one member of each queue group)
    #[command(after_help = "Example:\n  micro broker publish orders '{\"id\":1}'")]
    Publish {
        /// The topic
        topic: String,
        /// The message body (sent as its UTF-8 bytes)
        data: String,
    },
    /// Print each message on TOPIC as one line, until interrupted
    #[command(after_help = "Example:\n  micro broker subscribe orders --queue workers")]
    Subscribe {
        /// The topic
        topic: String,
        /// Join this queue group: each message goes to one member of the group
        #[arg(long)]
        queue: Option<String>,
    },
}

/// Runs a broker command.
pub(super) async fn run(client: &Client, command: BrokerCommand) -> Result<(), CliError> {
    let mut broker = BrokerClient::new(client.channel())
        .max_decoding_message_size(micro_gateway::MESSAGE_LEN_MAX);
    match command {
        BrokerCommand::Publish { topic, data } => {
            let request = pb::PublishRequest {
                topic,
                message: Some(pb::Message {
                    header: Default::default(),
                    body: data.into_bytes(),
                }),
            };
            broker
                .publish(client.request(request))
                .await
                .map_err(|s| client.error(&s))?;
        }
        BrokerCommand::Subscribe { topic, queue } => {
            let request = pb::SubscribeRequest {
                topic,
                queue: queue.unwrap_or_default(),
            };
            let mut messages = broker
                .subscribe(client.request(request))
                .await
                .map_err(|s| client.error(&s))?
                .into_inner();
            while let Some(message) = messages.next().await {
                let message = message.map_err(|s| client.error(&s))?;
                println!("{}", String::from_utf8_lossy(&message.body));
            }
        }
    }
    Ok(())
}
