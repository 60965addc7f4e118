//! Storage: the task's `volumes` (host paths and task-scoped directories) and each
//! container's `mountPoints`, which must name a volume and not collide with each
//! other or with a tmpfs.

use std::path::PathBuf;

use super::ecs::{is_meaningful, RawContainer, RawVolume};
use super::error::Problems;
use super::model::{MountPoint, Tmpfs, Volume, VolumeSource};
use super::names::{check_absolute, check_mount_target, validate_name};

pub(crate) fn volumes(raw: &[RawVolume], p: &mut Problems) -> Vec<Volume> {
    let mut out: Vec<Volume> = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let at = format!("volumes[{i}]");
        let name = v.name.clone().unwrap_or_default();
        match &v.name {
            None => p.push(format!("{at}.name"), "is required"),
            Some(name) => p.check(format!("{at}.name"), validate_name("volume name", name)),
        }
        if let Some(first) = out.iter().position(|o| !name.is_empty() && o.name == name) {
            p.push(
                format!("{at}.name"),
                format!("duplicate volume name {name:?}: also used by volumes[{first}]"),
            );
        }
        let refused = [
            (
                "efsVolumeConfiguration",
                &v.efs_volume_configuration,
                "EFS is not available on the device",
            ),
            (
                "fsxWindowsFileServerVolumeConfiguration",
                &v.fsx_windows_file_server_volume_configuration,
                "FSx for Windows is not available",
            ),
            (
                "configuredAtLaunch",
                &v.configured_at_launch,
                "EBS volumes are not available on the device",
            ),
        ];
        for (field, value, why) in refused {
            if value.as_ref().is_some_and(is_meaningful) {
                p.push(format!("{at}.{field}"), format!("is not supported: {why}"));
            }
        }
        let host_path = v.host.as_ref().and_then(|h| h.source_path.as_deref());
        let source = match (host_path, &v.docker_volume_configuration) {
            (Some(_), Some(_)) => {
                p.push(
                    format!("{at}.dockerVolumeConfiguration"),
                    "cannot be combined with host.sourcePath",
                );
                VolumeSource::TaskScoped
            }
            (None, Some(dv)) => VolumeSource::Named(super::named_volume::check(
                dv,
                &format!("{at}.dockerVolumeConfiguration"),
                p,
            )),
            (Some(path), None) => {
                p.check(format!("{at}.host.sourcePath"), check_absolute(path));
                VolumeSource::HostPath(PathBuf::from(path))
            }
            (None, None) => VolumeSource::TaskScoped,
        };
        out.push(Volume { name, source });
    }
    out
}

/// `mountPoints`, checked against the task's volumes and the container's tmpfs.
pub(crate) fn mount_points(
    raw: &RawContainer,
    at: &str,
    volumes: &[Volume],
    tmpfs: &[Tmpfs],
    p: &mut Problems,
) -> Vec<MountPoint> {
    let out = mounts(raw, at, volumes, p);
    for (i, t) in tmpfs.iter().enumerate() {
        if let Some(j) = out
            .iter()
            .position(|m| same_path(&m.container_path, &t.container_path))
        {
            p.push(
                format!("{at}.linuxParameters.tmpfs[{i}].containerPath"),
                format!(
                    "{:?} is also the target of mountPoints[{j}]",
                    t.container_path
                ),
            );
        }
    }
    out
}

fn mounts(raw: &RawContainer, at: &str, volumes: &[Volume], p: &mut Problems) -> Vec<MountPoint> {
    let mut out: Vec<MountPoint> = Vec::new();
    for (i, m) in raw
        .mount_points
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = format!("{at}.mountPoints[{i}]");
        let source_volume = m.source_volume.clone().unwrap_or_default();
        if m.source_volume.is_none() {
            p.push(format!("{at}.sourceVolume"), "is required");
        } else if !volumes.iter().any(|v| v.name == source_volume) {
            p.push(
                format!("{at}.sourceVolume"),
                format!("no volume named {source_volume:?} in the task's volumes"),
            );
        }
        let container_path = m.container_path.clone().unwrap_or_default();
        match &m.container_path {
            Some(path) => p.check(format!("{at}.containerPath"), check_mount_target(path)),
            None => p.push(format!("{at}.containerPath"), "is required"),
        }
        if let Some(j) = out.iter().position(|o| {
            !container_path.is_empty() && same_path(&o.container_path, &container_path)
        }) {
            p.push(
                format!("{at}.containerPath"),
                format!("{container_path:?} is already mounted by mountPoints[{j}]"),
            );
        }
        out.push(MountPoint {
            source_volume,
            container_path,
            read_only: m.read_only.unwrap_or(false),
        });
    }
    out
}

fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}
