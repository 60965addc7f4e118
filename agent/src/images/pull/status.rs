//! Pulls under way, for `skerry ps`: `ingest/pulling/<sha256 of the reference>.json`
//! holds `{reference, bytes, total, pid}`, rewritten atomically at each tenth of the
//! download and removed when the pull ends. A record whose pid is gone is stale.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{Progress, PullEvent};
use crate::images::digest::Digest;
use crate::store::write_atomic;

/// How far one pull got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullStatus {
    pub reference: String,
    /// Bytes of the missing blobs on disk.
    pub bytes: u64,
    /// Bytes of the missing blobs in all.
    pub total: u64,
    pub pid: u32,
}

fn path_for(dir: &Path, reference: &str) -> PathBuf {
    dir.join(format!(
        "{}.json",
        Digest::of_bytes(reference.as_bytes()).hex()
    ))
}

/// The status of a live pull of `reference` (normalized), if any.
pub fn read(dir: &Path, reference: &str) -> Option<PullStatus> {
    let bytes = std::fs::read(path_for(dir, reference)).ok()?;
    let st: PullStatus = serde_json::from_slice(&bytes).ok()?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(st.pid).ok()?);
    nix::sys::signal::kill(pid, None).ok()?;
    Some(st)
}

/// Removes the record when dropped.
pub(crate) struct Tracker {
    path: PathBuf,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Wraps `inner` so the pull's progress is also written for `ps`.
pub(crate) fn track(dir: &Path, reference: &str, inner: Option<Progress>) -> (Tracker, Progress) {
    let _ = std::fs::create_dir_all(dir);
    let path = path_for(dir, reference);
    let state = Mutex::new((HashMap::<String, u64>::new(), 0u64, u64::MAX));
    let (file, reference) = (path.clone(), reference.to_owned());
    let progress: Progress = Arc::new(move |e: &PullEvent| {
        {
            let mut g = state.lock().unwrap_or_else(PoisonError::into_inner);
            let changed = match e {
                PullEvent::Resolved { missing_bytes, .. } => {
                    g.1 = *missing_bytes;
                    true
                }
                PullEvent::Blob {
                    digest, on_disk, ..
                } => {
                    g.0.insert(digest.clone(), *on_disk);
                    let done: u64 = g.0.values().sum();
                    let tenth = (done * 10).checked_div(g.1).unwrap_or(10);
                    let new = tenth != g.2;
                    g.2 = tenth;
                    new
                }
                _ => false,
            };
            if changed {
                let st = PullStatus {
                    reference: reference.clone(),
                    bytes: g.0.values().sum(),
                    total: g.1,
                    pid: std::process::id(),
                };
                if let Ok(json) = serde_json::to_vec(&st) {
                    let _ = write_atomic(&file, &json);
                }
            }
        }
        if let Some(inner) = &inner {
            inner(e);
        }
    });
    (Tracker { path }, progress)
}
