//! The per-container monitor: `skerry monitor start <container-dir>`.
//!
//! A small single-threaded process, re-exec'd from the skerry binary before any async
//! runtime or thread exists (libcontainer forks with raw clone3, which deadlocks under
//! musl in a multi-threaded caller). It is the container's parent for the container's
//! whole life, so the exit code survives an agent crash, and it owns:
//! - create + start through libcontainer (from `launch.json` and the bundle);
//! - stdout/stderr through pipes into the rotating `container.log`;
//! - stop: SIGTERM to the monitor → SIGTERM to the container, SIGKILL through the
//!   cgroup after stopTimeout;
//! - the exit record (`exit.json`, atomic) and libcontainer delete (cgroup, state).
//!
//! Start protocol: the invoked process calls `setsid`, forks the real monitor and waits
//! on a pipe for "ok" (container running, `monitor.json` written) or an error text, then
//! exits 0 or 1. The agent therefore learns start failures synchronously, and the
//! monitor is not its child (it survives `kill -9` of the agent and systemd's
//! `KillMode=process`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcgroups::common::{get_cgroup_setup, CgroupSetup};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2, fork, pipe, setsid, ForkResult, Pid};

use super::cgroup::oom_kill_count;
use super::journal::JournalWriter;
use super::logfile::{RotatingLog, Stream};
use super::record::{self, ExitReason, ExitRecord, LaunchPlan, MonitorRecord};
use super::seccomp::{program_for, SeccompExecutor};
use super::secret_env::SecretBundle;
use super::{RuntimeError, EXIT_FILE, LAUNCH_FILE, MONITOR_FILE, MONITOR_LOG};

/// Entry point of `skerry monitor start DIR`; returns the process exit code.
pub fn monitor_start_main(container_dir: &Path) -> i32 {
    let plan: LaunchPlan = match record::load(&container_dir.join(LAUNCH_FILE)) {
        Ok(Some(p)) => p,
        Ok(None) => {
            eprintln!("monitor: {} has no {LAUNCH_FILE}", container_dir.display());
            return 1;
        }
        Err(e) => {
            eprintln!("monitor: {e}");
            return 1;
        }
    };
    reset_signal_state();
    // Leave the caller's session and process group: terminal signals (Ctrl-C to
    // `skerry run`) must not reach the monitor or the container directly.
    let _ = setsid();
    let (ready_r, ready_w) = match pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("monitor: pipe: {e}");
            return 1;
        }
    };
    // SAFETY: this process is single-threaded (the monitor subcommand runs before any
    // runtime or thread is created), so fork cannot leave another thread's lock held.
    match unsafe { fork() } {
        Err(e) => {
            eprintln!("monitor: fork: {e}");
            1
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(ready_w);
            let mut answer = String::new();
            let _ = File::from(ready_r).read_to_string(&mut answer);
            if answer == "ok" {
                0
            } else {
                let msg = if answer.is_empty() {
                    "monitor exited before the container started".into()
                } else {
                    answer
                };
                eprintln!("{msg}");
                1
            }
        }
        Ok(ForkResult::Child) => {
            drop(ready_r);
            let code = run_monitor(container_dir, &plan, ready_w);
            std::process::exit(code)
        }
    }
}

/// Gives the container a clean signal state whoever started the monitor: an empty
/// mask and default dispositions (the agent and `skerry run` block SIGTERM for their
/// signalfd, and Rust ignores SIGPIPE; children inherit both across fork and exec).
fn reset_signal_state() {
    let _ = SigSet::empty().thread_set_mask();
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL registers no Rust code as a handler; the process
        // is single-threaded here.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
    }
}

fn run_monitor(container_dir: &Path, plan: &LaunchPlan, ready: OwnedFd) -> i32 {
    // Kept (values redacted once the container exists) until the monitor ends.
    let secret_bundle = match SecretBundle::prepare(plan) {
        Ok(b) => b,
        Err(e) => {
            let _ = File::from(ready).write_all(format!("{e}").as_bytes());
            return 1;
        }
    };
    let started = match start_container(container_dir, plan, secret_bundle.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            let _ = File::from(ready).write_all(format!("{e}").as_bytes());
            return 1;
        }
    };
    // Detach from the caller's pipes before saying "ok", so the caller sees EOF;
    // from here on the monitor's own diagnostics go to monitor.log.
    redirect_stdio(&plan.log_dir.join(MONITOR_LOG));
    let _ = File::from(ready).write_all(b"ok");
    let code = supervise(container_dir, plan, started);
    drop(secret_bundle);
    code
}

