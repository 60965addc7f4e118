//! Task-level checks: family, network and namespace modes, task size, and the rules
//! that span containers (unique names, an essential container, memory and cpu sums,
//! host port clashes). Volumes are checked in `storage`, platform fields in
//! `unsupported`, containers in `container`.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::container::{self, TaskContext};
use super::ecs::RawTaskDefinition;
use super::error::Problems;
use super::model::{NamespaceMode, TaskDefinition};
use super::names::validate_name;
use super::{deps, netmode, storage, units, unsupported, volumes_from, ParseOptions};

/// Checks a raw task definition, recording every problem in `p`.
pub(crate) fn check(
    raw: &RawTaskDefinition,
    opts: &ParseOptions,
    p: &mut Problems,
) -> TaskDefinition {
    let family = match &raw.family {
        Some(family) => {
            p.check("family", validate_name("family", family));
            family.clone()
        }
        None => {
            p.push("family", "is required");
            String::new()
        }
    };
    let fargate_only = unsupported::check_task(raw, p);
    let network = netmode::check(raw, fargate_only, p);
    let network_mode = network.mode;
    let pid_mode = namespace_mode("pidMode", raw.pid_mode.as_deref(), p);
    let ipc_mode = namespace_mode("ipcMode", raw.ipc_mode.as_deref(), p);
    let volumes = storage::volumes(raw.volumes.as_deref().unwrap_or_default(), p);
    let cpu_units = raw
        .cpu
        .as_ref()
        .and_then(|q| ok_or_push(p, "cpu", units::cpu_units(q)));
    let memory_mib = raw
        .memory
        .as_ref()
        .and_then(|q| ok_or_push(p, "memory", units::memory_mib(q)));

    let ctx = TaskContext {
        network_mode,
        network_refused: network.refused,
        ipc_mode,
        volumes: &volumes,
        opts,
    };
    let raw_containers = raw.container_definitions.as_deref().unwrap_or_default();
    if raw_containers.is_empty() {
        p.push("containerDefinitions", "must list at least one container");
    }
    let containers: Vec<_> = raw_containers
        .iter()
        .enumerate()
        .map(|(i, c)| container::check(c, &format!("containerDefinitions[{i}]"), &ctx, p))
        .collect();

    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in containers.iter().enumerate() {
        if c.name.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(&c.name, i) {
            p.push(
                format!("containerDefinitions[{i}].name"),
                format!(
                    "duplicate container name {:?}: also used by containerDefinitions[{first}]",
                    c.name
                ),
            );
        }
    }
    if !containers.is_empty() && !containers.iter().any(|c| c.essential) {
        p.push("containerDefinitions", "task has no essential container");
    }
    if raw.memory.is_none() {
        // ECS (EC2 and EXTERNAL launch types) asks for one of these; on a gateway a
        // container with no memory setting at all is how the host runs out of it.
        for (i, c) in raw_containers.iter().enumerate() {
            if c.memory.is_none() && c.memory_reservation.is_none() {
                p.push(
                    format!("containerDefinitions[{i}]"),
                    "set memory (hard limit, MiB) or memoryReservation, or the task's memory: \
                     with none of them the container may take all of the device's memory",
                );
            }
        }
    }
    if let Some(task) = memory_mib {
        let sum: u64 = containers.iter().filter_map(|c| c.memory_mib).sum();
        if sum > task {
            p.push(
                "memory",
                format!("containers' memory adds up to {sum} MiB, more than the task's {task} MiB"),
            );
        }
        for (i, c) in containers.iter().enumerate() {
            if let Some(soft) = c.memory_reservation_mib.filter(|soft| *soft > task) {
                p.push(
                    format!("containerDefinitions[{i}].memoryReservation"),
                    format!("{soft} MiB is more than the task's memory of {task} MiB"),
                );
            }
        }
    }
    if let Some(task) = cpu_units {
        let sum: u64 = containers.iter().map(|c| u64::from(c.cpu_units)).sum();
        if sum > u64::from(task) {
            p.push(
                "cpu",
                format!("containers' cpu adds up to {sum} units, more than the task's {task}"),
            );
        }
    }
    check_host_ports(&containers, p);
    check_links(&containers, p);
    deps::check_graph(&containers, p);
    volumes_from::check_graph(&containers, p);

    TaskDefinition {
        family,
        revision: raw.revision.unwrap_or(0),
        network_mode,
        pid_mode,
        ipc_mode,
        volumes,
        cpu_units,
        memory_mib,
        containers,
    }
}

fn ok_or_push<T>(p: &mut Problems, path: &str, result: Result<T, String>) -> Option<T> {
    result.map_err(|reason| p.push(path, reason)).ok()
}

/// `pidMode`/`ipcMode`: `host` or `task`; absent means one namespace per container.
/// `ipcMode: none` is refused rather than mapped: skerry always mounts a private
/// /dev/shm, which `none` would forbid.
fn namespace_mode(field: &str, value: Option<&str>, p: &mut Problems) -> NamespaceMode {
    match value {
        None => NamespaceMode::Private,
        Some("host") => NamespaceMode::Host,
        Some("task") => NamespaceMode::Task,
        Some("none") if field == "ipcMode" => {
            p.push(
                field,
                "\"none\" is not supported: omit ipcMode for a private ipc namespace per container",
            );
            NamespaceMode::Private
        }
        Some(other) => {
            p.push(
                field,
                format!("must be \"host\" or \"task\", got {other:?}"),
            );
            NamespaceMode::Private
        }
    }
}

/// `links` name other containers of the task.
fn check_links(containers: &[super::model::ContainerDefinition], p: &mut Problems) {
    for (i, c) in containers.iter().enumerate() {
        for (j, (name, _)) in c.links.iter().enumerate() {
            if name == &c.name || !containers.iter().any(|o| &o.name == name) {
                p.push(
                    format!("containerDefinitions[{i}].links[{j}]"),
                    format!("{name:?} is not another container of this task"),
                );
            }
        }
    }
}

/// In host networking two containers cannot listen on the same port and protocol.
fn check_host_ports(containers: &[super::model::ContainerDefinition], p: &mut Problems) {
    let mut seen: BTreeMap<(u16, &str), (usize, usize)> = BTreeMap::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, m) in c.port_mappings.iter().enumerate() {
            let Some(port) = m.host_port else { continue };
            match seen.entry((port, m.protocol.as_str())) {
                Entry::Vacant(slot) => {
                    slot.insert((i, j));
                }
                Entry::Occupied(first) => {
                    let (ci, cj) = *first.get();
                    p.push(
                        format!("containerDefinitions[{i}].portMappings[{j}].hostPort"),
                        format!("host port {port}/{} is already used by containerDefinitions[{ci}].portMappings[{cj}]", m.protocol),
                    );
                }
            }
        }
    }
}
