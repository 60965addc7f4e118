//! Real containers through the real `skerry` binary, as root: exit codes, logs,
//! process settings, cgroup limits, stop semantics, isolation, mounts, cleanup.

mod common;

use std::time::{Duration, Instant};

use common::{lines_of, sh_task, TestEnv};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn container_exit_code_propagates_and_output_lands_in_log_file() {
    let env = TestEnv::new();
    let out = env.run(
        "exitcode",
        &sh_task("exitcode", "echo out-line; echo err-line >&2; exit 7", ""),
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert_eq!(lines_of(&out, "main"), vec!["out-line"]);
    let log = env.log("exitcode", "main");
    assert!(
        log.lines().any(|l| l.ends_with(" stdout out-line")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.ends_with(" stderr err-line")),
        "{log}"
    );
    let exit = env.exit_record("exitcode", "main");
    assert_eq!(exit["exit_code"], 7);
    assert_eq!(exit["reason"], "Exited");
}

#[test]
fn container_env_cwd_user_hostname_extra_hosts_applied() {
    let env = TestEnv::new();
    let extra = r#""environment": [{"name": "GREETING", "value": "hi"}], "workingDirectory": "/tmp", "user": "1000:1001",
        "hostname": "gw1", "extraHosts": [{"hostname": "broker.local", "ipAddress": "10.9.8.7"}]"#;
    let out = env.run(
        "settings",
        &sh_task(
            "settings",
            "echo GREETING=$GREETING; pwd; id -u; id -g; hostname; grep broker.local /etc/hosts",
            extra,
        ),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = lines_of(&out, "main");
    assert_eq!(lines[..5], ["GREETING=hi", "/tmp", "1000", "1001", "gw1"]);
    assert!(
        lines[5].starts_with("10.9.8.7") && lines[5].ends_with("broker.local"),
        "{lines:?}"
    );
}

#[test]
fn container_user_name_resolved_in_image_passwd() {
    let env = TestEnv::new();
    let out = env.run(
        "username",
        &sh_task("username", "id -u; id -g", r#""user": "app""#),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lines_of(&out, "main"), vec!["1000", "1000"]);
}

#[test]
fn container_image_defaults_apply_and_task_definition_overrides_them() {
    let env = TestEnv::new();
    let base = |extra: &str| {
        format!(
            r#"{{"family": "app", "containerDefinitions": [{{"name": "main", "image": "busybox-app:latest", "memory": 32{extra}}}]}}"#
        )
    };
    let out = env.run("imgdefault", &base(""));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lines_of(&out, "main"), vec!["image-default"]);

    // command replaces Cmd (the image's Entrypoint `sh -c` stays); env/cwd/user override.
    let out = env.run("imgoverride", &base(r#", "command": ["echo FOO=$FOO; pwd; id -u"], "environment": [{"name": "FOO", "value": "from-task"}], "workingDirectory": "/", "user": "0""#));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lines_of(&out, "main"), vec!["FOO=from-task", "/", "0"]);

    // Image env and cwd and user apply when not overridden.
    let out = env.run(
        "imgenv",
        &base(r#", "command": ["echo FOO=$FOO; pwd; id -un"]"#),
    );
    assert_eq!(
        lines_of(&out, "main"),
        vec!["FOO=from-image", "/tmp", "app"]
    );

    // entryPoint replaces Entrypoint and drops the image's Cmd (Docker semantics).
    let out = env.run(
        "imgentry",
        &base(r#", "entryPoint": ["/bin/echo", "ep-only"]"#),
    );
    assert_eq!(lines_of(&out, "main"), vec!["ep-only"]);
}

fn memory_cgroup_file(
    env: &TestEnv,
    task: &str,
    file_v1: &str,
    file_v2: &str,
) -> std::path::PathBuf {
    let file = if std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
        file_v1
    } else {
        file_v2
    };
    env.memory_cgroup(task, Some("main")).join(file)
}

#[test]
fn container_memory_limit_in_cgroup_and_oom_reported() {
    let env = TestEnv::new();
    let mut child = env.spawn(
        "oom",
        &sh_task("oom", "sleep 1; tail /dev/zero", r#""memory": 16"#),
        true,
    );
    env.wait_running("oom", "main");
    let limit = std::fs::read_to_string(memory_cgroup_file(
        &env,
        "oom",
        "memory.limit_in_bytes",
        "memory.max",
    ))
    .expect("memory limit file");
    assert_eq!(limit.trim(), (16u64 << 20).to_string());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(137));
    let exit = env.exit_record("oom", "main");
    assert_eq!(exit["reason"], "OutOfMemory", "{exit}");
}

#[test]
fn container_task_level_memory_caps_the_whole_task() {
    let env = TestEnv::new();
    // No container limit: only the task's 24 MiB holds the allocation.
    let json = r#"{"family": "taskmem", "memory": "24", "containerDefinitions": [{"name": "main", "image": "busybox",
        "memoryReservation": 8, "command": ["sh", "-c", "sleep 1; tail /dev/zero"]}]}"#;
    let mut child = env.spawn("taskmem", json, true);
    env.wait_running("taskmem", "main");
    let dir = env.memory_cgroup("taskmem", None);
    let file = if dir.join("memory.limit_in_bytes").exists() {
        dir.join("memory.limit_in_bytes")
    } else {
        dir.join("memory.max")
    };
    assert_eq!(
        std::fs::read_to_string(file)
            .expect("task memory limit")
            .trim(),
        (24u64 << 20).to_string()
    );
    assert_eq!(child.wait().expect("wait").code(), Some(137));
    assert_eq!(env.exit_record("taskmem", "main")["reason"], "OutOfMemory");
}

#[test]
fn container_pids_limit_enforced() {
    let env = TestEnv::with_config("default_pids_limit = 32");
    let out = env.run("pids", &sh_task("pids", "i=0; while [ $i -lt 64 ]; do sleep 5 & i=$((i+1)); done; echo spawned; kill $(jobs -p) 2>/dev/null; exit 0", ""));
    let log = env.log("pids", "main");
    assert!(
        log.contains("can't fork") || log.contains("Resource temporarily unavailable"),
        "no fork failure in: {log}\n{}",
        stderr(&out)
    );
}

#[test]
fn container_trapped_sigterm_exits_cleanly_on_stop() {
    let env = TestEnv::new();
    let script = "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done";
    let mut child = env.spawn(
        "trap",
        &sh_task("trap", script, r#""stopTimeout": 20"#),
        true,
    );
    env.wait_running("trap", "main");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal skerry run");
    let status = child.wait().expect("wait");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    let exit = env.exit_record("trap", "main");
    assert_eq!(exit["reason"], "Stopped");
    assert!(env.log("trap", "main").contains("got-term"));
}

#[test]
fn container_ignoring_sigterm_is_killed_after_stop_timeout() {
    let env = TestEnv::new();
    let script = "trap '' TERM; while true; do sleep 0.1; done";
    let mut child = env.spawn(
        "ignore",
        &sh_task("ignore", script, r#""stopTimeout": 2"#),
        true,
    );
    env.wait_running("ignore", "main");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal skerry run");
    let status = child.wait().expect("wait");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "took {took:?}"
    );
    assert_eq!(status.code(), Some(137));
    assert_eq!(env.exit_record("ignore", "main")["reason"], "StopTimeout");
}

#[test]
fn container_essential_exit_stops_the_others() {
    let env = TestEnv::new();
    let json = r#"{"family": "ess", "containerDefinitions": [
        {"name": "main", "image": "busybox", "memory": 32, "essential": true, "command": ["sh", "-c", "sleep 1; exit 5"]},
        {"name": "side", "image": "busybox", "memory": 32, "essential": false, "stopTimeout": 10,
         "command": ["sh", "-c", "trap 'echo side-term; exit 0' TERM; while true; do sleep 0.1; done"]}]}"#;
    let out = env.run("ess", json);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Essential container in task exited: main (exit code 5"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.exit_record("ess", "side")["reason"], "Stopped");
    assert!(env.log("ess", "side").contains("side-term"));
}

#[test]
fn container_readonly_root_filesystem_enforced() {
    let env = TestEnv::new();
    let out = env.run(
        "ro",
        &sh_task(
            "ro",
            "touch /newfile 2>/dev/null && echo WROTE || echo RO-OK",
            r#""readonlyRootFilesystem": true"#,
        ),
    );
    assert_eq!(lines_of(&out, "main"), vec!["RO-OK"], "{}", stderr(&out));
    let out = env.run(
        "rw",
        &sh_task(
            "rw",
            "touch /newfile 2>/dev/null && echo WROTE || echo RO-OK",
            "",
        ),
    );
    assert_eq!(lines_of(&out, "main"), vec!["WROTE"]);
}

#[test]
fn container_dropped_capability_is_gone() {
    let env = TestEnv::new();
    let script =
        "touch /tmp/f; chown 1000 /tmp/f 2>/dev/null && echo CHOWN-OK || echo CHOWN-DENIED";
    let out = env.run(
        "nochown",
        &sh_task(
            "nochown",
            script,
            r#""linuxParameters": {"capabilities": {"drop": ["CHOWN"]}}"#,
        ),
    );
    assert_eq!(
        lines_of(&out, "main"),
        vec!["CHOWN-DENIED"],
        "{}",
        stderr(&out)
    );
    let out = env.run("chown", &sh_task("chown", script, ""));
    assert_eq!(lines_of(&out, "main"), vec!["CHOWN-OK"], "{}", stderr(&out));
}

#[test]
fn container_binds_task_volumes_and_tmpfs_work() {
    let env = TestEnv::new();
    let host = env.dir.path().join("hostdata");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("in.txt"), "from-host\n").expect("write");
    let json = format!(
        r#"{{"family": "vols", "volumes": [{{"name": "data", "host": {{"sourcePath": "{}"}}}}, {{"name": "scratch"}}],
        "containerDefinitions": [{{"name": "main", "image": "busybox", "memory": 32,
          "mountPoints": [{{"sourceVolume": "data", "containerPath": "/data"}}, {{"sourceVolume": "data", "containerPath": "/data-ro", "readOnly": true}},
                          {{"sourceVolume": "scratch", "containerPath": "/scratch"}}],
          "linuxParameters": {{"tmpfs": [{{"containerPath": "/fast", "size": 8}}]}},
          "command": ["sh", "-c", "cat /data/in.txt; echo from-container > /data/out.txt; touch /data-ro/x 2>/dev/null && echo RO-WRITABLE || echo RO-OK; echo s > /scratch/s && echo SCRATCH-OK; grep ' /fast ' /proc/mounts | cut -d' ' -f3"]}}]}}"#,
        host.display()
    );
    let out = env.run("vols", &json);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        lines_of(&out, "main"),
        vec!["from-host", "RO-OK", "SCRATCH-OK", "tmpfs"]
    );
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).expect("out"),
        "from-container\n"
    );
    assert!(env.state().join("tasks/vols/volumes/scratch/s").exists());
}

