//! Property tests: random sequences of exits, health results, late or failed answers,
//! revision changes and time steps, checked after every `reconcile` against
//! invariants written independently of the reconciler's own code:
//!
//! 1. a launch never brings a service above `maximumPercent` of `desiredCount`;
//! 2. no container is started before each of its `dependsOn` conditions holds;
//! 3. no service task is launched sooner than the backoff floor after a failure,
//!    and no reported backoff is shorter than the floor;
//! 4. no action targets a container or task whose state does not allow it, and no
//!    second operation is issued while one is answered-and-not-overdue;
//! 5. no pull, create or start is issued for a task that is not active.
//!
//! And one outcome, over random rollout scenarios (count, percents, health check,
//! threshold, window, step size, an agent restart from the snapshot mid-way):
//!
//! 6. with the breaker enabled, a new revision whose tasks always fail (at start, or
//!    after running for less than the window) or always fail their health check ends
//!    rolled back: the previous revision serves `desiredCount` tasks again and the
//!    broken one never completed; one that crashes only after its deployment
//!    completed is restarted under backoff and never rolled back.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use embassy_time::{Duration, Instant};
use proptest::prelude::*;

use super::testutil::*;
use super::*;
use crate::spec::{Dependency, DependencyCondition, TaskDefinition};

/// Every operation times out after this in the test config (stopTimeout 30 + grace 5).
const OP_TIMEOUT: Duration = Duration::from_secs(35);

#[derive(Debug, Clone)]
enum Step {
    /// Move the clock by this many seconds.
    Advance(u64),
    /// Move the clock to the reconciler's wakeup.
    ToWakeup,
    /// Answer the outstanding action at this index (mod len): 0..8 success, else failure.
    Answer(usize, u8),
    /// Answer every outstanding action successfully.
    AnswerAll,
    /// The running container at this index (mod count) exits with this code.
    Exit(usize, i32),
    /// The outstanding health check at this index answers with pass (true) or fail.
    Health(usize, bool),
    /// The service moves to a new revision.
    NewRevision,
    /// The standalone task's file is removed, or put back (same definition).
    ToggleSolo,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u64..90).prop_map(Step::Advance),
        2 => Just(Step::ToWakeup),
        4 => (any::<usize>(), 0u8..10).prop_map(|(i, f)| Step::Answer(i, f)),
        2 => Just(Step::AnswerAll),
        2 => (any::<usize>(), prop_oneof![Just(0), Just(1), Just(137)]).prop_map(|(i, c)| Step::Exit(i, c)),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(i, p)| Step::Health(i, p)),
        1 => Just(Step::NewRevision),
        1 => Just(Step::ToggleSolo),
    ]
}

#[derive(Debug, Clone)]
struct Scenario {
    desired_count: u32,
    percents: (u32, u32),
    db_check: bool,
    condition: DependencyCondition,
    restart: bool,
    init: bool,
    breaker: bool,
    standalone: bool,
    steps: Vec<Step>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let cond = prop_oneof![
        Just(DependencyCondition::Start),
        Just(DependencyCondition::Healthy)
    ];
    let percents = prop_oneof![
        Just((100, 200)),
        Just((50, 150)),
        Just((0, 100)),
        Just((100, 150))
    ];
    (
        1u32..4,
        percents,
        any::<bool>(),
        cond,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(step(), 10..80),
    )
        .prop_map(
            |(
                desired_count,
                percents,
                db_check,
                condition,
                restart,
                init,
                breaker,
                standalone,
                steps,
            )| Scenario {
                desired_count,
                percents,
                db_check,
                condition: if db_check {
                    condition
                } else {
                    DependencyCondition::Start
                },
                restart,
                init,
                breaker,
                standalone,
                steps,
            },
        )
}

fn definition(s: &Scenario, revision: u32) -> TaskDefinition {
    let mut db = generate_test_container("db");
    if s.db_check {
        db.health_check = Some(generate_test_health_check(10, 2, 5));
        db.start_timeout = Some(StdDuration::from_secs(60));
    }
    let mut app = generate_test_container("app");
    app.depends_on = vec![Dependency {
        container: "db".into(),
        condition: s.condition,
    }];
    if s.restart {
        app.restart_policy = Some(generate_test_restart_policy(60, vec![0]));
    }
    let mut containers = vec![db];
    if s.init {
        let mut init = generate_test_container("init");
        init.essential = false;
        app.depends_on.push(Dependency {
            container: "init".into(),
            condition: DependencyCondition::Success,
        });
        containers.push(init);
    }
    containers.push(app);
    let mut def = generate_test_task(containers);
    def.revision = revision;
    def
}

