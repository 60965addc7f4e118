//! The supervisor's durable state: the reconciler [`Snapshot`] (task records, service
//! deployments), the last desired state that was applied, the exits already
//! reported, and the clock mark. Crash-only: this file is all the agent needs to
//! resume; everything else is read back from the runtime's container directories.
//!
//! ```text
//! <state_dir>/supervisor/
//!   state.json        current   "skerry-supervisor-state 1 <sha256 of body> <len>\n" + JSON body
//!   state.prev.json   the copy before it (same format)
//!   status.json       human/test view: tasks, containers, health, services (plain JSON)
//! ```
//!
//! Save: `state.json` is renamed to `state.prev.json`, then the new one is written
//! with [`write_atomic`] (write, fsync, rename, fsync dir). Load: `state.json` if its
//! header, length and checksum hold; else `state.prev.json`; else empty. A crash
//! between the two steps leaves only the previous copy, which is then used.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use skerry_core::reconcile::{Desired, Snapshot};

use super::clock::ClockMark;
use super::SupervisorError;
use crate::store::write_atomic;

const MAGIC: &str = "skerry-supervisor-state";
const VERSION: u32 = 1;
/// Largest state file read back.
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// Everything persisted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// The reconciler's records.
    pub snapshot: Snapshot,
    /// The desired state last applied (a desired file that turns bad keeps this).
    pub desired: Desired,
    /// Per `<task>/<container>`: `started_at_ms` of the run whose exit was observed.
    pub exits_seen: BTreeMap<String, u64>,
    /// The clock at save.
    pub clock: ClockMark,
}

/// Where the files are.
#[derive(Debug, Clone)]
pub struct StateFiles {
    dir: PathBuf,
}

impl StateFiles {
    /// Under `<state_dir>/supervisor`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("supervisor"),
        }
    }

    pub fn current(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn previous(&self) -> PathBuf {
        self.dir.join("state.prev.json")
    }

    pub fn status(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    /// Loads the newest good copy; `None` when there is none. Logs what it skipped.
    pub fn load(&self) -> Option<Persisted> {
        for path in [self.current(), self.previous()] {
            match read_checked(&path) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => tracing::error!(file = %path.display(), error = %e, "state copy refused"),
            }
        }
        None
    }

    /// Saves `p` (see the module doc for the order of steps).
    pub fn save(&self, p: &Persisted) -> Result<(), SupervisorError> {
        let io = |path: &Path, e: std::io::Error| SupervisorError::Io(path.to_path_buf(), e);
        fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let body = serde_json::to_vec(p).map_err(|e| SupervisorError::State(e.to_string()))?;
        let mut data = header(&body).into_bytes();
        data.extend_from_slice(&body);
        let cur = self.current();
        if cur.exists() {
            fs::rename(&cur, self.previous()).map_err(|e| io(&cur, e))?;
        }
        write_atomic(&cur, &data).map_err(|e| io(&cur, e))
    }

    /// Writes the status view (not needed to resume; errors are only logged).
    pub fn save_status(&self, status: &serde_json::Value) -> Result<(), SupervisorError> {
        let path = self.status();
        let data = serde_json::to_vec_pretty(status).unwrap_or_default();
        write_atomic(&path, &data).map_err(|e| SupervisorError::Io(path, e))
    }
}

fn header(body: &[u8]) -> String {
    format!(
        "{MAGIC} {VERSION} {} {}\n",
        hex::encode(Sha256::digest(body)),
        body.len()
    )
}

fn read_checked(path: &Path) -> Result<Option<Persisted>, SupervisorError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SupervisorError::Io(path.to_path_buf(), e)),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(SupervisorError::State(format!(
            "larger than {MAX_STATE_BYTES} bytes"
        )));
    }
    let data = fs::read(path).map_err(|e| SupervisorError::Io(path.to_path_buf(), e))?;
    let nl = data
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| SupervisorError::State("no header line".into()))?;
    let (head, body) = (&data[..=nl], &data[nl + 1..]);
    let want = header(body);
    if head != want.as_bytes() {
        let v = format!("{MAGIC} {VERSION} ");
        return Err(SupervisorError::State(if head.starts_with(v.as_bytes()) {
            "checksum or length mismatch (torn or corrupted write)".into()
        } else {
            "unknown magic or format version".into()
        }));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| SupervisorError::State(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_torn_current_falls_back_to_previous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path());
        assert_eq!(files.load(), None);
        let mut p = Persisted::default();
        p.exits_seen.insert("a/b".into(), 1);
        files.save(&p).expect("save 1");
        p.exits_seen.insert("a/b".into(), 2);
        files.save(&p).expect("save 2");
        assert_eq!(files.load().expect("load").exits_seen["a/b"], 2);
        let cur = files.current();
        let mut data = fs::read(&cur).expect("read");
        let n = data.len();
        data.truncate(n - 3);
        fs::write(&cur, &data).expect("tear");
        assert_eq!(files.load().expect("prev").exits_seen["a/b"], 1);
        fs::write(&cur, b"garbage").expect("garbage");
        assert_eq!(files.load().expect("prev").exits_seen["a/b"], 1);
    }
}
