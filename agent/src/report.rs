//! Reports: what the agent tells its operator, in the form the outbox stores and the
//! MQTT link will publish: a postcard-encoded [`Report`] whose first field is the
//! schema version, so a reader can refuse what it does not understand instead of
//! misreading it. Events are the reconciler's [`Event`]s stamped with wall-clock time
//! (the operator's clock; the reconciler itself runs on monotonic time).

use serde::{Deserialize, Serialize};
use skerry_core::reconcile::{Event, TaskId};

use crate::runtime::logfile::format_rfc3339_ms;

/// The version of the [`Report`] encoding. 2: revisions are [`skerry_core::spec::Revision`]
/// (ECS number and content digest) instead of a bare number; schema 1 is not read.
pub const REPORT_SCHEMA: u16 = 2;

/// One report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_SCHEMA`] when written.
    pub schema: u16,
    /// Wall-clock time, milliseconds since the epoch (may be wrong on a board without
    /// a real-time clock; the outbox order is what counts).
    pub wall_ms: u64,
    pub body: ReportBody,
}

/// What a report says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportBody {
    /// Something the reconciler decided or saw.
    Event(Event),
    /// Something the fleet link saw: documents accepted, refused, applied; the link.
    Fleet(skerry_core::proto::FleetEvent),
    /// How far a task's image pull got (added after schema 2 shipped in no release:
    /// appended last, so every schema-2 report written before still decodes).
    Pull(PullProgress),
    /// A bridged container started with these published ports (appended after
    /// `Pull`, so every report written before still decodes).
    Ports(PortsPublished),
    /// A container waits for a secret (appended after `Ports`, same reason).
    Waiting(SecretsWait),
}

/// The host ports a container got when it started, as ECS's `networkBindings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortsPublished {
    pub task: TaskId,
    pub container: String,
    pub bindings: Vec<crate::net::tasknet::Binding>,
}

impl std::fmt::Display for PortsPublished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports: Vec<String> = self.bindings.iter().map(|b| b.display()).collect();
        write!(
            f,
            "task {} container {}: ports {}",
            self.task,
            self.container,
            ports.join(", ")
        )
    }
}

/// A container waiting for a secret it needs (ECS's `ResourceInitializationError`);
/// it names the secret, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsWait {
    pub task: TaskId,
    pub container: String,
    /// `ResourceInitializationError: unable to pull secrets or registry auth: …`.
    pub reason: String,
}

impl std::fmt::Display for SecretsWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "task {} container {}: waiting: {}",
            self.task, self.container, self.reason
        )
    }
}

/// An image pull under way, reported at every tenth of its missing bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullProgress {
    pub task: TaskId,
    pub container: String,
    pub image: String,
    /// Bytes of the missing layers on disk (resumed bytes included).
    pub bytes: u64,
    /// Bytes of the layers that were missing when the pull resolved the manifest.
    pub total: u64,
}

impl PullProgress {
    /// Whole percent done (100 for an image with nothing to fetch).
    pub fn percent(&self) -> u64 {
        (self.bytes.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100)
    }
}

impl std::fmt::Display for PullProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "task {} container {}: pulling {}: {}% ({} of {} bytes)",
            self.task,
            self.container,
            self.image,
            self.percent(),
            self.bytes,
            self.total
        )
    }
}

/// A stored report that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("report schema {0} is newer than this skerry understands ({REPORT_SCHEMA})")]
    Schema(u16),
    #[error("report schema {0} is older than this skerry reads ({REPORT_SCHEMA}): written before revisions had content digests")]
    OldSchema(u16),
    #[error("report is not a valid encoding: {0}")]
    Decode(postcard::Error),
}

impl Report {
    /// An event report stamped now.
    pub fn event(event: Event) -> Self {
        Self {
            schema: REPORT_SCHEMA,
            wall_ms: crate::runtime::record::now_ms(),
            body: ReportBody::Event(event),
        }
    }

