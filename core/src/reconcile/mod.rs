//! The reconciler: from (desired, observed, now) to actions. Pure and deterministic:
//! no I/O, no tokio, no clock reads, no RNG. Time comes in as
//! [`embassy_time::Instant`]; jitter comes from a seed in [`Config`].
//!
//! It owns the task records ([`Observed`]): the executor feeds it facts with
//! [`Reconciler::observe`], asks for decisions with [`Reconciler::reconcile`], and
//! persists [`Reconciler::snapshot`]. ECS semantics: essential containers,
//! `dependsOn` with `startTimeout`, health checks, `restartPolicy`, services with
//! rolling updates, backoff, crash-loop detection and the deployment circuit breaker.
//!
//! Files, one job each: `model` (desired state, config), `observed` (task records,
//! allowed transitions), `actions` (actions, observations, events), `observe`
//! (folding observations in), `container` (one task's life), `deps` (dependsOn),
//! [`health`], `backoff` (relaunch backoff, crash loops), `service` (rolling
//! updates, circuit breaker), [`time`].
//!
//! Departures from ECS, on purpose: a deployment completes only once its tasks have
//! served for a stability window (see `service`), so failures inside it still trip the
//! breaker; an unhealthy service task is stopped at once and
//! its replacement follows after backoff (ECS may start the replacement first); a
//! deployment whose
//! circuit breaker trips with nothing to roll back to keeps relaunching under backoff
//! (there is no operator on the device to restart it); when `minimumHealthyPercent`
//! and `maximumPercent` leave no room to move, the minimum gives way.

mod actions;
mod backoff;
mod container;
mod deps;
mod event_text;
pub mod health;
mod model;
mod observe;
mod observed;
#[cfg(test)]
mod props;
mod service;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rollback;
#[cfg(test)]
mod testutil;
pub mod time;

use std::collections::BTreeMap;

use embassy_time::Instant;
use serde::{Deserialize, Serialize};

pub use actions::{Action, Decision, Event, Observation};
pub use backoff::{delay as backoff_delay, Backoff};
pub use container::restart_allowed;
pub use model::{
    default_stability_window, CircuitBreaker, Config, DeploymentConfig, Desired, ServiceSpec,
    TaskId, MIN_STABILITY_WINDOW,
};
pub use observe::RESTART_RETRIES;
pub use observed::{
    CheckOutcome, CheckResult, ContainerRecord, ContainerState, ExitReason, HealthRecord,
    HealthStatus, Observed, OpKind, Owner, PendingOp, TaskPhase, TaskRecord,
};
pub use service::{Deployment, ServiceState};

use crate::spec::{LogDriver, TaskDefinition};
use container::stop_task;

/// The reconciler. Call contract (quinn-proto style; the caller is the driver):
///
/// 1. Build it with [`Reconciler::new`], or [`Reconciler::restore`] from a persisted
///    [`Snapshot`] after an agent restart.
/// 2. Whenever the executor learns a fact (an action's answer, an exit, a health
///    result, a container found on re-adoption), call [`Reconciler::observe`] with it
///    and the instant it was seen. Observations never produce actions by themselves.
/// 3. After a batch of observations, when the desired state changed, and when the
///    timer fires, call [`Reconciler::reconcile`]. Carry out its actions, report
///    events, and (re)arm the single timer at [`Decision::next_wakeup`].
/// 4. Answer every action except `Report` with an observation for the same target,
///    success or [`Observation::Failed`]; until then nothing else is issued on it
///    (after a timeout from [`Config`] the action is issued again, so the executor
///    must treat repeats as idempotent).
/// 5. Persist [`Reconciler::snapshot`] after each call if it must survive a restart.
///
/// `now` must come from one monotonic clock; an earlier `now` than a previous call's
/// is taken as that previous one. Same inputs in the same order give the same
/// decisions.
#[derive(Debug, Clone)]
pub struct Reconciler {
    config: Config,
    state: Snapshot,
    last_now: Instant,
    pending: Sink,
}

