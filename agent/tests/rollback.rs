//! `skerry agent` with real containers: a broken new revision of a service is rolled
//! back because a deployment completes only when its tasks are stable (they served
//! for the stability window). The demo's own settings (one task, 0 % / 100 %, breaker
//! with rollback), definitions without `revision` (told apart by content digest),
//! revisions that crash at once, after 5 s, after the window, or turn UNHEALTHY, and
//! `kill -9` of the agent in the middle of the window. Service names start with `rb`
//! plus a per-test word (cgroup names are host-global; tests run in parallel).
//!
//! Reconciler time runs 10× (`SKERRY_TEST_TIME_SCALE`): the default 30 s window is
//! 3 s here, `"stabilityWindowSeconds": 100` is 10 s; container scripts run in real
//! time. Each test prints how long the service was down (not asserted).

mod common;

use std::time::{Duration, Instant};

use common::{AgentProc, TestEnv};
use serde_json::Value;

const SCALE: &str = "10";
const FOREVER: &str = "trap 'exit 0' TERM; while true; do sleep 0.2; done";

/// A test environment and its agent (killed on drop, tasks removed).
struct Rig {
    env: TestEnv,
    agent: Option<AgentProc>,
    name: &'static str,
}

impl Rig {
    fn new(name: &'static str) -> Self {
        Self {
            env: TestEnv::with_config("restart_backoff_secs = 1"),
            agent: None,
            name,
        }
    }

    fn start(&mut self) {
        self.agent = Some(self.env.agent(&[("SKERRY_TEST_TIME_SCALE", SCALE)]));
    }

    fn kill9(&mut self) {
        if let Some(mut a) = self.agent.take() {
            a.kill9();
        }
    }

    /// Writes the service file and sends SIGHUP, as an operator would.
    fn deploy(&self, svc: &str) {
        self.env
            .put_desired(&format!("{}.service.json", self.name), svc);
        if let Some(a) = &self.agent {
            let pid = nix::unistd::Pid::from_raw(a.pid());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
        }
    }