struct Started {
    container: Container,
    pid: Pid,
    stdout: OwnedFd,
    stderr: OwnedFd,
    started_at_ms: u64,
}

fn start_container(
    container_dir: &Path,
    plan: &LaunchPlan,
    secret_bundle: Option<&SecretBundle>,
) -> Result<Started, RuntimeError> {
    let lc = |e: libcontainer::error::LibcontainerError| {
        RuntimeError::Libcontainer(plan.container_id.clone(), e.to_string())
    };
    let (out_r, out_w) = pipe().map_err(|e| RuntimeError::Sys("pipe", e))?;
    let (err_r, err_w) = pipe().map_err(|e| RuntimeError::Sys("pipe", e))?;
    let devnull =
        File::open("/dev/null").map_err(|e| RuntimeError::io(Path::new("/dev/null"), e))?;
    // Compiled here, before libcontainer clones: the container process only installs it.
    let filter = program_for(&plan.seccomp)
        .map_err(|e| RuntimeError::Libcontainer(plan.container_id.clone(), e.to_string()))?;
    let mut container = ContainerBuilder::new(plan.container_id.clone(), SyscallType::default())
        .with_root_path(plan.libcontainer_root.clone())
        .map_err(lc)?
        .validate_id()
        .map_err(lc)?
        .with_stdin(OwnedFd::from(devnull))
        .with_stdout(out_w)
        .with_stderr(err_w)
        .with_executor(SeccompExecutor::new(filter))
        .as_init(secret_bundle.map_or_else(|| plan.bundle.clone(), |b| b.dir.clone()))
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(lc)?;
    // The container exists (cgroup made, init waiting to exec): filter its devices
    // before any of the user's code runs.
    if let Err(e) = filter_devices(plan) {
        let _ = container.delete(true);
        return Err(RuntimeError::Libcontainer(
            plan.container_id.clone(),
            e.to_string(),
        ));
    }
    if let Some(b) = secret_bundle {
        if let Err(e) = b.redact() {
            let _ = container.delete(true);
            return Err(e);
        }
    }
    let started_at_ms = record::now_ms();
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(lc(e));
    }
    let pid = container.pid().ok_or_else(|| {
        RuntimeError::Libcontainer(plan.container_id.clone(), "no pid after start".into())
    })?;
    let me = std::process::id() as i32;
    let rec = MonitorRecord {
        monitor_pid: me,
        monitor_start_ticks: record::process_start_ticks(me).unwrap_or(0),
        container_pid: pid.as_raw(),
        started_at_ms,
    };
    if let Err(e) = record::save(&container_dir.join(MONITOR_FILE), &rec) {
        let _ = container.kill(Signal::SIGKILL, true);
        let _ = waitpid(pid, None);
        let _ = container.delete(true);
        return Err(e);
    }
    Ok(Started {
        container,
        pid,
        stdout: out_r,
        stderr: err_r,
        started_at_ms,
    })
}

/// On cgroup v2 (unified hierarchy), attaches the device filter to the container's
/// cgroup; on v1 and hybrid hosts libcontainer has written the rules already.
fn filter_devices(plan: &LaunchPlan) -> Result<(), super::devfilter::DevFilterError> {
    let Some(listed) = &plan.device_filter else {
        return Ok(());
    };
    if !matches!(get_cgroup_setup(), Ok(CgroupSetup::Unified)) {
        return Ok(());
    }
    let dir = Path::new(CGROUP_V2_ROOT).join(plan.cgroup_path.trim_start_matches('/'));
    super::devfilter::attach(&dir, listed)
}

/// Where the unified hierarchy is mounted on a cgroup v2 host.
const CGROUP_V2_ROOT: &str = "/sys/fs/cgroup";

