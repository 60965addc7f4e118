//! The board's serial console (ttyAMA0), written by QEMU to one log file per boot.
//! The harness waits for marker lines in it and prints it when a step fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::{HilError, Result};

/// One boot's console log.
#[derive(Debug, Clone)]
pub struct Console {
    path: PathBuf,
}

impl Console {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything logged so far (lossy UTF-8; empty if nothing yet).
    pub fn text(&self) -> String {
        fs::read(&self.path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// How many lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until at least `n` lines contain `needle`; returns the `n`th such line.
    pub fn wait_for(&self, needle: &str, n: usize, timeout: Duration) -> Result<String> {
        let start = Instant::now();
        loop {
            if let Some(line) = self
                .text()
                .lines()
                .filter(|l| l.contains(needle))
                .nth(n - 1)
            {
                return Ok(line.to_owned());
            }
            if start.elapsed() > timeout {
                return Err(HilError::Timeout {
                    what: format!("console line #{n} containing {needle:?}"),
                    secs: timeout.as_secs_f64(),
                    detail: format!(" (log: {})", self.path.display()),
                });
            }
            thread::sleep(Duration::from_millis(25));
        }
    }
}
