//! Periodic image pruning: every `[images] prune_interval_secs` the agent untags the
//! images no desired or live task references, beyond the `keep_unused` most recently
//! used, and collects their blobs and layers (what `skerry image prune` does by hand).
//! Runs on its own thread, one pass at a time, off the supervisor's loop.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skerry_core::reconcile::{Desired, Observed};

use crate::images::ImageStore;

/// When the next pass is due, and whether one runs.
pub struct Pruner {
    interval: Option<Duration>,
    keep_unused: usize,
    next_at: Instant,
    running: Arc<AtomicBool>,
}

impl Pruner {
    /// First pass one interval after start; `interval_secs == 0`: never. Tests shorten
    /// the interval with `SKERRY_TEST_PRUNE_INTERVAL_MS`.
    pub fn new(interval_secs: u64, keep_unused: u32) -> Self {
        let test_ms = std::env::var("SKERRY_TEST_PRUNE_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        let interval = match test_ms {
            Some(ms) => Some(Duration::from_millis(ms)),
            None => (interval_secs > 0).then(|| Duration::from_secs(interval_secs)),
        };
        Self {
            interval,
            keep_unused: usize::try_from(keep_unused).unwrap_or(usize::MAX),
            next_at: Instant::now() + interval.unwrap_or_default(),
            running: Arc::default(),
        }
    }

    /// Starts a pass if one is due and none runs.
    pub fn maybe_run(&mut self, images: &ImageStore, desired: &Desired, observed: &Observed) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        if now < self.next_at || self.running.load(Ordering::Relaxed) {
            return;
        }
        self.next_at = now + interval;
        let referenced = referenced(desired, observed);
        let (store, keep, running) = (images.clone(), self.keep_unused, self.running.clone());
        running.store(true, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("image-prune".into())
            .spawn(move || {
                match store.prune(keep, &referenced) {
                    Ok(r) if r.untagged.is_empty() && r.gc.blobs_removed == 0 => {
                        tracing::debug!("image prune: nothing to remove")
                    }
                    Ok(r) => tracing::info!(
                        images = r.untagged.len(),
                        blobs = r.gc.blobs_removed,
                        bytes = r.gc.blob_bytes_freed,
                        layers = r.gc.layers_removed,
                        "images pruned"
                    ),
                    Err(e) => tracing::warn!(error = %e, "image prune failed"),
                }
                running.store(false, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            self.running.store(false, Ordering::Relaxed);
            tracing::warn!(error = %e, "image prune not started");
        }
    }
}

/// Every image a desired task or service names, and every live task's.
fn referenced(desired: &Desired, observed: &Observed) -> HashSet<String> {
    let desired_defs = desired
        .tasks
        .values()
        .chain(desired.services.values().map(|s| &s.task_definition));
    let live_defs = observed.tasks.values().map(|t| &t.definition);
    desired_defs
        .chain(live_defs)
        .flat_map(|d| d.containers.iter().map(|c| c.image.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruner_off_never_runs_and_on_waits_one_interval() {
        let off = Pruner::new(0, 5);
        assert!(off.interval.is_none());
        let on = Pruner::new(60, 5);
        assert!(on.next_at > Instant::now() + Duration::from_secs(59));
    }
}
