//! `skerry init -- CMD…`: the tiny init bound into containers with
//! `linuxParameters.initProcessEnabled` (like Docker's `--init`). As PID 1 it starts
//! CMD, forwards termination signals to it, reaps every zombie, and exits with CMD's
//! status. Also: a check that a binary is static, so it can run inside any image.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals forwarded to the child.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Runs the init; returns the exit code.
pub fn init_main(args: &[String]) -> i32 {
    let Some((program, rest)) = args.split_first() else {
        eprintln!("skerry init: no command given");
        return 127;
    };
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for s in FORWARDED {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        eprintln!("skerry init: blocking signals: {e}");
        return 126;
    }
    // std's Command resets the signal mask in the child before exec.
    let child = match Command::new(program).args(rest).spawn() {
        Ok(c) => Pid::from_raw(c.id() as i32),
        Err(e) => {
            eprintln!("skerry init: {program}: {e}");
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    let sfd = match SignalFd::new(&mask) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("skerry init: signalfd: {e}");
            return 126;
        }
    };
    loop {
        // Reap everything; remember the main child's status.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => return code,
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        match sfd.read_signal() {
            Ok(Some(info)) => {
                if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                    if sig != Signal::SIGCHLD {
                        let _ = kill(child, sig);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("skerry init: reading signals: {e}");
                return 126;
            }
        }
    }
}

/// Whether the ELF file at `path` is statically linked (has no PT_INTERP).
pub fn is_static_elf(path: &Path) -> bool {
    let mut head = vec![0u8; 64 * 1024];
    let n = match File::open(path).and_then(|mut f| f.read(&mut head)) {
        Ok(n) => n,
        Err(_) => return false,
    };
    let h = &head[..n];
    if h.len() < 64 || &h[..4] != b"\x7fELF" {
        return false;
    }
    let le = h[5] == 1;
    let rd = |off: usize, len: usize| -> Option<u64> {
        let b = h.get(off..off + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if le { b[len - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let is64 = h[4] == 2;
    let (phoff, phentsize, phnum) = if is64 {
        (rd(32, 8), rd(54, 2), rd(56, 2))
    } else {
        (rd(28, 4), rd(42, 2), rd(44, 2))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return false;
    };
    for i in 0..phnum {
        let off = (phoff + i * phentsize) as usize;
        match rd(off, 4) {
            Some(3) => return false, // PT_INTERP
            Some(_) => {}
            None => return false, // headers beyond what we read: be conservative
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_static_check() {
        // /bin/sh on Debian is dynamic; busybox-static (when installed) is static.
        assert!(!is_static_elf(Path::new("/bin/sh")));
        if Path::new("/bin/busybox").exists() {
            assert!(is_static_elf(Path::new("/bin/busybox")));
        }
        assert!(!is_static_elf(Path::new("/etc/passwd")));
    }
}
