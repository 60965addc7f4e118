//! The agent's side of a container: prepare its directory, start its monitor, read its
//! state, stop it, remove it. Never calls libcontainer (that happens in monitors), so
//! it is safe inside the multi-threaded, async agent.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use skerry_core::spec::{
    ContainerDefinition, JournalContext, LogDriver, NamespaceMode, NetworkMode, TaskDefinition,
};

use super::bundle::{build_spec, cgroup_path, BundleInputs};
use super::caps::effective_capabilities;
use super::cgroup::{apply_task_limits, remove_task_cgroups};
use super::etcfiles::{write_etc_files, BridgedHosts};
use super::init::is_static_elf;
use super::record::{self, ExitRecord, LaunchPlan, MonitorRecord};
use super::seccomp::SeccompMode;
use super::user::resolve_user;
use super::{RuntimeError, EXIT_FILE, LAUNCH_FILE, MONITOR_FILE};
use crate::images::ImageStore;
use crate::net::bridge::BridgeNet;
use crate::net::tasknet::{ContainerNet, TaskNet};
use crate::store::StateLayout;

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub layout: StateLayout,
    /// The skerry binary that runs `monitor` (and serves as init when static).
    pub monitor_exe: PathBuf,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
    /// Default pids limit per container (0: none).
    pub pids_limit: u32,
    /// Docker's default seccomp filter for unprivileged containers.
    pub seccomp: bool,
    /// Bridge networking (used by tasks with `networkMode: bridge` only).
    pub bridge: BridgeNet,
}

/// What the agent can tell about a container from its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// No directory, or prepared but never started.
    NotStarted,
    /// Its monitor is alive; `pid` is the container's init (host PID namespace view).
    Running { pid: i32, monitor_pid: i32 },
    /// It exited; the record says how.
    Exited(ExitRecord),
    /// It was started, its monitor is gone and there is no exit record: it may still be
    /// running unsupervised. [`Runtime::reap`] cleans it up.
    Lost,
}

/// The agent-side container runtime.
#[derive(Debug, Clone)]
pub struct Runtime {
    cfg: RuntimeConfig,
}

/// Shared namespaces of a task's first container, for `pidMode`/`ipcMode` `task`.
#[derive(Debug, Clone, Default)]
pub struct TaskNamespaces {
    pub pid: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
}

impl TaskNamespaces {
    /// The namespaces of the container whose init is `pid` that the task's
    /// `pidMode`/`ipcMode` `task` asks its other containers to join.
    pub fn of_container(def: &TaskDefinition, pid: i32) -> Self {
        let ns = |mode: NamespaceMode, kind: &str| {
            (mode == NamespaceMode::Task).then(|| PathBuf::from(format!("/proc/{pid}/ns/{kind}")))
        };
        Self {
            pid: ns(def.pid_mode, "pid"),
            ipc: ns(def.ipc_mode, "ipc"),
        }
    }
}

impl Runtime {
    pub fn new(cfg: RuntimeConfig) -> Self {
        Self { cfg }
    }

    pub fn layout(&self) -> &StateLayout {
        &self.cfg.layout
    }

    /// Bridge networking.
    pub fn bridge(&self) -> &BridgeNet {
        &self.cfg.bridge
    }

    /// libcontainer's id for a container: `<task>.<container>` (both validated names).
    pub fn container_id(task_id: &str, name: &str) -> String {
        format!("{task_id}.{name}")
    }

    /// The container's directory.
    pub fn container_dir(&self, task_id: &str, name: &str) -> PathBuf {
        self.cfg.layout.container(task_id, name)
    }

