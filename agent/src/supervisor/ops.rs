//! The blocking steps behind the executor's actions, run on worker threads: start
//! (minding starts a crashed agent left under way), task deletion, the task record,
//! shared namespaces, and the observations they answer with.

use std::time::Duration;

use skerry_core::reconcile::{ExitReason as CoreExit, Observation, OpKind, TaskId};

use crate::images::ImageStore;
use crate::runtime::{ContainerState, ExitReason, ExitRecord, Runtime, TaskNamespaces};
use crate::task::TaskRecord;

/// The observation for an exit record.
pub fn exited(task: TaskId, container: String, rec: &ExitRecord) -> Observation {
    let reason = match rec.reason {
        ExitReason::Exited => CoreExit::Exited,
        ExitReason::OutOfMemory => CoreExit::OutOfMemory,
        ExitReason::Signaled | ExitReason::Stopped | ExitReason::StopTimeout => CoreExit::Killed,
        ExitReason::MonitorLost => CoreExit::Lost,
    };
    Observation::Exited {
        task,
        container,
        code: rec.exit_code,
        reason,
    }
}

pub(super) fn started(task: TaskId, container: String, pid: i32) -> Observation {
    Observation::Started {
        task,
        container,
        pid: u32::try_from(pid).unwrap_or(0),
    }
}

pub(super) fn failed(
    task: TaskId,
    container: Option<String>,
    op: OpKind,
    error: String,
) -> Observation {
    Observation::Failed {
        task,
        container,
        op,
        error,
    }
}

/// Starts a prepared container. libcontainer state left by a start that an agent
/// crash interrupted is either that start finishing (then its container is taken
/// as started) or stale (then reaped first).
pub(super) fn start_fresh(rt: &Runtime, task: &str, name: &str) -> Result<i32, String> {
    let state_dir = rt
        .layout()
        .libcontainer()
        .join(Runtime::container_id(task, name));
    if state_dir.exists() {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match rt.state(task, name) {
                ContainerState::Running { pid, .. } => return Ok(pid),
                ContainerState::Exited(_) => return Ok(0),
                _ if std::time::Instant::now() >= deadline => break,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        tracing::warn!(
            task,
            container = name,
            "stale libcontainer state: reaping before start"
        );
        rt.reap(task, name).map_err(|e| e.to_string())?;
        let exit = rt.container_dir(task, name).join(crate::runtime::EXIT_FILE);
        let _ = std::fs::remove_file(exit);
    }
    rt.start(task, name)
        .map(|m| m.container_pid)
        .map_err(|e| e.to_string())
}

pub(super) fn save_record(rt: &Runtime, record: &TaskRecord) -> Result<(), String> {
    if rt
        .layout()
        .task(&record.task_id)
        .join(crate::task::TASK_FILE)
        .exists()
    {
        return Ok(());
    }
    record.save(rt.layout()).map_err(|e| e.to_string())
}

/// Namespaces of the task's first running container, for `pidMode`/`ipcMode` `task`.
pub(super) fn shared_namespaces(
    rt: &Runtime,
    task: &str,
    def: &skerry_core::spec::TaskDefinition,
) -> TaskNamespaces {
    let pid = def
        .containers
        .iter()
        .find_map(|c| match rt.state(task, &c.name) {
            ContainerState::Running { pid, .. } => Some(pid),
            _ => None,
        });
    pid.map(|pid| TaskNamespaces::of_container(def, pid))
        .unwrap_or_default()
}

/// Deletes a task: anything still running or lost is stopped or reaped first.
pub fn delete_task(rt: &Runtime, images: &ImageStore, task: &str) -> Result<(), String> {
    let containers = rt.layout().task(task).join("containers");
    for e in std::fs::read_dir(&containers)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        match rt.state(task, &name) {
            ContainerState::Running { .. } => {
                rt.stop(task, &name, Duration::from_secs(10))
                    .map_err(|e| e.to_string())?;
            }
            ContainerState::Lost => rt.reap(task, &name).map_err(|e| e.to_string())?,
            _ => {}
        }
    }
    rt.remove_task(images, task).map_err(|e| e.to_string())
}
