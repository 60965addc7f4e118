//! Observed state: one record per task, one per container, as the executor reported
//! it and as the reconciler's decisions left it (issued operations, stop requests).
//! Plain data, serde-able: the store persists these records as the task records.
//!
//! State transitions allowed by the reconciler are the `can_*` predicates on
//! [`ContainerRecord`]; observations from the executor are facts and always apply.

use std::collections::BTreeMap;

use embassy_time::Instant;
use serde::{Deserialize, Serialize};

use super::model::TaskId;
use super::time::{instant, opt_instant};
use crate::spec::{ContainerDefinition, HealthCommand, TaskDefinition};

/// All task records, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Task records.
    pub tasks: BTreeMap<TaskId, TaskRecord>,
}

/// Who launched a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Owner {
    /// A standalone task of [`super::Desired::tasks`].
    Standalone,
    /// A task of the service with this name.
    Service(String),
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskPhase {
    /// Meant to run: containers are being pulled, created, started, kept.
    Active,
    /// Meant to stop: containers are stopped, dependents first.
    Stopping,
    /// Every container is down; the task's resources await `DeleteTask`.
    Stopped,
    /// Resources deleted. A standalone task's record stays while it is desired, so
    /// it is not run again.
    Deleted,
}

/// One task, launched from `definition` (a task never changes definition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Standalone or which service.
    pub owner: Owner,
    /// The definition it was launched with.
    pub definition: TaskDefinition,
    /// One record per container, in the definition's order.
    pub containers: Vec<ContainerRecord>,
    /// Where it is in its life.
    pub phase: TaskPhase,
    /// When the reconciler launched it.
    #[serde(with = "instant")]
    pub launched_at: Instant,
    /// ECS `stoppedReason`, once it is stopping.
    pub stopped_reason: Option<String>,
    /// Whether it stopped because something failed (counts for backoff and the
    /// circuit breaker) rather than because it was no longer wanted.
    pub failed: bool,
    /// Since when it serves (all essential containers running, and healthy where
    /// checked), if it does.
    #[serde(with = "opt_instant")]
    pub serving_since: Option<Instant>,
    /// It served for `backoff_reset` in a row: its service's failures were forgiven.
    pub proven: bool,
    /// An issued `DeleteTask` not answered yet.
    pub op: Option<PendingOp>,
    /// No retry of a failed delete before this.
    #[serde(with = "opt_instant")]
    pub not_before: Option<Instant>,
}

/// A container's runtime state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Not created yet.
    Pending,
    /// Created, not started.
    Created,
    /// Its process runs.
    Running {
        /// The init process, as seen from the agent.
        pid: u32,
        /// When this run started.
        #[serde(with = "instant")]
        started_at: Instant,
    },
    /// Its process ended.
    Exited {
        /// Exit code (128 + signal when killed by one).
        code: i32,
        /// Why.
        reason: ExitReason,
        /// When.
        #[serde(with = "instant")]
        finished_at: Instant,
    },
}

/// Why a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitReason {
    /// It exited by itself.
    Exited,
    /// The cgroup's OOM killer ended it.
    OutOfMemory,
    /// A signal ended it (a stop, or someone else).
    Killed,
    /// The runtime failed around it.
    Error,
    /// Nobody saw it end: the host lost power or restarted, or its monitor was killed.
    Lost,
}

/// Health status (ECS `healthStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthStatus {
    /// No result counted yet (or no health check).
    Unknown,
    /// The last counted result passed.
    Healthy,
    /// `retries` consecutive counted failures.
    Unhealthy,
}

/// How one health check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckOutcome {
    /// Exit code 0.
    Pass,
    /// Non-zero exit, or the check could not run.
    Fail,
    /// It ran past its `timeout`.
    Timeout,
}

/// One health-check result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// How it ended.
    pub outcome: CheckOutcome,
    /// When the answer came.
    #[serde(with = "instant")]
    pub at: Instant,
}

/// A container's health-check bookkeeping (ECS rules, see [`super::health`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// Current status.
    pub status: HealthStatus,
    /// Counted failures in a row.
    pub consecutive_failures: u32,
    /// The latest result and when it came.
    pub last_result: Option<CheckResult>,
    /// When the next check is due.
    #[serde(with = "opt_instant")]
    pub next_check_at: Option<Instant>,
    /// An issued check: when it counts as timed out if no answer came.
    #[serde(with = "opt_instant")]
    pub in_flight_until: Option<Instant>,
}

impl HealthRecord {
    /// A fresh record: status UNKNOWN, nothing scheduled.
    pub fn new() -> Self {
        Self {
            status: HealthStatus::Unknown,
            consecutive_failures: 0,
            last_result: None,
            next_check_at: None,
            in_flight_until: None,
        }
    }
}

impl Default for HealthRecord {
    fn default() -> Self {
        Self::new()
    }
}

