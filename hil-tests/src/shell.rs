//! The command channel: a busybox shell in the guest reading a virtio serial port
//! (`hil.cmd`), reached from the host through QEMU's unix socket chardev. It does not
//! depend on the guest's network, so it works with the link cut.
//!
//! Wire: the host writes `{ CMD\n} </dev/null 2>&1; printf '\n@@HIL-END-N %s\n' "$?"`
//! and reads until that end marker; N counts up, so a late answer to a timed-out
//! command is never mistaken for the next one's.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{HilError, Result};

/// What a guest command printed (stdout and stderr) and its exit status.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub text: String,
}

/// A connection to the guest's command shell.
#[derive(Debug)]
pub struct Shell {
    stream: UnixStream,
    pending: Vec<u8>,
    next: u64,
}

impl Shell {
    /// Connects to the chardev socket (QEMU listens on it from its start).
    pub fn connect(path: &Path) -> Result<Self> {
        let stream = UnixStream::connect(path)
            .map_err(|e| HilError::io("connect to command channel", path, e))?;
        Ok(Self::from_stream(stream))
    }

    fn from_stream(stream: UnixStream) -> Self {
        Self {
            stream,
            pending: Vec::new(),
            next: 1,
        }
    }

    /// Runs `cmd` in the guest; fails on timeout (the output so far is in the error).
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<Output> {
        let n = self.next;
        self.next += 1;
        let marker = format!("\n@@HIL-END-{n} ");
        let wire =
            format!("{{ {cmd}\n}} </dev/null 2>&1; printf '\\n@@HIL-END-{n} %s\\n' \"$?\"\n");
        self.stream
            .write_all(wire.as_bytes())
            .map_err(|e| HilError::io("write to command channel", "hil.cmd", e))?;
        let start = Instant::now();
        let mut buf = [0u8; 8192];
        loop {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            if let Some(at) = text.find(&marker) {
                let rest = &text[at + marker.len()..];
                if let Some(end) = rest.find('\n') {
                    let code = rest[..end].trim().parse::<i32>().unwrap_or(-1);
                    let out = text[..at].to_owned();
                    let consumed = at + marker.len() + end + 1;
                    self.pending = text.as_bytes()[consumed..].to_vec();
                    // Whatever an earlier timed-out command printed late is dropped here.
                    let out = match out.rfind("\n@@HIL-END-") {
                        Some(i) => out[i + 1..]
                            .split_once('\n')
                            .map(|(_, r)| r)
                            .unwrap_or("")
                            .to_owned(),
                        None => out,
                    };
                    return Ok(Output { code, text: out });
                }
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(HilError::Timeout {
                    what: format!("guest command {cmd:?}"),
                    secs: timeout.as_secs_f64(),
                    detail: format!(", output so far: {:?}", text),
                });
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(500))))
                .map_err(|e| HilError::io("set timeout on command channel", "hil.cmd", e))?;
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(HilError::Failed("command channel closed".into())),
                Ok(k) => self.pending.extend_from_slice(&buf[..k]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(HilError::io("read from command channel", "hil.cmd", e)),
            }
        }
    }

    /// Runs `cmd` and requires exit status 0; returns its output, trimmed.
    pub fn ok(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let out = self.run(cmd, timeout)?;
        if out.code != 0 {
            return Err(HilError::Failed(format!(
                "guest command {cmd:?} exited {}: {}",
                out.code,
                out.text.trim()
            )));
        }
        Ok(out.text.trim().to_owned())
    }

    /// Writes `contents` to `path` in the guest (a quoted here-document).
    pub fn write_file(&mut self, path: &str, contents: &str) -> Result<()> {
        let cmd = format!(
            "mkdir -p \"$(dirname {path})\" && cat >{path}.hil-tmp <<'HIL_EOF'\n{contents}\nHIL_EOF\nmv {path}.hil-tmp {path} && sync"
        );
        self.ok(&cmd, Duration::from_secs(30)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;
    use std::process::{Child, Command, Stdio};

    use super::*;

    /// The guest's side, played by the host's own `sh -s` on the other end of a socketpair.
    fn local_shell() -> (Shell, Child) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let fd = OwnedFd::from(theirs);
        let child = Command::new("sh")
            .arg("-s")
            .stdin(Stdio::from(fd.try_clone().unwrap()))
            .stdout(Stdio::from(fd))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (Shell::from_stream(ours), child)
    }

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn shell_returns_output_and_exit_status_of_each_command() {
        let (mut sh, mut child) = local_shell();
        let out = sh
            .run(
                "echo one; echo two >&2; exit_with() { return $1; }; exit_with 3",
                T,
            )
            .unwrap();
        assert_eq!((out.code, out.text.trim()), (3, "one\ntwo"));
        assert_eq!(sh.ok("printf no-newline", T).unwrap(), "no-newline");
        assert!(sh
            .ok("false", T)
            .unwrap_err()
            .to_string()
            .contains("exited 1"));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn shell_writes_files_verbatim_through_a_here_document() {
        let dir = tempfile_dir();
        let (mut sh, mut child) = local_shell();
        let path = format!("{dir}/sub/f.json");
        let text = "{\"a\": \"$HOME `x` \\\\0\"}\nline 2";
        sh.write_file(&path, text).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{text}\n"));
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn shell_timeout_is_an_error_and_the_late_answer_does_not_leak_into_the_next() {
        let (mut sh, mut child) = local_shell();
        let err = sh
            .run("sleep 1; echo late", Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert_eq!(sh.ok("echo next", T).unwrap(), "next");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn tempfile_dir() -> String {
        let d = std::env::temp_dir().join(format!("skerry-hil-shell-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.to_string_lossy().into_owned()
    }
}
