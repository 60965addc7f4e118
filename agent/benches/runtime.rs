//! Runtime benchmark (prints figures, asserts nothing about time):
//! - create → start → wait → delete of busybox `/bin/true`, on one prepared bundle,
//!   through skerry's monitor, Debian's runc and crun (crun in a private mount
//!   namespace with /sys/fs/cgroup/unified unmounted: it refuses hybrid cgroups);
//! - peak RSS of `skerry run` for the hello task (runner + monitor);
//! - the stripped aarch64 binary's size, if built.
//!
//! Run: `SKERRY_TEST_IMAGES=… cargo bench -p skerry --bench runtime` as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 40;

fn main() {
    if let (Some(bundle), Some(root)) = (
        std::env::var_os("SKERRY_BENCH_CRUN_BUNDLE"),
        std::env::var_os("SKERRY_BENCH_CRUN_ROOT"),
    ) {
        crun_child(Path::new(&bundle), Path::new(&root));
        return;
    }
    let skerry = PathBuf::from(env!("CARGO_BIN_EXE_skerry"));
    let images = std::env::var_os("SKERRY_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-images"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-test-images.sh");
    must(
        Command::new("bash")
            .arg(script)
            .arg(&images)
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success()),
        "build test images",
    );
    let dir = tempfile::Builder::new()
        .prefix("skerry-bench-")
        .tempdir()
        .expect("tempdir");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("state_dir = \"{}\"\n", dir.path().join("state").display()),
    )
    .expect("config");
    let sk = |args: &[&str]| {
        let mut c = Command::new(&skerry);
        c.env("SKERRY_CONFIG", &config)
            .env("SKERRY_LOG", "warn")
            .args(args);
        c
    };
    must(
        sk(&["image", "import", "--name", "busybox"])
            .arg(images.join("busybox-amd64"))
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success()),
        "import",
    );

    // Prepare one bundle with skerry (rootfs stays mounted with --keep).
    let task = dir.path().join("true.json");
    std::fs::write(&task, r#"{"family": "bench", "networkMode": "host", "containerDefinitions": [{"name": "main", "image": "busybox", "memory": 32, "command": ["/bin/true"]}]}"#).expect("task");
    must(
        sk(&["run", "--keep", "--name", "bench"])
            .arg(&task)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success()),
        "prepare bundle",
    );
    let cdir = dir.path().join("state/tasks/bench/containers/main");
    let bundle = cdir.join("bundle");

    let skerry_times = measure(|_| {
        for f in ["exit.json", "monitor.json"] {
            let _ = std::fs::remove_file(cdir.join(f));
        }
        must(
            Command::new(&skerry)
                .args(["monitor", "start"])
                .arg(&cdir)
                .status()
                .map(|s| s.success()),
            "skerry monitor start",
        );
        let monitor: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(cdir.join("monitor.json")).expect("monitor.json"),
        )
        .expect("json");
        let pid = monitor["monitor_pid"].as_i64().expect("pid");
        while Path::new(&format!("/proc/{pid}/stat")).exists() && !is_zombie(pid) {
            std::thread::sleep(Duration::from_micros(100));
        }
        assert!(cdir.join("exit.json").exists(), "no exit record");
    });
    // runc and crun get the same bundle with their own cgroup path, so they never
    // share (or leave things in) skerry's cgroups.
    let oci_bundle = dir.path().join("oci-bundle");
    std::fs::create_dir_all(&oci_bundle).expect("oci bundle dir");
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(bundle.join("config.json")).expect("config.json"),
    )
    .expect("config json");
    config["linux"]["cgroupsPath"] = serde_json::json!("/skerry-bench-oci/true");
    std::fs::write(oci_bundle.join("config.json"), config.to_string()).expect("write oci config");
    let bundle = oci_bundle;
    let root = dir.path().join("oci-root");
    let runc_times = have("runc").then(|| {
        measure(|i| {
            let id = format!("bench-runc-{i}");
            must(
                Command::new("runc")
                    .arg("--root")
                    .arg(&root)
                    .args(["run", "-b"])
                    .arg(&bundle)
                    .arg(&id)
                    .stdout(Stdio::null())
                    .status()
                    .map(|s| s.success()),
                "runc run",
            );
        })
    });
    // crun runs in a child copy of this bench inside a private mount namespace, so
    // that namespace never leaks into skerry's own cleanup below.
    let crun_times = have("crun").then(|| {
        let out = Command::new(std::env::current_exe().expect("bench exe"))
            .env("SKERRY_BENCH_CRUN_BUNDLE", &bundle)
            .env("SKERRY_BENCH_CRUN_ROOT", &root)
            .stderr(Stdio::inherit())
            .output()
            .expect("crun child");
        assert!(out.status.success(), "crun child failed");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(',')
            .map(|t| t.parse::<f64>().expect("crun time"))
            .collect::<Vec<f64>>()
    });

    println!("create→start→wait→delete of busybox /bin/true, {RUNS} runs, same bundle");
    println!(
        "{:<8} {:>9} {:>9} {:>9} {:>12}",
        "runtime", "min ms", "median ms", "p90 ms", "median/skerry"
    );
    let base = stats(&skerry_times).1;
    for (name, t) in [
        ("skerry", Some(skerry_times)),
        ("runc", runc_times),
        ("crun", crun_times),
    ] {
        match t {
            Some(t) => {
                let (min, med, p90) = stats(&t);
                println!(
                    "{name:<8} {min:>9.2} {med:>9.2} {p90:>9.2} {:>12.2}",
                    med / base
                );
            }
            None => println!("{name:<8} not installed"),
        }
    }
    let _ = sk(&["stop", "bench"]).stdout(Stdio::null()).status();

    // The whole `skerry run` (create: rootfs, bundle, network; start; wait; delete) of
    // /bin/true, host vs bridge networking (bridge: a namespace, veth, address, one
    // published port, skerry's table rebuilt at create and at delete).
    println!("skerry run of busybox /bin/true (create→start→wait→delete), {RUNS} runs");
    println!(
        "{:<8} {:>9} {:>9} {:>9} {:>12}",
        "network", "min ms", "median ms", "p90 ms", "median/host"
    );
    let mut host_median = 0.0;
    for (mode, ports) in [
        ("host", ""),
        ("bridge", r#", "portMappings": [{"containerPort": 80}]"#),
    ] {
        let task = dir.path().join(format!("{mode}.json"));
        std::fs::write(&task, format!(r#"{{"family": "bench", "networkMode": "{mode}", "containerDefinitions": [{{"name": "main", "image": "busybox", "memory": 32, "command": ["/bin/true"]{ports}}}]}}"#)).expect("task");
        let name = format!("run-{mode}");
        let t = measure(|_| {
            must(
                sk(&["run", "--name", &name])
                    .arg(&task)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success()),
                "skerry run",
            )
        });
        let (min, med, p90) = stats(&t);
        if mode == "host" {
            host_median = med;
        }
        println!(
            "{mode:<8} {min:>9.2} {med:>9.2} {p90:>9.2} {:>12.2}",
            med / host_median
        );
    }

    // Peak RSS of `skerry run` for the hello task: runner + monitor (VmHWM).
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello.json");
    let mut run = sk(&["run", "--name", "hello"])
        .arg(&hello)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("skerry run hello");
    let monitor_file = dir
        .path()
        .join("state/tasks/hello/containers/hello/monitor.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !monitor_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2));
    let monitor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&monitor_file).unwrap_or_default())
            .unwrap_or_default();
    let runner_kib = vm_hwm_kib(run.id() as i64);
    let monitor_kib = monitor["monitor_pid"].as_i64().map(vm_hwm_kib).unwrap_or(0);
    println!(
        "peak RSS, skerry run hello: runner {runner_kib} KiB + monitor {monitor_kib} KiB = {} KiB",
        runner_kib + monitor_kib
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = run.wait();

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let a64 = target_dir.join("aarch64-unknown-linux-musl/release/skerry");
    match std::fs::metadata(&a64) {
        Ok(m) => println!(
            "stripped aarch64 binary: {} bytes ({:.2} MiB)",
            m.len(),
            m.len() as f64 / 1048576.0
        ),
        Err(_) => println!("stripped aarch64 binary: not built (bash cross/check-aarch64)"),
    }
}

fn measure(mut f: impl FnMut(usize)) -> Vec<f64> {
    f(usize::MAX); // warm-up
    (0..RUNS)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn stats(t: &[f64]) -> (f64, f64, f64) {
    let mut s = t.to_vec();
    s.sort_by(f64::total_cmp);
    (s[0], s[s.len() / 2], s[(s.len() * 9) / 10])
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn must(r: std::io::Result<bool>, what: &str) {
    assert!(matches!(r, Ok(true)), "{what} failed: {r:?}");
}

fn is_zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn vm_hwm_kib(pid: i64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// crun refuses hybrid cgroups: run it in a private mount namespace where the v2
/// hierarchy at /sys/fs/cgroup/unified is unmounted (FIELD-NOTES).
fn enter_private_mount_ns_without_unified() {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare mount ns");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    let _ = umount2("/sys/fs/cgroup/unified", MntFlags::MNT_DETACH);
}

/// The crun measurement, in its own process and mount namespace; prints the times.
fn crun_child(bundle: &Path, root: &Path) {
    enter_private_mount_ns_without_unified();
    let times = measure(|i| {
        let id = format!("bench-crun-{i}");
        must(
            Command::new("crun")
                .arg("--root")
                .arg(root)
                .args(["run", "-b"])
                .arg(bundle)
                .arg(&id)
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success()),
            "crun run",
        );
    });
    let text: Vec<String> = times.iter().map(|t| format!("{t:.4}")).collect();
    println!("{}", text.join(","));
}
