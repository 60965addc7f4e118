//! Supervisor figures (prints, asserts nothing about time), real containers, as root:
//! - agent restart → all tasks re-adopted: `kill -9` the agent with N tasks running,
//!   start it again, time until `READY=1` on a NOTIFY_SOCKET (load + adoption +
//!   cleanup), and check no container pid changed;
//! - container crash → restart: SIGKILL a container with `restartPolicy`, time until
//!   its new run's `monitor.json` appears (reconciler time runs 100x so the 60 s
//!   `restartAttemptPeriod` passes; detection is the 250 ms exit watch).
//! - memory: the agent's resident set (VmRSS, and its high-water mark VmHWM) idle,
//!   with 10 tasks running, and after hundreds of short tasks came and went (ECS's
//!   agent grew with many short tasks); one container monitor's VmRSS; the state
//!   file's size.
//!
//! - rollback: a broken revision (exits 1 at once) deployed over a healthy one-task
//!   service at the default settings (real time: 10 s backoff floor, 30 s window, ECS
//!   threshold 3), time from the file change to the old revision running again, with
//!   0 % / 100 % (the old task stops first: this is the outage) and 100 % / 200 % (the
//!   old task keeps serving: no outage; time until the rollback).
//!
//! Run: `SKERRY_TEST_IMAGES=… cargo bench -p skerry --bench supervisor [-- readopt|crash|memory|rollback]`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    skerry: PathBuf,
}

