//! skerry-hil: the hardware-in-the-loop harness. It boots an emulated ARM64 gateway
//! (`qemu-system-aarch64 -M virt -cpu cortex-a57`, Debian's arm64 kernel, the initramfs
//! built by `board/build-board.sh`) and drives it: the QEMU monitor cuts and restores
//! the network link, a virtio serial port carries shell commands to the guest (it works
//! with the link down), the serial console is kept in a log file per boot, and a power
//! cut is a SIGKILL of QEMU followed by a boot on the same disk image.
//!
//! It also runs the fleet's broker and image registry on the host ([`broker`]:
//! mosquitto on loopback; [`registry`]: docker-registry on loopback).
//! Owns no skerry logic: the scenario (`tests/board/`) says what to check. Every
//! process it starts (QEMU, mosquitto) is killed by pid when its owner is dropped.

pub mod broker;
mod console;
mod disk;
mod monitor;
mod qemu;
pub mod registry;
mod report;
mod shell;

use std::path::PathBuf;

pub use console::Console;
pub use disk::create_disk;
pub use monitor::Monitor;
pub use qemu::{Board, BoardFiles, BootOptions};
pub use report::{Outcome, Report};
pub use shell::{Output, Shell};

/// What went wrong while driving the board. Each variant names what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum HilError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} timed out after {secs:.1} s{detail}")]
    Timeout {
        what: String,
        secs: f64,
        detail: String,
    },
    #[error("{0}")]
    Failed(String),
}

impl HilError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// Result of a harness call.
pub type Result<T> = std::result::Result<T, HilError>;
