//! Secrets with real containers and the real agent: a task whose `secrets` (env)
//! and `logConfiguration.secretOptions` are not in the device's store waits with
//! ECS's `ResourceInitializationError` naming the missing secret, and starts once
//! `skerry secret put` stores it, without an agent restart. The container sees the
//! value; the state directory (outside the store), /run, events, the reported state,
//! `ps` and the agent's log never hold it. Bad names are refused. Task ids start with
//! `sc` (cgroup names are host-global and other tests run in parallel).

mod common;
mod pullkit;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{task_container, test_images, AgentProc, TestEnv};
use pullkit::{Registry, RegistryOpts};

const VALUE: &str = "s3cr3t-VALUE-7f3a9c";
/// The value behind the log option (json-file ignores it; it must be resolvable).
const LOG_VALUE: &str = "log-TOKEN-19be44";

fn put_secret(env: &TestEnv, name: &str, value: &str) -> std::process::Output {
    let mut child = env
        .skerry(&["secret", "put", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("skerry secret put");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{value}\n").as_bytes())
        .expect("write value");
    child.wait_with_output().expect("secret put output")
}

fn events_text(env: &TestEnv) -> String {
    let out = env.skerry(&["events"]).output().expect("skerry events");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, secs: u64, mut pred: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = pred() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every regular file under `dir` (symlinks not followed) whose bytes hold `needle`,
/// leaving out `skip`.
fn files_holding(dir: &Path, needle: &[u8], skip: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if path == skip {
            continue;
        }
        if meta.is_dir() {
            files_holding(&path, needle, skip, out);
        } else if meta.is_file() {
            if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    out.push(path.display().to_string());
                }
            }
        }
    }
}

