//! [`KubeRuntime`]: the Kubernetes API calls of the runtime: apply a service's objects,
//! read them back, delete what no service wants any more, read pods' logs.
//!
//! Objects are written with server-side apply (field manager `micro-node`, forced), so
//! applying is idempotent and needs no read first. What was applied is remembered (the
//! exact document) for [`RESYNC_EVERY`], so an unchanged service costs two reads per
//! sync (its Deployment and its pods), not four writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Mutex;

use ::kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use ::kube::{Client, Resource, ResourceExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace as KubeNamespace, Pod, Secret, Service};
use micro_core::Namespace;
use micro_core::runtime::RuntimeService;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::config::{CONTAINER, KubeConfig, RESYNC_EVERY};
use super::names;
use super::objects::{self, Names};
use super::status::{self, Observed};
use crate::runtime::logs::LogRecord;

/// The field manager of every apply.
const FIELD_MANAGER: &str = "micro-node";
/// How many lines of a pod's log are read the first time (older ones are skipped).
const LOG_TAIL_FIRST: i64 = 200;
/// The most bytes of one pod's log read per sync.
const LOG_BYTES_MAX: i64 = 1024 * 1024;
/// The most pods of one service whose logs are read.
const LOG_PODS_MAX: usize = 64;

/// Which Micro service an object belongs to: namespace, name, version.
pub(super) type Owner = (String, String, String);

/// The Kubernetes side of the runtime: a client and what it last applied.
pub struct KubeRuntime {
    client: Client,
    config: KubeConfig,
    /// Per object ([`object_key`]), the document last applied and when.
    applied: Mutex<BTreeMap<String, (String, Instant)>>,
    /// Per service object (namespace, object), per pod, the time of the last log line
    /// read.
    log_cursors: Mutex<BTreeMap<(String, String), BTreeMap<String, jiff::Timestamp>>>,
}

impl Debug for KubeRuntime {
    // kube's Client is not Debug; its settings say what matters.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A failed call, said plainly: `kubernetes: apply Deployment micro-a/b: 403 Forbidden:
/// ...`.
pub(super) fn describe(what: &str, err: &::kube::Error) -> String {
    match err {
        ::kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                "error"
            } else {
                &status.reason
            };
            format!(
                "kubernetes: {what}: {} {reason}: {}",
                status.code, status.message
            )
        }
        other => format!("kubernetes: {what}: {other}"),
    }
}

fn is_not_found(err: &::kube::Error) -> bool {
    matches!(err, ::kube::Error::Api(status) if status.code == 404)
}

impl KubeRuntime {
    /// A runtime over `client` (tests point it at a fake API server).
    pub fn new(client: Client, config: KubeConfig) -> Self {
        Self {
            client,
            config,
            applied: Mutex::new(BTreeMap::new()),
            log_cursors: Mutex::new(BTreeMap::new()),
        }
    }

    /// A runtime with kube's standard configuration: in a pod its ServiceAccount,
    /// else `KUBECONFIG` (or `~/.kube/config`).
    pub async fn infer(config: KubeConfig) -> Result<Self, String> {
        let client = Client::try_default().await.map_err(|e| {
            format!("kubernetes: no usable configuration (in-cluster or KUBECONFIG): {e}")
        })?;
        Ok(Self::new(client, config))
    }

    /// The settings.
    pub fn config(&self) -> &KubeConfig {
        &self.config
    }

    /// The names of `service` of `namespace`.
    pub(super) fn names(&self, namespace: &Namespace, service: &RuntimeService) -> Names {
        Names::of(&self.config.namespace_prefix, namespace.as_str(), service)
    }

