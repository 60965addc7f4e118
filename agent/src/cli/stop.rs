//! `skerry stop TASK`: stops every container (dependents first, each within its
//! stopTimeout) and deletes the task: cgroups, libcontainer state, rootfs, records.
//! A task owned by a live `skerry run` is left for that process to clean up.

use std::time::{Duration, Instant};

use super::Context;
use crate::task::{stop_task, TaskRecord};

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Task id (see skerry ps).
    pub task: String,
}

pub fn stop(ctx: &Context, args: StopArgs) -> anyhow::Result<i32> {
    let Some(rec) = TaskRecord::load(&ctx.layout, &args.task)? else {
        eprintln!("skerry: no task {} (see skerry ps)", args.task);
        return Ok(2);
    };
    let runtime = ctx.runtime()?;
    stop_task(&runtime, &rec);
    if rec.owner_alive() {
        // The foreground `skerry run` notices and removes the task itself.
        let deadline = Instant::now() + Duration::from_secs(30);
        while ctx.layout.task(&args.task).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !ctx.layout.task(&args.task).exists() {
            println!("{}", args.task);
            return Ok(0);
        }
    }
    runtime.remove_task(&ctx.images()?, &args.task)?;
    println!("{}", args.task);
    Ok(0)
}