fn config() -> Config {
    Config {
        pull_timeout: OP_TIMEOUT,
        op_timeout: OP_TIMEOUT,
        grace: Duration::from_secs(5),
        ..Config::default()
    }
}

/// The invariant checker: holds the state seen before each decision.
#[derive(Default)]
struct Checker {
    last_failure: BTreeMap<String, Instant>,
    checks: BTreeMap<&'static str, u64>,
}

impl Checker {
    fn count(&mut self, name: &'static str) {
        *self.checks.entry(name).or_default() += 1;
    }

    fn cond_holds(task: &TaskRecord, dep: &Dependency) -> bool {
        let Some((_, r)) = task.container(&dep.container) else {
            return false;
        };
        match dep.condition {
            DependencyCondition::Start => r.last_started_at.is_some(),
            DependencyCondition::Complete => matches!(r.state, ContainerState::Exited { .. }),
            DependencyCondition::Success => {
                matches!(r.state, ContainerState::Exited { code: 0, .. })
            }
            DependencyCondition::Healthy => r.health.status == HealthStatus::Healthy,
        }
    }

    fn op_free(rec: &ContainerRecord, now: Instant) -> bool {
        rec.op.is_none_or(|op| now >= op.since + OP_TIMEOUT)
    }

    fn check(
        &mut self,
        before: &Observed,
        after: &Reconciler,
        desired: &Desired,
        d: &Decision,
        now: Instant,
    ) {
        let floor = config().backoff_floor;
        // Tasks launched by this very call start from a fresh record (also one that
        // replaces the tombstone of the same id: only a relaunch leaves Deleted).
        let fresh: BTreeMap<TaskId, TaskRecord> = after
            .observed()
            .tasks
            .iter()
            .filter(|(id, t)| {
                before
                    .tasks
                    .get(*id)
                    .is_none_or(|b| b.phase == TaskPhase::Deleted && t.phase != TaskPhase::Deleted)
            })
            .map(|(id, t)| {
                (
                    id.clone(),
                    TaskRecord::new(t.owner.clone(), t.definition.clone(), now),
                )
            })
            .collect();
        for a in &d.actions {
            let task = a
                .task()
                .and_then(|id| fresh.get(id).or_else(|| before.tasks.get(id)));
            let rec = |c: &str| task.and_then(|t| t.container(c)).map(|(_, r)| r);
            match a {
                Action::PullImage { container, .. } => {
                    let r = rec(container);
                    assert!(
                        r.is_some_and(|r| r.state == ContainerState::Pending
                            && !r.image_ready
                            && Self::op_free(r, now)),
                        "pull of {container}: {r:?}"
                    );
                    self.count("pull allowed");
                }
                Action::CreateContainer { container, .. } => {
                    let r = rec(container);
                    assert!(
                        r.is_some_and(|r| r.state == ContainerState::Pending
                            && r.image_ready
                            && Self::op_free(r, now)),
                        "create of {container}: {r:?}"
                    );
                    self.count("create allowed");
                }
                Action::StartContainer {
                    task: id,
                    container,
                } => {
                    let t = task.expect("start of a known task");
                    let r = rec(container);
                    assert!(
                        r.is_some_and(
                            |r| r.state == ContainerState::Created && Self::op_free(r, now)
                        ),
                        "start of {container}: {r:?}"
                    );
                    let (def, _) = t.container(container).expect("known container");
                    for dep in &def.depends_on {
                        assert!(
                            Self::cond_holds(t, dep),
                            "{id}/{container} started before {dep:?}"
                        );
                        self.count("dependency held at start");
                    }
                    self.count("start allowed");
                }
                Action::RestartContainer { container, .. } => {
                    let r = rec(container);
                    assert!(
                        r.is_some_and(|r| matches!(r.state, ContainerState::Exited { .. })
                            && Self::op_free(r, now)),
                        "restart of {container}: {r:?}"
                    );
                    self.count("restart allowed");
                }
                Action::StopContainer { container, .. } => {
                    let r = rec(container);
                    assert!(
                        r.is_some_and(|r| r.is_running() && Self::op_free(r, now)),
                        "stop of {container}: {r:?}"
                    );
                    self.count("stop allowed");
                }
                Action::RunHealthCheck { container, .. } => {
                    let r = rec(container);
                    assert!(
                        r.is_some_and(
                            |r| r.is_running() && r.health.in_flight_until.is_none_or(|t| now >= t)
                        ),
                        "check of {container}: {r:?}"
                    );
                    self.count("health check allowed");
                }
                Action::DeleteTask { task: id } => {
                    let t = task.expect("delete of a known task");
                    let phase = after.observed().tasks.get(id).map(|t| t.phase);
                    let down = t
                        .containers
                        .iter()
                        .all(|c| !c.is_running() && Self::op_free(c, now));
                    assert!(
                        phase == Some(TaskPhase::Stopped) && down,
                        "delete of {id}: {phase:?} {:?} now={now:?} {:#?} after={:?}",
                        t.containers,
                        d.actions,
                        after.observed().tasks.get(id).map(|t| (
                            t.phase,
                            &t.stopped_reason,
                            t.containers
                                .iter()
                                .map(|c| (c.state.clone(), c.op, c.stop_requested))
                                .collect::<Vec<_>>()
                        ))
                    );
                    self.count("delete allowed");
                }
                Action::CancelPull {
                    task: id,
                    container,
                } => {
                    let r = rec(container);
                    let phase = after.observed().tasks.get(id).map(|t| t.phase);
                    assert!(
                        r.is_some_and(|r| r.op.is_some_and(|o| o.kind == OpKind::Pull))
                            && phase == Some(TaskPhase::Stopping),
                        "cancel of {container}'s pull: {phase:?} {r:?}"
                    );
                    self.count("pull cancel allowed");
                }
                Action::Report(Event::ServiceBackoff { service, delay, .. }) => {
                    assert!(*delay >= floor, "backoff {delay:?} below the floor");
                    self.last_failure.insert(service.clone(), now);
                    self.count("backoff at least the floor");
                }
                Action::Report(_) => {}
            }
            if matches!(
                a,
                Action::PullImage { .. }
                    | Action::CreateContainer { .. }
                    | Action::StartContainer { .. }
            ) {
                let id = a.task().expect("container action");
                assert_eq!(
                    after.observed().tasks.get(id).map(|t| t.phase),
                    Some(TaskPhase::Active),
                    "start-side action on a stopping task"
                );
                self.count("start-side action on an active task");
            }
        }
        for a in &d.actions {
            if let Action::Report(Event::TaskLaunched {
                service: Some(s), ..
            }) = a
            {
                if let Some(f) = self.last_failure.get(s) {
                    assert!(now >= *f + floor, "relaunch {:?} after a failure", now - *f);
                    self.count("relaunch after the floor");
                }
            }
        }
        for (name, spec) in &desired.services {
            let live = after
                .observed()
                .tasks
                .values()
                .filter(|t| t.is_live() && t.owner == Owner::Service(name.clone()))
                .count();
            let launched = d.actions.iter().any(|a| matches!(a, Action::Report(Event::TaskLaunched { service: Some(s), .. }) if s == name));
            if launched {
                assert!(
                    live <= spec.deployment.max_tasks(spec.desired_count) as usize,
                    "{live} live tasks"
                );
                self.count("live within maximumPercent at launch");
            }
        }
        // A desired standalone task is never left as the tombstone of a stop that
        // happened because it was not wanted: it ran once (and ended by itself) or runs.
        for id in desired.tasks.keys() {
            if let Some(t) = after.observed().tasks.get(id) {
                assert!(
                    t.phase != TaskPhase::Deleted || t.failed,
                    "desired task {id} left stopped as unwanted: {:?}",
                    t.stopped_reason
                );
                self.count("desired standalone task not left stopped as unwanted");
            }
        }
    }
}

