//! The executor: carries out the reconciler's actions against the [`Runtime`] and the
//! image store, on worker threads, and sends back one [`Outcome`] per action.
//!
//! Workers only read/write files and fork+exec helpers (`skerry monitor start|reap|
//! exec`); libcontainer never runs in the agent process, so threads are safe here. One
//! operation per (task, container, kind) is in flight at a time: a repeat issued by
//! the reconciler after its timeout is dropped while the first still runs (its answer
//! will come).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use skerry_core::reconcile::{
    Action, CheckOutcome, ExitReason as CoreExit, Observation, Observed, OpKind, TaskId,
};
use skerry_core::spec::{HealthCommand, NamespaceMode, TaskDefinition};

use super::ops::{
    delete_task, exited, failed, save_record, shared_namespaces, start_fresh, started,
};
use crate::config::AgentConfig;
use crate::images::pull::{ensure_image, PullJob, PullSettings};
use crate::images::ImageStore;
use crate::report::SecretsWait;
use crate::runtime::exec::ExecOutcome;
use crate::runtime::{ContainerState, Runtime};
use crate::secrets::{wait_for, SecretStore};
use crate::task::{Owner, TaskRecord};

/// What one worker found.
#[derive(Debug)]
pub struct Outcome {
    pub key: Key,
    pub obs: Option<Observation>,
    /// For an `Exited` observation: the run it ends (`started_at_ms`), for dedup.
    pub run: Option<u64>,
}

