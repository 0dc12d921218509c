//! Calling services: `micro services`, `micro call`, `micro stream`, the dynamic
//! `micro SERVICE [ENDPOINT] --field=value` commands, and the in-node runtime commands
//! `micro run`, `micro kill`, `micro status`.
//!
//! ```text
//! micro call helloworld Helloworld.Call '{"name":"John"}'
//!   ─> registry.GetService(helloworld): endpoints + descriptor set (metadata)
//!   ─> JSON ─prost-reflect─> protobuf ─/helloworld.Helloworld/Call (raw)─> proxy ─> router
//!   <─ protobuf replies ─prost-reflect─> JSON on stdout
//! ```
//! A service registered without a descriptor set gets the JSON as it is
//! (`application/grpc+json`) and its replies are printed as they come.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use micro_core::registry::Service;
use micro_core::service::{CONTENT_JSON, CONTENT_PROTO, Call};
use micro_core::{Code, MicroError, Namespace};
use micro_proto::registry as reg;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::exit::{CliError, UNKNOWN_METHOD, UNREACHABLE};
use crate::flags::{kind_name, parse_dynamic, request_from_flags};

/// How long a call may take unless `--timeout` says otherwise.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Flags of `micro call` and `micro stream`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  micro call helloworld Helloworld.Call '{\"name\":\"John\"}'")]
pub struct CallArgs {
    /// Service name (as `micro services` lists it)
    pub service: String,
    /// Endpoint, as Handler.Method
    pub endpoint: String,
    /// Request as JSON (default `{}`)
    pub request: Option<String>,
    /// Request metadata, KEY=VALUE (repeatable)
    #[arg(long, short = 'm', value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// How long to wait for the reply (e.g. 5s, 500ms)
    #[arg(long, value_parser = crate::duration::parse, default_value = "5s")]
    pub timeout: Duration,
}

/// Flags of `micro services`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  micro services --output json")]
pub struct ServicesArgs {
    /// Output format (default: one name per line)
    #[arg(long, short = 'o')]
    pub output: Option<Output>,
}

/// `micro services`.
pub(crate) async fn services(client: &Client, args: ServicesArgs) -> Result<(), CliError> {
    let request = client.request(reg::ListRequest { options: None });
    let reply = client
        .registry()
        .list_services(request)
        .await
        .map_err(|s| client.error(&s))?;
    let mut names: Vec<String> = reply
        .into_inner()
        .services
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    names.dedup();
    match args.output {
        Some(Output::Json) => println!("{}", serde_json::json!(names)),
        Some(Output::Table) => print_table(&["NAME"], names.into_iter().map(|n| vec![n]).collect()),
        None => names.iter().for_each(|n| println!("{n}")),
    }
    Ok(())
}

/// `micro call` (`stream: false`) and `micro stream`.
pub(crate) async fn call(client: &Client, args: CallArgs, stream: bool) -> Result<(), CliError> {
    let json = args.request.as_deref().unwrap_or("{}");
    let body: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| CliError::usage(format!("the request is not valid JSON: {e}")))?;
    let mut metadata = BTreeMap::new();
    for pair in &args.metadata {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| CliError::usage(format!("--metadata {pair:?} must be KEY=VALUE")))?;
        metadata.insert(k.to_ascii_lowercase(), v.to_owned());
    }
    let target = Target::resolve(client, &args.service).await?;
    target
        .invoke(
            client,
            &args.endpoint,
            &body,
            metadata,
            args.timeout,
            stream,
        )
        .await
}

/// A service as the CLI calls it: its namespace and, when registered, its descriptors.
struct Target {
    name: String,
    namespace: Namespace,
    service: Service,
    pool: Option<DescriptorPool>,
}

impl Target {
    /// Looks the service up in the client's namespace, then in `micro` (where the core
    /// services live).
    async fn resolve(client: &Client, name: &str) -> Result<Self, CliError> {
        let mut namespaces = vec![client.namespace().clone()];
        if client.namespace().as_str() != micro_core::namespace::DEFAULT_NAMESPACE {
            namespaces.push(Namespace::default());
        }
        for namespace in namespaces {
            let request = client.request(reg::GetRequest {
                service: name.to_owned(),
                options: Some(reg::Options {
                    ttl: 0,
                    domain: namespace.as_str().to_owned(),
                }),
            });
            match client.registry().get_service(request).await {
                Ok(reply) => {
                    let Some(service) = reply.into_inner().services.into_iter().next() else {
                        continue;
                    };
                    let service = micro_proto::service_from_wire(service);
                    let pool = micro_proto::transcode::descriptor_pool(&service);
                    return Ok(Self {
                        name: name.to_owned(),
                        namespace,
                        service,
                        pool,
                    });
                }
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => return Err(client.error(&status)),
            }
        }
        Err(CliError::new(
            UNREACHABLE,
            format!("service {name} not found (see `micro services`)"),
        ))
    }

