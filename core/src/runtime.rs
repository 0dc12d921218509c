//! The runtime's replicated desired state: which services should run, on which nodes,
//! built from what, and how each instance is doing.
//!
//! ```text
//! micro run ./greeter ─> Source.Upload (blob source://greeter:latest)
//!   ─> RuntimeUpsert{source: Upload, revision 1, build Pending, instances placed}
//! node of instance 0: BuildClaim ─> cargo build ─> blob build://greeter:latest#1
//!   ─> BuildDone{Ok(blob)} (or Err(compiler output): status error)
//! each node: its instances at the current revision with the build ready
//!   ─> download the binary, start the process ─> Instance{running}
//! leader: an instance on a node that stopped answering ─> Place{to: a live node}
//! micro update ─> Revise{revision + 1} ─> rebuild ─> each node starts the new process
//!   before it stops the old one (a rolling restart with no gap)
//! ```
//!
//! Every change after creation is a [`Change`] applied by [`RuntimeService::apply`]
//! inside the state machine, conditional on what the proposer saw, so two nodes
//! reporting on their own instances never overwrite each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a service comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A service compiled into the node binary, started in-node by name.
    Builtin(String),
    /// A crate uploaded with `runtime.Source/Upload`: the blob key of its tarball
    /// (`source://name:version`) in the service's namespace.
    Upload(String),
}

impl Source {
    /// How the source is shown (`helloworld`, `source://greeter:latest`).
    pub fn display(&self) -> &str {
        match self {
            Self::Builtin(name) => name,
            Self::Upload(blob) => blob,
        }
    }
}

/// The lifecycle status of a runtime service (v3's numeric enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Status {
    /// Unknown.
    #[default]
    Unknown,
    /// Accepted, not started yet.
    Pending,
    /// Being built.
    Building,
    /// Starting.
    Starting,
    /// Serving.
    Running,
    /// Being stopped.
    Stopping,
    /// Stopped.
    Stopped,
    /// Failed; metadata `error` says why.
    Error,
}

impl Status {
    /// The wire number (v3's `status` int32).
    pub fn number(self) -> i32 {
        match self {
            Self::Unknown => 0,
            Self::Pending => 1,
            Self::Building => 2,
            Self::Starting => 3,
            Self::Running => 4,
            Self::Stopping => 5,
            Self::Stopped => 6,
            Self::Error => 7,
        }
    }

    /// From the wire number (unknown numbers are `Unknown`).
    pub fn from_number(n: i32) -> Self {
        match n {
            1 => Self::Pending,
            2 => Self::Building,
            3 => Self::Starting,
            4 => Self::Running,
            5 => Self::Stopping,
            6 => Self::Stopped,
            7 => Self::Error,
            _ => Self::Unknown,
        }
    }

    /// The lower-case name (`running`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Pending => "pending",
            Self::Building => "building",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Error => "error",
        }
    }
}

/// One instance of a service: which node runs it and how it is doing there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The Raft node id assigned to run it.
    pub node_id: u64,
    /// As last reported by that node.
    pub status: Status,
    /// The service revision the instance runs (0: none yet).
    pub revision: u64,
    /// Why it failed, when `status` is `Error` (or why it last exited).
    pub error: Option<String>,
    /// How often its process was restarted after exiting.
    pub restarts: u32,
    /// The address its process listens on (process services), so whoever finds it dead
    /// can remove what it registered.
    #[serde(default)]
    pub address: Option<String>,
}

impl Instance {
    /// A new instance on `node_id`, not started.
    pub fn pending(node_id: u64) -> Self {
        Self {
            node_id,
            status: Status::Pending,
            revision: 0,
            error: None,
            restarts: 0,
            address: None,
        }
    }
}

/// Where the build of one revision stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Build {
    /// Waiting for a node to take it.
    Pending,
    /// Node `node_id` is building it.
    Building {
        /// The builder.
        node_id: u64,
    },
    /// Built: the executable is blob `blob` of the service's namespace.
    Ready {
        /// The blob key (`build://name:version#revision`).
        blob: String,
    },
    /// The build failed; the compiler's message.
    Failed {
        /// What cargo said.
        error: String,
    },
}

/// The credentials the runtime made for a process service and injects as
/// `MICRO_AUTH_ID` / `MICRO_AUTH_SECRET`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The account id (`<name>-<version>`).
    pub id: String,
    /// Its secret.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// One desired service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeService {
    /// Name.
    pub name: String,
    /// Version (`latest` by default).
    pub version: String,
    /// What to run.
    pub source: Source,
    /// Bumped by every update: a new build, then a rolling restart onto it.
    pub revision: u64,
    /// The build of `revision` (always `Ready`-less for builtins: `None`).
    pub build: Option<Build>,
    /// The instances, each placed on a node.
    pub instances: Vec<Instance>,
    /// The service account of a process service.
    pub credentials: Option<Credentials>,
    /// Metadata (`owner`, `source_dir`, ...).
    pub metadata: BTreeMap<String, String>,
    /// Log time of the last change (Unix ms).
    pub updated_ms: u64,
}

