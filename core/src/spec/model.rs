//! The checked task definition: what skerry trusts after validation.
//!
//! Values here were parsed from ECS JSON by [`super::parse_task_definition`] and
//! checked; the runtime and the supervisor consume only these types, never raw JSON.
//! Sizes are in MiB as in ECS; durations are `std::time::Duration`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use super::journald::{journal_key, JournalContext, Journald};
pub use super::logs::{AwsLogs, LogDriver};
use super::secrets::ContainerSecrets;
pub use super::skerry_logs::{compile_regex, line_level, Level, LineFilter, SkerryLogs};

/// Default stop timeout (ECS: 30 s) between SIGTERM and SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A whole task definition, checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskDefinition {
    /// ECS `family`: letters, digits, `-` and `_`, 1–255 characters.
    pub family: String,
    /// ECS `revision` when present (describe-task-definition output), else 0.
    pub revision: u32,
    /// `networkMode`.
    pub network_mode: NetworkMode,
    /// `pidMode`: share the host's PID namespace or one per task.
    pub pid_mode: NamespaceMode,
    /// `ipcMode`.
    pub ipc_mode: NamespaceMode,
    /// `volumes`, by name.
    pub volumes: Vec<Volume>,
    /// Task-level `cpu` in CPU units (1024 = one vCPU), if set.
    pub cpu_units: Option<u32>,
    /// Task-level `memory` in MiB, if set (a hard cap on the whole task).
    pub memory_mib: Option<u64>,
    /// `containerDefinitions`, in the order given; names are unique.
    pub containers: Vec<ContainerDefinition>,
}

/// `networkMode` values skerry supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetworkMode {
    /// Share the host's network namespace (ECS `host`).
    Host,
    /// A network namespace per container on skerry's bridge, with published ports
    /// (ECS `bridge`, the default when `networkMode` is omitted).
    Bridge,
    /// A private network namespace with only loopback (ECS `none`).
    None,
}

/// `pidMode` / `ipcMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NamespaceMode {
    /// Each container gets its own namespace (ECS default when the field is absent).
    Private,
    /// All containers of the task share one namespace (ECS `task`).
    Task,
    /// The host's namespace (ECS `host`).
    Host,
}

/// One entry of `volumes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Volume {
    /// `name`, referenced by `mountPoints[].sourceVolume`.
    pub name: String,
    /// Where its data lives.
    pub source: VolumeSource,
}

/// Where a volume's data lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VolumeSource {
    /// `host.sourcePath`: an absolute path on the gateway, bind-mounted.
    HostPath(PathBuf),
    /// No host path: a directory owned by the task, removed with it.
    TaskScoped,
    /// `dockerVolumeConfiguration` with the `local` driver.
    Named(NamedVolume),
}

/// A `dockerVolumeConfiguration` volume (driver `local`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NamedVolume {
    /// `scope`: `task` (removed with the task, the default) or `shared`.
    pub shared: bool,
    /// `autoprovision` (shared only): create the volume when it does not exist.
    pub autoprovision: bool,
    /// `driverOpts` `type=tmpfs`: mount a tmpfs with these options (from `o`).
    pub tmpfs_options: Option<Vec<String>>,
    /// `driverOpts` `type=none`, `o=bind`: the host directory (`device`) that is
    /// the volume's data (absent in records written before it was accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_device: Option<String>,
    /// `labels`.
    pub labels: BTreeMap<String, String>,
}

