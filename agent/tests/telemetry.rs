//! Telemetry end to end against a real mosquitto (mTLS, the repo's ACL) and real
//! containers: shipped lines reach the operator in order (`ctl logs -f` and
//! mosquitto_sub), a burst over the budget is cut and the cut reported, lines written
//! while the broker is down arrive after it is back, metrics follow a container that
//! allocates memory to its OOM kill, the Prometheus endpoint parses with
//! prometheus_client, and `skerry top` reads locally.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::broker::OPERATOR;
use common::fleet::Fleet;
use common::TestEnv;
use skerry_core::proto::{Body, Envelope};
use skerry_core::telemetry::{LogBatch, MetricsReport};

const AWSLOGS: &str = r#""logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/edge", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "ecs"}}"#;

/// Fast periods for tests; `extra` adds keys to `[telemetry]`.
fn device(f: &Fleet, extra: &str) -> TestEnv {
    TestEnv::with_config(&format!(
        "{}[telemetry]\nsample_secs = 1\npublish_secs = 1\nbatch_wait_ms = 100\n{extra}\n",
        f.mqtt_section("gw1", &[], "")
    ))
}

/// A container that says `ready`, waits for `/go` (written by the test into its
/// rootfs), then runs `script`.
fn gated_task(family: &str, script: &str, extra: &str) -> String {
    let s = format!("echo ready; until [ -e /go ]; do sleep 0.1; done; {script}; sleep 3600");
    common::sh_task(family, &s, extra)
}

/// Waits for the agent to run `family`'s task; returns its id.
fn task_id(env: &TestEnv, family: &str) -> String {
    let st = env.wait_status(&format!("{family} running"), 60, |st| {
        st["tasks"].as_object().is_some_and(|t| {
            t.iter().any(|(id, v)| {
                id.starts_with(family) && v["containers"]["main"]["state"] == "RUNNING"
            })
        })
    });
    let tasks = st["tasks"].as_object().expect("tasks");
    tasks
        .keys()
        .find(|id| id.starts_with(family))
        .expect("task id")
        .clone()
}

fn go(env: &TestEnv, task: &str) {
    std::fs::write(env.container_dir(task, "main").join("rootfs/go"), "").expect("write /go");
}

/// `ctl logs -f` as a child; its JSON lines' `text` arrive on the channel.
fn follow(f: &Fleet, task: &str) -> (Child, mpsc::Receiver<serde_json::Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skerry"))
        .arg("ctl")
        .arg("--config")
        .arg(&f.ctl_config)
        .args([
            "logs", "--device", "gw1", task, "main", "-f", "--output", "json",
        ])
        .env("SKERRY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctl logs -f");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    (child, rx)
}

/// Texts from `rx` until one equals `last` (or the deadline).
fn collect_until(rx: &mpsc::Receiver<serde_json::Value>, last: &str, secs: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        if let Ok(v) = rx.recv_timeout(Duration::from_millis(200)) {
            let t = v["text"].as_str().unwrap_or("").to_string();
            let done = t == last;
            got.push(t);
            if done {
                break;
            }
        }
    }
    got
}

fn numbered(n: u32) -> Vec<String> {
    (1..=n).map(|i| format!("line {i}")).collect()
}

const WRITE_300: &str = "i=1; while [ $i -le 300 ]; do echo \"line $i\"; i=$((i+1)); done";

fn retained_batch(f: &Fleet, task: &str) -> Option<LogBatch> {
    let topic = f.broker.topic("gw1", &format!("logs/{task}/main"));
    let bytes = f
        .broker
        .sub_retained(OPERATOR, &topic, Duration::from_secs(3))?;
    match Envelope::decode(&bytes, usize::MAX).ok()?.body {
        Body::Logs(b) => Some(b),
        _ => None,
    }
}

fn retained_metrics(f: &Fleet) -> Option<MetricsReport> {
    let topic = f.broker.topic("gw1", "metrics");
    let bytes = f
        .broker
        .sub_retained(OPERATOR, &topic, Duration::from_secs(3))?;
    match Envelope::decode(&bytes, usize::MAX).ok()?.body {
        Body::Metrics(m) => Some(m),
        _ => None,
    }
}