/// In-flight identity: task, container (if any), operation.
pub type Key = (TaskId, Option<String>, &'static str);

/// Runs actions on worker threads.
pub struct Executor {
    pub runtime: Runtime,
    pub images: ImageStore,
    tx: Sender<Outcome>,
    in_flight: HashSet<Key>,
    /// Who the task records it writes name as the owner.
    owner: Owner,
    /// Held while a container of a task with `pidMode`/`ipcMode` `task` is (re)started,
    /// so the task's first running container is the one every later one joins.
    shared_ns_start: Arc<Mutex<()>>,
    /// When each lost container's last reap was issued: a reap that keeps failing (a
    /// full disk) is retried every [`REAP_RETRY`], not every turn.
    reaped_at: HashMap<(TaskId, String), std::time::Instant>,
    /// How images are pulled (`[images]`, `[registries]`).
    pulls: PullSettings,
    /// The cancel flag of each running pull, set by `CancelPull`.
    pull_cancels: HashMap<(TaskId, String), Arc<AtomicBool>>,
    /// Where pulls report their progress (the supervisor drains it every turn).
    pull_progress: Option<Sender<crate::report::PullProgress>>,
    /// Where containers waiting for a secret say so (drained like `pull_progress`).
    secrets_waits: Option<Sender<crate::report::SecretsWait>>,
}

/// Least time between two reaps of the same lost container.
const REAP_RETRY: Duration = Duration::from_secs(5);

/// Whether the task's containers share namespaces with each other.
fn shares_namespaces(def: &TaskDefinition) -> bool {
    def.pid_mode == NamespaceMode::Task || def.ipc_mode == NamespaceMode::Task
}

impl Executor {
    pub fn new(runtime: Runtime, images: ImageStore, tx: Sender<Outcome>, owner: Owner) -> Self {
        Self {
            runtime,
            images,
            tx,
            in_flight: HashSet::new(),
            owner,
            shared_ns_start: Arc::default(),
            reaped_at: HashMap::new(),
            pulls: PullSettings::from_config(&AgentConfig::default()),
            pull_cancels: HashMap::new(),
            pull_progress: None,
            secrets_waits: None,
        }
    }

    /// Containers waiting for a secret report it to `tx`.
    pub fn with_secrets_waits(mut self, tx: Sender<crate::report::SecretsWait>) -> Self {
        self.secrets_waits = Some(tx);
        self
    }

    /// Pulls as `config` says (`[images]`, `[registries]`).
    pub fn with_pulls(mut self, config: &AgentConfig) -> Self {
        self.pulls = PullSettings::from_config(config);
        self
    }

    /// Pulls report their progress to `tx`.
    pub fn with_pull_progress(mut self, tx: Sender<crate::report::PullProgress>) -> Self {
        self.pull_progress = Some(tx);
        self
    }

    /// A worker answered.
    pub fn finished(&mut self, key: &Key) {
        self.in_flight.remove(key);
        if let (task, Some(container), "pull") = key {
            self.pull_cancels.remove(&(task.clone(), container.clone()));
        }
    }

    /// Operations still running.
    pub fn busy(&self) -> usize {
        self.in_flight.len()
    }

    /// Starts `action` (reports are logged by the caller).
    pub fn dispatch(&mut self, action: Action, observed: &Observed) {
        let rt = self.runtime.clone();
        let images = self.images.clone();
        match action {
            Action::Report(_) => {}
            Action::PullImage {
                task,
                container,
                image,
            } => {
                let settings = self.pulls.clone();
                let cancel = self
                    .pull_cancels
                    .entry((task.clone(), container.clone()))
                    .or_default()
                    .clone();
                let progress = self.pull_progress.clone();
                let secrets = observed
                    .tasks
                    .get(&task)
                    .and_then(|t| t.definition.container(&container))
                    .map(|c| c.secrets.clone())
                    .unwrap_or_default();
                let waits = self.secrets_waits.clone();
                let store = SecretStore::new(rt.layout());
                self.spawn(task.clone(), Some(container.clone()), "pull", move || {
                    let mut settings = settings;
                    if !secrets.is_empty() {
                        let said = |m: &crate::secrets::Missing| {
                            let w = SecretsWait {
                                task: task.clone(),
                                container: container.clone(),
                                reason: m.to_string(),
                            };
                            tracing::warn!(event = %w, "secrets");
                            if let Some(tx) = &waits {
                                let _ = tx.send(w);
                            }
                        };
                        match wait_for(&store, &secrets, &cancel, said) {
                            Some(creds) => settings.options.credentials = creds,
                            None => {
                                let e = "cancelled while waiting for secrets".to_string();
                                return (
                                    Some(failed(task, Some(container), OpKind::Pull, e)),
                                    None,
                                );
                            }
                        }
                    }
                    let job = PullJob {
                        task: task.clone(),
                        container: container.clone(),
                        image,
                        cancel,
                        progress,
                    };
                    let pulled = ensure_image(&images, &settings, job);
                    let obs = match pulled {
                        Ok(()) => Observation::ImagePulled { task, container },
                        Err(e) => failed(task, Some(container), OpKind::Pull, e),
                    };
                    (Some(obs), None)
                })
            }
            Action::CreateContainer { task, container } => {
                let Some(rec) = observed.tasks.get(&task) else {
                    return;
                };
                let def = rec.definition.clone();
                let record = TaskRecord {
                    task_id: task.0.clone(),
                    definition: def.clone(),
                    source_digest: String::new(),
                    created_at_ms: crate::runtime::record::now_ms(),
                    owner: self.owner.clone(),
                };
                // On this thread: containers of one task are created concurrently.
                let saved = save_record(&rt, &record);
                self.spawn(task.clone(), Some(container.clone()), "create", move || {
                    let res = saved.and_then(|()| {
                        let c = def.container(&container).ok_or("no such container")?;
                        let shared = shared_namespaces(&rt, &task.0, &def);
                        rt.prepare(&images, &task.0, &def, c, &shared)
                            .map_err(|e| e.to_string())
                    });
                    let obs = match res {
                        Ok(()) => Observation::Created { task, container },
                        Err(e) => failed(task, Some(container), OpKind::Create, e),
                    };
                    (Some(obs), None)
                })
            }
            Action::StartContainer { task, container } => {
                let def = observed.tasks.get(&task).map(|t| t.definition.clone());
                let gate = self.shared_ns_start.clone();
                self.spawn(task.clone(), Some(container.clone()), "start", move || {
                    let res = match def.filter(shares_namespaces) {
                        None => start_fresh(&rt, &task.0, &container),
                        Some(def) => {
                            let _one = gate.lock().unwrap_or_else(PoisonError::into_inner);
                            // Created before a sibling ran: prepared again to join it.
                            let shared = shared_namespaces(&rt, &task.0, &def);
                            let rejoin = shared.pid.is_some() || shared.ipc.is_some();
                            match def.container(&container) {
                                None => Err("no such container".to_string()),
                                Some(c) if rejoin => rt
                                    .prepare(&images, &task.0, &def, c, &shared)
                                    .map_err(|e| e.to_string())
                                    .and_then(|()| start_fresh(&rt, &task.0, &container)),
                                Some(_) => start_fresh(&rt, &task.0, &container),
                            }
                        }
                    };
                    let obs = match res {
                        Ok(pid) => started(task, container, pid),
                        Err(e) => failed(task, Some(container), OpKind::Start, e),
                    };
                    (Some(obs), None)
                })
            }
            Action::RestartContainer {
                task, container, ..
            } => {
                let Some(def) = observed.tasks.get(&task).map(|t| t.definition.clone()) else {
                    return;
                };
                let gate = self.shared_ns_start.clone();
                self.spawn(
                    task.clone(),
                    Some(container.clone()),
                    "restart",
                    move || {
                        let _one = shares_namespaces(&def)
                            .then(|| gate.lock().unwrap_or_else(PoisonError::into_inner));
                        let res = (|| {
                            let c = def.container(&container).ok_or("no such container")?;
                            match rt.state(&task.0, &container) {
                                ContainerState::Running { .. } => {
                                    rt.stop(&task.0, &container, c.stop_timeout)
                                        .map_err(|e| e.to_string())?;
                                }
                                ContainerState::Lost => {
                                    rt.reap(&task.0, &container).map_err(|e| e.to_string())?
                                }
                                _ => {}
                            }
                            let shared = shared_namespaces(&rt, &task.0, &def);
                            rt.prepare(&images, &task.0, &def, c, &shared)
                                .map_err(|e| e.to_string())?;
                            start_fresh(&rt, &task.0, &container)
                        })();
                        let obs = match res {
                            Ok(pid) => started(task, container, pid),
                            Err(e) => failed(task, Some(container), OpKind::Restart, e),
                        };
                        (Some(obs), None)
                    },
                )
            }
            Action::RunHealthCheck {
                task,
                container,
                command,
                timeout,
            } => {
                let args = match command {
                    HealthCommand::Exec(argv) => argv,
                    HealthCommand::Shell(cmd) => vec!["/bin/sh".into(), "-c".into(), cmd],
                    HealthCommand::None => return,
                };
                // The definition's timeout in real time, whatever the clock's scale.
                let real = Duration::from_micros(timeout.as_micros());
                self.spawn(task.clone(), Some(container.clone()), "health", move || {
                    let outcome = match rt.exec(&task.0, &container, real, &args) {
                        Ok(ExecOutcome::Exited(0)) => CheckOutcome::Pass,
                        Ok(ExecOutcome::Exited(_)) => CheckOutcome::Fail,
                        Ok(ExecOutcome::TimedOut) => CheckOutcome::Timeout,
                        Err(e) => {
                            tracing::warn!(task = %task, %container, error = %e, "health check could not run");
                            CheckOutcome::Fail
                        }
                    };
                    (Some(Observation::HealthCheckDone { task, container, outcome }), None)
                })
            }
            Action::StopContainer {
                task,
                container,
                timeout,
                ..
            } => self.spawn(task.clone(), Some(container.clone()), "stop", move || {
                let real = Duration::from_micros(timeout.as_micros());
                match rt.stop(&task.0, &container, real) {
                    Ok(ContainerState::Exited(rec)) => {
                        let run = rec.started_at_ms;
                        (Some(exited(task, container, &rec)), Some(run))
                    }
                    Ok(ContainerState::NotStarted) => (
                        Some(Observation::Exited {
                            task,
                            container,
                            code: 0,
                            reason: CoreExit::Killed,
                        }),
                        Some(0),
                    ),
                    Ok(other) => (
                        Some(failed(
                            task,
                            Some(container),
                            OpKind::Stop,
                            format!("still {other:?} after stop"),
                        )),
                        None,
                    ),
                    Err(e) => (
                        Some(failed(task, Some(container), OpKind::Stop, e.to_string())),
                        None,
                    ),
                }
            }),
            Action::CancelPull { task, container } => {
                if let Some(flag) = self.pull_cancels.get(&(task.clone(), container.clone())) {
                    tracing::info!(%task, %container, "cancelling the image pull: the task stops");
                    flag.store(true, Ordering::Relaxed);
                }
            }
            Action::DeleteTask { task } => {
                // A pull whose answer timed out may still run: nothing wants it now.
                for ((t, _), flag) in &self.pull_cancels {
                    if *t == task {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
                self.delete(task, rt, images)
            }
        }
    }

    fn delete(&mut self, task: TaskId, rt: Runtime, images: ImageStore) {
        self.spawn(task.clone(), None, "delete", move || {
            let obs = match delete_task(&rt, &images, &task.0) {
                Ok(()) => Observation::TaskDeleted { task },
                Err(e) => failed(task, None, OpKind::Delete, e),
            };
            (Some(obs), None)
        })
    }

    /// Reaps a container whose monitor died (no observation: the exit record it leaves
    /// is picked up by the exit watch).
    pub fn reap(&mut self, task: &TaskId, container: &str) {
        let now = std::time::Instant::now();
        self.reaped_at
            .retain(|_, at| now.duration_since(*at) < REAP_RETRY);
        let key = (task.clone(), container.to_string());
        if self.reaped_at.contains_key(&key) {
            return;
        }
        tracing::warn!(%task, container, "monitor lost: reaping");
        self.reaped_at.insert(key, now);
        let rt = self.runtime.clone();
        let (t, c) = (task.clone(), container.to_string());
        self.spawn(
            task.clone(),
            Some(container.to_string()),
            "reap",
            move || {
                if let Err(e) = rt.reap(&t.0, &c) {
                    tracing::error!(task = %t, container = %c, error = %e, "reap failed");
                }
                (None, None)
            },
        );
    }

    fn spawn<F>(&mut self, task: TaskId, container: Option<String>, kind: &'static str, f: F)
    where
        F: FnOnce() -> (Option<Observation>, Option<u64>) + Send + 'static,
    {
        let key: Key = (task, container, kind);
        if !self.in_flight.insert(key.clone()) {
            tracing::debug!(task = %key.0, container = ?key.1, kind, "already in flight");
            return;
        }
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("op-{kind}"))
            .spawn(move || {
                let (obs, run) = f();
                let _ = tx.send(Outcome { key, obs, run });
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, kind, "spawning a worker failed");
        }
    }
}
