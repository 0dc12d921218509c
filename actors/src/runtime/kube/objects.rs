//! The Kubernetes objects of one Micro service, as server-side-apply documents (pure:
//! no I/O, so tests can look at exactly what is sent).
//!
//! ```text
//! Namespace  <prefix><ns>                    labels managed-by
//! Secret     <name>-<version>-auth           MICRO_AUTH_ID, MICRO_AUTH_SECRET (+ CA)
//! Deployment <name>-<version>  replicas = instances
//!   pod: micro cell --build build://<name>:<version>#<revision>
//!        env: the Secret, MICRO_PROXY, MICRO_NAMESPACE, MICRO_SERVICE_*,
//!             MICRO_SERVICE_ADDRESS=$(POD_IP):8080
//! Service    <name>-<version>  port 8080 (grpc) to the pods
//! ```

use std::collections::BTreeMap;

use base64::Engine as _;
use micro_core::runtime::RuntimeService;
use serde_json::{Value, json};

use super::config::{CELL_COMMAND, CONTAINER, KubeConfig, SERVICE_PORT};
use super::names;

/// Who a service is, in Kubernetes terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Names {
    /// Its Kubernetes namespace.
    pub(super) namespace: String,
    /// Its Deployment's and Service's name.
    pub(super) object: String,
    /// Its Secret's name.
    pub(super) secret: String,
    /// The labels that select its pods.
    pub(super) selector: BTreeMap<String, String>,
    /// The annotations naming it exactly (namespace, name, version).
    pub(super) annotations: BTreeMap<String, String>,
}

impl Names {
    /// The names of `service` of Micro namespace `namespace`.
    pub(super) fn of(prefix: &str, namespace: &str, service: &RuntimeService) -> Self {
        let object = names::object(&service.name, &service.version);
        let selector = BTreeMap::from([
            (names::MICRO.0.to_owned(), names::MICRO.1.to_owned()),
            (names::NAME.to_owned(), names::label_value(&service.name)),
            (
                names::VERSION.to_owned(),
                names::label_value(&service.version),
            ),
        ]);
        let annotations = BTreeMap::from([
            (names::ANNOTATION_NAMESPACE.to_owned(), namespace.to_owned()),
            (names::ANNOTATION_NAME.to_owned(), service.name.clone()),
            (
                names::ANNOTATION_VERSION.to_owned(),
                service.version.clone(),
            ),
        ]);
        Self {
            namespace: names::namespace(prefix, namespace),
            secret: names::secret(&object),
            object,
            selector,
            annotations,
        }
    }

    /// The label selector of its pods (`micro=service,name=...,version=...`).
    pub(super) fn pod_selector(&self) -> String {
        let pairs: Vec<String> = self
            .selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join(",")
    }

    /// The labels of every object: the selector and managed-by.
    fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector.clone();
        labels.insert(
            names::MANAGED_BY.0.to_owned(),
            names::MANAGED_BY.1.to_owned(),
        );
        labels
    }

    fn metadata(&self, name: &str) -> Value {
        json!({
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(),
            "annotations": self.annotations,
        })
    }
}

/// The label selector of everything the runtime made.
pub(super) fn managed_selector() -> String {
    format!("{}={}", names::MANAGED_BY.0, names::MANAGED_BY.1)
}

/// The Namespace of Micro namespace `micro_namespace`.
pub(super) fn namespace(names: &Names, micro_namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": names.namespace,
            "labels": { names::MANAGED_BY.0: names::MANAGED_BY.1 },
            "annotations": { names::ANNOTATION_NAMESPACE: micro_namespace },
        },
    })
}

/// The Secret the pods take their credentials (and the proxy's CA) from.
pub(super) fn secret(names: &Names, service: &RuntimeService, config: &KubeConfig) -> Value {
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let mut data = BTreeMap::new();
    if let Some(credentials) = &service.credentials {
        data.insert("MICRO_AUTH_ID", encode(&credentials.id));
        data.insert("MICRO_AUTH_SECRET", encode(&credentials.secret));
    }
    if let Some(ca) = &config.proxy_ca {
        data.insert("MICRO_PROXY_CA_PEM", encode(ca));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": names.metadata(&names.secret),
        "type": "Opaque",
        "data": data,
    })
}

/// The Deployment running `service` at its current revision from executable `blob`.
pub(super) fn deployment(
    names: &Names,
    namespace: &str,
    service: &RuntimeService,
    blob: &str,
    config: &KubeConfig,
) -> Value {
    let mut pod_labels = names.selector.clone();
    pod_labels.insert(names::REVISION.to_owned(), service.revision.to_string());
    let mut command: Vec<&str> = CELL_COMMAND.to_vec();
    command.extend(["--build", blob]);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": names.metadata(&names.object),
        "spec": {
            "replicas": service.instances.len(),
            "selector": { "matchLabels": names.selector },
            "template": {
                "metadata": { "labels": pod_labels, "annotations": names.annotations },
                "spec": {
                    "containers": [{
                        "name": CONTAINER,
                        "image": config.image,
                        "command": command,
                        "env": env(namespace, service, config),
                        "envFrom": [{ "secretRef": { "name": names.secret } }],
                        "ports": [{ "name": "grpc", "containerPort": SERVICE_PORT }],
                        // `micro cell` writes the executable here: the image's root
                        // file system may be read-only.
                        "volumeMounts": [{ "name": "cell", "mountPath": "/tmp" }],
                    }],
                    "volumes": [{ "name": "cell", "emptyDir": {} }],
                },
            },
        },
    })
}

/// The environment of a service's container besides its Secret.
fn env(namespace: &str, service: &RuntimeService, config: &KubeConfig) -> Vec<Value> {
    let plain = |name: &str, value: &str| json!({ "name": name, "value": value });
    vec![
        plain("MICRO_PROXY", &config.proxy),
        plain("MICRO_NAMESPACE", namespace),
        plain("MICRO_SERVICE_NAME", &service.name),
        plain("MICRO_SERVICE_VERSION", &service.version),
        // The service registers the address it listens on: the pod's own IP, which the
        // nodes' proxies can dial (0.0.0.0 would be registered as is).
        json!({
            "name": "POD_IP",
            "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } },
        }),
        plain(
            "MICRO_SERVICE_ADDRESS",
            &format!("$(POD_IP):{SERVICE_PORT}"),
        ),
        // Logs are read as plain text, as the local runtime's are.
        plain("NO_COLOR", "1"),
        plain("RUST_LOG", "info"),
    ]
}

/// The Service in front of the pods (Micro routes to pods through its registry; the
/// Service lets Kubernetes-native clients reach them too, as in Micro v3).
pub(super) fn service(names: &Names) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.metadata(&names.object),
        "spec": {
            "selector": names.selector,
            "ports": [{
                "name": "grpc",
                "port": SERVICE_PORT,
                "targetPort": SERVICE_PORT,
                "protocol": "TCP",
            }],
        },
    })
}