fn run(s: &Scenario) -> BTreeMap<&'static str, u64> {
    let mut desired = Desired::default();
    let (min, max) = s.percents;
    let mut spec = generate_test_service(definition(s, 1), s.desired_count);
    spec.deployment = DeploymentConfig {
        minimum_healthy_percent: min,
        maximum_percent: max,
        circuit_breaker: None,
        stability_window: None,
    };
    if s.breaker {
        spec.deployment.circuit_breaker = Some(CircuitBreaker {
            rollback: true,
            failure_threshold: Some(2),
            deadline: Duration::from_secs(600),
        });
    }
    desired.services.insert("web".into(), spec);
    if s.standalone {
        desired.tasks.insert("solo".into(), definition(s, 1));
    }
    let mut r = Reconciler::new(config());
    let mut now = Instant::from_secs(1_000);
    let mut outstanding: Vec<Action> = Vec::new();
    let mut checker = Checker::default();
    let mut wake = None;
    let mut pid = 1;
    let mut revision = 1;
    for st in &s.steps {
        match st {
            Step::Advance(secs) => now += Duration::from_secs(*secs),
            Step::ToWakeup => now = wake.unwrap_or(now).max(now),
            Step::Answer(i, f) if !outstanding.is_empty() => {
                let a = outstanding.remove(i % outstanding.len());
                answer(&mut r, a, *f < 8, &mut pid, now);
            }
            Step::AnswerAll => {
                for a in std::mem::take(&mut outstanding) {
                    answer(&mut r, a, true, &mut pid, now);
                }
            }
            Step::Exit(i, code) => {
                let running: Vec<(TaskId, String)> = r
                    .observed()
                    .tasks
                    .iter()
                    .flat_map(|(id, t)| {
                        t.containers
                            .iter()
                            .filter(|c| c.is_running())
                            .map(move |c| (id.clone(), c.name.clone()))
                    })
                    .collect();
                if !running.is_empty() {
                    let (task, container) = running[i % running.len()].clone();
                    let reason = if *code == 137 {
                        ExitReason::OutOfMemory
                    } else {
                        ExitReason::Exited
                    };
                    r.observe(
                        Observation::Exited {
                            task,
                            container,
                            code: *code,
                            reason,
                        },
                        now,
                    );
                }
            }
            Step::Health(i, pass) => {
                let checks: Vec<usize> = (0..outstanding.len())
                    .filter(|&k| matches!(outstanding[k], Action::RunHealthCheck { .. }))
                    .collect();
                if !checks.is_empty() {
                    if let Action::RunHealthCheck {
                        task, container, ..
                    } = outstanding.remove(checks[i % checks.len()])
                    {
                        let outcome = if *pass {
                            CheckOutcome::Pass
                        } else {
                            CheckOutcome::Fail
                        };
                        r.observe(
                            Observation::HealthCheckDone {
                                task,
                                container,
                                outcome,
                            },
                            now,
                        );
                    }
                }
            }
            Step::ToggleSolo if s.standalone => {
                let id = TaskId::from("solo");
                if desired.tasks.remove(&id).is_none() {
                    desired.tasks.insert(id, definition(s, 1));
                }
            }
            Step::ToggleSolo => {}
            Step::NewRevision => {
                revision += 1;
                if let Some(spec) = desired.services.get_mut("web") {
                    spec.task_definition = definition(s, revision);
                }
            }
            Step::Answer(..) => {}
        }
        let before = r.observed().clone();
        let d = r.reconcile(&desired, now);
        checker.check(&before, &r, &desired, &d, now);
        wake = d.next_wakeup;
        if let Some(w) = wake {
            assert!(w > now, "wakeup not in the future");
        }
        outstanding.extend(
            d.actions
                .into_iter()
                // A cancel has no answer of its own (the pull answers).
                .filter(|a| !matches!(a, Action::Report(_) | Action::CancelPull { .. })),
        );
    }
    checker.checks
}

