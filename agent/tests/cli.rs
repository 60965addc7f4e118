//! What a new user types first: `--version`, a bad config, the listing commands'
//! one output convention (`--output table|json`), and where the agent's logs go
//! (no colour off a terminal; the journal's fields under systemd).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{sh_task, TestEnv};
use serde_json::Value;

fn skerry() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skerry"));
    cmd.env_remove("SKERRY_CONFIG")
        .env_remove("SKERRY_STATE_DIR")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET");
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cli_version_flag_short_flag_and_subcommand_print_the_same_line() {
    let lines: Vec<String> = [&["--version"][..], &["-V"], &["version"]]
        .iter()
        .map(|args| {
            let out = skerry().args(*args).output().expect("skerry");
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            stdout(&out)
        })
        .collect();
    assert!(lines[0].starts_with("skerry 0."), "{}", lines[0]);
    assert!(lines[0].contains("target "), "{}", lines[0]);
    assert_eq!(lines[0], lines[1]);
    assert_eq!(lines[0], lines[2]);
}

#[test]
fn cli_config_error_is_printed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "version = 1\nfoo = 1\n").expect("write");
    let out = skerry()
        .args(["agent", "--check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("skerry");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert_eq!(
        err.matches("line 2: foo: unknown field").count(),
        1,
        "{err}"
    );
}

/// `skerry ARGS` against an empty state directory of its own.
fn in_empty_state(dir: &Path, args: &[&str]) -> Output {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!("state_dir = \"{}\"\n", dir.join("state").display()),
    )
    .expect("config");
    let out = skerry()
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .expect("skerry");
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

#[test]
fn cli_empty_listings_are_a_header_or_an_empty_array() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (cmd, header) in [
        (&["ps"][..], "TASK "),
        (&["events"], "TIME "),
        (&["image", "ls"], "REFERENCE "),
    ] {
        let table = stdout(&in_empty_state(dir.path(), cmd));
        assert_eq!(table.lines().count(), 1, "{cmd:?}: {table}");
        assert!(table.starts_with(header), "{cmd:?}: {table}");
        for flag in [&["--output", "json"][..], &["--json"]] {
            let json = stdout(&in_empty_state(dir.path(), &[cmd, flag].concat()));
            assert_eq!(json.trim(), "[]", "{cmd:?} {flag:?}");
        }
        let explicit = stdout(&in_empty_state(
            dir.path(),
            &[cmd, &["--output", "table"]].concat(),
        ));
        assert_eq!(explicit, table, "{cmd:?}");
    }
    let out = skerry()
        .args(["ps", "--output", "yaml"])
        .output()
        .expect("skerry");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("yaml"), "{}", stderr(&out));
}

/// RFC 3339 UTC with milliseconds, as `--output json` writes times.
fn is_rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 24
            && s.as_bytes()[10] == b'T'
            && s.ends_with('Z')
            && s[..4].parse::<u32>().is_ok()
    })
}

#[test]
fn cli_listings_table_is_human_and_json_is_raw() {
    let env = TestEnv::new();
    let images: Value = serde_json::from_slice(
        &env.skerry(&["image", "ls", "--output", "json"])
            .output()
            .expect("ls")
            .stdout,
    )
    .expect("image ls json");
    let busybox = images
        .as_array()
        .and_then(|a| a.iter().find(|i| i["reference"] == "busybox:latest"))
        .expect("busybox in image ls");
    let bytes = busybox["size_bytes"]
        .as_u64()
        .expect("size_bytes is a number");
    assert!(bytes > 1024, "{busybox}");
    let table = stdout(&env.skerry(&["image", "ls"]).output().expect("ls"));
    let line = table
        .lines()
        .find(|l| l.starts_with("busybox:latest "))
        .expect("busybox line");
    assert!(line.contains("KiB") || line.contains("MiB"), "{line}");
    assert!(!line.contains(&bytes.to_string()), "{line}");

    let mut child = env.spawn(
        "clips",
        &sh_task(
            "clips",
            "echo up; while true; do sleep 0.1; done",
            r#""stopTimeout": 1"#,
        ),
        false,
    );
    let pid = env.wait_running("clips", "main");
    let ps: Value = serde_json::from_slice(
        &env.skerry(&["ps", "--output", "json"])
            .output()
            .expect("ps")
            .stdout,
    )
    .expect("ps json");
    let row = ps
        .as_array()
        .and_then(|a| a.iter().find(|r| r["task"] == "clips"))
        .expect("clips in ps");
    assert_eq!(row["pid"].as_i64(), Some(i64::from(pid)), "{row}");
    assert_eq!(row["state"], "running", "{row}");
    assert!(row["exit_code"].is_null(), "{row}");
    assert!(is_rfc3339(&row["created"]), "{row}");
    let table = stdout(&env.skerry(&["ps"]).output().expect("ps"));
    let line = table
        .lines()
        .find(|l| l.starts_with("clips "))
        .expect("clips line");
    assert!(
        line.contains(&pid.to_string()) && line.contains("running"),
        "{line}"
    );
    assert!(
        line.split_whitespace()
            .any(|w| w.ends_with('s') && w[..w.len() - 1].parse::<u64>().is_ok()),
        "no age in {line}"
    );
    let out = env.skerry(&["stop", "clips"]).output().expect("stop");
    assert!(out.status.success(), "{}", stderr(&out));
    child.wait().expect("wait run");
}

