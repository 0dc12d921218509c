//! The Kubernetes runtime against a fake API server: an axum server on 127.0.0.1 that
//! records every request and answers as the API server would (the JSON shapes of
//! Kubernetes 1.33 responses), driven one sync round at a time through a runtime over
//! an in-memory replicator that leads.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use micro_core::replicator::{BoxFuture, MemReplicator, Replicator};
use micro_core::runtime::{Build, Change, Credentials, Instance, RuntimeService, Source, Status};
use micro_core::service::{Call, RemoteCaller, Replies};
use micro_core::state::Command;
use micro_core::{Code, MicroError, Namespace};
use serde_json::{Value, json};

use super::{KubeConfig, KubeRuntime};
use crate::runtime::RuntimeHandle;
use crate::{RegistryHandle, Router};

/// One request the fake API server received.
#[derive(Debug, Clone)]
struct Exchange {
    method: String,
    path: String,
    query: String,
    body: Value,
}

/// What the fake API server holds and answers with.
#[derive(Debug, Default)]
struct World {
    recorded: Vec<Exchange>,
    /// The Deployment GET answers with (404 when `None`).
    deployment: Option<Value>,
    /// The pods of the service.
    pods: Vec<Value>,
    /// Every pod's log.
    log: String,
    /// What the cluster-wide lists of managed objects return, by kind.
    managed: BTreeMap<&'static str, Vec<Value>>,
    /// Answer every write with this (code, reason, message) instead.
    refuse_writes: Option<(u16, &'static str, &'static str)>,
}

type Shared = Arc<Mutex<World>>;

fn status_body(code: u16, reason: &str, message: &str) -> String {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": if code < 300 { "Success" } else { "Failure" },
        "code": code, "reason": reason, "message": message,
    })
    .to_string()
}

fn list(kind: &str, items: &[Value]) -> String {
    json!({ "kind": kind, "apiVersion": "v1", "metadata": { "resourceVersion": "7" },
            "items": items })
    .to_string()
}

/// The API server's answer to `ex`.
fn answer(world: &World, ex: &Exchange) -> (u16, String) {
    let ns = "/api/v1/namespaces/micro-micro";
    let apps = "/apis/apps/v1/namespaces/micro-micro";
    match (ex.method.as_str(), ex.path.as_str()) {
        ("PATCH" | "DELETE", _) if world.refuse_writes.is_some() => {
            let (code, reason, message) = world.refuse_writes.unwrap_or_default();
            (code, status_body(code, reason, message))
        }
        ("PATCH", _) => (200, ex.body.to_string()),
        ("DELETE", _) => (200, status_body(200, "", "")),
        ("GET", path) if path.ends_with("/log") => (200, world.log.clone()),
        ("GET", path) if path == format!("{ns}/pods") => (200, list("PodList", &world.pods)),
        ("GET", path) if path.starts_with(&format!("{apps}/deployments/")) => {
            match &world.deployment {
                Some(d) => (200, d.to_string()),
                None => (
                    404,
                    status_body(404, "NotFound", "deployments.apps not found"),
                ),
            }
        }
        ("GET", "/apis/apps/v1/deployments") => (
            200,
            list(
                "DeploymentList",
                world
                    .managed
                    .get("Deployment")
                    .map_or(&[][..], Vec::as_slice),
            ),
        ),
        ("GET", "/api/v1/services") => (
            200,
            list(
                "ServiceList",
                world.managed.get("Service").map_or(&[][..], Vec::as_slice),
            ),
        ),
        ("GET", "/api/v1/secrets") => (
            200,
            list(
                "SecretList",
                world.managed.get("Secret").map_or(&[][..], Vec::as_slice),
            ),
        ),
        _ => (
            404,
            status_body(404, "NotFound", "the fake has no such path"),
        ),
    }
}