fn supervise(container_dir: &Path, plan: &LaunchPlan, mut s: Started) -> i32 {
    let mut mask = SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGCHLD,
        Signal::SIGHUP,
    ] {
        mask.add(sig);
    }
    if let Err(e) = mask.thread_block() {
        eprintln!("monitor: blocking signals: {e}");
    }
    let mut sigfd =
        match SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => Some(fd),
            Err(e) => {
                eprintln!("monitor: signalfd: {e}; falling back to polling");
                None
            }
        };
    let opened = if plan.discard_output {
        Ok(None)
    } else {
        RotatingLog::open(&plan.log_dir, plan.log_max_bytes, plan.log_max_files).map(|log| {
            match plan.journal_fields.as_deref().map(JournalWriter::new) {
                Some(Some(j)) => Some(log.with_journal(j)),
                Some(None) => {
                    eprintln!("monitor: no socket for the journal: lines go to the files only");
                    Some(log)
                }
                None => Some(log),
            }
        })
    };
    let mut log = match opened {
        Ok(l) => l,
        Err(e) => {
            eprintln!("monitor: opening container log: {e}");
            None
        }
    };
    for fd in [&s.stdout, &s.stderr] {
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    }
    let mut open = [true, true];
    let mut stop_deadline: Option<Instant> = None;
    let mut stop_requested = false;
    let mut killed_after_timeout = false;
    let stop_timeout = Duration::from_millis(plan.stop_timeout_ms);
    let status = loop {
        if let Some(st) = reap(s.pid) {
            break st;
        }
        let timeout = match stop_deadline {
            Some(d) => PollTimeout::try_from(
                d.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(60_000) as i32,
            )
            .unwrap_or(PollTimeout::ZERO),
            None if sigfd.is_none() => PollTimeout::from(200u16),
            None => PollTimeout::NONE,
        };
        let mut fds = Vec::with_capacity(3);
        if let Some(sfd) = &sigfd {
            fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
        }
        if open[0] {
            fds.push(PollFd::new(s.stdout.as_fd(), PollFlags::POLLIN));
        }
        if open[1] {
            fds.push(PollFd::new(s.stderr.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => eprintln!("monitor: poll: {e}"),
        }
        drop(fds);
        pump(&s.stdout, Stream::Stdout, &mut open[0], log.as_mut());
        pump(&s.stderr, Stream::Stderr, &mut open[1], log.as_mut());
        if let Some(sfd) = sigfd.as_mut() {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if (sig == Signal::SIGTERM as i32 || sig == Signal::SIGINT as i32)
                    && !stop_requested
                {
                    stop_requested = true;
                    if stop_timeout.is_zero() {
                        let _ = s.container.kill(Signal::SIGKILL, true);
                        killed_after_timeout = true;
                    } else {
                        let _ = kill(s.pid, Signal::SIGTERM);
                        stop_deadline = Some(Instant::now() + stop_timeout);
                    }
                }
            }
        }
        if let Some(d) = stop_deadline {
            if Instant::now() >= d {
                let _ = s.container.kill(Signal::SIGKILL, true);
                killed_after_timeout = true;
                stop_deadline = None;
            }
        }
    };
    // Drain what the container wrote before it died (non-blocking: descendants in the
    // host PID namespace may still hold the pipe open).
    pump(&s.stdout, Stream::Stdout, &mut open[0], log.as_mut());
    pump(&s.stderr, Stream::Stderr, &mut open[1], log.as_mut());
    if let Some(l) = log.as_mut() {
        let _ = l.flush_partial();
        if l.journal_dropped() > 0 {
            eprintln!(
                "monitor: {} lines did not reach the journal (kept in the files)",
                l.journal_dropped()
            );
        }
    }
    let oom = oom_kill_count(&plan.cgroup_path) > 0;
    let (exit_code, signal) = match status {
        WaitStatus::Exited(_, code) => (code, None),
        WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
        _ => (255, None),
    };
    let reason = if oom && signal == Some(Signal::SIGKILL as i32) {
        ExitReason::OutOfMemory
    } else if killed_after_timeout {
        ExitReason::StopTimeout
    } else if stop_requested {
        ExitReason::Stopped
    } else if signal.is_some() {
        ExitReason::Signaled
    } else {
        ExitReason::Exited
    };
    let exit = ExitRecord {
        exit_code,
        signal,
        reason,
        started_at_ms: s.started_at_ms,
        finished_at_ms: record::now_ms(),
    };
    if let Err(e) = record::save(&container_dir.join(EXIT_FILE), &exit) {
        eprintln!("monitor: saving exit record: {e}");
    }
    if let Err(e) = s.container.delete(true) {
        eprintln!("monitor: deleting container {}: {e}", plan.container_id);
    }
    wake_agent();
    0
}