fn answer(r: &mut Reconciler, a: Action, ok: bool, pid: &mut u32, now: Instant) {
    let failed = |task: TaskId, container: Option<String>, op| Observation::Failed {
        task,
        container,
        op,
        error: "injected".into(),
    };
    let obs = match (a, ok) {
        (
            Action::PullImage {
                task, container, ..
            },
            true,
        ) => Observation::ImagePulled { task, container },
        (
            Action::PullImage {
                task, container, ..
            },
            false,
        ) => failed(task, Some(container), OpKind::Pull),
        (Action::CreateContainer { task, container }, true) => {
            Observation::Created { task, container }
        }
        (Action::CreateContainer { task, container }, false) => {
            failed(task, Some(container), OpKind::Create)
        }
        (
            Action::StartContainer { task, container }
            | Action::RestartContainer {
                task, container, ..
            },
            true,
        ) => {
            *pid += 1;
            Observation::Started {
                task,
                container,
                pid: *pid,
            }
        }
        (Action::StartContainer { task, container }, false) => {
            failed(task, Some(container), OpKind::Start)
        }
        (
            Action::RestartContainer {
                task, container, ..
            },
            false,
        ) => failed(task, Some(container), OpKind::Restart),
        (
            Action::StopContainer {
                task, container, ..
            },
            true,
        ) => Observation::Exited {
            task,
            container,
            code: 143,
            reason: ExitReason::Killed,
        },
        (
            Action::StopContainer {
                task, container, ..
            },
            false,
        ) => failed(task, Some(container), OpKind::Stop),
        (Action::DeleteTask { task }, true) => Observation::TaskDeleted { task },
        (Action::DeleteTask { task }, false) => failed(task, None, OpKind::Delete),
        (
            Action::RunHealthCheck {
                task, container, ..
            },
            ok,
        ) => Observation::HealthCheckDone {
            task,
            container,
            outcome: if ok {
                CheckOutcome::Pass
            } else {
                CheckOutcome::Timeout
            },
        },
        (Action::Report(_) | Action::CancelPull { .. }, _) => return,
    };
    r.observe(obs, now);
}

