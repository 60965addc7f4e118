//! The supervisor behind `skerry agent`: ECS task and service supervision on the
//! device, with no network, driven by the pure reconciler
//! ([`skerry_core::reconcile`]), and crash-only.
//!
//! One main loop (this file, [`Supervisor::turn`]) owns the [`Reconciler`]. Each turn
//! (at most [`TICK`] apart, sooner when a worker answers or the reconciler's wakeup
//! comes): read desired state ([`desired`]), watch container exits ([`facts`]), take
//! worker answers, `reconcile`, persist ([`state`]) *before* carrying out the actions
//! ([`executor`], worker threads), then tell systemd (`STATUS=`, `WATCHDOG=1`). The
//! turn's events go to the outbox ([`crate::store::outbox`]) and are synced before
//! the state is saved: a crash in between repeats an event, never loses one.
//!
//! Start (crash-only): take the state directory's lock ([`single`]: one agent per
//! directory), load the state (checksummed; previous copy if torn), resume
//! the clock ([`clock`]), re-adopt every container whose monitor lives without
//! touching it, observe exits that happened while the agent was down, reap lost
//! containers, remove leftovers ([`cleanup`]), then `READY=1`. SIGHUP re-reads the
//! desired directory; SIGTERM/SIGINT end the agent and leave workloads running.
//!
//! Test hooks (environment): `SKERRY_TEST_WEDGE_AFTER_TICKS=N` stops the loop after N
//! turns (the process stays, watchdog pings stop); `SKERRY_TEST_TIME_SCALE` (see
//! [`clock`]).

mod cleanup;
mod clock;
pub(crate) mod desired;
mod executor;
mod facts;
mod fleet;
pub mod foreground;
mod link;
mod ops;
mod ports;
mod prune;
mod reported;
mod single;
mod state;
mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant as StdInstant};

use embassy_time::{Duration as EDuration, Instant};
use sha2::{Digest, Sha256};
use skerry_core::reconcile::{Action, Config, Desired, OpKind, Reconciler, TaskId};

use crate::context::Context;
use crate::notify::Notifier;
use crate::report::{PullProgress, Report};
use crate::signals::block_stop_signals;
use crate::store::outbox::Outbox;
use clock::Clock;
use desired::DesiredDir;
use executor::{Executor, Outcome};
use state::{Persisted, StateFiles};

/// Longest time between two turns of the loop (the exit watch period).
pub const TICK: Duration = Duration::from_millis(250);

/// Errors of the supervisor's own files.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The state file is malformed.
    #[error("state file: {0}")]
    State(String),
}

/// The loop's state.
pub struct Supervisor {
    rec: Reconciler,
    clock: Clock,
    exec: Executor,
    rx: Receiver<Outcome>,
    files: StateFiles,
    dir: DesiredDir,
    desired: Desired,
    exits_seen: BTreeMap<String, u64>,
    saved_digest: Vec<u8>,
    wakeup: Option<Instant>,
    force_read: bool,
    /// `None` when it could not be opened: the agent supervises on without reports.
    outbox: Option<Outbox>,
    /// The last status write failed: write it again even if nothing changed.
    status_stale: bool,
    state_failing: Failing,
    status_failing: Failing,
    /// The broker link and fleet documents; `None` standalone.
    link: Option<link::FleetLink>,
    /// Sends wake-ups into the loop (the sync thread's messages).
    waker: mpsc::Sender<Outcome>,
    /// Progress of running pulls, from the executor's workers.
    pull_rx: Receiver<PullProgress>,
    /// Containers waiting for secrets (each kept as a report).
    wait_rx: Receiver<crate::report::SecretsWait>,
    /// The last progress of each container still waiting for its image.
    pulls: BTreeMap<(TaskId, String), PullProgress>,
    /// Prunes unused images now and then.
    pruner: prune::Pruner,
    ports: ports::Ports,
}

/// A write that may fail turn after turn (a full disk): logged when it starts
/// failing and when it works again, not on every turn.
#[derive(Default)]
struct Failing(bool);

