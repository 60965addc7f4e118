//! Build step: turns the vendored Docker seccomp profile
//! (`src/runtime/seccomp/default.json`) into Rust tables of syscall numbers for the
//! four syscall ABIs skerry filters (x86_64, i386, aarch64, arm), written to
//! `$OUT_DIR/seccomp_profile.rs` and included by `runtime/seccomp/profile.rs`.
//!
//! Names come from the `syscalls` crate (BSD-2-Clause, generated from the kernel's
//! syscall tables); a name an ABI lacks is left out of that ABI, as libseccomp does.
//! ARM's private syscalls (`__ARM_NR_BASE` 0x0f0000 + n, linux
//! `arch/arm/include/uapi/asm/unistd.h`) are not in those tables and are added here,
//! with ARM's alias `sync_file_range2`.

use std::fmt::Write as _;
use std::str::FromStr;

use serde_json::Value;

/// The ABIs, in the order of the generated `nrs` arrays.
const ABIS: [&str; 4] = ["x86_64", "x86", "aarch64", "arm"];

/// `__ARM_NR_BASE`: private numbers do not count towards the highest known one.
const ARM_NR_BASE: u32 = 0x0f0000;

/// ARM private syscalls (`__ARM_NR_*`), and `sync_file_range2`, which ARM's
/// unistd.h defines as `__NR_arm_sync_file_range` (341).
const ARM_PRIVATE: [(&str, u32); 6] = [
    ("sync_file_range2", 341),
    ("breakpoint", 0x0f0001),
    ("cacheflush", 0x0f0002),
    ("usr26", 0x0f0003),
    ("usr32", 0x0f0004),
    ("set_tls", 0x0f0005),
];

/// Names the profile (and libseccomp) use that the `syscalls` crate spells otherwise:
/// (ABI, profile name, crate name). aarch64's 79 is `__NR_newfstatat` in the kernel's
/// uapi headers (`__NR3264_fstatat` on 64-bit); the crate calls it `fstatat`. Missing
/// it denied every `stat` of busybox on arm64 (found on the QEMU board).
const ALIASES: [(&str, &str, &str); 1] = [("aarch64", "newfstatat", "fstatat")];

fn resolve(abi: &str, name: &str) -> Option<u32> {
    let name = ALIASES
        .iter()
        .find(|(a, n, _)| *a == abi && *n == name)
        .map_or(name, |(_, _, crate_name)| crate_name);
    let id = match abi {
        "x86_64" => syscalls::x86_64::Sysno::from_str(name).map(|s| s.id()).ok(),
        "x86" => syscalls::x86::Sysno::from_str(name).map(|s| s.id()).ok(),
        "aarch64" => syscalls::aarch64::Sysno::from_str(name)
            .map(|s| s.id())
            .ok(),
        "arm" => syscalls::arm::Sysno::from_str(name)
            .map(|s| s.id())
            .ok()
            .or_else(|| {
                ARM_PRIVATE
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, nr)| *nr as i32)
            }),
        _ => None,
    };
    id.and_then(|i| u32::try_from(i).ok())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn cond(v: Option<&Value>) -> String {
    let caps = strings(v.and_then(|c| c.get("caps")));
    let arches = strings(v.and_then(|c| c.get("arches")));
    let min_kernel = match v.and_then(|c| c.get("minKernel")).and_then(Value::as_str) {
        Some(k) => {
            let mut parts = k.split('.').map(|p| p.parse::<u32>().expect("minKernel"));
            let major = parts.next().expect("minKernel major");
            let minor = parts.next().unwrap_or(0);
            format!("Some(({major}, {minor}))")
        }
        None => "None".into(),
    };
    format!("Cond {{ caps: &{caps:?}, arches: &{arches:?}, min_kernel: {min_kernel} }}")
}

fn op(name: &str) -> &'static str {
    match name {
        "SCMP_CMP_NE" => "Op::Ne",
        "SCMP_CMP_LT" => "Op::Lt",
        "SCMP_CMP_LE" => "Op::Le",
        "SCMP_CMP_EQ" => "Op::Eq",
        "SCMP_CMP_GE" => "Op::Ge",
        "SCMP_CMP_GT" => "Op::Gt",
        "SCMP_CMP_MASKED_EQ" => "Op::MaskedEq",
        other => panic!("seccomp profile: unknown comparison {other}"),
    }
}

/// Writes the tables for the profile text `json` to `out`.
pub fn generate(json: &str, out: &std::path::Path) {
    let profile: Value = serde_json::from_str(json).expect("seccomp profile is JSON");
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO", "defaultAction");
    let default_errno = profile["defaultErrnoRet"]
        .as_u64()
        .expect("defaultErrnoRet");
    let mut max = [0u32; 4];
    let mut unresolved = Vec::new();
    let mut rules = String::new();
    for s in profile["syscalls"].as_array().expect("syscalls") {
        let names = strings(s.get("names"));
        let action = match (
            s["action"].as_str(),
            s.get("errnoRet").and_then(Value::as_u64),
        ) {
            (Some("SCMP_ACT_ALLOW"), _) => "Action::Allow".to_string(),
            (Some("SCMP_ACT_ERRNO"), Some(e)) => format!("Action::Errno({e})"),
            (Some("SCMP_ACT_ERRNO"), None) => format!("Action::Errno({default_errno})"),
            (other, _) => panic!("seccomp profile: unsupported action {other:?}"),
        };
        let mut args = String::new();
        for a in s
            .get("args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let _ = write!(
                args,
                "ArgCmp {{ index: {}, op: {}, value: {}, value_two: {} }}, ",
                a["index"].as_u64().expect("args.index"),
                op(a["op"].as_str().expect("args.op")),
                a["value"].as_u64().expect("args.value"),
                a.get("valueTwo").and_then(Value::as_u64).unwrap_or(0),
            );
        }
        let mut nrs = String::new();
        for (i, abi) in ABIS.iter().enumerate() {
            let mut list: Vec<u32> = names.iter().filter_map(|n| resolve(abi, n)).collect();
            list.sort_unstable();
            list.dedup();
            for nr in &list {
                if *nr < ARM_NR_BASE {
                    max[i] = max[i].max(*nr);
                }
            }
            let _ = write!(nrs, "&{list:?}, ");
        }
        for n in &names {
            if ABIS.iter().all(|abi| resolve(abi, n).is_none()) {
                unresolved.push(n.clone());
            }
        }
        let _ = writeln!(
            rules,
            "    Rule {{ action: {action}, args: &[{args}], includes: {}, excludes: {}, nrs: [{nrs}] }},",
            cond(s.get("includes")),
            cond(s.get("excludes")),
        );
    }
    unresolved.sort();
    unresolved.dedup();
    let code = format!(
        "/// The profile's default: ERRNO with this value.\n\
         pub(crate) const DEFAULT_ERRNO: u32 = {default_errno};\n\
         /// Highest syscall number the profile names, per ABI (in [`ABIS`] order).\n\
         pub(crate) const MAX_NR: [u32; 4] = {max:?};\n\
         /// Names no ABI skerry filters knows (other CPUs' syscalls).\n\
         #[cfg(test)]\n\
         pub(crate) const UNRESOLVED: &[&str] = &{unresolved:?};\n\
         /// The profile's rules, in file order.\n\
         pub(crate) static RULES: &[Rule] = &[\n{rules}];\n"
    );
    std::fs::write(out, code).expect("writing seccomp_profile.rs");
}
