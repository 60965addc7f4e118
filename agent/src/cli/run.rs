//! `skerry run TASKDEF.json`: runs a task in the foreground, prefixing container output
//! with the container name, until an essential container exits (exit code: that
//! container's) or SIGINT/SIGTERM (graceful stop). Cleans up unless --keep. The task
//! runs on the agent's reconciler ([`crate::supervisor::foreground`]): healthCheck,
//! restartPolicy and dependsOn mean what they mean under the agent.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use skerry_core::spec::{parse_task_definition, validate_name, TaskDefinition};

use super::tail::LogTail;
use super::Context;
use crate::runtime::record;
use crate::signals::block_stop_signals;
use crate::supervisor::foreground::run_task;
use crate::task::{new_task_id, Owner, TaskRecord};
use crate::taskdef::read_task_definition_text;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// ECS task definition JSON (RegisterTaskDefinition input or describe-task-definition output).
    pub task_definition: PathBuf,
    /// Task id (default: <family>-<random hex>).
    #[arg(long)]
    pub name: Option<String>,
    /// Keep the task directory (records and logs) after the task ends.
    #[arg(long)]
    pub keep: bool,
}

/// Reads and checks a task definition file; `Err` holds the message for the user.
pub fn load_task_definition(
    ctx: &Context,
    path: &std::path::Path,
) -> Result<(TaskDefinition, String), String> {
    let text = read_task_definition_text(path)?;
    let def = parse_task_definition(&text, &ctx.parse_options())
        .map_err(|e| format!("{}: invalid task definition:\n{e}", path.display()))?;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
    Ok((def, digest))
}

pub fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    let (def, digest) = match load_task_definition(ctx, &args.task_definition) {
        Ok(d) => d,
        Err(msg) => {
            eprintln!("skerry: {msg}");
            return Ok(2);
        }
    };
    let task_id = args.name.unwrap_or_else(|| new_task_id(&def.family));
    if let Err(e) = validate_name("task id", &task_id) {
        eprintln!("skerry: --name: {e}");
        return Ok(2);
    }
    if ctx.layout.task(&task_id).exists() {
        eprintln!("skerry: task {task_id} already exists (see skerry ps; skerry stop {task_id})");
        return Ok(2);
    }
    let images = ctx.images()?;
    for (i, c) in def.containers.iter().enumerate() {
        // An image not in the store yet is pulled first (a few attempts: the user waits).
        match images.resolve(&c.image) {
            Ok(_) => {}
            Err(crate::images::ImageError::NotFound { .. }) => {
                let mut opts = crate::images::pull::PullOptions::from_config(&ctx.config);
                opts.give_up_after = Some(3);
                eprintln!("skerry: pulling {}", c.image);
                if let Err(e) = images.pull(&c.image, &opts) {
                    eprintln!("skerry: containerDefinitions[{i}].image: cannot pull: {e}");
                    return Ok(2);
                }
            }
            Err(e) => {
                eprintln!("skerry: containerDefinitions[{i}].image: {e}");
                return Ok(2);
            }
        }
    }
    let me = std::process::id() as i32;
    let owner = Owner::Run {
        pid: me,
        start_ticks: record::process_start_ticks(me).unwrap_or(0),
    };
    let rec = TaskRecord {
        task_id: task_id.clone(),
        definition: def,
        source_digest: digest,
        created_at_ms: record::now_ms(),
        owner: owner.clone(),
    };
    rec.save(&ctx.layout).context("saving the task record")?;
    let signals = block_stop_signals()?;
    eprintln!("skerry: task {task_id} starting");
    let mut tails: Vec<LogTail> = Vec::new();
    let end = run_task(
        ctx,
        &task_id,
        rec.definition.clone(),
        owner,
        args.keep,
        &signals,
        || print_logs(&rec, ctx, &mut tails),
    )?;
    if end.interrupted {
        eprintln!("skerry: task {task_id} stopped on request");
    } else if let Some(reason) = &end.stopped_reason {
        eprintln!("skerry: task {task_id} stopped: {reason}");
    }
    if args.keep {
        eprintln!(
            "skerry: task {task_id} kept in {}",
            ctx.layout.task(&task_id).display()
        );
    }
    Ok(end.code)
}

fn print_logs(rec: &TaskRecord, ctx: &Context, tails: &mut Vec<LogTail>) {
    let names: Vec<&str> = rec
        .definition
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let dirs = names
        .iter()
        .map(|n| ctx.layout.container(&rec.task_id, n).join("logs"));
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    for (i, (name, dir)) in names.iter().zip(dirs).enumerate() {
        if tails.len() <= i {
            tails.push(LogTail::new(&dir, true));
        }
        let lines = tails[i].poll();
        for l in lines {
            let text = format!("{name:<width$} | {}\n", l.text);
            if l.stream == "stderr" {
                let _ = stderr.lock().write_all(text.as_bytes());
            } else {
                let _ = stdout.lock().write_all(text.as_bytes());
            }
        }
    }
}
