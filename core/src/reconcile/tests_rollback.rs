//! Deployments complete only when stable: the stability window, failures inside it
//! counting for the circuit breaker, rollback to the last completed revision, and
//! revisions told apart without an ECS `revision` number.

use embassy_time::{Duration, Instant};

use super::testutil::*;
use super::*;
use crate::spec::TaskDefinition;

const BAD: &str = "registry.local/app:bad";

fn breaker(threshold: Option<u32>) -> Option<CircuitBreaker> {
    Some(CircuitBreaker {
        rollback: true,
        failure_threshold: threshold,
        deadline: Duration::from_secs(600),
    })
}

/// A one-task service of `def` with the demo's settings (0 % / 100 %, breaker with
/// rollback and ECS's threshold), run until its first deployment completed.
fn demo_service(def: &TaskDefinition, percents: (u32, u32)) -> Harness {
    let mut h = Harness::new(Desired::default());
    let mut spec = generate_test_service(def.clone(), 1);
    spec.deployment.minimum_healthy_percent = percents.0;
    spec.deployment.maximum_percent = percents.1;
    spec.deployment.circuit_breaker = breaker(None);
    h.desired.services.insert("web".into(), spec);
    h.run_for(MIN_STABILITY_WINDOW + Duration::from_secs(1));
    assert!(completed(&h, def), "first deployment completed");
    h
}

/// `def` without an ECS revision and another image: another content.
fn broken(def: &TaskDefinition) -> TaskDefinition {
    let mut d = def.clone();
    d.containers[0].image = BAD.into();
    d
}

fn plain() -> TaskDefinition {
    let mut d = generate_test_task(vec![generate_test_container("app")]);
    d.revision = 0;
    d
}

fn completed(h: &Harness, def: &TaskDefinition) -> bool {
    let id = def.revision_id();
    h.events()
        .any(|e| matches!(e, Event::DeploymentCompleted { revision, .. } if *revision == id))
}

fn live_definitions(h: &Harness) -> Vec<TaskDefinition> {
    h.service_tasks("web")
        .into_iter()
        .filter(|(_, t)| t.is_live())
        .map(|(_, t)| t.definition)
        .collect()
}

fn set_definition(h: &mut Harness, def: &TaskDefinition) {
    if let Some(s) = h.desired.services.get_mut("web") {
        s.task_definition = def.clone();
    }
}

fn is_bad(t: &TaskRecord) -> bool {
    t.definition.containers[0].image == BAD
}

#[test]
fn service_deployment_completes_only_after_the_stability_window() {
    let mut h = Harness::new(Desired::default());
    let def = plain();
    h.desired
        .services
        .insert("web".into(), generate_test_service(def.clone(), 2));
    h.settle();
    assert_eq!(live_definitions(&h).len(), 2);
    h.run_for(MIN_STABILITY_WINDOW - Duration::from_secs(1));
    assert!(!completed(&h, &def), "completed before the window");
    h.run_for(Duration::from_secs(1));
    assert!(completed(&h, &def));
    let st = &h.r.snapshot().services["web"];
    assert_eq!(st.stable.as_ref(), Some(&def));
}

#[test]
fn service_explicit_window_and_health_check_default() {
    let mut d = plain();
    d.containers[0].health_check = Some(generate_test_health_check(20, 3, 40));
    // 40 s + 3 × (20 s interval + 5 s timeout + 5 s grace)
    assert_eq!(
        default_stability_window(&d, Duration::from_secs(5)),
        Duration::from_secs(130)
    );
    assert_eq!(
        default_stability_window(&plain(), Duration::from_secs(5)),
        MIN_STABILITY_WINDOW
    );
    let mut h = Harness::new(Desired::default());
    let mut spec = generate_test_service(plain(), 1);
    spec.deployment.stability_window = Some(Duration::from_secs(5));
    h.desired.services.insert("web".into(), spec);
    h.run_for(Duration::from_secs(5));
    assert!(completed(&h, &plain()));
}

