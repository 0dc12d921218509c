//! `runtime.Runtime` (Create, Read, Update, Delete, Logs) and `runtime.Source` (Upload)
//! over the [`RuntimeHandle`].
//!
//! ```text
//! micro run ./greeter: Source.Upload(stream {service, data}...) ─> blob source://greeter:latest
//!                      Runtime.Create{source: "source://greeter:latest"} ─> build, place, run
//! micro logs greeter:  Runtime.Logs on any node ─> its own LogBook
//!                        + Runtime.Logs (header micro-runtime-local) on every other node
//!                          that hosts an instance, through their proxies; merged by time
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::pin::Pin;

use futures::{Stream, StreamExt};
use micro_actors::runtime::{CreateRequest, LogRecord, RuntimeHandle, SOURCE_LEN_MAX, source_key};
use micro_core::runtime::{Build, RuntimeService as Desired, Source};
use micro_core::service::{CONTENT_PROTO, Call, RemoteCaller};
use micro_core::{Code, MicroError, Namespace};
use micro_proto::runtime as pb;
use micro_proto::runtime::runtime_server::Runtime;
use micro_proto::runtime::source_server::Source as SourceApi;
use prost::Message;
use tonic::codec::Streaming;
use tonic::{Request, Response, Status};

use crate::proxy::guard::{require_account, require_admin};

/// Set on a `Runtime.Logs` call one node makes to another: answer with your own logs
/// only.
pub const LOCAL_LOGS_HEADER: &str = "micro-runtime-local";

/// The `runtime.Runtime` gRPC service.
#[derive(Debug, Clone)]
pub struct RuntimeService {
    runtime: RuntimeHandle,
    registry: micro_actors::RegistryHandle,
    remote: std::sync::Arc<dyn RemoteCaller>,
}

impl RuntimeService {
    /// A service over `runtime`, reaching other nodes (for their logs) through `remote`
    /// at the addresses `registry` holds.
    pub fn new(
        runtime: RuntimeHandle,
        registry: micro_actors::RegistryHandle,
        remote: std::sync::Arc<dyn RemoteCaller>,
    ) -> Self {
        Self {
            runtime,
            registry,
            remote,
        }
    }
}

fn status(err: &MicroError) -> Status {
    micro_proto::status_from_micro(err)
}

fn namespace_from<T>(request: &Request<T>, option: Option<&str>) -> Result<Namespace, Status> {
    crate::proxy::namespace_from(request, option, "runtime")
}

fn service_of(resource: Option<pb::Resource>) -> Result<pb::Service, Status> {
    resource
        .and_then(|r| r.service)
        .filter(|s| !s.name.is_empty())
        .ok_or_else(|| {
            Status::invalid_argument("the request names no service (resource.service.name)")
        })
}

type LogStream = Pin<Box<dyn Stream<Item = Result<pb::LogRecord, Status>> + Send>>;

/// The wire form of a desired service, its state summed up in metadata.
fn to_wire(s: Desired) -> pb::Service {
    let status = s.status().number();
    let error = s.error().map(str::to_owned);
    let mut metadata: HashMap<String, String> = s.metadata.into_iter().collect();
    let nodes: Vec<String> = s.instances.iter().map(|i| i.node_id.to_string()).collect();
    metadata.insert("node".to_owned(), nodes.join(","));
    let running = s
        .instances
        .iter()
        .filter(|i| i.status == micro_core::runtime::Status::Running && i.revision == s.revision)
        .count();
    metadata.insert(
        "instances".to_owned(),
        format!("{running}/{}", s.instances.len()),
    );
    metadata.insert("revision".to_owned(), s.revision.to_string());
    metadata.insert("updated".to_owned(), (s.updated_ms / 1000).to_string());
    let restarts: u32 = s.instances.iter().map(|i| i.restarts).sum();
    metadata.insert("restarts".to_owned(), restarts.to_string());
    if let Some(build) = &s.build {
        let text = match build {
            Build::Pending => "pending".to_owned(),
            Build::Building { node_id } => format!("building on node {node_id}"),
            Build::Ready { blob } => blob.clone(),
            Build::Failed { .. } => "failed".to_owned(),
        };
        metadata.insert("build".to_owned(), text);
    }
    if let Some(error) = error {
        metadata.insert("error".to_owned(), error);
    }
    pb::Service {
        name: s.name,
        version: s.version,
        source: s.source.display().to_owned(),
        metadata,
        status,
    }
}

