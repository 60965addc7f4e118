//! Telemetry: per-container metrics from cgroups ([`cgroup`]), device figures
//! ([`device`]), and the lines of `awslogs` containers tailed from their rotated files
//! ([`tail`]), rate-limited, batched and sent under `…/logs/<task>/<container>`
//! through telemetry's own MQTT session and bounded queue ([`uplink`]). The pure
//! rules (line budget, batching, compression, CPU rate) live in
//! [`skerry_core::telemetry`].
//!
//! It runs on its own thread at nice 19 and idle I/O priority ([`lower_priority`]),
//! reads the state directory only (`status.json`, task and launch records: [`discover`])
//! and never talks to the supervisor's loop: a slow or stuck telemetry cannot delay a
//! restart. Every sample it writes `<state>/telemetry/metrics.json` (what `skerry top`
//! shows, with no broker); every publish period it stores a [`MetricsReport`] in the
//! spool ([`spool`]) and queues it.
//!
//! ```text
//! <state>/telemetry/metrics.json          the newest report (JSON), atomically replaced
//! <state>/telemetry/spool/                reports not yet acknowledged (an outbox)
//! <container>/logs/ship.cursor            where shipping resumes (stored on PUBACK)
//! ```

mod cgroup;
pub mod config;
mod device;
mod discover;
mod prom;
mod run;
pub mod spool;
mod tail;
mod uplink;
pub mod view;

use std::path::{Path, PathBuf};

use skerry_core::telemetry::MetricsReport;

pub use config::TelemetryConfig;
pub use run::spawn;

/// The newest local report's path.
pub fn local_report_path(state_dir: &Path) -> PathBuf {
    state_dir.join("telemetry").join("metrics.json")
}

/// Reads the newest local report (`skerry top`).
pub fn read_local(state_dir: &Path) -> Result<MetricsReport, String> {
    let p = local_report_path(state_dir);
    let bytes = std::fs::read(&p).map_err(|e| {
        format!(
            "{}: {e} (is the agent running with [telemetry] enabled?)",
            p.display()
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", p.display()))
}

/// Nice 19 and the idle I/O class for the calling thread only.
fn lower_priority() {
    // SAFETY: gettid has no preconditions.
    // JUSTIFICATION: per-thread priority needs the thread id; std does not expose it.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    // SAFETY: setpriority on our own thread id with a valid `which` value.
    // JUSTIFICATION: nix has no per-thread setpriority.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 19) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "telemetry: nice not set");
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    // SAFETY: ioprio_set takes three integers; our thread id and the idle class.
    // JUSTIFICATION: neither libc nor nix wraps ioprio_set.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            libc::c_long::from(tid as i32),
            IOPRIO_CLASS_IDLE << 13,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "telemetry: ioprio not set");
    }
}
