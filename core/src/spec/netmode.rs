//! `networkMode` as the author wrote it: the modes skerry runs (`host`, `none`),
//! the ones it refuses, each with one line, and ECS's default when the field is
//! omitted, which is `bridge`.
//!
//! For now an omitted `networkMode` still runs as `host` when nothing in the
//! definition depends on bridge networking. When something does (a port remapped
//! or left dynamic, `links`, a `net.*` sysctl), the one refusal is at
//! `networkMode`, says that ECS's default is bridge and what needs it; the
//! port-mapping, links and sysctl checks are then not reported on top of it, nor
//! under a refused mode, so no refusal is a knock-on of another or names a mode
//! the author did not write.

use super::ecs::{is_meaningful, RawContainer, RawTaskDefinition};
use super::error::Problems;
use super::model::NetworkMode;

/// What the rest of the checks need to know about the network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetworkChoice {
    /// The mode the task runs with if accepted.
    pub mode: NetworkMode,
    /// `networkMode` was refused: checks that depend on the mode stay quiet.
    pub refused: bool,
}

/// Checks `networkMode`. `fargate_only`: the definition was refused for being
/// FARGATE-only, whose `awsvpc` is then part of that one refusal.
pub(crate) fn check(
    raw: &RawTaskDefinition,
    fargate_only: bool,
    p: &mut Problems,
) -> NetworkChoice {
    let refused = |mode| NetworkChoice {
        mode,
        refused: true,
    };
    match raw.network_mode.as_deref() {
        Some("host") => NetworkChoice {
            mode: NetworkMode::Host,
            refused: false,
        },
        Some("none") => NetworkChoice {
            mode: NetworkMode::None,
            refused: false,
        },
        Some("awsvpc") if fargate_only => refused(NetworkMode::Host),
        Some("bridge") => NetworkChoice {
            mode: NetworkMode::Bridge,
            refused: false,
        },
        Some("awsvpc") => {
            p.push(
                "networkMode",
                "\"awsvpc\" is not supported: it gives each task an elastic network interface, which ECS Anywhere refuses too; use \"networkMode\": \"host\"",
            );
            refused(NetworkMode::Host)
        }
        Some(other) => {
            p.push(
                "networkMode",
                format!("{other:?} is not supported: skerry runs bridge, host or none networking"),
            );
            refused(NetworkMode::Host)
        }
        None => {
            let needs = bridge_features(raw.container_definitions.as_deref().unwrap_or_default());
            if needs.is_empty() {
                return NetworkChoice {
                    mode: NetworkMode::Host,
                    refused: false,
                };
            }
            let has = |what: &str| needs.iter().any(|n| n.contains(what));
            let mut then = Vec::new();
            if has("portMappings") {
                then.push("each hostPort must then equal its containerPort");
            }
            if has("links") {
                then.push("drop links: the task's containers then reach each other on localhost");
            }
            if has("systemControls") {
                then.push(
                    "net.* sysctls are refused there: they would change the device's network",
                );
            }
            p.push(
                "networkMode",
                format!(
                    "omitted, so ECS runs the task with bridge (the ECS default when networkMode is omitted), which skerry does not support yet; bridge is needed by {}: set \"networkMode\": \"host\" ({})",
                    needs.join(", "),
                    then.join("; ")
                ),
            );
            refused(NetworkMode::Host)
        }
    }
}

/// What in the containers only works with bridge networking, as JSON paths with
/// the value that needs it.
fn bridge_features(containers: &[RawContainer]) -> Vec<String> {
    let mut needs = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let at = format!("containerDefinitions[{i}]");
        for (j, m) in c
            .port_mappings
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            match (m.host_port, m.container_port) {
                (Some(0), _) => needs.push(format!(
                    "{at}.portMappings[{j}] (hostPort 0, a dynamic port)"
                )),
                (Some(host), Some(container)) if host != container => needs.push(format!(
                    "{at}.portMappings[{j}] (hostPort {host} to containerPort {container})"
                )),
                _ => {}
            }
        }
        if c.links.as_ref().is_some_and(is_meaningful) {
            needs.push(format!("{at}.links"));
        }
        for (k, s) in c
            .system_controls
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if let Some(name) = s.namespace.as_deref().filter(|n| n.starts_with("net.")) {
                needs.push(format!("{at}.systemControls[{k}] ({name})"));
            }
        }
    }
    needs
}