#[test]
fn telemetry_logs_reach_the_operator_in_order() {
    let f = Fleet::start(&[("gw1", &[])]);
    let env = device(&f, "log_lines_per_sec = 0");
    let _agent = env.agent(&[]);
    env.put_desired("chatty.json", &gated_task("chatty", WRITE_300, AWSLOGS));
    let task = task_id(&env, "chatty");
    let (mut ctl, rx) = follow(&f, &task);
    assert_eq!(collect_until(&rx, "ready", 60), vec!["ready"]);
    go(&env, &task);
    let got = collect_until(&rx, "line 300", 60);
    assert_eq!(got, numbered(300), "ctl logs -f, in order, none missing");
    let _ = ctl.kill();
    let _ = ctl.wait();
    // Read back with mosquitto_sub: the retained newest batch ends with the last line,
    // named as ECS names the stream.
    let b = retained_batch(&f, &task).expect("a retained log batch");
    let lines = b.lines(1 << 22).expect("lines");
    assert_eq!(lines.last().map(|l| l.text.as_str()), Some("line 300"));
    assert_eq!(
        b.first_line + lines.len() as u64 - 1,
        301,
        "ready + 300 lines numbered"
    );
    assert_eq!(b.stream, format!("ecs/main/{task}"));
    assert_eq!(b.group, "/ecs/edge");
    assert_eq!(b.cut, 0);
    env.stop_all_tasks();
}

/// awslogs' `awslogs-datetime-format`: a line that starts with a timestamp starts an
/// event, the lines under it (a stack trace) continue it, as CloudWatch would group
/// them; `ctl logs` marks them.
#[test]
fn telemetry_awslogs_datetime_format_groups_a_stack_trace_into_one_event() {
    let f = Fleet::start(&[("gw1", &[])]);
    let env = device(&f, "log_lines_per_sec = 0");
    let _agent = env.agent(&[]);
    let options = r#""logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/edge", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "ecs", "awslogs-datetime-format": "%Y-%m-%d %H:%M:%S"}}"#;
    let script = "echo '2026-12-02 10:00:00 INFO start'; echo '2026-12-02 10:00:01 ERROR boom'; \
        echo '  at a.b(C.java:1)'; echo '  at d.e(F.java:2)'; echo '2026-12-02 10:00:02 INFO done'";
    env.put_desired("traces.json", &gated_task("traces", script, options));
    let task = task_id(&env, "traces");
    let (mut ctl, rx) = follow(&f, &task);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while Instant::now() < deadline
        && !got
            .iter()
            .any(|(t, _): &(String, bool)| t.ends_with("INFO done"))
    {
        if let Ok(v) = rx.recv_timeout(Duration::from_millis(200)) {
            let text = v["text"].as_str().unwrap_or("").to_string();
            if text == "ready" {
                go(&env, &task);
            }
            got.push((text, v["continues"].as_bool().unwrap_or(false)));
        }
    }
    let _ = ctl.kill();
    let _ = ctl.wait();
    let marks: Vec<(&str, bool)> = got.iter().map(|(t, c)| (t.as_str(), *c)).collect();
    assert_eq!(
        marks,
        vec![
            ("ready", false),
            ("2026-12-02 10:00:00 INFO start", false),
            ("2026-12-02 10:00:01 ERROR boom", false),
            ("  at a.b(C.java:1)", true),
            ("  at d.e(F.java:2)", true),
            ("2026-12-02 10:00:02 INFO done", false),
        ],
        "events: ready | start | boom + 2 trace lines | done"
    );
    env.stop_all_tasks();
}

#[test]
fn telemetry_skerry_driver_ships_with_its_own_filters_budget_and_batch_size() {
    let f = Fleet::start(&[("gw1", &[])]);
    // The agent's own budget would cut almost everything; the container's wins.
    let env = device(&f, "log_lines_per_sec = 1\nlog_burst = 1");
    let _agent = env.agent(&[]);
    let driver = r#""logConfiguration": {"logDriver": "skerry", "options": {"lines-per-sec": "0", "batch-lines": "5", "min-level": "warn", "exclude-regex": "heartbeat", "group": "plant-a"}}"#;
    let script = "echo 'INFO up'; i=1; while [ $i -le 12 ]; do echo \"WARN w$i\"; i=$((i+1)); done; echo 'WARN heartbeat late'; echo 'DEBUG poll'; echo 'sensor 21.5'; echo 'level=error msg=end'";
    env.put_desired("sk.json", &gated_task("sk", script, driver));
    let task = task_id(&env, "sk");
    let (mut ctl, rx) = follow(&f, &task);
    assert_eq!(collect_until(&rx, "ready", 60), vec!["ready"]);
    go(&env, &task);
    let got = collect_until(&rx, "level=error msg=end", 60);
    let mut want: Vec<String> = (1..=12).map(|i| format!("WARN w{i}")).collect();
    want.extend(["sensor 21.5".to_string(), "level=error msg=end".to_string()]);
    assert_eq!(got, want, "warn and above, unlevelled lines, no heartbeat");
    let _ = ctl.kill();
    let _ = ctl.wait();
    let b = retained_batch(&f, &task).expect("a retained log batch");
    let lines = b.lines(1 << 22).expect("lines");
    assert!(lines.len() <= 5, "batch-lines 5: {} lines", lines.len());
    assert_eq!(
        lines.last().map(|l| l.text.as_str()),
        Some("level=error msg=end")
    );
    assert_eq!(
        (b.group.as_str(), b.stream.clone()),
        ("plant-a", format!("main/{task}"))
    );
    assert_eq!(
        b.cut, 0,
        "the container's unlimited budget, not the agent's"
    );
    assert_eq!(
        b.first_line + lines.len() as u64 - 1,
        15,
        "ready + 14 shipped, numbered densely"
    );
    // Every line stays on the device.
    let local = env.log(&task, "main");
    for l in ["INFO up", "WARN heartbeat late", "DEBUG poll", "WARN w7"] {
        assert!(local.contains(l), "{l} missing from skerry logs: {local}");
    }
    env.stop_all_tasks();
}

