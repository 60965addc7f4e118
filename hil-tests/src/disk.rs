//! The board's persistent state disk: a raw image formatted once with the host's
//! e2fsprogs (`mkfs.ext4`), then reused across power cycles.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::Command;

use crate::{HilError, Result};

/// Creates `path` as a sparse raw image of `mib` MiB holding an empty ext4 filesystem.
/// Refuses to overwrite an existing image (the point of the disk is to persist).
pub fn create_disk(path: &Path, mib: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| HilError::io("create disk image", path, e))?;
    file.set_len(mib * 1024 * 1024)
        .map_err(|e| HilError::io("size disk image", path, e))?;
    drop(file);
    let out = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-L",
            "skerry-state",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1",
        ])
        .arg(path)
        .output()
        .map_err(|e| HilError::io("run mkfs.ext4 (apt-get install e2fsprogs) on", path, e))?;
    if !out.status.success() {
        return Err(HilError::Failed(format!(
            "mkfs.ext4 {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
