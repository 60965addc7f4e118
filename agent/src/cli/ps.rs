//! `skerry ps`: tasks and their containers, from the state directory.

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
    if !args.json {
        println!(
            "{:<28} {:<16} {:<10} {:>8} {:>5}  IMAGE",
            "TASK", "CONTAINER", "STATE", "PID", "EXIT"
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
                ContainerState::NotStarted => ("pending".to_string(), String::new(), String::new()),
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
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"task": id, "container": name, "state": state, "pid": pid, "exit_code": exit, "image": image})
                );
            } else {
                println!("{id:<28} {name:<16} {state:<10} {pid:>8} {exit:>5}  {image}");
            }
        }
    }
    Ok(0)
}