#[tonic::async_trait]
impl Runtime for RuntimeService {
    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let options = request.get_ref().options.clone().unwrap_or_default();
        let namespace = namespace_from(&request, Some(&options.namespace))?;
        require_admin(&request, &namespace, "runtime")?;
        let service = service_of(request.into_inner().resource)?;
        let source = if service.source.starts_with("source://") {
            Source::Upload(service.source.clone())
        } else if service.source.is_empty() || service.source == service.name {
            Source::Builtin(service.name.clone())
        } else {
            let err = MicroError::new(
                "runtime",
                Code::BadRequest,
                format!(
                    "source {:?}: give the name of a service compiled into the node, or \
                     upload a crate first (`micro run ./path` does both)",
                    service.source
                ),
            );
            return Err(status(&err));
        };
        let instances = u32::try_from(options.instances.max(1)).unwrap_or(u32::MAX);
        let request = CreateRequest {
            namespace,
            name: service.name,
            version: service.version,
            source,
            instances,
            metadata: service.metadata.into_iter().collect(),
        };
        self.runtime.create(request).await.map_err(|e| status(&e))?;
        Ok(Response::new(pb::CreateResponse {}))
    }

    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        let options = request.get_ref().options.clone().unwrap_or_default();
        let namespace = namespace_from(&request, Some(&options.namespace))?;
        require_account(&request, &namespace, "runtime")?;
        let name = Some(options.service.as_str()).filter(|n| !n.is_empty());
        let services = self
            .runtime
            .read(&namespace, name)
            .await
            .map_err(|e| status(&e))?;
        let services = services
            .into_iter()
            .filter(|s| options.version.is_empty() || s.version == options.version)
            .map(to_wire)
            .collect();
        Ok(Response::new(pb::ReadResponse { services }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let option = request
            .get_ref()
            .options
            .as_ref()
            .map(|o| o.namespace.clone());
        let namespace = namespace_from(&request, option.as_deref())?;
        require_admin(&request, &namespace, "runtime")?;
        let service = service_of(request.into_inner().resource)?;
        self.runtime
            .delete(namespace, &service.name, &service.version)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn update(
        &self,
        request: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        let options = request.get_ref().options.clone().unwrap_or_default();
        let namespace = namespace_from(&request, Some(&options.namespace))?;
        require_admin(&request, &namespace, "runtime")?;
        let service = service_of(request.into_inner().resource)?;
        let instances =
            (options.instances > 0).then(|| u32::try_from(options.instances).unwrap_or(u32::MAX));
        self.runtime
            .update(&namespace, &service.name, &service.version, instances)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::UpdateResponse {}))
    }

    type LogsStream = LogStream;

    async fn logs(
        &self,
        request: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let option = request
            .get_ref()
            .options
            .as_ref()
            .map(|o| o.namespace.clone());
        let namespace = namespace_from(&request, option.as_deref())?;
        require_admin(&request, &namespace, "runtime")?;
        let local_only = request.metadata().contains_key(LOCAL_LOGS_HEADER);
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let logs = request.into_inner();
        if logs.service.is_empty() {
            return Err(Status::invalid_argument("the request names no service"));
        }
        let services = self
            .runtime
            .read(&namespace, Some(&logs.service))
            .await
            .map_err(|e| status(&e))?;
        let services: Vec<Desired> = services
            .into_iter()
            .filter(|s| logs.version.is_empty() || s.version == logs.version)
            .collect();
        if services.is_empty() && !local_only {
            let err = MicroError::new(
                "runtime",
                Code::NotFound,
                format!(
                    "service {} is not running in namespace {namespace}",
                    logs.service
                ),
            );
            return Err(status(&err));
        }
        let mut sources: Vec<LogStream> = Vec::new();
        let mut history: Vec<pb::LogRecord> = Vec::new();
        for version in versions(&services, &logs) {
            let key = (namespace.clone(), logs.service.clone(), version);
            let (records, live) = self.runtime.logs().read(&key, logs.since, 0);
            let node = self.runtime.node_id().to_string();
            history.extend(records.into_iter().map(|r| record_to_wire(r, &node)));
            if logs.stream {
                sources.push(follow(live, node));
            }
        }
        if !local_only {
            let remote = self
                .remote_logs(&namespace, &services, &logs, token.as_deref())
                .await;
            history.extend(remote.history);
            sources.extend(remote.live);
        }
        history.sort_by_key(|r| r.timestamp);
        let count = usize::try_from(logs.count).unwrap_or(0);
        if count > 0 && history.len() > count {
            history.drain(..history.len() - count);
        }
        let past = futures::stream::iter(history.into_iter().map(Ok));
        let stream: LogStream = if logs.stream {
            Box::pin(past.chain(futures::stream::select_all(sources)))
        } else {
            Box::pin(past)
        };
        Ok(Response::new(stream))
    }
}

/// The versions whose logs to read: those running, else the one asked for.
fn versions(services: &[Desired], logs: &pb::LogsRequest) -> Vec<String> {
    let mut versions: BTreeSet<String> = services.iter().map(|s| s.version.clone()).collect();
    if versions.is_empty() {
        versions.insert(if logs.version.is_empty() {
            "latest".to_owned()
        } else {
            logs.version.clone()
        });
    }
    versions.into_iter().collect()
}

fn record_to_wire(record: LogRecord, node: &str) -> pb::LogRecord {
    let mut metadata: HashMap<String, String> = record.metadata.into_iter().collect();
    metadata.insert("node".to_owned(), node.to_owned());
    pb::LogRecord {
        timestamp: record.timestamp,
        metadata,
        message: record.message,
    }
}

