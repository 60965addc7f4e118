//! cgroup v2 device filter: the `BPF_PROG_TYPE_CGROUP_DEVICE` program for a set of
//! allow rules, as eBPF instructions. Pure: the agent loads and attaches it.
//!
//! The kernel calls the program with `struct bpf_cgroup_dev_ctx { u32 access_type;
//! u32 major; u32 minor; }` in r1 (`access_type` = access << 16 | type; type 1 block,
//! 2 char; access bits 1 mknod, 2 read, 4 write) and allows the operation when it
//! returns 1. The layout generated:
//!
//! ```text
//! r2 = ctx.access_type & 0xffff     type
//! r3 = ctx.access_type >> 16        requested access
//! r4 = ctx.major; r5 = ctx.minor
//! per rule:  [if r2 != type goto next]
//!            [r1 = r3; r1 &= allowed; if r1 != r3 goto next]   (requested ⊆ allowed)
//!            [if r4 != major goto next] [if r5 != minor goto next]
//!            r0 = 1; exit
//! next: …
//! r0 = 0; exit                      deny what no rule allows
//! ```
//!
//! Only allow rules after a deny-all exist in skerry's specs (a privileged container
//! allows everything and gets no program), so the rules' order does not matter.
//! Each instruction is 8 bytes: opcode, dst (low nibble) | src (high nibble), a
//! little-endian i16 offset and a little-endian i32 immediate.

/// A device type a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevType {
    Char,
    Block,
    /// Both (`a` in cgroup v1 rules).
    Any,
}

/// One allow rule: `None` numbers are wildcards (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevRule {
    pub kind: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Access bits (`ACC_*`).
    pub access: u32,
}

/// `BPF_DEVCG_ACC_MKNOD`.
pub const ACC_MKNOD: u32 = 1;
/// `BPF_DEVCG_ACC_READ`.
pub const ACC_READ: u32 = 2;
/// `BPF_DEVCG_ACC_WRITE`.
pub const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
/// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// Access bits of cgroup letters (`r`, `w`, `m`); other letters are refused.
pub fn access_bits(letters: &str) -> Result<u32, char> {
    letters.chars().try_fold(0, |bits, c| match c {
        'r' => Ok(bits | ACC_READ),
        'w' => Ok(bits | ACC_WRITE),
        'm' => Ok(bits | ACC_MKNOD),
        other => Err(other),
    })
}

impl DevRule {
    fn new(kind: DevType, major: Option<u32>, minor: Option<u32>, access: u32) -> Self {
        DevRule {
            kind,
            major,
            minor,
            access,
        }
    }
}