/// How the new revision misbehaves (invariant 6).
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Its app container exits 1 s after each start.
    CrashAtStart,
    /// It exits this many seconds after each start, always inside the window.
    CrashInWindow(u64),
    /// Its health check always fails.
    FailsHealthCheck,
    /// It exits this many seconds past the window, once the deployment completed.
    CrashAfterWindow(u64),
}

#[derive(Debug, Clone)]
struct Rollout {
    desired_count: u32,
    percents: (u32, u32),
    checked: bool,
    threshold: Option<u32>,
    window: Option<u64>,
    fault: Fault,
    step: u64,
    restart_after: Option<u64>,
}

fn rollout() -> impl Strategy<Value = Rollout> {
    let percents = prop_oneof![
        Just((100, 200)),
        Just((50, 150)),
        Just((0, 100)),
        Just((100, 150)),
        Just((50, 200))
    ];
    let fault = prop_oneof![
        Just(Fault::CrashAtStart),
        (1u64..1000).prop_map(Fault::CrashInWindow),
        Just(Fault::FailsHealthCheck),
        (1u64..60).prop_map(Fault::CrashAfterWindow),
    ];
    (
        1u32..4,
        percents,
        any::<bool>(),
        prop::option::of(1u32..4),
        prop::option::of(5u64..120),
        fault,
        1u64..6,
        prop::option::of(0u64..300),
    )
        .prop_map(
            |(desired_count, percents, checked, threshold, window, fault, step, restart_after)| {
                Rollout {
                    desired_count,
                    percents,
                    checked,
                    threshold,
                    window,
                    fault,
                    step,
                    restart_after,
                }
            },
        )
}

const BAD_IMAGE: &str = "registry.local/app:bad";