/// Starts the fake API server; a kube client pointed at it.
async fn fake_api(world: Shared) -> ::kube::Client {
    let app = axum::Router::new().fallback(move |request: Request| {
        let world = world.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let ex = Exchange {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let mut world = world.lock().unwrap();
            let (code, text) = answer(&world, &ex);
            world.recorded.push(ex);
            let kind = if text.starts_with('{') {
                "application/json"
            } else {
                "text/plain"
            };
            Response::builder()
                .status(code)
                .header("content-type", kind)
                .body(Body::from(text))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = ::kube::Config::new(format!("http://{address}").parse().unwrap());
    config.read_timeout = Some(Duration::from_secs(5));
    ::kube::Client::try_from(config).unwrap()
}

#[derive(Debug)]
struct Nowhere;

impl RemoteCaller for Nowhere {
    fn call(
        &self,
        address: &str,
        _: Call,
        _: Duration,
    ) -> BoxFuture<'static, Result<Replies, MicroError>> {
        let err = MicroError::new("test", Code::Unavailable, format!("{address} is nowhere"));
        Box::pin(async move { Err(err) })
    }
}

/// A leading node 1 on Kubernetes (the fake), and the fake's world.
struct Harness {
    runtime: RuntimeHandle,
    kube: Arc<KubeRuntime>,
    world: Shared,
    replicator: Arc<dyn Replicator>,
    logged: BTreeSet<crate::runtime::LogKey>,
}

impl Harness {
    async fn new() -> Self {
        let world = Shared::default();
        let client = fake_api(world.clone()).await;
        let mut config = KubeConfig::new("micro.micro.svc:8081".to_owned());
        config.proxy_ca = Some("-----BEGIN CERTIFICATE-----".to_owned());
        let kube = Arc::new(KubeRuntime::new(client, config));
        let replicator: Arc<dyn Replicator> =
            Arc::new(MemReplicator::new(Arc::new(micro_core::SystemClock)));
        let registry = RegistryHandle::new(replicator.clone());
        let router = Router::new(registry.clone(), Arc::new(Nowhere), "127.0.0.1:1".into());
        let runtime =
            RuntimeHandle::new(replicator.clone(), registry, router, Default::default(), 1)
                .with_kubernetes(kube.clone());
        Self {
            runtime,
            kube,
            world,
            replicator,
            logged: BTreeSet::new(),
        }
    }

    /// `greeter:latest` with `instances` instances on node 1, built at revision 1.
    async fn run_greeter(&self, instances: usize) {
        let service = RuntimeService {
            name: "greeter".into(),
            version: "latest".into(),
            source: Source::Upload("source://greeter:latest".into()),
            revision: 1,
            build: Some(Build::Ready {
                blob: "build://greeter:latest#1".into(),
            }),
            instances: vec![Instance::pending(1); instances],
            credentials: Some(Credentials {
                id: "greeter-latest".into(),
                secret: "s3cret".into(),
            }),
            metadata: BTreeMap::new(),
            updated_ms: 0,
        };
        let command = Command::RuntimeUpsert {
            namespace: Namespace::default(),
            service,
        };
        self.replicator.propose(command).await.unwrap();
    }

    async fn change(&self, change: Change) {
        let command = Command::RuntimeChange {
            namespace: Namespace::default(),
            name: "greeter".into(),
            version: "latest".into(),
            change,
        };
        self.replicator.propose(command).await.unwrap();
    }

    async fn tick(&mut self) {
        self.runtime.kube_tick(&self.kube, &mut self.logged).await;
    }

    /// The requests since the last call.
    fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut self.world.lock().unwrap().recorded)
    }

    async fn greeter(&self) -> RuntimeService {
        let mut all = self
            .runtime
            .read(&Namespace::default(), Some("greeter"))
            .await
            .unwrap();
        all.pop().expect("greeter is in the desired state")
    }
}

fn patched<'a>(exchanges: &'a [Exchange], path: &str) -> &'a Value {
    let found = exchanges
        .iter()
        .find(|e| e.method == "PATCH" && e.path == path);
    &found
        .unwrap_or_else(|| panic!("no PATCH {path} in {exchanges:#?}"))
        .body
}

fn pod(name: &str, ready: bool, waiting: Option<&str>) -> Value {
    let mut container = json!({ "name": "service", "image": "micro-rust/micro:latest",
                                "imageID": "", "ready": ready, "restartCount": 2 });
    if let Some(reason) = waiting {
        container["state"] = json!({ "waiting": { "reason": reason, "message": "back-off" } });
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "micro-micro",
                      "labels": { "micro": "service", "name": "greeter", "version": "latest",
                                  "micro.mu/revision": "1" } },
        "status": {
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }],
            "containerStatuses": [container],
        },
    })
}

/// The Deployment of `greeter:latest`: two instances, revision 1.
fn check_deployment(deployment: &Value) {
    assert_eq!(deployment["spec"]["replicas"], 2);
    let labels = json!({ "micro": "service", "name": "greeter", "version": "latest" });
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "micro"
    );
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["micro.mu/revision"], "1");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], "micro-rust/micro:latest");
    assert_eq!(
        container["command"],
        json!([
            "/usr/local/bin/micro",
            "cell",
            "--build",
            "build://greeter:latest#1"
        ])
    );
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "greeter-latest-auth"
    );
    let env: BTreeMap<String, Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v.get("value").cloned().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(env["MICRO_PROXY"], "micro.micro.svc:8081");
    assert_eq!(env["MICRO_NAMESPACE"], "micro");
    assert_eq!(env["MICRO_SERVICE_ADDRESS"], "$(POD_IP):8080");
    assert!(
        !env.contains_key("MICRO_AUTH_SECRET"),
        "the secret comes from the Secret only"
    );
}

