//! Raw ECS JSON shapes, exactly as RegisterTaskDefinition takes them and
//! describe-task-definition prints them (camelCase). Every struct denies unknown
//! fields so typos are refused with their path. Fields skerry refuses or ignores are
//! kept as loose [`Value`]s: the validators decide whether their value matters.

use serde::Deserialize;
use serde_json::Value;

use super::units::Quantity;

/// `aws ecs describe-task-definition` output: `{"taskDefinition": {...}, "tags": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DescribeOutput {
    pub task_definition: RawTaskDefinition,
    #[allow(dead_code)]
    pub tags: Option<Value>,
}

/// A task definition: RegisterTaskDefinition input plus describe's read-only fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawTaskDefinition {
    pub family: Option<String>,
    pub container_definitions: Option<Vec<RawContainer>>,
    pub network_mode: Option<String>,
    pub pid_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub volumes: Option<Vec<RawVolume>>,
    pub cpu: Option<Quantity>,
    pub memory: Option<Quantity>,
    pub requires_compatibilities: Option<Vec<String>>,
    pub runtime_platform: Option<RawRuntimePlatform>,
    pub placement_constraints: Option<Value>,
    pub inference_accelerators: Option<Value>,
    pub proxy_configuration: Option<Value>,
    pub ephemeral_storage: Option<Value>,
    pub enable_fault_injection: Option<Value>,
    // Accepted and ignored: there is no IAM on the device.
    #[allow(dead_code)]
    pub task_role_arn: Option<Value>,
    #[allow(dead_code)]
    pub execution_role_arn: Option<Value>,
    #[allow(dead_code)]
    pub tags: Option<Value>,
    // Read-only fields of describe-task-definition output.
    pub revision: Option<u32>,
    #[allow(dead_code)]
    pub task_definition_arn: Option<Value>,
    #[allow(dead_code)]
    pub status: Option<Value>,
    #[allow(dead_code)]
    pub requires_attributes: Option<Value>,
    #[allow(dead_code)]
    pub compatibilities: Option<Value>,
    #[allow(dead_code)]
    pub registered_at: Option<Value>,
    #[allow(dead_code)]
    pub registered_by: Option<Value>,
    #[allow(dead_code)]
    pub deregistered_at: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawRuntimePlatform {
    pub operating_system_family: Option<String>,
    pub cpu_architecture: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawVolume {
    pub name: Option<String>,
    pub host: Option<RawHostVolume>,
    pub docker_volume_configuration: Option<RawDockerVolume>,
    pub efs_volume_configuration: Option<Value>,
    pub fsx_windows_file_server_volume_configuration: Option<Value>,
    pub configured_at_launch: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawDockerVolume {
    pub scope: Option<String>,
    pub autoprovision: Option<bool>,
    pub driver: Option<String>,
    pub driver_opts: Option<std::collections::BTreeMap<String, String>>,
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawHostVolume {
    pub source_path: Option<String>,
}

/// One `containerDefinitions` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawContainer {
    pub name: Option<String>,
    pub image: Option<String>,
    pub command: Option<Vec<String>>,
    pub entry_point: Option<Vec<String>>,
    pub environment: Option<Vec<RawKeyValue>>,
    pub working_directory: Option<String>,
    pub user: Option<String>,
    pub cpu: Option<u32>,
    pub memory: Option<u64>,
    pub memory_reservation: Option<u64>,
    pub essential: Option<bool>,
    pub stop_timeout: Option<u32>,
    pub start_timeout: Option<u32>,
    pub readonly_root_filesystem: Option<bool>,
    pub privileged: Option<bool>,
    pub linux_parameters: Option<RawLinuxParameters>,
    pub mount_points: Option<Vec<RawMountPoint>>,
    pub volumes_from: Option<Vec<RawVolumesFrom>>,
    pub ulimits: Option<Vec<RawUlimit>>,
    pub system_controls: Option<Vec<RawSystemControl>>,
    pub hostname: Option<String>,
    pub extra_hosts: Option<Vec<RawHostEntry>>,
    pub dns_servers: Option<Vec<String>>,
    pub dns_search_domains: Option<Vec<String>>,
    pub docker_labels: Option<std::collections::BTreeMap<String, String>>,
    pub port_mappings: Option<Vec<RawPortMapping>>,
    pub depends_on: Option<Vec<RawDependency>>,
    pub health_check: Option<RawHealthCheck>,
    pub restart_policy: Option<RawRestartPolicy>,
    pub log_configuration: Option<RawLogConfiguration>,
    /// `enabled`/`disabled`: informational, skerry resolves tags when it pulls.
    pub version_consistency: Option<String>,
    // Refused when they carry a meaningful value.
    pub environment_files: Option<Value>,
    pub secrets: Option<Vec<RawSecret>>,
    pub links: Option<Value>,
    pub repository_credentials: Option<RawRepositoryCredentials>,
    pub resource_requirements: Option<Value>,
    pub firelens_configuration: Option<Value>,
    pub disable_networking: Option<bool>,
    pub interactive: Option<Value>,
    pub pseudo_terminal: Option<Value>,
    pub docker_security_options: Option<Value>,
    pub credential_specs: Option<Value>,
}

/// One `secrets` or `logConfiguration.secretOptions` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawSecret {
    pub name: Option<String>,
    pub value_from: Option<String>,
}

/// `repositoryCredentials`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawRepositoryCredentials {
    pub credentials_parameter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeyValue {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawLinuxParameters {
    pub capabilities: Option<RawCapabilities>,
    pub init_process_enabled: Option<bool>,
    pub tmpfs: Option<Vec<RawTmpfs>>,
    pub shared_memory_size: Option<u64>,
    pub devices: Option<Vec<RawDevice>>,
    pub max_swap: Option<Value>,
    pub swappiness: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawDevice {
    pub host_path: Option<String>,
    pub container_path: Option<String>,
    pub permissions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCapabilities {
    pub add: Option<Vec<String>>,
    pub drop: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawTmpfs {
    pub container_path: Option<String>,
    pub size: Option<u64>,
    pub mount_options: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawMountPoint {
    pub source_volume: Option<String>,
    pub container_path: Option<String>,
    pub read_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawVolumesFrom {
    pub source_container: Option<String>,
    pub read_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawUlimit {
    pub name: Option<String>,
    pub soft_limit: Option<i64>,
    pub hard_limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSystemControl {
    pub namespace: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawHostEntry {
    pub hostname: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawPortMapping {
    pub container_port: Option<u32>,
    pub host_port: Option<u32>,
    pub protocol: Option<String>,
    /// Service Connect names: informational.
    #[allow(dead_code)]
    pub name: Option<String>,
    #[allow(dead_code)]
    pub app_protocol: Option<String>,
    pub container_port_range: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawDependency {
    pub container_name: Option<String>,
    pub condition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawHealthCheck {
    pub command: Option<Vec<String>>,
    pub interval: Option<u32>,
    pub timeout: Option<u32>,
    pub retries: Option<u32>,
    pub start_period: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawRestartPolicy {
    pub enabled: Option<bool>,
    pub ignored_exit_codes: Option<Vec<i32>>,
    pub restart_attempt_period: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawLogConfiguration {
    pub log_driver: Option<String>,
    /// Driver options: checked for `awslogs` and `none`, ignored for `json-file` and
    /// `local` (skerry rotates its own files).
    pub options: Option<std::collections::BTreeMap<String, String>>,
    pub secret_options: Option<Vec<RawSecret>>,
}

/// Whether a loosely typed field carries a value that would change behaviour:
/// `null`, `false`, `""`, `[]`, `{}` and `0` do not.
pub(crate) fn is_meaningful(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}
