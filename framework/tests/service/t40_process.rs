//! Process mode against a fake registry: the service serves gRPC on its listener,
//! registers (and refreshes) its node, answers the typed client, and deregisters when
//! told to stop.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use micro::Client;
use micro_proto::registry as pb;
use micro_proto::registry::registry_server::{Registry, RegistryServer};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::fixture::{CountRequest, CountResponse, PingRequest, PingResponse, handler};

/// Records every Register and Deregister.
#[derive(Debug, Clone, Default)]
struct FakeRegistry {
    calls: Arc<Mutex<Vec<(&'static str, pb::Service)>>>,
}

impl FakeRegistry {
    fn calls(&self) -> Vec<(&'static str, pb::Service)> {
        self.calls.lock().expect("no test thread panicked").clone()
    }

    fn record(&self, action: &'static str, service: pb::Service) {
        self.calls
            .lock()
            .expect("no test thread panicked")
            .push((action, service));
    }
}

type Watch = Pin<Box<dyn Stream<Item = Result<pb::Result, Status>> + Send>>;

#[tonic::async_trait]
impl Registry for FakeRegistry {
    async fn get_service(
        &self,
        _request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }

    async fn register(
        &self,
        request: Request<pb::Service>,
    ) -> Result<Response<pb::EmptyResponse>, Status> {
        self.record("register", request.into_inner());
        Ok(Response::new(pb::EmptyResponse {}))
    }

    async fn deregister(
        &self,
        request: Request<pb::Service>,
    ) -> Result<Response<pb::EmptyResponse>, Status> {
        self.record("deregister", request.into_inner());
        Ok(Response::new(pb::EmptyResponse {}))
    }

    async fn list_services(
        &self,
        _request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let services = self.calls().into_iter().map(|(_, s)| s).take(1).collect();
        Ok(Response::new(pb::ListResponse { services }))
    }

    type WatchStream = Watch;

    async fn watch(&self, _request: Request<pb::WatchRequest>) -> Result<Response<Watch>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
}

async fn start_registry(registry: FakeRegistry) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound").to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RegistryServer::new(registry))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    address
}

#[tokio::test]
async fn process_service_registers_serves_and_deregisters() {
    let registry = FakeRegistry::default();
    let registry_address = start_registry(registry.clone()).await;
    let proxy = Client::new(&registry_address).unwrap();

    tracing::info!("serve the echo service, re-registering every 50 ms");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let service = micro::Service::new("echo")
        .register_ttl(Duration::from_secs(1))
        .register_interval(Duration::from_millis(50))
        .handle(handler());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(
        service.serve(
            listener,
            tonic::transport::Endpoint::from_shared(format!("http://{registry_address}"))
                .unwrap()
                .connect_lazy(),
            async move {
                let _ = stopped.await;
            },
        ),
    );
    for _ in 0..100 {
        if registry.calls().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = registry.calls();
    assert!(calls.len() >= 2, "registered and refreshed: {calls:?}");
    let (action, registered) = &calls[0];
    assert_eq!(*action, "register");
    assert_eq!(registered.name, "echo");
    assert_eq!(registered.nodes[0].address, address);
    assert!(registered.nodes[0].id.starts_with("echo-"));
    let options = registered.options.as_ref().unwrap();
    assert_eq!((options.ttl, options.domain.as_str()), (1, "micro"));
    assert_eq!(proxy.registry().list().await.unwrap()[0].name, "echo");

    check_client(&address).await;

    tracing::info!("stopping deregisters the node");
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    let calls = registry.calls();
    let (action, deregistered) = calls.last().unwrap();
    assert_eq!(*action, "deregister");
    assert_eq!(deregistered.nodes[0].address, address);
}

/// The typed client reaches the service at `address` over gRPC, in both encodings.
#[allow(clippy::unwrap_used)] // a test helper: a failure here is the test failing
async fn check_client(address: &str) {
    tracing::info!("the typed client reaches the service over gRPC");
    let client = Client::new(address).unwrap();
    let request = PingRequest {
        msg: "hi".into(),
        ..PingRequest::default()
    };
    let response: PingResponse = client.call("echo", "Echo.Ping", &request).await.unwrap();
    assert_eq!(response.msg, "hi from micro");
    let json = client
        .call_json(
            "echo",
            "Echo.Ping",
            &serde_json::json!({"msg": "hey", "n": 1}),
        )
        .await
        .unwrap();
    assert_eq!(json, serde_json::json!({"msg": "hey from micro", "n": 2}));
    let err = client
        .call_json("echo", "Echo.Nope", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, 404);
    let count = CountRequest {
        count: 3,
        panic_at_end: false,
    };
    let counts: Vec<i64> = client
        .stream::<_, CountResponse>("echo", "Echo.Count", &count)
        .await
        .unwrap()
        .map(|r| r.unwrap().count)
        .collect()
        .await;
    assert_eq!(counts, [1, 2, 3]);
}
