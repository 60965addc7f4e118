//! `skerry agent` with real containers: health checks, dependsOn, restart policy,
//! essential exits, services (rolling update, rollback), crash-only restarts
//! (`kill -9`), an offline reboot (power loss), torn state, bad desired files, systemd notifications, and a torture
//! run. Task ids start with `sv` plus a per-test word: cgroup names are host-global
//! and other tests run in parallel.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{task_container, AgentProc, TestEnv};
use serde_json::Value;

/// An environment plus its agent; on drop the agent is killed and tasks removed.
struct Harness {
    env: TestEnv,
    agent: Option<AgentProc>,
    envs: Vec<(String, String)>,
}

impl Harness {
    fn new(envs: &[(&str, &str)]) -> Self {
        Self {
            env: TestEnv::with_config("restart_backoff_secs = 1"),
            agent: None,
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Like [`Harness::new`], with the state directory on a small tmpfs.
    fn on_tmpfs(envs: &[(&str, &str)], mib: u32) -> Self {
        let mut h = Self::new(&[]);
        h.env = TestEnv::with_state_on_tmpfs("restart_backoff_secs = 1", mib);
        h.envs = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        h
    }

    fn start(&mut self) {
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.agent = Some(self.env.agent(&envs));
    }

    fn kill9(&mut self) {
        if let Some(mut a) = self.agent.take() {
            a.kill9();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.kill9();
        self.env.stop_all_tasks();
    }
}

fn state_of<'a>(st: &'a Value, task: &str, c: &str) -> &'a str {
    task_container(st, task, c)["state"].as_str().unwrap_or("")
}

fn health_of<'a>(st: &'a Value, task: &str, c: &str) -> &'a str {
    task_container(st, task, c)["health"].as_str().unwrap_or("")
}

/// A container definition (JSON object) running `sh -c script` in busybox.
fn ctr(name: &str, script: &str, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        r#"{{"name": "{name}", "image": "busybox:latest", "memory": 32, "stopTimeout": 2, "command": ["sh", "-c", {}]{extra}}}"#,
        serde_json::to_string(script).expect("json")
    )
}

fn task(family: &str, containers: &[String]) -> String {
    format!(
        r#"{{"family": "{family}", "containerDefinitions": [{}]}}"#,
        containers.join(", ")
    )
}

const FOREVER: &str = "trap 'exit 0' TERM; while true; do sleep 0.2; done";

#[test]
fn supervisor_health_check_passing_and_failing() {
    let mut h = Harness::new(&[("SKERRY_TEST_TIME_SCALE", "5")]);
    let hc = |cmd: &str| {
        format!(
            r#""healthCheck": {{"command": ["CMD-SHELL", "{cmd}"], "interval": 5, "timeout": 2, "retries": 2}}"#
        )
    };
    h.env.put_desired(
        "svhcok.json",
        &task("hc", &[ctr("main", FOREVER, &hc("test -d /proc/1"))]),
    );
    h.env.put_desired(
        "svhcbad.json",
        &task("hc", &[ctr("main", FOREVER, &hc("echo nope; exit 3"))]),
    );
    // A check that outlives its timeout is killed and counts as a failure.
    h.env.put_desired(
        "svhcto.json",
        &task("hc", &[ctr("main", FOREVER, &hc("sleep 30"))]),
    );
    h.start();
    let st = h.env.wait_status("health results", 60, |st| {
        health_of(st, "svhcok", "main") == "HEALTHY"
            && health_of(st, "svhcbad", "main") == "UNHEALTHY"
            && health_of(st, "svhcto", "main") == "UNHEALTHY"
    });
    let stray = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x0030"))
        })
        .count();
    assert!(
        stray <= 1,
        "{stray} timed-out health commands still running"
    );
    assert_eq!(state_of(&st, "svhcok", "main"), "RUNNING");
    // The check's output went to the health log, not the container log.
    let log = h.env.log("svhcbad", "main");
    assert!(!log.contains("nope"), "{log}");
    let hlog = std::fs::read_to_string(
        h.env
            .container_dir("svhcbad", "main")
            .join("logs/health.log"),
    )
    .unwrap_or_default();
    assert!(hlog.contains("nope"), "{hlog}");
    // No tenant-notify sockets pile up in libcontainer's state dir.
    let lc = h.env.state().join("libcontainer/svhcok.main");
    let socks = std::fs::read_dir(&lc)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("tenant-notify-")
                })
                .count()
        })
        .unwrap_or(0);
    assert!(socks <= 1, "{socks} tenant-notify sockets left");
}

