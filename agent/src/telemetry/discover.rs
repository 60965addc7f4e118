//! Which containers there are to watch, read from the state directory only (no
//! channel into the supervisor's loop): the supervisor's `status.json` for state,
//! health and restarts, each task's `task.json` for its log driver, each container's
//! `launch.json` for its cgroup and log directory.

use std::path::PathBuf;

use serde_json::Value;
use skerry_core::proto::topics::check_name;
use skerry_core::spec::{LogDriver, SkerryLogs};

use crate::runtime::bundle::cgroup_path;
use crate::runtime::record::{self, LaunchPlan};
use crate::runtime::LAUNCH_FILE;
use crate::store::StateLayout;
use crate::task::TaskRecord;

/// One container as telemetry sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub task: String,
    pub container: String,
    pub state: String,
    pub health: String,
    pub restarts: u32,
    /// The supervisor's reason for the last exit, while `state` is `EXITED`.
    pub exit_reason: String,
    pub cgroup_path: String,
    pub log_dir: PathBuf,
    /// `Some((group, stream))` when its lines are shipped (`awslogs`, `skerry`).
    pub ship: Option<(String, String)>,
    /// The `skerry` driver's own budget and filters, when it has them.
    pub driver: Option<SkerryLogs>,
    /// awslogs' event grouping: the start pattern and the flush interval (s).
    pub multiline: Option<(String, u64)>,
}

/// The containers of the supervisor's last `status.json`.
pub fn containers(layout: &StateLayout) -> Vec<Watched> {
    let path = layout.root().join("supervisor/status.json");
    let Ok(text) = std::fs::read(&path) else {
        return Vec::new();
    };
    let Ok(status) = serde_json::from_slice::<Value>(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let Some(tasks) = status.get("tasks").and_then(Value::as_object) else {
        return out;
    };
    for (task, t) in tasks {
        let record = TaskRecord::load(layout, task).ok().flatten();
        let Some(cs) = t.get("containers").and_then(Value::as_object) else {
            continue;
        };
        for (name, c) in cs {
            let dir = layout.container(task, name);
            // The launch plan is gone once a task is cleaned up; the names stay.
            let plan = record::load::<LaunchPlan>(&dir.join(LAUNCH_FILE))
                .ok()
                .flatten();
            let discard = plan.as_ref().is_some_and(|p| p.discard_output);
            let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let driver = record.as_ref().and_then(|r| {
                r.definition
                    .containers
                    .iter()
                    .find(|d| &d.name == name)
                    .map(|d| d.log.clone())
            });
            // Names become topic levels: only checked names are shipped.
            let nameable =
                check_name("task", task).is_ok() && check_name("container", name).is_ok();
            let ship = match &driver {
                Some(LogDriver::Awslogs(a)) if nameable && !discard => Some((
                    a.group.clone(),
                    a.stream_name(name, task)
                        .unwrap_or_else(|| format!("{name}/{task}")),
                )),
                Some(LogDriver::Skerry(s)) if nameable && !discard => {
                    Some((s.group.clone(), SkerryLogs::stream_name(name, task)))
                }
                _ => None,
            };
            let multiline = match &driver {
                Some(LogDriver::Awslogs(a)) => a.event_start.clone().map(|p| {
                    (
                        p,
                        a.flush_secs
                            .unwrap_or(skerry_core::telemetry::multiline::DEFAULT_FLUSH_SECS),
                    )
                }),
                _ => None,
            };
            let driver = match driver {
                Some(LogDriver::Skerry(s)) => Some(s),
                _ => None,
            };
            out.push(Watched {
                task: task.clone(),
                container: name.clone(),
                state: text("state"),
                health: text("health"),
                exit_reason: text("exit_reason"),
                restarts: c.get("restart_count").and_then(Value::as_u64).unwrap_or(0) as u32,
                cgroup_path: plan.as_ref().map_or_else(
                    || cgroup_path(&layout.cgroup_parent(), task, name),
                    |p| p.cgroup_path.clone(),
                ),
                log_dir: plan.map_or_else(|| dir.join("logs"), |p| p.log_dir),
                ship,
                driver,
                multiline,
            });
        }
    }
    out
}
