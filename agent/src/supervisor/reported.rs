//! The reported state the link publishes (retained): built from the reconciler's
//! records and the fleet documents only, so it says what runs, not what was asked.

use skerry_core::proto::reported::{ContainerReport, ReportedState, TaskReport};
use skerry_core::reconcile::{ContainerState, HealthStatus, Owner, Snapshot, TaskPhase};

use super::fleet::Fleet;
use crate::report::PullProgress;

/// The last progress of each container whose image is being pulled.
pub type Pulls = std::collections::BTreeMap<(skerry_core::reconcile::TaskId, String), PullProgress>;

fn health(h: HealthStatus) -> &'static str {
    match h {
        HealthStatus::Unknown => "UNKNOWN",
        HealthStatus::Healthy => "HEALTHY",
        HealthStatus::Unhealthy => "UNHEALTHY",
    }
}

/// The whole reported state.
pub fn build(
    snap: &Snapshot,
    fleet: &Fleet,
    pulls: &Pulls,
    ports: &super::ports::Ports,
    dropped: u64,
    last_error: Option<String>,
    sealing_key: Option<[u8; 32]>,
) -> ReportedState {
    let mut tasks = Vec::new();
    for (id, t) in &snap.observed.tasks {
        if t.phase == TaskPhase::Deleted && matches!(t.owner, Owner::Service(_)) {
            continue;
        }
        let service = match &t.owner {
            Owner::Service(s) => Some(s.clone()),
            Owner::Standalone => None,
        };
        let name = service.clone().unwrap_or_else(|| id.0.clone());
        let status = match t.phase {
            TaskPhase::Active if t.containers.iter().any(|c| c.is_running()) => "RUNNING",
            TaskPhase::Active => "PENDING",
            TaskPhase::Stopping => "STOPPING",
            TaskPhase::Stopped | TaskPhase::Deleted => "STOPPED",
        };
        let containers = t
            .containers
            .iter()
            .map(|c| {
                let (status, exit_code) = match &c.state {
                    ContainerState::Pending | ContainerState::Created => ("PENDING", None),
                    ContainerState::Running { .. } => ("RUNNING", None),
                    ContainerState::Exited { code, .. } => ("STOPPED", Some(*code)),
                };
                let checked = t
                    .container(&c.name)
                    .is_some_and(|(d, _)| d.health_check.is_some());
                ContainerReport {
                    name: c.name.clone(),
                    status: status.into(),
                    health: checked.then(|| health(c.health.status).into()),
                    exit_code,
                    restarts: c.restart_count,
                    host_ports: ports
                        .of(id, &c.name)
                        .into_iter()
                        .map(|b| (b.container_port, b.host_port, b.protocol))
                        .collect(),
                    pulling: pulls
                        .get(&(id.clone(), c.name.clone()))
                        .map(|p| (p.bytes, p.total)),
                }
            })
            .collect();
        tasks.push(TaskReport {
            id: id.0.clone(),
            service,
            source: fleet.source_of(&name),
            revision: format!("{}:{}", t.definition.family, t.definition.revision_id()),
            status: status.into(),
            health: None,
            stopped_reason: t.stopped_reason.clone(),
            containers,
        });
    }
    ReportedState {
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        documents: fleet.documents(),
        tasks,
        reports_dropped: dropped,
        last_error,
        last_rejection: fleet.last_rejection.clone(),
        sealing_key,
    }
}