/// The scenario: one task, 0 % / 100 %, v2 exits 1 at once.
#[test]
fn service_revision_crashing_at_start_is_rolled_back_to_the_completed_one() {
    let v1 = plain();
    let mut h = demo_service(&v1, (0, 100));
    let v2 = broken(&v1);
    set_definition(&mut h, &v2);
    h.run_crashing(
        Duration::from_secs(300),
        Duration::from_secs(1),
        |_, t, _, _| is_bad(t),
    );
    let (a, b) = (v1.revision_id(), v2.revision_id());
    assert_ne!(a, b, "told apart without a revision number");
    assert!(h.events().any(
        |e| matches!(e, Event::DeploymentRolledBack { from, to, .. } if *from == b && *to == a)
    ));
    assert!(!completed(&h, &v2), "a crashing revision never completes");
    assert_eq!(live_definitions(&h), vec![v1.clone()]);
    // The rollback forgives the broken revision's backoff: v1 comes back after the floor.
    let after_rollback = h
        .events()
        .skip_while(|e| !matches!(e, Event::DeploymentRolledBack { .. }))
        .find_map(|e| match e {
            Event::ServiceBackoff {
                consecutive_failures,
                delay,
                ..
            } => Some((*consecutive_failures, *delay)),
            _ => None,
        });
    let floor = Config::default().backoff_floor;
    assert!(
        after_rollback.is_some_and(|(n, d)| n == 1 && d < floor + floor),
        "{after_rollback:?}"
    );
    let text: Vec<String> = h.events().map(ToString::to_string).collect();
    let replaced = format!("Replaced by deployment of revision {b}");
    assert!(text.iter().any(|l| l.contains(&replaced)), "{text:#?}");
    assert!(!text.iter().any(|l| l.contains("revision 0")), "{text:#?}");
}

#[test]
fn service_revision_exiting_inside_the_window_is_rolled_back() {
    let v1 = plain();
    let mut h = demo_service(&v1, (0, 100));
    let v2 = broken(&v1);
    set_definition(&mut h, &v2);
    // Runs 5 s, then exits: serving for a while, never for the window.
    h.run_crashing(
        Duration::from_secs(400),
        Duration::from_secs(1),
        |_, t, c, now| {
            is_bad(t)
                && c.last_started_at
                    .is_some_and(|s| now >= s + Duration::from_secs(5))
        },
    );
    assert!(h
        .events()
        .any(|e| matches!(e, Event::DeploymentRolledBack { .. })));
    assert!(!completed(&h, &v2));
    assert_eq!(live_definitions(&h), vec![v1]);
}

#[test]
fn service_crash_after_the_window_is_a_restart_not_a_rollback() {
    let v1 = plain();
    let mut h = demo_service(&v1, (0, 100));
    let v2 = broken(&v1);
    set_definition(&mut h, &v2);
    h.run_for(MIN_STABILITY_WINDOW + Duration::from_secs(10));
    assert!(completed(&h, &v2));
    // Every run of v2 now ends 10 s past the window.
    let late = MIN_STABILITY_WINDOW + Duration::from_secs(10);
    h.run_crashing(
        Duration::from_secs(600),
        Duration::from_secs(1),
        |_, t, c, now| is_bad(t) && c.last_started_at.is_some_and(|s| now >= s + late),
    );
    assert!(!h.events().any(|e| matches!(
        e,
        Event::DeploymentRolledBack { .. } | Event::DeploymentFailed { .. }
    )));
    let backoffs = h
        .events()
        .filter(|e| matches!(e, Event::ServiceBackoff { .. }))
        .count();
    assert!(backoffs >= 3, "{backoffs} relaunches under backoff");
    let relaunched = h
        .events()
        .filter(
            |e| matches!(e, Event::TaskLaunched { revision, .. } if *revision == v2.revision_id()),
        )
        .count();
    assert!(relaunched >= backoffs, "{relaunched} launches of v2");
    assert!(live_definitions(&h).iter().all(|d| *d == v2));
}