/// A change to an existing service, applied only while its condition holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// A node reports on its instance `index` (ignored unless it is still assigned there).
    Instance {
        /// Which instance.
        index: u32,
        /// The reporting node.
        node_id: u64,
        /// Its status.
        status: Status,
        /// The revision it runs.
        revision: u64,
        /// Why it failed or last exited.
        error: Option<String>,
        /// Restarts so far.
        restarts: u32,
        /// Where its process listens.
        address: Option<String>,
    },
    /// Moves instance `index` from node `from` (which stopped answering) to `to`.
    Place {
        /// Which instance.
        index: u32,
        /// Where it was.
        from: u64,
        /// Where it goes.
        to: u64,
    },
    /// Node `node_id` takes the pending build of `revision`.
    BuildClaim {
        /// The revision built.
        revision: u64,
        /// The builder.
        node_id: u64,
    },
    /// The builder's outcome: the executable's blob, or the compiler's error.
    BuildDone {
        /// The revision built.
        revision: u64,
        /// The builder.
        node_id: u64,
        /// `Ok(blob key)` or `Err(message)`.
        outcome: Result<String, String>,
    },
    /// The builder of `revision` stopped answering: the build is pending again.
    BuildReset {
        /// The revision.
        revision: u64,
        /// The builder that died.
        node_id: u64,
    },
    /// A new revision: a new source (re-uploaded), built again, then rolled out; with
    /// `instances`, the instance count changes too (new ones on `place`).
    Revise {
        /// The revision the proposer saw; refused if it moved on.
        revision: u64,
        /// The new instance count and where the added ones go.
        place: Vec<u64>,
    },
}

impl RuntimeService {
    /// The service's status as users see it: its build's, else its instances'.
    pub fn status(&self) -> Status {
        match &self.build {
            Some(Build::Pending) => return Status::Pending,
            Some(Build::Building { .. }) => return Status::Building,
            Some(Build::Failed { .. }) => return Status::Error,
            Some(Build::Ready { .. }) | None => {}
        }
        let count = |s: Status| self.instances.iter().filter(|i| i.status == s).count();
        if self.instances.is_empty() {
            Status::Stopped
        } else if count(Status::Running) > 0 {
            Status::Running
        } else if count(Status::Error) == self.instances.len() {
            Status::Error
        } else if count(Status::Starting) > 0 {
            Status::Starting
        } else {
            Status::Pending
        }
    }

    /// The error to show: the build's, else the first failed instance's.
    pub fn error(&self) -> Option<&str> {
        if let Some(Build::Failed { error }) = &self.build {
            return Some(error);
        }
        self.instances
            .iter()
            .filter(|i| i.status != Status::Running)
            .find_map(|i| i.error.as_deref())
    }

    /// The blob of the current revision's executable, once built.
    pub fn executable(&self) -> Option<&str> {
        match &self.build {
            Some(Build::Ready { blob }) => Some(blob),
            _ => None,
        }
    }

    /// Applies `change` if its condition holds; `Err` says why it did not.
    pub fn apply(&mut self, change: &Change) -> Result<(), String> {
        match change {
            Change::Instance {
                index,
                node_id,
                status,
                revision,
                error,
                restarts,
                address,
            } => {
                let instance = self.instance_on(*index, *node_id)?;
                instance.status = *status;
                instance.revision = *revision;
                instance.error.clone_from(error);
                instance.restarts = *restarts;
                instance.address.clone_from(address);
            }
            Change::Place { index, from, to } => {
                let instance = self.instance_on(*index, *from)?;
                *instance = Instance::pending(*to);
            }
            Change::BuildClaim { revision, node_id } => {
                self.revision_is(*revision)?;
                if self.build != Some(Build::Pending) {
                    return Err("the build is not pending".to_owned());
                }
                self.build = Some(Build::Building { node_id: *node_id });
            }
            Change::BuildDone {
                revision,
                node_id,
                outcome,
            } => {
                self.builder_is(*revision, *node_id)?;
                self.build = Some(match outcome {
                    Ok(blob) => Build::Ready { blob: blob.clone() },
                    Err(error) => Build::Failed {
                        error: error.clone(),
                    },
                });
            }
            Change::BuildReset { revision, node_id } => {
                self.builder_is(*revision, *node_id)?;
                self.build = Some(Build::Pending);
            }
            Change::Revise { revision, place } => {
                self.revision_is(*revision)?;
                self.revision += 1;
                if self.build.is_some() {
                    self.build = Some(Build::Pending);
                }
                if !place.is_empty() {
                    let keep = place.len().min(self.instances.len());
                    self.instances.truncate(keep);
                    for node in place.iter().skip(keep) {
                        self.instances.push(Instance::pending(*node));
                    }
                }
            }
        }
        Ok(())
    }