#[test]
fn container_init_process_runs_as_pid_one() {
    let env = TestEnv::new();
    let out = env.run(
        "init",
        &sh_task(
            "init",
            "tr '\\0' ' ' < /proc/1/cmdline; echo",
            r#""linuxParameters": {"initProcessEnabled": true}"#,
        ),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = lines_of(&out, "main");
    assert!(
        lines[0].starts_with("/.skerry/init init -- sh -c"),
        "{lines:?}"
    );
}

#[test]
fn container_depends_on_success_orders_start() {
    let env = TestEnv::new();
    let json = r#"{"family": "deps", "volumes": [{"name": "shared"}], "containerDefinitions": [
        {"name": "main", "image": "busybox", "memory": 32, "essential": true, "dependsOn": [{"containerName": "setup", "condition": "SUCCESS"}],
         "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}], "command": ["cat", "/shared/ready"]},
        {"name": "setup", "image": "busybox", "memory": 32, "essential": false,
         "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}], "command": ["sh", "-c", "sleep 0.5; echo prepared > /shared/ready"]}]}"#;
    let out = env.run("deps", json);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lines_of(&out, "main"), vec!["prepared"]);
}

#[test]
fn container_pid_mode_task_shares_one_pid_namespace() {
    let env = TestEnv::new();
    let json = r#"{"family": "pidns", "pidMode": "task", "containerDefinitions": [
        {"name": "main", "image": "busybox", "memory": 32, "essential": true,
         "dependsOn": [{"containerName": "holder", "condition": "START"}],
         "command": ["sh", "-c", "ps -o comm | grep -c '^sleep$'"]},
        {"name": "holder", "image": "busybox", "memory": 32, "essential": false, "stopTimeout": 1,
         "command": ["sleep", "30"]}]}"#;
    let out = env.run("pidns", json);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lines_of(&out, "main"), vec!["1"]);
}

