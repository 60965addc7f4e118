//! `skerry logs TASK [CONTAINER] [-f]`: prints container logs (all rotated files,
//! oldest first), prefixed with the container name when several are shown.

use std::time::Duration;

use super::tail::{LogLine, LogTail};
use super::Context;
use crate::task::TaskRecord;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Task id (see skerry ps).
    pub task: String,
    /// Only this container.
    pub container: Option<String>,
    /// Keep printing new lines until the task is gone or Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
    /// Show each line's timestamp and stream.
    #[arg(short, long)]
    pub timestamps: bool,
}

pub fn logs(ctx: &Context, args: LogsArgs) -> anyhow::Result<i32> {
    let Some(rec) = TaskRecord::load(&ctx.layout, &args.task)? else {
        eprintln!("skerry: no task {} (see skerry ps)", args.task);
        return Ok(2);
    };
    let names: Vec<String> = match &args.container {
        Some(n) if rec.definition.container(n).is_none() => {
            eprintln!("skerry: task {} has no container {n}", args.task);
            return Ok(2);
        }
        Some(n) => vec![n.clone()],
        None => rec
            .definition
            .containers
            .iter()
            .map(|c| c.name.clone())
            .collect(),
    };
    let prefix = names.len() > 1;
    let dirs: Vec<_> = names
        .iter()
        .map(|n| ctx.layout.container(&args.task, n).join("logs"))
        .collect();
    let print = |name: &str, l: &LogLine| {
        let p = if prefix {
            format!("{name} | ")
        } else {
            String::new()
        };
        if args.timestamps {
            println!("{p}{} {} {}", l.timestamp, l.stream, l.text);
        } else {
            println!("{p}{}", l.text);
        }
    };
    if !args.follow {
        for (name, dir) in names.iter().zip(&dirs) {
            for l in LogTail::read_all(dir) {
                print(name, &l);
            }
        }
        return Ok(0);
    }
    let mut tails: Vec<LogTail> = dirs.iter().map(|d| LogTail::new(d, true)).collect();
    let task_dir = ctx.layout.task(&args.task);
    loop {
        for (name, tail) in names.iter().zip(tails.iter_mut()) {
            for l in tail.poll() {
                print(name, &l);
            }
        }
        if !task_dir.exists() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