/// Runs one rollout; panics if invariant 6 does not hold.
fn run_rollout(s: &Rollout) {
    let cfg = Config::default();
    let mut app = generate_test_container("app");
    if s.checked {
        app.health_check = Some(generate_test_health_check(5, 2, 0));
    }
    let v1 = generate_test_task(vec![app]);
    let mut v2 = v1.clone();
    v2.containers[0].image = BAD_IMAGE.into();
    if matches!(s.fault, Fault::FailsHealthCheck) && !s.checked {
        v2.containers[0].health_check = Some(generate_test_health_check(5, 2, 0));
    }
    let mut spec = generate_test_service(v1.clone(), s.desired_count);
    spec.deployment.minimum_healthy_percent = s.percents.0;
    spec.deployment.maximum_percent = s.percents.1;
    spec.deployment.stability_window = s.window.map(Duration::from_secs);
    spec.deployment.circuit_breaker = Some(CircuitBreaker {
        rollback: true,
        failure_threshold: s.threshold,
        deadline: Duration::from_secs(600),
    });
    let w2 = spec.deployment.stability_window(&v2, cfg.grace);
    let mut h = Harness::new(Desired::default());
    h.health.insert(
        BAD_IMAGE.into(),
        if matches!(s.fault, Fault::FailsHealthCheck) {
            Script::Fail
        } else {
            Script::Pass
        },
    );
    h.desired.services.insert("web".into(), spec);
    h.run_for(Duration::from_secs(300));
    let completed = |h: &Harness, d: &TaskDefinition| {
        let id = d.revision_id();
        h.events()
            .any(|e| matches!(e, Event::DeploymentCompleted { revision, .. } if *revision == id))
    };
    assert!(completed(&h, &v1), "v1 never completed");
    if let Some(spec) = h.desired.services.get_mut("web") {
        spec.task_definition = v2.clone();
    }
    let fault = s.fault;
    let crash = move |snap: &Snapshot, t: &TaskRecord, c: &ContainerRecord, now: Instant| {
        let started = c.last_started_at.unwrap_or(now);
        let done = snap.services["web"]
            .deployment
            .as_ref()
            .is_some_and(|d| d.completed);
        t.definition.containers[0].image == BAD_IMAGE
            && match fault {
                Fault::CrashAtStart => now >= started + Duration::from_secs(1),
                Fault::CrashInWindow(d) => {
                    now >= started + Duration::from_ticks((d * w2.as_ticks() / 1000).max(1))
                }
                Fault::FailsHealthCheck => false,
                Fault::CrashAfterWindow(d) => done && now >= started + w2 + Duration::from_secs(d),
            }
    };
    let step = Duration::from_secs(s.step);
    let total = Duration::from_secs(1500);
    match s.restart_after.map(Duration::from_secs) {
        Some(first) => {
            h.run_crashing(first, step, crash);
            h.r = Reconciler::restore(cfg.clone(), h.r.snapshot().clone());
            h.run_crashing(total - first, step, crash);
        }
        None => h.run_crashing(total, step, crash),
    }
    let live: Vec<TaskRecord> = h
        .service_tasks("web")
        .into_iter()
        .map(|(_, t)| t)
        .filter(TaskRecord::is_live)
        .collect();
    let (a, b) = (v1.revision_id(), v2.revision_id());
    let rolled_back = h.events().any(
        |e| matches!(e, Event::DeploymentRolledBack { from, to, .. } if *from == b && *to == a),
    );
    if let Fault::CrashAfterWindow(_) = s.fault {
        assert!(completed(&h, &v2), "v2 never completed");
        assert!(!rolled_back, "rolled back after the window");
        assert!(live.iter().all(|t| t.definition == v2), "v1 came back");
        let after_done = h
            .events()
            .skip_while(
                |e| !matches!(e, Event::DeploymentCompleted { revision, .. } if *revision == b),
            )
            .filter(|e| matches!(e, Event::ServiceBackoff { .. }))
            .count();
        assert!(after_done > 0, "no restart under backoff");
    } else {
        assert!(rolled_back, "not rolled back");
        assert!(!completed(&h, &v2), "a failing revision completed");
        let serving = live
            .iter()
            .filter(|t| t.definition == v1 && t.phase == TaskPhase::Active && health::serving(t))
            .count();
        assert!(live.iter().all(|t| t.definition == v1), "v2 still live");
        assert_eq!(serving, s.desired_count as usize, "v1 not restored");
    }
}

proptest! {
    // No regression files in the tree: failures found so far have their own unit tests.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn props_invariants_hold_under_random_sequences(s in scenario()) {
        run(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn props_failing_revision_ends_rolled_back_and_late_crash_does_not(s in rollout()) {
        run_rollout(&s);
    }
}

/// The invariants are exercised, not vacuous: over a fixed set of generated cases,
/// each check ran many times.
#[test]
fn props_every_invariant_is_exercised() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        RunnerConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let mut total: BTreeMap<&'static str, u64> = BTreeMap::new();
    for _ in 0..300 {
        let s = scenario()
            .new_tree(&mut runner)
            .expect("generate")
            .current();
        for (k, v) in run(&s) {
            *total.entry(k).or_default() += v;
        }
    }
    for name in [
        "pull allowed",
        "pull cancel allowed",
        "create allowed",
        "start allowed",
        "restart allowed",
        "stop allowed",
        "health check allowed",
        "delete allowed",
        "dependency held at start",
        "backoff at least the floor",
        "relaunch after the floor",
        "live within maximumPercent at launch",
        "start-side action on an active task",
        "desired standalone task not left stopped as unwanted",
    ] {
        assert!(
            total.get(name).copied().unwrap_or(0) > 0,
            "{name} never checked: {total:?}"
        );
    }
    println!("invariant checks over 300 scenarios: {total:?}");
}
