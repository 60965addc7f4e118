//! End-to-end rules of the reconciler against the fake executor, one test per rule.

use std::time::Duration as StdDuration;

use embassy_time::{Duration, Instant};

use super::testutil::*;
use super::*;
use crate::spec::{Dependency, DependencyCondition};

fn one(containers: Vec<crate::spec::ContainerDefinition>) -> Harness {
    let mut desired = Desired::default();
    desired
        .tasks
        .insert("t1".into(), generate_test_task(containers));
    Harness::new(desired)
}

fn running(h: &Harness, task: &str, c: &str) -> bool {
    matches!(h.state(task, c), ContainerState::Running { .. })
}

fn stop_reason(h: &Harness, task: &str) -> String {
    h.task(task).stopped_reason.clone().unwrap_or_default()
}

#[test]
fn container_lifecycle_pull_create_start_in_order() {
    let mut h = one(vec![generate_test_container("app")]);
    let d = h.reconcile();
    let first = d.actions.iter().find(|a| !matches!(a, Action::Report(_)));
    assert!(
        matches!(first, Some(Action::PullImage { image, .. }) if image == "registry.local/app:1")
    );
    assert!(d
        .actions
        .iter()
        .any(|a| matches!(a, Action::Report(Event::TaskLaunched { .. }))));
    // Unanswered: nothing is issued twice.
    assert!(h.reconcile().actions.is_empty());
    h.answer(&d.actions);
    h.settle();
    assert!(running(&h, "t1", "app"));
    let kinds: Vec<&str> = h
        .log
        .iter()
        .filter_map(|a| match a {
            Action::PullImage { .. } => Some("pull"),
            Action::CreateContainer { .. } => Some("create"),
            Action::StartContainer { .. } => Some("start"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["pull", "create", "start"]);
}

#[test]
fn container_stopped_reason_says_out_of_memory_and_lost() {
    for (reason, says) in [
        (ExitReason::OutOfMemory, "OutOfMemoryError"),
        (ExitReason::Lost, "lost: the host restarted"),
    ] {
        let mut h = one(vec![generate_test_container("app")]);
        h.settle();
        h.exit_for("t1", "app", 137, reason);
        h.settle();
        let text = stop_reason(&h, "t1");
        assert!(
            text.starts_with("Essential container in task exited: app (exit code 137, ")
                && text.contains(says),
            "{text}"
        );
    }
}

#[test]
fn standalone_task_removed_and_added_back_while_stopping_runs_again() {
    let mut h = one(vec![generate_test_container("app")]);
    h.settle();
    let def = h.desired.tasks.remove(&TaskId::from("t1")).expect("t1");
    let stopping = h.reconcile();
    assert!(stopping
        .actions
        .iter()
        .any(|a| matches!(a, Action::StopContainer { .. })));
    // The file is back before the stop finished: a new request, not the old run's end.
    h.desired.tasks.insert("t1".into(), def);
    h.answer(&stopping.actions);
    h.settle();
    assert!(running(&h, "t1", "app"), "{:?}", h.task("t1"));
    assert_eq!(h.task("t1").phase, TaskPhase::Active);
    // A task that ended by itself stays ended while its file is there (ECS RunTask).
    h.exit("t1", "app", 0);
    h.settle();
    h.run_for(Duration::from_secs(600));
    assert_eq!(h.task("t1").phase, TaskPhase::Deleted);
}

#[test]
fn container_essential_exit_stops_the_task_with_ecs_reason() {
    let sidecar = generate_test_container("sidecar");
    let mut h = one(vec![generate_test_container("app"), sidecar]);
    h.settle();
    h.exit("t1", "app", 3);
    h.settle();
    assert_eq!(
        stop_reason(&h, "t1"),
        "Essential container in task exited: app (exit code 3)"
    );
    assert!(h
        .log
        .iter()
        .any(|a| matches!(a, Action::StopContainer { container, .. } if container == "sidecar")));
    assert!(h.log.iter().any(|a| matches!(a, Action::DeleteTask { .. })));
    // A standalone task is not run again; its record stays as a tombstone.
    assert_eq!(h.task("t1").phase, TaskPhase::Deleted);
    h.run_for(Duration::from_secs(600));
    assert_eq!(
        h.log
            .iter()
            .filter(|a| matches!(a, Action::Report(Event::TaskLaunched { .. })))
            .count(),
        1
    );
}

#[test]
fn container_nonessential_exit_keeps_the_task() {
    let mut side = generate_test_container("side");
    side.essential = false;
    let mut h = one(vec![generate_test_container("app"), side]);
    h.settle();
    h.exit("t1", "side", 1);
    h.run_for(Duration::from_secs(60));
    assert_eq!(h.task("t1").phase, TaskPhase::Active);
    assert!(running(&h, "t1", "app"));
    assert!(matches!(
        h.state("t1", "side"),
        ContainerState::Exited { code: 1, .. }
    ));
}

#[test]
fn container_pull_of_a_removed_task_is_cancelled_not_waited_for() {
    let mut h = one(vec![generate_test_container("app")]);
    let d = h.reconcile();
    assert!(d
        .actions
        .iter()
        .any(|a| matches!(a, Action::PullImage { .. })));
    // Superseded (here: removed) while its pull runs: the pull is given up, once.
    let def = h.desired.tasks.remove(&TaskId::from("t1")).expect("t1");
    let d = h.reconcile();
    let cancels = |d: &Decision| {
        d.actions
            .iter()
            .filter(|a| matches!(a, Action::CancelPull { container, .. } if container == "app"))
            .count()
    };
    assert_eq!(cancels(&d), 1, "{:?}", d.actions);
    assert_eq!(cancels(&h.reconcile()), 0, "cancel repeated");
    // The pull answers its failure; the task is deleted without waiting for a timeout.
    h.r.observe(
        Observation::Failed {
            task: "t1".into(),
            container: Some("app".into()),
            op: OpKind::Pull,
            error: "pull of registry.local/app:1 cancelled".into(),
        },
        h.now,
    );
    h.settle();
    let gone = h.r.observed().tasks.get(&TaskId::from("t1"));
    assert!(
        gone.is_none_or(|t| t.phase == TaskPhase::Deleted),
        "{gone:?}"
    );
    // A new task under the same id pulls afresh.
    h.desired.tasks.insert("t1".into(), def);
    h.settle();
    assert!(running(&h, "t1", "app"));
}

#[test]
fn container_pull_failure_fails_the_task() {
    let mut h = one(vec![generate_test_container("app")]);
    h.pull_fails = true;
    h.settle();
    assert!(stop_reason(&h, "t1").starts_with("CannotPullContainerError: app: no such image"));
    assert!(h.events().any(|e| matches!(
        e,
        Event::ActionFailed {
            op: OpKind::Pull,
            ..
        }
    )));
}

#[test]
fn deps_healthy_dependent_waits_for_the_health_check() {
    let mut db = generate_test_container("db");
    db.health_check = Some(generate_test_health_check(10, 3, 0));
    let mut app = generate_test_container("app");
    app.depends_on = vec![Dependency {
        container: "db".into(),
        condition: DependencyCondition::Healthy,
    }];
    let mut h = one(vec![db, app]);
    h.health.insert("db".into(), Script::Fail);
    h.run_for(Duration::from_secs(5));
    assert!(running(&h, "t1", "db"));
    assert_eq!(h.state("t1", "app"), ContainerState::Created);
    h.health.insert("db".into(), Script::Pass);
    h.run_for(Duration::from_secs(10));
    assert!(running(&h, "t1", "app"));
}

#[test]
fn deps_success_and_complete_wait_for_the_exit() {
    let mut init = generate_test_container("init");
    init.essential = false;
    let mut app = generate_test_container("app");
    app.depends_on = vec![Dependency {
        container: "init".into(),
        condition: DependencyCondition::Success,
    }];
    let mut h = one(vec![init, app]);
    h.settle();
    assert_eq!(h.state("t1", "app"), ContainerState::Created);
    h.exit("t1", "init", 0);
    h.settle();
    assert!(running(&h, "t1", "app"));
}

#[test]
fn deps_start_timeout_fails_the_task_naming_both() {
    let mut db = generate_test_container("db");
    db.health_check = Some(generate_test_health_check(10, 3, 0));
    db.start_timeout = Some(StdDuration::from_secs(25));
    let mut app = generate_test_container("app");
    app.depends_on = vec![Dependency {
        container: "db".into(),
        condition: DependencyCondition::Healthy,
    }];
    let mut h = one(vec![db, app]);
    h.health.insert("db".into(), Script::Silent);
    let started = h.now;
    h.run_for(Duration::from_secs(40));
    let reason = stop_reason(&h, "t1");
    assert!(
        reason.contains("app") && reason.contains("db") && reason.contains("startTimeout 25s"),
        "{reason}"
    );
    // It gave up at the deadline exactly (the wakeup pointed there).
    let gave_up = h
        .log
        .iter()
        .position(|a| matches!(a, Action::Report(Event::TaskStopping { .. })));
    assert!(gave_up.is_some());
    assert!(h.now >= started + Duration::from_secs(25));
}

#[test]
fn deps_shutdown_stops_dependents_first_with_their_stop_timeout() {
    let db = generate_test_container("db");
    let mut app = generate_test_container("app");
    app.stop_timeout = StdDuration::from_secs(7);
    app.depends_on = vec![Dependency {
        container: "db".into(),
        condition: DependencyCondition::Start,
    }];
    let mut h = one(vec![db, app]);
    h.settle();
    h.desired.tasks.clear();
    let d = h.reconcile();
    let stops: Vec<_> = d
        .actions
        .iter()
        .filter(|a| matches!(a, Action::StopContainer { .. }))
        .collect();
    assert_eq!(stops.len(), 1);
    assert!(
        matches!(stops[0], Action::StopContainer { container, timeout, reason, .. }
        if container == "app" && *timeout == Duration::from_secs(7) && reason == "Task stopped by user")
    );
    h.answer(&d.actions);
    let d = h.reconcile();
    assert!(d
        .actions
        .iter()
        .any(|a| matches!(a, Action::StopContainer { container, .. } if container == "db")));
    h.answer(&d.actions);
    h.settle();
    // Not desired and deleted: the record is gone.
    assert!(h.r.observed().tasks.is_empty());
}

#[test]
fn health_unknown_until_first_result_then_healthy() {
    let mut app = generate_test_container("app");
    app.health_check = Some(generate_test_health_check(30, 3, 0));
    let mut h = one(vec![app]);
    let wake = h.settle();
    assert_eq!(
        h.task("t1").containers[0].health.status,
        HealthStatus::Unknown
    );
    assert_eq!(
        wake,
        Some(h.now + Duration::from_secs(30)),
        "first check one interval after start"
    );
    h.run_for(Duration::from_secs(30));
    assert_eq!(
        h.task("t1").containers[0].health.status,
        HealthStatus::Healthy
    );
    assert_eq!(health::task_health(h.task("t1")), HealthStatus::Healthy);
}

#[test]
fn health_retries_failures_make_unhealthy_and_start_period_is_forgiven() {
    let mut app = generate_test_container("app");
    app.health_check = Some(generate_test_health_check(10, 3, 25));
    let mut h = one(vec![app]);
    h.health.insert("app".into(), Script::Fail);
    h.run_for(Duration::from_secs(20));
    // Checks at +10 and +20 fell in the start period.
    assert_eq!(h.task("t1").containers[0].health.consecutive_failures, 0);
    h.run_for(Duration::from_secs(20));
    assert_eq!(h.task("t1").containers[0].health.consecutive_failures, 2);
    assert_eq!(
        h.task("t1").containers[0].health.status,
        HealthStatus::Unknown
    );
    h.run_for(Duration::from_secs(10));
    assert_eq!(
        h.task("t1").containers[0].health.status,
        HealthStatus::Unhealthy
    );
    assert_eq!(health::task_health(h.task("t1")), HealthStatus::Unhealthy);
    // Standalone: reported, not replaced.
    assert_eq!(h.task("t1").phase, TaskPhase::Active);
    h.health.insert("app".into(), Script::Pass);
    h.run_for(Duration::from_secs(10));
    assert_eq!(
        h.task("t1").containers[0].health.status,
        HealthStatus::Healthy
    );
}

#[test]
fn health_timeout_counts_as_failure() {
    let mut app = generate_test_container("app");
    app.health_check = Some(generate_test_health_check(10, 1, 0));
    let mut h = one(vec![app]);
    h.health.insert("app".into(), Script::Silent);
    h.run_for(Duration::from_secs(10));
    assert!(h.log.iter().any(|a| matches!(a, Action::RunHealthCheck { timeout, .. } if *timeout == Duration::from_secs(5))));
    assert_eq!(
        h.task("t1").containers[0].health.status,
        HealthStatus::Unknown
    );
    h.run_for(Duration::from_secs(10));
    let rec = &h.task("t1").containers[0].health;
    assert_eq!(rec.status, HealthStatus::Unhealthy);
    assert_eq!(
        rec.last_result.map(|r| r.outcome),
        Some(CheckOutcome::Timeout)
    );
}

#[test]
fn health_task_ignores_nonessential_containers() {
    let mut side = generate_test_container("side");
    side.essential = false;
    side.health_check = Some(generate_test_health_check(10, 1, 0));
    let mut h = one(vec![generate_test_container("app"), side]);
    h.health.insert("side".into(), Script::Fail);
    h.run_for(Duration::from_secs(15));
    assert_eq!(
        h.task("t1").containers[1].health.status,
        HealthStatus::Unhealthy
    );
    assert_eq!(health::task_health(h.task("t1")), HealthStatus::Healthy);
}

#[test]
fn health_unhealthy_service_task_is_replaced() {
    let mut app = generate_test_container("app");
    app.health_check = Some(generate_test_health_check(10, 2, 0));
    let mut h = Harness::new(Desired::default());
    h.desired.services.insert(
        "web".into(),
        generate_test_service(generate_test_task(vec![app]), 1),
    );
    h.run_for(Duration::from_secs(15));
    let first = h.service_tasks("web")[0].0.clone();
    h.health.insert("app".into(), Script::Fail);
    h.run_for(Duration::from_secs(20));
    assert!(h.events().any(
        |e| matches!(e, Event::TaskStopping { task, reason, failed: true }
        if *task == first && reason == "Task failed container health checks")
    ));
    h.health.insert("app".into(), Script::Pass);
    h.run_for(Duration::from_secs(60));
    let live: Vec<_> = h
        .service_tasks("web")
        .into_iter()
        .filter(|(_, t)| t.is_live())
        .collect();
    assert_eq!(live.len(), 1);
    assert_ne!(live[0].0, first);
}

#[test]
fn restart_in_place_after_the_attempt_period() {
    let mut app = generate_test_container("app");
    app.restart_policy = Some(generate_test_restart_policy(60, vec![]));
    let mut h = one(vec![app]);
    h.settle();
    h.now += Duration::from_secs(61);
    h.exit("t1", "app", 1);
    h.settle();
    assert!(running(&h, "t1", "app"));
    assert_eq!(h.task("t1").containers[0].restart_count, 1);
    assert!(h
        .log
        .iter()
        .any(|a| matches!(a, Action::RestartContainer { attempt: 1, .. })));
    // Too soon after the restart: not restarted, the essential exit stops the task.
    h.now += Duration::from_secs(10);
    h.exit("t1", "app", 1);
    h.settle();
    assert_eq!(
        stop_reason(&h, "t1"),
        "Essential container in task exited: app (exit code 1)"
    );
}

#[test]
fn restart_that_fails_is_retried_then_the_task_stops() {
    for (fails, runs) in [(RESTART_RETRIES, true), (RESTART_RETRIES + 1, false)] {
        let mut app = generate_test_container("app");
        app.restart_policy = Some(generate_test_restart_policy(60, vec![]));
        let mut h = one(vec![app]);
        h.settle();
        h.now += Duration::from_secs(61);
        h.restart_fails = fails;
        h.exit("t1", "app", 1);
        h.run_for(Duration::from_secs(300));
        let retries = h
            .log
            .iter()
            .filter(|a| matches!(a, Action::RestartContainer { .. }))
            .count();
        assert_eq!(
            retries as u32,
            fails.min(RESTART_RETRIES) + 1,
            "{fails} failures"
        );
        if runs {
            assert!(running(&h, "t1", "app"), "{:?}", h.task("t1"));
            assert_eq!(h.task("t1").containers[0].restart_failures, 0);
        } else {
            assert!(
                stop_reason(&h, "t1").starts_with("CannotStartContainerError: app: No space left"),
                "{}",
                stop_reason(&h, "t1")
            );
        }
    }
}

#[test]
fn restart_not_for_ignored_exit_codes() {
    let mut app = generate_test_container("app");
    app.restart_policy = Some(generate_test_restart_policy(60, vec![0]));
    let mut h = one(vec![app]);
    h.settle();
    h.now += Duration::from_secs(120);
    h.exit("t1", "app", 0);
    h.settle();
    assert_eq!(h.task("t1").containers[0].restart_count, 0);
    assert_eq!(h.task("t1").phase, TaskPhase::Deleted);
}

#[test]
fn backoff_service_relaunch_waits_at_least_the_floor_and_grows() {
    let mut h = Harness::new(Desired::default());
    h.desired.services.insert(
        "web".into(),
        generate_test_service(generate_test_task(vec![generate_test_container("app")]), 1),
    );
    h.settle();
    let mut launches = vec![h.now];
    for _ in 0..3 {
        let id = h
            .service_tasks("web")
            .into_iter()
            .find(|(_, t)| t.is_live())
            .map(|(i, _)| i)
            .expect("live task");
        h.exit(&id.0, "app", 1);
        let failed_at = h.now;
        h.settle();
        let before = h.log.len();
        h.run_for(Duration::from_secs(70));
        let at = h.log[before..]
            .iter()
            .position(|a| matches!(a, Action::Report(Event::TaskLaunched { .. })));
        assert!(at.is_some());
        let t = h
            .service_tasks("web")
            .into_iter()
            .find(|(_, t)| t.is_live())
            .map(|(_, t)| t.launched_at)
            .expect("relaunched");
        assert!(
            t >= failed_at + Duration::from_secs(10),
            "relaunch after {:?}",
            t - failed_at
        );
        launches.push(t);
    }
    let delays: Vec<u64> = h
        .events()
        .filter_map(|e| {
            if let Event::ServiceBackoff { delay, .. } = e {
                Some(delay.as_secs())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(delays.len(), 3);
    assert!(
        delays[0] >= 10 && delays[0] <= 15 && delays[1] >= 20 && delays[2] >= 40,
        "{delays:?}"
    );
}

#[test]
fn backoff_crash_loop_is_reported_not_spun() {
    let mut h = Harness::new(Desired::default());
    h.desired.services.insert(
        "web".into(),
        generate_test_service(generate_test_task(vec![generate_test_container("app")]), 1),
    );
    h.settle();
    for i in 0..8 {
        let id = h
            .service_tasks("web")
            .into_iter()
            .find(|(_, t)| t.is_live())
            .map(|(i, _)| i)
            .expect("live task");
        h.exit(&id.0, "app", 1);
        // Until the crash loop, relaunches come within 130 s; then they wait the cap.
        h.run_for(Duration::from_secs(if i < 4 { 130 } else { 301 }));
    }
    assert_eq!(
        h.events()
            .filter(|e| matches!(e, Event::CrashLoop { .. }))
            .count(),
        1
    );
    let launched = h
        .events()
        .filter(|e| matches!(e, Event::TaskLaunched { .. }))
        .count();
    assert_eq!(launched, 9);
}

fn rev(
    def: &crate::spec::TaskDefinition,
    revision: u32,
    image: &str,
) -> crate::spec::TaskDefinition {
    let mut d = def.clone();
    d.revision = revision;
    d.containers[0].image = image.into();
    d
}

fn checked_app() -> crate::spec::ContainerDefinition {
    let mut app = generate_test_container("app");
    app.health_check = Some(generate_test_health_check(10, 2, 0));
    app
}

#[test]
fn service_keeps_desired_count_and_scales_down() {
    let mut h = Harness::new(Desired::default());
    h.desired.services.insert(
        "web".into(),
        generate_test_service(generate_test_task(vec![generate_test_container("app")]), 3),
    );
    h.settle();
    assert_eq!(
        h.service_tasks("web")
            .iter()
            .filter(|(_, t)| t.phase == TaskPhase::Active)
            .count(),
        3
    );
    h.run_for(MIN_STABILITY_WINDOW);
    assert!(h
        .events()
        .any(|e| matches!(e, Event::DeploymentCompleted { revision, .. } if revision.number == 1)));
    if let Some(s) = h.desired.services.get_mut("web") {
        s.desired_count = 1;
    }
    h.settle();
    assert_eq!(h.service_tasks("web").len(), 1);
}

#[test]
fn service_rolling_update_respects_min_and_max_percent() {
    let mut h = Harness::new(Desired::default());
    let v1 = generate_test_task(vec![checked_app()]);
    let mut spec = generate_test_service(v1.clone(), 2);
    spec.deployment.maximum_percent = 150;
    spec.deployment.minimum_healthy_percent = 50;
    h.desired.services.insert("web".into(), spec);
    h.run_for(Duration::from_secs(15));
    if let Some(s) = h.desired.services.get_mut("web") {
        s.task_definition = rev(&v1, 2, "registry.local/app:2");
    }
    let mut max_live = 0;
    let mut min_serving = usize::MAX;
    for _ in 0..12 {
        h.run_for(Duration::from_secs(5));
        let tasks = h.service_tasks("web");
        max_live = max_live.max(tasks.iter().filter(|(_, t)| t.is_live()).count());
        min_serving = min_serving.min(
            tasks
                .iter()
                .filter(|(_, t)| t.phase == TaskPhase::Active && health::serving(t))
                .count(),
        );
    }
    assert_eq!(max_live, 3, "150% of 2");
    assert!(min_serving >= 1, "50% of 2");
    let tasks = h.service_tasks("web");
    assert!(tasks.iter().all(|(_, t)| t.definition.revision == 2));
    assert!(h
        .events()
        .any(|e| matches!(e, Event::DeploymentCompleted { revision, .. } if revision.number == 2)));
}

#[test]
fn service_circuit_breaker_rolls_back_after_failures() {
    let mut h = Harness::new(Desired::default());
    let v1 = generate_test_task(vec![checked_app()]);
    let mut spec = generate_test_service(v1.clone(), 1);
    spec.deployment.circuit_breaker = Some(CircuitBreaker {
        rollback: true,
        failure_threshold: Some(2),
        deadline: Duration::from_secs(3600),
    });
    h.desired.services.insert("web".into(), spec);
    // Healthy after 10 s, stable 40 s later (2 × (10 s + 5 s timeout + 5 s grace)).
    h.run_for(Duration::from_secs(55));
    if let Some(s) = h.desired.services.get_mut("web") {
        s.task_definition = rev(&v1, 2, "registry.local/app:bad");
    }
    h.health
        .insert("registry.local/app:bad".into(), Script::Fail);
    h.run_for(Duration::from_secs(120));
    assert!(h
        .events()
        .any(|e| matches!(e, Event::DeploymentRolledBack { from, to, .. } if from.number == 2 && to.number == 1)));
    h.run_for(Duration::from_secs(600));
    let live: Vec<_> = h
        .service_tasks("web")
        .into_iter()
        .filter(|(_, t)| t.is_live())
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].1.definition.revision, 1);
}

#[test]
fn service_circuit_breaker_deadline_without_previous_reports_failure() {
    let mut h = Harness::new(Desired::default());
    let mut spec = generate_test_service(generate_test_task(vec![checked_app()]), 1);
    spec.deployment.circuit_breaker = Some(CircuitBreaker {
        rollback: true,
        failure_threshold: None,
        deadline: Duration::from_secs(60),
    });
    h.desired.services.insert("web".into(), spec);
    h.health.insert("app".into(), Script::Silent);
    h.run_for(Duration::from_secs(61));
    assert!(h.events().any(|e| matches!(e, Event::DeploymentFailed { revision, reason, .. } if revision.number == 1 && reason.contains("within 60s"))));
    assert!(!h
        .events()
        .any(|e| matches!(e, Event::DeploymentRolledBack { .. })));
}

#[test]
fn service_removed_stops_its_tasks() {
    let mut h = Harness::new(Desired::default());
    h.desired.services.insert(
        "web".into(),
        generate_test_service(generate_test_task(vec![generate_test_container("app")]), 2),
    );
    h.settle();
    h.desired.services.clear();
    h.settle();
    assert!(h.r.observed().tasks.is_empty());
    assert!(h.r.snapshot().services.is_empty());
    assert!(h.events().any(|e| matches!(e, Event::TaskStopping { reason, failed: false, .. } if reason == "Service deleted")));
}

#[test]
fn reconcile_reissues_an_overdue_action() {
    let mut h = one(vec![generate_test_container("app")]);
    let d = h.reconcile();
    assert_eq!(d.next_wakeup, Some(h.now + Config::default().pull_timeout));
    h.now += Config::default().pull_timeout;
    let d = h.reconcile();
    assert!(matches!(d.actions.as_slice(), [Action::PullImage { .. }]));
}

#[test]
fn reconcile_failed_stop_is_retried_after_the_delay() {
    let mut h = one(vec![generate_test_container("app")]);
    h.settle();
    h.desired.tasks.clear();
    let d = h.reconcile();
    assert!(d
        .actions
        .iter()
        .any(|a| matches!(a, Action::StopContainer { .. })));
    h.r.observe(
        Observation::Failed {
            task: "t1".into(),
            container: Some("app".into()),
            op: OpKind::Stop,
            error: "EPERM".into(),
        },
        h.now,
    );
    let d = h.reconcile();
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::StopContainer { .. })));
    assert_eq!(d.next_wakeup, Some(h.now + Duration::from_secs(10)));
    h.now += Duration::from_secs(10);
    assert!(h
        .reconcile()
        .actions
        .iter()
        .any(|a| matches!(a, Action::StopContainer { .. })));
}