/// Everything the reconciler knows, serde-able for the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The task records.
    pub observed: Observed,
    /// Per-service deployment and backoff state.
    pub services: BTreeMap<String, ServiceState>,
    /// Last service task number handed out.
    pub seq: u64,
    /// Position in the jitter stream.
    pub draws: u64,
}

/// What one call accumulates: actions, events, the earliest wakeup, failed tasks.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    pub(crate) actions: Vec<Action>,
    pub(crate) events: Vec<Event>,
    pub(crate) wakeup: Option<Instant>,
    pub(crate) failed: Vec<TaskId>,
    pub(crate) now: Instant,
    /// `!Config::journal`, for [`Sink::launched`].
    pub(crate) journal_absent: bool,
}

impl Default for Sink {
    fn default() -> Self {
        Self {
            actions: Vec::new(),
            events: Vec::new(),
            wakeup: None,
            failed: Vec::new(),
            now: Instant::from_ticks(0),
            journal_absent: false,
        }
    }
}

impl Sink {
    pub(crate) fn act(&mut self, a: Action) {
        self.actions.push(a);
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.events.push(e);
    }

    /// [`Event::TaskLaunched`], then [`Event::LogsKeptOnDevice`] when any of the
    /// task's containers asks for awslogs, and [`Event::JournalAbsent`] when any asks
    /// for journald on a host without a journal.
    pub(crate) fn launched(
        &mut self,
        task: &TaskId,
        service: Option<String>,
        def: &TaskDefinition,
    ) {
        self.event(Event::TaskLaunched {
            task: task.clone(),
            service,
            revision: def.revision_id(),
        });
        let streams: Vec<(String, Option<String>)> = def
            .containers
            .iter()
            .filter_map(|c| match &c.log {
                LogDriver::Awslogs(aws) => {
                    Some((c.name.clone(), aws.stream_name(&c.name, &task.0)))
                }
                _ => None,
            })
            .collect();
        if !streams.is_empty() {
            self.event(Event::LogsKeptOnDevice {
                task: task.clone(),
                streams,
            });
        }
        let journald: Vec<String> = def
            .containers
            .iter()
            .filter(|c| matches!(c.log, LogDriver::Journald(_)))
            .map(|c| c.name.clone())
            .collect();
        if self.journal_absent && !journald.is_empty() {
            self.event(Event::JournalAbsent {
                task: task.clone(),
                containers: journald,
            });
        }
    }

    /// Asks to be called again at `at` (ignored unless later than now).
    pub(crate) fn wake(&mut self, at: Instant) {
        if at > self.now {
            self.wakeup = time::earliest(self.wakeup, Some(at));
        }
    }
}

impl Reconciler {
    /// A reconciler with no tasks.
    pub fn new(config: Config) -> Self {
        Self::restore(config, Snapshot::default())
    }

    /// A reconciler resuming from `snapshot`. Operations that were in flight are
    /// forgotten (they are issued again if still needed).
    pub fn restore(config: Config, mut snapshot: Snapshot) -> Self {
        for t in snapshot.observed.tasks.values_mut() {
            t.op = None;
            for c in &mut t.containers {
                c.op = None;
                c.health.in_flight_until = None;
            }
        }
        snapshot.seq = snapshot
            .seq
            .max(service::max_launch_order(&snapshot.observed.tasks));
        Self {
            config,
            state: snapshot,
            last_now: Instant::from_ticks(0),
            pending: Sink::default(),
        }
    }

    /// The task records (the executor reads definitions here).
    pub fn observed(&self) -> &Observed {
        &self.state.observed
    }

    /// Everything to persist.
    pub fn snapshot(&self) -> &Snapshot {
        &self.state
    }

    /// Feeds one fact seen at `now`. Its consequences come out of the next
    /// [`Reconciler::reconcile`].
    pub fn observe(&mut self, obs: Observation, now: Instant) {
        let now = self.clamp(now);
        self.pending.now = now;
        observe::apply(
            &mut self.state.observed,
            obs,
            &self.config,
            now,
            &mut self.pending,
        );
    }

