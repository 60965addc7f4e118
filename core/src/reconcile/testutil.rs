//! Test fixtures: definition builders and a small fake executor that answers the
//! reconciler's actions, driven by a hand-moved clock.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use embassy_time::{Duration, Instant};

use super::*;
use crate::spec::{
    ContainerDefinition, HealthCheck, HealthCommand, NamespaceMode, NetworkMode, RestartPolicy,
    TaskDefinition,
};

pub(crate) fn generate_test_container(name: &str) -> ContainerDefinition {
    ContainerDefinition::new(name, format!("registry.local/{name}:1"))
}

pub(crate) fn generate_test_task(containers: Vec<ContainerDefinition>) -> TaskDefinition {
    TaskDefinition {
        family: "fam".into(),
        revision: 1,
        network_mode: NetworkMode::Host,
        pid_mode: NamespaceMode::Private,
        ipc_mode: NamespaceMode::Private,
        volumes: vec![],
        cpu_units: None,
        memory_mib: None,
        containers,
    }
}

pub(crate) fn generate_test_health_check(
    interval: u64,
    retries: u32,
    start_period: u64,
) -> HealthCheck {
    HealthCheck {
        command: HealthCommand::Shell("true".into()),
        interval: StdDuration::from_secs(interval),
        timeout: StdDuration::from_secs(5),
        retries,
        start_period: StdDuration::from_secs(start_period),
    }
}

pub(crate) fn generate_test_restart_policy(period: u64, ignored: Vec<i32>) -> RestartPolicy {
    RestartPolicy {
        enabled: true,
        ignored_exit_codes: ignored,
        restart_attempt_period: StdDuration::from_secs(period),
    }
}

pub(crate) fn generate_test_service(def: TaskDefinition, desired_count: u32) -> ServiceSpec {
    ServiceSpec {
        task_definition: def,
        desired_count,
        deployment: DeploymentConfig::default(),
    }
}

pub(crate) fn record(def: TaskDefinition) -> TaskRecord {
    TaskRecord::new(Owner::Standalone, def, Instant::from_ticks(0))
}

/// The fake executor's answer to a health check or a start, per container name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    Pass,
    Fail,
    /// No answer at all (the reconciler times it out).
    Silent,
}

/// A reconciler plus a fake executor and a clock moved by hand.
pub(crate) struct Harness {
    pub r: Reconciler,
    pub desired: Desired,
    pub now: Instant,
    pub health: BTreeMap<String, Script>,
    pub pull_fails: bool,
    /// In-place restarts still to fail.
    pub restart_fails: u32,
    pub log: Vec<Action>,
    pid: u32,
}

impl Harness {
    pub(crate) fn new(desired: Desired) -> Self {
        Self {
            r: Reconciler::new(Config::default()),
            desired,
            now: Instant::from_secs(1000),
            health: BTreeMap::new(),
            pull_fails: false,
            restart_fails: 0,
            log: vec![],
            pid: 100,
        }
    }

    /// One reconcile at the current time.
    pub(crate) fn reconcile(&mut self) -> Decision {
        let d = self.r.reconcile(&self.desired, self.now);
        self.log.extend(d.actions.iter().cloned());
        d
    }

    /// Answers `actions` as a well-behaved executor would, instantly.
    pub(crate) fn answer(&mut self, actions: &[Action]) {
        for a in actions {
            let obs = match a.clone() {
                Action::PullImage {
                    task, container, ..
                } if self.pull_fails => Observation::Failed {
                    task,
                    container: Some(container),
                    op: OpKind::Pull,
                    error: "no such image".into(),
                },
                Action::PullImage {
                    task, container, ..
                } => Observation::ImagePulled { task, container },
                Action::CreateContainer { task, container } => {
                    Observation::Created { task, container }
                }
                Action::RestartContainer {
                    task, container, ..
                } if self.restart_fails > 0 => {
                    self.restart_fails -= 1;
                    Observation::Failed {
                        task,
                        container: Some(container),
                        op: OpKind::Restart,
                        error: "No space left on device".into(),
                    }
                }
                Action::StartContainer { task, container }
                | Action::RestartContainer {
                    task, container, ..
                } => {
                    self.pid += 1;
                    Observation::Started {
                        task,
                        container,
                        pid: self.pid,
                    }
                }
                Action::StopContainer {
                    task, container, ..
                } => Observation::Exited {
                    task,
                    container,
                    code: 143,
                    reason: ExitReason::Killed,
                },
                Action::DeleteTask { task } => Observation::TaskDeleted { task },
                Action::RunHealthCheck {
                    task, container, ..
                } => match self.script(&task, &container) {
                    Script::Pass => Observation::HealthCheckDone {
                        task,
                        container,
                        outcome: CheckOutcome::Pass,
                    },
                    Script::Fail => Observation::HealthCheckDone {
                        task,
                        container,
                        outcome: CheckOutcome::Fail,
                    },
                    Script::Silent => continue,
                },
                Action::Report(_) | Action::CancelPull { .. } => continue,
            };
            self.r.observe(obs, self.now);
        }
    }