/// Polls `f` for up to `secs` seconds until it returns `Some`.
fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A service whose only container exits 3 at once: launches, exits, backoff.
fn failing_service(family: &str) -> String {
    format!(
        r#"{{"taskDefinition": {}, "desiredCount": 1}}"#,
        sh_task(family, "exit 3", "")
    )
}

#[test]
fn cli_agent_logs_to_a_file_have_no_colour_and_carry_event_fields() {
    let env = TestEnv::with_config("restart_backoff_secs = 1");
    env.put_desired("clilog.service.json", &failing_service("clilog"));
    // A JOURNAL_STREAM that is not this stderr (inherited by a shell) changes nothing.
    let agent = env.agent(&[("JOURNAL_STREAM", "1:1")]);
    let log = env.dir.path().join("agent.log");
    let text = wait_for("the exit in the agent log", 30, || {
        let t = std::fs::read_to_string(&log).ok()?;
        t.contains("container=main").then_some(t)
    });
    drop(agent);
    assert!(!text.contains('\x1b'), "escape sequences in:\n{text}");
    assert!(
        !text.lines().any(|l| l.starts_with('<')),
        "priority prefixes in:\n{text}"
    );
    let exit = text
        .lines()
        .find(|l| l.contains("event=ContainerExited"))
        .unwrap_or_else(|| panic!("no ContainerExited line in:\n{text}"));
    assert!(exit.contains(" WARN "), "{exit}");
    assert!(
        exit.contains("task=clilog.1") && exit.contains("service=clilog"),
        "{exit}"
    );
    let events: Value = serde_json::from_slice(
        &env.skerry(&["events", "--output", "json", "--task", "clilog.1"])
            .output()
            .expect("events")
            .stdout,
    )
    .expect("events json");
    let first = &events.as_array().expect("array")[0];
    assert!(
        first["seq"].as_u64().is_some() && is_rfc3339(&first["time"]),
        "{first}"
    );
    assert_eq!(first["task"], "clilog.1", "{first}");
}

/// Runs SCRIPT with `sh -e` in a private mount namespace, with a tmpfs on
/// /run/systemd, /run/log and /var/log (so a journald started there is the test's
/// own and nothing of the host's is touched). `$SKERRY` is the binary.
fn in_private_run(env: &TestEnv, script: &str) -> Output {
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
        .env("SKERRY_LOG", "info")
        .env("T", env.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("unshare")
}

/// The agent under systemd-like conditions, for SECS seconds, then its tasks stopped
/// (inside the namespace, where their mounts are).
const RUN_AGENT: &str = r#"
: >"$T/agent.err"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/agent.err") "$SKERRY" agent 2>>"$T/agent.err" &
agent=$!
seen() {
  if [ -n "${JOURNAL:-}" ]; then
    [ -n "$(journalctl --no-pager -q TASK=clijrn.1 CONTAINER=main 2>/dev/null)" ] &&
      [ -n "$(journalctl --no-pager -q -p err TASK=clijrnx 2>/dev/null)" ]
  else
    grep -q ActionFailed "$T/agent.err" && grep -q ContainerExited "$T/agent.err"
  fi
}
i=0
while [ $i -lt 300 ] && ! seen; do sleep 0.1; i=$((i + 1)); done
kill -TERM $agent
wait $agent || true
rm -f "$T/state/desired/"*
for t in "$T"/state/tasks/*; do [ -e "$t" ] && "$SKERRY" stop "${t##*/}" >/dev/null 2>&1 || true; done
"#;