    /// Decides what to do at `now` to move `observed` towards `desired`.
    pub fn reconcile(&mut self, desired: &Desired, now: Instant) -> Decision {
        let now = self.clamp(now);
        let mut sink = std::mem::take(&mut self.pending);
        sink.now = now;
        sink.wakeup = None;
        sink.journal_absent = !self.config.journal;
        for (id, task) in self.state.observed.tasks.iter_mut() {
            container::assess_task(id, task, &self.config, now, &mut sink);
        }
        self.account_failures(desired, now, &mut sink);
        self.plan_standalone(desired, now, &mut sink);
        self.plan_services(desired, now, &mut sink);
        for (id, task) in self.state.observed.tasks.iter_mut() {
            container::drive_task(id, task, &self.config, now, &mut sink);
        }
        // Reports first: they tell what happened before (or led to) the actions.
        let mut actions: Vec<Action> = sink.events.into_iter().map(Action::Report).collect();
        actions.extend(sink.actions);
        Decision {
            actions,
            next_wakeup: sink.wakeup,
        }
    }

    fn clamp(&mut self, now: Instant) -> Instant {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn plan_standalone(&mut self, desired: &Desired, now: Instant, sink: &mut Sink) {
        let tasks = &mut self.state.observed.tasks;
        // A standalone task that ended by itself stays as a tombstone while its
        // definition is still desired (it ran once); one stopped because it was no
        // longer wanted is forgotten, so the same definition coming back runs anew.
        tasks.retain(|id, t| match &t.owner {
            Owner::Standalone => {
                t.phase != TaskPhase::Deleted
                    || (t.failed && desired.tasks.get(id) == Some(&t.definition))
            }
            Owner::Service(_) => t.phase != TaskPhase::Deleted,
        });
        for (id, t) in tasks.iter_mut() {
            if t.owner != Owner::Standalone {
                continue;
            }
            match desired.tasks.get(id) {
                None => stop_task(id, t, "Task stopped by user".to_owned(), false, sink),
                Some(def) if *def != t.definition => {
                    stop_task(id, t, "Task definition changed".to_owned(), false, sink)
                }
                Some(_) => {}
            }
        }
        for (id, def) in &desired.tasks {
            if !tasks.contains_key(id) {
                tasks.insert(
                    id.clone(),
                    TaskRecord::new(Owner::Standalone, def.clone(), now),
                );
                sink.launched(id, None, def);
            }
        }
    }

    fn plan_services(&mut self, desired: &Desired, now: Instant, sink: &mut Sink) {
        let Snapshot {
            observed,
            services,
            seq,
            ..
        } = &mut self.state;
        service::stop_undesired(&desired.services, &mut observed.tasks, sink);
        services.retain(|name, _| {
            desired.services.contains_key(name)
                || observed
                    .tasks
                    .values()
                    .any(|t| t.owner == Owner::Service(name.clone()))
        });
        let mut cx = service::Ctx {
            cfg: &self.config,
            tasks: &mut observed.tasks,
            seq,
            now,
        };
        for (name, spec) in &desired.services {
            service::plan(
                name,
                spec,
                services.entry(name.clone()).or_default(),
                &mut cx,
                sink,
            );
        }
    }

    fn account_failures(&mut self, desired: &Desired, now: Instant, sink: &mut Sink) {
        let failed = std::mem::take(&mut sink.failed);
        let Snapshot {
            observed,
            services,
            seq,
            draws,
        } = &mut self.state;
        let cx = service::Ctx {
            cfg: &self.config,
            tasks: &mut observed.tasks,
            seq,
            now,
        };
        for id in failed {
            let Some(task) = cx.tasks.get(&id) else {
                continue;
            };
            let Owner::Service(name) = &task.owner else {
                continue;
            };
            *draws = draws.wrapping_add(1);
            let random =
                backoff::splitmix64(self.config.seed ^ draws.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let st = services.entry(name.clone()).or_default();
            service::on_failure(
                name,
                desired.services.get(name),
                st,
                task,
                &cx,
                random,
                sink,
            );
        }
    }
}
