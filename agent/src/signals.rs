//! The stop signals of the long-running commands (`skerry agent`, `skerry run`):
//! blocked in every thread and read from a signalfd by the main loop.

use anyhow::Context as _;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Blocks SIGINT/SIGTERM/SIGHUP and returns a non-blocking signalfd for them.
/// (Child processes get a clean signal mask: std resets it before exec.)
pub fn block_stop_signals() -> anyhow::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        mask.add(s);
    }
    mask.thread_block().context("blocking signals")?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).context("signalfd")
}