    fn endpoint_names(&self) -> Vec<String> {
        self.service
            .endpoints
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    fn unknown_endpoint(&self, endpoint: &str) -> CliError {
        CliError::new(
            UNKNOWN_METHOD,
            format!(
                "service {} has no endpoint {endpoint} (endpoints: {})",
                self.name,
                self.endpoint_names().join(", ")
            ),
        )
    }

    /// The method behind `endpoint` (`Handler.Method`), when descriptors are known.
    fn method(&self, endpoint: &str) -> Result<Option<MethodDescriptor>, CliError> {
        // Every service answers Debug.* without advertising it: `debug.Debug` of the
        // wire contract describes it.
        if let Some(method) = endpoint.strip_prefix("Debug.") {
            return Ok(debug_method(method));
        }
        let Some(pool) = &self.pool else {
            return Ok(None);
        };
        let found = micro_proto::transcode::find_method(pool, &self.service, &self.name, endpoint);
        found
            .map(Some)
            .ok_or_else(|| self.unknown_endpoint(endpoint))
    }

    async fn invoke(
        &self,
        client: &Client,
        endpoint: &str,
        body: &serde_json::Value,
        metadata: BTreeMap<String, String>,
        timeout: Duration,
        stream: bool,
    ) -> Result<(), CliError> {
        let method = self.method(endpoint)?;
        let (content_type, bytes) = match &method {
            Some(method) => {
                let message =
                    DynamicMessage::deserialize(method.input(), body.clone()).map_err(|e| {
                        CliError::usage(format!(
                            "the request is not a valid {}: {e}",
                            method.input().full_name()
                        ))
                    })?;
                (CONTENT_PROTO, message.encode_to_vec())
            }
            None => (CONTENT_JSON, body.to_string().into_bytes()),
        };
        let call = Call {
            namespace: self.namespace.clone(),
            service: self.name.clone(),
            endpoint: endpoint.to_owned(),
            content_type: content_type.to_owned(),
            metadata: client.with_auth_metadata(metadata),
            body: bytes,
        };
        // Only the router's own "no such service" is exit 4; a service's not-found
        // answer (a missing key, say) is an ordinary micro error.
        let gone = format!("service {} not found", self.name);
        let micro = |e: &MicroError| {
            if e.kind() == Code::NotFound && e.detail.starts_with(&gone) {
                CliError::new(UNREACHABLE, e.detail.clone())
            } else {
                CliError::from_micro(e)
            }
        };
        let mut replies = micro_proto::raw::call(client.channel(), call, timeout)
            .await
            .map_err(|e| micro(&e))?;
        while let Some(reply) = replies.next().await {
            let reply = reply.map_err(|e| micro(&e))?;
            let text = match &method {
                Some(method) => render(&method.output(), &reply, !stream)?,
                None => String::from_utf8_lossy(&reply).into_owned(),
            };
            println!("{text}");
        }
        Ok(())
    }
}

/// A protobuf reply as JSON (pretty for `call`, one line for `stream`).
fn render(message: &MessageDescriptor, bytes: &[u8], pretty: bool) -> Result<String, CliError> {
    micro_proto::transcode::reply_json(message, bytes, pretty)
        .map(|json| String::from_utf8_lossy(&json).into_owned())
        .map_err(|why| CliError::new(crate::exit::OTHER, why))
}

fn title(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

fn lower_camel(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// A dynamic command: `micro SERVICE [HANDLER] [METHOD] [--field=value ...]`.
/// Method `name` of `debug.Debug` in the built-in descriptors.
fn debug_method(name: &str) -> Option<MethodDescriptor> {
    let pool = DescriptorPool::decode(micro_proto::FILE_DESCRIPTOR_SET).ok()?;
    let service = pool.get_service_by_name("debug.Debug")?;
    service.methods().find(|m| m.name() == name)
}

/// The registered service names (none if the registry cannot be read).
async fn known_services(client: &Client) -> Vec<String> {
    let request = client.request(micro_proto::registry::ListRequest::default());
    match client.registry().list_services(request).await {
        Ok(reply) => reply
            .into_inner()
            .services
            .into_iter()
            .map(|s| s.name)
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub(crate) async fn dynamic(client: &Client, args: Vec<String>) -> Result<(), CliError> {
    let Some((service, rest)) = args.split_first() else {
        return Err(CliError::usage("no command given (see micro --help)"));
    };
    let (words, flags, help) = parse_dynamic(rest);
    let target = match Target::resolve(client, service).await {
        Ok(target) => target,
        Err(err) if err.code == UNREACHABLE => {
            let known = known_services(client).await;
            return Err(super::suggest(Some(service), &known).unwrap_or_else(|| {
                CliError::usage(format!(
                    "unknown command or service {service:?} (see micro --help and micro services)"
                ))
            }));
        }
        Err(err) => return Err(err),
    };
    let endpoint = match words.as_slice() {
        [] => format!("{}.Call", title(service)),
        [method] => format!("{}.{}", title(service), title(method)),
        [.., handler, method] => format!("{}.{}", title(handler), title(method)),
    };
    if help {
        print_help(
            &target,
            words
                .is_empty()
                .then_some(())
                .map_or(Some(&endpoint), |()| None),
        );
        return Ok(());
    }
    let method = target.method(&endpoint)?;
    let body = match &method {
        Some(method) => request_from_flags(&method.input(), &flags)?,
        None => {
            let mut object = serde_json::Map::new();
            for (k, v) in flags {
                object.insert(k, serde_json::Value::String(v));
            }
            serde_json::Value::Object(object)
        }
    };
    let streams = method
        .as_ref()
        .is_some_and(MethodDescriptor::is_server_streaming);
    target
        .invoke(
            client,
            &endpoint,
            &body,
            BTreeMap::new(),
            CALL_TIMEOUT,
            streams,
        )
        .await
}

fn print_help(target: &Target, endpoint: Option<&String>) {
    if let Some(endpoint) = endpoint
        && let Ok(Some(method)) = target.method(endpoint)
    {
        println!(
            "Usage: micro {} {} [flags]\n",
            target.name,
            lower_camel(method.name())
        );
        println!("Flags:");
        for field in method.input().fields() {
            println!("  --{} ({})", field.name(), kind_name(&field));
        }
        return;
    }
    println!(
        "Usage: micro {} [endpoint] [--field=value ...]\n",
        target.name
    );
    println!("Endpoints:");
    for name in target.endpoint_names() {
        let method = name.split_once('.').map_or(name.as_str(), |(_, m)| m);
        println!("  {}", lower_camel(method));
    }
}
