//! What the scenario asks the guest: skerry ps, the heartbeat file, process RSS, and
//! a polling helper. Every guest call goes through the command channel.

use std::thread;
use std::time::{Duration, Instant};

use skerry_hil::{HilError, Result, Shell};

pub const CMD: Duration = Duration::from_secs(60);

/// A container as `skerry ps --output json` lists it.
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
    let text = shell.ok(&format!("skerry{flag} ps --output json"), CMD)?;
    // One JSON array (`[]` when empty); pids are numbers, null when not running.
    let (Some(start), Some(end)) = (text.find('['), text.rfind(']')) else {
        return Err(HilError::Failed(format!(
            "skerry ps --output json: no JSON array in {text:?}"
        )));
    };
    let v: serde_json::Value = serde_json::from_str(&text[start..=end])
        .map_err(|e| HilError::Failed(format!("skerry ps --output json: {e}: {text:?}")))?;
    let mut rows = Vec::new();
    for r in v.as_array().into_iter().flatten() {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        rows.push(PsRow {
            task: s("task"),
            container: s("container"),
            state: s("state"),
            pid: r["pid"].as_i64().map(|p| p.to_string()).unwrap_or_default(),
        });
    }
    Ok(rows)
}

/// The board's events (`skerry events --output json`, the outbox, oldest first), each
/// as `<time> <text>`: the line `skerry ctl events` gives the host for the same report.
pub fn events(shell: &mut Shell) -> Result<Vec<String>> {
    let text = shell.ok("skerry events --output json", CMD)?;
    let (Some(start), Some(end)) = (text.find('['), text.rfind(']')) else {
        return Err(HilError::Failed(format!(
            "skerry events --output json: no JSON array in {text:?}"
        )));
    };
    let v: serde_json::Value = serde_json::from_str(&text[start..=end])
        .map_err(|e| HilError::Failed(format!("skerry events --output json: {e}")))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{} {}",
                e["time"].as_str().unwrap_or_default(),
                e["text"].as_str().unwrap_or_default()
            )
        })
        .collect())
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
