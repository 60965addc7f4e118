//! What the reconciler returns: [`Action`]s for the executor, [`Event`]s for the
//! outbox (as `Action::Report`), and one wakeup time ([`Decision`]).
//!
//! Every action that changes a container or task is answered by the executor with
//! an [`Observation`] naming the same target, success or failure; until then the
//! reconciler issues nothing else on that target.

use embassy_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use super::model::TaskId;
use super::observed::{CheckOutcome, ExitReason, HealthStatus, OpKind};
use super::time::duration;
use crate::spec::{HealthCommand, Revision};

/// One step for the executor. Containers are named by task and container name; the
/// executor finds the definition in the task record ([`super::Reconciler::observed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make `image` present locally. Answer: `ImagePulled` or `Failed(Pull)`.
    PullImage {
        task: TaskId,
        container: String,
        image: String,
    },
    /// Create the container (bundle, cgroup). Answer: `Created` or `Failed(Create)`.
    CreateContainer { task: TaskId, container: String },
    /// Start the created container. Answer: `Started` or `Failed(Start)`.
    StartContainer { task: TaskId, container: String },
    /// Start an exited container again in place (ECS restartPolicy): delete and
    /// re-create as needed. Answer: `Started` or `Failed(Restart)`.
    RestartContainer {
        task: TaskId,
        container: String,
        attempt: u32,
    },
    /// Run the health-check `command` inside the container, killing it after
    /// `timeout`. Answer: `HealthCheckDone`.
    RunHealthCheck {
        task: TaskId,
        container: String,
        command: HealthCommand,
        timeout: Duration,
    },
    /// SIGTERM, then SIGKILL after `timeout` (the container's `stopTimeout`).
    /// Answer: `Exited` or `Failed(Stop)`.
    StopContainer {
        task: TaskId,
        container: String,
        timeout: Duration,
        reason: String,
    },
    /// The task stops while this container's `PullImage` is still running (a newer
    /// deployment superseded it, or it was removed): give the pull up. No answer of
    /// its own: the pull answers `Failed(Pull)` soon (or `ImagePulled` if it was
    /// done).
    CancelPull { task: TaskId, container: String },
    /// Every container of the task is down: delete containers and task resources.
    /// Answer: `TaskDeleted` or `Failed(Delete)`.
    DeleteTask { task: TaskId },
    /// Publish this event (outbox).
    Report(Event),
}

impl Action {
    /// The task it concerns, if any.
    pub fn task(&self) -> Option<&TaskId> {
        match self {
            Self::PullImage { task, .. }
            | Self::CreateContainer { task, .. }
            | Self::StartContainer { task, .. }
            | Self::RestartContainer { task, .. }
            | Self::RunHealthCheck { task, .. }
            | Self::StopContainer { task, .. }
            | Self::CancelPull { task, .. }
            | Self::DeleteTask { task } => Some(task),
            Self::Report(_) => None,
        }
    }
}

/// What one [`super::Reconciler::reconcile`] call decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// `Report`s first, then actions in the order to issue them (they may run
    /// concurrently).
    pub actions: Vec<Action>,
    /// Call `reconcile` again at this instant at the latest (like quinn's
    /// `poll_timeout`): arm one timer. `None`: only a new observation can change things.
    pub next_wakeup: Option<Instant>,
}

/// What the executor reports back: facts about containers and tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The container's image is present.
    ImagePulled { task: TaskId, container: String },
    /// The container exists, not started.
    Created { task: TaskId, container: String },
    /// The container's process runs (also after a restart, or found on re-adoption).
    Started {
        task: TaskId,
        container: String,
        pid: u32,
    },
    /// The container's process ended.
    Exited {
        task: TaskId,
        container: String,
        code: i32,
        reason: ExitReason,
    },
    /// A health check ended.
    HealthCheckDone {
        task: TaskId,
        container: String,
        outcome: CheckOutcome,
    },
    /// The task's containers and resources are gone.
    TaskDeleted { task: TaskId },
    /// An action failed; `container` is `None` for `DeleteTask`.
    Failed {
        task: TaskId,
        container: Option<String>,
        op: OpKind,
        error: String,
    },
}

/// Something worth telling the operator (published through the outbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A task was launched (for a service: `service` and its definition's revision).
    TaskLaunched {
        task: TaskId,
        service: Option<String>,
        revision: Revision,
    },
    /// A container's process ended.
    ContainerExited {
        task: TaskId,
        container: String,
        code: i32,
        reason: ExitReason,
    },
    /// A container was restarted in place (restartPolicy).
    ContainerRestarted {
        task: TaskId,
        container: String,
        restart_count: u32,
    },
    /// A container's health status changed.
    HealthChanged {
        task: TaskId,
        container: String,
        status: HealthStatus,
    },
    /// A task began to stop, with ECS `stoppedReason`.
    TaskStopping {
        task: TaskId,
        reason: String,
        failed: bool,
    },
    /// All of a task's containers are down.
    TaskStopped { task: TaskId, reason: String },
    /// A service task failed: no relaunch before `delay` has passed.
    ServiceBackoff {
        service: String,
        consecutive_failures: u32,
        #[serde(with = "duration")]
        delay: Duration,
    },
    /// A service failed `failures` times within `window`: relaunches now wait the
    /// longest backoff until a task becomes healthy again.
    CrashLoop {
        service: String,
        failures: u32,
        #[serde(with = "duration")]
        window: Duration,
    },
    /// A service began moving to `revision`.
    DeploymentStarted { service: String, revision: Revision },
    /// All of the service's tasks run `revision` and have served for the stability
    /// window.
    DeploymentCompleted { service: String, revision: Revision },
    /// The circuit breaker tripped and the service goes back to `to`.
    DeploymentRolledBack {
        service: String,
        from: Revision,
        to: Revision,
        reason: String,
    },
    /// The circuit breaker tripped with nothing to roll back to; relaunches go on
    /// under backoff.
    DeploymentFailed {
        service: String,
        revision: Revision,
        reason: String,
    },
    /// An action failed (the error as the executor gave it).
    ActionFailed {
        task: TaskId,
        container: Option<String>,
        op: OpKind,
        error: String,
    },
    /// A launched task's containers ask for `awslogs`: CloudWatch is not reached from
    /// the device, their output is in skerry's rotated log files instead. One per task,
    /// right after [`Event::TaskLaunched`]; `streams` are (container, ECS stream name
    /// `prefix/container/task-id` when a prefix is set).
    LogsKeptOnDevice {
        task: TaskId,
        streams: Vec<(String, Option<String>)>,
    },
    /// A launched task's `containers` ask for the `journald` log driver and the host
    /// has no journal: their output is in skerry's rotated log files only. One per
    /// task launch, right after [`Event::TaskLaunched`] (and any LogsKeptOnDevice).
    JournalAbsent {
        task: TaskId,
        containers: Vec<String>,
    },
}
