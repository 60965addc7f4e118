//! Docker's default seccomp filter in real containers, as root: what it blocks (EPERM),
//! what is newer than the profile (ENOSYS), that health checks run under it, and who
//! runs without it (privileged, `seccomp=unconfined`, `seccomp = false`).
//!
//! The syscalls are made by `tests/probe/syscall_probe.c`, built static with
//! musl-gcc, and by `tests/probe/syscall_probe_i386.s` (a 32-bit x86 process: the
//! filter's compat-ABI section, as arm processes on arm64 use), both bind-mounted into
//! busybox containers.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::{lines_of, TestEnv};

const EPERM: &str = "errno=1";
const ENOSYS: &str = "errno=38";
const EINVAL: &str = "errno=22";

/// The probe binary, built once per test process.
fn probe_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("skerry-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("probe dir");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/probe/syscall_probe.c");
        let st = Command::new("musl-gcc")
            .args(["-static", "-Os", "-o"])
            .arg(dir.join("probe"))
            .arg(src)
            .status()
            .expect("musl-gcc (package musl-tools)");
        assert!(st.success(), "building the syscall probe failed");
        if cfg!(target_arch = "x86_64") {
            let max = skerry::runtime::seccomp::profile::Abi::I386.max_known();
            let src =
                include_str!("probe/syscall_probe_i386.s").replace("MAXP1", &(max + 1).to_string());
            std::fs::write(dir.join("probe32.s"), src).expect("write i386 probe");
            let run =
                |cmd: &mut Command| assert!(cmd.status().expect("binutils").success(), "{cmd:?}");
            run(Command::new("as")
                .args(["--32", "-o"])
                .arg(dir.join("probe32.o"))
                .arg(dir.join("probe32.s")));
            run(Command::new("ld")
                .args(["-m", "elf_i386", "-static", "-o"])
                .arg(dir.join("probe32"))
                .arg(dir.join("probe32.o")));
        }
        dir
    })
}

/// A task running the probe with `calls` in container `main`, plus extra fields.
fn probe_task(family: &str, calls: &str, extra: &str) -> String {
    format!(
        r#"{{"family": "{family}", "volumes": [{{"name": "probe", "host": {{"sourcePath": "{dir}"}}}}],
        "containerDefinitions": [{{"name": "main", "image": "busybox:latest", "memory": 64,
        "mountPoints": [{{"sourceVolume": "probe", "containerPath": "/probe", "readOnly": true}}],
        "command": ["sh", "-c", "/probe/probe {calls}"]{extra}}}]}}"#,
        dir = probe_dir().display()
    )
}

/// Runs the probe and returns each call's result ("ok" or "errno=N") in order.
fn probe(env: &TestEnv, family: &str, calls: &str, extra: &str) -> Vec<String> {
    let out = env.run(family, &probe_task(family, calls, extra));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines_of(&out, "main");
    let results: Vec<String> = lines
        .iter()
        .map(|l| {
            l.split_once(' ')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(results.len(), calls.split(' ').count(), "{lines:?}");
    results
}

// unshare-user goes last: once in a new user namespace, mount fails for other reasons.
const CALLS: &str =
    "getpid keyctl clone3 vsock personality-query personality-norandom mount unknown unshare-user";

#[test]
fn seccomp_default_profile_blocks_with_eperm_and_unknown_gets_enosys() {
    let env = TestEnv::new();
    let r = probe(&env, "scdefault", CALLS, "");
    assert_eq!(
        r,
        ["ok", EPERM, ENOSYS, EPERM, "ok", EPERM, EPERM, ENOSYS, EPERM],
        "{CALLS}"
    );
}

#[test]
fn seccomp_not_applied_to_privileged_unconfined_or_when_turned_off() {
    // What the kernel alone answers: keyctl, unshare of a user namespace and
    // personality work, clone3 rejects its null argument.
    let env = TestEnv::with_config("allow_privileged = true");
    let r = probe(&env, "scpriv", CALLS, r#", "privileged": true"#);
    assert_eq!(r[..4], ["ok", "ok", EINVAL, r[3].as_str()]);
    assert_eq!(r[5..], ["ok", "ok", ENOSYS, "ok"], "{CALLS}: {r:?}");
    assert_ne!(r[3], EPERM, "vsock filtered in a privileged container");

    let calls = "keyctl personality-norandom unshare-user";
    let opt = r#", "dockerSecurityOptions": ["seccomp=unconfined"]"#;
    assert_eq!(probe(&env, "scunconf", calls, opt), ["ok", "ok", "ok"]);

    let off = TestEnv::with_config("seccomp = false");
    assert_eq!(probe(&off, "scoff", calls, ""), ["ok", "ok", "ok"]);
}

#[test]
fn seccomp_sys_admin_container_gets_the_sys_admin_rules() {
    let env = TestEnv::new();
    let caps = r#", "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}"#;
    let r = probe(&env, "scadmin", "clone3 mount unshare-user", caps);
    assert_eq!(r, [EINVAL, "ok", "ok"]);
}

#[test]
fn seccomp_health_checks_run_under_the_filter() {
    // db is HEALTHY only when its check's keyctl is refused with EPERM; app waits
    // for that and prints "started".
    let env = TestEnv::new();
    let json = format!(
        r#"{{"family": "schc", "volumes": [{{"name": "probe", "host": {{"sourcePath": "{dir}"}}}}],
        "containerDefinitions": [
        {{"name": "db", "image": "busybox", "memory": 32, "essential": false, "stopTimeout": 2,
          "mountPoints": [{{"sourceVolume": "probe", "containerPath": "/probe", "readOnly": true}}],
          "healthCheck": {{"command": ["CMD-SHELL", "/probe/probe keyctl | grep -q 'keyctl {EPERM}'"], "interval": 5, "timeout": 2, "retries": 3}},
          "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}},
        {{"name": "app", "image": "busybox", "memory": 32, "startTimeout": 20,
          "dependsOn": [{{"containerName": "db", "condition": "HEALTHY"}}],
          "command": ["echo", "started"]}}]}}"#,
        dir = probe_dir().display()
    );
    let p = env.write_task("schc", &json);
    let out = env
        .skerry(&["run", "--name", "schc"])
        .arg(p)
        .env("SKERRY_TEST_TIME_SCALE", "10")
        .output()
        .expect("skerry run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(lines_of(&out, "app"), ["started"], "{err}");
    assert!(
        err.contains("container schc/db health is now Healthy"),
        "{err}"
    );
}

/// The i386 probe's exit code in a container with `extra` fields.
#[cfg(target_arch = "x86_64")]
fn probe32_exit(env: &TestEnv, family: &str, extra: &str) -> i32 {
    let json = probe_task(family, "", extra).replace("/probe/probe ", "/probe/probe32");
    let out = env.run(family, &json);
    out.status.code().unwrap_or(-1)
}

#[cfg(target_arch = "x86_64")]
#[test]
fn seccomp_filters_32_bit_processes_with_their_own_table() {
    let env = TestEnv::with_config("allow_privileged = true");
    // Every check holds under the filter (exit 0: keyctl and unshare EPERM, the
    // number above the i386 table ENOSYS)...
    assert_eq!(probe32_exit(&env, "sc32", ""), 0);
    // ...and without it keyctl and unshare succeed (bits 2 and 8; bit 4 too when
    // the kernel implements calls newer than the profile).
    let unfiltered = probe32_exit(&env, "sc32priv", r#", "privileged": true"#);
    assert_eq!(unfiltered & !4, 2 | 8, "exit {unfiltered}");
}
