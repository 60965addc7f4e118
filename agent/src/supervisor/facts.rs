//! Runtime facts for the reconciler: what each container's directory says, turned
//! into [`Observation`]s — on start (re-adoption, exits that happened while the
//! agent was down) and every tick (the exit watch).
//!
//! A container the records call running and whose monitor lives is adopted as it is:
//! nothing is observed, so nothing restarts and its health history stays. An exit
//! record is observed once per run (`started_at_ms`, kept in the state file as
//! `exits_seen`); the reconciler then applies restart policy, essential-exit and
//! service rules as if it had watched. A container whose monitor died without an
//! exit record (Lost) is reaped, which writes one.

use std::collections::BTreeMap;

use skerry_core::reconcile::{
    ContainerState as Rec, ExitReason as CoreExit, Observation, OpKind, Reconciler, TaskId,
};

use super::executor::{Executor, Outcome};
use super::ops::exited;
use crate::runtime::{ContainerState, Runtime};

/// `exits_seen` key of a container.
pub fn key(task: &TaskId, container: &str) -> String {
    format!("{task}/{container}")
}

/// What the reconciler should learn about one container, given its record's state
/// and the runtime's. `Lost` yields nothing here (the caller reaps it first).
pub fn sync_one(
    task: &TaskId,
    name: &str,
    rec: &Rec,
    actual: &ContainerState,
    exits_seen: &mut BTreeMap<String, u64>,
) -> Vec<Observation> {
    let k = key(task, name);
    let start = |pid: i32| Observation::Started {
        task: task.clone(),
        container: name.to_string(),
        pid: u32::try_from(pid).unwrap_or(0),
    };
    match actual {
        ContainerState::Running { pid, .. } => match rec {
            Rec::Running { pid: known, .. } if i64::from(*known) == i64::from(*pid) => vec![],
            _ => vec![start(*pid)],
        },
        ContainerState::Exited(er) => {
            if exits_seen.get(&k) == Some(&er.started_at_ms) {
                return vec![];
            }
            exits_seen.insert(k, er.started_at_ms);
            let mut out = Vec::new();
            if !matches!(rec, Rec::Running { .. }) {
                // It ran (and ended) unseen: a restart or start the agent did not hear of.
                out.push(start(0));
            }
            out.push(exited(task.clone(), name.to_string(), er));
            out
        }
        ContainerState::NotStarted if matches!(rec, Rec::Running { .. }) => {
            vec![Observation::Exited {
                task: task.clone(),
                container: name.to_string(),
                code: 255,
                reason: CoreExit::Error,
            }]
        }
        ContainerState::NotStarted | ContainerState::Lost => vec![],
    }
}

/// Feeds a worker's answer to the reconciler (an exit already observed for the same
/// run is dropped).
pub fn take_outcome(
    exec: &mut Executor,
    rec: &mut Reconciler,
    exits_seen: &mut BTreeMap<String, u64>,
    o: Outcome,
    now: embassy_time::Instant,
) {
    exec.finished(&o.key);
    let Some(obs) = o.obs else { return };
    // A stop worker's answer counts only while that container still waits for a stop:
    // when the exit watch saw the exit first, the task may have been deleted and a new
    // run of the same task id launched before the worker returns, and its "not
    // started" answer would end the new run (seen: a rolled-back task exiting "0").
    if o.key.2 == "stop" {
        if let Observation::Exited {
            task, container, ..
        } = &obs
        {
            let waiting = rec
                .observed()
                .tasks
                .get(task)
                .and_then(|t| t.container(container))
                .is_some_and(|(_, c)| c.op.is_some_and(|op| op.kind == OpKind::Stop));
            if !waiting {
                tracing::debug!(?obs, "stale stop answer dropped");
                return;
            }
        }
    }
    if let (
        Observation::Exited {
            task, container, ..
        },
        Some(run),
    ) = (&obs, o.run)
    {
        let k = key(task, container);
        if exits_seen.get(&k) == Some(&run) {
            return;
        }
        exits_seen.insert(k, run);
    }
    tracing::debug!(?obs, "observed");
    rec.observe(obs, now);
}

/// The exit watch of one turn: every container the records call running is checked;
/// exits become observations, lost monitors are reaped.
pub fn watch_exits(
    exec: &mut Executor,
    rec: &mut Reconciler,
    exits_seen: &mut BTreeMap<String, u64>,
    now: embassy_time::Instant,
) {
    for (task, name, state) in watched(rec.observed()) {
        let actual = exec.runtime.state(&task.0, &name);
        if actual == ContainerState::Lost {
            exec.reap(&task, &name);
            continue;
        }
        for o in sync_one(&task, &name, &state, &actual, exits_seen) {
            rec.observe(o, now);
        }
    }
}

