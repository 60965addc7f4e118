//! Docker's default seccomp profile as tables (generated at build time from the
//! vendored `default.json` by `agent/build_seccomp.rs`), and the choice of its rules
//! for one container, made exactly as moby's `setupSeccomp` does: a rule applies when
//! every `includes` condition holds and no `excludes` condition does, where `caps`
//! are tested against the container's bounding set, `arches` against the host's CPU
//! (Go's names: amd64, arm64, arm) and `minKernel` against the running kernel.

/// A syscall ABI the filter tells apart by `seccomp_data.arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    X86_64,
    I386,
    Aarch64,
    Arm,
}

/// The ABIs in the order of the generated tables.
pub const ABIS: [Abi; 4] = [Abi::X86_64, Abi::I386, Abi::Aarch64, Abi::Arm];

impl Abi {
    /// Index into the generated `nrs` and `MAX_NR` arrays.
    pub fn index(self) -> usize {
        match self {
            Abi::X86_64 => 0,
            Abi::I386 => 1,
            Abi::Aarch64 => 2,
            Abi::Arm => 3,
        }
    }

    /// `AUDIT_ARCH_*` (linux/audit.h) as `seccomp_data.arch` reports it.
    pub fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 => 0xc000_003e,
            Abi::I386 => 0x4000_0003,
            Abi::Aarch64 => 0xc000_00b7,
            Abi::Arm => 0x4000_0028,
        }
    }

    /// Whether syscall arguments are 32 bits wide (only the low word is compared).
    pub fn is_32bit(self) -> bool {
        matches!(self, Abi::I386 | Abi::Arm)
    }

    /// Highest syscall number the profile knows for this ABI; numbers above it are
    /// newer than the profile and get ENOSYS (so a libc falls back, as under runc).
    pub fn max_known(self) -> u32 {
        MAX_NR[self.index()]
    }
}

/// The host CPU as moby's profile names it, and the ABIs its processes may use
/// (Docker's `archMap`: amd64 → x86_64 + x86, arm64 → aarch64 + arm, arm → arm).
/// x32 (x86_64 numbers with bit 30 set) is not filtered separately: those numbers lie
/// above every known one and get ENOSYS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostArch {
    Amd64,
    Arm64,
    Arm,
}

impl HostArch {
    /// The CPU this binary was built for; `None` on CPUs skerry has no tables for.
    pub fn current() -> Option<Self> {
        if cfg!(target_arch = "x86_64") {
            Some(HostArch::Amd64)
        } else if cfg!(target_arch = "aarch64") {
            Some(HostArch::Arm64)
        } else if cfg!(target_arch = "arm") {
            Some(HostArch::Arm)
        } else {
            None
        }
    }

    /// moby's (Go's) name, as in the profile's `arches` conditions.
    pub fn go_name(self) -> &'static str {
        match self {
            HostArch::Amd64 => "amd64",
            HostArch::Arm64 => "arm64",
            HostArch::Arm => "arm",
        }
    }

    /// The ABIs filtered on this host, native first.
    pub fn abis(self) -> &'static [Abi] {
        match self {
            HostArch::Amd64 => &[Abi::X86_64, Abi::I386],
            HostArch::Arm64 => &[Abi::Aarch64, Abi::Arm],
            HostArch::Arm => &[Abi::Arm],
        }
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Errno(u32),
}

/// libseccomp's comparison operators (`SCMP_CMP_*`), on unsigned 64-bit values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == value_two`.
    MaskedEq,
}

/// One argument condition; all of a rule's conditions must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCmp {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

impl ArgCmp {
    /// Whether `arg` satisfies the condition (the reference the BPF must agree with).
    pub fn holds(&self, arg: u64) -> bool {
        match self.op {
            Op::Ne => arg != self.value,
            Op::Lt => arg < self.value,
            Op::Le => arg <= self.value,
            Op::Eq => arg == self.value,
            Op::Ge => arg >= self.value,
            Op::Gt => arg > self.value,
            Op::MaskedEq => arg & self.value == self.value_two,
        }
    }
}

