//! A small classic-BPF emitter for seccomp filters: the chosen profile rules in, one
//! `sock_filter` program out, covering every ABI the host runs (libseccomp and
//! seccompiler are not usable: the first is C, the second has no 32-bit arm and one
//! match action per filter).
//!
//! Program layout:
//! ```text
//!   ld arch; per ABI: jeq AUDIT_ARCH → ja section; ret KILL_PROCESS
//!   section: ld nr
//!            unconditional allows as ranges:   jge lo; jgt hi; ret ALLOW
//!            unconditional errnos:             jeq nr; ret ERRNO(e)
//!            argument rules, per syscall:      jeq nr; (arg tests; ret ACTION)*; ret ERRNO(default)
//!            jgt max_known → ret ERRNO(ENOSYS); ret ERRNO(default)
//! ```
//! Allowed syscalls never load an argument, so the kernel's per-syscall action
//! cache (5.11+) can skip the filter for them.

use std::collections::BTreeMap;

use super::profile::{Abi, Action, ArgCmp, Op, Rule, DEFAULT_ERRNO};

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The kernel's limit on one filter (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

pub(crate) const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub(crate) const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub(crate) const JGT: u16 = 0x25;
pub(crate) const JGE: u16 = 0x35;
pub(crate) const JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub(crate) const RET: u16 = 0x06; // BPF_RET | BPF_K
pub(crate) const AND: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K

/// `SECCOMP_RET_*` values.
pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const ENOSYS: u32 = 38;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// The return value for an action.
pub fn ret_of(action: Action) -> u32 {
    match action {
        Action::Allow => RET_ALLOW,
        Action::Errno(e) => RET_ERRNO | (e & 0xffff),
    }
}

/// Errors of the emitter (a profile this emitter cannot express).
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("seccomp filter has {0} instructions, more than the kernel's {MAX_INSNS}")]
    TooLong(usize),
    #[error("seccomp filter: a jump spans {0} instructions, more than 255")]
    JumpTooFar(usize),
}

/// A jump target inside one block: the next instruction or a label.
#[derive(Clone, Copy)]
enum To {
    Next,
    L(usize),
}

enum Item {
    Ins(SockFilter),
    Jump { code: u16, k: u32, jt: To, jf: To },
    Label(usize),
}

/// A block with local labels, resolved to u8 offsets by [`Block::finish`].
#[derive(Default)]
struct Block {
    items: Vec<Item>,
    labels: usize,
}