    fn instance_on(&mut self, index: u32, node_id: u64) -> Result<&mut Instance, String> {
        let at = usize::try_from(index).unwrap_or(usize::MAX);
        match self.instances.get_mut(at) {
            Some(instance) if instance.node_id == node_id => Ok(instance),
            Some(instance) => Err(format!(
                "instance {index} moved to node {}",
                instance.node_id
            )),
            None => Err(format!("no instance {index}")),
        }
    }

    fn revision_is(&self, revision: u64) -> Result<(), String> {
        if self.revision == revision {
            Ok(())
        } else {
            Err(format!(
                "revision {revision} was replaced by {}",
                self.revision
            ))
        }
    }

    fn builder_is(&self, revision: u64, node_id: u64) -> Result<(), String> {
        self.revision_is(revision)?;
        match self.build {
            Some(Build::Building { node_id: n }) if n == node_id => Ok(()),
            _ => Err(format!(
                "node {node_id} is not building revision {revision}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(instances: &[u64]) -> RuntimeService {
        RuntimeService {
            name: "greeter".into(),
            version: "latest".into(),
            source: Source::Upload("source://greeter:latest".into()),
            revision: 1,
            build: Some(Build::Pending),
            instances: instances.iter().map(|n| Instance::pending(*n)).collect(),
            credentials: None,
            metadata: BTreeMap::new(),
            updated_ms: 0,
        }
    }

    fn report(index: u32, node_id: u64, status: Status) -> Change {
        Change::Instance {
            index,
            node_id,
            status,
            revision: 1,
            error: None,
            restarts: 0,
            address: None,
        }
    }

    #[test]
    fn a_build_is_claimed_once_and_finished_only_by_its_builder() {
        let mut s = service(&[1, 2]);
        assert_eq!(s.status(), Status::Pending);
        s.apply(&Change::BuildClaim {
            revision: 1,
            node_id: 1,
        })
        .unwrap();
        assert_eq!(s.status(), Status::Building);
        assert!(
            s.apply(&Change::BuildClaim {
                revision: 1,
                node_id: 2
            })
            .is_err()
        );
        let done = |node_id| Change::BuildDone {
            revision: 1,
            node_id,
            outcome: Ok("build://greeter:latest#1".into()),
        };
        assert!(s.apply(&done(2)).is_err());
        s.apply(&done(1)).unwrap();
        assert_eq!(s.executable(), Some("build://greeter:latest#1"));
        assert_eq!(s.status(), Status::Pending, "built, no instance up yet");
        s.apply(&report(1, 2, Status::Running)).unwrap();
        assert_eq!(s.status(), Status::Running);
    }

    #[test]
    fn a_failed_build_is_the_service_error() {
        let mut s = service(&[1]);
        s.apply(&Change::BuildClaim {
            revision: 1,
            node_id: 1,
        })
        .unwrap();
        let failed = Change::BuildDone {
            revision: 1,
            node_id: 1,
            outcome: Err("error[E0425]: cannot find value `x`".into()),
        };
        s.apply(&failed).unwrap();
        assert_eq!(s.status(), Status::Error);
        assert!(s.error().unwrap().contains("E0425"));
    }

    #[test]
    fn reports_from_a_node_the_instance_left_are_ignored() {
        let mut s = service(&[1, 2]);
        s.apply(&Change::Place {
            index: 0,
            from: 1,
            to: 3,
        })
        .unwrap();
        assert!(s.apply(&report(0, 1, Status::Running)).is_err());
        assert!(
            s.apply(&Change::Place {
                index: 0,
                from: 1,
                to: 2
            })
            .is_err()
        );
        s.apply(&report(0, 3, Status::Running)).unwrap();
        assert_eq!(s.instances[0].node_id, 3);
        assert!(s.apply(&report(7, 3, Status::Running)).is_err());
    }

    #[test]
    fn a_revision_rebuilds_and_resizes() {
        let mut s = service(&[1]);
        s.apply(&Change::Revise {
            revision: 1,
            place: vec![1, 2, 3],
        })
        .unwrap();
        assert_eq!(s.revision, 2);
        assert_eq!(s.build, Some(Build::Pending));
        let nodes: Vec<u64> = s.instances.iter().map(|i| i.node_id).collect();
        assert_eq!(nodes, [1, 2, 3]);
        assert!(
            s.apply(&Change::Revise {
                revision: 1,
                place: vec![]
            })
            .is_err()
        );
        s.apply(&Change::Revise {
            revision: 2,
            place: vec![1],
        })
        .unwrap();
        assert_eq!(s.instances.len(), 1);
        s.apply(&Change::BuildClaim {
            revision: 3,
            node_id: 1,
        })
        .unwrap();
        assert!(
            s.apply(&Change::BuildReset {
                revision: 3,
                node_id: 2
            })
            .is_err()
        );
        s.apply(&Change::BuildReset {
            revision: 3,
            node_id: 1,
        })
        .unwrap();
        assert_eq!(s.build, Some(Build::Pending));
    }
}