/// One entry of `containerDefinitions`, checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerDefinition {
    /// `name`: letters, digits, `-` and `_`, 1–255 characters, unique in the task.
    pub name: String,
    /// `image` reference, as written (`name[:tag]` or `name@sha256:…`).
    pub image: String,
    /// `command` (overrides the image's Cmd), if given.
    pub command: Option<Vec<String>>,
    /// `entryPoint` (overrides the image's Entrypoint), if given.
    pub entry_point: Option<Vec<String>>,
    /// `environment`, merged over the image's Env (later entries win).
    pub environment: BTreeMap<String, String>,
    /// `workingDirectory` (absolute), if given.
    pub working_directory: Option<String>,
    /// `user`, if given.
    pub user: Option<UserSpec>,
    /// `cpu` in CPU units (cgroup shares; 1024 = one vCPU); 0 when not set.
    pub cpu_units: u32,
    /// `memory`: hard limit in MiB.
    pub memory_mib: Option<u64>,
    /// `memoryReservation`: soft limit in MiB.
    pub memory_reservation_mib: Option<u64>,
    /// `essential` (default true).
    pub essential: bool,
    /// `stopTimeout` (default [`DEFAULT_STOP_TIMEOUT`]).
    pub stop_timeout: Duration,
    /// `startTimeout`: how long a dependent waits for this container's condition.
    pub start_timeout: Option<Duration>,
    /// `readonlyRootFilesystem`.
    pub readonly_root_filesystem: bool,
    /// `disableNetworking`: the container gets a network namespace of its own with
    /// only loopback, whatever the task's `networkMode` (Docker's NetworkDisabled).
    /// Not serialized when false, so other definitions keep their digest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_networking: bool,
    /// `privileged` (only accepted when the agent config allows it).
    pub privileged: bool,
    /// `linuxParameters`.
    pub linux: LinuxParameters,
    /// `dockerSecurityOptions` skerry honours (absent in records older than it).
    #[serde(default)]
    pub security: SecurityOptions,
    /// `mountPoints`.
    pub mount_points: Vec<MountPoint>,
    /// `volumesFrom` (absent in records older than it); see [`TaskDefinition::mounts_of`].
    #[serde(default)]
    pub volumes_from: Vec<VolumesFrom>,
    /// `ulimits`.
    pub ulimits: Vec<Ulimit>,
    /// `systemControls`: sysctl name → value.
    pub system_controls: BTreeMap<String, String>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `extraHosts`: (hostname, ip address) pairs added to /etc/hosts.
    pub extra_hosts: Vec<(String, String)>,
    /// `dnsServers`: IP addresses written to /etc/resolv.conf.
    pub dns_servers: Vec<String>,
    /// `dnsSearchDomains`.
    pub dns_search_domains: Vec<String>,
    /// `dockerLabels`, kept as labels.
    pub labels: BTreeMap<String, String>,
    /// `portMappings` (informational in host mode, published in bridge mode).
    pub port_mappings: Vec<PortMapping>,
    /// `links` (bridge mode): (container, alias) pairs resolvable in /etc/hosts.
    /// Not serialized when empty, so definitions without links keep their digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(String, String)>,
    /// `dependsOn`.
    pub depends_on: Vec<Dependency>,
    /// `healthCheck`.
    pub health_check: Option<HealthCheck>,
    /// `restartPolicy`.
    pub restart_policy: Option<RestartPolicy>,
    /// `logConfiguration` (absent in records written before it was kept).
    #[serde(default)]
    pub log: LogDriver,
    /// `secrets`, `logConfiguration.secretOptions`, `repositoryCredentials`: names
    /// only, never values. Not serialized when empty, keeping older digests.
    #[serde(default, skip_serializing_if = "ContainerSecrets::is_empty")]
    pub secrets: ContainerSecrets,
}

impl ContainerDefinition {
    /// A container with only `name` and `image` set and every other field at the
    /// value the parser gives it when the JSON leaves it out (essential, the default
    /// stopTimeout, nothing else). For programs and tests that build definitions.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            command: None,
            entry_point: None,
            environment: BTreeMap::new(),
            working_directory: None,
            user: None,
            cpu_units: 0,
            memory_mib: None,
            memory_reservation_mib: None,
            essential: true,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            start_timeout: None,
            readonly_root_filesystem: false,
            disable_networking: false,
            privileged: false,
            linux: LinuxParameters::default(),
            security: SecurityOptions::default(),
            mount_points: vec![],
            volumes_from: vec![],
            ulimits: vec![],
            system_controls: BTreeMap::new(),
            hostname: None,
            extra_hosts: vec![],
            dns_servers: vec![],
            dns_search_domains: vec![],
            labels: BTreeMap::new(),
            port_mappings: vec![],
            links: vec![],
            depends_on: vec![],
            health_check: None,
            restart_policy: None,
            log: LogDriver::Files,
            secrets: ContainerSecrets::default(),
        }
    }
}

/// `user` forms ECS accepts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UserSpec {
    /// `uid` or `uid:gid`.
    Id { uid: u32, gid: Option<u32> },
    /// `name`, `name:group`, or `name:gid`: resolved in the image's /etc/passwd and /etc/group.
    Name { user: String, group: Option<String> },
}

