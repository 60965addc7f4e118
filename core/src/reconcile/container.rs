//! One task's containers through its life: pull, create and start in `dependsOn`
//! order; exits (restart in place per restartPolicy, or an essential exit stops the
//! task); unhealthy service tasks are stopped for replacement; stopping runs
//! dependents first, each with its `stopTimeout`; a task whose containers are all
//! down is deleted.
//!
//! Issues at most one operation per container at a time (see [`ContainerRecord::op`])
//! and re-issues one whose answer is overdue.

use embassy_time::Instant;

use super::actions::{Action, Event};
use super::deps::{self, Gate};
use super::health;
use super::model::{Config, TaskId};
use super::observed::{
    ContainerRecord, ContainerState, ExitReason, HealthStatus, OpKind, Owner, PendingOp, TaskPhase,
    TaskRecord,
};
use super::time::{after, from_std, sum};
use super::Sink;
use crate::spec::ContainerDefinition;

/// First half of a call, before any planning: forgets overdue operations, times out
/// health checks, and reacts to exits, failed dependencies and bad health, so
/// failures count before anything is launched.
pub(super) fn assess_task(
    id: &TaskId,
    task: &mut TaskRecord,
    cfg: &Config,
    now: Instant,
    sink: &mut Sink,
) {
    expire_ops(task, cfg, now);
    if task.phase == TaskPhase::Stopped && !task.containers.iter().all(ContainerRecord::is_down) {
        // A late answer (after its operation timed out) brought a container back.
        task.phase = TaskPhase::Stopping;
    }
    if task.phase == TaskPhase::Active {
        health::expire(id, task, now, sink);
        assess(id, task, now, sink);
    }
}

/// Second half, after planning: issues what each container is ready for.
pub(super) fn drive_task(
    id: &TaskId,
    task: &mut TaskRecord,
    cfg: &Config,
    now: Instant,
    sink: &mut Sink,
) {
    match task.phase {
        TaskPhase::Active => {
            drive_start(id, task, now, sink);
            health::schedule(id, task, cfg, now, sink);
        }
        TaskPhase::Stopping => drive_stop(id, task, now, sink),
        TaskPhase::Stopped | TaskPhase::Deleted => {}
    }
    if task.phase == TaskPhase::Stopping && task.containers.iter().all(ContainerRecord::is_down) {
        task.phase = TaskPhase::Stopped;
        sink.event(Event::TaskStopped {
            task: id.clone(),
            reason: task.stopped_reason.clone().unwrap_or_default(),
        });
    }
    if task.phase == TaskPhase::Stopped && task.op.is_none() {
        match task.not_before {
            Some(t) if now < t => sink.wake(t),
            _ => {
                task.op = Some(PendingOp {
                    kind: OpKind::Delete,
                    since: now,
                });
                sink.act(Action::DeleteTask { task: id.clone() });
            }
        }
    }
    arm_op_timers(task, cfg, sink);
}

/// Stops `task` with `reason` unless it is already stopping; reports it.
pub(super) fn stop_task(
    id: &TaskId,
    task: &mut TaskRecord,
    reason: String,
    failed: bool,
    sink: &mut Sink,
) {
    if task.begin_stop(reason.clone(), failed) {
        sink.event(Event::TaskStopping {
            task: id.clone(),
            reason,
            failed,
        });
        if failed {
            sink.failed.push(id.clone());
        }
    }
}

/// When an operation issued at `op.since` counts as unanswered.
fn op_deadline(def: &ContainerDefinition, op: PendingOp, cfg: &Config) -> Instant {
    let limit = match op.kind {
        OpKind::Pull => cfg.pull_timeout,
        OpKind::Stop => sum(from_std(def.stop_timeout), cfg.grace),
        _ => cfg.op_timeout,
    };
    after(op.since, limit)
}

/// Forgets operations whose answer is overdue, so they are issued again.
fn expire_ops(task: &mut TaskRecord, cfg: &Config, now: Instant) {
    for (def, rec) in task
        .definition
        .containers
        .iter()
        .zip(task.containers.iter_mut())
    {
        if rec.op.is_some_and(|op| now >= op_deadline(def, op, cfg)) {
            rec.op = None;
        }
    }
    if task
        .op
        .is_some_and(|op| now >= after(op.since, cfg.op_timeout))
    {
        task.op = None;
    }
}

/// Asks to be woken when an issued operation becomes overdue.
fn arm_op_timers(task: &TaskRecord, cfg: &Config, sink: &mut Sink) {
    for (def, rec) in task.definition.containers.iter().zip(&task.containers) {
        if let Some(op) = rec.op {
            sink.wake(op_deadline(def, op, cfg));
        }
    }
    if let Some(op) = task.op {
        sink.wake(after(op.since, cfg.op_timeout));
    }
}

/// ECS restartPolicy: restart in place unless the code is ignored or the container
/// ran less than `restartAttemptPeriod` since its last (re)start.
pub fn restart_allowed(def: &ContainerDefinition, rec: &ContainerRecord) -> bool {
    let (
        Some(policy),
        ContainerState::Exited {
            code, finished_at, ..
        },
    ) = (&def.restart_policy, &rec.state)
    else {
        return false;
    };
    let Some(started) = rec.last_started_at else {
        return false;
    };
    policy.enabled
        && !policy.ignored_exit_codes.contains(code)
        && finished_at.saturating_duration_since(started) >= from_std(policy.restart_attempt_period)
}