fn leftovers(env: &TestEnv, task: &str) -> Vec<String> {
    let mut found = Vec::new();
    if env.state().join("tasks").join(task).exists() {
        found.push("task dir".to_string());
    }
    if let Ok(entries) = std::fs::read_dir(env.state().join("libcontainer")) {
        found.extend(
            entries
                .flatten()
                .map(|e| format!("libcontainer state {:?}", e.file_name()))
                .filter(|s| s.contains(task)),
        );
    }
    let parent = skerry::store::StateLayout::new(env.state()).cgroup_parent();
    for hier in std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroup root")
        .flatten()
    {
        let p = hier.path().join(&parent).join(task);
        if p.exists() {
            found.push(format!("cgroup {}", p.display()));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let state = env.state().display().to_string();
    found.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&state))
            .map(|l| format!("mount {l}")),
    );
    found
}

#[test]
fn container_stop_and_delete_leave_nothing_behind() {
    let env = TestEnv::new();
    let mut child = env.spawn(
        "clean",
        &sh_task(
            "clean",
            "while true; do sleep 0.1; done",
            r#""stopTimeout": 1"#,
        ),
        false,
    );
    env.wait_running("clean", "main");
    let ps = env.skerry(&["ps"]).output().expect("ps");
    assert!(String::from_utf8_lossy(&ps.stdout)
        .lines()
        .any(|l| l.starts_with("clean ") && l.contains("running")));
    let out = env.skerry(&["stop", "clean"]).output().expect("stop");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    child.wait().expect("wait run");
    assert_eq!(leftovers(&env, "clean"), Vec::<String>::new());
}

