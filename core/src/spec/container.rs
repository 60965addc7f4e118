//! One `containerDefinitions` entry: required fields, process settings and
//! resources, assembled into a [`ContainerDefinition`]. Refused features, mounts,
//! kernel, network and health settings are delegated to `unsupported`, `storage`,
//! `linux`, `net`, `health` and `deps`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ecs::RawContainer;
use super::error::Problems;
use super::model::{ContainerDefinition, NamespaceMode, NetworkMode, Volume, DEFAULT_STOP_TIMEOUT};
use super::names::{check_absolute, check_image, parse_user, validate_name};
use super::secrets::ContainerSecrets;
use super::units::MIN_MEMORY_MIB;
use super::{
    deps, health, linux, logs, net, secrets, security, storage, unsupported, volumes_from,
    ParseOptions,
};

/// The most `stopTimeout` ECS allows, in seconds.
const MAX_STOP_TIMEOUT_SECS: u32 = 120;
/// The most cpu shares the kernel takes for one container.
const MAX_CONTAINER_CPU_UNITS: u32 = 262_144;

/// Task-level facts a container's checks depend on.
pub(crate) struct TaskContext<'a> {
    pub network_mode: NetworkMode,
    /// `networkMode` was refused: mode-dependent checks stay quiet (no knock-ons).
    pub network_refused: bool,
    pub ipc_mode: NamespaceMode,
    pub volumes: &'a [Volume],
    pub opts: &'a ParseOptions,
}

