//! `micro blob put|get|del|list`: the blob store (`store.BlobStore`) through the proxy.
//! Files stream in 1 MiB messages both ways, so a blob never sits whole in one message.

use std::io::{Read, Write};
use std::path::PathBuf;

use futures::StreamExt;
use micro_proto::store as pb;
use micro_proto::store::blob_store_client::BlobStoreClient;

use crate::client::Client;
use crate::exit::{CliError, OTHER};

/// The size of each message of an upload.
const PART_LEN: usize = 1024 * 1024;

/// `micro blob ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BlobCommand {
    /// Store FILE (or stdin) as blob KEY, replicated
    #[command(after_help = "Example:\n  micro blob put builds/app.tar.gz --file app.tar.gz")]
    Put {
        /// The blob's key
        key: String,
        /// The file to upload [default: stdin]
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Write blob KEY to FILE (or stdout)
    #[command(after_help = "Example:\n  micro blob get builds/app.tar.gz --file copy.tar.gz")]
    Get {
        /// The blob's key
        key: String,
        /// Where to write it [default: stdout]
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Delete blob KEY
    #[command(after_help = "Example:\n  micro blob del builds/app.tar.gz")]
    Del {
        /// The blob's key
        key: String,
    },
    /// List blob keys, one per line
    #[command(after_help = "Example:\n  micro blob list --prefix builds/")]
    List {
        /// Only keys starting with this
        #[arg(long, default_value = "")]
        prefix: String,
        /// Output format [default: one key per line]
        #[arg(long, short = 'o')]
        output: Option<crate::commands::output::Output>,
    },
}

fn io_error(what: &str, err: &std::io::Error) -> CliError {
    CliError::new(OTHER, format!("{what}: {err}"))
}

fn options(client: &Client) -> Option<pb::BlobOptions> {
    Some(pb::BlobOptions {
        namespace: client.namespace().to_string(),
        ..pb::BlobOptions::default()
    })
}

/// Runs a blob command.
pub(super) async fn run(client: &Client, command: BlobCommand) -> Result<(), CliError> {
    let mut blobs = BlobStoreClient::new(client.channel())
        .max_decoding_message_size(micro_gateway::MESSAGE_LEN_MAX)
        .max_encoding_message_size(micro_gateway::MESSAGE_LEN_MAX);
    match command {
        BlobCommand::Put { key, file } => put(client, &mut blobs, key, file).await,
        BlobCommand::Get { key, file } => {
            let request = pb::BlobReadRequest {
                key,
                options: options(client),
            };
            let mut parts = blobs
                .read(client.request(request))
                .await
                .map_err(|s| client.error(&s))?
                .into_inner();
            let mut out: Box<dyn Write> = match &file {
                Some(path) => Box::new(
                    std::fs::File::create(path).map_err(|e| io_error("cannot create", &e))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            while let Some(part) = parts.next().await {
                let part = part.map_err(|s| client.error(&s))?;
                out.write_all(&part.blob)
                    .map_err(|e| io_error("cannot write", &e))?;
            }
            out.flush().map_err(|e| io_error("cannot write", &e))
        }
        BlobCommand::Del { key } => {
            let request = pb::BlobDeleteRequest {
                key,
                options: options(client),
            };
            blobs
                .delete(client.request(request))
                .await
                .map_err(|s| client.error(&s))?;
            Ok(())
        }
        BlobCommand::List { prefix, output } => {
            let request = pb::BlobListRequest {
                options: Some(pb::BlobListOptions {
                    namespace: client.namespace().to_string(),
                    prefix,
                }),
            };
            let keys = blobs
                .list(client.request(request))
                .await
                .map_err(|s| client.error(&s))?
                .into_inner()
                .keys;
            crate::commands::output::print_names(&keys, output, "KEY");
            Ok(())
        }
    }
}

/// Streams a file (or stdin) up in [`PART_LEN`] messages, read on a blocking thread.
async fn put(
    client: &Client,
    blobs: &mut BlobStoreClient<tonic::transport::Channel>,
    key: String,
    file: Option<PathBuf>,
) -> Result<(), CliError> {
    let mut input: Box<dyn Read + Send> = match &file {
        Some(path) => Box::new(std::fs::File::open(path).map_err(|e| io_error("cannot open", &e))?),
        None => Box::new(std::io::stdin()),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::BlobWriteRequest>(4);
    let opts = options(client);
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut first = true;
        loop {
            let mut part = vec![0; PART_LEN];
            let mut filled = 0;
            while filled < PART_LEN {
                match input.read(&mut part[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            part.truncate(filled);
            let message = pb::BlobWriteRequest {
                key: if first { key.clone() } else { String::new() },
                options: if first { opts.clone() } else { None },
                blob: part,
            };
            if (filled == 0 && !first) || tx.blocking_send(message).is_err() {
                return Ok(());
            }
            first = false;
            if filled < PART_LEN {
                return Ok(());
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let written = blobs.write(client.request(stream)).await;
    match reader.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(io_error("cannot read", &err)),
        Err(err) => return Err(CliError::new(OTHER, format!("cannot read: {err}"))),
    }
    written.map_err(|s| client.error(&s))?;
    Ok(())
}
