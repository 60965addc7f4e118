//! Services: keep `desiredCount` tasks serving; roll a new revision out within
//! `minimumHealthyPercent` / `maximumPercent`; back off relaunches after failures;
//! trip the deployment circuit breaker and roll back.
//!
//! Per call, for each desired service: (1) a changed definition starts a deployment;
//! (2) a task serving for `backoff_reset` in a row forgives past failures; (3) the breaker's
//! deadline is checked; (4) tasks of another revision that do not serve are stopped,
//! serving ones while enough others serve, surplus tasks of the target revision too;
//! (5) tasks of the target revision are launched while fewer than desired exist, the
//! live count stays within the maximum and backoff allows; (6) the deployment
//! completes when only the target revision is live and `desiredCount` of its tasks
//! have served for the stability window, continuously.
//!
//! A task counts as serving once healthy, or running if it has no health check; a
//! task of the target revision counts towards `minimumHealthyPercent` (so lets an old
//! one stop) only once it has served for the window. Until the deployment completes,
//! every failed task of the new revision (an exit, a failed health check) counts for
//! the circuit breaker, which rolls back to the last *completed* revision; a rollback
//! forgives the service's backoff, so the known-good revision comes back after the
//! floor, not after the broken one's longest wait. After completion a failure is an
//! ordinary relaunch under backoff.

use std::collections::BTreeMap;

use embassy_time::Instant;
use serde::{Deserialize, Serialize};

use super::actions::Event;
use super::backoff::Backoff;
use super::container::stop_task;
use super::health::serving;
use super::model::{Config, ServiceSpec, TaskId};
use super::observed::{Owner, TaskPhase, TaskRecord};
use super::time::{after, instant};
use super::Sink;
use crate::spec::TaskDefinition;

/// What the reconciler remembers about one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The last revision whose deployment completed (the rollback target).
    pub stable: Option<TaskDefinition>,
    /// The latest deployment.
    pub deployment: Option<Deployment>,
    /// Relaunch backoff.
    pub backoff: Backoff,
}

/// One deployment of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The revision asked for.
    pub definition: TaskDefinition,
    /// When it began.
    #[serde(with = "instant")]
    pub started_at: Instant,
    /// Failed tasks of `definition` so far.
    pub failures: u32,
    /// The circuit breaker fired (no further checks).
    pub tripped: bool,
    /// The service went back to `stable`.
    pub rolled_back: bool,
    /// The target revision is fully rolled out.
    pub completed: bool,
}

/// Mutable context of one service's planning.
pub(super) struct Ctx<'a> {
    pub cfg: &'a Config,
    pub tasks: &'a mut BTreeMap<TaskId, TaskRecord>,
    pub seq: &'a mut u64,
    pub now: Instant,
}

fn owned_by<'a>(
    tasks: &'a BTreeMap<TaskId, TaskRecord>,
    name: &'a str,
) -> impl Iterator<Item = (&'a TaskId, &'a TaskRecord)> + 'a {
    tasks
        .iter()
        .filter(move |(_, t)| matches!(&t.owner, Owner::Service(s) if s == name))
}