/// Reacts to exits, failed dependencies and bad health of an active task.
fn assess(id: &TaskId, task: &mut TaskRecord, now: Instant, sink: &mut Sink) {
    for i in 0..task.containers.len() {
        let (Some(def), Some(rec)) = (
            task.definition.containers.get(i),
            task.containers.get_mut(i),
        ) else {
            continue;
        };
        let ContainerState::Exited { code, reason, .. } = rec.state else {
            continue;
        };
        if rec.stop_requested || rec.op.is_some() {
            continue;
        }
        if let Some(t) = rec.not_before.filter(|t| now < *t) {
            // A failed restart waits before it is tried again.
            sink.wake(t);
            continue;
        }
        if restart_allowed(def, rec) {
            rec.restart_count = rec.restart_count.saturating_add(1);
            rec.last_restart_at = Some(now);
            rec.op = Some(PendingOp {
                kind: OpKind::Restart,
                since: now,
            });
            let (container, attempt) = (rec.name.clone(), rec.restart_count);
            sink.act(Action::RestartContainer {
                task: id.clone(),
                container: container.clone(),
                attempt,
            });
            sink.event(Event::ContainerRestarted {
                task: id.clone(),
                container,
                restart_count: attempt,
            });
        } else if def.essential {
            let reason = format!(
                "Essential container in task exited: {} (exit code {code}{})",
                def.name,
                match reason {
                    ExitReason::OutOfMemory => ", OutOfMemoryError: killed for its memory use",
                    ExitReason::Lost => ", lost: the host restarted or its monitor was killed",
                    ExitReason::Exited | ExitReason::Killed | ExitReason::Error => "",
                }
            );
            stop_task(id, task, reason, true, sink);
            return;
        }
    }
    for i in 0..task.containers.len() {
        let not_started = task
            .containers
            .get(i)
            .is_some_and(|r| r.last_started_at.is_none() && !r.is_running());
        if !not_started {
            continue;
        }
        if let Gate::Fail(reason) = deps::gate(task, i, now) {
            stop_task(id, task, reason, true, sink);
            return;
        }
    }
    if matches!(task.owner, Owner::Service(_))
        && health::task_health(task) == HealthStatus::Unhealthy
    {
        stop_task(
            id,
            task,
            "Task failed container health checks".to_owned(),
            true,
            sink,
        );
    }
}

/// Pull, create, start: whatever each container is ready for.
fn drive_start(id: &TaskId, task: &mut TaskRecord, now: Instant, sink: &mut Sink) {
    for i in 0..task.containers.len() {
        let gate = match task.containers.get(i) {
            Some(rec) if rec.can_start() => deps::gate(task, i, now),
            _ => Gate::Wait(None),
        };
        let (Some(def), Some(rec)) = (
            task.definition.containers.get(i),
            task.containers.get_mut(i),
        ) else {
            continue;
        };
        let (task_id, container) = (id.clone(), rec.name.clone());
        let op = if rec.can_pull() {
            sink.act(Action::PullImage {
                task: task_id,
                container,
                image: def.image.clone(),
            });
            OpKind::Pull
        } else if rec.can_create() {
            sink.act(Action::CreateContainer {
                task: task_id,
                container,
            });
            OpKind::Create
        } else if rec.can_start() && gate == Gate::Open {
            sink.act(Action::StartContainer {
                task: task_id,
                container,
            });
            OpKind::Start
        } else {
            if let Gate::Wait(Some(deadline)) = gate {
                sink.wake(deadline);
            }
            continue;
        };
        rec.op = Some(PendingOp {
            kind: op,
            since: now,
        });
    }
}

/// Stops running containers whose dependents are down.
fn drive_stop(id: &TaskId, task: &mut TaskRecord, now: Instant, sink: &mut Sink) {
    let reason = task.stopped_reason.clone().unwrap_or_default();
    for i in 0..task.containers.len() {
        let may = deps::may_stop(task, i);
        let (Some(def), Some(rec)) = (
            task.definition.containers.get(i),
            task.containers.get_mut(i),
        ) else {
            continue;
        };
        if rec.op.is_some_and(|op| op.kind == OpKind::Pull) && !rec.stop_requested {
            // Not started yet: its pull is given up rather than waited for.
            rec.stop_requested = true;
            sink.act(Action::CancelPull {
                task: id.clone(),
                container: rec.name.clone(),
            });
            continue;
        }
        if !rec.can_stop() || !may {
            continue;
        }
        if let Some(t) = rec.not_before.filter(|t| now < *t) {
            sink.wake(t);
            continue;
        }
        rec.stop_requested = true;
        rec.op = Some(PendingOp {
            kind: OpKind::Stop,
            since: now,
        });
        let timeout = from_std(def.stop_timeout);
        sink.act(Action::StopContainer {
            task: id.clone(),
            container: rec.name.clone(),
            timeout,
            reason: reason.clone(),
        });
    }
}
