//! `networkMode` as the author wrote it: the modes skerry runs (`bridge`, `host`,
//! `none`, as ECS Anywhere), the ones it refuses, each with one line, and ECS's
//! default when the field is omitted, which is `bridge` (design.md D27).
//!
//! Under a refused mode the port-mapping, links and sysctl checks stay quiet, so no
//! refusal is a knock-on of another or names a mode the author did not write.

use super::ecs::RawTaskDefinition;
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
        // ECS's default on Linux.
        None => NetworkChoice {
            mode: NetworkMode::Bridge,
            refused: false,
        },
    }
}