#[tokio::test]
async fn a_new_service_becomes_namespace_secret_deployment_and_service() {
    let mut h = Harness::new().await;
    h.run_greeter(2).await;
    tracing::info!("one round applies the four objects, by server-side apply");
    h.tick().await;
    let sent = h.take();
    let applies: Vec<&str> = sent
        .iter()
        .filter(|e| e.method == "PATCH")
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        applies,
        [
            "/api/v1/namespaces/micro-micro",
            "/api/v1/namespaces/micro-micro/secrets/greeter-latest-auth",
            "/apis/apps/v1/namespaces/micro-micro/deployments/greeter-latest",
            "/api/v1/namespaces/micro-micro/services/greeter-latest",
        ]
    );
    for e in sent.iter().filter(|e| e.method == "PATCH") {
        assert!(
            e.query.contains("fieldManager=micro-node") && e.query.contains("force=true"),
            "{}",
            e.query
        );
    }
    let secret = patched(
        &sent,
        "/api/v1/namespaces/micro-micro/secrets/greeter-latest-auth",
    );
    assert_eq!(secret["data"]["MICRO_AUTH_ID"], "Z3JlZXRlci1sYXRlc3Q="); // greeter-latest
    assert_eq!(secret["data"]["MICRO_AUTH_SECRET"], "czNjcmV0"); // s3cret
    assert!(secret["data"]["MICRO_PROXY_CA_PEM"].is_string());

    let deployment = patched(
        &sent,
        "/apis/apps/v1/namespaces/micro-micro/deployments/greeter-latest",
    );
    check_deployment(deployment);
    let labels = json!({ "micro": "service", "name": "greeter", "version": "latest" });
    let service = patched(
        &sent,
        "/api/v1/namespaces/micro-micro/services/greeter-latest",
    );
    assert_eq!(service["spec"]["selector"], labels);

    tracing::info!("an unchanged service is not applied again, only read");
    h.tick().await;
    let again = h.take();
    assert!(again.iter().all(|e| e.method == "GET"), "{again:#?}");
}

#[tokio::test]
async fn more_instances_become_more_replicas_once_rebuilt() {
    let mut h = Harness::new().await;
    h.run_greeter(1).await;
    h.tick().await;
    h.take();
    tracing::info!("micro update --instances 3: a new revision, built again first");
    h.change(Change::Revise {
        revision: 1,
        place: vec![1, 1, 1],
    })
    .await;
    h.tick().await;
    let during = h.take();
    assert!(
        !during
            .iter()
            .any(|e| e.method == "PATCH" && e.path.contains("/deployments/")),
        "while it builds, the old revision keeps running: {during:#?}"
    );
    h.change(Change::BuildClaim {
        revision: 2,
        node_id: 1,
    })
    .await;
    let done = Ok("build://greeter:latest#2".to_owned());
    h.change(Change::BuildDone {
        revision: 2,
        node_id: 1,
        outcome: done,
    })
    .await;
    h.tick().await;
    let sent = h.take();
    let deployment = patched(
        &sent,
        "/apis/apps/v1/namespaces/micro-micro/deployments/greeter-latest",
    );
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["micro.mu/revision"], "2");
    assert_eq!(
        pod["spec"]["containers"][0]["command"][3],
        "build://greeter:latest#2"
    );
}

#[tokio::test]
async fn pod_states_are_read_back_into_the_replicated_status() {
    let mut h = Harness::new().await;
    h.run_greeter(3).await;
    {
        let mut world = h.world.lock().unwrap();
        world.deployment = Some(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "greeter-latest", "namespace": "micro-micro" },
            "status": { "replicas": 2, "readyReplicas": 1 },
        }));
        world.pods = vec![
            pod("greeter-latest-b", false, Some("CrashLoopBackOff")),
            pod("greeter-latest-a", true, None),
        ];
    }
    h.tick().await;
    let greeter = h.greeter().await;
    let states: Vec<Status> = greeter.instances.iter().map(|i| i.status).collect();
    assert_eq!(states, [Status::Running, Status::Error, Status::Pending]);
    assert_eq!(greeter.instances[0].revision, 1);
    assert_eq!(greeter.instances[0].restarts, 2);
    assert_eq!(
        greeter.instances[1].error.as_deref(),
        Some("pod greeter-latest-b: CrashLoopBackOff: back-off")
    );
    assert_eq!(greeter.status(), Status::Running);
}