/// The kind of an issued operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    /// `PullImage`.
    Pull,
    /// `CreateContainer`.
    Create,
    /// `StartContainer`.
    Start,
    /// `RestartContainer`.
    Restart,
    /// `StopContainer`.
    Stop,
    /// `RunHealthCheck` (tracked in [`HealthRecord`], not as a pending op).
    HealthCheck,
    /// `DeleteTask`.
    Delete,
}

/// An operation issued and not answered yet: nothing else is issued on its target
/// until it is answered or times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOp {
    /// What.
    pub kind: OpKind,
    /// When it was issued.
    #[serde(with = "instant")]
    pub since: Instant,
}

/// One container of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Its `name` in the definition.
    pub name: String,
    /// Runtime state.
    pub state: ContainerState,
    /// Its image is present locally.
    pub image_ready: bool,
    /// Health bookkeeping.
    pub health: HealthRecord,
    /// In-place restarts so far (ECS restartPolicy).
    pub restart_count: u32,
    /// When the last in-place restart was issued.
    #[serde(with = "opt_instant")]
    pub last_restart_at: Option<Instant>,
    /// When its latest run started (kept after it exits).
    #[serde(with = "opt_instant")]
    pub last_started_at: Option<Instant>,
    /// The reconciler asked it to stop; its exit is expected.
    pub stop_requested: bool,
    /// An issued operation not answered yet.
    pub op: Option<PendingOp>,
    /// No retry of a failed stop, or of a failed in-place restart, before this.
    #[serde(with = "opt_instant")]
    pub not_before: Option<Instant>,
    /// In-place restarts that failed in a row (a full disk, say); reset by a start.
    #[serde(default)]
    pub restart_failures: u32,
}

impl ContainerRecord {
    /// A container not created yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: ContainerState::Pending,
            image_ready: false,
            health: HealthRecord::new(),
            restart_count: 0,
            last_restart_at: None,
            last_started_at: None,
            stop_requested: false,
            op: None,
            not_before: None,
            restart_failures: 0,
        }
    }

    /// Its process runs.
    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running { .. })
    }

    /// May be pulled: not created and the image is missing.
    pub fn can_pull(&self) -> bool {
        self.state == ContainerState::Pending && !self.image_ready && self.op.is_none()
    }

    /// May be created: not created and the image is present.
    pub fn can_create(&self) -> bool {
        self.state == ContainerState::Pending && self.image_ready && self.op.is_none()
    }

    /// May be started: created and never started.
    pub fn can_start(&self) -> bool {
        self.state == ContainerState::Created && self.op.is_none()
    }

    /// May be restarted in place: it exited.
    pub fn can_restart(&self) -> bool {
        matches!(self.state, ContainerState::Exited { .. }) && self.op.is_none()
    }

    /// May be stopped: it runs and nothing else is under way on it.
    pub fn can_stop(&self) -> bool {
        self.is_running() && self.op.is_none()
    }

    /// May be health-checked: it runs and no check is in flight.
    pub fn can_health_check(&self) -> bool {
        self.is_running() && self.health.in_flight_until.is_none()
    }

    /// Down for good as far as stopping a task goes: not running, nothing in flight.
    pub fn is_down(&self) -> bool {
        !self.is_running() && self.op.is_none()
    }
}

impl TaskRecord {
    /// A task about to be launched from `definition`.
    pub fn new(owner: Owner, definition: TaskDefinition, now: Instant) -> Self {
        let containers = definition
            .containers
            .iter()
            .map(|c| ContainerRecord::new(&c.name))
            .collect();
        Self {
            owner,
            definition,
            containers,
            phase: TaskPhase::Active,
            launched_at: now,
            stopped_reason: None,
            failed: false,
            serving_since: None,
            proven: false,
            op: None,
            not_before: None,
        }
    }

    /// The container named `name` and its definition.
    pub fn container(&self, name: &str) -> Option<(&ContainerDefinition, &ContainerRecord)> {
        let i = self.containers.iter().position(|c| c.name == name)?;
        Some((self.definition.containers.get(i)?, self.containers.get(i)?))
    }

    /// Mutable access to the record of container `name`.
    pub fn container_mut(&mut self, name: &str) -> Option<&mut ContainerRecord> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    /// Pending, running or stopping (ECS counts these against `maximumPercent`).
    pub fn is_live(&self) -> bool {
        matches!(self.phase, TaskPhase::Active | TaskPhase::Stopping)
    }

    /// Asks the task to stop with ECS `stoppedReason` `reason`; the first reason wins.
    /// Returns whether this call started the stop.
    pub fn begin_stop(&mut self, reason: String, failed: bool) -> bool {
        if self.phase != TaskPhase::Active {
            return false;
        }
        self.phase = TaskPhase::Stopping;
        self.stopped_reason = Some(reason);
        self.failed = failed;
        true
    }
}

/// The health-check command of `def`, unless absent or `NONE`.
pub fn check_of(def: &ContainerDefinition) -> Option<&crate::spec::HealthCheck> {
    def.health_check
        .as_ref()
        .filter(|h| h.command != HealthCommand::None)
}
