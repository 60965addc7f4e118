//! `volumes[].dockerVolumeConfiguration` with Docker's `local` driver: `scope` `task`
//! (the default; removed with the task) or `shared` (kept under the state directory,
//! created when missing only with `autoprovision`), `labels`, and the `driverOpts`
//! that are safe on a gateway: `type=tmpfs` (with `device=tmpfs` and `o` options
//! `size`, `mode`, `uid`, `gid`, `nr_inodes`) and the bind form `type=none`,
//! `o=bind` (or `rbind`), `device=/host/dir` (that the directory exists is checked
//! by the agent when the container is prepared). Other drivers and options (block
//! devices, NFS) are refused by name.

use super::ecs::RawDockerVolume;
use super::error::Problems;
use super::model::NamedVolume;
use super::names::check_absolute;

/// `o=` options accepted for a tmpfs volume (all take a value).
const TMPFS_O: &[&str] = &["size", "mode", "uid", "gid", "nr_inodes"];
/// `o=` options accepted for a bind volume (`type=none`).
const BIND_O: &[&str] = &["bind", "rbind"];

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
    let kind = opts.get("type").map(String::as_str);
    let mut options = Vec::new();
    let mut bind_device = None;
    for (key, value) in &opts {
        let at = format!("{at}.driverOpts.{key}");
        match (key.as_str(), value.as_str(), kind) {
            ("type", "tmpfs" | "none", _) => {}
            ("type", other, _) => p.push(
                at,
                format!("{other:?} is not supported: the local driver's types here are \"tmpfs\" and \"none\" (a bind of a host directory, with o \"bind\" and a device path); block devices and network filesystems are not"),
            ),
            ("device", "tmpfs", Some("tmpfs")) => {}
            ("device", other, Some("tmpfs")) => p.push(
                at,
                format!("{other:?} is not supported with type \"tmpfs\": use \"tmpfs\""),
            ),
            ("device", path, Some("none")) => {
                p.check(at, check_absolute(path));
                bind_device = Some(path.to_string());
            }
            ("o", o, Some("tmpfs")) => {
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
            ("o", o, Some("none")) => {
                let parts: Vec<&str> = o.split(',').filter(|s| !s.is_empty()).collect();
                if let Some(bad) = parts.iter().find(|o| !BIND_O.contains(o)) {
                    p.push(
                        at,
                        format!("{bad:?} is not supported with type \"none\": use \"bind\" (or \"rbind\")"),
                    );
                } else if !parts.iter().any(|o| matches!(*o, "bind" | "rbind")) {
                    p.push(at, format!("must hold \"bind\" with type \"none\", got {o:?}"));
                }
            }
            ("device" | "o", _, _) => p.push(at, "needs type \"tmpfs\" or \"none\""),
            (other, _, _) => p.push(
                at,
                format!("{other:?} is not a local driver option skerry supports (type, device, o)"),
            ),
        }
    }
    if kind == Some("none") {
        if !opts.contains_key("device") {
            p.push(
                format!("{at}.driverOpts.device"),
                "is required with type \"none\": the host directory to bind",
            );
        }
        if !opts.contains_key("o") {
            p.push(
                format!("{at}.driverOpts.o"),
                "is required with type \"none\": \"bind\"",
            );
        }
    }
    let tmpfs = kind == Some("tmpfs");
    NamedVolume {
        shared,
        autoprovision: raw.autoprovision.unwrap_or(false),
        tmpfs_options: tmpfs.then_some(options),
        bind_device: bind_device.filter(|_| kind == Some("none")),
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
