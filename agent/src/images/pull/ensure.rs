//! A task's image, as the executor needs it: the pull behaviour decides between the
//! cache and a pull ([`plan`]); a pull that may fall back to the cached image gives up
//! after a few idle attempts (offline, the task starts from the cache), one that
//! cannot keeps trying for much longer before the task fails with
//! `CannotPullContainerError`. Progress is logged every tenth.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

use skerry_core::reconcile::TaskId;

use super::{plan, PullEvent, PullOptions, PullPlan};
use crate::config::{AgentConfig, PullBehavior};
use crate::images::ImageStore;
use crate::report::PullProgress;

/// Attempts in a row without progress before a pull that may fall back to the cached
/// image does so.
const FALLBACK_AFTER: u32 = 3;
/// Attempts in a row without progress before a pull with no cached image fails (with
/// the backoff cap, tens of minutes).
const FAIL_AFTER: u32 = 12;

/// The pull behaviour and options of the agent config.
#[derive(Clone)]
pub struct PullSettings {
    pub behavior: PullBehavior,
    pub options: PullOptions,
}

impl PullSettings {
    pub fn from_config(config: &AgentConfig) -> Self {
        Self {
            behavior: config.images.pull_behavior,
            options: PullOptions::from_config(config),
        }
    }
}
/// One task container's image to make present.
pub struct PullJob {
    pub task: TaskId,
    pub container: String,
    pub image: String,
    /// Set: the pull is given up (the task stops: superseded or removed).
    pub cancel: Arc<AtomicBool>,
    /// Where progress goes (every tenth of the missing bytes), for events and the
    /// reported state.
    pub progress: Option<Sender<PullProgress>>,
}

/// Makes the job's image present as the pull behaviour says; logs and reports progress
/// every tenth.
pub fn ensure_image(
    images: &ImageStore,
    settings: &PullSettings,
    job: PullJob,
) -> Result<(), String> {
    let PullJob {
        task,
        container,
        image,
        cancel,
        progress,
    } = job;
    let (task, container, image) = (task.0.as_str(), container.as_str(), image.as_str());
    let cached = images.resolve(image).is_ok();
    let pinned = image.contains('@');
    let plan = plan(
        settings.behavior,
        cached,
        images.pulled_before(image),
        pinned,
    );
    let PullPlan::Pull { fallback } = plan else {
        return Ok(());
    };
    let mut opts = settings.options.clone();
    opts.cancel = cancel;
    opts.give_up_after = Some(if fallback { FALLBACK_AFTER } else { FAIL_AFTER });
    let report = Reporter {
        task: TaskId::from(task),
        container: container.to_owned(),
        image: image.to_owned(),
        tx: progress,
    };
    let on_event = report.clone();
    // (bytes on disk per missing blob, missing bytes, tenths reported)
    let blobs = Mutex::new((HashMap::<String, u64>::new(), 0u64, 0u64));
    opts.progress = Some(Arc::new(move |e: &PullEvent| {
        let mut g = blobs.lock().unwrap_or_else(PoisonError::into_inner);
        match e {
            PullEvent::Resolved { missing_bytes, .. } => {
                g.1 = *missing_bytes;
                on_event.send(0, g.1);
            }
            PullEvent::Blob {
                digest, on_disk, ..
            } => {
                g.0.insert(digest.clone(), *on_disk);
                let done: u64 = g.0.values().sum();
                let tenth = (done * 10).checked_div(g.1).unwrap_or(10);
                if tenth > g.2 {
                    g.2 = tenth;
                    on_event.send(done, g.1);
                }
            }
            _ => {}
        }
    }));
    match images.pull(image, &opts) {
        Ok(s) => {
            tracing::info!(%task, container, image, manifest = %s.image.manifest_digest, "image pulled");
            report.send(s.image.size_bytes, s.image.size_bytes);
            Ok(())
        }
        Err(e @ super::PullError::Cancelled { .. }) => {
            tracing::info!(%task, container, image, "pull given up: the task stops");
            Err(format!("{image}: {e}"))
        }
        Err(e) if fallback => {
            tracing::warn!(%task, container, image, error = %e, "pull failed: using the cached image");
            Ok(())
        }
        Err(e) => Err(format!("{image}: {e}")),
    }
}

/// Logs a pull's progress and sends it to the supervisor (events, reported state).
#[derive(Clone)]
struct Reporter {
    task: TaskId,
    container: String,
    image: String,
    tx: Option<Sender<PullProgress>>,
}

impl Reporter {
    fn send(&self, bytes: u64, total: u64) {
        tracing::info!(task = %self.task, container = %self.container, image = %self.image, bytes, total, "pulling");
        if let Some(tx) = &self.tx {
            let _ = tx.send(PullProgress {
                task: self.task.clone(),
                container: self.container.clone(),
                image: self.image.clone(),
                bytes,
                total,
            });
        }
    }
}