#[test]
fn service_unhealthy_inside_the_window_is_rolled_back() {
    let mut v1 = plain();
    v1.containers[0].health_check = Some(generate_test_health_check(5, 2, 0));
    let mut h = Harness::new(Desired::default());
    let mut spec = generate_test_service(v1.clone(), 1);
    spec.deployment.circuit_breaker = breaker(Some(2));
    h.desired.services.insert("web".into(), spec);
    h.run_for(Duration::from_secs(60));
    assert!(completed(&h, &v1));
    let v2 = broken(&v1);
    set_definition(&mut h, &v2);
    // HEALTHY first (one pass), then failing checks: UNHEALTHY inside the window.
    h.run_for(Duration::from_secs(6));
    h.health.insert(BAD.into(), Script::Fail);
    h.run_for(Duration::from_secs(300));
    assert!(h.events().any(|e| matches!(
        e,
        Event::HealthChanged {
            status: HealthStatus::Unhealthy,
            ..
        }
    )));
    assert!(h
        .events()
        .any(|e| matches!(e, Event::DeploymentRolledBack { .. })));
    assert_eq!(live_definitions(&h), vec![v1]);
}

#[test]
fn service_old_task_keeps_serving_until_the_new_one_is_stable() {
    let v1 = plain();
    let mut h = demo_service(&v1, (100, 200));
    let mut v2 = v1.clone();
    v2.containers[0].image = "registry.local/app:2".into();
    set_definition(&mut h, &v2);
    let start = h.now;
    let mut v1_stopped_at: Option<Instant> = None;
    for _ in 0..60 {
        h.run_for(Duration::from_secs(1));
        let v1_live = live_definitions(&h).contains(&v1);
        if !v1_live && v1_stopped_at.is_none() {
            v1_stopped_at = Some(h.now);
        }
    }
    let stopped = v1_stopped_at.expect("v1 replaced");
    assert!(
        stopped >= start + MIN_STABILITY_WINDOW,
        "v1 stopped {:?} after the update",
        stopped - start
    );
    assert!(completed(&h, &v2));
    assert_eq!(live_definitions(&h), vec![v2]);
}

#[test]
fn service_restored_snapshot_mid_window_keeps_counting() {
    let v1 = plain();
    let mut h = demo_service(&v1, (0, 100));
    let v2 = broken(&v1);
    set_definition(&mut h, &v2);
    h.run_for(Duration::from_secs(20));
    // The agent restarts 20 s into the window: the window goes on, not from zero.
    let snap = h.r.snapshot().clone();
    h.r = Reconciler::restore(Config::default(), snap);
    h.run_for(MIN_STABILITY_WINDOW - Duration::from_secs(15));
    assert!(completed(&h, &v2));
}

#[test]
fn service_deadline_rollback_relaunches_after_the_floor_not_the_backoff() {
    let mut v1 = plain();
    v1.containers[0].health_check = Some(generate_test_health_check(5, 2, 0));
    let mut h = Harness::new(Desired::default());
    let mut spec = generate_test_service(v1.clone(), 1);
    spec.deployment.minimum_healthy_percent = 0;
    spec.deployment.maximum_percent = 100;
    spec.deployment.circuit_breaker = Some(CircuitBreaker {
        rollback: true,
        failure_threshold: Some(100),
        deadline: Duration::from_secs(600),
    });
    h.desired.services.insert("web".into(), spec);
    h.run_for(Duration::from_secs(60));
    assert!(completed(&h, &v1));
    let v2 = broken(&v1);
    set_definition(&mut h, &v2);
    // Its check never answers: UNHEALTHY by timeouts, again and again, under a growing
    // backoff, until the deadline rolls back (the threshold is out of reach).
    h.health.insert(BAD.into(), Script::Silent);
    h.run_for(Duration::from_secs(601));
    assert!(h.events().any(|e| matches!(
        e,
        Event::DeploymentRolledBack { reason, .. } if reason.contains("within 600s")
    )));
    let floor = Config::default().backoff_floor;
    h.run_for(floor + floor);
    assert_eq!(live_definitions(&h), vec![v1], "v1 back within the floor");
}
