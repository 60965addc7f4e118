//! Decision time of `Reconciler::reconcile` for 100 tasks × 5 containers, steady state
//! (all running, health checks due) and at launch. Plain `std::time`, no criterion;
//! prints min / median / p90 and asserts nothing about time.
//!
//! Run: `cargo bench -p skerry-core --bench reconcile`.

use std::time::{Duration as StdDuration, Instant as StdInstant};

use embassy_time::Instant;
use skerry_core::reconcile::{
    Action, CheckOutcome, Config, Desired, ExitReason, Observation, Reconciler, TaskId,
};
use skerry_core::spec::{
    ContainerDefinition, Dependency, DependencyCondition, HealthCheck, HealthCommand,
    NamespaceMode, NetworkMode, TaskDefinition,
};

const TASKS: usize = 100;
const CONTAINERS: usize = 5;
const RUNS: usize = 200;

fn container(i: usize) -> ContainerDefinition {
    ContainerDefinition {
        essential: i == 0,
        depends_on: if i == 0 {
            vec![]
        } else {
            vec![Dependency {
                container: "c0".into(),
                condition: DependencyCondition::Healthy,
            }]
        },
        health_check: (i == 0).then(|| HealthCheck {
            command: HealthCommand::Exec(vec!["true".into()]),
            interval: StdDuration::from_secs(10),
            timeout: StdDuration::from_secs(2),
            retries: 3,
            start_period: StdDuration::ZERO,
        }),
        ..ContainerDefinition::new(format!("c{i}"), format!("registry.local/c{i}:1"))
    }
}

fn desired() -> Desired {
    let def = TaskDefinition {
        family: "bench".into(),
        revision: 1,
        network_mode: NetworkMode::Host,
        pid_mode: NamespaceMode::Private,
        ipc_mode: NamespaceMode::Private,
        volumes: vec![],
        cpu_units: None,
        memory_mib: None,
        containers: (0..CONTAINERS).map(container).collect(),
    };
    let mut d = Desired::default();
    for t in 0..TASKS {
        d.tasks.insert(TaskId(format!("task-{t:03}")), def.clone());
    }
    d
}

/// Answers every action successfully at `now`.
fn answer(r: &mut Reconciler, actions: Vec<Action>, now: Instant) {
    for a in actions {
        let obs = match a {
            Action::PullImage {
                task, container, ..
            } => Observation::ImagePulled { task, container },
            Action::CreateContainer { task, container } => Observation::Created { task, container },
            Action::StartContainer { task, container }
            | Action::RestartContainer {
                task, container, ..
            } => Observation::Started {
                task,
                container,
                pid: 1,
            },
            Action::RunHealthCheck {
                task, container, ..
            } => Observation::HealthCheckDone {
                task,
                container,
                outcome: CheckOutcome::Pass,
            },
            Action::StopContainer {
                task, container, ..
            } => Observation::Exited {
                task,
                container,
                code: 143,
                reason: ExitReason::Killed,
            },
            Action::DeleteTask { task } => Observation::TaskDeleted { task },
            Action::Report(_) | Action::CancelPull { .. } => continue,
        };
        r.observe(obs, now);
    }
}

fn report(name: &str, mut samples: Vec<StdDuration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<44} min {:>9.1?}  median {:>9.1?}  p90 {:>9.1?}  (n={})",
        samples[0],
        at(0.5),
        at(0.9),
        samples.len()
    );
}

fn main() {
    let desired = desired();
    let mut launch = Vec::with_capacity(RUNS);
    let mut steady = Vec::with_capacity(RUNS);
    let mut checks = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let mut r = Reconciler::new(Config::default());
        let mut now = Instant::from_secs(1);
        let t = StdInstant::now();
        let d = std::hint::black_box(r.reconcile(&desired, now));
        launch.push(t.elapsed());
        answer(&mut r, d.actions, now);
        // Bring everything up: pull → create → start c0 → healthy → start the rest.
        let wake = loop {
            let d = r.reconcile(&desired, now);
            let idle = d.actions.iter().all(|a| matches!(a, Action::Report(_)));
            answer(&mut r, d.actions, now);
            let running = r
                .observed()
                .tasks
                .values()
                .flat_map(|t| &t.containers)
                .filter(|c| c.is_running())
                .count();
            if idle && running == TASKS * CONTAINERS {
                break d.next_wakeup;
            }
            if idle {
                now = d.next_wakeup.expect("something to wait for");
            }
        };
        // Next wakeup: the 100 health checks fall due together.
        now = wake.expect("checks scheduled");
        let t = StdInstant::now();
        let d = std::hint::black_box(r.reconcile(&desired, now));
        checks.push(t.elapsed());
        let issued = d
            .actions
            .iter()
            .filter(|a| matches!(a, Action::RunHealthCheck { .. }))
            .count();
        assert_eq!(issued, TASKS, "all checks due");
        answer(&mut r, d.actions, now);
        let t = StdInstant::now();
        let d = std::hint::black_box(r.reconcile(&desired, now));
        steady.push(t.elapsed());
        assert!(d.actions.is_empty(), "steady state issues nothing");
    }
    println!("reconcile, {TASKS} tasks x {CONTAINERS} containers, {RUNS} runs:");
    report("launch (500 pulls issued)", launch);
    report("steady state (nothing to do)", steady);
    report("health checks due (100 issued)", checks);
}
