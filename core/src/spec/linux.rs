//! Kernel-facing container settings: `linuxParameters` (capabilities, init, tmpfs,
//! /dev/shm; devices in `devices`), `ulimits` and `systemControls`.

use std::collections::BTreeMap;

use super::ecs::{RawLinuxParameters, RawSystemControl, RawTmpfs, RawUlimit};
use super::error::Problems;
use super::model::{LinuxParameters, NamespaceMode, NetworkMode, Tmpfs, Ulimit};
use super::names::check_mount_target;

/// Linux capability names without the `CAP_` prefix (capabilities(7), up to Linux 6.x).
#[rustfmt::skip]
const CAPABILITIES: &[&str] = &[
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
];

/// `linuxParameters.tmpfs[].mountOptions` ECS accepts; those in [`VALUED_OPTIONS`]
/// take `=value`.
#[rustfmt::skip]
const TMPFS_OPTIONS: &[&str] = &[
    "defaults", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync",
    "async", "dirsync", "remount", "mand", "nomand", "atime", "noatime", "diratime",
    "nodiratime", "bind", "rbind", "unbindable", "runbindable", "private", "rprivate",
    "shared", "rshared", "slave", "rslave", "relatime", "norelatime", "strictatime",
    "nostrictatime", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol",
];
const VALUED_OPTIONS: &[&str] = &["mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"];

/// ECS ulimit names and the OCI rlimit each becomes.
#[rustfmt::skip]
const ULIMITS: &[(&str, &str)] = &[
    ("core", "RLIMIT_CORE"), ("cpu", "RLIMIT_CPU"), ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"), ("locks", "RLIMIT_LOCKS"), ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"), ("nice", "RLIMIT_NICE"), ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"), ("rss", "RLIMIT_RSS"), ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"), ("sigpending", "RLIMIT_SIGPENDING"), ("stack", "RLIMIT_STACK"),
];

/// Sysctls that live in the container's IPC namespace (Docker's list).
#[rustfmt::skip]
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
];

pub(crate) fn check_linux(
    raw: &RawLinuxParameters,
    at: &str,
    ipc_mode: NamespaceMode,
    p: &mut Problems,
) -> LinuxParameters {
    let caps = raw.capabilities.as_ref();
    let cap_add = capabilities(
        caps.and_then(|c| c.add.as_deref()),
        &format!("{at}.capabilities.add"),
        false,
        p,
    );
    let cap_drop = capabilities(
        caps.and_then(|c| c.drop.as_deref()),
        &format!("{at}.capabilities.drop"),
        true,
        p,
    );
    let tmpfs = raw.tmpfs.as_deref().unwrap_or_default();
    let tmpfs = tmpfs
        .iter()
        .enumerate()
        .map(|(i, t)| check_tmpfs(t, &format!("{at}.tmpfs[{i}]"), p))
        .collect();
    if let Some(size) = raw.shared_memory_size {
        if size == 0 {
            p.push(format!("{at}.sharedMemorySize"), "must be at least 1 MiB");
        } else if ipc_mode == NamespaceMode::Host {
            p.push(
                format!("{at}.sharedMemorySize"),
                "cannot be set with ipcMode \"host\": /dev/shm is the host's",
            );
        }
    }
    let refused = [
        (
            "maxSwap",
            raw.max_swap.as_ref().is_some_and(|v| !v.is_null()),
        ),
        (
            "swappiness",
            raw.swappiness.as_ref().is_some_and(|v| !v.is_null()),
        ),
    ];
    for (field, present) in refused {
        if present {
            p.push(format!("{at}.{field}"), "is not supported yet");
        }
    }
    let devices = super::devices::check(
        raw.devices.as_deref().unwrap_or_default(),
        &format!("{at}.devices"),
        p,
    );
    LinuxParameters {
        cap_add,
        cap_drop,
        init_process_enabled: raw.init_process_enabled.unwrap_or(false),
        tmpfs,
        shared_memory_size_mib: raw.shared_memory_size,
        devices,
    }
}

