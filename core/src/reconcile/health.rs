//! Health checks (ECS rules on Docker's): when to run a container's check, how a
//! result moves its status, and what a task's health is.
//!
//! - Status is UNKNOWN until the first counted result.
//! - The first check runs `interval` after the container starts, the next `interval`
//!   after the previous answer. Each runs with `timeout`; no answer by then (plus the
//!   config's grace) counts as a timeout, and a timeout is a failure.
//! - Failures within `startPeriod` of the start do not count; one success counts.
//! - One success → HEALTHY; `retries` consecutive counted failures → UNHEALTHY.
//! - A task is UNHEALTHY if any essential container is, HEALTHY if every essential
//!   container with a check is, else UNKNOWN.

use embassy_time::Instant;

use super::actions::{Action, Event};
use super::model::{Config, TaskId};
use super::observed::{
    check_of, CheckOutcome, CheckResult, ContainerRecord, HealthRecord, HealthStatus, TaskRecord,
};
use super::time::{after, from_std};
use super::Sink;
use crate::spec::{ContainerDefinition, HealthCheck};

/// Resets health after a (re)start at `now` and schedules the first check.
pub(super) fn on_started(def: &ContainerDefinition, rec: &mut ContainerRecord, now: Instant) {
    rec.health = HealthRecord::new();
    rec.health.next_check_at = check_of(def).map(|hc| after(now, from_std(hc.interval)));
}

/// Counts one result that came at `now`. Results with no check in flight are stale
/// and ignored. Returns the new status if it changed.
pub(super) fn on_result(
    hc: &HealthCheck,
    rec: &mut ContainerRecord,
    outcome: CheckOutcome,
    now: Instant,
) -> Option<HealthStatus> {
    rec.health.in_flight_until.take()?;
    let before = rec.health.status;
    let h = &mut rec.health;
    h.last_result = Some(CheckResult { outcome, at: now });
    h.next_check_at = Some(after(now, from_std(hc.interval)));
    let in_start_period = rec
        .last_started_at
        .is_some_and(|s| now < after(s, from_std(hc.start_period)));
    match outcome {
        CheckOutcome::Pass => {
            h.consecutive_failures = 0;
            h.status = HealthStatus::Healthy;
        }
        CheckOutcome::Fail | CheckOutcome::Timeout if in_start_period => {}
        CheckOutcome::Fail | CheckOutcome::Timeout => {
            h.consecutive_failures = h.consecutive_failures.saturating_add(1);
            if h.consecutive_failures >= hc.retries.max(1) {
                h.status = HealthStatus::Unhealthy;
            }
        }
    }
    (h.status != before).then_some(h.status)
}

/// Counts unanswered checks past their deadline as timeouts.
pub(super) fn expire(id: &TaskId, task: &mut TaskRecord, now: Instant, sink: &mut Sink) {
    for (def, rec) in task
        .definition
        .containers
        .iter()
        .zip(task.containers.iter_mut())
    {
        let Some(hc) = check_of(def) else { continue };
        if !rec.is_running() || rec.health.in_flight_until.is_none_or(|t| now < t) {
            continue;
        }
        if let Some(status) = on_result(hc, rec, CheckOutcome::Timeout, now) {
            let container = rec.name.clone();
            sink.event(Event::HealthChanged {
                task: id.clone(),
                container,
                status,
            });
        }
    }
}

/// Issues due checks on running containers; asks to be woken for the next due time
/// or deadline.
pub(super) fn schedule(
    id: &TaskId,
    task: &mut TaskRecord,
    cfg: &Config,
    now: Instant,
    sink: &mut Sink,
) {
    for (def, rec) in task
        .definition
        .containers
        .iter()
        .zip(task.containers.iter_mut())
    {
        let Some(hc) = check_of(def) else { continue };
        if !rec.is_running() {
            continue;
        }
        if let Some(deadline) = rec.health.in_flight_until {
            sink.wake(deadline);
            continue;
        }
        let due = *rec
            .health
            .next_check_at
            .get_or_insert(after(now, from_std(hc.interval)));
        if now < due {
            sink.wake(due);
            continue;
        }
        let timeout = from_std(hc.timeout);
        let deadline = after(after(now, timeout), cfg.grace);
        rec.health.in_flight_until = Some(deadline);
        sink.wake(deadline);
        let (task, container, command) = (id.clone(), rec.name.clone(), hc.command.clone());
        sink.act(Action::RunHealthCheck {
            task,
            container,
            command,
            timeout,
        });
    }
}

/// ECS task health: over essential containers only.
pub fn task_health(task: &TaskRecord) -> HealthStatus {
    let mut all_healthy = true;
    for (def, rec) in task.definition.containers.iter().zip(&task.containers) {
        if !def.essential || check_of(def).is_none() {
            continue;
        }
        match rec.health.status {
            HealthStatus::Unhealthy => return HealthStatus::Unhealthy,
            HealthStatus::Unknown => all_healthy = false,
            HealthStatus::Healthy => {}
        }
    }
    if all_healthy {
        HealthStatus::Healthy
    } else {
        HealthStatus::Unknown
    }
}

/// A service task counts as serving: every essential container runs, and every
/// essential container with a health check is HEALTHY.
pub fn serving(task: &TaskRecord) -> bool {
    let essentials_run = task
        .definition
        .containers
        .iter()
        .zip(&task.containers)
        .filter(|(d, _)| d.essential)
        .all(|(_, r)| r.is_running());
    essentials_run && task_health(task) == HealthStatus::Healthy
}