/// A rule's `includes` or `excludes` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    pub caps: &'static [&'static str],
    pub arches: &'static [&'static str],
    pub min_kernel: Option<(u32, u32)>,
}

/// One entry of the profile's `syscalls` list, names resolved per ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub args: &'static [ArgCmp],
    pub includes: Cond,
    pub excludes: Cond,
    /// Syscall numbers per ABI, in [`ABIS`] order.
    pub nrs: [&'static [u32]; 4],
}

include!(concat!(env!("OUT_DIR"), "/seccomp_profile.rs"));

/// What decides which rules apply to one container.
#[derive(Debug, Clone, Copy)]
pub struct Selector<'a> {
    /// The container's bounding capabilities (`CAP_*`).
    pub caps: &'a [String],
    pub host: HostArch,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
}

impl Selector<'_> {
    fn has(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c == cap)
    }

    /// moby's `setupSeccomp` test for one rule.
    pub fn applies(&self, rule: &Rule) -> bool {
        let arch = self.host.go_name();
        let (inc, exc) = (&rule.includes, &rule.excludes);
        if exc.arches.contains(&arch)
            || exc.caps.iter().any(|c| self.has(c))
            || exc.min_kernel.is_some_and(|k| self.kernel >= k)
        {
            return false;
        }
        (inc.arches.is_empty() || inc.arches.contains(&arch))
            && inc.caps.iter().all(|c| self.has(c))
            && inc.min_kernel.is_none_or(|k| self.kernel >= k)
    }

    /// The rules that apply, in profile order.
    pub fn rules(&self) -> Vec<&'static Rule> {
        RULES.iter().filter(|r| self.applies(r)).collect()
    }
}

/// The running kernel's (major, minor) from `uname -r`; (0, 0) if unreadable, which
/// leaves out rules that need a minimum kernel.
pub fn kernel_version() -> (u32, u32) {
    let release = nix::sys::utsname::uname()
        .ok()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_kernel_release(&release)
}

fn parse_kernel_release(release: &str) -> (u32, u32) {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| (*c).to_string()).collect()
    }

    #[test]
    fn seccomp_profile_names_resolve_or_belong_to_other_cpus() {
        // Every name the tables cannot place is a syscall of a CPU skerry does not
        // run on; a new profile naming a syscall newer than the tables fails here.
        let other_cpus = [
            "riscv_flush_icache",
            "riscv_hwprobe",
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
            "swapcontext",
        ];
        assert_eq!(UNRESOLVED, other_cpus);
    }

    #[test]
    fn seccomp_rules_follow_caps_arch_and_kernel() {
        let sys_admin = caps(&["CAP_SYS_ADMIN"]);
        let none = caps(&[]);
        let sel = |caps, host, kernel| Selector { caps, host, kernel };
        let clone3_enosys = |s: &Selector<'_>| {
            s.rules()
                .iter()
                .any(|r| r.action == Action::Errno(38) && !r.nrs[0].is_empty())
        };
        assert!(clone3_enosys(&sel(&none, HostArch::Amd64, (6, 1))));
        assert!(!clone3_enosys(&sel(&sys_admin, HostArch::Amd64, (6, 1))));
        let arch_prctl = |s: &Selector<'_>| {
            s.rules()
                .iter()
                .any(|r| r.includes.arches == ["amd64", "x32"])
        };
        assert!(arch_prctl(&sel(&none, HostArch::Amd64, (6, 1))));
        assert!(!arch_prctl(&sel(&none, HostArch::Arm64, (6, 1))));
        let ptrace = |s: &Selector<'_>| s.rules().iter().any(|r| r.includes.min_kernel.is_some());
        assert!(ptrace(&sel(&none, HostArch::Arm64, (4, 8))));
        assert!(!ptrace(&sel(&none, HostArch::Arm64, (4, 7))));
    }

    #[test]
    fn seccomp_kernel_release_parsed() {
        assert_eq!(parse_kernel_release("6.1.0-27-amd64"), (6, 1));
        assert_eq!(parse_kernel_release("4.19.94-ti-r42"), (4, 19));
        assert_eq!(parse_kernel_release("garbage"), (0, 0));
    }
}
