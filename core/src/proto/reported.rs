//! The device's reported state, retained on `…/reported`: what it runs, from which
//! document versions, and the last error and rejection. Complete on every publish,
//! so the operator's view converges whatever was lost in between.

use serde::{Deserialize, Serialize};

use super::document::Target;

/// The whole reported state of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedState {
    pub agent_version: String,
    /// Every fleet document the device holds, and how far it got.
    pub documents: Vec<DocumentState>,
    pub tasks: Vec<TaskReport>,
    /// Reports the outbox deleted undelivered (its bound), since the device began.
    pub reports_dropped: u64,
    pub last_error: Option<String>,
    pub last_rejection: Option<Rejection>,
    /// The device's public X25519 sealing key, for `skerry ctl secret put`. Appended
    /// last (session 5): an older agent's state is read by `proto::legacy`; an older
    /// `ctl` refuses this state's trailing bytes.
    pub sealing_key: Option<[u8; 32]>,
}

/// One stored document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentState {
    pub target: Target,
    pub version: u64,
    pub state: ApplyState,
}

/// How far a document got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyState {
    /// Stored; not all its tasks and services run as it says yet.
    Applying,
    /// Every task of it launched and every service at its revision and count, stable
    /// (its deployment completed: the tasks served for the stability window).
    Applied,
    /// A service of it was rolled back, or a task could not start.
    Failed { reason: String },
}

/// A document the device refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The topic's scope (`device gw1`, `group north`).
    pub topic: String,
    pub version: Option<u64>,
    pub code: String,
    pub reason: String,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskReport {
    pub id: String,
    pub service: Option<String>,
    /// Where its definition came from: `device gw1 v7`, `group north v3`, `local`.
    pub source: String,
    /// `family:revision` as events name it: `web:3 (c0532c72)`, or `web:c0532c72`
    /// without an ECS revision (content digest prefix, [`crate::spec::Revision`]).
    pub revision: String,
    /// ECS lastStatus: PENDING, RUNNING, STOPPING, STOPPED.
    pub status: String,
    pub health: Option<String>,
    pub stopped_reason: Option<String>,
    pub containers: Vec<ContainerReport>,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerReport {
    pub name: String,
    pub status: String,
    pub health: Option<String>,
    pub exit_code: Option<i32>,
    pub restarts: u32,
    /// `(containerPort, hostPort, protocol)`, as ECS's networkBindings.
    pub host_ports: Vec<(u16, u16, String)>,
    /// While its image is pulled: `(bytes on disk, bytes missing at the start)`.
    pub pulling: Option<(u64, u64)>,
}
