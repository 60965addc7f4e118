//! What the scenario asks the guest: skerry ps, the heartbeat file, process RSS, and
//! a polling helper. Every guest call goes through the command channel.

use std::thread;
use std::time::{Duration, Instant};

use skerry_hil::{HilError, Result, Shell};

pub const CMD: Duration = Duration::from_secs(60);

/// A container as `skerry ps --json` lists it.
#[derive(Debug, Clone)]
pub struct PsRow {
    pub task: String,
    pub container: String,
    pub state: String,
    pub pid: String,
}

pub fn ps(shell: &mut Shell, state_dir: Option<&str>) -> Result<Vec<PsRow>> {
    let flag = state_dir
        .map(|d| format!(" --state-dir {d}"))
        .unwrap_or_default();
    let text = shell.ok(&format!("skerry{flag} ps --json"), CMD)?;
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| HilError::Failed(format!("skerry ps --json line {line:?}: {e}")))?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        rows.push(PsRow {
            task: s("task"),
            container: s("container"),
            state: s("state"),
            pid: s("pid"),
        });
    }
    Ok(rows)
}

/// The running container named `container`: (task, pid).
pub fn running(shell: &mut Shell, container: &str) -> Result<Option<(String, String)>> {
    Ok(ps(shell, None)?
        .into_iter()
        .find(|r| r.container == container && r.state == "running")
        .map(|r| (r.task, r.pid)))
}

/// The heartbeat the `beat` container writes: (counter, guest uptime when written).
pub fn heartbeat(shell: &mut Shell) -> Result<Option<(u64, f64)>> {
    let out = shell.run("cat /run/hb/beat 2>/dev/null", CMD)?;
    let mut it = out.text.split_whitespace();
    let counter = it.next().and_then(|s| s.parse().ok());
    let uptime = it.next().and_then(|s| s.parse().ok());
    Ok(counter.zip(uptime))
}

/// VmRSS of a guest process, in kB.
pub fn rss_kb(shell: &mut Shell, pid: &str) -> Result<u64> {
    let out = shell.ok(&format!("grep VmRSS /proc/{pid}/status"), CMD)?;
    out.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HilError::Failed(format!("VmRSS of pid {pid}: {out:?}")))
}

/// Calls `probe` every `every` until it returns `Some`, or fails after `timeout`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<(T, Duration)> {
    let start = Instant::now();
    loop {
        if let Some(v) = probe()? {
            return Ok((v, start.elapsed()));
        }
        if start.elapsed() > timeout {
            return Err(HilError::Timeout {
                what: what.to_owned(),
                secs: timeout.as_secs_f64(),
                detail: String::new(),
            });
        }
        thread::sleep(every);
    }
}
