//! The node side of the Kubernetes runtime: every [`SYNC_EVERY`], the Raft leader makes
//! Kubernetes run the uploaded services of the desired state and records what it reads
//! back; the node of each service's first instance (the one that builds it) copies its
//! pods' logs into its [`LogBook`](crate::runtime::LogBook), where `micro logs` reads.
//!
//! ```text
//! leader, per uploaded service:
//!   apply Namespace, Secret (, Deployment, Service once built) ─> read Deployment, pods
//!   ─> per instance Change::Instance{node_id: the instance's node, status, error, ...}
//!   (an API error: every instance Error with the error's text)
//! leader: delete managed Deployments/Services/Secrets no service wants (micro kill)
//! node of instance 0: pods' logs since the last read ─> LogBook
//! ```
//!
//! Instances keep the node they were placed on: it builds the service (instance 0) and
//! keeps its logs; status reports name that node so the state machine accepts them.

use std::collections::BTreeSet;
use std::sync::Arc;

use micro_core::Namespace;
use micro_core::runtime::{Change, Instance, RuntimeService, Source};
use micro_core::state::Command;
use tokio::task::JoinHandle;

use super::config::SYNC_EVERY;
use super::kube_runtime::{KubeRuntime, Owner};
use super::status::Observed;
use crate::runtime::RuntimeHandle;
use crate::runtime::logs::LogKey;

impl RuntimeHandle {
    /// Starts the Kubernetes loop; it ends when the returned task is aborted.
    pub(in crate::runtime) fn spawn_kube(&self, kube: Arc<KubeRuntime>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SYNC_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut logged = BTreeSet::new();
            loop {
                tick.tick().await;
                this.kube_tick(&kube, &mut logged).await;
            }
        })
    }

    /// One round: on the leader apply and read back; everywhere copy the logs of the
    /// services whose first instance is here. `logged` holds the services whose logs
    /// this node copied last round (their logs are forgotten once they are gone).
    pub(in crate::runtime) async fn kube_tick(
        &self,
        kube: &KubeRuntime,
        logged: &mut BTreeSet<LogKey>,
    ) {
        let Ok(all) = self.all() else { return };
        let uploads: Vec<(Namespace, RuntimeService)> = all
            .into_iter()
            .filter(|(_, s)| matches!(s.source, Source::Upload(_)))
            .collect();
        if self.inner.replicator.status().leader == Some(self.inner.node_id) {
            self.kube_lead(kube, &uploads).await;
        } else {
            kube.forget_applied();
        }
        self.kube_logs(kube, &uploads, logged).await;
    }

    /// The leader's part: every service applied and read back, then the leftovers of
    /// killed services deleted.
    async fn kube_lead(&self, kube: &KubeRuntime, uploads: &[(Namespace, RuntimeService)]) {
        let mut wanted: BTreeSet<Owner> = BTreeSet::new();
        for (namespace, service) in uploads {
            wanted.insert((
                namespace.to_string(),
                service.name.clone(),
                service.version.clone(),
            ));
            let observed = match kube.sync(namespace, service).await {
                Ok(observed) => observed,
                Err(why) => {
                    tracing::debug!(service = %service.name, %why, "kubernetes sync failed");
                    vec![Observed::failed(&why); service.instances.len()]
                }
            };
            for (index, (instance, seen)) in (0u32..).zip(service.instances.iter().zip(observed)) {
                self.record_observed(namespace, service, index, instance, seen)
                    .await;
            }
        }
        match kube.collect_garbage(&wanted).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "removed the objects of killed services"),
            Err(why) => {
                tracing::warn!(%why, "deleting the objects of killed services failed; retrying")
            }
        }
    }

    /// Records what instance `index` is in Kubernetes, unless the state already says so.
    async fn record_observed(
        &self,
        namespace: &Namespace,
        service: &RuntimeService,
        index: u32,
        instance: &Instance,
        seen: Observed,
    ) {
        let wanted = Instance {
            node_id: instance.node_id,
            status: seen.status,
            revision: seen.revision,
            error: seen.error,
            restarts: seen.restarts,
            address: None,
        };
        if *instance == wanted {
            return;
        }
        let command = Command::RuntimeChange {
            namespace: namespace.clone(),
            name: service.name.clone(),
            version: service.version.clone(),
            change: Change::Instance {
                index,
                node_id: wanted.node_id,
                status: wanted.status,
                revision: wanted.revision,
                error: wanted.error,
                restarts: wanted.restarts,
                address: None,
            },
        };
        if let Err(err) = self.inner.replicator.propose(command).await {
            tracing::debug!(%err, "recording a pod's status failed; retrying");
        }
    }

    /// Copies the pods' logs of the services whose first instance is on this node.
    async fn kube_logs(
        &self,
        kube: &KubeRuntime,
        uploads: &[(Namespace, RuntimeService)],
        logged: &mut BTreeSet<LogKey>,
    ) {
        let me = self.inner.node_id;
        let mut now_logged = BTreeSet::new();
        let mut polled = BTreeSet::new();
        for (namespace, service) in uploads {
            if service.instances.first().is_none_or(|i| i.node_id != me) {
                continue;
            }
            let key: LogKey = (
                namespace.clone(),
                service.name.clone(),
                service.version.clone(),
            );
            let names = kube.names(namespace, service);
            polled.insert((names.namespace, names.object));
            match kube.read_logs(namespace, service).await {
                Ok(records) => {
                    for record in records {
                        self.inner.logs.push(&key, record);
                    }
                }
                Err(why) => tracing::debug!(service = %service.name, %why, "pod logs unavailable"),
            }
            now_logged.insert(key);
        }
        kube.retain_logs(&polled);
        for gone in logged.difference(&now_logged) {
            self.inner.logs.forget(gone);
        }
        *logged = now_logged;
    }
}