#[tokio::test]
async fn a_killed_service_has_its_objects_deleted() {
    let mut h = Harness::new().await;
    h.run_greeter(1).await;
    h.tick().await;
    h.take();
    let owned = |kind: &str, name: &str| {
        json!({
            "apiVersion": if kind == "Deployment" { "apps/v1" } else { "v1" }, "kind": kind,
            "metadata": { "name": name, "namespace": "micro-micro",
                          "labels": { "app.kubernetes.io/managed-by": "micro" },
                          "annotations": { "micro.mu/namespace": "micro",
                                           "micro.mu/name": "greeter",
                                           "micro.mu/version": "latest" } },
        })
    };
    {
        let mut world = h.world.lock().unwrap();
        world
            .managed
            .insert("Deployment", vec![owned("Deployment", "greeter-latest")]);
        world
            .managed
            .insert("Service", vec![owned("Service", "greeter-latest")]);
        world
            .managed
            .insert("Secret", vec![owned("Secret", "greeter-latest-auth")]);
    }
    tracing::info!("still wanted: nothing is deleted");
    h.tick().await;
    assert!(!h.take().iter().any(|e| e.method == "DELETE"));

    tracing::info!("micro kill: the three objects go");
    let kill = Command::RuntimeDelete {
        namespace: Namespace::default(),
        name: "greeter".into(),
        version: "latest".into(),
    };
    h.replicator.propose(kill).await.unwrap();
    h.tick().await;
    let deletes: Vec<String> = h
        .take()
        .into_iter()
        .filter(|e| e.method == "DELETE")
        .map(|e| e.path)
        .collect();
    assert_eq!(
        deletes,
        [
            "/apis/apps/v1/namespaces/micro-micro/deployments/greeter-latest",
            "/api/v1/namespaces/micro-micro/services/greeter-latest",
            "/api/v1/namespaces/micro-micro/secrets/greeter-latest-auth",
        ]
    );
}

#[tokio::test]
async fn pod_logs_are_read_into_the_log_book_once() {
    let mut h = Harness::new().await;
    h.run_greeter(1).await;
    {
        let mut world = h.world.lock().unwrap();
        world.pods = vec![pod("greeter-latest-a", true, None)];
        world.log = "2026-01-02T03:04:05.1Z serving on 10.1.2.3:8080\n\
                     2026-01-02T03:04:06.2Z Hello, John\n"
            .to_owned();
    }
    h.tick().await;
    h.tick().await;
    let key = (
        Namespace::default(),
        "greeter".to_owned(),
        "latest".to_owned(),
    );
    let (records, _) = h.runtime.logs().read(&key, 0, 0);
    let lines: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        lines,
        ["serving on 10.1.2.3:8080", "Hello, John"],
        "read once, not twice"
    );
    assert_eq!(records[0].metadata["pod"], "greeter-latest-a");
    let sent = h.take();
    let reads: Vec<&Exchange> = sent.iter().filter(|e| e.path.ends_with("/log")).collect();
    assert!(reads[0].query.contains("tailLines=200") && reads[0].query.contains("timestamps=true"));
    assert!(
        reads[1].query.contains("sinceTime=2026-01-02T03%3A04%3A06"),
        "{}",
        reads[1].query
    );

    tracing::info!("killed: its logs are forgotten");
    let kill = Command::RuntimeDelete {
        namespace: Namespace::default(),
        name: "greeter".into(),
        version: "latest".into(),
    };
    h.replicator.propose(kill).await.unwrap();
    h.tick().await;
    assert!(h.runtime.logs().read(&key, 0, 0).0.is_empty());
}

#[tokio::test]
async fn an_api_refusal_is_the_service_error() {
    let mut h = Harness::new().await;
    h.world.lock().unwrap().refuse_writes = Some((
        403,
        "Forbidden",
        "namespaces is forbidden: User \"system:serviceaccount:micro:micro\" cannot patch",
    ));
    h.run_greeter(2).await;
    h.tick().await;
    let greeter = h.greeter().await;
    assert_eq!(greeter.status(), Status::Error);
    let error = greeter.error().unwrap();
    assert!(
        error.starts_with(
            "kubernetes: apply Namespace micro-micro: 403 Forbidden: namespaces is forbidden"
        ),
        "{error}"
    );
    assert!(greeter.instances.iter().all(|i| i.status == Status::Error));

    tracing::info!("once allowed, it recovers");
    h.world.lock().unwrap().refuse_writes = None;
    h.world.lock().unwrap().pods = vec![pod("greeter-latest-a", true, None)];
    h.tick().await;
    assert_eq!(h.greeter().await.status(), Status::Running);
}
