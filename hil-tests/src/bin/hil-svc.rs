//! hil-svc: the emulated gateway's service manager, PID 1 after the board's `/init`.
//!
//! It does for `skerry agent` what `systemd/skerry.service` does on a real gateway,
//! and no more: runs the command given on its command line with `NOTIFY_SOCKET` set
//! to a datagram socket it reads, announces `READY=1` on the console and in
//! `/run/hil/ready` (agent pid and guest uptime), restarts the agent 2 s after it exits
//! (`Restart=always`, `RestartSec=2`), and, being PID 1, reaps every orphan (container
//! monitors are reparented here). The agent's pid is kept in `/run/hil/agent.pid`.
//! Console lines start with `HIL-SVC:`; the harness waits on them.

use std::ffi::OsString;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const RUN_DIR: &str = "/run/hil";
const NOTIFY_SOCKET: &str = "/run/hil/notify.sock";
const READY_FILE: &str = "/run/hil/ready";
const PID_FILE: &str = "/run/hil/agent.pid";
const RESTART_DELAY: Duration = Duration::from_secs(2);

fn uptime() -> String {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn say(msg: &str) {
    eprintln!("HIL-SVC: {msg} (uptime {})", uptime());
}

/// Reads the agent's notifications forever; `agent` holds the current agent's pid.
fn read_notifications(sock: UnixDatagram, agent: Arc<AtomicI32>) {
    let mut buf = vec![0u8; 4096];
    let mut last_status = String::new();
    loop {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                say(&format!("notify socket: {e}"));
                thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        for line in text.lines() {
            let pid = agent.load(Ordering::SeqCst);
            if line == "READY=1" {
                let up = uptime();
                if let Err(e) = fs::write(READY_FILE, format!("{pid} {up}\n")) {
                    say(&format!("write {READY_FILE}: {e}"));
                }
                say(&format!("agent READY pid={pid}"));
            } else if line == "STOPPING=1" {
                say(&format!("agent STOPPING pid={pid}"));
            } else if let Some(status) = line.strip_prefix("STATUS=") {
                if status != last_status {
                    say(&format!("agent STATUS={status}"));
                    last_status = status.to_owned();
                }
            }
        }
    }
}

/// Waits for any child; returns (pid, raw status), or None when there is none.
fn wait_any(flags: libc::c_int) -> Option<(i32, i32)> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes only to `status`, a valid local.
    let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
    (pid > 0).then_some((pid, status))
}

fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status}")
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: hil-svc PROGRAM [ARG...]");
        std::process::exit(2);
    };
    if let Err(e) = fs::create_dir_all(RUN_DIR) {
        say(&format!("create {RUN_DIR}: {e}"));
    }
    let _ = fs::remove_file(NOTIFY_SOCKET);
    let agent = Arc::new(AtomicI32::new(0));
    match UnixDatagram::bind(NOTIFY_SOCKET) {
        Ok(sock) => {
            let agent = Arc::clone(&agent);
            thread::spawn(move || read_notifications(sock, agent));
        }
        Err(e) => say(&format!(
            "bind {NOTIFY_SOCKET}: {e} (READY will not be seen)"
        )),
    }
    let mut starts = 0u32;
    loop {
        let _ = fs::remove_file(READY_FILE);
        starts += 1;
        match Command::new(program)
            .args(rest)
            .env("NOTIFY_SOCKET", NOTIFY_SOCKET)
            .spawn()
        {
            Ok(child) => {
                let pid = child.id() as i32;
                agent.store(pid, Ordering::SeqCst);
                let _ = fs::write(PID_FILE, format!("{pid}\n"));
                say(&format!("agent started pid={pid} start={starts}"));
                // Reap orphans until the agent itself exits.
                loop {
                    match wait_any(0) {
                        Some((p, status)) if p == pid => {
                            say(&format!("agent exited pid={pid} {}", describe(status)));
                            break;
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            Err(e) => say(&format!("cannot start agent: {e}")),
        }
        agent.store(0, Ordering::SeqCst);
        // RestartSec: keep reaping while waiting.
        let step = Duration::from_millis(100);
        let mut waited = Duration::ZERO;
        while waited < RESTART_DELAY {
            while wait_any(libc::WNOHANG).is_some() {}
            thread::sleep(step);
            waited += step;
        }
    }
}
