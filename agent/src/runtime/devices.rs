//! `linuxParameters.devices` on the host: each `hostPath` is `stat`ed (following
//! symlinks, as `/dev/serial/by-id/…` names are) and must be a character or block
//! device node. The container gets a node of the same type, numbers, mode and owner
//! at `containerPath` (OCI `linux.devices`) and a cgroup rule allowing the listed
//! access to exactly that major:minor (OCI `linux.resources.devices`). Every other
//! device stays denied except libcontainer's defaults (null, zero, full, random,
//! urandom, tty, console, ptmx, pts, net/tun).
//!
//! On cgroup v1 libcontainer writes the rules to `devices.allow`/`devices.deny`. On
//! cgroup v2 the rules need an eBPF program, which libcgroups builds only with its
//! `cgroupsv2_devices` feature (libbpf-sys, C): skerry leaves it off and the monitor
//! attaches its own program instead ([`super::devfilter`], design D32).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde_json::{json, Value};
use skerry_core::spec::ContainerDefinition;

use super::RuntimeError;

/// One device resolved on the host, ready for the OCI spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// Where the node is made inside the container.
    pub container_path: String,
    /// `c` (character) or `b` (block).
    pub kind: &'static str,
    pub major: u64,
    pub minor: u64,
    /// Permission bits of the host node.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// cgroup access letters (`rwm` subset).
    pub access: String,
}

/// Resolves the container's devices; a missing path or one that is not a device
/// node is refused naming the field and the path.
pub fn resolve(c: &ContainerDefinition) -> Result<Vec<HostDevice>, RuntimeError> {
    let mut out = Vec::new();
    for (i, d) in c.linux.devices.iter().enumerate() {
        let field = format!(
            "containerDefinitions[\"{}\"].linuxParameters.devices[{i}].hostPath",
            c.name
        );
        let meta = fs::metadata(&d.host_path)
            .map_err(|e| RuntimeError::Spec(format!("{field}: {:?}: {e}", d.host_path)))?;
        let ft = meta.file_type();
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            let what = if ft.is_dir() {
                "a directory"
            } else if ft.is_file() {
                "a regular file"
            } else {
                "not a character or block device"
            };
            return Err(RuntimeError::Spec(format!(
                "{field}: {:?} is not a device node ({what})",
                d.host_path
            )));
        };
        let rdev = meta.rdev();
        out.push(HostDevice {
            container_path: d.container_path.clone(),
            kind,
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            access: d.permissions.clone(),
        });
    }
    Ok(out)
}

/// OCI `linux.devices` entries.
pub fn oci_nodes(devices: &[HostDevice]) -> Vec<Value> {
    devices
        .iter()
        .map(|d| {
            json!({"path": d.container_path, "type": d.kind, "major": d.major, "minor": d.minor,
                   "fileMode": d.mode, "uid": d.uid, "gid": d.gid})
        })
        .collect()
}

/// OCI `linux.resources.devices` allow rules, to follow the deny-all rule.
pub fn oci_rules(devices: &[HostDevice]) -> Vec<Value> {
    devices
        .iter()
        .map(|d| json!({"allow": true, "type": d.kind, "major": d.major, "minor": d.minor, "access": d.access}))
        .collect()
}