/// Every (task, container) the records call running or created: the ones to watch.
pub fn watched(observed: &skerry_core::reconcile::Observed) -> Vec<(TaskId, String, Rec)> {
    observed
        .tasks
        .iter()
        .flat_map(|(id, t)| {
            t.containers
                .iter()
                .filter(|c| matches!(c.state, Rec::Running { .. }))
                .map(move |c| (id.clone(), c.name.clone(), c.state.clone()))
        })
        .collect()
}

/// Re-adoption on start: every container of every recorded task, synchronously (lost
/// ones are reaped first). Returns the observations and how many were adopted as
/// running.
pub fn adopt_all(
    rt: &Runtime,
    observed: &skerry_core::reconcile::Observed,
    exits_seen: &mut BTreeMap<String, u64>,
) -> (Vec<Observation>, usize) {
    let mut out = Vec::new();
    let mut running = 0;
    for (id, t) in &observed.tasks {
        for c in &t.containers {
            let mut actual = rt.state(&id.0, &c.name);
            if actual == ContainerState::Lost {
                tracing::warn!(task = %id, container = %c.name, "monitor lost while the agent was down: reaping");
                if let Err(e) = rt.reap(&id.0, &c.name) {
                    tracing::error!(task = %id, container = %c.name, error = %e, "reap failed");
                }
                actual = rt.state(&id.0, &c.name);
            }
            if matches!(actual, ContainerState::Running { .. }) {
                running += 1;
            }
            let obs = sync_one(id, &c.name, &c.state, &actual, exits_seen);
            if !obs.is_empty() {
                tracing::info!(task = %id, container = %c.name, ?obs, "learned on start");
            }
            out.extend(obs);
        }
    }
    (out, running)
}

/// Waits (up to `limit`) until no `skerry monitor start` under `tasks_dir` is still
/// starting: a start the previous agent launched goes on after that agent died, and
/// adopting before it wrote `monitor.json` would take its container for not started.
/// Returns how many were awaited.
pub fn settle_starts(tasks_dir: &std::path::Path, limit: std::time::Duration) -> usize {
    let deadline = std::time::Instant::now() + limit;
    let mut awaited = 0;
    loop {
        let starting = starting_monitors(tasks_dir);
        if starting == 0 || std::time::Instant::now() >= deadline {
            if starting > 0 {
                tracing::warn!(
                    starting,
                    "container starts still under way; adopting anyway"
                );
            }
            return awaited.max(starting);
        }
        awaited = awaited.max(starting);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `monitor start DIR` processes whose DIR's `monitor.json` does not name them.
fn starting_monitors(tasks_dir: &std::path::Path) -> usize {
    let root = tasks_dir.display().to_string();
    let mut n = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        if args.len() < 4 || args[1] != b"monitor" || args[2] != b"start" {
            continue;
        }
        let dir = String::from_utf8_lossy(args[3]).into_owned();
        if !dir.starts_with(&root) {
            continue;
        }
        let path = std::path::Path::new(&dir).join(crate::runtime::MONITOR_FILE);
        let rec = crate::runtime::record::load::<crate::runtime::MonitorRecord>(&path);
        let zombie = crate::runtime::record::is_zombie(pid);
        if !zombie && !matches!(rec, Ok(Some(m)) if m.monitor_pid == pid) {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ExitReason, ExitRecord};
    use embassy_time::Instant;

    #[test]
    fn facts_adopt_running_without_observation_and_exits_once() {
        let id = TaskId::from("t");
        let mut seen = BTreeMap::new();
        let running = Rec::Running {
            pid: 42,
            started_at: Instant::from_ticks(0),
        };
        let live = ContainerState::Running {
            pid: 42,
            monitor_pid: 1,
        };
        assert!(sync_one(&id, "c", &running, &live, &mut seen).is_empty());
        let exit = ContainerState::Exited(ExitRecord {
            exit_code: 3,
            signal: None,
            reason: ExitReason::Exited,
            started_at_ms: 7,
            finished_at_ms: 8,
        });
        let obs = sync_one(&id, "c", &running, &exit, &mut seen);
        assert!(matches!(
            obs.as_slice(),
            [Observation::Exited { code: 3, .. }]
        ));
        assert!(sync_one(&id, "c", &running, &exit, &mut seen).is_empty());
    }
}