    /// Prepares everything the monitor needs: rootfs, bundle, /etc files, launch plan.
    /// Idempotent; clears the records of a previous run of the same container.
    pub fn prepare(
        &self,
        images: &ImageStore,
        task_id: &str,
        task: &TaskDefinition,
        c: &ContainerDefinition,
        shared: &TaskNamespaces,
    ) -> Result<(), RuntimeError> {
        let dir = self.container_dir(task_id, &c.name);
        let id = Self::container_id(task_id, &c.name);
        for f in [EXIT_FILE, MONITOR_FILE, LAUNCH_FILE] {
            remove_if_exists(&dir.join(f))?;
        }
        fs::create_dir_all(dir.join("bundle")).map_err(|e| RuntimeError::io(&dir, e))?;
        let cgroup_parent = self.cfg.layout.cgroup_parent();
        apply_task_limits(&cgroup_parent, task_id, task.memory_mib, task.cpu_units).map_err(
            |e| RuntimeError::State(task_id.to_string(), format!("task-level cpu/memory: {e}")),
        )?;
        let image = images.resolve(&c.image)?;
        let rootfs = images.prepare_rootfs(&image, &id, &dir)?;
        let user = resolve_user(&rootfs, c.user.as_ref(), image.defaults.user.as_deref())?;
        // `disableNetworking`: a namespace with only loopback, whatever the task's mode.
        let mode = if c.disable_networking {
            NetworkMode::None
        } else {
            task.network_mode
        };
        let hostname = c.hostname.clone().unwrap_or_else(|| match mode {
            NetworkMode::Host => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| c.name.clone()),
            NetworkMode::None | NetworkMode::Bridge => c.name.clone(),
        });
        let net = match task.network_mode {
            NetworkMode::Bridge => Some(
                self.cfg
                    .bridge
                    .attach_task(task_id, task)
                    .map_err(|e| RuntimeError::Net(task_id.to_string(), e.to_string()))?,
            ),
            _ => None,
        };
        let own = net.as_ref().and_then(|n| n.container(&c.name));
        let bridged = match (&net, own) {
            (Some(n), Some(own)) => Some(bridged_hosts(n, own, task, c)),
            _ => None,
        };
        let etc_files = write_etc_files(&dir.join("etc"), c, mode, &hostname, bridged.as_ref())?;
        let task_volumes_dir = self.cfg.layout.task(task_id).join("volumes");
        let shared_volumes_dir = self.cfg.layout.volumes();
        super::volumes::prepare(task, c, &rootfs, &task_volumes_dir, &shared_volumes_dir)?;
        let init_binary = (c.linux.init_process_enabled && is_static_elf(&self.cfg.monitor_exe))
            .then(|| self.cfg.monitor_exe.clone());
        let devices = super::devices::resolve(c)?;
        let spec = build_spec(&BundleInputs {
            task_id,
            task,
            container: c,
            image: &image.defaults,
            rootfs,
            user,
            etc_files,
            task_volumes_dir,
            shared_volumes_dir,
            hostname,
            pids_limit: self.cfg.pids_limit,
            init_binary,
            task_pid_ns: shared.pid.clone(),
            task_ipc_ns: shared.ipc.clone(),
            devices: devices.clone(),
            netns: own.map(|o| o.netns.clone()),
            cgroup_path: cgroup_path(&cgroup_parent, task_id, &c.name),
        })?;
        record::save(&dir.join("bundle/config.json"), &spec)?;
        let journal_fields = match &c.log {
            LogDriver::Journald(j) => Some(j.fields(&JournalContext {
                task_id,
                container: &c.name,
                container_id: &id,
                image_name: &c.image,
                image_id: &image.manifest_digest,
                labels: &c.labels,
                environment: &c.environment,
            })),
            _ => None,
        };
        let plan = LaunchPlan {
            container_id: id,
            libcontainer_root: self.cfg.layout.libcontainer(),
            bundle: dir.join("bundle"),
            log_dir: dir.join("logs"),
            log_max_bytes: self.cfg.log_max_bytes,
            log_max_files: self.cfg.log_max_files,
            stop_timeout_ms: c.stop_timeout.as_millis() as u64,
            cgroup_path: cgroup_path(&cgroup_parent, task_id, &c.name),
            seccomp: if self.cfg.seccomp && !c.privileged && !c.security.seccomp_unconfined {
                SeccompMode::DockerDefault {
                    capabilities: effective_capabilities(
                        c.privileged,
                        &c.linux.cap_add,
                        &c.linux.cap_drop,
                    ),
                }
            } else {
                SeccompMode::Unconfined
            },
            discard_output: c.log == LogDriver::None,
            journal_fields,
            device_filter: (!c.privileged).then(|| super::devfilter::rules_for(&devices)),
            secret_env: c.secrets.env.clone(),
            secrets_dir: (!c.secrets.env.is_empty()).then(|| self.cfg.layout.secrets()),
        };
        fs::create_dir_all(&plan.log_dir).map_err(|e| RuntimeError::io(&plan.log_dir, e))?;
        fs::create_dir_all(&plan.libcontainer_root)
            .map_err(|e| RuntimeError::io(&plan.libcontainer_root, e))?;
        record::save(&dir.join(LAUNCH_FILE), &plan)
    }

    /// Starts a prepared container through its monitor; returns once it runs.
    pub fn start(&self, task_id: &str, name: &str) -> Result<MonitorRecord, RuntimeError> {
        let dir = self.container_dir(task_id, name);
        let id = Self::container_id(task_id, name);
        let out = Command::new(&self.cfg.monitor_exe)
            .arg("monitor")
            .arg("start")
            .arg(&dir)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .map_err(|e| RuntimeError::io(&self.cfg.monitor_exe, e))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(RuntimeError::Start(id, msg));
        }
        record::load::<MonitorRecord>(&dir.join(MONITOR_FILE))?.ok_or_else(|| {
            RuntimeError::Start(id, "monitor reported success but wrote no record".into())
        })
    }

    /// The container's state, from its records and whether its monitor lives.
    pub fn state(&self, task_id: &str, name: &str) -> ContainerState {
        let dir = self.container_dir(task_id, name);
        if let Ok(Some(exit)) = record::load::<ExitRecord>(&dir.join(EXIT_FILE)) {
            return ContainerState::Exited(exit);
        }
        match record::load::<MonitorRecord>(&dir.join(MONITOR_FILE)) {
            Ok(Some(m)) if record::monitor_alive(&m) => ContainerState::Running {
                pid: m.container_pid,
                monitor_pid: m.monitor_pid,
            },
            Ok(Some(_)) => {
                // The monitor may have written exit.json between our two reads.
                match record::load::<ExitRecord>(&dir.join(EXIT_FILE)) {
                    Ok(Some(exit)) => ContainerState::Exited(exit),
                    _ => ContainerState::Lost,
                }
            }
            _ => ContainerState::NotStarted,
        }
    }

    /// Asks the container to stop: SIGTERM now, SIGKILL after its stopTimeout (the
    /// monitor enforces the timeout). Returns at once.
    pub fn request_stop(&self, task_id: &str, name: &str) -> Result<(), RuntimeError> {
        let dir = self.container_dir(task_id, name);
        if let Some(m) = record::load::<MonitorRecord>(&dir.join(MONITOR_FILE))? {
            if record::monitor_alive(&m) {
                match kill(Pid::from_raw(m.monitor_pid), Signal::SIGTERM) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => return Err(RuntimeError::Sys("kill", e)),
                }
            }
        }
        Ok(())
    }

    /// Waits until the container has an exit record (or is lost), up to `timeout`.
    pub fn wait(&self, task_id: &str, name: &str, timeout: Duration) -> ContainerState {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            let st = self.state(task_id, name);
            if !matches!(st, ContainerState::Running { .. }) || Instant::now() >= deadline {
                return st;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Stops the container and waits for it: stopTimeout plus a grace period for the
    /// monitor; a lost container is reaped. Returns how it ended.
    pub fn stop(
        &self,
        task_id: &str,
        name: &str,
        stop_timeout: Duration,
    ) -> Result<ContainerState, RuntimeError> {
        self.request_stop(task_id, name)?;
        let st = self.wait(task_id, name, stop_timeout + Duration::from_secs(10));
        match st {
            ContainerState::Lost | ContainerState::Running { .. } => {
                self.reap(task_id, name)?;
                Ok(self.state(task_id, name))
            }
            other => Ok(other),
        }
    }

    /// Cleans up a container whose monitor is gone (kill through the cgroup, delete,
    /// exit record), in a single-threaded helper process.
    pub fn reap(&self, task_id: &str, name: &str) -> Result<(), RuntimeError> {
        let dir = self.container_dir(task_id, name);
        if let Ok(Some(m)) = record::load::<MonitorRecord>(&dir.join(MONITOR_FILE)) {
            if record::monitor_alive(&m) {
                let _ = kill(Pid::from_raw(m.monitor_pid), Signal::SIGKILL);
            }
        }
        let out = Command::new(&self.cfg.monitor_exe)
            .args(["monitor", "reap"])
            .arg(&dir)
            .output()
            .map_err(|e| RuntimeError::io(&self.cfg.monitor_exe, e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RuntimeError::State(
                Self::container_id(task_id, name),
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }

    /// Removes a stopped container: rootfs (unmounted, lease dropped), bundle, records.
    /// Logs are kept unless `keep_logs` is false.
    pub fn remove(
        &self,
        images: &ImageStore,
        task_id: &str,
        name: &str,
    ) -> Result<(), RuntimeError> {
        let id = Self::container_id(task_id, name);
        match self.state(task_id, name) {
            ContainerState::Running { .. } => {
                return Err(RuntimeError::State(id, "is running: stop it first".into()))
            }
            ContainerState::Lost => self.reap(task_id, name)?,
            _ => {}
        }
        let dir = self.container_dir(task_id, name);
        if dir.exists() {
            images.release_rootfs(&id, &dir)?;
            fs::remove_dir_all(&dir).map_err(|e| RuntimeError::io(&dir, e))?;
        }
        Ok(())
    }

    /// Removes a whole task once its containers are removed: its cgroups and directory.
    pub fn remove_task(&self, images: &ImageStore, task_id: &str) -> Result<(), RuntimeError> {
        let containers_dir = self.cfg.layout.task(task_id).join("containers");
        if let Ok(entries) = fs::read_dir(&containers_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                self.remove(images, task_id, &name)?;
            }
        }
        self.cfg
            .bridge
            .release_task(task_id)
            .map_err(|e| RuntimeError::Net(task_id.to_string(), e.to_string()))?;
        remove_task_cgroups(&self.cfg.layout.cgroup_parent(), task_id).map_err(|e| {
            RuntimeError::State(task_id.to_string(), format!("cgroups left behind: {e}"))
        })?;
        let dir = self.cfg.layout.task(task_id);
        super::volumes::unmount_task_volumes(&dir.join("volumes"));
        remove_if_exists_dir(&dir)
    }
}

/// /etc/hosts entries of a bridged container: its own address, and the task's
/// other containers by name and by the aliases `c`'s `links` give them.
fn bridged_hosts(
    net: &TaskNet,
    own: &ContainerNet,
    task: &TaskDefinition,
    c: &ContainerDefinition,
) -> BridgedHosts {
    let peers = net
        .containers
        .iter()
        .filter(|p| p.name != c.name && task.container(&p.name).is_some())
        .map(|p| {
            let mut names = vec![p.name.clone()];
            for (target, alias) in &c.links {
                if target == &p.name && alias != &p.name {
                    names.push(alias.clone());
                }
            }
            (p.address, names)
        })
        .collect();
    BridgedHosts {
        own: own.address,
        peers,
    }
}

fn remove_if_exists(path: &Path) -> Result<(), RuntimeError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RuntimeError::io(path, e)),
        _ => Ok(()),
    }
}

fn remove_if_exists_dir(path: &Path) -> Result<(), RuntimeError> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RuntimeError::io(path, e)),
        _ => Ok(()),
    }
}

impl Runtime {
    /// Runs `args` inside the running container through `skerry monitor exec` (a
    /// single-threaded helper: libcontainer is never called in this process), killing
    /// the command after `timeout`. Health checks use it.
    pub fn exec(
        &self,
        task_id: &str,
        name: &str,
        timeout: Duration,
        args: &[String],
    ) -> Result<super::exec::ExecOutcome, RuntimeError> {
        let dir = self.container_dir(task_id, name);
        let out = Command::new(&self.cfg.monitor_exe)
            .args(["monitor", "exec"])
            .arg(&dir)
            .arg("--timeout")
            .arg(timeout.as_millis().to_string())
            .arg("--")
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .map_err(|e| RuntimeError::io(&self.cfg.monitor_exe, e))?;
        let id = Self::container_id(task_id, name);
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(RuntimeError::State(id, msg));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        super::exec::ExecOutcome::parse(&text)
            .ok_or_else(|| RuntimeError::State(id, format!("exec helper said {text:?}")))
    }
}