fn follow(live: tokio::sync::broadcast::Receiver<LogRecord>, node: String) -> LogStream {
    let records = tokio_stream::wrappers::BroadcastStream::new(live).filter_map(move |r| {
        let node = node.clone();
        // A follower that fell behind skips what it missed rather than failing.
        async move { r.ok().map(|r| Ok(record_to_wire(r, &node))) }
    });
    Box::pin(records)
}

/// Logs gathered from other nodes.
struct Remote {
    history: Vec<pb::LogRecord>,
    live: Vec<LogStream>,
}

impl RuntimeService {
    /// Asks every other node that hosts (or built) an instance for its logs.
    async fn remote_logs(
        &self,
        namespace: &Namespace,
        services: &[Desired],
        logs: &pb::LogsRequest,
        token: Option<&str>,
    ) -> Remote {
        let me = self.runtime.node_id();
        let nodes: BTreeSet<u64> = services
            .iter()
            .flat_map(|s| s.instances.iter().map(|i| i.node_id))
            .filter(|n| *n != me)
            .collect();
        let addresses = self.node_addresses();
        let mut out = Remote {
            history: Vec::new(),
            live: Vec::new(),
        };
        for node in nodes {
            let Some(address) = addresses.get(&node) else {
                continue;
            };
            let mut metadata = BTreeMap::from([(LOCAL_LOGS_HEADER.to_owned(), "1".to_owned())]);
            if let Some(token) = token {
                metadata.insert("authorization".to_owned(), token.to_owned());
            }
            let call = Call {
                namespace: namespace.clone(),
                service: "runtime".to_owned(),
                endpoint: "Runtime.Logs".to_owned(),
                content_type: CONTENT_PROTO.to_owned(),
                metadata,
                body: logs.encode_to_vec(),
            };
            let timeout = if logs.stream {
                std::time::Duration::from_secs(24 * 3600)
            } else {
                std::time::Duration::from_secs(10)
            };
            let mut replies = match self.remote.call(address, call, timeout).await {
                Ok(replies) => replies,
                Err(err) => {
                    tracing::debug!(%err, node, "logs of another node unavailable");
                    continue;
                }
            };
            if logs.stream {
                out.live.push(Box::pin(replies.filter_map(|r| async move {
                    r.ok()
                        .and_then(|bytes| pb::LogRecord::decode(bytes.as_slice()).ok())
                        .map(Ok)
                })));
                continue;
            }
            while let Some(Ok(bytes)) = replies.next().await {
                if let Ok(record) = pb::LogRecord::decode(bytes.as_slice()) {
                    out.history.push(record);
                }
            }
        }
        out
    }

    /// Each node's proxy address, from the `runtime` registrations the nodes hold.
    fn node_addresses(&self) -> BTreeMap<u64, String> {
        let Ok(services) = self.registry.lookup_local(&Namespace::default(), "runtime") else {
            return BTreeMap::new();
        };
        services
            .iter()
            .flat_map(|s| s.nodes.iter())
            .filter_map(|n| {
                let id = n.metadata.get("node")?.parse().ok()?;
                Some((id, n.address.clone()))
            })
            .collect()
    }
}

/// The `runtime.Source` gRPC service: uploads of crates to build.
#[derive(Debug, Clone)]
pub struct SourceService {
    runtime: RuntimeHandle,
}

impl SourceService {
    /// A service storing uploads in `runtime`'s blob store.
    pub fn new(runtime: RuntimeHandle) -> Self {
        Self { runtime }
    }
}

#[tonic::async_trait]
impl SourceApi for SourceService {
    async fn upload(
        &self,
        request: Request<Streaming<pb::UploadRequest>>,
    ) -> Result<Response<pb::UploadResponse>, Status> {
        let namespace = namespace_from(&request, None)?;
        require_admin(&request, &namespace, "runtime")?;
        let Some(blobs) = self.runtime.blobs().cloned() else {
            return Err(Status::failed_precondition(
                "this node does not build or run processes",
            ));
        };
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the upload is empty"))?;
        let service = first
            .service
            .filter(|s| !s.name.is_empty())
            .ok_or_else(|| Status::invalid_argument("the first upload message names no service"))?;
        let version = if service.version.is_empty() {
            "latest"
        } else {
            &service.version
        };
        let key = source_key(&service.name, version);
        let mut writer = blobs.writer(&namespace, &key).map_err(|e| status(&e))?;
        let mut size = first.data.len() as u64;
        writer.write(&first.data).await.map_err(|e| status(&e))?;
        while let Some(message) = stream.message().await? {
            size += message.data.len() as u64;
            if size > SOURCE_LEN_MAX {
                let err = MicroError::new(
                    "runtime",
                    Code::PayloadTooLarge,
                    format!(
                        "a source is at most {SOURCE_LEN_MAX} bytes; is target/ in .gitignore?"
                    ),
                );
                return Err(status(&err));
            }
            writer.write(&message.data).await.map_err(|e| status(&e))?;
        }
        writer.commit().await.map_err(|e| status(&e))?;
        Ok(Response::new(pb::UploadResponse { id: key }))
    }
}