/// What every container may use, as Docker and libcontainer allow it: mknod of any
/// node, and null, zero, full, tty, random, urandom, console, ptmx, the pty slaves
/// (major 136) and net/tun.
pub fn default_rules() -> Vec<DevRule> {
    use DevType::{Block, Char};
    let rwm = ACC_ALL;
    let c = |major, minor| DevRule::new(Char, Some(major), Some(minor), rwm);
    vec![
        DevRule::new(Char, None, None, ACC_MKNOD),
        DevRule::new(Block, None, None, ACC_MKNOD),
        c(1, 3),
        c(1, 5),
        c(1, 7),
        c(5, 0),
        c(1, 8),
        c(1, 9),
        c(5, 1),
        c(5, 2),
        DevRule::new(Char, Some(136), None, rwm),
        c(10, 200),
    ]
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61;
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_K: u8 = 0xb4;
const ALU32_MOV_X: u8 = 0xbc;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

/// One instruction, encoded.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | (dst & 0x0f);
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

/// A conditional jump whose target is the end of the rule's block, fixed up later.
enum Op {
    Plain([u8; 8]),
    /// `if dst != imm goto next`.
    SkipUnlessK(u8, i32),
    /// `if dst != src goto next`.
    SkipUnlessX(u8, u8),
}

fn rule_block(r: &DevRule) -> Vec<[u8; 8]> {
    let mut ops = Vec::new();
    match r.kind {
        DevType::Char => ops.push(Op::SkipUnlessK(2, DEV_CHAR)),
        DevType::Block => ops.push(Op::SkipUnlessK(2, DEV_BLOCK)),
        DevType::Any => {}
    }
    let access = r.access & ACC_ALL;
    if access != ACC_ALL {
        ops.push(Op::Plain(insn(ALU32_MOV_X, 1, 3, 0, 0)));
        ops.push(Op::Plain(insn(ALU32_AND_K, 1, 0, 0, access as i32)));
        ops.push(Op::SkipUnlessX(1, 3));
    }
    // Numbers are u32 in the context; the comparison is on 64 bits with the
    // immediate sign-extended, so numbers from 2^31 up cannot match as immediates.
    // Linux majors are 12 bits and minors 20, so this never applies in practice.
    if let Some(m) = r.major {
        ops.push(Op::SkipUnlessK(4, m as i32));
    }
    if let Some(m) = r.minor {
        ops.push(Op::SkipUnlessK(5, m as i32));
    }
    ops.push(Op::Plain(insn(ALU32_MOV_K, 0, 0, 0, 1)));
    ops.push(Op::Plain(insn(EXIT, 0, 0, 0, 0)));
    let len = ops.len();
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| {
            // Jumps are relative to the next instruction: skip the rest of the block.
            let skip = i16::try_from(len - i - 1).unwrap_or(i16::MAX);
            match op {
                Op::Plain(b) => b,
                Op::SkipUnlessK(dst, imm) => insn(JNE_K, dst, 0, skip, imm),
                Op::SkipUnlessX(dst, src) => insn(JNE_X, dst, src, skip, 0),
            }
        })
        .collect()
}

/// Rules for the same type and numbers as one rule with the union of their access
/// (a request needing read from one and write from another is allowed, as the v1
/// kernel's merged exceptions allow it), first occurrence's place kept.
fn merged(rules: &[DevRule]) -> Vec<DevRule> {
    let mut out: Vec<DevRule> = Vec::with_capacity(rules.len());
    for r in rules {
        match out
            .iter_mut()
            .find(|o| (o.kind, o.major, o.minor) == (r.kind, r.major, r.minor))
        {
            Some(o) => o.access |= r.access,
            None => out.push(r.clone()),
        }
    }
    out
}

