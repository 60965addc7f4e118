//! Log drivers with real containers: `awslogs` output stays on the device (the
//! rotated files behind `skerry logs`) and the launch says so once, naming ECS's
//! stream; `none` keeps no log at all; `journald` lines are in a real journal (a
//! systemd-journald the test starts in a private mount namespace: systemd is not
//! PID 1 here) with the container's fields, and in `skerry logs`; without a journal
//! the container runs and one notice says where its output went.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{lines_of, sh_task, TestEnv};
use serde_json::Value;

const AWSLOGS: &str = r#""logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/edge", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "ecs", "awslogs-create-group": "true", "mode": "non-blocking", "max-buffer-size": "4m"}}"#;

#[test]
fn awslogs_container_lines_reach_skerry_logs_and_the_launch_says_where() {
    let env = TestEnv::new();
    let out = env.run(
        "awslogs",
        &sh_task("awslogs", "echo to-cloudwatch; echo err-line >&2", AWSLOGS),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(lines_of(&out, "main"), vec!["to-cloudwatch"]);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("CloudWatch is not reached from the device"))
        .collect();
    assert_eq!(said.len(), 1, "one notice per task, got:\n{stderr}");
    assert!(
        said[0].contains("main (stream ecs/main/awslogs)")
            && said[0].contains("skerry logs awslogs"),
        "{}",
        said[0]
    );
    let logs = env
        .skerry(&["logs", "awslogs"])
        .output()
        .expect("skerry logs");
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.lines().any(|l| l == "to-cloudwatch"), "{text}");
    let file = env.log("awslogs", "main");
    assert!(
        file.lines().any(|l| l.ends_with(" stderr err-line")),
        "{file}"
    );
}

#[test]
fn none_log_driver_keeps_no_output() {
    let env = TestEnv::new();
    let out = env.run(
        "nolog",
        &sh_task(
            "nolog",
            "echo dropped-line; echo dropped-err >&2; exit 3",
            r#""logConfiguration": {"logDriver": "none"}"#,
        ),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lines_of(&out, "main").is_empty());
    assert_eq!(env.log("nolog", "main"), "");
    let logs = env
        .skerry(&["logs", "nolog"])
        .output()
        .expect("skerry logs");
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(!text.contains("dropped"), "{text}");
}

