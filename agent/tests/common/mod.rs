//! Shared fixtures for the real-container tests: a private state directory with the
//! busybox test images imported, and helpers that drive the real `skerry` binary.
#![allow(dead_code)]

pub mod broker;
pub mod fleet;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The test images directory (built once by scripts/build-test-images.sh).
pub fn test_images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("SKERRY_TEST_IMAGES")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-images"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-test-images.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("run build-test-images.sh");
        assert!(st.success(), "building test images failed");
        dir
    })
}

/// A private skerry installation: state dir + config, images imported.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The state directory is a tmpfs this environment mounted (unmounted on drop).
    state_tmpfs: bool,
}

impl TestEnv {
    /// A new environment with busybox:latest and busybox-app:latest imported.
    pub fn new() -> Self {
        Self::with_config("")
    }

    /// Like [`new`](Self::new) with extra config TOML.
    pub fn with_config(extra: &str) -> Self {
        Self::build(extra, None)
    }

    /// Like [`with_config`](Self::with_config), with the state directory on a tmpfs
    /// of `mib` MiB: a disk that the test can fill.
    pub fn with_state_on_tmpfs(extra: &str, mib: u32) -> Self {
        Self::build(extra, Some(mib))
    }

    fn build(extra: &str, tmpfs_mib: Option<u32>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("skerry-test-")
            .tempdir()
            .expect("tempdir");
        let config = dir.path().join("agent.toml");
        let state = dir.path().join("state");
        std::fs::write(
            &config,
            format!("state_dir = \"{}\"\n{extra}\n", state.display()),
        )
        .expect("config");
        if let Some(mib) = tmpfs_mib {
            std::fs::create_dir_all(&state).expect("state dir");
            nix::mount::mount(
                Some("tmpfs"),
                &state,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                Some(format!("size={mib}m,mode=0700").as_str()),
            )
            .expect("mount tmpfs state dir");
        }
        let env = Self {
            dir,
            config,
            state_tmpfs: tmpfs_mib.is_some(),
        };
        let images = test_images();
        for (name, path) in [("busybox", "busybox-amd64"), ("busybox-app", "busybox-app")] {
            let out = env
                .skerry(&["image", "import", "--name", name])
                .arg(images.join(path))
                .output()
                .expect("import");
            assert!(
                out.status.success(),
                "import {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        env
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The directory of a task's (or a container's, with `container`) cgroup in the
    /// memory hierarchy: v1's `memory/` where it is mounted, else the unified one.
    pub fn memory_cgroup(&self, task: &str, container: Option<&str>) -> PathBuf {
        let parent = skerry::store::StateLayout::new(self.state()).cgroup_parent();
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let root = if v1.is_dir() {
            v1
        } else {
            Path::new("/sys/fs/cgroup")
        };
        let task_dir = root.join(parent).join(task);
        container.map_or_else(|| task_dir.clone(), |c| task_dir.join(c))
    }

    /// `skerry` with this environment's config.
    pub fn skerry(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skerry"));
        cmd.env("SKERRY_CONFIG", &self.config)
            .env_remove("SKERRY_STATE_DIR")
            .env("SKERRY_LOG", "warn")
            .args(args);
        cmd
    }

    /// Writes a task definition into the environment and returns its path.
    pub fn write_task(&self, name: &str, json: &str) -> PathBuf {
        let p = self.dir.path().join(format!("{name}.json"));
        std::fs::write(&p, json).expect("write task");
        p
    }

    /// `skerry run --keep --name NAME` to completion.
    pub fn run(&self, name: &str, json: &str) -> Output {
        let p = self.write_task(name, json);
        self.skerry(&["run", "--keep", "--name", name])
            .arg(p)
            .output()
            .expect("skerry run")
    }

    /// `skerry run --name NAME` in the background.
    pub fn spawn(&self, name: &str, json: &str, keep: bool) -> Child {
        let p = self.write_task(name, json);
        let mut cmd = self.skerry(&["run", "--name", name]);
        if keep {
            cmd.arg("--keep");
        }
        cmd.arg(p)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn skerry run")
    }

    /// Waits until `container` of `task` runs; returns its host pid.
    pub fn wait_running(&self, task: &str, container: &str) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = self.container_dir(task, container).join("monitor.json");
            if let Ok(text) = std::fs::read_to_string(&p) {
                let v: serde_json::Value = serde_json::from_str(&text).expect("monitor.json");
                return v["container_pid"].as_i64().expect("pid") as i32;
            }
            assert!(
                Instant::now() < deadline,
                "{task}/{container} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn container_dir(&self, task: &str, container: &str) -> PathBuf {
        self.state()
            .join("tasks")
            .join(task)
            .join("containers")
            .join(container)
    }

    /// The exit record of a kept task's container.
    pub fn exit_record(&self, task: &str, container: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.container_dir(task, container).join("exit.json"))
            .expect("exit.json");
        serde_json::from_str(&text).expect("exit json")
    }

    /// The container's log file content.
    pub fn log(&self, task: &str, container: &str) -> String {
        std::fs::read_to_string(
            self.container_dir(task, container)
                .join("logs/container.log"),
        )
        .unwrap_or_default()
    }
}

impl Drop for TestEnv {
    /// Stops and deletes every task the test left (kept tasks keep their rootfs
    /// mounted), so no mount, cgroup or monitor outlives the test.
    fn drop(&mut self) {
        let tasks = std::fs::read_dir(self.state().join("tasks"))
            .into_iter()
            .flatten()
            .flatten();
        for task in tasks {
            let name = task.file_name().to_string_lossy().into_owned();
            let _ = self
                .skerry(&["stop", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if self.state_tmpfs {
            let _ = nix::mount::umount2(&self.state(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// stdout of a `skerry run`: the container lines without their `name | ` prefix.
pub fn lines_of(out: &Output, container: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(" | ")
                .filter(|(n, _)| n.trim() == container)
                .map(|(_, t)| t.to_string())
        })
        .collect()
}

/// A one-container task definition running `sh -c SCRIPT` in busybox, with extra
/// container fields (JSON object members, without braces).
pub fn sh_task(family: &str, script: &str, extra: &str) -> String {
    let memory = if extra.contains("\"memory\"") {
        ""
    } else {
        r#", "memory": 64"#
    };
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        r#"{{"family": "{family}", "containerDefinitions": [{{"name": "main", "image": "busybox:latest", "essential": true{memory}, "command": ["sh", "-c", {script}]{extra}}}]}}"#,
        script = serde_json::to_string(script).expect("json string")
    )
}

/// A running `skerry agent` of a [`TestEnv`]; killed (SIGKILL) on drop.
pub struct AgentProc {
    pub child: Child,
}

impl AgentProc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `kill -9` the agent and reap it (its monitors and containers live on).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl TestEnv {
    /// The agent's desired-state directory (the config default).
    pub fn desired_dir(&self) -> PathBuf {
        self.state().join("desired")
    }

    /// Writes a desired file atomically (temp + rename).
    pub fn put_desired(&self, file: &str, json: &str) {
        let dir = self.desired_dir();
        std::fs::create_dir_all(&dir).expect("desired dir");
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, json).expect("write desired");
        std::fs::rename(&tmp, dir.join(file)).expect("rename desired");
    }

    /// Removes a desired file.
    pub fn remove_desired(&self, file: &str) {
        let _ = std::fs::remove_file(self.desired_dir().join(file));
    }

    /// Starts `skerry agent` with extra environment variables.
    pub fn agent(&self, envs: &[(&str, &str)]) -> AgentProc {
        std::fs::create_dir_all(self.desired_dir()).expect("desired dir");
        let mut cmd = self.skerry(&["agent"]);
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env("SKERRY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("agent.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            );
        for (k, v) in envs {
            cmd.env(k, v);
        }
        AgentProc {
            child: cmd.spawn().expect("spawn skerry agent"),
        }
    }

    /// The agent's `supervisor/status.json` (Null when not written yet).
    pub fn agent_status(&self) -> serde_json::Value {
        std::fs::read_to_string(self.state().join("supervisor/status.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Polls the status until `pred` holds; panics with `what` and the last status.
    pub fn wait_status(
        &self,
        what: &str,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let st = self.agent_status();
            if pred(&st) {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {st:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `skerry stop` every task left in the state directory (test cleanup).
    pub fn stop_all_tasks(&self) {
        for e in std::fs::read_dir(self.state().join("tasks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = self.skerry(&["stop", &id]).output();
        }
    }
}

/// Field `container` of task `task` in an agent status document.
pub fn task_container<'a>(
    st: &'a serde_json::Value,
    task: &str,
    container: &str,
) -> &'a serde_json::Value {
    &st["tasks"][task]["containers"][container]
}

/// A `Key:  123 kB` field of a `/proc` status or smaps file, in KiB (0 if absent).
pub fn proc_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Memory of the container monitors (`skerry monitor start <state>/…`) of this
/// state directory: (how many, PSS KiB in all, private dirty KiB in all).
pub fn monitors_memory(state: &Path) -> (u64, u64, u64) {
    let needle = format!("monitor\0start\0{}", state.display());
    let (mut n, mut pss, mut dirty) = (0u64, 0u64, 0u64);
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(&needle) {
            let r = std::fs::read_to_string(e.path().join("smaps_rollup")).unwrap_or_default();
            n += 1;
            pss += proc_kib(&r, "Pss:");
            dirty += proc_kib(&r, "Private_Dirty:");
        }
    }
    (n, pss, dirty)
}