/// Plans one desired service.
pub(super) fn plan(
    name: &str,
    spec: &ServiceSpec,
    st: &mut ServiceState,
    cx: &mut Ctx<'_>,
    sink: &mut Sink,
) {
    let now = cx.now;
    if st.deployment.as_ref().map(|d| &d.definition) != Some(&spec.task_definition) {
        let revision = spec.task_definition.revision_id();
        st.deployment = Some(Deployment {
            definition: spec.task_definition.clone(),
            started_at: now,
            failures: 0,
            tripped: false,
            rolled_back: false,
            completed: false,
        });
        sink.event(Event::DeploymentStarted {
            service: name.to_owned(),
            revision,
        });
    }
    let Some(dep) = st.deployment.as_mut() else {
        return;
    };
    let target = match (&st.stable, dep.rolled_back) {
        (Some(stable), true) => stable.clone(),
        _ => dep.definition.clone(),
    };
    let window = spec.deployment.stability_window(&target, cx.cfg.grace);
    let settled = |t: &TaskRecord| {
        t.phase == TaskPhase::Active
            && serving(t)
            && t.serving_since.is_some_and(|s| now >= after(s, window))
    };
    for t in cx
        .tasks
        .values_mut()
        .filter(|t| matches!(&t.owner, Owner::Service(s) if s == name))
    {
        if t.phase != TaskPhase::Active || !serving(t) {
            t.serving_since = None;
            continue;
        }
        let since = *t.serving_since.get_or_insert(now);
        let proven_at = after(since, cx.cfg.backoff_reset);
        if t.proven {
            continue;
        }
        if now >= proven_at {
            t.proven = true;
            st.backoff.on_serving();
        } else {
            sink.wake(proven_at);
        }
    }
    if let Some(cb) = spec
        .deployment
        .circuit_breaker
        .as_ref()
        .filter(|_| !dep.tripped && !dep.completed)
    {
        let deadline = after(dep.started_at, cb.deadline);
        if now >= deadline {
            let reason = format!(
                "deployment did not reach {} tasks serving for {}s within {}s",
                spec.desired_count,
                window.as_secs(),
                cb.deadline.as_secs()
            );
            trip(name, dep, &st.stable, cb.rollback, reason, sink);
            if dep.rolled_back {
                st.backoff.forgive(cx.cfg.backoff_floor);
            }
        } else {
            sink.wake(deadline);
        }
    }

    let desired = spec.desired_count;
    let max_live = spec.deployment.max_tasks(desired);
    let min_serving = spec.deployment.min_serving(desired);
    // (id, of the target revision, serving, counts towards the minimum)
    let active: Vec<(TaskId, bool, bool, bool)> = owned_by(cx.tasks, name)
        .filter(|(_, t)| t.phase == TaskPhase::Active)
        .map(|(id, t)| {
            let is_target = t.definition == target;
            let counts = if is_target { settled(t) } else { serving(t) };
            (id.clone(), is_target, serving(t), counts)
        })
        .collect();
    let mut counted = active.iter().filter(|a| a.3).count();
    let mut old: Vec<TaskId> = Vec::new();
    for (id, ..) in active.iter().filter(|a| !a.1 && !a.2) {
        old.push(id.clone());
    }
    for (id, ..) in active.iter().filter(|a| !a.1 && a.2) {
        if counted > min_serving as usize {
            counted -= 1;
            old.push(id.clone());
        }
    }
    let mut stops: Vec<(TaskId, String)> = Vec::new();
    if !old.is_empty() {
        let replaced = format!(
            "Replaced by deployment of revision {}",
            target.revision_id()
        );
        stops.extend(old.into_iter().map(|id| (id, replaced.clone())));
    }
    let mut new: Vec<&(TaskId, bool, bool, bool)> = active.iter().filter(|a| a.1).collect();
    // Surplus of the target revision: drop non-serving ones first, newest first.
    new.sort_by_key(|a| (a.2, std::cmp::Reverse(launch_order(&a.0))));
    let surplus = new.len().saturating_sub(desired as usize);
    for (id, ..) in new.iter().take(surplus) {
        stops.push((
            id.clone(),
            "Scaling activity: desired count reduced".to_owned(),
        ));
    }
    for (id, reason) in stops {
        if let Some(t) = cx.tasks.get_mut(&id) {
            stop_task(&id, t, reason, false, sink);
        }
    }

    let mut live = owned_by(cx.tasks, name)
        .filter(|(_, t)| t.is_live())
        .count();
    let mut new_active = new.len() - surplus;
    while new_active < desired as usize && live < max_live as usize {
        if !st.backoff.ready(now) {
            if let Some(t) = st.backoff.next_launch_at {
                sink.wake(t);
            }
            break;
        }
        let id = next_id(name, cx.seq, cx.tasks);
        cx.tasks.insert(
            id.clone(),
            TaskRecord::new(Owner::Service(name.to_owned()), target.clone(), now),
        );
        sink.launched(&id, Some(name.to_owned()), &target);
        live += 1;
        new_active += 1;
    }

    if dep.completed {
        return;
    }
    let others_live = owned_by(cx.tasks, name).any(|(_, t)| t.is_live() && t.definition != target);
    let mut settled_new = 0;
    for (_, t) in owned_by(cx.tasks, name).filter(|(_, t)| t.definition == target) {
        if settled(t) {
            settled_new += 1;
        } else if let Some(since) = t
            .serving_since
            .filter(|_| t.phase == TaskPhase::Active && serving(t))
        {
            sink.wake(after(since, window));
        }
    }
    if !others_live && settled_new >= desired as usize {
        dep.completed = true;
        if !dep.rolled_back {
            st.stable = Some(target.clone());
        }
        sink.event(Event::DeploymentCompleted {
            service: name.to_owned(),
            revision: target.revision_id(),
        });
    }
}

