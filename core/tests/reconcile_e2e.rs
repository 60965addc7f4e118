//! The reconciler through its public API only, on the repository's example
//! `examples/gateway-stack.json` (migrate → SUCCESS, mqtt-broker → HEALTHY, then
//! telemetry), with a small fake executor and a clock moved to each wakeup.
//! Also: the reconcile module never reads a clock or sleeps.

use embassy_time::{Duration, Instant};
use skerry_core::reconcile::{
    default_stability_window, Action, CheckOutcome, Config, ContainerState, Desired, Event,
    ExitReason, Observation, Reconciler, ServiceSpec, TaskPhase,
};
use skerry_core::spec::{parse_task_definition, ParseOptions};

struct Fake {
    r: Reconciler,
    desired: Desired,
    now: Instant,
    log: Vec<Action>,
}

impl Fake {
    /// Reconciles and answers until idle; `migrate` exits 0 right after it starts.
    fn settle(&mut self) -> Option<Instant> {
        for _ in 0..100 {
            let d = self.r.reconcile(&self.desired, self.now);
            self.log.extend(d.actions.iter().cloned());
            if d.actions.iter().all(|a| matches!(a, Action::Report(_))) {
                return d.next_wakeup;
            }
            for a in d.actions {
                let obs = match a {
                    Action::PullImage {
                        task, container, ..
                    } => Observation::ImagePulled { task, container },
                    Action::CreateContainer { task, container } => {
                        Observation::Created { task, container }
                    }
                    Action::StartContainer { task, container }
                    | Action::RestartContainer {
                        task, container, ..
                    } => {
                        let one_shot = container == "migrate";
                        self.r.observe(
                            Observation::Started {
                                task: task.clone(),
                                container: container.clone(),
                                pid: 7,
                            },
                            self.now,
                        );
                        if !one_shot {
                            continue;
                        }
                        Observation::Exited {
                            task,
                            container,
                            code: 0,
                            reason: ExitReason::Exited,
                        }
                    }
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
                self.r.observe(obs, self.now);
            }
        }
        panic!("did not settle");
    }

    fn run_until(&mut self, end: Instant) {
        while let Some(w) = self.settle().filter(|w| *w <= end) {
            self.now = w;
        }
        self.now = end;
        self.settle();
    }

    fn position(&self, f: impl Fn(&Action) -> bool) -> usize {
        self.log.iter().position(f).expect("action issued")
    }
}

fn gateway_stack() -> skerry_core::spec::TaskDefinition {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/gateway-stack.json"
    );
    let json = std::fs::read_to_string(path).expect("example present");
    parse_task_definition(&json, &ParseOptions::default()).expect("example valid")
}

#[test]
fn e2e_gateway_stack_starts_in_dependency_order_and_stops_in_reverse() {
    let def = gateway_stack();
    // Healthy, then stable: serving for the window its health check implies.
    let window = default_stability_window(&def, Config::default().grace);
    let mut desired = Desired::default();
    desired.services.insert(
        "gateway".into(),
        ServiceSpec {
            task_definition: def,
            desired_count: 1,
            deployment: Default::default(),
        },
    );
    let mut f = Fake {
        r: Reconciler::new(Config::default()),
        desired,
        now: Instant::from_secs(10),
        log: vec![],
    };
    f.run_until(Instant::from_secs(60) + window);

    let task =
        f.r.observed()
            .tasks
            .keys()
            .next()
            .cloned()
            .expect("one task");
    let started = |c: &'static str| move |a: &Action| matches!(a, Action::StartContainer { container, .. } if container == c);
    let healthy = f.position(|a| matches!(a, Action::Report(Event::HealthChanged { container, .. }) if container == "mqtt-broker"));
    assert!(f.position(started("telemetry")) > f.position(started("migrate")));
    assert!(
        f.position(started("telemetry")) > healthy,
        "telemetry waits for the broker's health"
    );
    assert!(f.log.iter().any(|a| matches!(a, Action::Report(Event::DeploymentCompleted { service, .. }) if service == "gateway")));
    let rec = &f.r.observed().tasks[&task];
    assert_eq!(rec.phase, TaskPhase::Active);
    assert!(matches!(
        rec.container("telemetry").map(|(_, r)| &r.state),
        Some(ContainerState::Running { .. })
    ));

    f.desired.services.clear();
    f.log.clear();
    f.settle();
    let stopped = |c: &'static str| move |a: &Action| matches!(a, Action::StopContainer { container, .. } if container == c);
    assert!(
        f.position(stopped("telemetry")) < f.position(stopped("mqtt-broker")),
        "dependents stop first"
    );
    assert!(f.log.iter().any(
        |a| matches!(a, Action::StopContainer { container, timeout, .. }
        if container == "mqtt-broker" && *timeout == Duration::from_secs(10))
    ));
    assert!(!f.r.observed().tasks.contains_key(&task));
}

#[test]
fn e2e_reconcile_module_reads_no_clock() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/reconcile");
    let forbidden = [
        "Instant::now",
        "SystemTime",
        "std::thread::sleep",
        "tokio::",
        "rand::",
        "std::fs",
        "std::net",
        "std::time::Instant",
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("reconcile dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("source");
        for word in forbidden {
            assert!(!text.contains(word), "{} mentions {word}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 10);
}