fn journald_available() -> bool {
    Path::new("/lib/systemd/systemd-journald").exists()
        && Command::new("journalctl").arg("--version").output().is_ok()
}

#[test]
fn cli_agent_under_systemd_writes_journal_fields_and_priorities() {
    assert!(
        journald_available(),
        "systemd-journald is needed (scripts/setup installs systemd)"
    );
    // The missing image names a loopback registry that refuses at once (no test
    // reaches beyond loopback), with fast retries so the pull gives up in seconds.
    let env = TestEnv::with_config("restart_backoff_secs = 1\n[images]\nmin_retry_delay_ms = 10\nmax_retry_delay_secs = 1\nconnect_timeout_secs = 1");
    env.put_desired("clijrn.service.json", &failing_service("clijrn"));
    env.put_desired(
        "clijrnx.json",
        &sh_task("clijrnx", "true", "").replace("busybox:latest", "127.0.0.1:9/nosuch:latest"),
    );
    let script = format!(
        "/lib/systemd/systemd-journald &\n\
         journald=$!\n\
         i=0; while [ $i -lt 100 ] && ! [ -S /run/systemd/journal/socket ]; do sleep 0.1; i=$((i + 1)); done\n\
         JOURNAL=1\n\
         {RUN_AGENT}\n\
         journalctl --no-pager -o json TASK=clijrn.1 >\"$T/task.json\"\n\
         journalctl --no-pager -o json -p err >\"$T/err.json\"\n\
         kill $journald; wait $journald || true\n"
    );
    let out = in_private_run(&env, &script);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let entries = |file: &str| -> Vec<Value> {
        std::fs::read_to_string(env.dir.path().join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let task = entries("task.json");
    let exit = task
        .iter()
        .find(|e| e["EVENT"] == "ContainerExited")
        .unwrap_or_else(|| panic!("no ContainerExited entry for TASK=clijrn.1: {task:?}"));
    assert_eq!(exit["CONTAINER"], "main", "{exit}");
    assert_eq!(exit["SERVICE"], "clijrn", "{exit}");
    assert_eq!(exit["PRIORITY"], "4", "{exit}");
    assert_eq!(exit["SYSLOG_IDENTIFIER"], "skerry", "{exit}");
    let errs = entries("err.json");
    let failed = errs
        .iter()
        .find(|e| e["TASK"] == "clijrnx" && e["EVENT"] == "ActionFailed")
        .unwrap_or_else(|| panic!("no ActionFailed for clijrnx at -p err: {errs:?}"));
    assert_eq!(failed["PRIORITY"], "3", "{failed}");
    assert!(
        failed["MESSAGE"]
            .as_str()
            .is_some_and(|m| m.contains("nosuch")),
        "{failed}"
    );
    assert!(errs
        .iter()
        .all(|e| e["TASK"] != "clijrn.1" || e["PRIORITY"] == "3"));
    let err = std::fs::read_to_string(env.dir.path().join("agent.err")).unwrap_or_default();
    assert!(
        !err.contains("ContainerExited"),
        "events went to stderr too:\n{err}"
    );
}

#[test]
fn cli_agent_under_systemd_without_journal_socket_prefixes_priorities() {
    let env = TestEnv::with_config("restart_backoff_secs = 1\n[images]\nmin_retry_delay_ms = 10\nmax_retry_delay_secs = 1\nconnect_timeout_secs = 1");
    env.put_desired("clipfx.service.json", &failing_service("clipfx"));
    env.put_desired(
        "clipfxx.json",
        &sh_task("clipfxx", "true", "").replace("busybox:latest", "127.0.0.1:9/nosuch:latest"),
    );
    let out = in_private_run(&env, RUN_AGENT);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let err = std::fs::read_to_string(env.dir.path().join("agent.err")).expect("agent.err");
    assert!(!err.contains('\x1b'), "escape sequences in:\n{err}");
    for l in err.lines() {
        assert!(
            ["<3>", "<4>", "<5>", "<6>", "<7>"]
                .iter()
                .any(|p| l.starts_with(p)),
            "line without a priority prefix: {l:?}\n{err}"
        );
    }
    let failed = err
        .lines()
        .find(|l| l.contains("ActionFailed"))
        .unwrap_or_else(|| panic!("no ActionFailed line:\n{err}"));
    assert!(
        failed.starts_with("<3>") && failed.contains("task=clipfxx"),
        "{failed}"
    );
}