impl Failing {
    fn note(&mut self, result: Result<(), SupervisorError>, what: &str) {
        match result {
            Err(e) if !self.0 => {
                tracing::error!(error = %e, "{what}");
                self.0 = true;
            }
            Err(_) => {}
            Ok(()) if self.0 => {
                tracing::info!("{what}: works again");
                self.0 = false;
            }
            Ok(()) => {}
        }
    }
}

/// Runs the agent until SIGTERM/SIGINT. Returns the exit code.
pub fn agent_main(ctx: &Context) -> anyhow::Result<i32> {
    let _lock = single::lock_state_dir(ctx.layout.root())?;
    let desired_dir = ctx.config.desired_dir();
    std::fs::create_dir_all(&desired_dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", desired_dir.display()))?;
    // Before any thread exists: workers inherit the blocked mask, monitors the
    // wake-up socket's name.
    let signals = block_stop_signals()?;
    let wake_socket = bind_wake_socket(ctx);
    let notifier = Notifier::from_env().with_watchdog(ctx.config.watchdog);
    let begun = StdInstant::now();
    let mut sup = Supervisor::start(ctx, desired_dir)?;
    if let Some(sock) = wake_socket {
        sup.listen_for_exits(sock);
    }
    if let Some(m) = &ctx.config.mqtt {
        sup.connect(ctx, m)?;
    }
    start_telemetry(ctx);
    let summary = sup.summary();
    tracing::info!(
        adopt_ms = begun.elapsed().as_millis() as u64,
        %summary,
        "state loaded, tasks adopted"
    );
    if let Err(e) = notifier.ready(&summary) {
        tracing::warn!(error = %e, "sd_notify READY failed");
    }
    let wedge_after: Option<u64> = std::env::var("SKERRY_TEST_WEDGE_AFTER_TICKS")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut turns = 0u64;
    let mut last_ping: Option<StdInstant> = None;
    loop {
        turns += 1;
        if wedge_after.is_some_and(|n| turns > n) {
            tracing::warn!(turns, "test hook: main loop wedged");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        match signals.read_signal() {
            Ok(Some(info)) if info.ssi_signo == nix::sys::signal::Signal::SIGHUP as u32 => {
                tracing::info!("SIGHUP: re-reading desired state");
                sup.force_read = true;
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
        sup.turn();
        let _ = notifier.status(&sup.summary());
        if let Some(period) = notifier.watchdog_period() {
            if last_ping.is_none_or(|t| t.elapsed() >= period) {
                let _ = notifier.ping();
                last_ping = Some(StdInstant::now());
            }
        }
        sup.wait();
    }
}

/// Telemetry's own thread (off the loop's path; its failure is logged, not fatal).
fn start_telemetry(ctx: &Context) {
    let t = &ctx.config.telemetry;
    if !t.enabled {
        return;
    }
    let link = ctx.config.mqtt.as_ref().and_then(|m| {
        crate::sync::LinkSetup::resolve(m, ctx.layout.root(), ctx.layout.outbox())
            .map_err(|e| tracing::warn!(error = %e, "telemetry: local only"))
            .ok()
    });
    if let Err(e) = crate::telemetry::spawn(ctx.layout.clone(), t.clone(), link) {
        tracing::warn!(error = %e, "telemetry not started");
    }
}

/// An answer that carries nothing: it only ends the loop's wait.
fn wake_up() -> Outcome {
    Outcome {
        key: (skerry_core::reconcile::TaskId::from(""), None, "wake"),
        obs: None,
        run: None,
    }
}

/// Binds `<state>/supervisor/wake.sock`, where monitors say a container ended, and
/// names it in the environment monitors inherit. `None` (polling only) if it fails.
fn bind_wake_socket(ctx: &Context) -> Option<std::os::unix::net::UnixDatagram> {
    let dir = ctx.layout.root().join("supervisor");
    let path = dir.join("wake.sock");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::remove_file(&path);
    match std::os::unix::net::UnixDatagram::bind(&path) {
        Ok(s) => {
            // Single-threaded here (before the supervisor starts any worker).
            std::env::set_var(crate::runtime::monitor::WAKE_SOCKET_ENV, &path);
            Some(s)
        }
        Err(e) => {
            tracing::warn!(socket = %path.display(), error = %e, "no wake-up socket; exits are found by the watch");
            None
        }
    }
}

impl Supervisor {
    /// Wakes the loop whenever a monitor reports a container's end.
    fn listen_for_exits(&self, sock: std::os::unix::net::UnixDatagram) {
        let waker = self.waker.clone();
        let spawned = std::thread::Builder::new()
            .name("wake".into())
            .spawn(move || {
                let mut buf = [0u8; 16];
                while sock.recv(&mut buf).is_ok() {
                    if waker.send(wake_up()).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no wake-up thread; exits are found by the watch");
        }
    }

    /// Loads the state, re-adopts, cleans up and makes the first decisions (in fleet
    /// mode [`connect`](Self::connect) makes them, once the stored documents are in).
    pub fn start(ctx: &Context, desired_dir: PathBuf) -> anyhow::Result<Self> {
        let runtime = ctx.runtime()?;
        let images = ctx.images()?;
        let files = StateFiles::new(ctx.layout.root());
        let persisted = files.load().unwrap_or_default();
        let had_state = persisted.clock.ticks > 0;
        let clock = Clock::resume(had_state.then_some(&persisted.clock));
        let config = reconciler_config(ctx.config.restart_backoff_secs, clock.scale());
        let mut rec = Reconciler::restore(config, persisted.snapshot);
        let settled = facts::settle_starts(&ctx.layout.tasks(), Duration::from_secs(15));
        let mut exits_seen = persisted.exits_seen;
        let (obs, adopted) = facts::adopt_all(&runtime, rec.observed(), &mut exits_seen);
        let now = clock.now();
        for o in obs {
            rec.observe(o, now);
        }
        let removed = cleanup::remove_leftovers(&runtime, &images, rec.observed());
        tracing::info!(
            adopted,
            removed,
            settled,
            tasks = rec.observed().tasks.len(),
            "re-adoption done"
        );
        let outbox = match Outbox::open(&ctx.layout.outbox(), ctx.config.outbox.limits()) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::error!(error = %e, "outbox unavailable: events will not be kept");
                None
            }
        };
        let (tx, rx) = mpsc::channel();
        let (pull_tx, pull_rx) = mpsc::channel();
        let (wait_tx, wait_rx) = mpsc::channel();
        let waker = tx.clone();
        let owner = crate::task::Owner::Agent {
            source: desired_dir.display().to_string(),
        };
        let mut sup = Self {
            rec,
            clock,
            exec: Executor::new(runtime, images, tx, owner)
                .with_pulls(&ctx.config)
                .with_pull_progress(pull_tx)
                .with_secrets_waits(wait_tx),
            rx,
            wait_rx,
            files,
            dir: DesiredDir::new(desired_dir, ctx.parse_options()),
            desired: persisted.desired,
            exits_seen,
            saved_digest: Vec::new(),
            wakeup: None,
            force_read: true,
            outbox,
            status_stale: false,
            state_failing: Failing::default(),
            status_failing: Failing::default(),
            link: None,
            waker,
            pull_rx,
            pulls: BTreeMap::new(),
            pruner: prune::Pruner::new(
                ctx.config.images.prune_interval_secs,
                ctx.config.images.keep_unused,
            ),
            ports: ports::Ports::new(ctx.layout.tasks()),
        };
        // In fleet mode the first decision waits for the stored fleet documents
        // (`connect`): made from the local directory alone, it would stop every
        // adopted container of the fleet's entries and relaunch it one turn later.
        if ctx.config.mqtt.is_none() {
            sup.turn();
        }
        Ok(sup)
    }

    /// One turn: desired state, exit watch, answers, decisions, persist, act.
    pub fn turn(&mut self) {
        let local = self.dir.read(self.force_read, &self.desired);
        self.force_read = false;
        let mut fleet_events = Vec::new();
        let desired = match self.link.as_mut() {
            Some(l) => l.take_messages(local, self.outbox.as_mut(), &mut fleet_events),
            None => local,
        };
        if desired != self.desired {
            tracing::info!(
                tasks = desired.tasks.len(),
                services = desired.services.len(),
                "desired state changed"
            );
            self.desired = desired;
        }
        self.watch_exits();
        while let Ok(o) = self.rx.try_recv() {
            self.answer(o);
        }
        let now = self.clock.now();
        let decision = self.rec.reconcile(&self.desired, now);
        self.wakeup = decision.next_wakeup;
        if let Some(l) = self.link.as_mut() {
            fleet_events.extend(l.fleet.progress(self.rec.snapshot(), &self.desired));
        }
        let pulled = self.take_pull_progress();
        let published = self.ports.refresh(self.rec.observed());
        self.keep_reports(&decision.actions, fleet_events, pulled, published);
        self.persist();
        if let Some(l) = self.link.as_mut() {
            l.after_turn(
                self.rec.snapshot(),
                self.outbox.as_ref(),
                &self.pulls,
                &self.ports,
            );
        }
        for action in decision.actions {
            match &action {
                Action::Report(ev) => crate::logging::event(ev),
                a => tracing::debug!(action = ?a, "action"),
            }
            self.exec.dispatch(action, self.rec.observed());
        }
        self.pruner
            .maybe_run(&self.exec.images, &self.desired, self.rec.observed());
    }

    /// Sleeps until a worker answers, the reconciler's wakeup, or one tick.
    pub fn wait(&mut self) {
        let mut timeout = TICK;
        if let Some(at) = self.wakeup {
            timeout = timeout.min(self.clock.real_until(at));
        }
        match self.rx.recv_timeout(timeout) {
            Ok(o) => self.answer(o),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
    }

    fn answer(&mut self, o: Outcome) {
        let now = self.clock.now();
        facts::take_outcome(&mut self.exec, &mut self.rec, &mut self.exits_seen, o, now);
    }

    /// The pulls' progress since the last turn; keeps the latest of each container
    /// that still waits for its image.
    fn take_pull_progress(&mut self) -> Vec<PullProgress> {
        let fresh: Vec<PullProgress> = self.pull_rx.try_iter().collect();
        for p in &fresh {
            tracing::info!(event = %p, "pull");
            self.pulls
                .insert((p.task.clone(), p.container.clone()), p.clone());
        }
        let observed = self.rec.observed();
        self.pulls.retain(|(task, container), _| {
            observed
                .tasks
                .get(task)
                .and_then(|t| t.container(container))
                .is_some_and(|(_, c)| c.op.is_some_and(|op| op.kind == OpKind::Pull))
        });
        fresh
    }

    /// Appends the decision's events and the pulls' progress to the outbox and makes
    /// them durable.
    fn keep_reports(
        &mut self,
        actions: &[Action],
        fleet: Vec<skerry_core::proto::FleetEvent>,
        pulls: Vec<PullProgress>,
        ports: Vec<crate::report::PortsPublished>,
    ) {
        let Some(outbox) = self.outbox.as_mut() else {
            return;
        };
        let mut appended = false;
        for w in self.wait_rx.try_iter() {
            match outbox.append(&Report::waiting(w).encode()) {
                Ok(_) => appended = true,
                Err(e) => tracing::warn!(error = %e, "secrets wait not kept"),
            }
        }
        for p in pulls {
            match outbox.append(&Report::pull(p).encode()) {
                Ok(_) => appended = true,
                Err(e) => tracing::warn!(error = %e, "pull progress not kept"),
            }
        }
        for p in ports {
            tracing::info!(task = %p.task, container = %p.container, event = %p, "ports published");
            match outbox.append(&Report::ports(p).encode()) {
                Ok(_) => appended = true,
                Err(e) => tracing::warn!(error = %e, "published ports not kept"),
            }
        }
        for ev in fleet {
            tracing::info!(event = %ev, "fleet");
            match outbox.append(&Report::fleet(ev.clone()).encode()) {
                Ok(_) => appended = true,
                Err(e) => tracing::warn!(error = %e, event = %ev, "event not kept"),
            }
        }
        for a in actions {
            if let Action::Report(ev) = a {
                match outbox.append(&Report::event(ev.clone()).encode()) {
                    Ok(_) => appended = true,
                    Err(e) => tracing::warn!(error = %e, event = %ev, "event not kept"),
                }
            }
        }
        if appended {
            if let Err(e) = outbox.sync() {
                tracing::warn!(error = %e, "outbox sync failed");
            }
        }
    }

    fn watch_exits(&mut self) {
        let now = self.clock.now();
        facts::watch_exits(&mut self.exec, &mut self.rec, &mut self.exits_seen, now);
    }

    fn persist(&mut self) {
        let tasks = &self.rec.observed().tasks;
        self.exits_seen.retain(|k, _| {
            k.split_once('/')
                .is_some_and(|(t, _)| tasks.contains_key(&skerry_core::reconcile::TaskId::from(t)))
        });
        let body = serde_json::to_vec(&(self.rec.snapshot(), &self.desired, &self.exits_seen))
            .unwrap_or_default();
        let digest = Sha256::digest(&body).to_vec();
        if digest == self.saved_digest && !self.status_stale {
            return;
        }
        if digest != self.saved_digest {
            let p = Persisted {
                snapshot: self.rec.snapshot().clone(),
                desired: self.desired.clone(),
                exits_seen: self.exits_seen.clone(),
                clock: self.clock.mark(),
            };
            let saved = self.files.save(&p);
            if saved.is_ok() {
                self.saved_digest = digest;
            }
            self.state_failing
                .note(saved, "persisting state failed; retrying every turn");
        }
        let mut view = status::view(self.rec.snapshot(), &self.desired);
        status::add_network_bindings(&mut view, &self.exec.runtime.layout().tasks());
        let saved = self.files.save_status(&view);
        self.status_stale = saved.is_err();
        self.status_failing.note(saved, "writing status failed");
    }

    /// Starts the broker link (fleet mode): loads the stored documents, then the link.
    fn connect(&mut self, ctx: &Context, m: &crate::config::MqttConfig) -> anyhow::Result<()> {
        let (acked, durable) = self
            .outbox
            .as_ref()
            .map_or((0, 0), |o| (o.acked(), o.durable_seq()));
        let waker = self.waker.clone();
        let wake = Box::new(move || {
            let _ = waker.send(wake_up());
        });
        let l = link::FleetLink::start(ctx, m, acked, durable, wake)?;
        tracing::info!(device = %l.device(), broker = %m.broker, "fleet mode");
        self.link = Some(l);
        self.force_read = true;
        self.turn();
        Ok(())
    }

    /// One line for systemd's STATUS.
    pub fn summary(&self) -> String {
        status::summary(self.rec.observed(), &self.desired, self.exec.busy())
    }
}

/// The reconciler's knobs: ECS defaults, the config's backoff floor; with a test time
/// scale, the executor-facing timeouts stay in real time.
pub(crate) fn reconciler_config(backoff_secs: u64, scale: u64) -> Config {
    let real = |d: EDuration| EDuration::from_ticks(d.as_ticks().saturating_mul(scale));
    let d = Config::default();
    Config {
        backoff_floor: EDuration::from_secs(backoff_secs.max(1)),
        pull_timeout: real(d.pull_timeout),
        op_timeout: real(d.op_timeout),
        grace: real(d.grace),
        retry_delay: real(d.retry_delay),
        journal: crate::runtime::journal::present(),
        ..d
    }
}