#[test]
fn reconcile_clock_going_back_is_clamped() {
    let mut h = one(vec![generate_test_container("app")]);
    h.settle();
    let now = h.now;
    h.now = Instant::from_secs(1);
    h.exit("t1", "app", 0);
    assert!(
        matches!(h.state("t1", "app"), ContainerState::Exited { finished_at, .. } if finished_at == now)
    );
}

#[test]
fn reconcile_snapshot_round_trips_and_restore_forgets_inflight() {
    let mut h = one(vec![generate_test_container("app")]);
    h.reconcile();
    let json = serde_json::to_string(h.r.snapshot()).expect("serialize");
    let snap: Snapshot = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(&snap, h.r.snapshot());
    let mut r = Reconciler::restore(Config::default(), snap);
    let d = r.reconcile(&h.desired, h.now);
    assert!(
        matches!(d.actions.as_slice(), [Action::PullImage { .. }]),
        "in-flight pull issued again"
    );
}

#[test]
fn reconcile_is_deterministic() {
    let run = || {
        let mut h = Harness::new(Desired::default());
        h.desired.services.insert(
            "web".into(),
            generate_test_service(generate_test_task(vec![checked_app()]), 2),
        );
        h.run_for(Duration::from_secs(30));
        for (id, _) in h.service_tasks("web") {
            h.exit(&id.0, "app", 1);
        }
        h.run_for(Duration::from_secs(300));
        h.log
    };
    assert_eq!(run(), run());
}

