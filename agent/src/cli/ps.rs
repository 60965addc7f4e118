//! `skerry ps`: tasks and their containers, from the state directory, with the ECS
//! health status the agent's supervisor last recorded (`supervisor/status.json`) and
//! each task's revision as events name it (ECS number and/or content digest prefix).
//! Bridged containers show their published ports (`PORTS`, ECS `networkBindings`).
//! Output follows [`super::output`]: a table, or `--output json`.

use serde::Serialize;

use super::output::{age_since, print_rows, rfc3339, Column, OutputArgs, Row};
use super::Context;
use crate::runtime::ContainerState;
use crate::task::{list_tasks, task_states, TaskRecord};

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One container of one task.
#[derive(Debug, Serialize)]
struct PsRow {
    task: String,
    /// The revision as events name it (ECS number and/or content digest prefix).
    revision: String,
    container: String,
    /// `pending`, `running`, `lost`, or the exit reason (`exited`, `outofmemory`, …).
    state: String,
    pid: Option<i32>,
    exit_code: Option<i32>,
    /// ECS health status, or `null` without an agent or a health check.
    health: Option<String>,
    image: String,
    /// Published ports (bridge mode), ECS `networkBindings`.
    network_bindings: Vec<crate::net::tasknet::Binding>,
    /// When the task was created (RFC 3339).
    created: String,
    #[serde(skip)]
    created_ms: u64,
    #[serde(skip)]
    now_ms: u64,
}

impl Row for PsRow {
    const COLUMNS: &'static [Column] = &[
        Column::left("TASK"),
        Column::left("REVISION"),
        Column::left("CONTAINER"),
        Column::left("STATE"),
        Column::right("PID"),
        Column::right("EXIT"),
        Column::left("HEALTH"),
        Column::right("AGE"),
        Column::left("IMAGE"),
        Column::left("PORTS"),
    ];

    fn cells(&self) -> Vec<String> {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
        vec![
            self.task.clone(),
            self.revision.clone(),
            self.container.clone(),
            self.state.clone(),
            or_dash(self.pid.map(|p| p.to_string())),
            or_dash(self.exit_code.map(|c| c.to_string())),
            or_dash(self.health.clone()),
            age_since(self.created_ms, self.now_ms),
            self.image.clone(),
            if self.network_bindings.is_empty() {
                "-".to_string()
            } else {
                self.network_bindings
                    .iter()
                    .map(|b| b.display())
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ]
    }
}

pub fn ps(ctx: &Context, args: PsArgs) -> anyhow::Result<i32> {
    let runtime = ctx.runtime()?;
    let images = ctx.images().ok();
    let status = supervisor_status(ctx);
    let now_ms = crate::runtime::record::now_ms();
    let mut rows = Vec::new();
    for id in list_tasks(&ctx.layout) {
        let rec = match TaskRecord::load(&ctx.layout, &id) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("skerry: task {id}: {e}");
                continue;
            }
        };
        let revision = rec.definition.revision_id().to_string();
        let net = crate::net::tasknet::TaskNet::load(&ctx.layout.task(&id))
            .ok()
            .flatten();
        for (name, st) in task_states(&runtime, &rec) {
            let image = rec
                .definition
                .container(&name)
                .map(|c| c.image.clone())
                .unwrap_or_default();
            let (state, pid, exit_code) = match &st {
                ContainerState::NotStarted => {
                    // A pull under way shows how far it got (`pulling 45%`).
                    let pulling = images
                        .as_ref()
                        .and_then(|s| s.pull_status(&image))
                        .map(|p| {
                            format!(
                                "pulling {}%",
                                (p.bytes * 100).checked_div(p.total).unwrap_or(100)
                            )
                        });
                    (pulling.unwrap_or_else(|| "pending".to_string()), None, None)
                }
                ContainerState::Running { pid, .. } => ("running".to_string(), Some(*pid), None),
                ContainerState::Exited(e) => (
                    format!("{:?}", e.reason).to_lowercase(),
                    None,
                    Some(e.exit_code),
                ),
                ContainerState::Lost => ("lost".to_string(), None, None),
            };
            let health = status["tasks"][&id]["containers"][&name]["health"]
                .as_str()
                .map(str::to_string);
            let network_bindings = net
                .as_ref()
                .and_then(|n| n.container(&name))
                .map(|c| c.bindings.clone())
                .unwrap_or_default();
            rows.push(PsRow {
                task: id.clone(),
                revision: revision.clone(),
                container: name,
                state,
                pid,
                exit_code,
                health,
                network_bindings,
                image,
                created: rfc3339(rec.created_at_ms),
                created_ms: rec.created_at_ms,
                now_ms,
            });
        }
    }
    print_rows(args.output.format(), &rows)?;
    Ok(0)
}

/// The supervisor's status document, or `null` when there is none (no agent yet).
fn supervisor_status(ctx: &Context) -> serde_json::Value {
    const MAX_STATUS_BYTES: u64 = 16 << 20;
    let path = ctx.layout.root().join("supervisor/status.json");
    match std::fs::metadata(&path) {
        Ok(m) if m.len() <= MAX_STATUS_BYTES => std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}