/// The environment variable naming the agent's wake-up socket (a unix datagram
/// socket the agent binds; monitors inherit the variable from it).
pub const WAKE_SOCKET_ENV: &str = "SKERRY_WAKE_SOCKET";

/// Tells the agent's loop that a container ended, so it need not wait for its next
/// exit watch (best effort: the watch finds the exit anyway).
fn wake_agent() {
    if let Some(path) = std::env::var_os(WAKE_SOCKET_ENV) {
        if let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = sock.send_to(b"exit", path);
        }
    }
}

/// Non-blocking reap of the container's init; `None` while it runs.
fn reap(pid: Pid) -> Option<WaitStatus> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => None,
        Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => Some(st),
        Ok(_) => None,
        // ECHILD: already reaped or not our child (should not happen): treat as gone.
        Err(Errno::ECHILD) => Some(WaitStatus::Exited(pid, 255)),
        Err(_) => None,
    }
}

fn pump(fd: &OwnedFd, stream: Stream, open: &mut bool, log: Option<&mut RotatingLog>) {
    if !*open {
        return;
    }
    let mut buf = [0u8; 16 * 1024];
    let mut log = log;
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => {
                *open = false;
                return;
            }
            Ok(n) => {
                if let Some(l) = log.as_deref_mut() {
                    if let Err(e) = l.feed(stream, &buf[..n]) {
                        eprintln!("monitor: writing container log: {e}");
                    }
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn redirect_stdio(monitor_log: &Path) {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(monitor_log);
    if let Ok(devnull) = File::open("/dev/null") {
        let _ = dup2(devnull.as_raw_fd(), 0);
        match &log {
            Ok(l) => {
                let _ = dup2(l.as_raw_fd(), 1);
                let _ = dup2(l.as_raw_fd(), 2);
            }
            Err(_) => {
                let _ = dup2(devnull.as_raw_fd(), 1);
                let _ = dup2(devnull.as_raw_fd(), 2);
            }
        }
    }
}

/// `skerry monitor reap DIR`: for a container whose monitor died, kill what is left
/// through the cgroup, delete it from libcontainer and write an exit record.
pub fn monitor_reap_main(container_dir: &Path) -> i32 {
    let plan: LaunchPlan = match record::load(&container_dir.join(LAUNCH_FILE)) {
        Ok(Some(p)) => p,
        _ => return 0,
    };
    let state_dir: PathBuf = plan.libcontainer_root.join(&plan.container_id);
    let started_at_ms = record::load::<MonitorRecord>(&container_dir.join(MONITOR_FILE))
        .ok()
        .flatten()
        .map(|m| m.started_at_ms)
        .unwrap_or(0);
    if state_dir.exists() {
        match Container::load(state_dir) {
            Ok(mut c) => {
                let _ = c.kill(Signal::SIGKILL, true);
                if let Err(e) = c.delete(true) {
                    eprintln!("reap {}: delete: {e}", plan.container_id);
                    return 1;
                }
            }
            Err(e) => {
                eprintln!("reap {}: load: {e}", plan.container_id);
                return 1;
            }
        }
    }
    if matches!(
        record::load::<ExitRecord>(&container_dir.join(EXIT_FILE)),
        Ok(None)
    ) {
        let exit = ExitRecord {
            exit_code: 137,
            signal: Some(9),
            reason: ExitReason::MonitorLost,
            started_at_ms,
            finished_at_ms: record::now_ms(),
        };
        if let Err(e) = record::save(&container_dir.join(EXIT_FILE), &exit) {
            eprintln!("reap: {e}");
            return 1;
        }
    }
    0
}