#[test]
fn reconcile_late_start_after_timeout_reopens_a_stopped_task() {
    let mut h = one(vec![generate_test_container("app")]);
    let mut start = None;
    for _ in 0..5 {
        let d = h.reconcile();
        if let Some(a) = d
            .actions
            .iter()
            .find(|a| matches!(a, Action::StartContainer { .. }))
        {
            start = Some(a.clone());
            break;
        }
        h.answer(&d.actions);
    }
    assert!(start.is_some(), "start issued, never answered");
    h.desired.tasks.clear();
    h.now += Config::default().op_timeout;
    let d = h.reconcile();
    assert!(d
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteTask { .. })));
    // The start answers late: the container runs, so it must be stopped, not deleted.
    h.r.observe(
        Observation::Started {
            task: "t1".into(),
            container: "app".into(),
            pid: 9,
        },
        h.now,
    );
    let d = h.reconcile();
    assert_eq!(h.task("t1").phase, TaskPhase::Stopping);
    assert!(d
        .actions
        .iter()
        .any(|a| matches!(a, Action::StopContainer { .. })));
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteTask { .. })));
}

#[test]
fn backoff_failure_and_launch_never_share_a_call() {
    let mut h = Harness::new(Desired::default());
    let spec = generate_test_service(generate_test_task(vec![generate_test_container("app")]), 2);
    h.desired.services.insert("web".into(), spec);
    h.settle();
    let ids: Vec<TaskId> = h.service_tasks("web").into_iter().map(|(i, _)| i).collect();
    // A fails and is gone; its backoff has long expired when B fails.
    h.exit(&ids[0].0, "app", 1);
    h.settle();
    h.now += Duration::from_secs(400);
    h.exit(&ids[1].0, "app", 1);
    let d = h.reconcile();
    assert!(d
        .actions
        .iter()
        .any(|a| matches!(a, Action::Report(Event::ServiceBackoff { .. }))));
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::Report(Event::TaskLaunched { .. }))));
}
