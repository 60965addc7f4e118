//! Network namespaces kept by bind mounts (the `ip netns` way), so a container's
//! namespace outlives the agent and can be handed to libcontainer by path. After a
//! reboot the mount is gone (`/run` is a tmpfs) and [`is_mounted`] says so.

use std::fs::File;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::NetError;

/// `NSFS_MAGIC` (linux/magic.h): what `statfs` reports for a namespace file.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Creates a new network namespace and bind-mounts it at `path` (a new file).
/// The namespace is made on a short-lived thread; the caller's stays where it is.
pub fn create(path: &Path) -> Result<(), NetError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| NetError::io(dir, e))?;
    }
    File::create(path).map_err(|e| NetError::io(path, e))?;
    let made = std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::Sys("unshare(CLONE_NEWNET)", e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| NetError::Sys("bind-mounting a network namespace", e))
        })
        .join()
        .unwrap_or(Err(NetError::Sys("netns thread", nix::errno::Errno::EIO)))
    });
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Whether `path` holds a mounted namespace (false after a reboot or a removal).
// f_type is i64 with glibc and u64 with musl: the cast is needed on one of them.
#[allow(clippy::unnecessary_cast)]
pub fn is_mounted(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 as i64 == NSFS_MAGIC)
}

/// Unmounts and deletes `path`; the namespace ends once nothing else holds it.
/// Missing files are fine.
pub fn remove(path: &Path) -> Result<(), NetError> {
    if is_mounted(path) {
        umount2(path, MntFlags::MNT_DETACH)
            .map_err(|e| NetError::Sys("unmounting a network namespace", e))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io(path, e)),
    }
}
