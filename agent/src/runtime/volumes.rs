//! Task volumes on the host: where each one's data lives, making it before a
//! container binds it, and taking it down with its task.
//!
//! - `host.sourcePath`: that path (created when missing).
//! - no source (ECS's `host: {}`, a Docker volume in ECS): `<task dir>/volumes/<name>/`,
//!   removed with the task, copied up as below.
//! - `dockerVolumeConfiguration` (local driver): scope `task` as above; scope `shared`
//!   at `<state>/volumes/<name>/`, kept across tasks (created only with
//!   `autoprovision`). `type=tmpfs` mounts a tmpfs on the host at that directory,
//!   so every container of the task shares it, as Docker's local driver does.
//!   `type=none`, `o=bind`, `device=/dir`: the volume's data is that existing host
//!   directory (refused by name when missing), bound straight into the container
//!   (no host mount to undo; the directory is never removed).
//!   Docker's copy-up: when such a volume (bind form included, as Docker's local
//!   driver does) is empty, the image's content at the mount
//!   path is copied in first (owner and mode kept), unless a path component in the
//!   image is a symlink (it could point outside the rootfs).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use skerry_core::spec::{ContainerDefinition, NamedVolume, TaskDefinition, Volume, VolumeSource};

use super::RuntimeError;

/// The host directory holding `v`'s data.
pub fn source_path(v: &Volume, task_volumes_dir: &Path, shared_dir: &Path) -> PathBuf {
    match &v.source {
        VolumeSource::HostPath(p) => p.clone(),
        VolumeSource::Named(NamedVolume {
            bind_device: Some(device),
            ..
        }) => PathBuf::from(device),
        VolumeSource::Named(n) if n.shared => shared_dir.join(&v.name),
        VolumeSource::TaskScoped | VolumeSource::Named(_) => task_volumes_dir.join(&v.name),
    }
}

/// Makes every volume `c` mounts (its own and through volumesFrom) ready on the host.
pub fn prepare(
    task: &TaskDefinition,
    c: &ContainerDefinition,
    rootfs: &Path,
    task_volumes_dir: &Path,
    shared_dir: &Path,
) -> Result<(), RuntimeError> {
    for mp in &task.mounts_of(c) {
        let Some(v) = task.volume(&mp.source_volume) else {
            continue;
        };
        let src = source_path(v, task_volumes_dir, shared_dir);
        let named = match &v.source {
            VolumeSource::HostPath(_) => {
                if !src.exists() {
                    fs::create_dir_all(&src).map_err(|e| RuntimeError::io(&src, e))?;
                }
                continue;
            }
            // ECS's sourceless volume is a Docker volume: copied up like a named one.
            VolumeSource::TaskScoped => {
                if !src.exists() {
                    fs::create_dir_all(&src).map_err(|e| RuntimeError::io(&src, e))?;
                }
                copy_up(rootfs, &mp.container_path, &src)?;
                continue;
            }
            VolumeSource::Named(named) => named,
        };
        if named.bind_device.is_some() {
            if !src.is_dir() {
                let what = if src.exists() {
                    "is not a directory"
                } else {
                    "does not exist"
                };
                return Err(RuntimeError::Spec(format!(
                    "volumes[\"{}\"].dockerVolumeConfiguration.driverOpts.device: {:?} {what} (the local driver binds an existing host directory)",
                    v.name,
                    src.display().to_string()
                )));
            }
        } else if !src.exists() {
            if named.shared && !named.autoprovision {
                return Err(RuntimeError::Spec(format!(
                    "volumes[\"{}\"]: shared volume {} does not exist and autoprovision is false",
                    v.name,
                    src.display()
                )));
            }
            fs::create_dir_all(&src).map_err(|e| RuntimeError::io(&src, e))?;
        }
        if let Some(options) = &named.tmpfs_options {
            if !is_mount_point(&src)? {
                let data = options.join(",");
                mount(
                    Some("tmpfs"),
                    &src,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some(data.as_str()),
                )
                .map_err(|e| RuntimeError::Sys("mount tmpfs volume", e))?;
                tracing::info!(volume = %v.name, path = %src.display(), %data, "tmpfs volume mounted");
            }
        }
        copy_up(rootfs, &mp.container_path, &src)?;
    }
    Ok(())
}

/// Unmounts the tmpfs volumes under a task's `volumes/` directory (before removal).
pub fn unmount_task_volumes(task_volumes_dir: &Path) {
    let Ok(entries) = fs::read_dir(task_volumes_dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if is_mount_point(&path).unwrap_or(false) {
            if let Err(err) = umount2(&path, MntFlags::MNT_DETACH) {
                tracing::warn!(path = %path.display(), %err, "tmpfs volume left mounted");
            }
        }
    }
}

fn is_mount_point(dir: &Path) -> Result<bool, RuntimeError> {
    let meta = fs::metadata(dir).map_err(|e| RuntimeError::io(dir, e))?;
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let pmeta = fs::metadata(parent).map_err(|e| RuntimeError::io(parent, e))?;
    Ok(meta.dev() != pmeta.dev())
}

/// Docker's copy-up: an empty volume gets the image's content at `container_path`.
fn copy_up(rootfs: &Path, container_path: &str, volume: &Path) -> Result<(), RuntimeError> {
    let empty = fs::read_dir(volume)
        .map_err(|e| RuntimeError::io(volume, e))?
        .next()
        .is_none();
    if !empty {
        return Ok(());
    }
    let mut from = rootfs.to_path_buf();
    for part in Path::new(container_path).components() {
        if let Component::Normal(name) = part {
            from.push(name);
            match fs::symlink_metadata(&from) {
                Ok(m) if m.file_type().is_symlink() => return Ok(()),
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
        }
    }
    let meta = fs::symlink_metadata(&from).map_err(|e| RuntimeError::io(&from, e))?;
    if !meta.is_dir() {
        return Ok(());
    }
    copy_tree(&from, volume)?;
    set_owner_mode(volume, &meta)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), RuntimeError> {
    for e in fs::read_dir(from).map_err(|e| RuntimeError::io(from, e))? {
        let e = e.map_err(|e| RuntimeError::io(from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let meta = fs::symlink_metadata(&src).map_err(|e| RuntimeError::io(&src, e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&dst).map_err(|e| RuntimeError::io(&dst, e))?;
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(|e| RuntimeError::io(&dst, e))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| RuntimeError::io(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| RuntimeError::io(&dst, e))?;
        } else {
            continue; // devices, fifos and sockets are not copied up
        }
        set_owner_mode(&dst, &meta)?;
    }
    Ok(())
}

fn set_owner_mode(path: &Path, meta: &fs::Metadata) -> Result<(), RuntimeError> {
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| RuntimeError::io(path, e))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| RuntimeError::io(path, e))?;
    }
    Ok(())
}
