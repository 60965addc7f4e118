//! One agent per state directory: `skerry agent` holds an exclusive `flock` on
//! `<state_dir>/agent.lock` for its whole life (the file names its pid). A second
//! agent on the same directory would reconcile the same tasks and delete the first
//! one's work as leftovers; it is refused instead, naming the holder. The lock goes
//! with the process (even `kill -9`); its descriptor is close-on-exec, so monitors
//! and helpers never inherit it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The held lock; released when dropped or when the process ends.
pub struct AgentLock(#[allow(dead_code)] Flock<File>);

/// How long a start waits for an agent that is going away (a restart by systemd).
const WAIT: Duration = Duration::from_secs(3);

/// Takes the lock, waiting up to [`WAIT`]; the error names the holder's pid.
pub fn lock_state_dir(state_dir: &Path) -> anyhow::Result<AgentLock> {
    let path = state_dir.join("agent.lock");
    std::fs::create_dir_all(state_dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", state_dir.display()))?;
    let deadline = Instant::now() + WAIT;
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut held) => {
                write_pid(&mut held, &path)?;
                return Ok(AgentLock(held));
            }
            Err((mut file, Errno::EWOULDBLOCK)) if Instant::now() >= deadline => {
                anyhow::bail!(
                    "another skerry agent (pid {}) already uses {}: one agent per state directory",
                    holder(&mut file),
                    state_dir.display()
                );
            }
            Err((_, Errno::EWOULDBLOCK)) => std::thread::sleep(Duration::from_millis(50)),
            Err((_, e)) => anyhow::bail!("{}: flock: {e}", path.display()),
        }
    }
}

fn write_pid(file: &mut File, path: &Path) -> anyhow::Result<()> {
    let io = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)
}

fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.read_to_string(&mut s);
    let pid = s.trim();
    if pid.is_empty() {
        "unknown".into()
    } else {
        pid.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_state_dir(dir.path()).unwrap();
        let err = lock_state_dir(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("one agent"),
            "{err}"
        );
        drop(first);
        assert!(lock_state_dir(dir.path()).is_ok());
    }
}