/// Counts one failed task of the service; may trip the circuit breaker.
pub(super) fn on_failure(
    name: &str,
    spec: Option<&ServiceSpec>,
    st: &mut ServiceState,
    task: &TaskRecord,
    cx: &Ctx<'_>,
    random: u64,
    sink: &mut Sink,
) {
    if count_failure(name, spec, st, task, sink) {
        // Back to a revision that completed: the broken one's backoff does not apply.
        st.backoff.forgive(cx.cfg.backoff_floor);
    }
    st.backoff.on_failure(cx.cfg, name, cx.now, random, sink);
    if let Some(t) = st.backoff.next_launch_at {
        sink.wake(t);
    }
}

/// Counts a failed task against the deployment in progress; returns whether it
/// tripped the breaker into a rollback.
fn count_failure(
    name: &str,
    spec: Option<&ServiceSpec>,
    st: &mut ServiceState,
    task: &TaskRecord,
    sink: &mut Sink,
) -> bool {
    let (Some(spec), Some(dep)) = (spec, st.deployment.as_mut()) else {
        return false;
    };
    if dep.tripped || dep.completed || dep.rolled_back || task.definition != dep.definition {
        return false;
    }
    dep.failures = dep.failures.saturating_add(1);
    let Some(cb) = &spec.deployment.circuit_breaker else {
        return false;
    };
    let threshold = cb.threshold(spec.desired_count);
    if dep.failures < threshold {
        return false;
    }
    let reason = format!(
        "{} tasks of revision {} failed before it was stable (threshold {threshold})",
        dep.failures,
        dep.definition.revision_id()
    );
    trip(name, dep, &st.stable, cb.rollback, reason, sink);
    dep.rolled_back
}

fn trip(
    name: &str,
    dep: &mut Deployment,
    stable: &Option<TaskDefinition>,
    rollback: bool,
    reason: String,
    sink: &mut Sink,
) {
    dep.tripped = true;
    let service = name.to_owned();
    match stable
        .as_ref()
        .filter(|s| rollback && **s != dep.definition)
    {
        Some(to) => {
            dep.rolled_back = true;
            sink.event(Event::DeploymentRolledBack {
                service,
                from: dep.definition.revision_id(),
                to: to.revision_id(),
                reason,
            });
        }
        None => sink.event(Event::DeploymentFailed {
            service,
            revision: dep.definition.revision_id(),
            reason,
        }),
    }
}

/// Stops the tasks of services no longer desired.
pub(super) fn stop_undesired(
    desired: &BTreeMap<String, ServiceSpec>,
    tasks: &mut BTreeMap<TaskId, TaskRecord>,
    sink: &mut Sink,
) {
    for (id, t) in tasks.iter_mut() {
        if matches!(&t.owner, Owner::Service(s) if !desired.contains_key(s)) {
            stop_task(id, t, "Service deleted".to_owned(), false, sink);
        }
    }
}

/// The launch number in a service task id `<service>.<n>` (0 if none).
fn launch_order(id: &TaskId) -> u64 {
    id.0.rsplit_once('.')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

fn next_id(name: &str, seq: &mut u64, tasks: &BTreeMap<TaskId, TaskRecord>) -> TaskId {
    loop {
        *seq = seq.wrapping_add(1);
        let id = TaskId(format!("{name}.{seq}"));
        if !tasks.contains_key(&id) {
            return id;
        }
    }
}

/// The highest launch number among `tasks`, to resume numbering after a restore.
pub(super) fn max_launch_order(tasks: &BTreeMap<TaskId, TaskRecord>) -> u64 {
    tasks
        .iter()
        .filter(|(_, t)| matches!(t.owner, Owner::Service(_)))
        .map(|(id, _)| launch_order(id))
        .max()
        .unwrap_or(0)
}
