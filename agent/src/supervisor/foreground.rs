//! One task in the foreground (`skerry run`), on the same reconciler and executor as
//! the agent, so a task definition means the same thing in both: dependsOn,
//! healthCheck, restartPolicy, essential exits, stop order and stopTimeout. Nothing is
//! persisted but the task's own directory: if this process dies, its containers keep
//! running and `skerry stop` cleans up.
//!
//! The loop: signals (the first SIGINT/SIGTERM/SIGHUP drops the task from the desired
//! state, so the reconciler stops it gracefully, dependents first), exit watch, worker
//! answers, `reconcile`, actions; the caller's `on_turn` prints container output. It
//! ends once the task is deleted (with `keep`, its directory is left in place).

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signalfd::SignalFd;
use skerry_core::reconcile::{
    Action, ContainerState, Desired, Event, Observation, Reconciler, TaskId, TaskPhase, TaskRecord,
};
use skerry_core::spec::TaskDefinition;

use super::clock::Clock;
use super::executor::Executor;
use super::{facts, reconciler_config};
use crate::context::Context;
use crate::task::Owner;

/// Longest wait between two turns: container output is printed this often.
const TURN: Duration = Duration::from_millis(50);

/// How a foreground task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForegroundEnd {
    /// The process exit code: the essential container's whose exit stopped the task;
    /// after a stop on request, the first essential container's; else 1.
    pub code: i32,
    /// ECS `stoppedReason`.
    pub stopped_reason: Option<String>,
    /// A signal asked for the stop.
    pub interrupted: bool,
}

/// Runs task `task_id` until it ends; `on_turn` is called every turn and before the
/// task's files are deleted (the last chance to read its logs).
pub fn run_task(
    ctx: &Context,
    task_id: &str,
    definition: TaskDefinition,
    owner: Owner,
    keep: bool,
    signals: &SignalFd,
    mut on_turn: impl FnMut(),
) -> anyhow::Result<ForegroundEnd> {
    let clock = Clock::resume(None);
    let mut rec = Reconciler::new(reconciler_config(
        ctx.config.restart_backoff_secs,
        clock.scale(),
    ));
    let id = TaskId::from(task_id);
    let mut desired = Desired::default();
    desired.tasks.insert(id.clone(), definition.clone());
    let (tx, rx) = mpsc::channel();
    let mut exec = Executor::new(ctx.runtime()?, ctx.images()?, tx, owner).with_pulls(&ctx.config);
    let mut exits_seen = BTreeMap::new();
    let mut story = Story::default();
    // The record as its delete was issued (every container ended): a stop on request
    // forgets the record as soon as the delete is done.
    let mut last: Option<TaskRecord> = None;
    loop {
        if let Ok(Some(info)) = signals.read_signal() {
            if !story.interrupted {
                eprintln!("skerry: signal {}: stopping task {task_id}", info.ssi_signo);
                story.interrupted = true;
                desired.tasks.clear();
            }
        }
        facts::watch_exits(&mut exec, &mut rec, &mut exits_seen, clock.now());
        while let Ok(o) = rx.try_recv() {
            facts::take_outcome(&mut exec, &mut rec, &mut exits_seen, o, clock.now());
        }
        let decision = rec.reconcile(&desired, clock.now());
        let wakeup = decision.next_wakeup;
        for action in decision.actions {
            match &action {
                Action::Report(ev) => story.tell(ev, &definition),
                Action::DeleteTask { task } => {
                    on_turn();
                    last = rec.observed().tasks.get(task).cloned();
                    if keep {
                        rec.observe(Observation::TaskDeleted { task: task.clone() }, clock.now());
                        continue;
                    }
                }
                _ => {}
            }
            exec.dispatch(action, rec.observed());
        }
        on_turn();
        match rec.observed().tasks.get(&id) {
            Some(t) if t.phase == TaskPhase::Deleted => return Ok(story.end(Some(t))),
            Some(_) => {}
            None => return Ok(story.end(last.as_ref())),
        }
        let mut timeout = TURN;
        if let Some(at) = wakeup {
            timeout = timeout.min(clock.real_until(at));
        }
        if let Ok(o) = rx.recv_timeout(timeout) {
            facts::take_outcome(&mut exec, &mut rec, &mut exits_seen, o, clock.now());
        }
    }
}

/// What the events said, for the end.
#[derive(Debug, Default)]
struct Story {
    /// The latest exit code of an essential container before the task began to stop.
    essential_code: Option<i32>,
    /// The code that ends the process, once known.
    code: Option<i32>,
    reason: Option<String>,
    interrupted: bool,
}

impl Story {
    fn tell(&mut self, ev: &Event, def: &TaskDefinition) {
        match ev {
            Event::ContainerExited {
                container, code, ..
            } if self.reason.is_none() && def.container(container).is_some_and(|c| c.essential) => {
                self.essential_code = Some(*code);
            }
            Event::TaskStopping { reason, failed, .. } if self.reason.is_none() => {
                if *failed && reason.starts_with("Essential container in task exited") {
                    self.code = self.essential_code;
                }
                self.reason = Some(reason.clone());
            }
            Event::ContainerRestarted { .. }
            | Event::HealthChanged { .. }
            | Event::ActionFailed { .. }
            | Event::LogsKeptOnDevice { .. }
            | Event::JournalAbsent { .. } => eprintln!("skerry: {ev}"),
            _ => {}
        }
    }

    /// The end, from the task's last record (`None` if it never got one).
    fn end(self, task: Option<&TaskRecord>) -> ForegroundEnd {
        let first_essential = || {
            let task = task?;
            task.definition
                .containers
                .iter()
                .zip(&task.containers)
                .filter(|(d, _)| d.essential)
                .find_map(|(_, r)| match r.state {
                    ContainerState::Exited { code, .. } => Some(code),
                    _ => None,
                })
        };
        let code = self.code.or_else(first_essential).unwrap_or(1);
        ForegroundEnd {
            code,
            stopped_reason: self
                .reason
                .or_else(|| task.and_then(|t| t.stopped_reason.clone())),
            interrupted: self.interrupted,
        }
    }
}