/// `disableNetworking`, as ECS's own functional test writes it (the corpus file,
/// unchanged: it exits 42 when the container sees no address but loopback), in the
/// default bridge mode and under host networking, where it would otherwise see the
/// host's interfaces.
#[test]
fn container_disable_networking_leaves_only_loopback_in_bridge_and_host_mode() {
    let env = TestEnv::new();
    let corpus = include_str!("../../core/tests/corpus/ecs-agent-network-disabled.json");
    let out = env.run("netoff", corpus);
    assert_eq!(code(&out), 42, "bridge: {}", stderr(&out));
    let mut host: serde_json::Value = serde_json::from_str(corpus).expect("corpus json");
    host["networkMode"] = serde_json::json!("host");
    let out = env.run("netoffhost", &host.to_string());
    assert_eq!(code(&out), 42, "host: {}", stderr(&out));
    host["containerDefinitions"][0]["disableNetworking"] = serde_json::json!(false);
    let out = env.run("netonhost", &host.to_string());
    assert_eq!(code(&out), 1, "host networking sees the host's addresses");
}

/// Two agents (state directories) on one host run a task of the same name: each has
/// its own cgroups, so one stopping and cleaning up leaves the other's untouched (they
/// once shared `/skerry/<task>`, and a removal raced the other's create).
#[test]
fn container_two_state_dirs_on_one_host_keep_their_cgroups_apart() {
    let (a, b) = (TestEnv::new(), TestEnv::new());
    let script = "while true; do sleep 0.1; done";
    let json = sh_task("twin", script, r#""memory": 24, "stopTimeout": 1"#);
    let mut run_a = a.spawn("twin", &json, false);
    let mut run_b = b.spawn("twin", &json, false);
    a.wait_running("twin", "main");
    let pid_b = b.wait_running("twin", "main");
    let (cg_a, cg_b) = (a.memory_cgroup("twin", None), b.memory_cgroup("twin", None));
    assert_ne!(cg_a, cg_b);
    assert!(cg_a.is_dir() && cg_b.is_dir(), "{cg_a:?} {cg_b:?}");

    let out = a.skerry(&["stop", "twin"]).output().expect("stop");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    run_a.wait().expect("wait run a");
    assert_eq!(leftovers(&a, "twin"), Vec::<String>::new());
    assert!(cg_b.is_dir(), "b's cgroup went with a's stop");
    kill(Pid::from_raw(pid_b), None).expect("b's container still runs");
    let procs = std::fs::read_to_string(cg_b.join("main/cgroup.procs")).expect("b's procs");
    assert!(
        procs.lines().any(|l| l.trim() == pid_b.to_string()),
        "{procs}"
    );

    let out = b.skerry(&["stop", "twin"]).output().expect("stop");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    run_b.wait().expect("wait run b");
    assert_eq!(leftovers(&b, "twin"), Vec::<String>::new());
}

#[test]
fn container_survives_kill_of_its_runner_and_stop_cleans_up() {
    let env = TestEnv::new();
    let mut child = env.spawn(
        "orphan",
        &sh_task(
            "orphan",
            "while true; do sleep 0.1; done",
            r#""stopTimeout": 1"#,
        ),
        false,
    );
    let pid = env.wait_running("orphan", "main");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill -9 skerry run");
    child.wait().expect("reap runner");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container died with its runner"
    );
    let out = env.skerry(&["stop", "orphan"]).output().expect("stop");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(leftovers(&env, "orphan"), Vec::<String>::new());
}

