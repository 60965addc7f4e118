//! `volumes[].dockerVolumeConfiguration` with Docker's `local` driver: `scope` `task`
//! (the default; removed with the task) or `shared` (kept under the state directory,
//! created when missing only with `autoprovision`), `labels`, and the one family of
//! `driverOpts` that is safe on a gateway: `type=tmpfs` (with `device=tmpfs` and `o`
//! options `size`, `mode`, `uid`, `gid`, `nr_inodes`). Other drivers and options
//! (bind `device`s, block devices, NFS) are refused by name.

use super::ecs::RawDockerVolume;
use super::error::Problems;
use super::model::NamedVolume;

/// `o=` options accepted for a tmpfs volume (all take a value).
const TMPFS_O: &[&str] = &["size", "mode", "uid", "gid", "nr_inodes"];

pub(crate) fn check(raw: &RawDockerVolume, at: &str, p: &mut Problems) -> NamedVolume {
    match raw.driver.as_deref() {
        None | Some("local") => {}
        Some(other) => p.push(
            format!("{at}.driver"),
            format!("{other:?} is not available on the device: only the \"local\" driver is"),
        ),
    }
    let shared = match raw.scope.as_deref() {
        None | Some("task") => false,
        Some("shared") => true,
        Some(other) => {
            p.push(
                format!("{at}.scope"),
                format!("must be \"task\" or \"shared\", got {other:?}"),
            );
            false
        }
    };
    if raw.autoprovision == Some(true) && !shared {
        p.push(
            format!("{at}.autoprovision"),
            "is only valid with scope \"shared\"",
        );
    }
    let opts = raw.driver_opts.clone().unwrap_or_default();
    let mut tmpfs = false;
    let mut options = Vec::new();
    for (key, value) in &opts {
        let at = format!("{at}.driverOpts.{key}");
        match (key.as_str(), value.as_str()) {
            ("type", "tmpfs") => tmpfs = true,
            ("type", other) => p.push(
                at,
                format!("{other:?} is not supported: only type \"tmpfs\" (a bind or block device volume would reach outside the state directory; use host.sourcePath)"),
            ),
            ("device", "tmpfs") => {}
            ("device", other) => p.push(
                at,
                format!("{other:?} is not supported: only \"tmpfs\" (for a host directory use host.sourcePath)"),
            ),
            ("o", o) => {
                for opt in o.split(',').filter(|s| !s.is_empty()) {
                    let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
                    if !TMPFS_O.contains(&k) || v.is_empty() {
                        p.push(
                            at.clone(),
                            format!("{opt:?} is not supported: use {}", tmpfs_o_list()),
                        );
                    } else {
                        options.push(opt.to_string());
                    }
                }
            }
            (other, _) => p.push(
                at,
                format!("{other:?} is not a local driver option skerry supports (type, device, o)"),
            ),
        }
    }
    if !tmpfs && !opts.is_empty() && !opts.contains_key("type") {
        p.push(
            format!("{at}.driverOpts"),
            "device and o need type \"tmpfs\"",
        );
    }
    NamedVolume {
        shared,
        autoprovision: raw.autoprovision.unwrap_or(false),
        tmpfs_options: tmpfs.then_some(options),
        labels: raw.labels.clone().unwrap_or_default(),
    }
}

fn tmpfs_o_list() -> String {
    TMPFS_O
        .iter()
        .map(|k| format!("{k}=…"))
        .collect::<Vec<_>>()
        .join(", ")
}
