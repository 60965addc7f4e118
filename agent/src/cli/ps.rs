//! `skerry ps`: tasks and their containers, from the state directory, with the ECS
//! health status the agent's supervisor last recorded (`supervisor/status.json`).

use super::Context;
use crate::runtime::ContainerState;
use crate::task::{list_tasks, task_states, TaskRecord};

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn ps(ctx: &Context, args: PsArgs) -> anyhow::Result<i32> {
    let runtime = ctx.runtime()?;
    let images = ctx.images().ok();
    let status = supervisor_status(ctx);
    if !args.json {
        println!(
            "{:<28} {:<16} {:<12} {:>8} {:>5}  {:<9}  IMAGE",
            "TASK", "CONTAINER", "STATE", "PID", "EXIT", "HEALTH"
        );
    }
    for id in list_tasks(&ctx.layout) {
        let rec = match TaskRecord::load(&ctx.layout, &id) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("skerry: task {id}: {e}");
                continue;
            }
        };
        for (name, st) in task_states(&runtime, &rec) {
            let image = rec
                .definition
                .container(&name)
                .map(|c| c.image.clone())
                .unwrap_or_default();
            let (state, pid, exit) = match &st {
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
                    (
                        pulling.unwrap_or_else(|| "pending".to_string()),
                        String::new(),
                        String::new(),
                    )
                }
                ContainerState::Running { pid, .. } => {
                    ("running".to_string(), pid.to_string(), String::new())
                }
                ContainerState::Exited(e) => (
                    format!("{:?}", e.reason).to_lowercase(),
                    String::new(),
                    e.exit_code.to_string(),
                ),
                ContainerState::Lost => ("lost".to_string(), String::new(), String::new()),
            };
            let health = status["tasks"][&id]["containers"][&name]["health"]
                .as_str()
                .unwrap_or("-")
                .to_string();
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"task": id, "container": name, "state": state, "pid": pid,
                                       "exit_code": exit, "health": health, "image": image})
                );
            } else {
                println!(
                    "{id:<28} {name:<16} {state:<12} {pid:>8} {exit:>5}  {health:<9}  {image}"
                );
            }
        }
    }
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