/// A journald container: tag template, one label and one variable as fields.
fn journald_task(family: &str) -> String {
    sh_task(
        family,
        "echo to-journal-out; echo to-journal-err >&2; head -c 20000 /dev/zero | tr '\\0' x; echo",
        r#""dockerLabels": {"team": "edge"}, "environment": [{"name": "STAGE", "value": "beta"}],
           "logConfiguration": {"logDriver": "journald", "options": {"tag": "{{.Name}}-tag", "labels": "team", "env": "STAGE"}}"#,
    )
    .replacen(r#"{"family""#, r#"{"networkMode": "host", "family""#, 1)
}

/// `sh -ec SCRIPT` in a private mount namespace with empty /run/systemd, /run/log
/// and /var/log (so a journald started there is the test's own).
fn in_private_ns(env: &TestEnv, script: &str) -> Output {
    let full = format!(
        "mkdir -p /run/systemd /run/log\n\
         mount -t tmpfs tmpfs /run/systemd\n\
         mount -t tmpfs tmpfs /run/log\n\
         mount -t tmpfs tmpfs /var/log\n\
         {script}"
    );
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec", &full])
        .env("SKERRY", env!("CARGO_BIN_EXE_skerry"))
        .env("SKERRY_CONFIG", &env.config)
        .env("SKERRY_LOG", "warn")
        .env("T", env.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("unshare")
}

#[test]
fn journald_container_lines_reach_the_journal_with_its_fields() {
    assert!(
        Path::new("/lib/systemd/systemd-journald").exists(),
        "systemd-journald is needed (scripts/setup installs systemd)"
    );
    let env = TestEnv::new();
    env.write_task("jrn", &journald_task("jrn"));
    let out = in_private_ns(
        &env,
        "/lib/systemd/systemd-journald &\n\
         journald=$!\n\
         i=0; while [ $i -lt 100 ] && ! [ -S /run/systemd/journal/socket ]; do sleep 0.1; i=$((i + 1)); done\n\
         \"$SKERRY\" run --keep --name jrn \"$T/jrn.json\" >\"$T/run.out\" 2>\"$T/run.err\"\n\
         i=0; while [ $i -lt 100 ] && [ \"$(journalctl --no-pager -q -o json TASK=jrn | wc -l)\" -lt 4 ]; do sleep 0.1; i=$((i + 1)); done\n\
         journalctl --no-pager --all -o json TASK=jrn >\"$T/journal.json\"\n\
         kill $journald; wait $journald || true\n",
    );
    let read = |f: &str| std::fs::read_to_string(env.dir.path().join(f)).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        read("run.out"),
        read("run.err")
    );
    let entries: Vec<Value> = read("journal.json")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find = |msg: &str| {
        entries
            .iter()
            .find(|e| e["MESSAGE"] == msg)
            .unwrap_or_else(|| panic!("no journal entry {msg:?}: {entries:?}"))
    };
    let out_entry = find("to-journal-out");
    let err_entry = find("to-journal-err");
    assert_eq!(out_entry["PRIORITY"], "6", "{out_entry}");
    assert_eq!(err_entry["PRIORITY"], "3", "{err_entry}");
    for e in [out_entry, err_entry] {
        assert_eq!(e["CONTAINER_NAME"], "main", "{e}");
        assert_eq!(e["CONTAINER_ID"], "jrn.main", "{e}");
        assert_eq!(e["CONTAINER"], "main", "{e}");
        assert_eq!(e["IMAGE_NAME"], "busybox:latest", "{e}");
        assert_eq!(e["SYSLOG_IDENTIFIER"], "main-tag", "{e}");
        assert_eq!(e["CONTAINER_TAG"], "main-tag", "{e}");
        assert_eq!(e["TEAM"], "edge", "{e}");
        assert_eq!(e["STAGE"], "beta", "{e}");
    }
    // A 20000-byte line: a 16 KiB part marked partial, then the rest, as Docker splits.
    let long: Vec<&Value> = entries
        .iter()
        .filter(|e| e["MESSAGE"].as_str().is_some_and(|m| m.starts_with("xxx")))
        .collect();
    assert_eq!(long.len(), 2, "{long:?}");
    assert_eq!(long[0]["MESSAGE"].as_str().map(str::len), Some(16 * 1024));
    assert_eq!(long[0]["CONTAINER_PARTIAL_MESSAGE"], "true");
    assert_eq!(
        long[1]["MESSAGE"].as_str().map(str::len),
        Some(20000 - 16 * 1024)
    );
    assert!(
        long[1].get("CONTAINER_PARTIAL_MESSAGE").is_none(),
        "{}",
        long[1]
    );
    // The files behind `skerry logs` have both lines as well.
    let file = env.log("jrn", "main");
    assert!(
        file.lines().any(|l| l.ends_with(" stdout to-journal-out")),
        "{file}"
    );
    assert!(
        file.lines().any(|l| l.ends_with(" stderr to-journal-err")),
        "{file}"
    );
    assert!(
        !read("run.err").contains("no journal"),
        "{}",
        read("run.err")
    );
}

#[test]
fn journald_without_a_journal_runs_and_says_where_the_output_is() {
    let env = TestEnv::new();
    env.write_task("nojrn", &journald_task("nojrn"));
    // /run/systemd is an empty tmpfs in the namespace: no journal socket.
    let out = in_private_ns(
        &env,
        "\"$SKERRY\" run --keep --name nojrn \"$T/nojrn.json\" >\"$T/run.out\" 2>\"$T/run.err\"\n",
    );
    let read = |f: &str| std::fs::read_to_string(env.dir.path().join(f)).unwrap_or_default();
    let err = read("run.err");
    assert!(
        out.status.success(),
        "{}\n{err}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("has no journal"))
        .collect();
    assert_eq!(said.len(), 1, "one notice per task, got:\n{err}");
    assert!(
        said[0].contains("journald log driver for main") && said[0].contains("skerry logs nojrn"),
        "{}",
        said[0]
    );
    let logs = env
        .skerry(&["logs", "nojrn"])
        .output()
        .expect("skerry logs");
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.lines().any(|l| l == "to-journal-out"), "{text}");
}