#[test]
fn cli_logs_and_ps_show_a_running_task() {
    let env = TestEnv::new();
    let mut child = env.spawn(
        "logs",
        &sh_task(
            "logs",
            "echo first; while true; do sleep 0.1; done",
            r#""stopTimeout": 1"#,
        ),
        false,
    );
    env.wait_running("logs", "main");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = env.skerry(&["logs", "logs"]).output().expect("logs");
        if String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "first")
        {
            break;
        }
        assert!(Instant::now() < deadline, "log line never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = env
        .skerry(&["logs", "logs", "nosuch"])
        .output()
        .expect("logs");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no container nosuch"));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal");
    child.wait().expect("wait");
}

/// The image store's contents (references, digests, sizes), without ages.
fn image_store(env: &TestEnv) -> Vec<(String, String, u64)> {
    let out = env
        .skerry(&["image", "ls", "--output", "json"])
        .output()
        .expect("ls");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("image ls json");
    v.as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["reference"].as_str().unwrap_or_default().to_string(),
                i["manifest_digest"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                i["size_bytes"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn assert_refused(env: &TestEnv, name: &str, json: &str, expect: &str) {
    let images_before = image_store(env);
    let out = env.run(name, json);
    assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
    assert!(
        stderr(&out).contains(expect),
        "{name}: expected {expect:?} in:\n{}",
        stderr(&out)
    );
    assert!(
        !env.state().join("tasks").join(name).exists(),
        "{name}: a task was created"
    );
    assert_eq!(
        image_store(env),
        images_before,
        "{name}: image store changed"
    );
}

#[test]
fn bad_input_is_refused_with_the_field_and_changes_nothing() {
    let env = TestEnv::new();
    let mut running = env.spawn(
        "keeper",
        &sh_task(
            "keeper",
            "while true; do sleep 0.1; done",
            r#""stopTimeout": 1"#,
        ),
        false,
    );
    let pid = env.wait_running("keeper", "main");
    assert_refused(
        &env,
        "malformed",
        r#"{"family": "x", "containerDefinitions": [ {"name": "#,
        "malformed json",
    );
    assert_refused(
        &env,
        "awslogs",
        &sh_task(
            "awslogs",
            "true",
            r#""logConfiguration": {"logDriver": "awslogs"}"#,
        ),
        "containerDefinitions[0].logConfiguration.options.awslogs-group: is required",
    );
    assert_refused(
        &env,
        "typo",
        &sh_task("typo", "true", r#""memry": 5"#),
        "containerDefinitions[0].memry",
    );
    assert_refused(
        &env,
        "tinymem",
        &sh_task("tinymem", "true", r#""memory": 2"#),
        "containerDefinitions[0].memory",
    );
    assert_refused(
        &env,
        "priv",
        &sh_task("priv", "true", r#""privileged": true"#),
        "allow_privileged",
    );
    assert_refused(
        &env,
        "awsvpc",
        r#"{"family": "b", "networkMode": "awsvpc", "containerDefinitions": [{"name": "m", "image": "busybox", "memory": 32}]}"#,
        "networkMode",
    );
    assert_refused(
        &env,
        "noimage",
        r#"{"family": "n", "containerDefinitions": [{"name": "m", "image": "127.0.0.1:9/nosuch:1.0", "memory": 32}]}"#,
        "containerDefinitions[0].image",
    );
    assert_refused(
        &env,
        "health",
        &sh_task(
            "health",
            "true",
            r#""healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 1}"#,
        ),
        "containerDefinitions[0].healthCheck.interval",
    );
    assert_refused(
        &env,
        "nomemory",
        r#"{"family": "n", "containerDefinitions": [{"name": "m", "image": "busybox", "command": ["true"]}]}"#,
        "containerDefinitions[0]: set memory",
    );
    // What ran keeps running, untouched.
    assert_eq!(env.wait_running("keeper", "main"), pid);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    kill(Pid::from_raw(running.id() as i32), Signal::SIGTERM).expect("signal");
    running.wait().expect("wait");
}

/// `skerry run` runs on the agent's reconciler: a HEALTHY dependency waits for the
/// health check, restartPolicy restarts in place (ignoredExitCodes ends it), and the
/// task's exit code is the essential container's.
#[test]
fn container_run_honours_health_checks_restart_policy_and_healthy_dependencies() {
    let env = TestEnv::new();
    let json = r#"{"family": "hc", "volumes": [{"name": "data"}], "containerDefinitions": [
        {"name": "db", "image": "busybox", "memory": 32, "essential": false, "stopTimeout": 2,
         "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ready"], "interval": 5, "timeout": 2, "retries": 3},
         "command": ["sh", "-c", "sleep 1; touch /tmp/ready; trap 'exit 0' TERM; while true; do sleep 0.1; done"]},
        {"name": "app", "image": "busybox", "memory": 32,
         "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
         "restartPolicy": {"enabled": true, "ignoredExitCodes": [3], "restartAttemptPeriod": 60},
         "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}],
         "command": ["sh", "-c", "if [ -f /data/once ]; then echo second; exit 3; fi; touch /data/once; echo first; sleep 6; exit 1"]}]}"#;
    let p = env.write_task("hc", json);
    // Time runs 20x: the 5 s interval is 0.25 s, the 60 s restartAttemptPeriod 3 s (the
    // first run lasts 6 s: a late start observation on a loaded machine still counts).
    let out = env
        .skerry(&["run", "--name", "hc"])
        .arg(p)
        .env("SKERRY_TEST_TIME_SCALE", "20")
        .output()
        .expect("skerry run");
    let err = stderr(&out);
    assert_eq!(code(&out), 3, "{err}");
    assert_eq!(lines_of(&out, "app"), vec!["first", "second"], "{err}");
    for needle in [
        "container hc/db health is now Healthy",
        "container hc/app restarted in place (restart 1)",
        "Essential container in task exited: app (exit code 3)",
    ] {
        assert!(err.contains(needle), "no {needle:?} in:\n{err}");
    }
    assert!(!env.state().join("tasks/hc").exists(), "task left behind");
}
