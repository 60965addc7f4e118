//! The QEMU human monitor on a unix socket: `set_link n0 off|on`, `cont`, `info status`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::{HilError, Result};

const PROMPT: &str = "(qemu) ";

/// A connected monitor.
#[derive(Debug)]
pub struct Monitor {
    stream: UnixStream,
}

impl Monitor {
    /// Connects to the socket QEMU listens on and reads its banner.
    pub fn connect(path: &Path) -> Result<Self> {
        let stream =
            UnixStream::connect(path).map_err(|e| HilError::io("connect to monitor", path, e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| HilError::io("set timeout on monitor", path, e))?;
        let mut m = Self { stream };
        m.read_prompt()?;
        Ok(m)
    }

    fn read_prompt(&mut self) -> Result<String> {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).ends_with(PROMPT) {
            let n = self
                .stream
                .read(&mut buf)
                .map_err(|e| HilError::io("read from monitor", "monitor", e))?;
            if n == 0 {
                return Err(HilError::Failed("QEMU monitor closed".into()));
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&got).into_owned())
    }

    /// Runs one monitor command; returns what it printed (echo and prompt removed).
    pub fn command(&mut self, cmd: &str) -> Result<String> {
        self.stream
            .write_all(format!("{cmd}\n").as_bytes())
            .map_err(|e| HilError::io("write to monitor", "monitor", e))?;
        let text = self.read_prompt()?;
        // The monitor echoes the command line (with terminal escapes) before the output.
        let body = text.trim_end_matches(PROMPT);
        let body = body.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
        Ok(body.replace('\r', "").trim().to_owned())
    }

    /// `set_link n0 on|off`; fails if QEMU answers anything (it is silent on success).
    pub fn set_link(&mut self, netdev: &str, up: bool) -> Result<()> {
        let cmd = format!("set_link {netdev} {}", if up { "on" } else { "off" });
        let out = self.command(&cmd)?;
        if out.is_empty() {
            Ok(())
        } else {
            Err(HilError::Failed(format!("monitor {cmd}: {out}")))
        }
    }
}