    /// Applies the objects of `service` (its Deployment only once it is built: until
    /// then a previous revision keeps running) and reads back how its instances are.
    pub(super) async fn sync(
        &self,
        namespace: &Namespace,
        service: &RuntimeService,
    ) -> Result<Vec<Observed>, String> {
        let names = self.names(namespace, service);
        let all_namespaces: Api<KubeNamespace> = Api::all(self.client.clone());
        let document = objects::namespace(&names, namespace.as_str());
        self.apply(&all_namespaces, &names.namespace, document)
            .await?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &names.namespace);
        let document = objects::secret(&names, service, &self.config);
        self.apply(&secrets, &names.secret, document).await?;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &names.namespace);
        if let Some(blob) = service.executable() {
            let document =
                objects::deployment(&names, namespace.as_str(), service, blob, &self.config);
            self.apply(&deployments, &names.object, document).await?;
            let services: Api<Service> = Api::namespaced(self.client.clone(), &names.namespace);
            self.apply(&services, &names.object, objects::service(&names))
                .await?;
        }
        let what = format!("read Deployment {}/{}", names.namespace, names.object);
        let deployment = deployments
            .get_opt(&names.object)
            .await
            .map_err(|e| describe(&what, &e))?;
        let pods = self.pods(&names).await?;
        Ok(status::observe(
            service.instances.len(),
            deployment.as_ref(),
            &pods,
        ))
    }

    /// The pods of the service `names` names.
    async fn pods(&self, names: &Names) -> Result<Vec<Pod>, String> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &names.namespace);
        let params = ListParams::default().labels(&names.pod_selector());
        let what = format!("list pods {}/{}", names.namespace, names.pod_selector());
        Ok(api
            .list(&params)
            .await
            .map_err(|e| describe(&what, &e))?
            .items)
    }

    /// Server-side applies `document` as object `name` of `api`, unless the same
    /// document was applied within [`RESYNC_EVERY`].
    async fn apply<K>(&self, api: &Api<K>, name: &str, document: Value) -> Result<(), String>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let key = object_key(
            &K::kind(&()),
            document["metadata"]["namespace"].as_str(),
            name,
        );
        let text = document.to_string();
        let fresh = lock(&self.applied)
            .get(&key)
            .is_some_and(|(applied, at)| *applied == text && at.elapsed() < RESYNC_EVERY);
        if fresh {
            return Ok(());
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(name, &params, &Patch::Apply(&document))
            .await
            .map_err(|e| describe(&format!("apply {key}"), &e))?;
        lock(&self.applied).insert(key, (text, Instant::now()));
        Ok(())
    }

    /// Forgets what was applied (this node stopped leading: another may change things).
    pub(super) fn forget_applied(&self) {
        lock(&self.applied).clear();
    }

    /// Deletes the Deployments, Services and Secrets this runtime made (under its
    /// namespace prefix) whose service is not in `wanted`; how many.
    pub(super) async fn collect_garbage(&self, wanted: &BTreeSet<Owner>) -> Result<usize, String> {
        let mut deleted = self.collect::<Deployment>(wanted).await?;
        deleted += self.collect::<Service>(wanted).await?;
        deleted += self.collect::<Secret>(wanted).await?;
        Ok(deleted)
    }

    async fn collect<K>(&self, wanted: &BTreeSet<Owner>) -> Result<usize, String>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let kind = K::kind(&());
        let all: Api<K> = Api::all(self.client.clone());
        let params = ListParams::default().labels(&objects::managed_selector());
        let listed = all
            .list(&params)
            .await
            .map_err(|e| describe(&format!("list {kind}s"), &e))?;
        let mut deleted = 0;
        for object in listed.items {
            let namespace = object.namespace().unwrap_or_default();
            if !namespace.starts_with(&self.config.namespace_prefix) {
                continue;
            }
            let annotation = |key: &str| object.annotations().get(key).cloned().unwrap_or_default();
            let owner = (
                annotation(names::ANNOTATION_NAMESPACE),
                annotation(names::ANNOTATION_NAME),
                annotation(names::ANNOTATION_VERSION),
            );
            if wanted.contains(&owner) {
                continue;
            }
            let name = object.name_any();
            let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    let key = object_key(&kind, Some(&namespace), &name);
                    return Err(describe(&format!("delete {key}"), &e));
                }
            }
            lock(&self.applied).remove(&object_key(&kind, Some(&namespace), &name));
            tracing::info!(%kind, %namespace, %name, service = %owner.1, "deleted");
            deleted += 1;
        }
        Ok(deleted)
    }

    /// The log lines of `service`'s pods since the last call (the last
    /// [`LOG_TAIL_FIRST`] of a pod seen for the first time), oldest first per pod.
    pub(super) async fn read_logs(
        &self,
        namespace: &Namespace,
        service: &RuntimeService,
    ) -> Result<Vec<LogRecord>, String> {
        let names = self.names(namespace, service);
        let pods = self.pods(&names).await?;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &names.namespace);
        let key = (names.namespace.clone(), names.object.clone());
        let mut cursors = lock(&self.log_cursors).remove(&key).unwrap_or_default();
        let mut kept = BTreeMap::new();
        let mut records = Vec::new();
        for pod in pods.iter().take(LOG_PODS_MAX) {
            let name = pod.name_any();
            let cursor = cursors.remove(&name);
            let params = LogParams {
                container: Some(CONTAINER.to_owned()),
                timestamps: true,
                since_time: cursor,
                tail_lines: cursor.is_none().then_some(LOG_TAIL_FIRST),
                limit_bytes: Some(LOG_BYTES_MAX),
                ..LogParams::default()
            };
            let text = match api.logs(&name, &params).await {
                Ok(text) => text,
                // A container that has not started has no log yet: not a failure.
                Err(::kube::Error::Api(status)) if status.code == 400 => String::new(),
                Err(e) => {
                    lock(&self.log_cursors).insert(key.clone(), kept);
                    return Err(describe(&format!("read the log of pod {name}"), &e));
                }
            };
            let (lines, last) = parse_log(&text, cursor);
            records.extend(lines.into_iter().map(|r| r.with("pod", name.clone())));
            if let Some(last) = last.or(cursor) {
                kept.insert(name, last);
            }
        }
        lock(&self.log_cursors).insert(key, kept);
        Ok(records)
    }

    /// Forgets the log positions of services not in `polled` (namespace, object).
    pub(super) fn retain_logs(&self, polled: &BTreeSet<(String, String)>) {
        lock(&self.log_cursors).retain(|key, _| polled.contains(key));
    }
}