    /// The bytes stored and sent.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data to a Vec cannot fail; an empty report is never stored.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads a report back, refusing a newer schema.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReportError> {
        let (schema, _) = postcard::take_from_bytes::<u16>(bytes).map_err(ReportError::Decode)?;
        if schema > REPORT_SCHEMA {
            return Err(ReportError::Schema(schema));
        }
        if schema < REPORT_SCHEMA {
            return Err(ReportError::OldSchema(schema));
        }
        postcard::from_bytes(bytes).map_err(ReportError::Decode)
    }

    /// A fleet report stamped now.
    pub fn fleet(event: skerry_core::proto::FleetEvent) -> Self {
        Self {
            schema: REPORT_SCHEMA,
            wall_ms: crate::runtime::record::now_ms(),
            body: ReportBody::Fleet(event),
        }
    }

    /// A pull-progress report stamped now.
    pub fn pull(progress: PullProgress) -> Self {
        Self {
            schema: REPORT_SCHEMA,
            wall_ms: crate::runtime::record::now_ms(),
            body: ReportBody::Pull(progress),
        }
    }

    /// A published-ports report stamped now.
    pub fn ports(ports: PortsPublished) -> Self {
        Self {
            schema: REPORT_SCHEMA,
            wall_ms: crate::runtime::record::now_ms(),
            body: ReportBody::Ports(ports),
        }
    }

    /// A secrets-wait report stamped now.
    pub fn waiting(wait: SecretsWait) -> Self {
        Self {
            schema: REPORT_SCHEMA,
            wall_ms: crate::runtime::record::now_ms(),
            body: ReportBody::Waiting(wait),
        }
    }

    /// The task it is about, if any.
    pub fn task(&self) -> Option<&TaskId> {
        let e = match &self.body {
            ReportBody::Event(e) => e,
            ReportBody::Pull(p) => return Some(&p.task),
            ReportBody::Ports(p) => return Some(&p.task),
            ReportBody::Waiting(w) => return Some(&w.task),
            ReportBody::Fleet(_) => return None,
        };
        match e {
            Event::TaskLaunched { task, .. }
            | Event::ContainerExited { task, .. }
            | Event::ContainerRestarted { task, .. }
            | Event::HealthChanged { task, .. }
            | Event::TaskStopping { task, .. }
            | Event::TaskStopped { task, .. }
            | Event::ActionFailed { task, .. }
            | Event::LogsKeptOnDevice { task, .. }
            | Event::JournalAbsent { task, .. } => Some(task),
            Event::ServiceBackoff { .. }
            | Event::CrashLoop { .. }
            | Event::DeploymentStarted { .. }
            | Event::DeploymentCompleted { .. }
            | Event::DeploymentRolledBack { .. }
            | Event::DeploymentFailed { .. } => None,
        }
    }

    /// The service it is about, if any (a service task's id starts `<service>.`).
    pub fn service(&self) -> Option<&str> {
        let ReportBody::Event(e) = &self.body else {
            return None;
        };
        match e {
            Event::TaskLaunched { service, .. } => service.as_deref(),
            Event::ServiceBackoff { service, .. }
            | Event::CrashLoop { service, .. }
            | Event::DeploymentStarted { service, .. }
            | Event::DeploymentCompleted { service, .. }
            | Event::DeploymentRolledBack { service, .. }
            | Event::DeploymentFailed { service, .. } => Some(service),
            _ => None,
        }
    }

    /// One line for people: `<time> <text>`.
    pub fn line(&self) -> String {
        let at = format_rfc3339_ms(self.wall_ms);
        match &self.body {
            ReportBody::Event(e) => format!("{at} {e}"),
            ReportBody::Fleet(e) => format!("{at} {e}"),
            ReportBody::Pull(p) => format!("{at} {p}"),
            ReportBody::Ports(p) => format!("{at} {p}"),
            ReportBody::Waiting(w) => format!("{at} {w}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_time::Duration;
    use skerry_core::reconcile::ExitReason;

    #[test]
    fn report_roundtrips_every_kind_it_is_given() {
        for e in [
            Event::ContainerExited {
                task: "t.1".into(),
                container: "app".into(),
                code: 137,
                reason: ExitReason::OutOfMemory,
            },
            Event::ServiceBackoff {
                service: "web".into(),
                consecutive_failures: 3,
                delay: Duration::from_secs(40),
            },
        ] {
            let r = Report::event(e);
            assert_eq!(Report::decode(&r.encode()).unwrap(), r);
        }
        let p = PullProgress {
            task: "t.1".into(),
            container: "app".into(),
            image: "registry.local/app:1".into(),
            bytes: 450,
            total: 1000,
        };
        let r = Report::pull(p.clone());
        assert_eq!(Report::decode(&r.encode()).unwrap(), r);
        assert_eq!(r.task().map(|t| t.0.as_str()), Some("t.1"));
        assert_eq!(
            p.to_string(),
            "task t.1 container app: pulling registry.local/app:1: 45% (450 of 1000 bytes)"
        );
    }

    #[test]
    fn report_newer_schema_and_garbage_are_refused() {
        let mut r = Report::event(Event::DeploymentStarted {
            service: "web".into(),
            revision: skerry_core::spec::Revision {
                number: 2,
                digest: "3f9a2c1e".into(),
            },
        });
        assert_eq!(Report::decode(&r.encode()).unwrap(), r);
        r.schema = REPORT_SCHEMA + 1;
        let err = Report::decode(&r.encode()).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
        r.schema = 1;
        let err = Report::decode(&r.encode()).unwrap_err();
        assert!(err.to_string().contains("older"), "{err}");
        assert!(Report::decode(&[0x01, 0xff, 0xff]).is_err());
    }

    /// Schema 2 as stored and sent: a rollback event, byte for byte.
    #[test]
    fn report_schema_2_golden_bytes_decode() {
        let mut golden = vec![2, 1, 0, 10, 3];
        golden.extend(b"web");
        golden.extend([0, 8]);
        golden.extend(b"3e5c9b38");
        golden.extend([3, 8]);
        golden.extend(b"c0532c72");
        golden.extend([1, b'x']);
        let r = Report::decode(&golden).unwrap();
        let rev = |number, digest: &str| skerry_core::spec::Revision {
            number,
            digest: digest.into(),
        };
        assert_eq!(
            r,
            Report {
                schema: 2,
                wall_ms: 1,
                body: ReportBody::Event(Event::DeploymentRolledBack {
                    service: "web".into(),
                    from: rev(0, "3e5c9b38"),
                    to: rev(3, "c0532c72"),
                    reason: "x".into(),
                }),
            }
        );
        assert_eq!(r.encode(), golden);
        assert!(r
            .line()
            .ends_with("service web: rolled back from revision 3e5c9b38 to 3 (c0532c72): x"));
    }

    #[test]
    fn report_line_has_time_and_text() {
        let mut r = Report::event(Event::TaskStopped {
            task: "hello.1".into(),
            reason: "Task stopped by user".into(),
        });
        r.wall_ms = 0;
        let line = r.line();
        assert!(line.starts_with("1970-01-01T00:00:00.000Z "), "{line}");
        assert!(line.contains("hello.1"), "{line}");
        assert_eq!(r.task().map(|t| t.0.as_str()), Some("hello.1"));
    }
}
