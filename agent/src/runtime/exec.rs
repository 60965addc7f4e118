//! `skerry monitor exec DIR --timeout MS -- CMD...`: runs one command inside a running
//! container (health checks) and reports how it ended.
//!
//! Like the monitor, this is a short-lived single-threaded process re-exec'd from the
//! skerry binary: it is the only way the (multi-threaded) agent gets libcontainer's
//! tenant builder called, since libcontainer must never run in a threaded process
//! (musl + clone3 deadlock). It owns:
//! - joining the container with libcontainer's tenant builder (its namespaces, cgroup
//!   and process settings from the container's spec);
//! - the timeout: after `--timeout` ms the exec'd process is killed with SIGKILL;
//! - the command's output: written to `logs/health.log.running` while the check runs,
//!   then renamed over `logs/health.log`, so `health.log` always holds the whole output
//!   of the last finished check (a reader never sees a half-written or freshly
//!   truncated file); never to the container log;
//! - removing the `tenant-notify-*.sock` each exec leaves in libcontainer's state dir.
//!
//! Answer on stdout, one line: `exit <code>` (128 + signal for a signal death) or
//! `timeout`; the process exits 0 then. Anything else (no such container, exec
//! refused) is a message on stderr and exit code 1.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::record::{self, LaunchPlan};
use super::seccomp::{program_for, SeccompExecutor};
use super::LAUNCH_FILE;

/// The health command's output file inside the container's `logs/`.
pub const HEALTH_LOG: &str = "health.log";
/// Where a running check writes before its output replaces [`HEALTH_LOG`].
const HEALTH_LOG_RUNNING: &str = "health.log.running";

/// How an exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The command ended with this code.
    Exited(i32),
    /// It ran past its timeout and was killed.
    TimedOut,
}

impl ExecOutcome {
    /// The stdout line the helper prints.
    pub fn line(self) -> String {
        match self {
            ExecOutcome::Exited(code) => format!("exit {code}"),
            ExecOutcome::TimedOut => "timeout".into(),
        }
    }

    /// Parses [`ExecOutcome::line`] back (the agent side).
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.trim();
        if line == "timeout" {
            return Some(ExecOutcome::TimedOut);
        }
        line.strip_prefix("exit ")
            .and_then(|c| c.parse().ok())
            .map(ExecOutcome::Exited)
    }
}

/// Entry point of `skerry monitor exec`; returns the process exit code.
pub fn monitor_exec_main(container_dir: &Path, timeout_ms: u64, args: &[String]) -> i32 {
    match exec_in(container_dir, Duration::from_millis(timeout_ms), args) {
        Ok(outcome) => {
            println!("{}", outcome.line());
            0
        }
        Err(msg) => {
            eprintln!("exec: {msg}");
            1
        }
    }
}

fn exec_in(dir: &Path, timeout: Duration, args: &[String]) -> Result<ExecOutcome, String> {
    if args.is_empty() {
        return Err("no command given".into());
    }
    let plan: LaunchPlan = record::load(&dir.join(LAUNCH_FILE))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} has no {LAUNCH_FILE}", dir.display()))?;
    let state_dir = plan.libcontainer_root.join(&plan.container_id);
    let before = notify_sockets(&state_dir);
    let result = spawn_and_wait(&plan, dir, timeout, args);
    for sock in notify_sockets(&state_dir).difference(&before) {
        let _ = fs::remove_file(state_dir.join(sock));
    }
    result
}

fn spawn_and_wait(
    plan: &LaunchPlan,
    dir: &Path,
    timeout: Duration,
    args: &[String],
) -> Result<ExecOutcome, String> {
    let log_path = dir.join("logs").join(HEALTH_LOG_RUNNING);
    let out = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let devnull = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    let filter = program_for(&plan.seccomp).map_err(|e| e.to_string())?;
    let pid = ContainerBuilder::new(plan.container_id.clone(), SyscallType::default())
        .with_root_path(plan.libcontainer_root.clone())
        .map_err(|e| format!("container {}: {e}", plan.container_id))?
        .with_stdin(OwnedFd::from(devnull))
        .with_stdout(OwnedFd::from(out))
        .with_stderr(OwnedFd::from(err))
        .with_executor(SeccompExecutor::new(filter))
        .as_tenant()
        .with_container_args(args.to_vec())
        .with_detach(false)
        .build()
        .map_err(|e| format!("container {}: exec {:?}: {e}", plan.container_id, args[0]))?;
    let outcome = wait_with_timeout(pid, timeout);
    let last = dir.join("logs").join(HEALTH_LOG);
    if let Err(e) = fs::rename(&log_path, &last) {
        // The check's result stands; only its output is not where a reader looks.
        eprintln!("exec: keeping {}: {e}", last.display());
    }
    Ok(outcome)
}

/// Waits for `pid`, killing it once `timeout` has passed.
fn wait_with_timeout(pid: Pid, timeout: Duration) -> ExecOutcome {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let mut timed_out = false;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) if !timed_out => return ExecOutcome::Exited(code),
            Ok(WaitStatus::Signaled(_, sig, _)) if !timed_out => {
                return ExecOutcome::Exited(128 + sig as i32)
            }
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(Errno::ECHILD) => {
                return if timed_out {
                    ExecOutcome::TimedOut
                } else {
                    ExecOutcome::Exited(255)
                };
            }
            _ => {}
        }
        if !timed_out && Instant::now() >= deadline {
            let _ = kill(pid, Signal::SIGKILL);
            timed_out = true;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn notify_sockets(state_dir: &Path) -> BTreeSet<std::ffi::OsString> {
    fs::read_dir(state_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("tenant-notify-"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_outcome_line_roundtrips() {
        for o in [
            ExecOutcome::Exited(0),
            ExecOutcome::Exited(137),
            ExecOutcome::TimedOut,
        ] {
            assert_eq!(ExecOutcome::parse(&o.line()), Some(o));
        }
        assert_eq!(ExecOutcome::parse("garbage"), None);
    }
}
