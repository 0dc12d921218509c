//! How a service's Deployment and pods read as Micro instance states (pure).
//!
//! Pods have no fixed identity, so instances are filled in order: first the ready pods
//! (running, at the revision their template carries), then the pods that fail (with
//! the container's reason: `CrashLoopBackOff`, `ImagePullBackOff`, ...), then those
//! still starting; instances no pod stands for yet are pending, or failed with the
//! Deployment's own failure (`ReplicaFailure`: a quota, an admission webhook).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use micro_core::runtime::Status;

use super::names;

/// Container waiting reasons that mean the pod will not come up by itself.
const FAILING: [&str; 7] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// What one instance is, as read from Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Observed {
    /// Its status.
    pub(super) status: Status,
    /// The revision its pod runs (0: no pod).
    pub(super) revision: u64,
    /// Why it fails.
    pub(super) error: Option<String>,
    /// Its pod's container restarts.
    pub(super) restarts: u32,
}

impl Observed {
    /// An instance failed for `why` (an API error, a failed rollout).
    pub(super) fn failed(why: &str) -> Self {
        Self {
            status: Status::Error,
            revision: 0,
            error: Some(why.to_owned()),
            restarts: 0,
        }
    }

    fn pending() -> Self {
        Self {
            status: Status::Pending,
            revision: 0,
            error: None,
            restarts: 0,
        }
    }
}

/// The states of `count` instances, given the Deployment (if any) and its pods.
pub(super) fn observe(
    count: usize,
    deployment: Option<&Deployment>,
    pods: &[Pod],
) -> Vec<Observed> {
    let mut seen: Vec<(u8, String, Observed)> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|pod| {
            let observed = pod_state(pod);
            let rank = match observed.status {
                Status::Running => 0,
                Status::Error => 1,
                _ => 2,
            };
            (
                rank,
                pod.metadata.name.clone().unwrap_or_default(),
                observed,
            )
        })
        .collect();
    seen.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let fallback = deployment
        .and_then(replica_failure)
        .map_or_else(Observed::pending, |why| Observed::failed(&why));
    let mut states: Vec<Observed> = seen.into_iter().map(|(_, _, o)| o).take(count).collect();
    states.resize(count, fallback);
    states
}

/// One pod as an instance state.
fn pod_state(pod: &Pod) -> Observed {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let revision = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(names::REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let status = pod.status.as_ref();
    let containers: &[ContainerStatus] = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let restarts = containers
        .iter()
        .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
        .sum();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let (status, error) = if ready {
        (Status::Running, None)
    } else if let Some(why) = containers.iter().find_map(failing) {
        (Status::Error, Some(format!("pod {name}: {why}")))
    } else if phase == "Failed" {
        let reason = status.and_then(|s| s.message.as_deref()).unwrap_or(phase);
        (Status::Error, Some(format!("pod {name}: {reason}")))
    } else {
        (Status::Starting, None)
    };
    Observed {
        status,
        revision,
        error,
        restarts,
    }
}

/// Why a container will not come up, with what it last said when it exited.
fn failing(container: &ContainerStatus) -> Option<String> {
    let waiting = container.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    if !FAILING.contains(&reason) {
        return None;
    }
    let mut why = reason.to_owned();
    if let Some(message) = waiting.message.as_deref().filter(|m| !m.is_empty()) {
        why = format!("{why}: {message}");
    }
    let last = container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    if let Some(exit) = last {
        why = format!("{why} (last exit code {}", exit.exit_code);
        if let Some(message) = exit.message.as_deref().filter(|m| !m.is_empty()) {
            why = format!("{why}: {}", message.trim());
        }
        why.push(')');
    }
    Some(why)
}

/// The Deployment's `ReplicaFailure` condition, if it holds.
fn replica_failure(deployment: &Deployment) -> Option<String> {
    let conditions = deployment.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        .map(|c| {
            let reason = c.reason.as_deref().unwrap_or("ReplicaFailure");
            let message = c.message.as_deref().unwrap_or_default();
            format!("deployment: {reason}: {message}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, status: &serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "micro.mu/revision": "2" } },
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn ready_pods_fill_instances_first_then_failures_then_pending() {
        let ready = pod(
            "b",
            &serde_json::json!({
                "phase": "Running",
                "conditions": [{ "type": "Ready", "status": "True" }],
                "containerStatuses": [{
                    "name": "service", "image": "i", "imageID": "", "ready": true,
                    "restartCount": 1,
                }],
            }),
        );
        let crashing = pod(
            "a",
            &serde_json::json!({
                "phase": "Running",
                "containerStatuses": [{
                    "name": "service", "image": "i", "imageID": "", "ready": false,
                    "restartCount": 4,
                    "state": { "waiting": { "reason": "CrashLoopBackOff",
                                            "message": "back-off 40s" } },
                    "lastState": { "terminated": { "exitCode": 1,
                                                   "message": "no MICRO_PROXY\n" } },
                }],
            }),
        );
        let states = observe(3, None, &[crashing, ready]);
        assert_eq!(states[0].status, Status::Running);
        assert_eq!((states[0].revision, states[0].restarts), (2, 1));
        assert_eq!(states[1].status, Status::Error);
        assert_eq!(
            states[1].error.as_deref(),
            Some("pod a: CrashLoopBackOff: back-off 40s (last exit code 1: no MICRO_PROXY)")
        );
        assert_eq!(states[2], Observed::pending());

        let quota: Deployment = serde_json::from_value(serde_json::json!({
            "status": { "conditions": [{
                "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                "message": "exceeded quota",
            }]},
        }))
        .unwrap();
        let states = observe(1, Some(&quota), &[]);
        assert_eq!(
            states[0].error.as_deref(),
            Some("deployment: FailedCreate: exceeded quota")
        );
    }
}
