//! Tests of the emitter: an independent interpreter runs every compiled program over
//! every syscall number (and argument values around each condition's boundary) and
//! must agree with the rules read directly; on x86_64 the kernel runs it too.

use super::*;
use crate::runtime::seccomp::profile::{HostArch, Selector, ABIS};

/// `struct seccomp_data` as the interpreter sees it.
struct Data {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

impl Data {
    fn word(&self, off: u32) -> u32 {
        match off {
            0 => self.nr,
            4 => self.arch,
            16..=63 => {
                let i = ((off - 16) / 8) as usize;
                if (off - 16) % 8 == 0 {
                    self.args[i] as u32
                } else {
                    (self.args[i] >> 32) as u32
                }
            }
            _ => panic!("load from offset {off}"),
        }
    }
}

/// A classic BPF interpreter for the instructions the emitter uses.
fn run(prog: &[SockFilter], d: &Data) -> u32 {
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        let cond = |hit: bool| if hit { i.jt as usize } else { i.jf as usize };
        match i.code {
            LD_ABS => a = d.word(i.k),
            AND => a &= i.k,
            RET => return i.k,
            JA => pc += i.k as usize,
            JEQ => pc += cond(a == i.k),
            JGT => pc += cond(a > i.k),
            JGE => pc += cond(a >= i.k),
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

/// The decision read straight from the rules, as the kernel must make it.
fn reference(abis: &[Abi], rules: &[&Rule], d: &Data) -> u32 {
    let Some(abi) = abis.iter().find(|a| a.audit_arch() == d.arch) else {
        return RET_KILL_PROCESS;
    };
    let mask = |v: u64| if abi.is_32bit() { v & 0xffff_ffff } else { v };
    let mine = |r: &&&Rule| r.nrs[abi.index()].contains(&d.nr);
    if let Some(r) = rules.iter().filter(mine).find(|r| r.args.is_empty()) {
        return ret_of(r.action);
    }
    for r in rules.iter().filter(mine) {
        let holds = r.args.iter().all(|c| {
            let c = ArgCmp {
                value: mask(c.value),
                value_two: mask(c.value_two),
                ..*c
            };
            c.holds(mask(d.args[c.index as usize]))
        });
        if holds {
            return ret_of(r.action);
        }
    }
    let known = rules.iter().any(|r| r.nrs[abi.index()].contains(&d.nr));
    if d.nr > abi.max_known() && !known {
        ret_of(Action::Errno(38))
    } else {
        ret_of(Action::Errno(DEFAULT_ERRNO))
    }
}

/// Argument values on both sides of every condition's value, in both words.
fn probe_values(rules: &[&Rule]) -> Vec<u64> {
    let mut v = vec![0, 1, u64::MAX, 0xffff_ffff, 1 << 32];
    for r in rules {
        for c in r.args {
            for x in [c.value, c.value_two, c.value | c.value_two] {
                v.extend([
                    x,
                    x.wrapping_add(1),
                    x.wrapping_sub(1),
                    x | 1 << 40,
                    x ^ 0x0100,
                ]);
            }
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn cap_sets() -> Vec<Vec<String>> {
    let defaults: Vec<String> = crate::runtime::caps::ECS_DEFAULT_CAPABILITIES
        .iter()
        .map(|c| (*c).to_string())
        .collect();
    let all = crate::runtime::caps::ALL_CAPABILITIES
        .iter()
        .map(|c| (*c).to_string())
        .collect();
    vec![Vec::new(), defaults, all]
}

/// Everyday syscalls by their kernel numbers (`include/uapi/asm-generic/unistd.h` for
/// aarch64, `arch/arm/tools/syscall.tbl`, `arch/x86/entry/syscalls/syscall_64.tbl`),
/// independent of the tables the build derives from names: a name mismatch between
/// the profile and the tables would deny one of these.
#[test]
fn seccomp_everyday_syscalls_are_allowed_by_number() {
    type Calls = &'static [(&'static str, u32)];
    let everyday: [(HostArch, u32, Calls); 3] = [
        (
            HostArch::Arm64,
            0xc000_00b7,
            &[
                ("openat", 56),
                ("newfstatat", 79),
                ("fstat", 80),
                ("statx", 291),
                ("renameat", 38),
                ("renameat2", 276),
                ("read", 63),
                ("write", 64),
                ("execve", 221),
                ("clone", 220),
                ("wait4", 260),
                ("getdents64", 61),
            ],
        ),
        (
            HostArch::Arm,
            0x4000_0028,
            &[
                ("open", 5),
                ("fstatat64", 327),
                ("stat64", 195),
                ("rename", 38),
                ("read", 3),
                ("write", 4),
                ("execve", 11),
                ("getdents64", 217),
            ],
        ),
        (
            HostArch::Amd64,
            0xc000_003e,
            &[
                ("open", 2),
                ("newfstatat", 262),
                ("stat", 4),
                ("rename", 82),
                ("read", 0),
                ("write", 1),
                ("execve", 59),
                ("getdents64", 217),
            ],
        ),
    ];
    let none: Vec<String> = vec![];
    for (host, arch, calls) in everyday {
        let sel = Selector {
            caps: &none,
            host,
            kernel: (6, 1),
        };
        let prog = compile(host.abis(), &sel.rules()).expect("compiles");
        for (name, nr) in calls {
            let d = Data {
                nr: *nr,
                arch,
                args: [0; 6],
            };
            assert_eq!(
                run(&prog, &d),
                RET_ALLOW,
                "{host:?}: {name} ({nr}) is not allowed"
            );
        }
    }
}

#[test]
fn seccomp_bpf_agrees_with_rules_on_every_abi_and_syscall() {
    for host in [HostArch::Amd64, HostArch::Arm64, HostArch::Arm] {
        for caps in cap_sets() {
            let sel = Selector {
                caps: &caps,
                host,
                kernel: (6, 1),
            };
            let rules = sel.rules();
            let prog = compile(host.abis(), &rules).expect("compiles");
            let values = probe_values(&rules);
            let mut arches: Vec<u32> = ABIS.iter().map(|a| a.audit_arch()).collect();
            arches.push(0x4000_00b7);
            for arch in arches {
                let max = ABIS.iter().map(|a| a.max_known()).max().unwrap_or(0);
                let extra = [
                    0x0f_0001,
                    0x0f_0002,
                    0x0f_0005,
                    0x0f_0006,
                    0x4000_0000,
                    u32::MAX,
                ];
                for nr in (0..max + 8).chain(extra) {
                    let conditional = rules
                        .iter()
                        .any(|r| !r.args.is_empty() && r.nrs.iter().any(|n| n.contains(&nr)));
                    let vals: &[u64] = if conditional { &values } else { &[0] };
                    for idx in 0..2 {
                        for &v in vals {
                            let mut args = [0u64; 6];
                            args[idx] = v;
                            let d = Data { nr, arch, args };
                            assert_eq!(
                                run(&prog, &d),
                                reference(host.abis(), &rules, &d),
                                "host {host:?} caps {} arch {arch:#x} nr {nr} arg{idx} {v:#x}",
                                caps.len()
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn seccomp_bpf_sizes_fit_the_kernel_limit() {
    for host in [HostArch::Amd64, HostArch::Arm64, HostArch::Arm] {
        for caps in cap_sets() {
            let sel = Selector {
                caps: &caps,
                host,
                kernel: (6, 1),
            };
            let started = std::time::Instant::now();
            let prog = compile(host.abis(), &sel.rules()).expect("compiles");
            let took = started.elapsed();
            assert!(prog.len() <= MAX_INSNS);
            println!(
                "{host:?} with {} caps: {} instructions, chosen and compiled in {took:?}",
                caps.len(),
                prog.len()
            );
        }
    }
}
