//! Builds a container's OCI runtime spec (the bundle's `config.json`) from the checked
//! task definition and the image's defaults, the way Docker/ECS would run it:
//! namespaces per network/pid/ipc mode, mounts, process, capabilities, rlimits,
//! sysctls and cgroup limits. Pure apart from the caller-supplied paths.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use skerry_core::spec::{ContainerDefinition, NamespaceMode, NetworkMode, TaskDefinition};

use super::caps::{effective_capabilities, within_bounding_set};
use super::devices::{oci_nodes, oci_rules, HostDevice};
use super::user::ResolvedUser;
use super::volumes::source_path;
use super::RuntimeError;
use crate::images::ImageDefaults;

/// Where the init binary is bind-mounted inside containers with `initProcessEnabled`.
pub const INIT_PATH_IN_CONTAINER: &str = "/.skerry/init";
const MIB: u64 = 1024 * 1024;
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything [`build_spec`] needs besides the definitions.
#[derive(Debug, Clone)]
pub struct BundleInputs<'a> {
    pub task_id: &'a str,
    pub task: &'a TaskDefinition,
    pub container: &'a ContainerDefinition,
    pub image: &'a ImageDefaults,
    pub rootfs: PathBuf,
    pub user: ResolvedUser,
    /// Generated /etc/hosts, /etc/resolv.conf and /etc/hostname to bind in.
    pub etc_files: Vec<(PathBuf, &'static str)>,
    /// Directory holding the task's task-scoped volumes (`<name>/` each).
    pub task_volumes_dir: PathBuf,
    /// Directory holding shared-scope named volumes (`<name>/` each).
    pub shared_volumes_dir: PathBuf,
    /// Hostname the container sees.
    pub hostname: String,
    /// Default pids limit (0: none).
    pub pids_limit: u32,
    /// Static init binary to bind in when `initProcessEnabled`.
    pub init_binary: Option<PathBuf>,
    /// PID/IPC namespaces of the task's first container, for `pidMode`/`ipcMode` `task`.
    pub task_pid_ns: Option<PathBuf>,
    pub task_ipc_ns: Option<PathBuf>,
    /// `linuxParameters.devices`, resolved on the host.
    pub devices: Vec<HostDevice>,
    /// The container's bind-mounted network namespace (bridge mode).
    pub netns: Option<PathBuf>,
    /// The container's cgroup ([`cgroup_path`]).
    pub cgroup_path: String,
}

/// The cgroup path of a container (absolute, under the agent's cgroup parent,
/// [`StateLayout::cgroup_parent`]).
///
/// [`StateLayout::cgroup_parent`]: crate::store::StateLayout::cgroup_parent
pub fn cgroup_path(parent: &str, task_id: &str, container: &str) -> String {
    format!("/{parent}/{task_id}/{container}")
}

/// The process arguments, Docker's way: an entryPoint in the task definition replaces
/// the image's Entrypoint and also drops the image's Cmd; a command replaces Cmd.
pub fn process_args(
    c: &ContainerDefinition,
    image: &ImageDefaults,
) -> Result<Vec<String>, RuntimeError> {
    let entrypoint = c
        .entry_point
        .clone()
        .or_else(|| image.entrypoint.clone())
        .unwrap_or_default();
    let cmd = match (&c.command, &c.entry_point) {
        (Some(cmd), _) => cmd.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone().unwrap_or_default(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(RuntimeError::Spec(format!(
            "container \"{}\": no command to run: neither the task definition (command/entryPoint) nor image {} gives one",
            c.name, c.image
        )));
    }
    Ok(args)
}

/// The environment: the image's Env, overridden by the task definition's.
pub fn process_env(c: &ContainerDefinition, image: &ImageDefaults, hostname: &str) -> Vec<String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for kv in &image.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        env.insert(k.to_string(), v.to_string());
    }
    env.insert("HOSTNAME".into(), hostname.to_string());
    env.extend(c.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut out: Vec<String> = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !out.iter().any(|kv| kv.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH.to_string());
    }
    out
}

