//! `skerry events [--task T] [--service S] [-n N] [-f]`: what the agent decided and
//! saw, oldest first, from the outbox: task launches and stops with their ECS
//! `stoppedReason`, exits, restarts, health changes, deployments, rollbacks, backoff
//! and crash loops. Read-only: it can run while the agent appends.

use std::time::Duration;

use super::Context;
use crate::report::Report;
use crate::store::outbox::read_outbox;

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Only events of this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only events of this service and its tasks.
    #[arg(long)]
    pub service: Option<String>,
    /// Only the last N events.
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// Keep printing new events until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
}

impl EventsArgs {
    fn wants(&self, r: &Report) -> bool {
        let task = r.task().map(|t| t.0.as_str());
        if self.task.as_deref().is_some_and(|t| task != Some(t)) {
            return false;
        }
        match self.service.as_deref() {
            None => true,
            Some(s) => {
                r.service() == Some(s)
                    || task.is_some_and(|t| t.strip_prefix(s).is_some_and(|r| r.starts_with('.')))
            }
        }
    }
}

pub fn events(ctx: &Context, args: EventsArgs) -> anyhow::Result<i32> {
    let dir = ctx.layout.outbox();
    let mut lines = Vec::new();
    let mut after = 0;
    for e in read_outbox(&dir, 0, usize::MAX)? {
        after = e.seq;
        match Report::decode(&e.payload) {
            Ok(r) if args.wants(&r) => lines.push(r.line()),
            Ok(_) => {}
            Err(err) => eprintln!("skerry: report {}: {err}", e.seq),
        }
    }
    let skip = args.last.map_or(0, |n| lines.len().saturating_sub(n));
    for l in &lines[skip..] {
        println!("{l}");
    }
    if !args.follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(Duration::from_millis(250));
        for e in read_outbox(&dir, after, 1000)? {
            after = e.seq;
            if let Ok(r) = Report::decode(&e.payload) {
                if args.wants(&r) {
                    println!("{}", r.line());
                }
            }
        }
    }
}
