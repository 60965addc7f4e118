//! `dockerSecurityOptions`: the Docker `--security-opt` strings a container may carry.
//! Accepted are those skerry honours; every other one is refused by name:
//! - `no-new-privileges` (`:true`, `=true`): no_new_privs even for a privileged
//!   container (unprivileged ones always have it);
//! - `seccomp=unconfined` (or `:`): no syscall filter for this container;
//! - `apparmor=unconfined` and `label=disable` (or `:`): skerry applies no AppArmor
//!   profile and no SELinux label, which is what they ask for.

use serde_json::Value;

use super::error::Problems;
use super::model::SecurityOptions;

pub(crate) fn check(raw: Option<&Value>, at: &str, p: &mut Problems) -> SecurityOptions {
    let mut out = SecurityOptions::default();
    let Some(raw) = raw.filter(|v| !v.is_null()) else {
        return out;
    };
    let Some(list) = raw.as_array() else {
        p.push(at, "must be a list of strings");
        return out;
    };
    for (i, item) in list.iter().enumerate() {
        let here = format!("{at}[{i}]");
        let Some(opt) = item.as_str() else {
            p.push(here, "must be a string");
            continue;
        };
        // Docker accepts both `key=value` and the older `key:value`.
        let (key, value) = match opt.find(['=', ':']) {
            Some(at) => (&opt[..at], Some(&opt[at + 1..])),
            None => (opt, None),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
            ("no-new-privileges", Some(_)) => p.push(
                here,
                format!("{opt:?} is not supported: skerry always sets no-new-privileges for unprivileged containers"),
            ),
            ("seccomp", Some("unconfined")) => out.seccomp_unconfined = true,
            ("seccomp", _) => p.push(
                here,
                format!("{opt:?} is not supported: skerry applies Docker's default seccomp profile or, with \"seccomp=unconfined\", none; custom profiles are not supported"),
            ),
            ("apparmor", Some("unconfined")) | ("label", Some("disable")) => {}
            ("apparmor", _) => p.push(
                here,
                format!("{opt:?} is not supported: skerry applies no AppArmor profiles"),
            ),
            ("label", _) => p.push(
                here,
                format!("{opt:?} is not supported: skerry applies no SELinux labels"),
            ),
            ("credentialspec", _) => p.push(
                here,
                format!("{opt:?} is not supported: gMSA credential specs are for Windows containers"),
            ),
            _ => p.push(
                here,
                format!("{opt:?} is not supported: skerry understands no-new-privileges, seccomp=unconfined, apparmor=unconfined and label=disable"),
            ),
        }
    }
    out
}
