//! `registry.Registry` over the [`RegistryHandle`].

use std::pin::Pin;

use futures::Stream;
use micro_actors::RegistryHandle;
use micro_core::{MicroError, Namespace};
use micro_proto::registry as pb;
use micro_proto::registry::registry_server::Registry;
use tonic::{Request, Response, Status};

use crate::proxy::consistency_of;
use crate::proxy::guard::{require_account, require_admin};

/// The `registry.Registry` gRPC service.
#[derive(Debug, Clone)]
pub struct RegistryService {
    registry: RegistryHandle,
}

impl RegistryService {
    /// A service answering from `registry`.
    pub fn new(registry: RegistryHandle) -> Self {
        Self { registry }
    }
}

fn status(err: &MicroError) -> Status {
    micro_proto::status_from_micro(err)
}

/// The namespace of a registry request: the options' domain, else the caller's.
fn domain<T>(request: &Request<T>, options: Option<&pb::Options>) -> Result<Namespace, Status> {
    crate::proxy::namespace_from(request, options.map(|o| o.domain.as_str()), "registry")
}

/// The namespace of a read: `micro`'s registry is public, any other needs an account of
/// it (as v3's `Authorize`).
fn read_domain<T>(
    request: &Request<T>,
    options: Option<&pb::Options>,
) -> Result<Namespace, Status> {
    let namespace = domain(request, options)?;
    if namespace != Namespace::default() {
        require_account(request, &namespace, "registry")?;
    }
    Ok(namespace)
}

/// The namespace of a change: an admin or service account of it only.
fn write_domain<T>(
    request: &Request<T>,
    options: Option<&pb::Options>,
) -> Result<Namespace, Status> {
    let namespace = domain(request, options)?;
    require_admin(request, &namespace, "registry")?;
    Ok(namespace)
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::Result, Status>> + Send>>;

#[tonic::async_trait]
impl Registry for RegistryService {
    async fn get_service(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let namespace = read_domain(&request, request.get_ref().options.as_ref())?;
        let consistency = consistency_of(&request)?;
        let services = self
            .registry
            .get(&namespace, &request.get_ref().service, consistency)
            .await
            .map_err(|e| status(&e))?;
        let services = services
            .into_iter()
            .map(|s| micro_proto::service_to_wire(s, namespace.as_str()))
            .collect();
        Ok(Response::new(pb::GetResponse { services }))
    }

    async fn register(
        &self,
        request: Request<pb::Service>,
    ) -> Result<Response<pb::EmptyResponse>, Status> {
        let namespace = write_domain(&request, request.get_ref().options.as_ref())?;
        let name = request.get_ref().name.as_str();
        // Calls to a core service resolve in `micro` whatever the caller's namespace;
        // a look-alike elsewhere could only confuse (or catch) someone's calls.
        if namespace != Namespace::default()
            && micro_core::registry::CORE_SERVICE_NAMES.contains(&name)
        {
            return Err(Status::invalid_argument(format!(
                "{name} is the name of a core service: choose another"
            )));
        }
        let registrations = micro_proto::registrations_from_wire(request.into_inner());
        if registrations.is_empty() {
            return Err(Status::invalid_argument(
                "a registration needs at least one node",
            ));
        }
        for registration in registrations {
            self.registry
                .register(namespace.clone(), registration)
                .await
                .map_err(|e| status(&e))?;
        }
        Ok(Response::new(pb::EmptyResponse {}))
    }

    async fn deregister(
        &self,
        request: Request<pb::Service>,
    ) -> Result<Response<pb::EmptyResponse>, Status> {
        let namespace = write_domain(&request, request.get_ref().options.as_ref())?;
        let service = request.into_inner();
        let nodes = service.nodes.into_iter().map(|n| n.id).collect();
        self.registry
            .deregister(namespace, &service.name, &service.version, nodes)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::EmptyResponse {}))
    }

    async fn list_services(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let namespace = read_domain(&request, request.get_ref().options.as_ref())?;
        let consistency = consistency_of(&request)?;
        let services = self
            .registry
            .list(&namespace, consistency)
            .await
            .map_err(|e| status(&e))?;
        let services = services
            .into_iter()
            .map(|s| micro_proto::service_to_wire(s, namespace.as_str()))
            .collect();
        Ok(Response::new(pb::ListResponse { services }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let namespace = read_domain(&request, request.get_ref().options.as_ref())?;
        let name = Some(request.get_ref().service.clone()).filter(|s| !s.is_empty());
        let events = self.registry.watch(namespace.clone(), name);
        let stream = tokio_stream::wrappers::ReceiverStream::new(events);
        let domain = namespace.as_str().to_owned();
        let stream = futures::StreamExt::map(stream, move |event| {
            Ok(micro_proto::watch_event_to_wire(event, &domain))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
