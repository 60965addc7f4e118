//! The standalone supervisor behind `skerry agent`: keeps every task definition in the
//! desired-state directory running, with no network.
//!
//! - desired state: `<desired_dir>/<task-id>.json`, one ECS task definition per file,
//!   re-read every tick and on SIGHUP. A file that does not parse is reported and
//!   changes nothing: what runs keeps running.
//! - crash-only: on start the supervisor adopts the tasks recorded in the state
//!   directory whose containers still run (their monitors outlive the agent) and
//!   restarts nothing that is healthy.
//! - an essential container's exit stops its task; the task is started again after
//!   `restart_backoff_secs` (the full ECS supervisor with restart policies, health
//!   checks and services replaces this loop; see docs/design.md).
//! - SIGTERM/SIGINT end the agent and leave the workloads running (systemd's
//!   `KillMode=process`): a restarted agent adopts them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use skerry_core::spec::{validate_name, TaskDefinition};

use crate::cli::run::{block_stop_signals, load_task_definition};
use crate::cli::Context;
use crate::images::ImageStore;
use crate::notify::Notifier;
use crate::runtime::{record, ContainerState, Runtime};
use crate::task::{list_tasks, start_task, stop_task, task_states, Owner, TaskOutcome, TaskRecord};

/// How often the supervisor looks at desired and observed state.
const TICK: Duration = Duration::from_millis(250);

#[derive(Clone)]
struct Desired {
    definition: TaskDefinition,
    digest: String,
}

/// The supervisor's memory between ticks (none of it needs to survive a crash).
struct Supervisor {
    runtime: Runtime,
    images: ImageStore,
    /// Earliest time each task may be started again after it stopped or failed.
    not_before: HashMap<String, Instant>,
    /// Last reported problem per desired file, so a bad file is logged once per change.
    reported: HashMap<String, String>,
    /// Last definition of each desired file that parsed: a file that later turns bad
    /// keeps its task running (and restartable) on the last good definition.
    last_good: HashMap<String, Desired>,
    backoff: Duration,
}

/// Runs the agent until SIGTERM/SIGINT. Returns the exit code.
pub fn agent_main(ctx: &Context) -> anyhow::Result<i32> {
    if !ctx.config.is_standalone() {
        anyhow::bail!("mqtt: broker sync is not available in this build yet");
    }
    let desired_dir = ctx.config.desired_dir();
    std::fs::create_dir_all(&desired_dir)
        .with_context(|| format!("creating {}", desired_dir.display()))?;
    let signals = block_stop_signals()?;
    let notifier = Notifier::from_env().with_watchdog(ctx.config.watchdog);
    let mut sup = Supervisor {
        runtime: ctx.runtime()?,
        images: ctx.images()?,
        not_before: HashMap::new(),
        reported: HashMap::new(),
        last_good: HashMap::new(),
        backoff: Duration::from_secs(ctx.config.restart_backoff_secs),
    };
    tracing::info!(state_dir = %ctx.layout.root().display(), desired_dir = %desired_dir.display(), "agent starting (standalone)");
    let started = Instant::now();
    let summary = sup.tick(ctx, &desired_dir);
    tracing::info!(adopt_ms = started.elapsed().as_millis() as u64, %summary, "state loaded, tasks adopted");
    if let Err(e) = notifier.ready(&summary) {
        tracing::warn!(error = %e, "sd_notify READY failed");
    }
    let mut last_ping = Instant::now();
    loop {
        match signals.read_signal() {
            Ok(Some(info)) if info.ssi_signo == nix::sys::signal::Signal::SIGHUP as u32 => {
                tracing::info!("SIGHUP: re-reading desired state");
            }
            Ok(Some(info)) => {
                tracing::info!(
                    signal = info.ssi_signo,
                    "agent stopping; workloads keep running"
                );
                let _ = notifier.stopping();
                return Ok(0);
            }
            _ => {}
        }
        let summary = sup.tick(ctx, &desired_dir);
        let _ = notifier.status(&summary);
        if let Some(period) = notifier.watchdog_period() {
            if last_ping.elapsed() >= period {
                let _ = notifier.ping();
                last_ping = Instant::now();
            }
        }
        std::thread::sleep(TICK);
    }
}