    fn svc<'a>(&self, st: &'a Value) -> &'a Value {
        &st["services"][self.name]
    }

    /// Deploys `svc` (the first revision) and waits until its deployment completed;
    /// returns its revision id.
    fn first(&mut self, svc: &str) -> String {
        self.deploy(svc);
        self.start();
        let st = self
            .env
            .wait_status("first deployment completed", 60, |st| {
                self.svc(st)["deployment"]["completed"] == true
                    && self.svc(st)["stable_revision_id"].is_string()
            });
        let a = self.svc(&st)["revision_id"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert_eq!(running(&st, self.name, &a), 1, "{st:#}");
        a
    }

    /// The revision id the agent gives the service's current file.
    fn target(&self, not: &str) -> String {
        let st = self.env.wait_status("new revision seen", 30, |st| {
            self.svc(st)["revision_id"]
                .as_str()
                .is_some_and(|r| r != not)
        });
        self.svc(&st)["revision_id"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    fn events(&self) -> String {
        let out = self
            .env
            .skerry(&["events", "--service", self.name])
            .output()
            .expect("events");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the service is rolled back and `a` runs again; returns the events.
    fn wait_rolled_back(&self, a: &str, b: &str, since: Instant) -> String {
        self.env
            .wait_status("rolled back, first revision running", 120, |st| {
                self.svc(st)["deployment"]["rolled_back"] == true && running(st, self.name, a) == 1
            });
        println!(
            "{}: broken deploy -> service restored in {:.1} s (time scale {SCALE}x)",
            self.name,
            since.elapsed().as_secs_f64()
        );
        let ev = self.events();
        let rolled = format!(
            "service {}: rolled back from revision {b} to {a}",
            self.name
        );
        assert!(ev.contains(&rolled), "no {rolled:?} in\n{ev}");
        let done = format!("deployment of revision {b} completed");
        assert!(!ev.contains(&done), "a broken revision completed:\n{ev}");
        assert!(!ev.contains("revision 0"), "{ev}");
        ev
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.kill9();
        self.env.stop_all_tasks();
    }
}

/// A container definition running `sh -c script` in busybox.
fn ctr(script: &str, extra: &str) -> String {
    format!(
        r#"{{"name": "main", "image": "busybox:latest", "memory": 32, "stopTimeout": 2, "command": ["sh", "-c", {}]{extra}}}"#,
        serde_json::to_string(script).expect("json")
    )
}

/// A one-task service with the demo's settings, no `revision`; `window` adds
/// `stabilityWindowSeconds` when given.
fn service(container: &str, window: Option<u32>) -> String {
    let window = window.map_or(String::new(), |w| {
        format!(r#""stabilityWindowSeconds": {w}, "#)
    });
    format!(
        r#"{{"taskDefinition": {{"family": "web", "containerDefinitions": [{container}]}}, "desiredCount": 1, "deploymentConfiguration": {{"minimumHealthyPercent": 0, "maximumPercent": 100, {window}"deploymentCircuitBreaker": {{"enable": true, "rollback": true}}}}}}"#
    )
}

/// Tasks of service `name` whose revision is `rev`, active, with `main` running.
fn running(st: &Value, name: &str, rev: &str) -> usize {
    let owner = format!("service:{name}");
    st["tasks"]
        .as_object()
        .map(|t| {
            t.values()
                .filter(|t| {
                    t["owner"] == owner.as_str()
                        && t["revision_id"] == rev
                        && t["phase"] == "Active"
                        && t["containers"]["main"]["state"] == "RUNNING"
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn rollback_revision_exiting_at_once_with_the_demo_settings() {
    let mut r = Rig::new("rbcrash");
    let a = r.first(&service(&ctr(FOREVER, ""), None));
    let t = Instant::now();
    r.deploy(&service(&ctr("exit 1", ""), None));
    let b = r.target(&a);
    assert_ne!(a, b);
    assert!(
        !a.contains(' ') && !b.contains(' '),
        "digests only: {a} {b}"
    );
    let ev = r.wait_rolled_back(&a, &b, t);
    println!("{ev}");
    let replaced = format!("Replaced by deployment of revision {b}");
    assert!(ev.contains(&replaced), "{ev}");
    // `skerry ps` names the revision too.
    let ps = r.env.skerry(&["ps"]).output().expect("ps");
    let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(
        ps.lines()
            .any(|l| l.starts_with("rbcrash.") && l.contains(&a) && l.contains("running")),
        "{ps}"
    );
}

#[test]
fn rollback_revision_exiting_after_5s_inside_the_window() {
    let mut r = Rig::new("rbfive");
    let a = r.first(&service(&ctr(FOREVER, ""), Some(100)));
    let t = Instant::now();
    r.deploy(&service(&ctr("sleep 5; exit 1", ""), Some(100)));
    let b = r.target(&a);
    r.wait_rolled_back(&a, &b, t);
}

#[test]
fn rollback_not_for_a_revision_exiting_after_the_window() {
    let mut r = Rig::new("rblate");
    let a = r.first(&service(&ctr(FOREVER, ""), Some(100)));
    r.deploy(&service(&ctr("sleep 13; exit 1", ""), Some(100)));
    let b = r.target(&a);
    let st = r
        .env
        .wait_status("b running", 60, |st| running(st, r.name, &b) == 1);
    let first = running_task(&st, &b);
    // Completed after 10 s, exits at 13 s, relaunched under backoff: another task of b.
    let st = r.env.wait_status("b relaunched after its exit", 90, |st| {
        r.svc(st)["deployment"]["completed"] == true
            && r.svc(st)["stable_revision_id"] == b.as_str()
            && running_task(st, &b).is_some_and(|id| Some(&id) != first.as_ref())
    });
    assert_eq!(r.svc(&st)["deployment"]["rolled_back"], false, "{st:#}");
    let ev = r.events();
    for needle in [
        format!("deployment of revision {b} completed"),
        "consecutive failure(s), next launch in".to_owned(),
    ] {
        assert!(ev.contains(&needle), "no {needle:?} in\n{ev}");
    }
    assert!(!ev.contains("rolled back"), "{ev}");
}

#[test]
fn rollback_revision_turning_unhealthy_inside_the_window() {
    let mut r = Rig::new("rbsick");
    let a = r.first(&service(&ctr(FOREVER, ""), Some(100)));
    let t = Instant::now();
    // Healthy for 2 s, then the check fails: UNHEALTHY after 2 failures (0.5 s apart).
    let check = r#", "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ok"], "interval": 5, "timeout": 2, "retries": 2, "startPeriod": 0}"#;
    let script = format!("touch /tmp/ok; sleep 2; rm /tmp/ok; {FOREVER}");
    r.deploy(&service(&ctr(&script, check), Some(100)));
    let b = r.target(&a);
    let ev = r.wait_rolled_back(&a, &b, t);
    for needle in [
        "health is now Healthy",
        "health is now Unhealthy",
        "Task failed container health checks",
    ] {
        assert!(ev.contains(needle), "no {needle:?} in\n{ev}");
    }
}

#[test]
fn rollback_outcome_unchanged_by_kill9_of_the_agent_mid_window() {
    let mut r = Rig::new("rbkill");
    let a = r.first(&service(&ctr(FOREVER, ""), Some(100)));
    let t = Instant::now();
    r.deploy(&service(&ctr("sleep 5; exit 1", ""), Some(100)));
    let b = r.target(&a);
    r.env
        .wait_status("b running", 60, |st| running(st, r.name, &b) == 1);
    // 2 s into b's first run (exit at 5 s, window 10 s) the agent dies for 2 s. The
    // exit comes while it is away or just after it is back: either way it counts, and
    // the breaker still rolls back.
    std::thread::sleep(Duration::from_secs(2));
    r.kill9();
    std::thread::sleep(Duration::from_secs(2));
    r.start();
    r.wait_rolled_back(&a, &b, t);
}

#[test]
fn rollback_window_survives_kill9_and_a_good_revision_completes() {
    let mut r = Rig::new("rbgood");
    let a = r.first(&service(&ctr(FOREVER, ""), Some(100)));
    r.deploy(&service(&ctr(&format!("true; {FOREVER}"), ""), Some(100)));
    let b = r.target(&a);
    let st = r
        .env
        .wait_status("b running", 60, |st| running(st, r.name, &b) == 1);
    let pid = task_pid(&st, &b);
    std::thread::sleep(Duration::from_secs(3));
    r.kill9();
    std::thread::sleep(Duration::from_secs(1));
    r.start();
    let st = r.env.wait_status("b completed", 60, |st| {
        r.svc(st)["deployment"]["completed"] == true
            && r.svc(st)["stable_revision_id"] == b.as_str()
    });
    // The same container: re-adopted, not restarted, and no failure was counted.
    assert_eq!(task_pid(&st, &b), pid, "{st:#}");
    assert_eq!(r.svc(&st)["deployment"]["failures"], 0, "{st:#}");
}

/// The id of the active task of revision `rev` whose `main` runs.
fn running_task(st: &Value, rev: &str) -> Option<String> {
    st["tasks"].as_object()?.iter().find_map(|(id, t)| {
        (t["revision_id"] == rev
            && t["phase"] == "Active"
            && t["containers"]["main"]["state"] == "RUNNING")
            .then(|| id.clone())
    })
}

/// The pid of the running `main` container of the task of revision `rev`.
fn task_pid(st: &Value, rev: &str) -> Option<u64> {
    st["tasks"].as_object()?.values().find_map(|t| {
        (t["revision_id"] == rev && t["phase"] == "Active")
            .then(|| t["containers"]["main"]["pid"].as_u64())
            .flatten()
    })
}
