//! `linuxParameters.devices`: host device nodes given to a container, with the
//! access its cgroup device rule allows. Pure: that `hostPath` really is a device
//! node is checked by the agent when it builds the container (it needs a `stat`).

use super::ecs::RawDevice;
use super::error::Problems;
use super::model::Device;
use super::names::{check_absolute, check_mount_target};

/// ECS `permissions` values and the cgroup access letter each becomes.
const PERMISSIONS: &[(&str, char)] = &[("read", 'r'), ("write", 'w'), ("mknod", 'm')];

/// Checks every entry; an entry without `containerPath` keeps the host's path, and
/// one without `permissions` gets all three (Docker's `rwm`).
pub(crate) fn check(raw: &[RawDevice], at: &str, p: &mut Problems) -> Vec<Device> {
    let mut out: Vec<Device> = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let host_path = d.host_path.clone().unwrap_or_default();
        match &d.host_path {
            Some(path) => p.check(format!("{at}.hostPath"), check_absolute(path)),
            None => p.push(format!("{at}.hostPath"), "is required"),
        }
        let container_path = d
            .container_path
            .clone()
            .unwrap_or_else(|| host_path.clone());
        if d.container_path.is_some() {
            p.check(
                format!("{at}.containerPath"),
                check_mount_target(&container_path),
            );
        }
        if let Some(j) = out
            .iter()
            .position(|o| !container_path.is_empty() && o.container_path == container_path)
        {
            p.push(
                format!("{at}.containerPath"),
                format!("{container_path:?} is already the path of devices[{j}]"),
            );
        }
        let permissions = match &d.permissions {
            None => "rwm".to_string(),
            Some(list) => access(list, &format!("{at}.permissions"), p),
        };
        out.push(Device {
            host_path,
            container_path,
            permissions,
        });
    }
    out
}

/// `["read", "write"]` → `"rw"`, in cgroup order; unknown values refused by name.
fn access(list: &[String], at: &str, p: &mut Problems) -> String {
    if list.is_empty() {
        p.push(at, "must list at least one of read, write, mknod");
    }
    for (i, v) in list.iter().enumerate() {
        if !PERMISSIONS.iter().any(|(name, _)| name == v) {
            p.push(
                format!("{at}[{i}]"),
                format!("must be read, write or mknod, got {v:?}"),
            );
        }
    }
    PERMISSIONS
        .iter()
        .filter(|(name, _)| list.iter().any(|v| v == name))
        .map(|(_, letter)| *letter)
        .collect()
}
