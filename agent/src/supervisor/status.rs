//! What the supervisor shows: the one-line systemd `STATUS=` and `status.json` (tasks,
//! containers with state, pid, exit code, ECS health status and restart count;
//! services with their deployment). Derived from the reconciler's records only.
//!
//! ```text
//! {"tasks": {"<id>": {"owner": "standalone"|"service:<name>", "family", "revision",
//!    "revision_id", "digest", "phase": "Active"|"Stopping"|"Stopped"|"Deleted",
//!    "stopped_reason",
//!    "containers": {"<name>": {"state": "PENDING"|"CREATED"|"RUNNING"|"EXITED",
//!       "pid", "exit_code", "exit_reason": "Exited"|"OutOfMemory"|"Killed"|"Error"|"Lost",
//!       "health": "UNKNOWN"|"HEALTHY"|"UNHEALTHY", "restart_count",
//!       "network_bindings": [{"bindIP", "hostPort", "containerPort", "protocol"}]}}}},
//!  "services": {"<name>": {"desired_count", "revision", "revision_id",
//!    "stable_revision", "stable_revision_id", "stability_window_secs",
//!    "deployment": {"revision", "revision_id", "failures", "tripped", "rolled_back",
//!       "completed"}}}}
//! ```
//!
//! `revision` is the ECS number (0 when the definition has none); `revision_id` is
//! how events name it (the number and the content digest's first 8 hex digits, or
//! the digest alone); `digest` is the whole sha256 of the definition.
//! `stability_window_secs` is the window a deployment of the service must serve for
//! (with the default 5 s health-check grace; a test time scale stretches the real one).

use serde_json::{json, Map, Value};
use skerry_core::reconcile::{
    Config, ContainerState, Desired, HealthStatus, Observed, Owner, Snapshot, TaskPhase,
};

/// The `status.json` document.
pub fn view(snap: &Snapshot, desired: &Desired) -> Value {
    let mut tasks = Map::new();
    for (id, t) in &snap.observed.tasks {
        let mut containers = Map::new();
        for c in &t.containers {
            let (state, pid, code, reason) = match &c.state {
                ContainerState::Pending => ("PENDING", None, None, None),
                ContainerState::Created => ("CREATED", None, None, None),
                ContainerState::Running { pid, .. } => ("RUNNING", Some(*pid), None, None),
                ContainerState::Exited { code, reason, .. } => {
                    ("EXITED", None, Some(*code), Some(format!("{reason:?}")))
                }
            };
            let health = match c.health.status {
                HealthStatus::Unknown => "UNKNOWN",
                HealthStatus::Healthy => "HEALTHY",
                HealthStatus::Unhealthy => "UNHEALTHY",
            };
            containers.insert(
                c.name.clone(),
                json!({"state": state, "pid": pid, "exit_code": code, "exit_reason": reason,
                       "health": health, "restart_count": c.restart_count}),
            );
        }
        let owner = match &t.owner {
            Owner::Standalone => "standalone".to_string(),
            Owner::Service(s) => format!("service:{s}"),
        };
        let digest = t.definition.digest();
        let revision_id = t.definition.revision_id().to_string();
        tasks.insert(
            id.0.clone(),
            json!({"owner": owner, "family": t.definition.family, "revision": t.definition.revision,
                   "revision_id": revision_id, "digest": digest,
                   "phase": format!("{:?}", t.phase), "stopped_reason": t.stopped_reason,
                   "failed": t.failed, "containers": containers}),
        );
    }
    let mut services = Map::new();
    for (name, spec) in &desired.services {
        let st = snap.services.get(name);
        let stable = st.and_then(|s| s.stable.as_ref());
        let window = spec
            .deployment
            .stability_window(&spec.task_definition, Config::default().grace);
        services.insert(
            name.clone(),
            json!({"desired_count": spec.desired_count,
                   "revision": spec.task_definition.revision,
                   "revision_id": spec.task_definition.revision_id().to_string(),
                   "stable_revision": stable.map(|d| d.revision),
                   "stable_revision_id": stable.map(|d| d.revision_id().to_string()),
                   "stability_window_secs": window.as_millis() as f64 / 1000.0,
                   "deployment": st.and_then(|s| s.deployment.as_ref()).map(|d| json!({
                       "revision": d.definition.revision,
                       "revision_id": d.definition.revision_id().to_string(),
                       "failures": d.failures,
                       "tripped": d.tripped, "rolled_back": d.rolled_back, "completed": d.completed}))}),
        );
    }
    json!({"tasks": tasks, "services": services})
}

/// Adds each bridged container's published ports (ECS `networkBindings`, empty
/// for host and none networking) from the tasks' `network.json`.
pub fn add_network_bindings(view: &mut Value, tasks_dir: &std::path::Path) {
    let Some(tasks) = view.get_mut("tasks").and_then(Value::as_object_mut) else {
        return;
    };
    for (id, t) in tasks.iter_mut() {
        let net = crate::net::tasknet::TaskNet::load(&tasks_dir.join(id))
            .ok()
            .flatten();
        let Some(containers) = t.get_mut("containers").and_then(Value::as_object_mut) else {
            continue;
        };
        for (name, c) in containers.iter_mut() {
            let bindings: Vec<Value> = net
                .as_ref()
                .and_then(|n| n.container(name))
                .map(|cn| {
                    cn.bindings
                        .iter()
                        .map(|b| {
                            json!({"bindIP": b.host_ip.to_string(), "hostPort": b.host_port,
                                        "containerPort": b.container_port, "protocol": b.protocol})
                        })
                        .collect()
                })
                .unwrap_or_default();
            c["network_bindings"] = Value::Array(bindings);
        }
    }
}

/// `STATUS=` text: task and container counts.
pub fn summary(observed: &Observed, desired: &Desired, busy: usize) -> String {
    let active = observed
        .tasks
        .values()
        .filter(|t| t.phase == TaskPhase::Active)
        .count();
    let running = observed
        .tasks
        .values()
        .flat_map(|t| &t.containers)
        .filter(|c| c.is_running())
        .count();
    format!(
        "standalone: {} tasks ({active} active), {running} containers running, {} services, {busy} operations in flight",
        observed.tasks.len(),
        desired.services.len()
    )
}
