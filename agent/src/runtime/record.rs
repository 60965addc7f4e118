//! Files a container's monitor and the agent exchange inside the container directory.
//! All are JSON, written atomically, and small.
//!
//! ```text
//! containers/<name>/
//!   launch.json    written by the agent before it spawns the monitor: LaunchPlan
//!   monitor.json   written by the monitor once the container runs: MonitorRecord
//!   exit.json      written by the monitor when the container has exited: ExitRecord
//!   bundle/        config.json (OCI spec); rootfs is a separate mount point
//!   logs/          container.log (+ .1, .2 … rotated), monitor.log
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::seccomp::SeccompMode;
use super::RuntimeError;
use crate::store::write_atomic;

/// Largest record file read back (they are a few hundred bytes).
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// What the monitor needs to run one container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LaunchPlan {
    /// libcontainer's container id.
    pub container_id: String,
    /// libcontainer's state root.
    pub libcontainer_root: PathBuf,
    /// The OCI bundle directory (holds config.json).
    pub bundle: PathBuf,
    /// Directory for container.log and monitor.log.
    pub log_dir: PathBuf,
    /// Rotate container.log when it reaches this size.
    pub log_max_bytes: u64,
    /// Keep this many log files in all (current + rotated).
    pub log_max_files: u32,
    /// Time between SIGTERM and SIGKILL on stop.
    pub stop_timeout_ms: u64,
    /// The container's cgroup path (for OOM accounting).
    pub cgroup_path: String,
    /// The syscall filter of the container and of every process exec'd into it
    /// (absent in plans written before seccomp: unfiltered, as they started).
    #[serde(default)]
    pub seccomp: SeccompMode,
    /// `logDriver: none`: the container's output is read and dropped, no log file.
    #[serde(default)]
    pub discard_output: bool,
    /// `logDriver: journald`: the fixed journal fields of each line (the lines go
    /// to the journal and to the rotated files); `None` for other drivers.
    #[serde(default)]
    pub journal_fields: Option<Vec<(String, String)>>,
    /// The devices a cgroup v2 device filter allows besides the defaults; `None`
    /// for a privileged container (and in plans written before the filter existed:
    /// no filter, as they started). Unused on cgroup v1 (libcontainer's rules).
    #[serde(default)]
    pub device_filter: Option<Vec<super::devfilter::FilterRule>>,
    /// `secrets` as env vars: names and sources only, resolved by the monitor (see
    /// `runtime::secret_env`); absent in plans written before secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<skerry_core::spec::NamedSecret>,
    /// The secret store the monitor reads them from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_dir: Option<PathBuf>,
}

/// Who runs the container: the monitor (its parent) and the container's init.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct MonitorRecord {
    pub monitor_pid: i32,
    /// The monitor's start time in clock ticks since boot (/proc/PID/stat field 22):
    /// with the pid it identifies the process even if the pid is reused.
    pub monitor_start_ticks: u64,
    pub container_pid: i32,
    pub started_at_ms: u64,
}

/// Why a container stopped.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ExitReason {
    /// Its main process exited by itself.
    Exited,
    /// Killed by a signal nobody in skerry sent.
    Signaled,
    /// The cgroup's OOM killer ended it.
    OutOfMemory,
    /// skerry stopped it and it exited within stopTimeout.
    Stopped,
    /// skerry stopped it and had to SIGKILL it after stopTimeout.
    StopTimeout,
    /// Its monitor died and the container was reaped by the agent.
    MonitorLost,
}

/// How a container ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitRecord {
    /// Exit code as Docker/ECS report it (128 + signal for a signal death).
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: ExitReason,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
}

/// Writes `value` as JSON to `path` atomically.
pub fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), RuntimeError> {
    let data = serde_json::to_vec_pretty(value)
        .map_err(|e| RuntimeError::Record(path.to_path_buf(), e.to_string()))?;
    write_atomic(path, &data).map_err(|e| RuntimeError::io(path, e))
}

/// Reads a JSON record; `Ok(None)` when the file does not exist.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, RuntimeError> {
    match fs::metadata(path) {
        Ok(m) if m.len() > MAX_RECORD_BYTES => {
            return Err(RuntimeError::Record(
                path.to_path_buf(),
                "file too large".into(),
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RuntimeError::io(path, e)),
    }
    let data = fs::read(path).map_err(|e| RuntimeError::io(path, e))?;
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| RuntimeError::Record(path.to_path_buf(), e.to_string()))
}

/// Milliseconds since the Unix epoch (wall clock, for records and logs only).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A process's start time in clock ticks since boot, if it exists.
pub fn process_start_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) may contain spaces and parentheses: split after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the monitor described by `rec` is still alive (same pid *and* start time).
pub fn monitor_alive(rec: &MonitorRecord) -> bool {
    process_start_ticks(rec.monitor_pid) == Some(rec.monitor_start_ticks)
        && !is_zombie(rec.monitor_pid)
}

/// Whether `pid` has exited and waits for its parent to reap it.
pub fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_start_ticks_identify_this_process() {
        let me = std::process::id() as i32;
        let ticks = process_start_ticks(me).expect("own stat");
        let rec = MonitorRecord {
            monitor_pid: me,
            monitor_start_ticks: ticks,
            container_pid: 0,
            started_at_ms: 0,
        };
        assert!(monitor_alive(&rec));
        assert!(!monitor_alive(&MonitorRecord {
            monitor_start_ticks: ticks + 1,
            ..rec
        }));
    }

    #[test]
    fn record_roundtrip_and_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("exit.json");
        assert_eq!(load::<ExitRecord>(&p).expect("missing is ok"), None);
        let rec = ExitRecord {
            exit_code: 137,
            signal: Some(9),
            reason: ExitReason::OutOfMemory,
            started_at_ms: 1,
            finished_at_ms: 2,
        };
        save(&p, &rec).expect("save");
        assert_eq!(load::<ExitRecord>(&p).expect("load"), Some(rec));
        fs::write(&p, b"{not json").expect("write");
        assert!(load::<ExitRecord>(&p).is_err());
    }
}