impl Block {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn place(&mut self, l: usize) {
        self.items.push(Item::Label(l));
    }
    fn ins(&mut self, code: u16, k: u32) {
        self.items.push(Item::Ins(SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }
    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }
    fn finish(self) -> Result<Vec<SockFilter>, BpfError> {
        let mut at = vec![0usize; self.labels];
        let mut pc = 0;
        for item in &self.items {
            match item {
                Item::Label(l) => at[*l] = pc,
                _ => pc += 1,
            }
        }
        let mut out = Vec::with_capacity(pc);
        for item in self.items {
            let off = |to: To, pc: usize| -> Result<u8, BpfError> {
                let d = match to {
                    To::Next => 0,
                    To::L(l) => at[l] - pc - 1,
                };
                u8::try_from(d).map_err(|_| BpfError::JumpTooFar(d))
            };
            match item {
                Item::Label(_) => {}
                Item::Ins(i) => out.push(i),
                Item::Jump { code, k, jt, jf } => {
                    let pc = out.len();
                    out.push(SockFilter {
                        code,
                        jt: off(jt, pc)?,
                        jf: off(jf, pc)?,
                        k,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Emits tests of one argument condition: falls through when it holds, jumps to
/// `fail` when not.
fn arg_test(b: &mut Block, abi: Abi, c: &ArgCmp, fail: usize) {
    let lo_off = OFF_ARGS + 8 * u32::from(c.index);
    let hi_off = lo_off + 4;
    let (vhi, vlo) = ((c.value >> 32) as u32, c.value as u32);
    let fail = To::L(fail);
    let wide = !abi.is_32bit();
    let ok = b.label();
    let okt = To::L(ok);
    match c.op {
        Op::Eq | Op::Ne | Op::MaskedEq => {
            let (want_hi, want_lo) = match c.op {
                Op::MaskedEq => ((c.value_two >> 32) as u32, c.value_two as u32),
                _ => (vhi, vlo),
            };
            // For Ne, "differs" is success: a differing high word is already ok.
            let (hi_t, hi_f, lo_t, lo_f) = match c.op {
                Op::Ne => (To::Next, okt, fail, okt),
                _ => (To::Next, fail, okt, fail),
            };
            if wide {
                b.ins(LD_ABS, hi_off);
                if c.op == Op::MaskedEq {
                    b.ins(AND, vhi);
                }
                b.jump(JEQ, want_hi, hi_t, hi_f);
            }
            b.ins(LD_ABS, lo_off);
            if c.op == Op::MaskedEq {
                b.ins(AND, vlo);
            }
            b.jump(JEQ, want_lo, lo_t, lo_f);
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // Greater family: a higher high word passes, a lower one fails.
            let greater = matches!(c.op, Op::Gt | Op::Ge);
            let (above, below) = if greater { (okt, fail) } else { (fail, okt) };
            if wide {
                b.ins(LD_ABS, hi_off);
                b.jump(JGT, vhi, above, To::Next);
                b.jump(JEQ, vhi, To::Next, below);
            }
            b.ins(LD_ABS, lo_off);
            match c.op {
                Op::Gt => b.jump(JGT, vlo, okt, fail),
                Op::Ge => b.jump(JGE, vlo, okt, fail),
                Op::Lt => b.jump(JGE, vlo, fail, okt),
                _ => b.jump(JGT, vlo, fail, okt),
            }
        }
    }
    b.place(ok);
}

/// What the chosen rules say about one syscall number of one ABI.
#[derive(Default)]
struct PerNr {
    /// The first rule without argument conditions, if any: it decides.
    always: Option<Action>,
    /// Rules with argument conditions, in profile order.
    conditional: Vec<(&'static [ArgCmp], Action)>,
}

/// Emits the section of one ABI: expects nothing in A, ends in returns only.
fn section(abi: Abi, rules: &[&'static Rule]) -> Result<Vec<SockFilter>, BpfError> {
    let mut per: BTreeMap<u32, PerNr> = BTreeMap::new();
    for r in rules {
        for &nr in r.nrs[abi.index()] {
            let e = per.entry(nr).or_default();
            if r.args.is_empty() {
                e.always.get_or_insert(r.action);
            } else {
                e.conditional.push((r.args, r.action));
            }
        }
    }
    let default = ret_of(Action::Errno(DEFAULT_ERRNO));
    let mut out = vec![SockFilter {
        code: LD_ABS,
        jt: 0,
        jf: 0,
        k: OFF_NR,
    }];
    // Unconditional allows, merged into ranges of consecutive numbers.
    let allowed: Vec<u32> = per
        .iter()
        .filter(|(_, p)| p.always == Some(Action::Allow))
        .map(|(nr, _)| *nr)
        .collect();
    let mut i = 0;
    while i < allowed.len() {
        let lo = allowed[i];
        let mut hi = lo;
        while i + 1 < allowed.len() && allowed[i + 1] == hi + 1 {
            i += 1;
            hi = allowed[i];
        }
        i += 1;
        if lo == hi {
            out.push(SockFilter {
                code: JEQ,
                jt: 0,
                jf: 1,
                k: lo,
            });
        } else {
            out.push(SockFilter {
                code: JGE,
                jt: 0,
                jf: 2,
                k: lo,
            });
            out.push(SockFilter {
                code: JGT,
                jt: 1,
                jf: 0,
                k: hi,
            });
        }
        out.push(SockFilter {
            code: RET,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        });
    }
    for (nr, p) in &per {
        match p.always {
            Some(Action::Allow) => {}
            Some(action) => {
                out.push(SockFilter {
                    code: JEQ,
                    jt: 0,
                    jf: 1,
                    k: *nr,
                });
                out.push(SockFilter {
                    code: RET,
                    jt: 0,
                    jf: 0,
                    k: ret_of(action),
                });
            }
            None => {
                let mut b = Block::default();
                for (args, action) in &p.conditional {
                    let fail = b.label();
                    for c in *args {
                        arg_test(&mut b, abi, c, fail);
                    }
                    b.ins(RET, ret_of(*action));
                    b.place(fail);
                }
                b.ins(RET, default);
                let body = b.finish()?;
                let skip =
                    u8::try_from(body.len()).map_err(|_| BpfError::JumpTooFar(body.len()))?;
                out.push(SockFilter {
                    code: JEQ,
                    jt: 0,
                    jf: skip,
                    k: *nr,
                });
                out.extend(body);
            }
        }
    }
    out.push(SockFilter {
        code: JGT,
        jt: 0,
        jf: 1,
        k: abi.max_known(),
    });
    out.push(SockFilter {
        code: RET,
        jt: 0,
        jf: 0,
        k: ret_of(Action::Errno(ENOSYS)),
    });
    out.push(SockFilter {
        code: RET,
        jt: 0,
        jf: 0,
        k: default,
    });
    Ok(out)
}

/// Compiles `rules` into one filter for the ABIs `abis` (native first); any other
/// ABI kills the process.
pub fn compile(abis: &[Abi], rules: &[&'static Rule]) -> Result<Vec<SockFilter>, BpfError> {
    let sections = abis
        .iter()
        .map(|abi| section(*abi, rules))
        .collect::<Result<Vec<_>, _>>()?;
    let header_len = 1 + 2 * abis.len() + 1;
    let mut out = vec![SockFilter {
        code: LD_ABS,
        jt: 0,
        jf: 0,
        k: OFF_ARCH,
    }];
    let mut start = header_len;
    for (abi, s) in abis.iter().zip(&sections) {
        out.push(SockFilter {
            code: JEQ,
            jt: 0,
            jf: 1,
            k: abi.audit_arch(),
        });
        let pc = out.len();
        out.push(SockFilter {
            code: JA,
            jt: 0,
            jf: 0,
            k: (start - pc - 1) as u32,
        });
        start += s.len();
    }
    out.push(SockFilter {
        code: RET,
        jt: 0,
        jf: 0,
        k: RET_KILL_PROCESS,
    });
    for s in sections {
        out.extend(s);
    }
    if out.len() > MAX_INSNS {
        return Err(BpfError::TooLong(out.len()));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "bpf_tests.rs"]
mod tests;
