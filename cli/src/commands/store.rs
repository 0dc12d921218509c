//! `micro store ...`: the key-value store from the command line.

use std::io::Write;

use base64::Engine;
use clap::{Args, Subcommand};
use micro_proto::store as pb;

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::duration::parse_secs;
use crate::exit::{CliError, OTHER};

/// Where records live; both default as in Micro (database = namespace, table = micro).
#[derive(Debug, Clone, Default, Args)]
pub struct Location {
    /// Database [default: the namespace]
    #[arg(long, default_value = "")]
    pub database: String,
    /// Table [default: micro]
    #[arg(long, default_value = "")]
    pub table: String,
}

/// Paging and ordering of scans.
#[derive(Debug, Clone, Default, Args)]
pub struct Paging {
    /// At most this many results
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
    /// Skip this many results first
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Key order: asc or desc
    #[arg(long, value_parser = ["asc", "desc"], default_value = "asc")]
    pub order: String,
}

/// The arguments of `micro store read`.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// The key, or the prefix/suffix to match
    pub key: String,
    /// Read every record whose key starts with KEY
    #[arg(long)]
    pub prefix: bool,
    /// Read every record whose key ends with KEY
    #[arg(long)]
    pub suffix: bool,
    #[command(flatten)]
    pub paging: Paging,
    #[command(flatten)]
    pub location: Location,
    /// Print a table of key, value, expiry and metadata
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Print a table or a JSON array instead of bare values
    #[arg(long, value_enum)]
    pub output: Option<Output>,
    /// Read this node's state as it is (fast; may miss the latest writes)
    #[arg(long)]
    pub stale: bool,
}

/// The arguments of `micro store list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only keys starting with this
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Only keys ending with this
    #[arg(long, default_value = "")]
    pub suffix: String,
    #[command(flatten)]
    pub paging: Paging,
    #[command(flatten)]
    pub location: Location,
    /// Read this node's state as it is (fast; may miss the latest writes)
    #[arg(long)]
    pub stale: bool,
    /// Output format [default: one key per line, as they stream]
    #[arg(long, short = 'o')]
    pub output: Option<Output>,
}

/// Store commands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Write a record
    #[command(
        after_help = "Examples:\n  micro store write foo bar\n  micro store write session abc --expiry 10m"
    )]
    Write {
        /// The key
        key: String,
        /// The value
        value: String,
        /// Time to live (10s, 5m, 2h, 1d)
        #[arg(long, value_parser = parse_secs)]
        expiry: Option<u64>,
        #[command(flatten)]
        location: Location,
    },
    /// Read a record (or every record matching --prefix/--suffix); prints values
    #[command(
        after_help = "Examples:\n  micro store read foo\n  micro store read user/ --prefix --verbose"
    )]
    Read(ReadArgs),
    /// Delete a record
    #[command(after_help = "Example:\n  micro store delete foo")]
    Delete {
        /// The key
        key: String,
        #[command(flatten)]
        location: Location,
    },
    /// List keys, one per line
    #[command(after_help = "Example:\n  micro store list --prefix user/ --limit 10")]
    List(ListArgs),
    /// List the databases of the namespace, one per line
    #[command(after_help = "Example:\n  micro store databases")]
    Databases {
        /// Output format [default: one per line]
        #[arg(long, short = 'o')]
        output: Option<Output>,
    },
    /// List the tables of a database, one per line
    #[command(after_help = "Example:\n  micro store tables --database micro")]
    Tables {
        /// Database [default: the namespace]
        #[arg(long, default_value = "")]
        database: String,
        /// Output format [default: one per line]
        #[arg(long, short = 'o')]
        output: Option<Output>,
    },
    /// Write every record of the namespace, as of one moment, to a file
    #[command(
        after_help = "Examples:\n  micro store snapshot --destination file:///backups/micro.snap\n  micro store snapshot --destination users.snap --database users"
    )]
    Snapshot {
        /// Where to write it: file:///path or a path
        #[arg(long)]
        destination: String,
        /// Only this database [default: every database of the namespace]
        #[arg(long, default_value = "")]
        database: String,
    },
    /// Write every record of a snapshot file back into the namespace
    #[command(after_help = "Example:\n  micro store restore --source file:///backups/micro.snap")]
    Restore {
        /// The snapshot: file:///path or a path
        #[arg(long)]
        source: String,
    },
}

pub(crate) async fn run(client: &Client, command: StoreCommand) -> Result<(), CliError> {
    let store = client.store();
    match command {
        StoreCommand::Write {
            key,
            value,
            expiry,
            location,
        } => write(client, store, key, value, expiry, location).await,
        StoreCommand::Read(args) => read(client, store, args).await,
        StoreCommand::Delete { key, location } => {
            let options = pb::DeleteOptions {
                database: location.database,
                table: location.table,
            };
            let request = client.request(pb::DeleteRequest {
                key,
                options: Some(options),
            });
            store
                .clone()
                .delete(request)
                .await
                .map_err(|s| client.error(&s))?;
            Ok(())
        }
        StoreCommand::List(args) => list(client, store, args).await,
        StoreCommand::Databases { output } => catalogue(client, store, None, output).await,
        StoreCommand::Tables { database, output } => {
            catalogue(client, store, Some(database), output).await
        }
        StoreCommand::Snapshot {
            destination,
            database,
        } => crate::commands::snapshot::snapshot(client, &destination, database).await,
        StoreCommand::Restore { source } => {
            crate::commands::snapshot::restore(client, &source).await
        }
    }
}