impl Supervisor {
    /// One pass: read desired state, compare with the tasks on disk, act. Returns a
    /// one-line summary for systemd's STATUS.
    fn tick(&mut self, ctx: &Context, desired_dir: &Path) -> String {
        let desired = self.read_desired(ctx, desired_dir);
        let mut running = 0usize;
        // Tasks the agent owns but that are no longer desired: stop and delete.
        for id in list_tasks(&ctx.layout) {
            let rec = match TaskRecord::load(&ctx.layout, &id) {
                Ok(Some(r)) => r,
                _ => continue,
            };
            if !matches!(rec.owner, Owner::Agent { .. }) {
                continue;
            }
            match desired.get(&id) {
                None => {
                    tracing::info!(task = %id, "no longer desired: stopping");
                    self.stop_and_remove(&rec);
                }
                Some(Some(d)) if d.digest != rec.source_digest => {
                    tracing::info!(task = %id, "task definition changed: replacing");
                    self.stop_and_remove(&rec);
                }
                _ => {
                    if self.check_running(&rec) {
                        running += 1;
                    }
                }
            }
        }
        for (id, d) in &desired {
            let Some(d) = d else { continue };
            if ctx.layout.task(id).exists() {
                continue;
            }
            if self.not_before.get(id).is_some_and(|t| Instant::now() < *t) {
                continue;
            }
            if self.start(ctx, id, d) {
                running += 1;
            }
        }
        format!("standalone: {} desired, {running} running", desired.len())
    }

    /// Checks a task; an essential exit stops it and schedules its restart. Returns
    /// whether it is running.
    fn check_running(&mut self, rec: &TaskRecord) -> bool {
        let mut states = task_states(&self.runtime, rec);
        if states.iter().any(|(_, s)| *s == ContainerState::Lost) {
            for (name, _) in states.iter().filter(|(_, s)| *s == ContainerState::Lost) {
                tracing::warn!(task = %rec.task_id, container = %name, "monitor lost: reaping container");
                if let Err(e) = self.runtime.reap(&rec.task_id, name) {
                    tracing::error!(task = %rec.task_id, container = %name, error = %e, "reap failed");
                }
            }
            states = task_states(&self.runtime, rec);
        }
        let outcome = TaskOutcome::of(&rec.definition, &states);
        if outcome == TaskOutcome::Running {
            return true;
        }
        let reason = outcome.stopped_reason().unwrap_or_default();
        tracing::warn!(task = %rec.task_id, %reason, backoff_s = self.backoff.as_secs(), "task stopped; restarting after backoff");
        self.stop_and_remove(rec);
        self.not_before
            .insert(rec.task_id.clone(), Instant::now() + self.backoff);
        false
    }

    fn start(&mut self, ctx: &Context, id: &str, d: &Desired) -> bool {
        let rec = TaskRecord {
            task_id: id.to_string(),
            definition: d.definition.clone(),
            source_digest: d.digest.clone(),
            created_at_ms: record::now_ms(),
            owner: Owner::Agent {
                source: format!("{}/{id}.json", ctx.config.desired_dir().display()),
            },
        };
        if let Err(e) = rec.save(&ctx.layout) {
            tracing::error!(task = %id, error = %e, "saving task record failed");
            return false;
        }
        match start_task(&self.runtime, &self.images, &rec) {
            Ok(()) => {
                tracing::info!(task = %id, "task started");
                true
            }
            Err(e) => {
                tracing::error!(task = %id, error = %e, backoff_s = self.backoff.as_secs(), "task failed to start");
                self.stop_and_remove(&rec);
                self.not_before
                    .insert(id.to_string(), Instant::now() + self.backoff);
                false
            }
        }
    }

    fn stop_and_remove(&self, rec: &TaskRecord) {
        stop_task(&self.runtime, rec);
        if let Err(e) = self.runtime.remove_task(&self.images, &rec.task_id) {
            tracing::error!(task = %rec.task_id, error = %e, "removing task failed");
        }
    }

    /// Desired tasks by id; for a file that does not parse, its last good definition,
    /// or `None` when there is none (what runs under that id is kept as it is).
    fn read_desired(&mut self, ctx: &Context, dir: &Path) -> BTreeMap<String, Option<Desired>> {
        let mut out = BTreeMap::new();
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            seen.push(id.clone());
            let parsed = validate_name("task id (file name)", &id)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|()| load_task_definition(ctx, &path));
            match parsed {
                Ok((definition, digest)) => {
                    self.reported.remove(&id);
                    let d = Desired { definition, digest };
                    self.last_good.insert(id.clone(), d.clone());
                    out.insert(id, Some(d));
                }
                Err(msg) => {
                    if self.reported.get(&id) != Some(&msg) {
                        tracing::error!(file = %path.display(), error = %msg, "desired task definition refused; keeping what runs");
                        self.reported.insert(id.clone(), msg);
                    }
                    let last = self.last_good.get(&id).cloned();
                    out.insert(id, last);
                }
            }
        }
        self.reported.retain(|id, _| seen.contains(id));
        self.last_good.retain(|id, _| seen.contains(id));
        out
    }
}