    /// The health script for a container: by its image first, then by its name.
    fn script(&self, task: &TaskId, container: &str) -> Script {
        let image = self
            .r
            .observed()
            .tasks
            .get(task)
            .and_then(|t| t.container(container))
            .map(|(d, _)| d.image.clone())
            .unwrap_or_default();
        self.health
            .get(&image)
            .or_else(|| self.health.get(container))
            .copied()
            .unwrap_or(Script::Pass)
    }

    /// Reconciles and answers until nothing but reports comes out (at most 50 rounds).
    pub(crate) fn settle(&mut self) -> Option<Instant> {
        for _ in 0..50 {
            let d = self.reconcile();
            if d.actions.iter().all(|a| matches!(a, Action::Report(_))) {
                return d.next_wakeup;
            }
            self.answer(&d.actions);
        }
        panic!("did not settle");
    }

    /// Moves the clock to the next wakeup (or by `max`, whichever is sooner), settling.
    pub(crate) fn run_for(&mut self, total: Duration) {
        let end = self.now + total;
        let mut wake = self.settle();
        while let Some(w) = wake.filter(|w| *w <= end) {
            self.now = w;
            wake = self.settle();
        }
        self.now = end;
        self.settle();
    }

    /// Like [`Harness::run_for`] in steps of `step`: before each step settles, every
    /// running container that `crash` picks (state, task, container, now) exits with
    /// code 1.
    pub(crate) fn run_crashing(
        &mut self,
        total: Duration,
        step: Duration,
        crash: impl Fn(&Snapshot, &TaskRecord, &ContainerRecord, Instant) -> bool,
    ) {
        let end = self.now + total;
        self.settle();
        while self.now < end {
            self.now = (self.now + step).min(end);
            let now = self.now;
            let snap = self.r.snapshot();
            let crash = &crash;
            let due: Vec<(TaskId, String)> = snap
                .observed
                .tasks
                .iter()
                .flat_map(|(id, t)| {
                    t.containers
                        .iter()
                        .filter(move |c| c.is_running() && crash(snap, t, c, now))
                        .map(move |c| (id.clone(), c.name.clone()))
                })
                .collect();
            for (t, c) in due {
                self.exit(&t.0, &c, 1);
            }
            self.settle();
        }
    }

    pub(crate) fn exit(&mut self, task: &str, container: &str, code: i32) {
        self.exit_for(task, container, code, ExitReason::Exited);
    }

    pub(crate) fn exit_for(&mut self, task: &str, container: &str, code: i32, reason: ExitReason) {
        self.r.observe(
            Observation::Exited {
                task: task.into(),
                container: container.into(),
                code,
                reason,
            },
            self.now,
        );
    }

    pub(crate) fn task(&self, id: &str) -> &TaskRecord {
        &self.r.observed().tasks[&TaskId::from(id)]
    }

    pub(crate) fn state(&self, task: &str, container: &str) -> ContainerState {
        self.task(task)
            .container(container)
            .map(|(_, r)| r.state.clone())
            .unwrap_or(ContainerState::Pending)
    }

    pub(crate) fn events(&self) -> impl Iterator<Item = &Event> {
        self.log.iter().filter_map(|a| match a {
            Action::Report(e) => Some(e),
            _ => None,
        })
    }

    pub(crate) fn service_tasks(&self, service: &str) -> Vec<(TaskId, TaskRecord)> {
        self.r
            .observed()
            .tasks
            .iter()
            .filter(|(_, t)| t.owner == Owner::Service(service.into()))
            .map(|(i, t)| (i.clone(), t.clone()))
            .collect()
    }
}
