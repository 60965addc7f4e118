//! Small filesystem tools shared by unpack, merge and GC: temporary names that GC can
//! tell are stale, a guard that deletes a temporary tree, metadata setters that never
//! follow symlinks, overlay whiteouts and the opaque xattr (raw libc calls live here).
//!
//! Temporary names are `.tmp-<pid>-<n>-<what>`: GC deletes one only when `<pid>` is dead.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::stat::{self, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary name `.tmp-<pid>-<n>-<what>` (unique within the host).
pub(crate) fn temp_name(what: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".tmp-{}-{n}-{what}", std::process::id())
}

/// True if `name` is a temporary name whose creating process is gone.
pub(crate) fn is_stale_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(".tmp-") else {
        return false;
    };
    match rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) {
        Some(pid) if pid > 0 => {
            let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
            matches!(alive, Err(nix::errno::Errno::ESRCH))
        }
        _ => true,
    }
}

/// Deletes the tree at its path when dropped, unless `keep` was called.
pub(crate) struct TempTree(Option<PathBuf>);

impl TempTree {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self(Some(path))
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Keeps the tree (it was renamed into place).
    pub(crate) fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if let Err(err) = remove_any(&path) {
                tracing::warn!(path = %path.display(), %err, "leaving temporary tree behind");
            }
        }
    }
}

/// Removes whatever is at `path` (file, symlink, device or tree); absent is fine.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets owner, mode (not for symlinks; after chown, which clears setuid) and mtime,
/// never following a symlink at `path`.
pub(crate) fn set_meta(
    path: &Path,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    mtime: Option<i64>,
) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if let Some(mode) = mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if let Some(secs) = mtime {
        set_mtime(path, secs)?;
    }
    Ok(())
}

/// Sets atime and mtime to `secs`, not following symlinks.
pub(crate) fn set_mtime(path: &Path, secs: i64) -> io::Result<()> {
    // time_t is 32 bits on armv7.
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    let t = TimeSpec::new(secs as _, 0);
    stat::utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

/// Creates an overlay whiteout (a 0/0 character device) at `path`.
pub(crate) fn make_whiteout(path: &Path) -> io::Result<()> {
    stat::mknod(path, SFlag::S_IFCHR, Mode::empty(), stat::makedev(0, 0)).map_err(io::Error::from)
}

/// True if `meta` is an overlay whiteout.
pub(crate) fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Marks directory `dir` opaque for overlayfs (`trusted.overlay.opaque=y`).
pub(crate) fn set_opaque(dir: &Path) -> io::Result<()> {
    let path = c_path(dir)?;
    let name = c_str(OPAQUE_XATTR)?;
    // SAFETY: both pointers are NUL-terminated C strings that outlive the call; the
    // value pointer and length describe the 1-byte static slice b"y".
    let rc = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True if directory `dir` carries `trusted.overlay.opaque=y`.
pub(crate) fn is_opaque(dir: &Path) -> io::Result<bool> {
    let path = c_path(dir)?;
    let name = c_str(OPAQUE_XATTR)?;
    let mut value = [0u8; 4];
    // SAFETY: path and name are NUL-terminated and live across the call; the kernel
    // writes at most value.len() bytes into the stack buffer.
    let rc = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if rc >= 0 {
        return Ok(rc == 1 && value[0] == b'y');
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENODATA) | Some(libc::ENOTSUP) | Some(libc::ERANGE) => Ok(false),
        _ => Err(err),
    }
}

/// Flushes the filesystem holding `dir` (one syncfs instead of an fsync per file).
pub(crate) fn sync_fs(dir: &Path) -> io::Result<()> {
    let file = File::open(dir)?;
    // SAFETY: the fd is valid for the lifetime of `file`; syncfs takes no pointers.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn c_str(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsutil_temp_names_of_live_processes_are_not_stale() {
        let name = temp_name("x");
        assert!(!is_stale_temp(&name));
        assert!(is_stale_temp(".tmp-999999999-0-x"));
        assert!(!is_stale_temp("abc"));
    }
}