/// Normalizes `chown`/`CAP_CHOWN` to `CAP_CHOWN`; `ALL` only where `allow_all`.
fn capabilities(
    list: Option<&[String]>,
    at: &str,
    allow_all: bool,
    p: &mut Problems,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in list.unwrap_or_default().iter().enumerate() {
        let upper = raw.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        let name = if bare == "ALL" && allow_all {
            "ALL".to_string()
        } else if bare == "ALL" {
            p.push(
                format!("{at}[{i}]"),
                "\"ALL\" can only be dropped: use privileged to get every capability",
            );
            continue;
        } else if CAPABILITIES.contains(&bare) {
            format!("CAP_{bare}")
        } else {
            p.push(
                format!("{at}[{i}]"),
                format!("{raw:?} is not a Linux capability"),
            );
            continue;
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn check_tmpfs(raw: &RawTmpfs, at: &str, p: &mut Problems) -> Tmpfs {
    match &raw.container_path {
        Some(path) => p.check(format!("{at}.containerPath"), check_mount_target(path)),
        None => p.push(format!("{at}.containerPath"), "is required"),
    }
    match raw.size {
        None => p.push(format!("{at}.size"), "is required (MiB)"),
        Some(0) => p.push(format!("{at}.size"), "must be at least 1 MiB"),
        Some(_) => {}
    }
    let options = raw.mount_options.clone().unwrap_or_default();
    for (i, option) in options.iter().enumerate() {
        let (key, value) = match option.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (option.as_str(), None),
        };
        let valued = VALUED_OPTIONS.contains(&key);
        let ok = TMPFS_OPTIONS.contains(&key) && (valued == value.is_some_and(|v| !v.is_empty()));
        if !ok {
            let why = if valued {
                format!(" ({key} needs a value, e.g. {key}=…)")
            } else {
                String::new()
            };
            p.push(
                format!("{at}.mountOptions[{i}]"),
                format!("{option:?} is not a tmpfs mount option ECS allows{why}"),
            );
        }
    }
    Tmpfs {
        container_path: raw.container_path.clone().unwrap_or_default(),
        size_mib: raw.size.unwrap_or(0),
        mount_options: options,
    }
}

pub(crate) fn check_ulimits(raw: &[RawUlimit], at: &str, p: &mut Problems) -> Vec<Ulimit> {
    let mut out: Vec<Ulimit> = Vec::new();
    for (i, u) in raw.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let name = u.name.as_deref().unwrap_or_default();
        let Some((_, rlimit)) = ULIMITS.iter().find(|(ecs, _)| *ecs == name) else {
            let names: Vec<&str> = ULIMITS.iter().map(|(ecs, _)| *ecs).collect();
            p.push(
                format!("{at}.name"),
                format!("must be one of {}, got {name:?}", names.join(", ")),
            );
            continue;
        };
        if out.iter().any(|o| o.rlimit == *rlimit) {
            p.push(
                format!("{at}.name"),
                format!("ulimit {name:?} is set twice"),
            );
        }
        let soft = limit(u.soft_limit, &format!("{at}.softLimit"), p);
        let hard = limit(u.hard_limit, &format!("{at}.hardLimit"), p);
        if let (Some(soft), Some(hard)) = (soft, hard) {
            if soft > hard {
                p.push(
                    format!("{at}.softLimit"),
                    format!("must not exceed hardLimit ({soft} > {hard})"),
                );
            }
            out.push(Ulimit {
                rlimit: rlimit.to_string(),
                soft,
                hard,
            });
        }
    }
    out
}

/// A ulimit value; `-1` means unlimited (`RLIM_INFINITY`).
fn limit(value: Option<i64>, at: &str, p: &mut Problems) -> Option<u64> {
    match value {
        None => p.push(at, "is required"),
        Some(-1) => return Some(u64::MAX),
        Some(v) if v < 0 => p.push(at, format!("must be -1 (unlimited) or at least 0, got {v}")),
        Some(v) => return u64::try_from(v).ok(),
    }
    None
}

/// `systemControls`: only namespaced sysctls, and none of the host's namespaces.
pub(crate) fn check_sysctls(
    raw: &[RawSystemControl],
    at: &str,
    network_mode: NetworkMode,
    ipc_mode: NamespaceMode,
    p: &mut Problems,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (i, s) in raw.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let name = s.namespace.clone().unwrap_or_default();
        let value = s.value.clone().unwrap_or_default();
        let is_net = name.starts_with("net.");
        let is_ipc = IPC_SYSCTLS.contains(&name.as_str()) || name.starts_with("fs.mqueue.");
        if name.is_empty() {
            p.push(format!("{at}.namespace"), "is required");
        } else if !is_net && !is_ipc {
            p.push(
                format!("{at}.namespace"),
                format!("{name:?} is not a namespaced sysctl: it would change the whole device"),
            );
        } else if is_net && network_mode == NetworkMode::Host {
            p.push(format!("{at}.namespace"), format!("{name:?} cannot be set with networkMode \"host\": it would change the device's network"));
        } else if is_ipc && ipc_mode == NamespaceMode::Host {
            p.push(
                format!("{at}.namespace"),
                format!("{name:?} cannot be set with ipcMode \"host\""),
            );
        }
        if value.is_empty() {
            p.push(format!("{at}.value"), "is required");
        }
        if out.insert(name.clone(), value).is_some() {
            p.push(format!("{at}.namespace"), format!("{name:?} is set twice"));
        }
    }
    out
}
