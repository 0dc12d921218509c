//! `runtime.Runtime` (Create, Read, Delete) for in-node services over the
//! [`RuntimeHandle`]. Update and Logs belong to process services (#9) and answer
//! `Unimplemented` with a message saying so.

use std::collections::BTreeMap;
use std::pin::Pin;

use futures::Stream;
use micro_actors::RuntimeHandle;
use micro_core::{Code, MicroError, Namespace};
use micro_proto::runtime as pb;

use crate::proxy::guard::{require_account, require_admin};
use micro_proto::runtime::runtime_server::Runtime;
use tonic::{Request, Response, Status};

/// The `runtime.Runtime` gRPC service.
#[derive(Debug, Clone)]
pub struct RuntimeService {
    runtime: RuntimeHandle,
}

impl RuntimeService {
    /// A service over `runtime`.
    pub fn new(runtime: RuntimeHandle) -> Self {
        Self { runtime }
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

#[tonic::async_trait]
impl Runtime for RuntimeService {
    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let option = request
            .get_ref()
            .options
            .as_ref()
            .map(|o| o.namespace.clone());
        let namespace = namespace_from(&request, option.as_deref())?;
        require_admin(&request, &namespace, "runtime")?;
        let service = service_of(request.into_inner().resource)?;
        let source = if service.source.is_empty() {
            service.name.clone()
        } else {
            service.source.clone()
        };
        if source != service.name {
            let err = MicroError::new(
                "runtime",
                Code::BadRequest,
                format!(
                    "source {source:?}: only services compiled into the node can be run so far; \
                     building from source comes with the process runtime"
                ),
            );
            return Err(status(&err));
        }
        let mut metadata: BTreeMap<String, String> = service.metadata.into_iter().collect();
        metadata.insert("source".to_owned(), source);
        self.runtime
            .create(namespace, &service.name, &service.version, metadata)
            .await
            .map_err(|e| status(&e))?;
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
            .map(|s| {
                let mut metadata: std::collections::HashMap<String, String> =
                    s.metadata.into_iter().collect();
                metadata.insert("node".to_owned(), s.node_id.to_string());
                let micro_core::runtime::Source::Builtin(source) = s.source;
                pb::Service {
                    name: s.name,
                    version: s.version,
                    source,
                    metadata,
                    status: s.status.number(),
                }
            })
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
        _request: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        Err(Status::unimplemented(
            "runtime.Runtime/Update comes with the process runtime; kill and run the service instead",
        ))
    }

    type LogsStream = LogStream;

    async fn logs(
        &self,
        _request: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        Err(Status::unimplemented(
            "runtime.Runtime/Logs comes with the process runtime; in-node services log to the node's log",
        ))
    }
}