impl Env {
    fn new() -> Self {
        let images = std::env::var_os("SKERRY_TEST_IMAGES")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-images"));
        let dir = tempfile::Builder::new()
            .prefix("skerry-bench-sv-")
            .tempdir()
            .expect("tempdir");
        let config = dir.path().join("agent.toml");
        let state = dir.path().join("state");
        std::fs::write(&config, format!("state_dir = \"{}\"\n", state.display())).expect("config");
        let env = Self {
            dir,
            config,
            skerry: PathBuf::from(env!("CARGO_BIN_EXE_skerry")),
        };
        let ok = env
            .cmd(&["image", "import", "--name", "busybox"])
            .arg(images.join("busybox-amd64"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "import busybox (build images with scripts/build-test-images.sh)"
        );
        std::fs::create_dir_all(state.join("desired")).expect("desired");
        env
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.skerry);
        c.env("SKERRY_CONFIG", &self.config)
            .env("SKERRY_LOG", "warn")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn agent(&self, envs: &[(&str, &str)]) -> Child {
        let mut c = self.cmd(&["agent"]);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.spawn().expect("agent")
    }

    fn pid(&self, task: &str) -> Option<i64> {
        let p = self
            .state()
            .join(format!("tasks/{task}/containers/main/monitor.json"));
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
        v["container_pid"].as_i64()
    }

    fn cleanup(&self) {
        for e in std::fs::read_dir(self.state().join("tasks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = self
                .cmd(&["stop", &e.file_name().to_string_lossy()])
                .status();
        }
    }
}

/// `(VmRSS, VmHWM)` of a process, KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Private memory (not shared with other processes of the same binary), KiB:
/// what one more process really costs.
fn private_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("Private_Clean:") || l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

fn status(env: &Env) -> serde_json::Value {
    std::fs::read_to_string(env.state().join("supervisor/status.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

fn memory() {
    let env = Env::new();
    let mut agent = env.agent(&[]);
    let report = |what: &str, agent: &Child| {
        let (rss, hwm) = rss_kib(agent.id());
        let state = std::fs::metadata(env.state().join("supervisor/state.json"))
            .map(|m| m.len())
            .unwrap_or(0);
        let private = private_kib(agent.id());
        println!(
            "agent memory, {what}: VmRSS {rss} KiB (private {private} KiB), VmHWM {hwm} KiB; state.json {state} bytes"
        );
    };
    std::thread::sleep(Duration::from_secs(2));
    report("idle, no tasks", &agent);
    for i in 0..10 {
        std::fs::write(
            env.state().join(format!("desired/bmem{i}.json")),
            task(false),
        )
        .expect("task");
    }
    wait_for("10 running", 120, || {
        (0..10).all(|i| env.pid(&format!("bmem{i}")).is_some())
    });
    std::thread::sleep(Duration::from_secs(2));
    report("10 tasks running", &agent);
    let monitor =
        std::fs::read_to_string(env.state().join("tasks/bmem0/containers/main/monitor.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["monitor_pid"].as_u64())
            .unwrap_or(0);
    let monitor = u32::try_from(monitor).unwrap_or(0);
    let (mrss, mhwm) = rss_kib(monitor);
    println!(
        "one container monitor: VmRSS {mrss} KiB (private {} KiB: the rest is the skerry binary's pages, shared), VmHWM {mhwm} KiB",
        private_kib(monitor)
    );
    let short = r#"{"family": "s", "containerDefinitions": [{"name": "main", "image": "busybox", "memory": 16, "command": ["true"]}]}"#;
    let mut churned = 0;
    for round in 1..=30 {
        let ids: Vec<String> = (0..10).map(|i| format!("bshort{round}x{i}")).collect();
        for id in &ids {
            std::fs::write(env.state().join(format!("desired/{id}.json")), short).expect("task");
        }
        wait_for("short tasks ended", 120, || {
            let st = status(&env);
            ids.iter()
                .all(|id| st["tasks"][id.as_str()]["stopped_reason"].is_string())
        });
        for id in &ids {
            let _ = std::fs::remove_file(env.state().join(format!("desired/{id}.json")));
        }
        wait_for("short tasks removed", 120, || {
            let st = status(&env);
            ids.iter().all(|id| st["tasks"][id.as_str()].is_null())
        });
        churned += ids.len();
        if round % 10 == 0 {
            std::thread::sleep(Duration::from_secs(1));
            report(
                &format!("10 running + {churned} short tasks came and went"),
                &agent,
            );
        }
    }
    let _ = agent.kill();
    let _ = agent.wait();
    env.cleanup();
}

fn task(policy: bool) -> String {
    let extra = if policy {
        r#", "restartPolicy": {"enabled": true, "restartAttemptPeriod": 60}"#
    } else {
        ""
    };
    format!(
        r#"{{"family": "b", "containerDefinitions": [{{"name": "main", "image": "busybox", "memory": 32, "stopTimeout": 1, "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]{extra}}}]}}"#
    )
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn readopt(n: usize) {
    let env = Env::new();
    for i in 0..n {
        std::fs::write(
            env.state().join(format!("desired/bsv{n}x{i}.json")),
            task(false),
        )
        .expect("task");
    }
    let mut agent = env.agent(&[]);
    wait_for("all running", 120, || {
        (0..n).all(|i| env.pid(&format!("bsv{n}x{i}")).is_some())
    });
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<_> = (0..n).map(|i| env.pid(&format!("bsv{n}x{i}"))).collect();
    let sock_path = env.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut times = Vec::new();
    for _ in 0..5 {
        let _ = agent.kill();
        let _ = agent.wait();
        let t = Instant::now();
        agent = env.agent(&[("NOTIFY_SOCKET", sock_path.to_str().unwrap_or_default())]);
        let mut buf = [0u8; 1024];
        loop {
            let k = sock.recv(&mut buf).expect("notify");
            if buf[..k].starts_with(b"READY=1") {
                break;
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let after: Vec<_> = (0..n).map(|i| env.pid(&format!("bsv{n}x{i}"))).collect();
    times.sort_by(f64::total_cmp);
    println!(
        "agent restart -> {n} tasks re-adopted (READY=1): median {:.1} ms, max {:.1} ms over 5 kill -9s; pids unchanged: {}",
        times[times.len() / 2],
        times[times.len() - 1],
        before == after
    );
    let _ = agent.kill();
    let _ = agent.wait();
    env.cleanup();
}

fn crash_restart() {
    let env = Env::new();
    std::fs::write(env.state().join("desired/bsvcrash.json"), task(true)).expect("task");
    let mut agent = env.agent(&[("SKERRY_TEST_TIME_SCALE", "100")]);
    let mut times = Vec::new();
    for _ in 0..10 {
        wait_for("running", 60, || env.pid("bsvcrash").is_some());
        let pid = env.pid("bsvcrash").unwrap_or(0);
        std::thread::sleep(Duration::from_millis(800)); // > restartAttemptPeriod at 100x
        let t = Instant::now();
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        wait_for("restarted", 60, || {
            env.pid("bsvcrash").is_some_and(|p| p != pid)
        });
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "container crash -> restarted in place: median {:.0} ms, min {:.0} ms, max {:.0} ms over 10 crashes (exit watch period 250 ms)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    let _ = agent.kill();
    let _ = agent.wait();
    env.cleanup();
}

fn rollback_service(script: &str, percents: (u32, u32)) -> String {
    let (min, max) = percents;
    format!(
        r#"{{"taskDefinition": {{"family": "b", "containerDefinitions": [{{"name": "main", "image": "busybox", "memory": 32, "stopTimeout": 5, "command": ["sh", "-c", "{script}"]}}]}}, "desiredCount": 1, "deploymentConfiguration": {{"minimumHealthyPercent": {min}, "maximumPercent": {max}, "deploymentCircuitBreaker": {{"enable": true, "rollback": true}}}}}}"#
    )
}

/// Broken deploy → old revision running again, at the default settings.
fn rollback(percents: (u32, u32)) {
    let env = Env::new();
    let file = env.state().join("desired/bsvroll.service.json");
    let good = "trap 'exit 0' TERM; while true; do sleep 1; done";
    std::fs::write(&file, rollback_service(good, percents)).expect("service");
    let mut agent = env.agent(&[]);
    let svc = |st: &serde_json::Value, k: &str| st["services"]["bsvroll"][k].clone();
    wait_for("first deployment completed", 120, || {
        svc(&status(&env), "deployment")["completed"] == true
    });
    let good_rev = svc(&status(&env), "revision_id");
    let first_pid = env.pid("bsvroll.1");
    let t = Instant::now();
    std::fs::write(&file, rollback_service("exit 1", percents)).expect("broken");
    wait_for("rolled back and running", 600, || {
        let st = status(&env);
        svc(&st, "deployment")["rolled_back"] == true
            && st["tasks"].as_object().is_some_and(|t| {
                t.values().any(|t| {
                    t["revision_id"] == good_rev
                        && t["phase"] == "Active"
                        && t["containers"]["main"]["state"] == "RUNNING"
                })
            })
    });
    let secs = t.elapsed().as_secs_f64();
    let kept = first_pid.is_some() && env.pid("bsvroll.1") == first_pid;
    println!(
        "broken deploy -> service restored, {}%/{}%: {secs:.1} s ({})",
        percents.0,
        percents.1,
        if kept {
            "the old task kept serving: no outage"
        } else {
            "the old task was stopped first: outage"
        }
    );
    let _ = agent.kill();
    let _ = agent.wait();
    env.cleanup();
}

/// `cargo bench --bench supervisor [-- readopt|crash|memory|rollback ...]`: all when none named.
fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if run("readopt") {
        for n in [1, 10, 30] {
            readopt(n);
        }
    }
    if run("crash") {
        crash_restart();
    }
    if run("memory") {
        memory();
    }
    if run("rollback") {
        rollback((0, 100));
        rollback((100, 200));
    }
}