/// How an object is named in messages and in the cache: `Deployment micro-a/greeter`,
/// `Namespace micro-a`.
fn object_key(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace.filter(|n| !n.is_empty()) {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// The records of a log read with `timestamps=true`, skipping lines at or before
/// `after` (`sinceTime` has whole seconds: the last second comes again), and the time
/// of the last line.
fn parse_log(
    text: &str,
    after: Option<jiff::Timestamp>,
) -> (Vec<LogRecord>, Option<jiff::Timestamp>) {
    let mut records = Vec::new();
    let mut last = None;
    for line in text.lines() {
        let Some((stamp, message)) = line.split_once(' ') else {
            continue;
        };
        let Ok(at) = stamp.parse::<jiff::Timestamp>() else {
            continue;
        };
        if after.is_some_and(|after| at <= after) {
            continue;
        }
        last = Some(at);
        records.push(LogRecord::new(at.as_second(), "pod", message));
    }
    (records, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_after_the_cursor_are_kept_with_their_time() {
        let text = "2026-01-02T03:04:05.000000001Z first\n\
                    2026-01-02T03:04:06.5Z second line\n\
                    not a log line\n";
        let (records, last) = parse_log(text, None);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].message, "second line");
        assert_eq!(records[0].timestamp, 1_767_323_045);
        let cursor = last.unwrap();
        let (again, still) = parse_log(text, Some(cursor));
        assert!(again.is_empty());
        assert_eq!(still, None);
    }
}