/// Builds the OCI spec for one container.
pub fn build_spec(inp: &BundleInputs<'_>) -> Result<oci_spec::runtime::Spec, RuntimeError> {
    let c = inp.container;
    let mut args = process_args(c, inp.image)?;
    let mut mounts = base_mounts(c);
    if c.linux.init_process_enabled {
        let init = inp.init_binary.as_ref().ok_or_else(|| {
            RuntimeError::Spec(format!(
                "containerDefinitions[\"{}\"].linuxParameters.initProcessEnabled needs a static skerry binary to serve as init",
                c.name
            ))
        })?;
        mounts.push(bind(init, INIT_PATH_IN_CONTAINER, true));
        args = [
            INIT_PATH_IN_CONTAINER.to_string(),
            "init".into(),
            "--".into(),
        ]
        .into_iter()
        .chain(args)
        .collect();
    }
    for (src, dest) in &inp.etc_files {
        mounts.push(bind(src, dest, false));
    }
    // mountPoints, then what volumesFrom brings.
    for mp in &inp.task.mounts_of(c) {
        let volume = inp.task.volume(&mp.source_volume).ok_or_else(|| {
            RuntimeError::Spec(format!(
                "mountPoints: volume \"{}\" is not defined",
                mp.source_volume
            ))
        })?;
        let source = source_path(volume, &inp.task_volumes_dir, &inp.shared_volumes_dir);
        mounts.push(bind(&source, &mp.container_path, mp.read_only));
    }
    for t in &c.linux.tmpfs {
        let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
        options.extend(t.mount_options.iter().cloned());
        options.push(format!("size={}m", t.size_mib));
        mounts.push(json!({"destination": t.container_path, "type": "tmpfs", "source": "tmpfs", "options": options}));
    }
    let mut caps = effective_capabilities(c.privileged, &c.linux.cap_add, &c.linux.cap_drop);
    if c.privileged {
        caps = within_bounding_set(caps);
    }
    // Without `ulimits` a container inherits the agent's limits, as Docker's do.
    let mut rlimits: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for u in &c.ulimits {
        rlimits.insert(u.rlimit.clone(), (u.soft, u.hard));
    }
    let rlimits: Vec<Value> = rlimits
        .into_iter()
        .map(|(t, (soft, hard))| json!({"type": t, "soft": soft, "hard": hard}))
        .collect();
    let mut process = json!({
        "terminal": false,
        "user": {"uid": inp.user.uid, "gid": inp.user.gid, "additionalGids": inp.user.additional_gids},
        "args": args,
        "env": process_env(c, inp.image, &inp.hostname),
        "cwd": c.working_directory.clone().or_else(|| inp.image.working_dir.clone().filter(|w| !w.is_empty())).unwrap_or_else(|| "/".into()),
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
        "noNewPrivileges": !c.privileged || c.security.no_new_privileges,
        // The agent's unit protects the agent from the OOM killer (OOMScoreAdjust);
        // containers must not inherit that: they are what the killer should pick.
        "oomScoreAdj": 0,
    });
    if inp.user.uid != 0 {
        // Like Docker: a non-root user keeps bounding/permitted caps but none effective.
        process["capabilities"]["effective"] = json!([]);
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": c.readonly_root_filesystem},
        "hostname": inp.hostname,
        "mounts": mounts,
        "annotations": c.labels,
        "linux": linux_section(inp)?,
    });
    serde_json::from_value(spec)
        .map_err(|e| RuntimeError::Spec(format!("internal: generated OCI spec is invalid: {e}")))
}

fn linux_section(inp: &BundleInputs<'_>) -> Result<Value, RuntimeError> {
    let c = inp.container;
    let mut namespaces = vec![json!({"type": "mount"}), json!({"type": "uts"})];
    match (inp.task.network_mode, &inp.netns) {
        // `disableNetworking`: a namespace of its own, with only loopback.
        _ if c.disable_networking => namespaces.push(json!({"type": "network"})),
        (NetworkMode::Host, _) => {}
        (NetworkMode::Bridge, Some(path)) => {
            namespaces.push(json!({"type": "network", "path": path}))
        }
        (NetworkMode::Bridge, None) => {
            return Err(RuntimeError::Spec(
                "internal: a bridged container has no network namespace".into(),
            ))
        }
        (NetworkMode::None, _) => namespaces.push(json!({"type": "network"})),
    }
    push_ns(
        &mut namespaces,
        "pid",
        inp.task.pid_mode,
        inp.task_pid_ns.as_deref(),
    );
    push_ns(
        &mut namespaces,
        "ipc",
        inp.task.ipc_mode,
        inp.task_ipc_ns.as_deref(),
    );
    let mut memory = serde_json::Map::new();
    if let Some(m) = c.memory_mib {
        memory.insert("limit".into(), json!(m * MIB));
    }
    if let Some(r) = c.memory_reservation_mib {
        memory.insert("reservation".into(), json!(r * MIB));
    }
    let mut device_rules = vec![json!({"allow": c.privileged, "access": "rwm"})];
    device_rules.extend(oci_rules(&inp.devices));
    let mut resources = json!({"devices": device_rules, "memory": memory});
    if c.cpu_units > 0 {
        resources["cpu"] = json!({"shares": u64::from(c.cpu_units.max(2))});
    }
    if inp.pids_limit > 0 {
        resources["pids"] = json!({"limit": i64::from(inp.pids_limit)});
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": inp.cgroup_path,
        "sysctl": c.system_controls,
    });
    if !inp.devices.is_empty() {
        linux["devices"] = json!(oci_nodes(&inp.devices));
    }
    if !c.privileged {
        linux["maskedPaths"] = json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ]);
        linux["readonlyPaths"] = json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]);
    }
    Ok(linux)
}

fn push_ns(namespaces: &mut Vec<Value>, kind: &str, mode: NamespaceMode, shared: Option<&Path>) {
    match (mode, shared) {
        (NamespaceMode::Host, _) => {}
        (NamespaceMode::Task, Some(path)) => namespaces.push(json!({"type": kind, "path": path})),
        _ => namespaces.push(json!({"type": kind})),
    }
}

fn base_mounts(c: &ContainerDefinition) -> Vec<Value> {
    let shm = c
        .linux
        .shared_memory_size_mib
        .map(|m| format!("size={m}m"))
        .unwrap_or_else(|| "size=65536k".into());
    let sys_mode = if c.privileged { "rw" } else { "ro" };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", shm]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", sys_mode]}),
    ]
}

fn bind(source: &Path, dest: &str, read_only: bool) -> Value {
    let mut options = vec!["rbind", "rprivate"];
    if read_only {
        options.push("ro");
    }
    json!({"destination": dest, "type": "bind", "source": source, "options": options})
}