/// `linuxParameters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinuxParameters {
    /// `capabilities.add`, normalized to `CAP_*` upper case.
    pub cap_add: Vec<String>,
    /// `capabilities.drop`, normalized to `CAP_*` upper case (`ALL` allowed).
    pub cap_drop: Vec<String>,
    /// `initProcessEnabled`: run a tiny init as PID 1 that reaps zombies and forwards signals.
    pub init_process_enabled: bool,
    /// `tmpfs`.
    pub tmpfs: Vec<Tmpfs>,
    /// `sharedMemorySize` in MiB (size of /dev/shm).
    pub shared_memory_size_mib: Option<u64>,
    /// `devices` (absent in records older than it).
    #[serde(default)]
    pub devices: Vec<Device>,
}

/// One `linuxParameters.devices` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Device {
    /// `hostPath` (absolute); the agent refuses it unless it is a device node.
    pub host_path: String,
    /// `containerPath` (absolute; `hostPath` when not given).
    pub container_path: String,
    /// `permissions` as cgroup access letters, a non-empty subset of `rwm` in that order.
    pub permissions: String,
}

/// The `dockerSecurityOptions` skerry honours (the others are refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecurityOptions {
    /// `no-new-privileges`: set no_new_privs even for a privileged container.
    pub no_new_privileges: bool,
    /// `seccomp=unconfined`: no syscall filter.
    pub seccomp_unconfined: bool,
}

/// One `linuxParameters.tmpfs` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tmpfs {
    /// `containerPath` (absolute).
    pub container_path: String,
    /// `size` in MiB.
    pub size_mib: u64,
    /// `mountOptions` (checked against the list ECS allows).
    pub mount_options: Vec<String>,
}

/// One `mountPoints` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountPoint {
    /// `sourceVolume`: the name of a task volume.
    pub source_volume: String,
    /// `containerPath` (absolute).
    pub container_path: String,
    /// `readOnly`.
    pub read_only: bool,
}

/// One `volumesFrom` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumesFrom {
    /// `sourceContainer`: another container of the task.
    pub source_container: String,
    /// `readOnly`: every inherited mount read-only.
    pub read_only: bool,
}

/// One `ulimits` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ulimit {
    /// The OCI rlimit name, e.g. `RLIMIT_NOFILE` (from ECS `nofile`).
    pub rlimit: String,
    /// `softLimit`.
    pub soft: u64,
    /// `hardLimit`.
    pub hard: u64,
}

/// One `portMappings` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortMapping {
    /// `containerPort`.
    pub container_port: u16,
    /// `hostPort` (equals containerPort in host mode; `None` in bridge mode: a
    /// dynamic port the agent picks).
    pub host_port: Option<u16>,
    /// `protocol`: `tcp` or `udp`.
    pub protocol: String,
}

/// One `dependsOn` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dependency {
    /// `containerName`: another container of the task.
    pub container: String,
    /// `condition`.
    pub condition: DependencyCondition,
}

/// `dependsOn[].condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DependencyCondition {
    /// The dependency has started.
    Start,
    /// The dependency ran to completion (any exit code).
    Complete,
    /// The dependency exited with code 0.
    Success,
    /// The dependency's health check passed.
    Healthy,
}

/// `healthCheck`, with ECS defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthCheck {
    /// What to run inside the container.
    pub command: HealthCommand,
    /// `interval` (5–300 s, default 30).
    pub interval: Duration,
    /// `timeout` (2–60 s, default 5).
    pub timeout: Duration,
    /// `retries` (1–10, default 3).
    pub retries: u32,
    /// `startPeriod` (0–300 s, default 0).
    pub start_period: Duration,
}

/// The `healthCheck.command` forms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HealthCommand {
    /// `["CMD", argv...]`: exec argv directly.
    Exec(Vec<String>),
    /// `["CMD-SHELL", "cmd"]`: run through `/bin/sh -c`.
    Shell(String),
    /// `["NONE"]`: health checking disabled.
    None,
}

/// `restartPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestartPolicy {
    /// `enabled`.
    pub enabled: bool,
    /// `ignoredExitCodes`: exits with these codes are not restarted.
    pub ignored_exit_codes: Vec<i32>,
    /// `restartAttemptPeriod` (60–1800 s, default 300): a container must have run this
    /// long before it may be restarted again.
    pub restart_attempt_period: Duration,
}

impl TaskDefinition {
    /// The container named `name`, if any.
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The volume named `name`, if any.
    pub fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.name == name)
    }
}