#[test]
fn supervisor_depends_on_healthy_complete_and_start_timeout() {
    let mut h = Harness::new(&[("SKERRY_TEST_TIME_SCALE", "5")]);
    let healthy = r#""healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ready"], "interval": 5, "timeout": 2, "retries": 3}"#;
    let deps = r#""dependsOn": [{"containerName": "init", "condition": "COMPLETE"}, {"containerName": "db", "condition": "HEALTHY"}]"#;
    h.env.put_desired(
        "svdepok.json",
        &task(
            "dep",
            &[
                ctr("init", "exit 4", r#""essential": false"#),
                ctr("db", &format!("touch /tmp/ready; {FOREVER}"), healthy),
                ctr("app", FOREVER, deps),
            ],
        ),
    );
    let never = r#""startTimeout": 3, "healthCheck": {"command": ["CMD-SHELL", "exit 1"], "interval": 5, "timeout": 2, "retries": 10}"#;
    h.env.put_desired(
        "svdepto.json",
        &task(
            "dep",
            &[
                ctr("db", FOREVER, never),
                ctr(
                    "app",
                    FOREVER,
                    r#""dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]"#,
                ),
            ],
        ),
    );
    h.start();
    let st = h
        .env
        .wait_status("app started after init COMPLETE + db HEALTHY", 60, |st| {
            state_of(st, "svdepok", "app") == "RUNNING"
        });
    assert_eq!(health_of(&st, "svdepok", "db"), "HEALTHY");
    assert_eq!(task_container(&st, "svdepok", "init")["exit_code"], 4);
    let st = h.env.wait_status("startTimeout failure", 60, |st| {
        st["tasks"]["svdepto"]["stopped_reason"]
            .as_str()
            .is_some_and(|r| r.contains("startTimeout"))
    });
    assert_ne!(state_of(&st, "svdepto", "app"), "RUNNING", "{st:#}");
}

#[test]
fn supervisor_restart_policy_and_essential_exit() {
    // restartAttemptPeriod is at least 60 s (ECS); time runs 20x here.
    let mut h = Harness::new(&[("SKERRY_TEST_TIME_SCALE", "20")]);
    let policy = r#""restartPolicy": {"enabled": true, "ignoredExitCodes": [3], "restartAttemptPeriod": 60}"#;
    h.env.put_desired(
        "svrsin.json",
        &task("rs", &[ctr("main", "sleep 6; exit 1", policy)]),
    );
    h.env.put_desired(
        "svrsig.json",
        &task("rs", &[ctr("main", "sleep 4; exit 3", policy)]),
    );
    h.env.put_desired(
        "svess.json",
        &task(
            "ess",
            &[
                ctr("main", "sleep 1; exit 5", ""),
                ctr("side", FOREVER, r#""essential": false"#),
            ],
        ),
    );
    h.start();
    let st = h
        .env
        .wait_status("restart in place, ignored code, essential exit", 60, |st| {
            task_container(st, "svrsin", "main")["restart_count"].as_u64() >= Some(1)
                && st["tasks"]["svrsig"]["stopped_reason"].is_string()
                && st["tasks"]["svess"]["stopped_reason"].is_string()
                && state_of(st, "svess", "side") == "EXITED"
        });
    assert_eq!(st["tasks"]["svrsin"]["phase"], "Active", "{st:#}");
    assert_eq!(task_container(&st, "svrsig", "main")["restart_count"], 0);
    let reason = st["tasks"]["svess"]["stopped_reason"]
        .as_str()
        .unwrap_or("");
    assert!(
        reason.contains("main") && reason.contains("exit code 5"),
        "{reason}"
    );
    // The same story, in order, from `skerry events` (the outbox).
    let ess = events(&h.env, &["--task", "svess"]);
    let at = |needle: &str| {
        ess.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {ess:#?}"))
    };
    assert!(at("task svess launched") < at("container svess/main exited with code 5"));
    assert!(at("exited with code 5") < at("task svess failed: Essential container"));
    let rs = events(&h.env, &["--task", "svrsin"]).join("\n");
    assert!(
        rs.contains("container svrsin/main restarted in place (restart 1)"),
        "{rs}"
    );
    assert!(!rs.contains("svess"), "{rs}");
}

/// `skerry events ARGS` as lines (the table's header left out), each starting with an
/// RFC 3339 time.
fn events(env: &TestEnv, args: &[&str]) -> Vec<String> {
    let out = env
        .skerry(&[&["events"], args].concat())
        .output()
        .expect("events");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.starts_with("TIME "), "no table header: {text}");
    let lines: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    for l in &lines {
        assert!(
            l.len() > 25 && l.as_bytes()[10] == b'T' && l.contains("Z "),
            "{l}"
        );
    }
    lines
}

fn service(rev: u32, script: &str, count: u32) -> String {
    let def = format!(
        r#"{{"family": "web", "revision": {rev}, "containerDefinitions": [{}]}}"#,
        ctr("main", script, "")
    );
    format!(
        r#"{{"taskDefinition": {def}, "desiredCount": {count}, "deploymentConfiguration": {{"minimumHealthyPercent": 50, "maximumPercent": 200, "deploymentCircuitBreaker": {{"enable": true, "rollback": true, "failureThreshold": 2, "deadlineSeconds": 600}}}}}}"#
    )
}

/// Service tasks running revision `rev`.
fn running_rev(st: &Value, rev: u64) -> usize {
    st["tasks"]
        .as_object()
        .map(|t| {
            t.values()
                .filter(|t| {
                    t["revision"] == rev
                        && t["phase"] == "Active"
                        && t["containers"]["main"]["state"] == "RUNNING"
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn supervisor_service_rolling_update_and_rollback() {
    let mut h = Harness::new(&[("SKERRY_TEST_TIME_SCALE", "10")]);
    h.env
        .put_desired("svweb.service.json", &service(1, FOREVER, 2));
    h.start();
    h.env
        .wait_status("rev 1 running", 60, |st| running_rev(st, 1) == 2);
    h.env
        .put_desired("svweb.service.json", &service(2, FOREVER, 2));
    h.env.wait_status("rolled out to rev 2", 60, |st| {
        running_rev(st, 2) == 2
            && running_rev(st, 1) == 0
            && st["services"]["svweb"]["deployment"]["completed"] == true
            && st["services"]["svweb"]["stable_revision"] == 2
    });
    h.env
        .put_desired("svweb.service.json", &service(3, "exit 1", 2));
    let st = h.env.wait_status("rollback to rev 2", 90, |st| {
        st["services"]["svweb"]["deployment"]["rolled_back"] == true && running_rev(st, 2) == 2
    });
    assert_eq!(running_rev(&st, 3), 0, "{st:#}");
    let ev = events(&h.env, &["--service", "svweb"]).join("\n");
    let (a, b) = (
        st["services"]["svweb"]["stable_revision_id"]
            .as_str()
            .unwrap_or("?"),
        st["services"]["svweb"]["revision_id"]
            .as_str()
            .unwrap_or("?"),
    );
    assert!(a.starts_with("2 (") && b.starts_with("3 ("), "{a} {b}");
    for needle in [
        format!("service svweb: deployment of revision {a} completed"),
        format!("service svweb: rolled back from revision {b} to {a}"),
    ] {
        assert!(ev.contains(&needle), "no {needle:?} in\n{ev}");
    }
    let last = events(&h.env, &["--service", "svweb", "-n", "1"]);
    assert_eq!(last.len(), 1, "{last:?}");
}

fn pids(st: &Value) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (id, t) in st["tasks"].as_object().into_iter().flatten() {
        for (c, v) in t["containers"].as_object().into_iter().flatten() {
            if let Some(p) = v["pid"].as_u64() {
                out.push((format!("{id}/{c}"), p));
            }
        }
    }
    out.sort();
    out
}

/// ECS restartPolicy with the shortest period ECS allows (60 s).
const RESTART_60: &str = r#""restartPolicy": {"enabled": true, "restartAttemptPeriod": 60}"#;

/// Deploys task `plain`, task `policy` (with [`RESTART_60`]) and a one-task service
/// `svc` (revision 1), starts the agent and waits until all three run.
fn start_plain_policy_and_service(h: &mut Harness, plain: &str, policy: &str, svc: &str) -> Value {
    h.env.put_desired(
        &format!("{plain}.json"),
        &task("p", &[ctr("main", FOREVER, "")]),
    );
    h.env.put_desired(
        &format!("{policy}.json"),
        &task("p", &[ctr("main", FOREVER, RESTART_60)]),
    );
    h.env
        .put_desired(&format!("{svc}.service.json"), &service(1, FOREVER, 1));
    h.start();
    h.env.wait_status("all running", 60, |st| {
        state_of(st, plain, "main") == "RUNNING"
            && state_of(st, policy, "main") == "RUNNING"
            && running_rev(st, 1) == 1
    })
}

#[test]
fn supervisor_kill9_readopts_same_pids_and_sees_exits_while_dead() {
    let mut h = Harness::new(&[("SKERRY_TEST_TIME_SCALE", "20")]);
    let st = start_plain_policy_and_service(&mut h, "svkeep", "svdie", "svkill");
    let before = pids(&st);
    let keep_pid = h.env.wait_running("svkeep", "main");
    let die_pid = h.env.wait_running("svdie", "main");
    h.kill9();
    // While the agent is dead: one container ends (SIGTERM, caught: exit 0 → restart).
    std::thread::sleep(Duration::from_secs(4));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(die_pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill container");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !h
        .env
        .container_dir("svdie", "main")
        .join("exit.json")
        .exists()
    {
        assert!(Instant::now() < deadline, "no exit record");
        std::thread::sleep(Duration::from_millis(50));
    }
    h.start();
    let st = h.env.wait_status("exit seen, policy applied", 60, |st| {
        task_container(st, "svdie", "main")["restart_count"] == 1
            && state_of(st, "svdie", "main") == "RUNNING"
    });
    // Nothing else restarted: same pids, no restarts, the service task is the same.
    let after: Vec<_> = pids(&st)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("svdie/"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(k, _)| !k.starts_with("svdie/"))
        .collect();
    assert_eq!(after, before);
    assert_eq!(h.env.wait_running("svkeep", "main"), keep_pid);
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(keep_pid), None).is_ok());
    assert_eq!(task_container(&st, "svkeep", "main")["restart_count"], 0);
}

/// Power loss as a test can make it: the agent, every monitor and every container die
/// at the same instant and the rootfs mounts vanish (SIGKILL to all, lazy unmount).
fn power_loss(env: &TestEnv) {
    for (pid, _, _) in monitor_processes(&env.state()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let st = env.agent_status();
    for (_, pid) in pids(&st) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    for mnt in mounts_under(&env.state()).into_iter().rev() {
        let _ = nix::mount::umount2(mnt.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for its reaper).
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Mount points under `root`, in mount order.
fn mounts_under(root: &std::path::Path) -> Vec<String> {
    let root = root.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&root))
        .map(str::to_string)
        .collect()
}

#[test]
fn supervisor_offline_reboot_brings_workloads_back() {
    // restartAttemptPeriod is at least 60 s (ECS); time runs 20x here.
    let mut h = Harness::new(&[("SKERRY_TEST_TIME_SCALE", "20")]);
    let st = start_plain_policy_and_service(&mut h, "svbootp", "svbootr", "svboots");
    let before = pids(&st);
    assert_eq!(before.len(), 3, "{st:#}");
    // Past restartAttemptPeriod (80 scaled seconds): ECS restarts only a container that
    // ran that long.
    std::thread::sleep(Duration::from_secs(4));
    h.kill9();
    power_loss(&h.env);
    for (k, pid) in &before {
        assert!(!alive(*pid), "{k} (pid {pid}) survived the power loss");
    }
    assert!(live_monitors(&h.env.state()).is_empty());
    // Boot, with no network: the agent alone brings back what should run.
    h.start();
    let st = h
        .env
        .wait_status("workloads back after the reboot", 60, |st| {
            state_of(st, "svbootr", "main") == "RUNNING"
                && task_container(st, "svbootr", "main")["restart_count"] == 1
                && running_rev(st, 1) == 1
                && st["tasks"]["svbootp"]["stopped_reason"].is_string()
        });
    // The plain task (ECS RunTask, no restart policy) says why it stopped.
    let reason = st["tasks"]["svbootp"]["stopped_reason"]
        .as_str()
        .unwrap_or("");
    assert!(
        reason.contains("main") && reason.contains("lost: the host restarted"),
        "{reason}"
    );
    // Exactly the two workloads run, each once, as new processes with one monitor each.
    std::thread::sleep(Duration::from_millis(1500));
    let st = h.env.agent_status();
    let running: Vec<_> = pids(&st)
        .into_iter()
        .filter(|(_, pid)| alive(*pid))
        .collect();
    assert_eq!(running.len(), 2, "{running:?}\n{st:#}");
    for r in &running {
        assert!(!before.contains(r), "{r:?} is an old process");
    }
    let monitors = live_monitors(&h.env.state());
    assert_eq!(monitors.len(), 2, "{monitors:?}");
    assert!(monitors.values().all(|n| *n == 1), "{monitors:?}");
    // The rootfs mounts are the two running containers' (stale ones were cleaned up).
    let rootfs: Vec<_> = mounts_under(&h.env.state())
        .into_iter()
        .filter(|m| m.ends_with("/rootfs"))
        .collect();
    assert_eq!(rootfs.len(), 2, "{rootfs:#?}");
}

/// Deploys task `id` (one container that runs until stopped), starts the agent and
/// waits until it runs.
fn start_one_forever(h: &mut Harness, id: &str) {
    h.env.put_desired(
        &format!("{id}.json"),
        &task("t", &[ctr("main", FOREVER, "")]),
    );
    h.start();
    h.env
        .wait_status("running", 60, |st| state_of(st, id, "main") == "RUNNING");
}

#[test]
fn supervisor_torn_state_and_bad_desired_file_keep_what_runs() {
    let mut h = Harness::new(&[]);
    start_one_forever(&mut h, "svtorn");
    let pid = h.env.wait_running("svtorn", "main");
    // A bad desired file changes nothing.
    h.env.put_desired("svtorn.json", "{\"family\": ");
    std::thread::sleep(Duration::from_millis(1500));
    h.kill9();
    // Tear the current state copy: the previous one is used.
    let cur = h.env.state().join("supervisor/state.json");
    let data = std::fs::read(&cur).expect("state.json");
    std::fs::write(&cur, &data[..data.len() / 2]).expect("tear");
    h.start();
    std::thread::sleep(Duration::from_millis(2000));
    let st = h.env.wait_status("still running", 30, |st| {
        state_of(st, "svtorn", "main") == "RUNNING"
    });
    assert_eq!(task_container(&st, "svtorn", "main")["pid"], pid);
    assert_eq!(h.env.wait_running("svtorn", "main"), pid);
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
    // Removing the file stops the task.
    h.env.remove_desired("svtorn.json");
    h.env
        .wait_status("task removed", 30, |st| st["tasks"]["svtorn"].is_null());
}

/// Fills the filesystem holding `dir` with one file; returns its path.
fn fill_disk(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.write_all(&[0u8; 512]);
    let _ = f.write_all(&[0u8; 1]);
    path
}

/// balena's supervisor died on a full disk. skerry keeps running, keeps what runs
/// running, and catches up once space comes back: a crash that happened meanwhile
/// gets its restart, nothing is restarted twice.
#[test]
fn supervisor_full_disk_keeps_the_agent_and_workloads_running() {
    let mut h = Harness::on_tmpfs(&[("SKERRY_TEST_TIME_SCALE", "20")], 64);
    h.env.put_desired(
        "svfullr.json",
        &task("f", &[ctr("main", FOREVER, RESTART_60)]),
    );
    h.env
        .put_desired("svfullk.json", &task("f", &[ctr("main", FOREVER, "")]));
    h.start();
    h.env.wait_status("running", 60, |st| {
        state_of(st, "svfullr", "main") == "RUNNING" && state_of(st, "svfullk", "main") == "RUNNING"
    });
    let keep = h.env.wait_running("svfullk", "main");
    let crash = h.env.wait_running("svfullr", "main");
    std::thread::sleep(Duration::from_secs(4)); // past restartAttemptPeriod (20x)
    let filler = fill_disk(&h.env.state());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(crash),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill container");
    std::thread::sleep(Duration::from_secs(5));
    let agent = h.agent.as_ref().map_or(0, AgentProc::pid);
    assert!(alive(agent as u64), "the agent died on a full disk");
    assert!(
        alive(keep as u64),
        "a running container died on a full disk"
    );
    std::fs::remove_file(&filler).expect("free space");
    let log_file = h.env.dir.path().join("agent.log");
    let caught_up = |st: &Value| {
        state_of(st, "svfullr", "main") == "RUNNING"
            && task_container(st, "svfullr", "main")["restart_count"].as_u64() >= Some(1)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut st = h.env.agent_status();
    while !caught_up(&st) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        st = h.env.agent_status();
    }
    if !caught_up(&st) {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        let problems: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        panic!(
            "did not catch up after space came back:\n{}\n{st:#}",
            problems.join("\n")
        );
    }
    // One restart, or a few if restarts failed for want of space and were retried.
    let restarts = task_container(&st, "svfullr", "main")["restart_count"]
        .as_u64()
        .unwrap_or(0);
    assert!((1..=4).contains(&restarts), "{st:#}");
    assert_eq!(st["tasks"]["svfullr"]["phase"], "Active", "{st:#}");
    assert_eq!(
        task_container(&st, "svfullk", "main")["pid"],
        keep,
        "{st:#}"
    );
    assert!(alive(agent as u64));
    let log = std::fs::read_to_string(h.env.dir.path().join("agent.log")).unwrap_or_default();
    assert!(
        log.contains("No space left on device"),
        "the full disk was not reported:\n{log}"
    );
}

/// A second agent on the same state directory would reconcile the same tasks and
/// remove the first one's work as leftovers: it is refused, naming the first.
#[test]
fn supervisor_second_agent_on_the_same_state_dir_is_refused() {
    let mut h = Harness::new(&[]);
    start_one_forever(&mut h, "svlock");
    let container = h.env.wait_running("svlock", "main");
    let first = h.agent.as_ref().map_or(0, AgentProc::pid);
    let out = h.env.skerry(&["agent"]).output().expect("second agent");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("another skerry agent (pid {first})")),
        "{err}"
    );
    assert!(alive(first as u64));
    assert_eq!(h.env.wait_running("svlock", "main"), container);
    // kill -9 frees the lock at once: the next agent starts and adopts.
    h.kill9();
    h.start();
    std::thread::sleep(Duration::from_millis(1500));
    let next = h.agent.as_ref().map_or(0, AgentProc::pid);
    assert!(alive(next as u64), "the next agent did not get the lock");
    assert_eq!(h.env.wait_running("svlock", "main"), container);
}

/// ECS users found their agent in an endless restart loop on a corrupted state file.
/// With both copies unreadable, skerry logs it, starts from the desired state, and
/// keeps running.
#[test]
fn supervisor_unreadable_state_copies_start_clean_without_a_restart_loop() {
    let mut h = Harness::new(&[]);
    start_one_forever(&mut h, "svgarb");
    h.kill9();
    let dir = h.env.state().join("supervisor");
    std::fs::write(dir.join("state.json"), b"\0\0garbage").expect("garble");
    std::fs::write(
        dir.join("state.prev.json"),
        b"skerry-supervisor-state 1 00 5\n{}",
    )
    .expect("garble");
    std::fs::remove_file(dir.join("status.json")).expect("status");
    h.start();
    let st = h.env.wait_status("running again", 60, |st| {
        state_of(st, "svgarb", "main") == "RUNNING"
    });
    std::thread::sleep(Duration::from_millis(1500));
    let pid = h.agent.as_ref().map_or(0, AgentProc::pid);
    assert!(alive(pid as u64), "the agent did not keep running");
    let running: Vec<_> = pids(&st).into_iter().filter(|(_, p)| alive(*p)).collect();
    assert_eq!(running.len(), 1, "{st:#}");
    let log = std::fs::read_to_string(h.env.dir.path().join("agent.log")).unwrap_or_default();
    assert!(log.contains("state copy refused"), "{log}");
}

fn recv_all(sock: &UnixDatagram, for_ms: u64) -> Vec<(Instant, String)> {
    let end = Instant::now() + Duration::from_millis(for_ms);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            out.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
    }
    out
}

#[test]
fn supervisor_notify_ready_watchdog_status_and_wedge() {
    let mut h = Harness::new(&[]);
    h.env
        .put_desired("svnotify.json", &task("n", &[ctr("main", FOREVER, "")]));
    let path = h.env.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let p = path.display().to_string();
    h.envs = vec![
        ("NOTIFY_SOCKET".into(), p.clone()),
        ("WATCHDOG_USEC".into(), "400000".into()),
    ];
    h.start();
    let msgs = recv_all(&sock, 2500);
    let first = msgs.first().map(|m| m.1.clone()).unwrap_or_default();
    assert!(first.starts_with("READY=1\nSTATUS="), "{msgs:?}");
    let pings = msgs.iter().filter(|m| m.1 == "WATCHDOG=1\n").count();
    assert!(pings >= 5, "{pings} pings: {msgs:?}");
    assert!(msgs
        .iter()
        .any(|m| m.1.starts_with("STATUS=") && m.1.contains("tasks")));
    h.kill9();
    h.envs
        .push(("SKERRY_TEST_WEDGE_AFTER_TICKS".into(), "3".into()));
    h.start();
    let msgs = recv_all(&sock, 2500);
    assert!(
        msgs.first().is_some_and(|m| m.1.starts_with("READY=1")),
        "{msgs:?}"
    );
    let t0 = msgs[0].0;
    let late = msgs
        .iter()
        .filter(|m| m.1 == "WATCHDOG=1\n" && m.0.duration_since(t0) > Duration::from_millis(1500))
        .count();
    assert_eq!(late, 0, "pings went on while wedged: {msgs:?}");
}

/// `(pid, verb, DIR)` of every `skerry monitor VERB DIR` process with DIR under `root`.
fn monitor_processes(root: &std::path::Path) -> Vec<(i32, String, String)> {
    let root = root.display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.len() >= 4 && args[1] == "monitor" && args[3].starts_with(&root) {
            out.push((pid, args[2].clone(), args[3].clone()));
        }
    }
    out
}

/// Live `skerry monitor start DIR` processes, by DIR, under `root`.
fn live_monitors(root: &std::path::Path) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for (_, verb, dir) in monitor_processes(root) {
        if verb == "start" {
            *out.entry(dir).or_default() += 1;
        }
    }
    out
}

/// Checks the crash-only invariants against the converged status; returns violations.
fn violations(env: &TestEnv, st: &Value, prefix: &str) -> Vec<String> {
    let mut v = Vec::new();
    let tasks = st["tasks"].as_object().cloned().unwrap_or_default();
    let running = |t: &str, c: &str| {
        tasks
            .get(t)
            .is_some_and(|t| t["containers"][c]["state"] == "RUNNING")
    };
    let active = |t: &str| tasks.get(t).is_some_and(|t| t["phase"] != "Deleted");
    for (dir, n) in live_monitors(&env.state()) {
        if n > 1 {
            v.push(format!("{n} monitors for {dir}"));
        }
        let parts: Vec<&str> = dir.rsplit('/').collect();
        if parts.len() > 3 && !running(parts[2], parts[0]) {
            v.push(format!(
                "monitor for a container not running in the records: {dir}"
            ));
        }
    }
    for e in std::fs::read_dir(env.state().join("tasks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let id = e.file_name().to_string_lossy().into_owned();
        if !active(&id) {
            v.push(format!("orphan task dir {id}"));
        }
    }
    for e in std::fs::read_dir(env.state().join("libcontainer"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let id = e.file_name().to_string_lossy().into_owned();
        let (t, c) = id.rsplit_once('.').unwrap_or((&id, ""));
        if !running(t, c) {
            v.push(format!("stale libcontainer state {id}"));
        }
    }
    let root = env.state().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
        if let Some(rest) = m.strip_prefix(&format!("{root}/tasks/")) {
            let p: Vec<&str> = rest.split('/').collect();
            if p.len() < 4 || !running(p[0], p[2]) {
                v.push(format!("stray mount {m}"));
            }
        }
    }
    for base in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        for e in std::fs::read_dir(base.path().join("skerry"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            if id.starts_with(prefix) && !active(&id) {
                v.push(format!("orphaned cgroup {}", e.path().display()));
            }
        }
    }
    v
}

fn converged(
    st: &Value,
    want_tasks: &std::collections::BTreeMap<String, u32>,
    svc: (u32, u32),
    owner: &str,
) -> bool {
    let Some(tasks) = st["tasks"].as_object() else {
        return false;
    };
    let all_running = |t: &Value| {
        t["phase"] == "Active"
            && t["containers"]
                .as_object()
                .is_some_and(|c| c.values().all(|c| c["state"] == "RUNNING"))
    };
    for (id, rev) in want_tasks {
        if !tasks
            .get(id)
            .is_some_and(|t| all_running(t) && t["revision"] == *rev)
        {
            return false;
        }
    }
    let mut svc_running = 0;
    for (id, t) in tasks {
        let ours = want_tasks.contains_key(id);
        let service = t["owner"] == owner;
        if service && t["revision"] == svc.0 && all_running(t) {
            svc_running += 1;
        } else if !ours && t["phase"] != "Deleted" {
            return false;
        }
    }
    svc_running == svc.1
}

#[test]
fn supervisor_torture_kill9_during_deploy_update_stop_cycles() {
    let cycles: u32 = std::env::var("SKERRY_TORTURE_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    // SKERRY_TORTURE_SEED replays a printed seed's steps (timings still vary).
    let mut seed = std::env::var("SKERRY_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    println!("torture seed {seed}");
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut h = Harness::new(&[("SKERRY_TEST_TIME_SCALE", "10")]);
    // Unique per run: cgroup names are host-global.
    let prefix = format!("svt{}", std::process::id());
    let svc_name = format!("{prefix}s.service.json");
    let owner = format!("service:{prefix}s");
    let mut want = std::collections::BTreeMap::new();
    let mut svc = (1u32, 1u32);
    let started = Instant::now();
    let svc_file = |rev: u32, count: u32| {
        let def = format!(
            r#"{{"family": "ts", "revision": {rev}, "containerDefinitions": [{}]}}"#,
            ctr("main", FOREVER, "")
        );
        format!(
            r#"{{"taskDefinition": {def}, "desiredCount": {count}, "deploymentConfiguration": {{"minimumHealthyPercent": 0, "maximumPercent": 200}}}}"#
        )
    };
    h.env.put_desired(&svc_name, &svc_file(svc.0, svc.1));
    h.start();
    for _ in 0..cycles {
        let k = rnd(3);
        let id = format!("{prefix}t{k}");
        match rnd(4) {
            0 | 1 => {
                let rev = want.get(&id).map_or(1, |r| r + rnd(2) as u32);
                let def = format!(
                    r#"{{"family": "tt", "revision": {rev}, "containerDefinitions": [{}]}}"#,
                    ctr("main", FOREVER, "")
                );
                h.env.put_desired(&format!("{id}.json"), &def);
                want.insert(id, rev);
            }
            2 => {
                h.env.remove_desired(&format!("{id}.json"));
                want.remove(&id);
            }
            _ => {
                svc = (svc.0 + rnd(2) as u32, 1 + rnd(2) as u32);
                h.env.put_desired(&svc_name, &svc_file(svc.0, svc.1));
            }
        }
        std::thread::sleep(Duration::from_millis(50 + rnd(400)));
        h.kill9();
        h.start();
    }
    let churn = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut st = h.env.agent_status();
    while !converged(&st, &want, svc, &owner) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        st = h.env.agent_status();
    }
    let ok = converged(&st, &want, svc, &owner);
    std::thread::sleep(Duration::from_millis(1500));
    let st = h.env.agent_status();
    let mut v = violations(&h.env, &st, &prefix);
    if !ok {
        v.push(format!("did not converge to {want:?} service {svc:?}"));
    }
    println!(
        "torture: {cycles} cycles (kill -9 each) in {:.1}s, converged in {:.1}s, {} violations",
        churn.as_secs_f64(),
        started.elapsed().as_secs_f64() - churn.as_secs_f64(),
        v.len()
    );
    for x in &v {
        println!("violation: {x}");
    }
    if !v.is_empty() {
        let log = std::fs::read_to_string(h.env.dir.path().join("agent.log")).unwrap_or_default();
        for l in log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            println!("agent: {l}");
        }
    }
    assert!(v.is_empty(), "{v:#?}\n{st:#}");
}
