//! Task definitions: ECS RegisterTaskDefinition JSON (or describe-task-definition
//! output) in, a checked [`TaskDefinition`] out. Pure: no I/O, no clock.
//!
//! Every refusal names the JSON path and the reason, e.g.
//! `containerDefinitions[1].memory: must be at least 6 MiB, got 4`. All problems
//! are reported at once; only a malformed document or a field of the wrong type or
//! an unknown field (a typo) stops parsing at the first.
//!
//! What is accepted but has no effect on the device:
//! - describe-task-definition's read-only fields (`taskDefinitionArn`, `status`,
//!   `requiresAttributes`, `compatibilities`, `registeredAt`/`By`, `deregisteredAt`;
//!   `revision` is kept) and `tags`;
//! - `taskRoleArn` and `executionRoleArn`: there is no IAM on the device, so
//!   containers get no AWS credentials from skerry;
//! - `runtimePlatform.cpuArchitecture` (the image decides), `versionConsistency`,
//!   `portMappings[].name`/`appProtocol` (Service Connect);
//! - `logConfiguration` with `awslogs`, `json-file` or `local`: skerry always writes
//!   the container's output to its own rotated log files (`skerry logs`); CloudWatch
//!   is never reached from the device. `awslogs` options are checked as ECS documents
//!   them; `none` discards the output.
//! - `secrets`, `logConfiguration.secretOptions` and `repositoryCredentials` name
//!   secrets in the device's local store (see `secrets` for how an ARN maps to a
//!   local name); the agent resolves them at launch;
//! - `dockerSecurityOptions` `apparmor=unconfined` and `label=disable` (skerry
//!   applies neither); `no-new-privileges` and `seccomp=unconfined` are honoured.
//!
//! Defaults and mappings: no `networkMode` means `bridge`, as in ECS (see `netmode`;
//! a missing or 0 `hostPort` is then a dynamic port the agent picks); no `pidMode`/`ipcMode`
//! means one namespace per container; `ipcMode: none` is refused (skerry always
//! gives containers a private /dev/shm). A volume without `host.sourcePath` is
//! task-scoped. In host mode a port mapping's `hostPort` is its `containerPort`.
//! An empty `command`/`entryPoint` list means "not set". `GB` in task `memory`
//! means GiB, as in ECS.
//!
//! Everything that would change behaviour but cannot be honoured is refused,
//! naming the field: awsvpc networking, Fargate-only definitions, docker volume drivers
//! other than `local`, EFS/FSx/EBS volumes, environment files, log drivers other than
//! awslogs/json-file/local/none, FireLens, swap settings, links outside bridge mode, GPUs,
//! privileged containers unless the agent's `allow_privileged` is set, and more.

mod container;
mod deps;
mod devices;
mod ecs;
mod error;
mod health;
mod journald;
mod linux;
mod logs;
mod model;
mod named_volume;
mod names;
mod net;
mod netmode;
mod revision;
mod secrets;
mod security;
mod skerry_logs;
mod storage;
mod task;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests;
mod units;
mod unsupported;
mod volumes_from;

pub use error::{FieldProblem, SpecError};
pub use model::*;
pub use names::validate_name;
pub use revision::{Revision, SHORT_DIGEST_LEN};
pub use secrets::{
    validate_secret_name, ContainerSecrets, NamedSecret, SecretRef, MAX_SECRET_NAME,
};

/// How strict [`parse_task_definition`] is; set from the agent config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept `privileged: true` containers (agent config key `allow_privileged`).
    pub allow_privileged: bool,
}

/// Top-level keys only, to tell describe-task-definition output from a bare
/// definition; also proves the JSON well formed and an object before the typed pass.
type Probe = std::collections::BTreeMap<String, serde::de::IgnoredAny>;

/// Parses and checks a task definition: either a RegisterTaskDefinition object or
/// `aws ecs describe-task-definition` output (`{"taskDefinition": {...}}`, whose
/// problems are then reported under `taskDefinition.`).
pub fn parse_task_definition(json: &str, opts: &ParseOptions) -> Result<TaskDefinition, SpecError> {
    let probe: Probe = serde_json::from_str(json).map_err(|e| error::malformed(&e))?;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let (raw, prefix) = if probe.contains_key("taskDefinition") {
        let describe: ecs::DescribeOutput =
            serde_path_to_error::deserialize(&mut deserializer).map_err(error::from_serde)?;
        (describe.task_definition, "taskDefinition.")
    } else {
        let raw = serde_path_to_error::deserialize(&mut deserializer).map_err(error::from_serde)?;
        (raw, "")
    };
    let mut problems = error::Problems::new(prefix);
    let task = task::check(&raw, opts, &mut problems);
    problems.finish(task)
}
