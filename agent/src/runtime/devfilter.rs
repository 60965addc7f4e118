//! cgroup v2 device rules: loads the device filter program that
//! [`skerry_core::devfilter::program`] generates with the raw `bpf(2)` syscall
//! (`BPF_PROG_LOAD`, type `BPF_PROG_TYPE_CGROUP_DEVICE`) and attaches it to a
//! container's cgroup (`BPF_PROG_ATTACH`, `BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`).
//!
//! libcontainer applies no device rule on cgroup v2 without libcgroups'
//! `cgroupsv2_devices` feature (libbpf, C), so the monitor calls [`attach`] after
//! libcontainer has created the container (cgroup made, init process in it, waiting)
//! and before it starts the user's process. The container's cgroup is new, so
//! nothing else is attached to it; with `ALLOW_MULTI` a program an ancestor cgroup
//! holds still applies too (each must allow). The attachment lives as long as the
//! cgroup: closing the program's fd here does not detach it. A kernel that cannot
//! load or attach the filter makes the container fail to start, naming the cause
//! (runc does the same): running it without device rules would be a silent hole.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use serde::{Deserialize, Serialize};
use skerry_core::devfilter::{access_bits, default_rules, program, DevRule, DevType};

use super::devices::HostDevice;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const LICENSE: &[u8] = b"Apache-2.0\0";
/// Size of the verifier log fetched when a load fails.
const LOG_BYTES: usize = 64 * 1024;

/// The rules a container's filter allows, as stored in its launch plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRule {
    /// `c` or `b`.
    pub kind: char,
    pub major: u32,
    pub minor: u32,
    /// cgroup letters, a subset of `rwm`.
    pub access: String,
}

/// The listed devices as filter rules (one per device; the defaults are added at
/// attach time).
pub fn rules_for(devices: &[HostDevice]) -> Vec<FilterRule> {
    devices
        .iter()
        .map(|d| FilterRule {
            kind: if d.kind == "b" { 'b' } else { 'c' },
            major: u32::try_from(d.major).unwrap_or(u32::MAX),
            minor: u32::try_from(d.minor).unwrap_or(u32::MAX),
            access: d.access.clone(),
        })
        .collect()
}

/// Errors of loading or attaching the filter.
#[derive(Debug, thiserror::Error)]
pub enum DevFilterError {
    #[error("device rule {0:?}: access letter {1:?} is not r, w or m")]
    Access(String, char),
    #[error("device filter: opening cgroup {0}: {1}")]
    Cgroup(String, std::io::Error),
    #[error("device filter: bpf(BPF_PROG_LOAD): {0}{hint}{1}", hint = hint(.0))]
    Load(std::io::Error, String),
    #[error("device filter: bpf(BPF_PROG_ATTACH) to {0}: {1}")]
    Attach(String, std::io::Error),
}

/// What a load failure usually means, for the refusal.
fn hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            " (no bpf(2): a kernel without CONFIG_BPF_SYSCALL, or an emulator such as qemu-user)"
        }
        Some(libc::EINVAL) => " (the kernel needs CONFIG_CGROUP_BPF for cgroup device filters)",
        _ => "",
    }
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`, padded to
/// 128 bytes of zeros (the kernel requires unknown tail bytes to be zero).
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    pad: [u8; 56],
}

/// `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    pad: [u8; 108],
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly sized `union bpf_attr` prefix (repr(C),
    // zero padded); the kernel reads at most size_of::<T>() bytes from it and
    // writes nothing outside the buffers it points to, which outlive the call.
    // JUSTIFICATION: there is no safe wrapper for bpf(2) without libbpf (C).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn load(insns: &[[u8; 8]], log: Option<&mut Vec<u8>>) -> std::io::Result<OwnedFd> {
    let mut name = [0u8; 16];
    name[..6].copy_from_slice(b"skerry");
    let (log_level, log_size, log_buf) = match log {
        Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: 0,
        pad: [0; 56],
    };
    let fd = bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor we own.
    // JUSTIFICATION: OwnedFd closes it on every path.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Loads the program, raising RLIMIT_MEMLOCK once if the kernel charges programs
/// to it (before 5.11) and it is too low.
fn load_program(insns: &[[u8; 8]]) -> Result<OwnedFd, DevFilterError> {
    match load(insns, None) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            // The monitor's limit only: the container's processes already exist.
            let _ = nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_MEMLOCK,
                libc::RLIM_INFINITY,
                libc::RLIM_INFINITY,
            );
        }
        Err(_) => {}
    }
    load(insns, None).map_err(|e| {
        let mut buf = vec![0u8; LOG_BYTES];
        let _ = load(insns, Some(&mut buf));
        let end = buf.iter().position(|b| *b == 0).unwrap_or(0);
        let log = String::from_utf8_lossy(&buf[..end]).trim().to_string();
        let log = if log.is_empty() {
            String::new()
        } else {
            format!("; verifier: {log}")
        };
        DevFilterError::Load(e, log)
    })
}

/// The full rule set: the defaults every container gets, then `listed`.
pub fn all_rules(listed: &[FilterRule]) -> Result<Vec<DevRule>, DevFilterError> {
    let mut rules = default_rules();
    for r in listed {
        let access =
            access_bits(&r.access).map_err(|bad| DevFilterError::Access(format!("{r:?}"), bad))?;
        rules.push(DevRule {
            kind: if r.kind == 'b' {
                DevType::Block
            } else {
                DevType::Char
            },
            major: Some(r.major),
            minor: Some(r.minor),
            access,
        });
    }
    Ok(rules)
}

/// Loads the filter for `listed` (plus the defaults) and attaches it to the cgroup
/// directory `cgroup_dir` (a cgroup v2 directory).
pub fn attach(cgroup_dir: &Path, listed: &[FilterRule]) -> Result<(), DevFilterError> {
    let insns = program(&all_rules(listed)?);
    let prog = load_program(&insns)?;
    let dir = File::open(cgroup_dir)
        .map_err(|e| DevFilterError::Cgroup(cgroup_dir.display().to_string(), e))?;
    let mut attr = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
        pad: [0; 108],
    };
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map_err(|e| DevFilterError::Attach(cgroup_dir.display().to_string(), e))?;
    Ok(())
}
