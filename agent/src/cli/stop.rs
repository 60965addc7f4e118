//! `skerry stop TASK`: stops every container (dependents first, each within its
//! stopTimeout) and deletes the task: cgroups, libcontainer state, rootfs, records.
//! A task owned by a live `skerry run` gets that process SIGTERM instead (its own
//! graceful stop, as Ctrl-C would); only if it does not finish is the task stopped here.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::Context;
use crate::task::{stop_task, Owner, TaskRecord};

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
    if let Owner::Run { pid, .. } = rec.owner {
        if rec.owner_alive() && kill(Pid::from_raw(pid), Signal::SIGTERM).is_ok() {
            // Every container's stopTimeout in turn, plus time to clean up.
            let budget = rec
                .definition
                .containers
                .iter()
                .map(|c| c.stop_timeout)
                .sum::<Duration>()
                + Duration::from_secs(30);
            let deadline = Instant::now() + budget;
            while rec.owner_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let gone = !ctx.layout.task(&args.task).exists();
            if gone || !rec.owner_alive() {
                if !gone {
                    // It stopped the task and kept its files (--keep): delete them too.
                    ctx.runtime()?.remove_task(&ctx.images()?, &args.task)?;
                }
                println!("{}", args.task);
                return Ok(0);
            }
            eprintln!(
                "skerry: skerry run (pid {pid}) did not stop task {} in time: stopping it here",
                args.task
            );
        }
    }
    let runtime = ctx.runtime()?;
    stop_task(&runtime, &rec);
    runtime.remove_task(&ctx.images()?, &args.task)?;
    println!("{}", args.task);
    Ok(0)
}