pub(crate) fn check(
    raw: &RawContainer,
    at: &str,
    ctx: &TaskContext<'_>,
    p: &mut Problems,
) -> ContainerDefinition {
    let name = raw.name.clone().unwrap_or_default();
    match &raw.name {
        Some(name) => p.check(format!("{at}.name"), validate_name("container name", name)),
        None => p.push(format!("{at}.name"), "is required"),
    }
    let image = raw.image.clone().unwrap_or_default();
    match &raw.image {
        Some(image) => p.check(format!("{at}.image"), check_image(image)),
        None => p.push(format!("{at}.image"), "is required"),
    }
    unsupported::check_container(raw, at, ctx.network_mode, ctx.network_refused, p);
    let log = raw
        .log_configuration
        .as_ref()
        .map(|l| logs::check(l, &format!("{at}.logConfiguration"), p))
        .unwrap_or_default();

    // Docker: later duplicates win.
    let mut environment = BTreeMap::new();
    for (i, kv) in raw
        .environment
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = kv.name.clone().unwrap_or_default();
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            p.push(
                format!("{at}.environment[{i}].name"),
                format!("must be a non-empty name without '=', got {key:?}"),
            );
        }
        match &kv.value {
            Some(value) => {
                environment.insert(key, value.clone());
            }
            None => p.push(format!("{at}.environment[{i}].value"), "is required"),
        }
    }
    let secrets = check_secrets(raw, at, &environment, p);
    if let Some(dir) = &raw.working_directory {
        p.check(format!("{at}.workingDirectory"), check_absolute(dir));
    }
    let user = raw.user.as_deref().and_then(|u| {
        parse_user(u)
            .map_err(|why| p.push(format!("{at}.user"), why))
            .ok()
    });

    let cpu_units = raw.cpu.unwrap_or(0);
    if cpu_units > MAX_CONTAINER_CPU_UNITS {
        p.push(
            format!("{at}.cpu"),
            format!("must be at most {MAX_CONTAINER_CPU_UNITS} cpu units, got {cpu_units}"),
        );
    }
    for (field, value) in [
        ("memory", raw.memory),
        ("memoryReservation", raw.memory_reservation),
    ] {
        if let Some(mib) = value.filter(|mib| *mib < MIN_MEMORY_MIB) {
            p.push(
                format!("{at}.{field}"),
                format!("must be at least {MIN_MEMORY_MIB} MiB, got {mib}"),
            );
        }
    }
    if let (Some(hard), Some(soft)) = (raw.memory, raw.memory_reservation) {
        if soft > hard {
            p.push(
                format!("{at}.memoryReservation"),
                format!("must not exceed memory ({soft} MiB > {hard} MiB)"),
            );
        }
    }
    let stop_timeout = match raw.stop_timeout {
        Some(secs) if secs > MAX_STOP_TIMEOUT_SECS => {
            p.push(
                format!("{at}.stopTimeout"),
                format!("must be at most {MAX_STOP_TIMEOUT_SECS} seconds, got {secs}"),
            );
            DEFAULT_STOP_TIMEOUT
        }
        Some(secs) => Duration::from_secs(u64::from(secs)),
        None => DEFAULT_STOP_TIMEOUT,
    };
    if raw.start_timeout == Some(0) {
        p.push(format!("{at}.startTimeout"), "must be at least 1 second");
    }
    let privileged = raw.privileged.unwrap_or(false);
    if privileged && !ctx.opts.allow_privileged {
        p.push(
            format!("{at}.privileged"),
            "privileged containers are disabled on this agent: set allow_privileged = true in the agent config to allow them",
        );
    }

    let linux = match &raw.linux_parameters {
        Some(lp) => linux::check_linux(lp, &format!("{at}.linuxParameters"), ctx.ipc_mode, p),
        None => Default::default(),
    };
    let mount_points = storage::mount_points(raw, at, ctx.volumes, &linux.tmpfs, p);
    let volumes_from = volumes_from::parse(
        raw.volumes_from.as_deref().unwrap_or_default(),
        &format!("{at}.volumesFrom"),
        p,
    );
    let ulimits = linux::check_ulimits(
        raw.ulimits.as_deref().unwrap_or_default(),
        &format!("{at}.ulimits"),
        p,
    );
    let system_controls = linux::check_sysctls(
        raw.system_controls.as_deref().unwrap_or_default(),
        &format!("{at}.systemControls"),
        // Under a refused networkMode, net.* sysctls are not judged against host mode.
        if ctx.network_refused {
            NetworkMode::None
        } else {
            ctx.network_mode
        },
        ctx.ipc_mode,
        p,
    );
    let net = net::check(raw, at, ctx.network_mode, ctx.network_refused, p);
    let disable_networking = raw.disable_networking.unwrap_or(false);
    if disable_networking && !net.port_mappings.is_empty() {
        p.push(
            format!("{at}.portMappings"),
            "cannot publish ports of a container with disableNetworking (it has only loopback)",
        );
    }
    let depends_on = deps::parse(
        raw.depends_on.as_deref().unwrap_or_default(),
        &format!("{at}.dependsOn"),
        p,
    );
    let health_check = raw
        .health_check
        .as_ref()
        .map(|h| health::check_health(h, &format!("{at}.healthCheck"), p));
    let restart_policy = raw
        .restart_policy
        .as_ref()
        .map(|r| health::check_restart(r, &format!("{at}.restartPolicy"), p));

    ContainerDefinition {
        name,
        image,
        // An empty list means "not set", as with the Docker CLI.
        command: raw.command.clone().filter(|c| !c.is_empty()),
        entry_point: raw.entry_point.clone().filter(|e| !e.is_empty()),
        environment,
        working_directory: raw.working_directory.clone(),
        user,
        cpu_units,
        memory_mib: raw.memory,
        memory_reservation_mib: raw.memory_reservation,
        essential: raw.essential.unwrap_or(true),
        stop_timeout,
        start_timeout: raw.start_timeout.map(|s| Duration::from_secs(u64::from(s))),
        readonly_root_filesystem: raw.readonly_root_filesystem.unwrap_or(false),
        disable_networking,
        privileged,
        linux,
        security: security::check(
            raw.docker_security_options.as_ref(),
            &format!("{at}.dockerSecurityOptions"),
            p,
        ),
        mount_points,
        volumes_from,
        ulimits,
        system_controls,
        hostname: net.hostname,
        extra_hosts: net.extra_hosts,
        dns_servers: net.dns_servers,
        dns_search_domains: net.dns_search_domains,
        labels: raw.docker_labels.clone().unwrap_or_default(),
        port_mappings: net.port_mappings,
        links: net.links,
        depends_on,
        health_check,
        restart_policy,
        log,
        secrets,
    }
}

/// `secrets` (not clashing with `environment`), `secretOptions` (not clashing with
/// the driver's `options`) and `repositoryCredentials`.
fn check_secrets(
    raw: &RawContainer,
    at: &str,
    environment: &BTreeMap<String, String>,
    p: &mut Problems,
) -> ContainerSecrets {
    let env_names = environment.keys().map(String::as_str).collect();
    let env = secrets::check_named(
        raw.secrets.as_deref().unwrap_or_default(),
        &format!("{at}.secrets"),
        &env_names,
        "environment",
        p,
    );
    let log_options = raw
        .log_configuration
        .as_ref()
        .map(|l| {
            let options = l
                .options
                .iter()
                .flat_map(|o| o.keys().map(String::as_str))
                .collect();
            secrets::check_named(
                l.secret_options.as_deref().unwrap_or_default(),
                &format!("{at}.logConfiguration.secretOptions"),
                &options,
                "logConfiguration.options",
                p,
            )
        })
        .unwrap_or_default();
    let registry = raw
        .repository_credentials
        .as_ref()
        .and_then(|r| secrets::check_registry(r, &format!("{at}.repositoryCredentials"), p));
    ContainerSecrets {
        env,
        log_options,
        registry,
    }
}
