//! Folding the executor's [`Observation`]s into the task records. Observations are
//! facts: they apply whatever the record said, except health results that answer no
//! issued check (stale) and anything about an unknown task or container (ignored).
//! A failed pull, create, start or restart fails the task, as in ECS; a failed stop
//! or delete is retried after `retry_delay`.

use embassy_time::Instant;

use super::actions::{Event, Observation};
use super::container::stop_task;
use super::health;
use super::model::{Config, TaskId};
use super::observed::{check_of, CheckOutcome, ContainerState, Observed, OpKind};
use super::time::after;
use super::Sink;

/// Applies `obs`, seen at `now`.
pub(super) fn apply(
    observed: &mut Observed,
    obs: Observation,
    cfg: &Config,
    now: Instant,
    sink: &mut Sink,
) {
    match obs {
        Observation::ImagePulled { task, container } => {
            with(observed, &task, &container, |_, rec| {
                rec.image_ready = true;
                clear(&mut rec.op, &[OpKind::Pull]);
            })
        }
        Observation::Created { task, container } => with(observed, &task, &container, |_, rec| {
            rec.state = ContainerState::Created;
            rec.image_ready = true;
            clear(&mut rec.op, &[OpKind::Create]);
        }),
        Observation::Started {
            task,
            container,
            pid,
        } => with(observed, &task, &container, |def, rec| {
            rec.state = ContainerState::Running {
                pid,
                started_at: now,
            };
            rec.last_started_at = Some(now);
            rec.stop_requested = false;
            rec.restart_failures = 0;
            rec.not_before = None;
            clear(&mut rec.op, &[OpKind::Start, OpKind::Restart]);
            health::on_started(def, rec, now);
        }),
        Observation::Exited {
            task,
            container,
            code,
            reason,
        } => {
            with(observed, &task, &container, |_, rec| {
                rec.state = ContainerState::Exited {
                    code,
                    reason,
                    finished_at: now,
                };
                clear(&mut rec.op, &[OpKind::Start, OpKind::Restart, OpKind::Stop]);
                rec.health.in_flight_until = None;
            });
            if observed.tasks.contains_key(&task) {
                sink.event(Event::ContainerExited {
                    task,
                    container,
                    code,
                    reason,
                });
            }
        }
        Observation::HealthCheckDone {
            task,
            container,
            outcome,
        } => health_result(observed, &task, &container, outcome, now, sink),
        Observation::TaskDeleted { task } => {
            if let Some(t) = observed.tasks.get_mut(&task) {
                t.phase = super::TaskPhase::Deleted;
                t.op = None;
            }
        }
        Observation::Failed {
            task,
            container,
            op,
            error,
        } => failed(observed, &task, container, op, error, cfg, now, sink),
    }
}

/// Failed in-place restarts retried (after `retry_delay`) before the task stops.
pub const RESTART_RETRIES: u32 = 3;

#[allow(clippy::too_many_arguments)]
fn failed(
    observed: &mut Observed,
    id: &TaskId,
    container: Option<String>,
    op: OpKind,
    error: String,
    cfg: &Config,
    now: Instant,
    sink: &mut Sink,
) {
    let Some(task) = observed.tasks.get_mut(id) else {
        return;
    };
    sink.event(Event::ActionFailed {
        task: id.clone(),
        container: container.clone(),
        op,
        error: error.clone(),
    });
    let Some(name) = container else {
        if op == OpKind::Delete {
            task.op = None;
            task.not_before = Some(after(now, cfg.retry_delay));
        }
        return;
    };
    if op == OpKind::HealthCheck {
        return health_result(observed, id, &name, CheckOutcome::Fail, now, sink);
    }
    let Some(rec) = task.container_mut(&name) else {
        return;
    };
    clear(&mut rec.op, &[op]);
    if op == OpKind::Restart && rec.restart_failures < RESTART_RETRIES {
        // Often passing (a full disk, a busy system): tried again before giving up.
        rec.restart_failures += 1;
        rec.not_before = Some(after(now, cfg.retry_delay));
        return;
    }
    let what = match op {
        OpKind::Pull => "CannotPullContainerError",
        OpKind::Create => "CannotCreateContainerError",
        OpKind::Start | OpKind::Restart => "CannotStartContainerError",
        OpKind::Stop => {
            rec.not_before = Some(after(now, cfg.retry_delay));
            return;
        }
        OpKind::HealthCheck | OpKind::Delete => return,
    };
    stop_task(id, task, format!("{what}: {name}: {error}"), true, sink);
}

fn health_result(
    observed: &mut Observed,
    id: &TaskId,
    name: &str,
    outcome: CheckOutcome,
    now: Instant,
    sink: &mut Sink,
) {
    let Some(task) = observed.tasks.get_mut(id) else {
        return;
    };
    let Some(i) = task.containers.iter().position(|c| c.name == name) else {
        return;
    };
    let (Some(def), Some(rec)) = (
        task.definition.containers.get(i),
        task.containers.get_mut(i),
    ) else {
        return;
    };
    let Some(hc) = check_of(def) else { return };
    if let Some(status) = health::on_result(hc, rec, outcome, now) {
        sink.event(Event::HealthChanged {
            task: id.clone(),
            container: name.to_owned(),
            status,
        });
    }
}

fn with(
    observed: &mut Observed,
    id: &TaskId,
    name: &str,
    f: impl FnOnce(&crate::spec::ContainerDefinition, &mut super::ContainerRecord),
) {
    let Some(task) = observed.tasks.get_mut(id) else {
        return;
    };
    let Some(i) = task.containers.iter().position(|c| c.name == name) else {
        return;
    };
    if let (Some(def), Some(rec)) = (
        task.definition.containers.get(i),
        task.containers.get_mut(i),
    ) {
        f(def, rec);
    }
}

fn clear(op: &mut Option<super::PendingOp>, kinds: &[OpKind]) {
    if op.is_some_and(|o| kinds.contains(&o.kind)) {
        *op = None;
    }
}
