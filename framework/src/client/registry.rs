//! [`RegistryClient`]: the platform registry (`/registry.Registry/*`) through the proxy.

use futures::StreamExt;
use micro_core::registry::{Service, WatchEvent};
use micro_proto::registry as pb;
use micro_proto::registry::registry_client::RegistryClient as WireClient;
use tonic::transport::Channel;

use crate::client::Client;
use crate::error::Error;
use crate::handler::ReplyStream;

/// Lists, looks up, registers and watches services in the client's namespace.
///
/// ```no_run
/// # async fn demo() -> Result<(), micro::Error> {
/// let registry = micro::Client::new("127.0.0.1:8081")?.registry();
/// for service in registry.list().await? {
///     println!("{} {}", service.name, service.version);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RegistryClient {
    client: Client,
}

impl RegistryClient {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Every service (one entry per version).
    pub async fn list(&self) -> Result<Vec<Service>, Error> {
        let request = pb::ListRequest {
            options: Some(self.options(0)),
        };
        let reply = self
            .wire()
            .list_services(self.client.request(request))
            .await
            .map_err(|s| from_status(&s))?;
        Ok(services(reply.into_inner().services))
    }

    /// The versions of the service `name`; `NotFound` if none is registered.
    pub async fn get(&self, name: &str) -> Result<Vec<Service>, Error> {
        let request = pb::GetRequest {
            service: name.to_owned(),
            options: Some(self.options(0)),
        };
        let reply = self
            .wire()
            .get_service(self.client.request(request))
            .await
            .map_err(|s| from_status(&s))?;
        Ok(services(reply.into_inner().services))
    }

    /// Registers the nodes of `service` for `ttl_secs` seconds (0: until deregistered).
    pub async fn register(&self, service: Service, ttl_secs: u64) -> Result<(), Error> {
        let mut wire = micro_proto::service_to_wire(service, self.client.namespace().as_str());
        wire.options = Some(self.options(i64::try_from(ttl_secs).unwrap_or(i64::MAX)));
        self.wire()
            .register(self.client.request(wire))
            .await
            .map_err(|s| from_status(&s))?;
        Ok(())
    }

    /// Deregisters the nodes of `service`.
    pub async fn deregister(&self, service: Service) -> Result<(), Error> {
        let wire = micro_proto::service_to_wire(service, self.client.namespace().as_str());
        self.wire()
            .deregister(self.client.request(wire))
            .await
            .map_err(|s| from_status(&s))?;
        Ok(())
    }

    /// Changes to the service `name` (every service when empty), until the stream is
    /// dropped. The client's timeout does not apply to the stream.
    pub async fn watch(&self, name: &str) -> Result<ReplyStream<WatchEvent>, Error> {
        let request = pb::WatchRequest {
            service: name.to_owned(),
            options: Some(self.options(0)),
        };
        let mut request = self.client.request(request);
        // A watch lasts as long as the caller wants; drop the per-call deadline.
        request.metadata_mut().remove("grpc-timeout");
        let results = self
            .wire()
            .watch(request)
            .await
            .map_err(|s| from_status(&s))?
            .into_inner();
        Ok(Box::pin(results.map(|result| {
            let result = result.map_err(|s| from_status(&s))?;
            Ok(WatchEvent {
                action: result.action,
                service: result
                    .service
                    .map(micro_proto::service_from_wire)
                    .unwrap_or_default(),
                timestamp: result.timestamp,
            })
        })))
    }

    fn options(&self, ttl: i64) -> pb::Options {
        pb::Options {
            ttl,
            domain: self.client.namespace().as_str().to_owned(),
        }
    }

    fn wire(&self) -> WireClient<Channel> {
        WireClient::new(self.client.channel())
    }
}

fn services(wire: Vec<pb::Service>) -> Vec<Service> {
    wire.into_iter()
        .map(micro_proto::service_from_wire)
        .collect()
}

fn from_status(status: &tonic::Status) -> Error {
    micro_proto::micro_from_status("registry", status)
}
