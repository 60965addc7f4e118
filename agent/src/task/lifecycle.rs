//! Starting and stopping a whole task: containers start in `dependsOn` order once each
//! dependency's condition holds (START, COMPLETE, SUCCESS, within `startTimeout`), and
//! stop in reverse order, each with its own stopTimeout.

use std::time::{Duration, Instant};

use skerry_core::spec::{DependencyCondition, TaskDefinition};

use super::order::start_order;
use super::record::TaskRecord;
use crate::images::ImageStore;
use crate::runtime::{ContainerState, ExitRecord, Runtime, RuntimeError, TaskNamespaces};

/// How long a dependent waits for a dependency's condition when the dependency sets no
/// `startTimeout` (the ECS agent's default).
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(180);

/// Errors of task lifecycle operations, naming the task and container.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A container could not be prepared or started.
    #[error("task {task}: container {container}: {source}")]
    Container {
        task: String,
        container: String,
        source: Box<RuntimeError>,
    },
    /// A dependency condition could not be met.
    #[error("task {task}: container {container} not started: {reason}")]
    Dependency {
        task: String,
        container: String,
        reason: String,
    },
    /// Another runtime failure.
    #[error("task {0}: {1}")]
    Runtime(String, Box<RuntimeError>),
}

/// Why a running task should end, if it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Keep running.
    Running,
    /// An essential container exited (ECS stoppedReason wording).
    EssentialExited { container: String, exit: ExitRecord },
    /// Every container has exited.
    AllExited,
}

impl TaskOutcome {
    /// The task's outcome from its containers' states.
    pub fn of(def: &TaskDefinition, states: &[(String, ContainerState)]) -> Self {
        for (name, st) in states {
            if let ContainerState::Exited(exit) = st {
                if def.container(name).is_some_and(|c| c.essential) {
                    return TaskOutcome::EssentialExited {
                        container: name.clone(),
                        exit: exit.clone(),
                    };
                }
            }
        }
        if states
            .iter()
            .all(|(_, st)| matches!(st, ContainerState::Exited(_)))
        {
            TaskOutcome::AllExited
        } else {
            TaskOutcome::Running
        }
    }

    /// ECS's stoppedReason for this outcome.
    pub fn stopped_reason(&self) -> Option<String> {
        match self {
            TaskOutcome::Running => None,
            TaskOutcome::EssentialExited { container, exit } => Some(format!(
                "Essential container in task exited: {container} (exit code {}, {:?})",
                exit.exit_code, exit.reason
            )),
            TaskOutcome::AllExited => Some("All containers exited".into()),
        }
    }
}

/// Starts every container of the task in dependency order. On failure, stops what was
/// started and returns the error; the task directory remains for inspection.
pub fn start_task(
    runtime: &Runtime,
    images: &ImageStore,
    rec: &TaskRecord,
) -> Result<(), TaskError> {
    let def = &rec.definition;
    let mut shared = TaskNamespaces::default();
    for name in start_order(def) {
        let Some(c) = def.container(&name) else {
            continue;
        };
        let result = wait_dependencies(runtime, rec, &name).and_then(|()| {
            runtime
                .prepare(images, &rec.task_id, def, c, &shared)
                .and_then(|()| runtime.start(&rec.task_id, &name))
                .map_err(|source| TaskError::Container {
                    task: rec.task_id.clone(),
                    container: name.clone(),
                    source: Box::new(source),
                })
        });
        match result {
            Ok(m) => {
                tracing::info!(task = %rec.task_id, container = %name, pid = m.container_pid, "container started");
                if shared.pid.is_none() && shared.ipc.is_none() {
                    // The first container started holds the task's shared namespaces.
                    shared = TaskNamespaces::of_container(def, m.container_pid);
                }
            }
            Err(e) => {
                stop_task(runtime, rec);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn wait_dependencies(runtime: &Runtime, rec: &TaskRecord, name: &str) -> Result<(), TaskError> {
    let def = &rec.definition;
    let Some(c) = def.container(name) else {
        return Ok(());
    };
    for dep in &c.depends_on {
        let timeout = def
            .container(&dep.container)
            .and_then(|d| d.start_timeout)
            .unwrap_or(DEFAULT_START_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let fail = |reason: String| TaskError::Dependency {
            task: rec.task_id.clone(),
            container: name.to_string(),
            reason,
        };
        loop {
            let st = runtime.state(&rec.task_id, &dep.container);
            let met = match (dep.condition, &st) {
                (
                    DependencyCondition::Start,
                    ContainerState::Running { .. } | ContainerState::Exited(_),
                ) => true,
                (DependencyCondition::Complete, ContainerState::Exited(_)) => true,
                (DependencyCondition::Success, ContainerState::Exited(e)) if e.exit_code == 0 => {
                    true
                }
                (DependencyCondition::Success, ContainerState::Exited(e)) => {
                    return Err(fail(format!(
                        "dependency {} exited with code {}, condition SUCCESS not met",
                        dep.container, e.exit_code
                    )))
                }
                _ => false,
            };
            if met {
                break;
            }
            if Instant::now() >= deadline {
                return Err(fail(format!(
                    "dependency {} did not reach {:?} within {}s (startTimeout)",
                    dep.container,
                    dep.condition,
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Stops every running container, dependents first, each within its stopTimeout.
/// Returns the final states.
pub fn stop_task(runtime: &Runtime, rec: &TaskRecord) -> Vec<(String, ContainerState)> {
    let def = &rec.definition;
    let mut order = start_order(def);
    order.reverse();
    for name in &order {
        let Some(c) = def.container(name) else {
            continue;
        };
        if let ContainerState::Running { .. } | ContainerState::Lost =
            runtime.state(&rec.task_id, name)
        {
            if let Err(e) = runtime.stop(&rec.task_id, name, c.stop_timeout) {
                tracing::warn!(task = %rec.task_id, container = %name, error = %e, "stopping container failed");
            }
        }
    }
    task_states(runtime, rec)
}

/// The state of each container of the task, in definition order.
pub fn task_states(runtime: &Runtime, rec: &TaskRecord) -> Vec<(String, ContainerState)> {
    rec.definition
        .containers
        .iter()
        .map(|c| (c.name.clone(), runtime.state(&rec.task_id, &c.name)))
        .collect()
}