/// The program allowing exactly what `rules` allow, everything else denied.
pub fn program(rules: &[DevRule]) -> Vec<[u8; 8]> {
    let mut out = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in &merged(rules) {
        out.extend(rule_block(r));
    }
    out.push(insn(ALU32_MOV_K, 0, 0, 0, 0));
    out.push(insn(EXIT, 0, 0, 0, 0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter of exactly the instructions [`program`] emits, so the
    /// tests check what the program decides, not only its bytes.
    fn run(prog: &[[u8; 8]], kind: i32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let b = prog[pc];
            let (dst, src) = ((b[1] & 0x0f) as usize, (b[1] >> 4) as usize);
            let off = i16::from_le_bytes([b[2], b[3]]);
            let imm = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            pc += 1;
            match b[0] {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[(off / 4) as usize]);
                }
                ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & imm as u32),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> imm),
                ALU32_MOV_K => r[dst] = u64::from(imm as u32),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                JNE_K if r[dst] != imm as i64 as u64 => pc += off as usize,
                JNE_X if r[dst] != r[src] => pc += off as usize,
                JNE_K | JNE_X => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program did not exit")
    }

    fn generate_test_rules() -> Vec<DevRule> {
        let mut rules = default_rules();
        rules.push(DevRule::new(DevType::Char, Some(240), Some(0), ACC_READ));
        rules.push(DevRule::new(DevType::Block, Some(8), None, ACC_ALL));
        rules
    }

    #[test]
    fn devfilter_allows_defaults_and_listed_only() {
        let prog = program(&generate_test_rules());
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 3), 1, "/dev/null");
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 9), 1, "/dev/urandom");
        assert_eq!(run(&prog, DEV_CHAR, rw, 136, 7), 1, "a pty slave");
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 240, 0), 1, "listed, read");
        assert_eq!(
            run(&prog, DEV_CHAR, rw, 240, 0),
            0,
            "listed, write not allowed"
        );
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 240, 1), 0, "unlisted minor");
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 240, 0), 0, "wrong type");
        assert_eq!(
            run(&prog, DEV_CHAR, ACC_MKNOD, 240, 1),
            1,
            "mknod of anything"
        );
        assert_eq!(
            run(&prog, DEV_BLOCK, ACC_MKNOD, 7, 0),
            1,
            "mknod of a block"
        );
        assert_eq!(
            run(&prog, DEV_BLOCK, rw, 8, 3),
            1,
            "block major wildcard minor"
        );
        assert_eq!(run(&prog, DEV_BLOCK, rw, 7, 0), 0, "loop device not listed");
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 1), 0, "/dev/mem");
    }

    #[test]
    fn devfilter_same_device_twice_gets_the_union_of_access() {
        let prog = program(&[
            DevRule::new(DevType::Char, Some(240), Some(2), ACC_READ),
            DevRule::new(DevType::Char, Some(240), Some(2), ACC_WRITE),
        ]);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ | ACC_WRITE, 240, 2), 1);
        assert_eq!(run(&prog, DEV_CHAR, ACC_MKNOD, 240, 2), 0);
    }

    #[test]
    fn devfilter_program_sizes() {
        // The figure in design D32: defaults, +5 per rwm device, +8 per narrower one.
        let base = program(&default_rules()).len();
        assert_eq!(base, 69);
        let mut rules = default_rules();
        rules.push(DevRule::new(DevType::Char, Some(4), Some(64), ACC_ALL));
        assert_eq!(program(&rules).len(), base + 5);
        rules.push(DevRule::new(DevType::Char, Some(4), Some(65), ACC_READ));
        assert_eq!(program(&rules).len(), base + 5 + 8);
    }

    #[test]
    fn devfilter_empty_rules_deny_everything() {
        let prog = program(&[]);
        assert_eq!(prog.len(), 8);
        assert_eq!(run(&prog, DEV_CHAR, ACC_MKNOD, 1, 3), 0);
    }

    #[test]
    fn devfilter_any_type_full_access_rule_is_numbers_only() {
        let rule = DevRule::new(DevType::Any, Some(4), Some(64), ACC_ALL);
        // Two number checks, r0 = 1, exit: no type or access test.
        assert_eq!(rule_block(&rule).len(), 4);
        let prog = program(&[rule]);
        assert_eq!(run(&prog, DEV_BLOCK, ACC_WRITE, 4, 64), 1);
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 4, 64), 1);
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 4, 65), 0);
    }

    #[test]
    fn devfilter_encoding_matches_the_kernel_layout() {
        // r2 = *(u32 *)(r1 + 0): opcode 0x61, dst 2, src 1.
        assert_eq!(program(&[])[0], [0x61, 0x12, 0, 0, 0, 0, 0, 0]);
        // if r4 != 240 goto +2 (a block of jne, mov, exit: skip the mov and exit).
        let block = rule_block(&DevRule::new(DevType::Any, Some(240), None, ACC_ALL));
        assert_eq!(block[0], [0x55, 0x04, 2, 0, 240, 0, 0, 0]);
        assert_eq!(block[2], [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn devfilter_access_letters() {
        assert_eq!(access_bits("rwm"), Ok(ACC_ALL));
        assert_eq!(access_bits("r"), Ok(ACC_READ));
        assert_eq!(access_bits(""), Ok(0));
        assert_eq!(access_bits("rx"), Err('x'));
    }
}
