//! Linux capabilities for a container: ECS's (Docker's) default set, adjusted by
//! `linuxParameters.capabilities` add/drop, or everything for `privileged`
//! (everything the agent's own bounding set holds: a capability the agent lacks
//! cannot be granted, and asking for it would fail the container's start).

use std::collections::BTreeSet;

/// The capabilities ECS (through Docker) grants by default.
pub const ECS_DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Every capability this build knows (granted to privileged containers).
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYSLOG",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_WAKE_ALARM",
];

/// Capability names by number (linux/capability.h), for the bounding-set check.
#[rustfmt::skip]
const BY_NUMBER: &[&str] = &[
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/// `caps` without those this process's bounding set lacks (or the kernel does not
/// know).
pub fn within_bounding_set(caps: Vec<String>) -> Vec<String> {
    caps.into_iter()
        .filter(|c| {
            BY_NUMBER.iter().position(|n| n == c).is_some_and(|nr| {
                // SAFETY: PR_CAPBSET_READ only reads the calling thread's bounding set.
                unsafe { libc::prctl(libc::PR_CAPBSET_READ, nr as libc::c_ulong, 0, 0, 0) == 1 }
            })
        })
        .collect()
}

/// The effective capability set: defaults (or all when privileged), minus `drop`
/// (`ALL` drops everything first), plus `add` (`ALL` adds everything). Names are
/// already normalized to `CAP_*` by the spec parser.
pub fn effective_capabilities(privileged: bool, add: &[String], drop: &[String]) -> Vec<String> {
    let base: &[&str] = if privileged {
        ALL_CAPABILITIES
    } else {
        ECS_DEFAULT_CAPABILITIES
    };
    let mut set: BTreeSet<String> = base.iter().map(|c| (*c).to_string()).collect();
    let is_all = |c: &String| c == "ALL" || c == "CAP_ALL";
    if drop.iter().any(is_all) {
        set.clear();
    }
    for cap in drop.iter().filter(|c| !is_all(c)) {
        set.remove(cap);
    }
    if add.iter().any(is_all) {
        set.extend(ALL_CAPABILITIES.iter().map(|c| (*c).to_string()));
    }
    set.extend(add.iter().filter(|c| !is_all(c)).cloned());
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_drop_then_add() {
        let caps = effective_capabilities(
            false,
            &["CAP_NET_ADMIN".into()],
            &["CAP_CHOWN".into(), "CAP_KILL".into()],
        );
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert!(caps.contains(&"CAP_SETUID".to_string()));
    }

    #[test]
    fn caps_drop_all_keeps_only_added() {
        let caps = effective_capabilities(false, &["CAP_CHOWN".into()], &["ALL".into()]);
        assert_eq!(caps, vec!["CAP_CHOWN".to_string()]);
    }

    #[test]
    fn caps_bounding_set_filter_keeps_what_this_process_holds() {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let bnd = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
            .expect("CapBnd");
        let kept = within_bounding_set(ALL_CAPABILITIES.iter().map(|c| (*c).to_string()).collect());
        for (nr, name) in BY_NUMBER.iter().enumerate() {
            assert_eq!(
                kept.iter().any(|k| k == name),
                bnd & (1 << nr) != 0,
                "{name}"
            );
        }
        assert_eq!(BY_NUMBER.len(), ALL_CAPABILITIES.len());
    }

    #[test]
    fn caps_privileged_gets_everything() {
        assert_eq!(
            effective_capabilities(true, &[], &[]).len(),
            ALL_CAPABILITIES.len()
        );
    }
}