fn md5(text: &str) -> String {
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("md5sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("md5sum input");
    let out = child.wait_with_output().expect("md5sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn secrets_env_and_log_option_missing_then_arriving_never_leak() {
    let env = TestEnv::with_config("restart_backoff_secs = 1");
    let task = r#"{"family": "scenv", "containerDefinitions": [{"name": "main", "image": "busybox:latest", "memory": 32, "stopTimeout": 2,
        "command": ["sh", "-c", "printf %s \"$API_TOKEN\" | md5sum; echo plain=$MODE; trap 'exit 0' TERM; while true; do sleep 0.2; done"],
        "environment": [{"name": "MODE", "value": "edge"}],
        "secrets": [{"name": "API_TOKEN", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/edge/api_token"}],
        "logConfiguration": {"logDriver": "json-file", "secretOptions": [{"name": "x-token", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:log_token-AbC123"}]}}]}"#;
    env.put_desired("scenv.json", task);
    let _agent: AgentProc = env.agent(&[]);

    let first = wait_for("the wait for edge.api_token", 60, || {
        let text = events_text(&env);
        text.lines()
            .find(|l| l.contains("ResourceInitializationError: unable to pull secrets or registry auth: secret \"edge.api_token\""))
            .map(str::to_string)
    });
    assert!(first.contains("scenv") && first.contains("main"), "{first}");
    let st = env.agent_status();
    assert_ne!(
        task_container(&st, "scenv", "main")["state"],
        "RUNNING",
        "{st:#}"
    );

    let out = put_secret(&env, "edge.api_token", VALUE);
    assert!(out.status.success(), "{out:?}");
    wait_for("the wait for log_token", 60, || {
        events_text(&env)
            .contains("secret \"log_token\": not in the device's secret store")
            .then(String::new)
    });
    let out = put_secret(&env, "log_token", LOG_VALUE);
    assert!(out.status.success(), "{out:?}");
    env.wait_status("scenv running", 60, |st| {
        task_container(st, "scenv", "main")["state"] == "RUNNING"
    });
    let want = md5(VALUE);
    let log = wait_for("the container's output", 30, || {
        let log = env.log("scenv", "main");
        log.contains("plain=edge").then_some(log)
    });
    assert!(
        log.contains(&want),
        "the container saw another value:\n{log}"
    );

    let ls = env.skerry(&["secret", "ls"]).output().expect("secret ls");
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout),
        "edge.api_token\nlog_token\n"
    );

    // Nowhere in clear but the store itself.
    let mut found = Vec::new();
    let store = env.state().join("secrets");
    for v in [VALUE, LOG_VALUE] {
        files_holding(&env.state(), v.as_bytes(), &store, &mut found);
        files_holding(Path::new("/run/skerry"), v.as_bytes(), &store, &mut found);
        files_holding(env.dir.path(), v.as_bytes(), &store, &mut found);
    }
    assert!(found.is_empty(), "secret values on disk: {found:?}");
    let ps = Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    let mut texts = vec![
        ("ps", String::from_utf8_lossy(&ps.stdout).into_owned()),
        ("events", events_text(&env)),
        ("status", env.agent_status().to_string()),
    ];
    for args in [&["ps"][..], &["events", "--json"][..]] {
        let out = env.skerry(args).output().expect("skerry");
        assert!(out.status.success(), "{args:?}: {out:?}");
        texts.push(("skerry", String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    for (what, text) in texts {
        for v in [VALUE, LOG_VALUE] {
            assert!(!text.contains(v), "{what} holds a secret value:\n{text}");
        }
    }
    let store_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&store).expect("store").permissions(),
    );
    assert_eq!(store_mode & 0o777, 0o700);
}

#[test]
fn secrets_bad_names_are_refused_and_store_nothing() {
    let env = TestEnv::new();
    for name in ["../escape", "a/b", "..", ".hidden"] {
        let out = put_secret(&env, name, VALUE);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("secret name"), "{name}: {err}");
        assert!(!err.contains(VALUE), "{err}");
    }
    let mut found = Vec::new();
    files_holding(
        env.dir.path(),
        VALUE.as_bytes(),
        Path::new("/nonexistent"),
        &mut found,
    );
    assert!(found.is_empty(), "{found:?}");
    let def = env.write_task(
        "scbad",
        r#"{"family": "scbad", "containerDefinitions": [{"name": "main", "image": "busybox:latest", "memory": 32,
        "secrets": [{"name": "A", "valueFrom": "../../etc/shadow"}, {"name": "B", "valueFrom": ".."}]}]}"#,
    );
    let out = env
        .skerry(&["run", "--name", "scbad"])
        .arg(def)
        .output()
        .expect("skerry run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "containerDefinitions[0].secrets[0].valueFrom: a secret name cannot contain '/'"
        ) && err.contains("containerDefinitions[0].secrets[1].valueFrom"),
        "{err}"
    );
}

#[test]
fn secrets_registry_credentials_pull_from_an_htpasswd_registry() {
    let password = "reg-PASS-5d1e0b";
    let reg = Registry::start(RegistryOpts {
        htpasswd: Some(("edge", "reg-PASS-5d1e0b")),
        tls: true,
    });
    reg.push(
        &test_images().join("busybox-amd64"),
        "private/busybox",
        "latest",
    );
    let ca = reg.ca.clone().expect("ca");
    let env = TestEnv::with_config(&format!(
        "restart_backoff_secs = 1\n[registries.\"{}\"]\nca_file = \"{}\"\n",
        reg.addr,
        ca.display()
    ));
    let task = format!(
        r#"{{"family": "screg", "containerDefinitions": [{{"name": "main", "image": "{}/private/busybox:latest", "memory": 32, "stopTimeout": 2,
        "command": ["sh", "-c", "echo pulled-ok; trap 'exit 0' TERM; while true; do sleep 0.2; done"],
        "repositoryCredentials": {{"credentialsParameter": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:regcreds-Q1w2E3"}}}}]}}"#,
        reg.addr
    );
    env.put_desired("screg.json", &task);
    let _agent = env.agent(&[]);
    wait_for("the wait for regcreds", 60, || {
        events_text(&env)
            .contains("unable to pull secrets or registry auth: secret \"regcreds\"")
            .then(String::new)
    });
    let out = put_secret(&env, "regcreds", "not json");
    assert!(out.status.success(), "{out:?}");
    wait_for("the refusal of a non-JSON credential", 60, || {
        events_text(&env)
            .contains("registry credentials must be a JSON object")
            .then(String::new)
    });
    let creds = format!(r#"{{"username": "edge", "password": "{password}"}}"#);
    let out = put_secret(&env, "regcreds", &creds);
    assert!(out.status.success(), "{out:?}");
    env.wait_status("screg running", 90, |st| {
        task_container(st, "screg", "main")["state"] == "RUNNING"
    });
    let log = wait_for("the container's output", 30, || {
        let log = env.log("screg", "main");
        log.contains("pulled-ok").then_some(log)
    });
    assert!(log.contains("pulled-ok"));
    let mut found = Vec::new();
    files_holding(
        env.dir.path(),
        password.as_bytes(),
        &env.state().join("secrets"),
        &mut found,
    );
    assert!(found.is_empty(), "the registry password on disk: {found:?}");
    assert!(!events_text(&env).contains(password));
}