type Store = micro_proto::store::store_client::StoreClient<tonic::transport::Channel>;

async fn write(
    client: &Client,
    mut store: Store,
    key: String,
    value: String,
    expiry: Option<u64>,
    location: Location,
) -> Result<(), CliError> {
    let expiry = expiry.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
    let record = pb::Record {
        key,
        value: value.into_bytes(),
        expiry,
        ..pb::Record::default()
    };
    let options = pb::WriteOptions {
        database: location.database,
        table: location.table,
    };
    let request = pb::WriteRequest {
        record: Some(record),
        options: Some(options),
    };
    store
        .write(client.request(request))
        .await
        .map_err(|s| client.error(&s))?;
    Ok(())
}

async fn read(client: &Client, mut store: Store, args: ReadArgs) -> Result<(), CliError> {
    let options = pb::ReadOptions {
        database: args.location.database,
        table: args.location.table,
        prefix: args.prefix,
        suffix: args.suffix,
        limit: args.paging.limit,
        offset: args.paging.offset,
        order: args.paging.order,
    };
    let request = pb::ReadRequest {
        key: args.key,
        options: Some(options),
    };
    let request = client.request_with(request, args.stale);
    let reply = store.read(request).await.map_err(|s| client.error(&s))?;
    let output = args.output.or(args.verbose.then_some(Output::Table));
    print_records(&reply.into_inner().records, output)
}

/// Databases (`database` = None) or the tables of a database.
async fn catalogue(
    client: &Client,
    mut store: Store,
    database: Option<String>,
    output: Option<Output>,
) -> Result<(), CliError> {
    let header = if database.is_some() {
        "TABLE"
    } else {
        "DATABASE"
    };
    let names = match database {
        None => {
            let request = client.request(pb::DatabasesRequest {});
            store
                .databases(request)
                .await
                .map_err(|s| client.error(&s))?
                .into_inner()
                .databases
        }
        Some(database) => {
            let request = client.request(pb::TablesRequest { database });
            store
                .tables(request)
                .await
                .map_err(|s| client.error(&s))?
                .into_inner()
                .tables
        }
    };
    match output {
        None => print_lines(&names),
        Some(_) => {
            crate::commands::output::print_names(&names, output, header);
            Ok(())
        }
    }
}

async fn list(client: &Client, mut store: Store, args: ListArgs) -> Result<(), CliError> {
    let options = pb::ListOptions {
        database: args.location.database,
        table: args.location.table,
        prefix: args.prefix,
        suffix: args.suffix,
        limit: args.paging.limit,
        offset: args.paging.offset,
        order: args.paging.order,
    };
    let request = client.request_with(
        pb::ListRequest {
            options: Some(options),
        },
        args.stale,
    );
    let mut stream = store
        .list(request)
        .await
        .map_err(|s| client.error(&s))?
        .into_inner();
    let mut all = Vec::new();
    while let Some(page) = stream.message().await.map_err(|s| client.error(&s))? {
        match args.output {
            None => print_lines(&page.keys)?,
            Some(_) => all.extend(page.keys),
        }
    }
    if args.output.is_some() {
        crate::commands::output::print_names(&all, args.output, "KEY");
    }
    Ok(())
}

fn print_lines(lines: &[String]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}").map_err(|e| stdout_error(&e))?;
    }
    Ok(())
}

pub(crate) fn stdout_error(err: &std::io::Error) -> CliError {
    CliError::new(OTHER, format!("cannot write to stdout: {err}"))
}

fn print_records(records: &[pb::Record], output: Option<Output>) -> Result<(), CliError> {
    match output {
        None => {
            let mut out = std::io::stdout().lock();
            for record in records {
                out.write_all(&record.value)
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(|e| stdout_error(&e))?;
            }
        }
        Some(Output::Json) => {
            let array: Vec<serde_json::Value> = records.iter().map(record_json).collect();
            println!("{}", serde_json::Value::Array(array));
        }
        Some(Output::Table) => {
            let rows = records
                .iter()
                .map(|r| {
                    let expiry = if r.expiry == 0 {
                        "-".to_owned()
                    } else {
                        format!("{}s", r.expiry)
                    };
                    let metadata: Vec<String> = r
                        .metadata
                        .iter()
                        .map(|(k, f)| format!("{k}={}", f.value))
                        .collect();
                    vec![
                        r.key.clone(),
                        String::from_utf8_lossy(&r.value).into_owned(),
                        expiry,
                        metadata.join(","),
                    ]
                })
                .collect();
            print_table(&["KEY", "VALUE", "EXPIRY", "METADATA"], rows);
        }
    }
    Ok(())
}

/// A record as JSON: the value as text when it is UTF-8, else base64 under `value_base64`.
fn record_json(record: &pb::Record) -> serde_json::Value {
    let mut object = serde_json::json!({ "key": record.key, "expiry": record.expiry });
    match std::str::from_utf8(&record.value) {
        Ok(text) => object["value"] = text.into(),
        Err(_) => {
            object["value_base64"] = base64::engine::general_purpose::STANDARD
                .encode(&record.value)
                .into()
        }
    }
    let metadata: serde_json::Map<String, serde_json::Value> = record
        .metadata
        .iter()
        .map(|(k, f)| {
            (
                k.clone(),
                serde_json::json!({ "type": f.r#type, "value": f.value }),
            )
        })
        .collect();
    object["metadata"] = metadata.into();
    object
}
