//! Docker's default seccomp filter for containers, from a static binary.
//!
//! Owns: the vendored profile (`default.json`, moby/profiles, Apache-2.0) turned into
//! per-ABI tables at build time ([`profile`]), the choice of its rules by a
//! container's final capabilities, host CPU and kernel, as Docker makes it, the
//! compilation to one classic BPF program ([`bpf`]), and its installation in the
//! container's init (and in every exec'd process) through libcontainer's executor
//! hook ([`executor`]), which runs after capabilities are dropped and no_new_privs
//! is set, right before `execve`.
//!
//! What a container sees: a syscall the profile allows works; one it does not
//! allow fails with EPERM; a number above the highest the profile knows for its ABI
//! (newer than the profile) fails with ENOSYS, so libcs fall back as under runc;
//! `clone3` fails with ENOSYS without CAP_SYS_ADMIN; 32-bit arm processes on an
//! arm64 host and i386 ones on x86_64 get their own tables; any other ABI is killed.
//! Privileged containers, and agents configured with `seccomp = false`, get none.
//!
//! Must not: run libcontainer itself, or allocate after the filter is installed
//! beyond what `execve` needs.

pub mod bpf;
pub mod executor;
pub mod profile;

use serde::{Deserialize, Serialize};

pub use bpf::SockFilter;
pub use executor::SeccompExecutor;
use profile::{HostArch, Selector};

/// How a container is filtered; part of its launch plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompMode {
    /// No filter (privileged containers, or seccomp turned off in the agent config).
    #[default]
    Unconfined,
    /// Docker's default profile, rules chosen for these bounding capabilities.
    DockerDefault { capabilities: Vec<String> },
}

/// Errors of building or installing a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: no syscall tables for this CPU")]
    UnsupportedCpu,
    #[error(transparent)]
    Bpf(#[from] bpf::BpfError),
    #[error("seccomp: installing the filter: {0}")]
    Install(std::io::Error),
    #[error("seccomp: the kernel has no seccomp filter support (CONFIG_SECCOMP_FILTER); set seccomp = false in the agent config to run containers without Docker's filter")]
    KernelUnsupported,
}

/// The filter program for `mode` on this host; `None` for [`SeccompMode::Unconfined`].
pub fn program_for(mode: &SeccompMode) -> Result<Option<Vec<SockFilter>>, SeccompError> {
    let SeccompMode::DockerDefault { capabilities } = mode else {
        return Ok(None);
    };
    let host = HostArch::current().ok_or(SeccompError::UnsupportedCpu)?;
    let sel = Selector {
        caps: capabilities,
        host,
        kernel: profile::kernel_version(),
    };
    Ok(Some(bpf::compile(host.abis(), &sel.rules())?))
}

/// The kernel's `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

/// Installs `prog` on the calling thread. The caller must have set no_new_privs
/// (or hold CAP_SYS_ADMIN), as the kernel requires.
pub fn install(prog: &[SockFilter]) -> Result<(), SeccompError> {
    let len = libc::c_ushort::try_from(prog.len())
        .map_err(|_| SeccompError::Bpf(bpf::BpfError::TooLong(prog.len())))?;
    let fprog = SockFprog {
        len,
        filter: prog.as_ptr(),
    };
    // SAFETY: PR_SET_SECCOMP with SECCOMP_MODE_FILTER reads `fprog` and the `len`
    // instructions it points to, which live until this call returns (the kernel
    // copies them).
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const SockFprog as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(if err.raw_os_error() == Some(libc::EINVAL) {
            SeccompError::KernelUnsupported
        } else {
            SeccompError::Install(err)
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod kernel_tests;
