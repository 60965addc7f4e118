//! ECS features that mean nothing on a lone device, or that skerry cannot honour:
//! platform and compatibility fields, refused task and container fields. Each
//! refusal names the field and says why.

use super::ecs::{is_meaningful, RawContainer, RawTaskDefinition};
use super::error::Problems;

/// Compatibility and placement fields of the task. Returns whether the definition
/// is FARGATE-only (refused here in one line, which covers its Fargate settings).
pub(crate) fn check_task(raw: &RawTaskDefinition, p: &mut Problems) -> bool {
    let mut fargate_only = false;
    if let Some(list) = &raw.requires_compatibilities {
        for (i, value) in list.iter().enumerate() {
            if !matches!(
                value.as_str(),
                "EC2" | "EXTERNAL" | "FARGATE" | "MANAGED_INSTANCES"
            ) {
                p.push(
                    format!("requiresCompatibilities[{i}]"),
                    format!("unknown launch type {value:?}"),
                );
            }
        }
        if !list.is_empty() && !list.iter().any(|v| v == "EXTERNAL" || v == "EC2") {
            fargate_only = list.iter().any(|v| v == "FARGATE");
            let why = if fargate_only {
                "a FARGATE-only definition runs on AWS's hosts; skerry runs EXTERNAL (ECS Anywhere) and EC2 definitions: list \"EXTERNAL\" (with \"networkMode\": \"host\" instead of awsvpc)"
            } else {
                "skerry runs EXTERNAL (ECS Anywhere) and EC2 definitions: list \"EXTERNAL\""
            };
            p.push(
                "requiresCompatibilities",
                format!("{list:?} is not supported: {why}"),
            );
        }
    }
    if let Some(platform) = &raw.runtime_platform {
        if let Some(os) = platform
            .operating_system_family
            .as_deref()
            .filter(|os| *os != "LINUX")
        {
            p.push(
                "runtimePlatform.operatingSystemFamily",
                format!("{os:?} is not supported: skerry runs LINUX containers"),
            );
        }
        if let Some(arch) = platform
            .cpu_architecture
            .as_deref()
            .filter(|a| !matches!(*a, "X86_64" | "ARM64"))
        {
            p.push(
                "runtimePlatform.cpuArchitecture",
                format!("must be X86_64 or ARM64, got {arch:?}"),
            );
        }
    }
    let refused = [
        (
            "placementConstraints",
            &raw.placement_constraints,
            "there is no placement on a single device",
        ),
        (
            "inferenceAccelerators",
            &raw.inference_accelerators,
            "elastic inference is not available on the device",
        ),
        (
            "proxyConfiguration",
            &raw.proxy_configuration,
            "App Mesh needs AWS's mesh control plane; run the proxy as an ordinary container if you need one",
        ),
        (
            "ephemeralStorage",
            if fargate_only { &None } else { &raw.ephemeral_storage },
            "it sizes Fargate's task storage; on the device a task's files use the state directory's disk",
        ),
        (
            "enableFaultInjection",
            &raw.enable_fault_injection,
            "fault injection is not supported",
        ),
    ];
    for (field, value, why) in refused {
        if value.as_ref().is_some_and(is_meaningful) {
            p.push(field, format!("is not supported: {why}"));
        }
    }
    fargate_only
}

/// Container fields skerry refuses, and `versionConsistency`.
/// `links` are checked by `net` in bridge mode; `network_refused`: `networkMode`
/// was refused, which covers `links` (a bridge feature).
pub(crate) fn check_container(
    raw: &RawContainer,
    at: &str,
    network_mode: super::model::NetworkMode,
    network_refused: bool,
    p: &mut Problems,
) {
    for (field, value, why) in refused_fields(raw) {
        if field == "links"
            && (network_refused || network_mode == super::model::NetworkMode::Bridge)
        {
            continue;
        }
        if value.is_some_and(is_meaningful) {
            p.push(format!("{at}.{field}"), format!("is not supported: {why}"));
        }
    }
    if let Some(v) = raw
        .version_consistency
        .as_deref()
        .filter(|v| !matches!(*v, "enabled" | "disabled"))
    {
        p.push(
            format!("{at}.versionConsistency"),
            format!("must be \"enabled\" or \"disabled\", got {v:?}"),
        );
    }
}

/// Fields that would change behaviour and that skerry cannot honour, with why.
fn refused_fields(
    raw: &RawContainer,
) -> [(&'static str, Option<&serde_json::Value>, &'static str); 7] {
    [
        (
            "environmentFiles",
            raw.environment_files.as_ref(),
            "environment files live in S3, which skerry cannot read; use environment",
        ),
        (
            "links",
            raw.links.as_ref(),
            "links are bridge-mode only; in host and none mode containers share the task's network",
        ),
        (
            "resourceRequirements",
            raw.resource_requirements.as_ref(),
            "skerry does not reserve or expose GPUs or inference accelerators",
        ),
        (
            "firelensConfiguration",
            raw.firelens_configuration.as_ref(),
            "FireLens routers need AWS access; skerry keeps container logs on the device (skerry logs): use the awslogs or json-file log driver",
        ),
        (
            "interactive",
            raw.interactive.as_ref(),
            "containers get no stdin",
        ),
        (
            "pseudoTerminal",
            raw.pseudo_terminal.as_ref(),
            "containers get no terminal",
        ),
        (
            "credentialSpecs",
            raw.credential_specs.as_ref(),
            "gMSA credential specs are for Windows containers",
        ),
    ]
}