#[test]
fn telemetry_burst_over_the_budget_is_cut_and_reported() {
    let f = Fleet::start(&[("gw1", &[])]);
    let env = device(&f, "log_lines_per_sec = 10\nlog_burst = 20");
    let _agent = env.agent(&[]);
    // 500 lines at once, then (tokens refilled) `end`.
    let script =
        "i=1; while [ $i -le 500 ]; do echo \"burst $i\"; i=$((i+1)); done; sleep 3; echo end";
    env.put_desired("burst.json", &gated_task("burst", script, AWSLOGS));
    let task = task_id(&env, "burst");
    go(&env, &task);
    let deadline = Instant::now() + Duration::from_secs(60);
    let b = loop {
        if let Some(b) = retained_batch(&f, &task) {
            let lines = b.lines(1 << 22).expect("lines");
            if lines.last().is_some_and(|l| l.text == "end") {
                break b;
            }
        }
        assert!(Instant::now() < deadline, "no batch with `end`");
        std::thread::sleep(Duration::from_millis(300));
    };
    let shipped = b.first_line + b.lines(1 << 22).expect("lines").len() as u64 - 1;
    assert!(b.cut > 0, "the burst was cut: {b:?}");
    assert_eq!(
        shipped + b.cut,
        502,
        "ready + 500 + end, each shipped or counted cut"
    );
    // ctl logs reports the cut on stderr; the metrics carry it too.
    let out = f.ctl(&["logs", "--device", "gw1", &task, "main"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{} lines cut by the device's rate limit", b.cut)),
        "{err}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = retained_metrics(&f);
        let cut = m.as_ref().and_then(|m| {
            m.containers
                .iter()
                .find(|c| c.task == task)
                .map(|c| c.log_lines_cut)
        });
        if cut == Some(b.cut) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics cut {cut:?} != {}",
            b.cut
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    env.stop_all_tasks();
}

#[test]
fn telemetry_logs_written_while_the_broker_is_down_arrive_in_order() {
    let mut f = Fleet::start(&[("gw1", &[])]);
    let env = device(&f, "log_lines_per_sec = 0");
    let _agent = env.agent(&[]);
    env.put_desired("offline.json", &gated_task("offline", WRITE_300, AWSLOGS));
    let task = task_id(&env, "offline");
    // The first run registers ctl's persistent session and sees `ready`.
    let (mut ctl, rx) = follow(&f, &task);
    assert_eq!(collect_until(&rx, "ready", 60), vec!["ready"]);
    let _ = ctl.kill();
    let _ = ctl.wait();
    f.broker.stop();
    go(&env, &task);
    // The container writes all 300 lines while the link is down.
    let log = env.container_dir(&task, "main").join("logs/container.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("line 300")
    {
        assert!(
            Instant::now() < deadline,
            "container did not write its lines"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    f.broker.start_again();
    let (mut ctl, rx) = follow(&f, &task);
    let mut got = collect_until(&rx, "line 300", 90);
    let _ = ctl.kill();
    let _ = ctl.wait();
    // A new ctl process may print the retained `ready` batch again first.
    got.retain(|t| t != "ready");
    assert_eq!(
        got,
        numbered(300),
        "after reconnect, in order, none missing"
    );
    env.stop_all_tasks();
}

#[test]
fn telemetry_logs_rotated_away_during_an_outage_are_reported_and_the_rest_arrive_in_order() {
    let mut f = Fleet::start(&[("gw1", &[])]);
    // Small files and the smallest queue: reading pauses at half the queue while the
    // link is down, and rotation deletes what was not read.
    let env = TestEnv::with_config(&format!(
        "{}[logs]\nmax_file_bytes = 4096\nmax_files = 1\n[telemetry]\nsample_secs = 1\npublish_secs = 1\nbatch_wait_ms = 100\nlog_lines_per_sec = 0\nqueue_max_bytes = 65536\n",
        f.mqtt_section("gw1", &[], "")
    ));
    let _agent = env.agent(&[]);
    let script = "i=1; while [ $i -le 20000 ]; do echo \"line $i\"; i=$((i+1)); done";
    env.put_desired("rot.json", &gated_task("rot", script, AWSLOGS));
    let task = task_id(&env, "rot");
    let (mut ctl, rx) = follow(&f, &task);
    assert_eq!(collect_until(&rx, "ready", 60), vec!["ready"]);
    let _ = ctl.kill();
    let _ = ctl.wait();
    f.broker.stop();
    go(&env, &task);
    let log = env.container_dir(&task, "main").join("logs/container.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("line 20000")
    {
        assert!(
            Instant::now() < deadline,
            "container did not write its lines"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    f.broker.start_again();
    let (mut ctl, rx) = follow(&f, &task);
    let got = collect_until(&rx, "line 20000", 120);
    let _ = ctl.kill();
    let _ = ctl.wait();
    let numbers: Vec<u32> = got
        .iter()
        .filter_map(|t| t.strip_prefix("line ")?.parse().ok())
        .collect();
    assert_eq!(numbers.last(), Some(&20000), "the newest lines arrive");
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "in order, no repeats"
    );
    assert!(
        numbers.len() < 20000,
        "some were rotated away: {}",
        numbers.len()
    );
    // The loss is said, not silent: ctl reports it from the batches' count.
    let out = f.ctl(&["logs", "--device", "gw1", &task, "main"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log files rotated away on the device before they were shipped"),
        "{err}"
    );
    env.stop_all_tasks();
}

#[test]
fn telemetry_metrics_follow_memory_to_the_oom_kill() {
    let f = Fleet::start(&[("gw1", &[])]);
    let env = device(&f, "");
    let _agent = env.agent(&[]);
    // 24 MiB limit; a shell string growing by 128 KiB every 0.1 s grows across many
    // samples until the OOM killer ends it (the task then stops and its cgroup goes:
    // the kill count stays in the metrics).
    let grow = "c=$(head -c 131072 /dev/zero | tr '\\0' x); x=; while true; do x=\"$x$c\"; sleep 0.1; done";
    env.put_desired("hog.json", &gated_task("hog", grow, r#""memory": 24"#));
    let task = task_id(&env, "hog");
    let find = |m: &MetricsReport| m.containers.iter().find(|c| c.task == task).cloned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        if let Some(c) = retained_metrics(&f).as_ref().and_then(find) {
            if c.memory_bytes > 0 {
                break c;
            }
        }
        assert!(Instant::now() < deadline, "no metrics for {task}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(before.memory_limit_bytes, Some(24 * 1024 * 1024));
    assert_eq!(before.oom_kills, 0);
    assert!(before.pids >= 1, "{before:?}");
    go(&env, &task);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut peak = 0;
    let mut last = None;
    let after = loop {
        if let Some(c) = retained_metrics(&f).as_ref().and_then(find) {
            peak = peak.max(c.memory_peak_bytes);
            if c.oom_kills >= 1 {
                break c;
            }
            last = Some(c);
        }
        assert!(
            Instant::now() < deadline,
            "no OOM kill counted; last {last:?}; status {:#}; exit {}",
            env.agent_status(),
            std::fs::read_to_string(env.container_dir(&task, "main").join("exit.json"))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        peak.max(after.memory_peak_bytes) > before.memory_bytes + 8 * 1024 * 1024,
        "usage rose: before {before:?}, peak {peak}"
    );
    // The local view reads the same without the broker.
    let out = env
        .skerry(&["top", "--output", "json"])
        .output()
        .expect("skerry top");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local: MetricsReport = serde_json::from_slice(&out.stdout).expect("top json");
    assert!(local
        .containers
        .iter()
        .any(|c| c.task == task && c.oom_kills >= 1));
    assert!(local.device.memory_total_bytes > 0 && local.device.agent_rss_bytes > 0);
    let table = env.skerry(&["top", "--once"]).output().expect("skerry top");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("CONTAINER") && text.contains(&task), "{text}");
    // The operator's view of the same device.
    let json = f.ctl_ok(&["top", "--device", "gw1", "--output", "json"]);
    let remote: MetricsReport = serde_json::from_str(&json).expect("ctl top json");
    assert!(
        remote
            .containers
            .iter()
            .any(|c| c.task == task && c.oom_kills >= 1),
        "{json}"
    );
    let screen = f.ctl_ok(&["top", "--device", "gw1", "--once"]);
    assert!(
        screen.starts_with("gw1") && screen.contains("OOM") && screen.contains(&task),
        "{screen}"
    );
    // On a terminal (a pty from util-linux `script`) it redraws in place as reports
    // arrive (one a second here) until interrupted.
    let cmd = format!(
        "timeout -s INT 5 {} ctl --config {} top --device gw1",
        env!("CARGO_BIN_EXE_skerry"),
        f.ctl_config.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script");
    let tty = String::from_utf8_lossy(&out.stdout);
    let redraws = tty.matches("\x1b[H\x1b[2J").count();
    assert!(redraws >= 2, "{redraws} redraws on the pty: {tty:?}");
    assert!(tty.contains(&task), "{tty:?}");
    env.stop_all_tasks();
}

/// Python's prometheus_client text parser, as Debian installs it (scripts/setup).
const PARSE_PROM: &str = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
out = []
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

#[test]
fn telemetry_prometheus_on_a_unix_socket_parses_with_prometheus_client() {
    let env = TestEnv::new();
    let sock = env.dir.path().join("metrics.sock");
    std::fs::write(
        &env.config,
        format!(
            "{}\n[telemetry]\nsample_secs = 1\npublish_secs = 1\nprometheus = \"unix:{}\"\n",
            std::fs::read_to_string(&env.config).expect("config"),
            sock.display()
        ),
    )
    .expect("config");
    let _agent = env.agent(&[]);
    env.put_desired(
        "uidle.json",
        &common::sh_task("uidle", "sleep 3600", r#""memory": 32"#),
    );
    let task = task_id(&env, "uidle");
    let page = env.dir.path().join("page.txt");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = std::os::unix::net::UnixStream::connect(&sock)
            .and_then(|mut s| {
                s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
                let mut r = String::new();
                s.read_to_string(&mut r)?;
                Ok(r)
            })
            .unwrap_or_default();
        if let Some((head, body)) = body.split_once("\r\n\r\n") {
            if head.starts_with("HTTP/1.") && body.contains(&format!("task=\"{task}\"")) {
                std::fs::write(&page, body).expect("page");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no metrics on {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let parse = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nfor f in p(open(sys.argv[1]).read()):\n    print(f.name, f.type, len(f.samples))";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", parse])
        .arg(&page)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("skerry_container_memory_usage_bytes gauge"),
        "{text}"
    );
    assert!(
        text.contains("skerry_container_cpu_usage_seconds counter"),
        "{text}"
    );
    env.stop_all_tasks();
}

#[test]
fn telemetry_prometheus_endpoint_parses_with_prometheus_client() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let env = TestEnv::with_config(&format!(
        "[telemetry]\nsample_secs = 1\npublish_secs = 1\nprometheus = \"127.0.0.1:{port}\"\n"
    ));
    let _agent = env.agent(&[]);
    env.put_desired(
        "idle.json",
        &common::sh_task("idle", "sleep 3600", r#""memory": 32"#),
    );
    let task = task_id(&env, "idle");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    let samples: Vec<serde_json::Value> = loop {
        let out = Command::new("/usr/bin/python3")
            .args(["-c", PARSE_PROM, &url])
            .output()
            .expect("python3 (scripts/setup installs python3-prometheus-client)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("No module named 'prometheus_client'"),
            "install python3-prometheus-client (scripts/setup)"
        );
        if out.status.success() {
            let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
            if v.iter().any(|s| {
                s["name"] == "skerry_container_memory_usage_bytes"
                    && s["labels"]["task"] == task.as_str()
                    && s["value"].as_f64() > Some(0.0)
            }) {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no parseable metrics for {task}: {err}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let find = |name: &str| {
        samples
            .iter()
            .find(|s| {
                s["name"] == name
                    && (s["labels"]["task"] == task.as_str()
                        || s["labels"].as_object().is_some_and(|l| l.is_empty()))
            })
            .unwrap_or_else(|| panic!("{name} missing: {samples:?}"))
            .clone()
    };
    assert_eq!(
        find("skerry_container_memory_limit_bytes")["value"],
        32.0 * 1024.0 * 1024.0
    );
    assert!(find("skerry_container_memory_usage_bytes")["value"].as_f64() > Some(0.0));
    let cpu = find("skerry_container_cpu_usage_seconds_total");
    assert_eq!(cpu["type"], "counter", "{cpu}");
    assert!(find("skerry_agent_resident_memory_bytes")["value"].as_f64() > Some(0.0));
    assert_eq!(find("skerry_container_oom_kills_total")["value"], 0.0);
    env.stop_all_tasks();
}

/// utime+stime (ms) and VmRSS (bytes) of a process.
fn cpu_rss(pid: i32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    ((t(11) + t(12)) * 10, rss * 1024)
}

fn percentile(v: &mut [u64], p: usize) -> u64 {
    v.sort_unstable();
    v.get((v.len().saturating_sub(1)) * p / 100)
        .copied()
        .unwrap_or(0)
}

/// Bench (prints figures, asserts nothing about them): agent CPU and RSS with
/// telemetry off and on (defaults) for 10 chatty containers (20 lines/s each),
/// payload bytes per minute on the uplink, and line → `ctl logs -f` latency.
/// `cargo test -p skerry --test telemetry telemetry_bench -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: run by hand, prints figures"]
fn telemetry_bench() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let f = Fleet::start(&[("gw1", &[])]);
    let chatty = "i=0; while true; do echo \"$(date +%s) request $i served GET /api/v1/items?page=3 200 1532 bytes in 3 ms\"; i=$((i+1)); sleep 0.05; done";
    let run = |telemetry: &str, label: &str| {
        let env = TestEnv::with_config(&format!("{}{telemetry}\n", f.mqtt_section("gw1", &[], "")));
        let agent = env.agent(&[]);
        for n in 0..10 {
            let extra = format!("{AWSLOGS}, \"stopTimeout\": 2");
            env.put_desired(
                &format!("c{n}.json"),
                &common::sh_task(&format!("c{n}"), chatty, &extra),
            );
        }
        for n in 0..10 {
            task_id(&env, &format!("c{n}"));
        }
        let sub = f
            .broker
            .subscribe(OPERATOR, &f.broker.topic("gw1", "#"))
            .expect("subscribe");
        let (mut ctl, rx) = follow(&f, "c0");
        std::thread::sleep(Duration::from_secs(5));
        while sub.next(Duration::from_millis(10)).is_some() {}
        while rx.try_recv().is_ok() {}
        let (cpu0, _) = cpu_rss(agent.pid());
        let begun = Instant::now();
        let (mut log_bytes, mut metric_bytes, mut rss_max) = (0u64, 0u64, 0u64);
        let mut lat = Vec::new();
        while begun.elapsed() < Duration::from_secs(secs) {
            while let Some(m) = sub.next(Duration::from_millis(50)) {
                if m.topic.ends_with("/metrics") {
                    metric_bytes += m.payload.len() as u64;
                } else if m.topic.contains("/logs/") {
                    log_bytes += m.payload.len() as u64;
                }
            }
            while let Ok(v) = rx.try_recv() {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                if let Some(t) = v["time"]
                    .as_str()
                    .and_then(skerry_core::telemetry::rate::parse_stamp_ms)
                {
                    lat.push(now.saturating_sub(t));
                }
            }
            rss_max = rss_max.max(cpu_rss(agent.pid()).1);
        }
        let (cpu1, _) = cpu_rss(agent.pid());
        let _ = ctl.kill();
        let _ = ctl.wait();
        let per_min = |b: u64| b * 60 / secs;
        println!(
            "BENCH telemetry {label}: agent CPU {:.2}% of one core, RSS max {} KiB; uplink payload {} B/min logs + {} B/min metrics; line->ctl logs -f latency p50 {} ms p95 {} ms max {} ms ({} lines)",
            (cpu1 - cpu0) as f64 / (secs * 10) as f64,
            rss_max / 1024,
            per_min(log_bytes),
            per_min(metric_bytes),
            percentile(&mut lat, 50),
            percentile(&mut lat, 95),
            lat.iter().max().copied().unwrap_or(0),
            lat.len()
        );
        env.stop_all_tasks();
        drop(agent);
    };
    if std::env::var("BENCH_ONLY_FAST").is_err() {
        run("[telemetry]\nenabled = false", "off");
        run("", "on (defaults)");
    }
    run(
        "[telemetry]\nlog_lines_per_sec = 0\nbatch_wait_ms = 200",
        "on (unlimited, 200 ms batches)",
    );
}

/// A metrics message's envelope number (the spool's) and sample time.
fn metrics_seq(m: &common::broker::Message) -> Option<(u64, MetricsReport)> {
    match Envelope::decode(&m.payload, usize::MAX).ok()? {
        Envelope {
            seq,
            body: Body::Metrics(r),
            ..
        } => Some((seq, r)),
        _ => None,
    }
}

/// Numbers of the reports the device's spool holds unacknowledged.
fn spooled(env: &TestEnv) -> Vec<u64> {
    skerry::telemetry::spool::read(&env.state())
        .expect("read the spool")
        .iter()
        .map(|e| e.seq)
        .collect()
}

/// Waits until the spool holds at least `n` reports numbered above `after`.
fn wait_spooled(env: &TestEnv, after: u64, n: usize, secs: u64) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let held = spooled(env);
        if held.iter().filter(|s| **s > after).count() >= n {
            return held;
        }
        assert!(
            Instant::now() < deadline,
            "spool holds {held:?}, want {n} above {after}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Live (not retained) metrics reports of `msgs`, a repeat of a number already seen
/// dropped (QoS 1 is at least once: a report whose PUBACK an outage cut is sent again).
fn live_reports(msgs: &[common::broker::Message], into: &mut Vec<(u64, MetricsReport)>) {
    for (seq, r) in msgs.iter().filter(|m| !m.retained).filter_map(metrics_seq) {
        if into.last().is_none_or(|(last, _)| seq > *last) {
            into.push((seq, r));
        }
    }
}

/// A persistent session (fixed client id, clean start off) on gw1's metrics: the
/// broker queues for it while it is away.
fn persistent_metrics(f: &Fleet, client_id: &str) -> common::broker::Subscriber {
    let topic = f.broker.topic("gw1", "metrics");
    f.broker
        .subscribe_with(OPERATOR, &[&topic], &["-c", "-i", client_id])
        .expect("persistent subscriber")
}

/// The live reports `sub` has once the first numbered one arrived (60 s at most).
fn first_reports(sub: &common::broker::Subscriber) -> Vec<(u64, MetricsReport)> {
    let mut got = Vec::new();
    live_reports(
        &sub.until(Duration::from_secs(60), |m| {
            !m.retained && metrics_seq(m).is_some_and(|(s, _)| s > 0)
        }),
        &mut got,
    );
    got
}

#[test]
fn telemetry_metrics_spooled_while_offline_survive_a_kill_9_and_arrive_in_order() {
    let mut f = Fleet::start(&[("gw1", &[])]);
    let env = device(&f, "");
    let sub = persistent_metrics(&f, "ops-metrics-spool");
    let mut agent = env.agent(&[]);
    let mut got = first_reports(&sub);
    drop(sub);
    f.broker.stop();
    // Offline: reports pile up in the spool; then kill -9 with them there.
    let online = got.last().map_or(0, |(s, _)| *s);
    wait_spooled(&env, online, 4, 60);
    agent.kill9();
    let at_kill = spooled(&env);
    let last_before_kill = *at_kill.last().expect("reports spooled before the kill");
    assert!(
        at_kill.len() >= 4,
        "held at the kill: {at_kill:?} (online up to {online})"
    );
    // Restarted, still offline: it keeps what was held and adds after it.
    let _agent = env.agent(&[]);
    let held = wait_spooled(&env, last_before_kill, 2, 60);
    assert!(
        at_kill.iter().all(|s| held.contains(s)),
        "the restart lost some: at the kill {at_kill:?}, now {held:?}"
    );
    f.broker.start_again();
    let sub = persistent_metrics(&f, "ops-metrics-spool");
    let want = last_before_kill + 3;
    live_reports(
        &sub.until(Duration::from_secs(90), |m| {
            !m.retained && metrics_seq(m).is_some_and(|(s, _)| s >= want)
        }),
        &mut got,
    );
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..=*seqs.last().expect("reports")).collect::<Vec<_>>(),
        "every report, in order, none missing"
    );
    assert!(
        at_kill.iter().all(|s| seqs.contains(s)),
        "the reports held at the kill {at_kill:?} arrived: {seqs:?}"
    );
    assert!(
        got.windows(2).all(|w| w[0].1.at_ms < w[1].1.at_ms),
        "sample times in order: {:?}",
        got.iter().map(|(s, r)| (*s, r.at_ms)).collect::<Vec<_>>()
    );
    assert!(got.iter().all(|(_, r)| r.device.telemetry_dropped == 0));
    // Delivered reports leave the spool.
    let deadline = Instant::now() + Duration::from_secs(30);
    while spooled(&env).iter().any(|s| *s <= last_before_kill) {
        assert!(Instant::now() < deadline, "spool {:?}", spooled(&env));
        std::thread::sleep(Duration::from_millis(200));
    }
    env.stop_all_tasks();
}

#[test]
fn telemetry_spool_bound_drops_the_oldest_reports_and_says_how_many() {
    let mut f = Fleet::start(&[("gw1", &[])]);
    // The smallest spool: 4 KiB, in 512-byte segments (a few reports each).
    let env = device(&f, "spool_max_bytes = 4096");
    let sub = persistent_metrics(&f, "ops-metrics-bound");
    let _agent = env.agent(&[]);
    let got = first_reports(&sub);
    drop(sub);
    f.broker.stop();
    let online = got.last().map_or(0, |(s, _)| *s);
    // Offline until the bound has dropped some: the oldest held is past the first
    // report made offline.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = spooled(&env);
        if held.first().is_some_and(|s| *s > online + 2) {
            break;
        }
        assert!(Instant::now() < deadline, "nothing dropped: {held:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let on_disk: u64 = std::fs::read_dir(env.state().join("telemetry/spool"))
        .expect("spool dir")
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(on_disk <= 4096 + 1024, "spool {on_disk} bytes on disk");
    f.broker.start_again();
    let sub = persistent_metrics(&f, "ops-metrics-bound");
    // Once the spool has drained (the agent is back and keeps up), no more drops:
    // a report sampled after that carries the whole count.
    let deadline = Instant::now() + Duration::from_secs(90);
    while spooled(&env).len() > 2 {
        assert!(
            Instant::now() < deadline,
            "spool not drained: {:?}",
            spooled(&env)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let drained_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut after = Vec::new();
    let msgs = sub.until(Duration::from_secs(60), |m| {
        !m.retained && metrics_seq(m).is_some_and(|(_, r)| r.at_ms > drained_ms)
    });
    live_reports(&msgs, &mut after);
    let seqs: Vec<u64> = after.iter().map(|(s, _)| *s).collect();
    // What was queued at the broker before its stop may come first; then a gap (the
    // dropped), then the held ones in order.
    let resumed = seqs
        .iter()
        .position(|s| *s > online + 2)
        .expect("held reports arrive");
    let gap = seqs[resumed] - seqs[..resumed].last().copied().unwrap_or(online) - 1;
    assert!(gap > 0, "the oldest were dropped: {seqs:?}");
    assert!(
        seqs[resumed..].windows(2).all(|w| w[1] == w[0] + 1),
        "the rest in order, none missing: {seqs:?}"
    );
    // Every number missing was dropped by the bound and counted (a report the
    // broker took just before its stop but did not acknowledge may be counted too:
    // at most the 8 in flight).
    let (_, newest) = after.last().expect("a report");
    let dropped = newest.device.telemetry_dropped;
    assert!(
        (gap..=gap + 8).contains(&dropped),
        "telemetry_dropped {dropped} counts the {gap} dropped reports: {seqs:?}"
    );
    env.stop_all_tasks();
}

/// `wchar` and `write_bytes` of the thread named `name` of a process (`/proc/…/io`).
fn thread_io(pid: i32, name: &str) -> (u64, u64) {
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let io = std::fs::read_to_string(t.path().join("io")).unwrap_or_default();
            let field = |k: &str| {
                io.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            };
            return (field("wchar:"), field("write_bytes:"));
        }
    }
    (0, 0)
}

/// Bench (prints figures, asserts nothing about them): the telemetry thread's disk
/// writes per metrics report, spool on (broker up: append + fsync + ack; broker down:
/// append + fsync) against no link (no spool: only `metrics.json`), one report a
/// second, and the agent's RSS. Scale by 60 reports an hour at the default period.
/// `cargo test -p skerry --test telemetry telemetry_spool_bench -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: run by hand, prints figures"]
fn telemetry_spool_bench() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut f = Fleet::start(&[("gw1", &[])]);
    let measure = |env: &TestEnv, label: &str| {
        let agent = env.agent(&[]);
        env.put_desired("idle.json", &common::sh_task("idle", "sleep 3600", ""));
        task_id(env, "idle");
        std::thread::sleep(Duration::from_secs(3));
        let (w0, b0) = thread_io(agent.pid(), "telemetry");
        std::thread::sleep(Duration::from_secs(secs));
        let (w1, b1) = thread_io(agent.pid(), "telemetry");
        let (_, rss) = cpu_rss(agent.pid());
        println!(
            "BENCH spool {label}: telemetry thread wrote {} B/report (syscalls), {} B/report dirtied; agent RSS {} KiB",
            (w1 - w0) / secs,
            (b1 - b0) / secs,
            rss / 1024
        );
        env.stop_all_tasks();
    };
    let local = TestEnv::with_config("[telemetry]\nsample_secs = 1\npublish_secs = 1\n");
    measure(&local, "off (no link)");
    drop(local);
    let online = device(&f, "");
    measure(&online, "on, broker up");
    drop(online);
    f.broker.stop();
    let offline = device(&f, "");
    measure(&offline, "on, broker down");
}
