//! Events of the fleet link, beside the reconciler's: a document accepted, refused,
//! applied or superseded, a name clash, the link going up or down. They go to the
//! outbox like every report, so the operator sees them in order.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::document::Target;

/// One fleet event. New kinds are added at the end only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FleetEvent {
    /// A verified document was stored and is being applied.
    Accepted {
        target: Target,
        version: u64,
        /// The version it replaced while that one was still applying.
        superseded: Option<u64>,
    },
    /// A document was refused; nothing changed.
    Rejected {
        topic: String,
        version: Option<u64>,
        code: String,
        reason: String,
    },
    /// Every task of the document launched, every service at its revision and count.
    Applied { target: Target, version: u64 },
    /// A service of the document was rolled back or its deployment failed.
    Failed {
        target: Target,
        version: u64,
        reason: String,
    },
    /// Two sources define one name; `kept` runs.
    Clash {
        name: String,
        kept: String,
        ignored: String,
    },
    /// The broker link changed (`up`: `Some(true)` connected, `Some(false)` lost).
    Link { up: Option<bool>, detail: String },
    /// A sealed secret was opened and stored (its name and version, never its value).
    SecretStored { name: String, version: u64 },
    /// A message on the secrets topic was refused; nothing changed.
    SecretRejected { code: String, reason: String },
}

impl fmt::Display for FleetEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetEvent::Accepted {
                target,
                version,
                superseded: Some(old),
            } => write!(
                f,
                "deployment {version} for {target} accepted; version {old} superseded"
            ),
            FleetEvent::Accepted {
                target, version, ..
            } => {
                write!(f, "deployment {version} for {target} accepted")
            }
            FleetEvent::Rejected {
                topic,
                version,
                code,
                reason,
            } => {
                write!(f, "deployment on the topic of {topic} rejected ({code})")?;
                if let Some(v) = version {
                    write!(f, " version {v}")?;
                }
                write!(f, ": {reason}")
            }
            FleetEvent::Applied { target, version } => {
                write!(f, "deployment {version} for {target} applied")
            }
            FleetEvent::Failed {
                target,
                version,
                reason,
            } => write!(f, "deployment {version} for {target} failed: {reason}"),
            FleetEvent::Clash {
                name,
                kept,
                ignored,
            } => write!(
                f,
                "{name} is defined by {kept} and {ignored}; {kept}'s runs"
            ),
            FleetEvent::Link { detail, .. } => write!(f, "link: {detail}"),
            FleetEvent::SecretStored { name, version } => {
                write!(f, "secret {name:?} version {version} stored")
            }
            FleetEvent::SecretRejected { code, reason } => {
                write!(f, "secret rejected ({code}): {reason}")
            }
        }
    }
}
