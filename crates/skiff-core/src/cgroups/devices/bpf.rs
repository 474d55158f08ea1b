//! A small eBPF instruction builder and the BPF_PROG_TYPE_CGROUP_DEVICE program for a [`State`],
//! laid out like runc's `devicefilter`.
//!
//! The program's context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! where `access_type` holds the device type (BPF_DEVCG_DEV_*) in its low 16 bits and the
//! requested access (BPF_DEVCG_ACC_*) in its high 16 bits. It returns 1 to allow, 0 to deny.

use super::{Access, Kind, State};
use crate::error::{Error, Result};

/// Registers.
pub(crate) const R0: u8 = 0;
pub(crate) const R1: u8 = 1;
pub(crate) const R2: u8 = 2;
pub(crate) const R3: u8 = 3;
pub(crate) const R4: u8 = 4;
pub(crate) const R5: u8 = 5;

// Instruction classes, sizes, modes, operations and sources (linux/bpf_common.h, linux/bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

/// BPF_DEVCG_DEV_BLOCK / BPF_DEVCG_DEV_CHAR.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }
    /// `dst = *(u32 *)(src + off)`
    pub const fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }
    /// `dst = (u32)dst & imm`
    pub const fn and32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm)
    }
    /// `dst = (u32)dst >> imm`
    pub const fn rsh32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm)
    }
    /// `dst = (u32)src`
    pub const fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    /// `dst = (u32)imm`
    pub const fn mov32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    /// `if dst != (s64)imm goto pc + 1 + off` (64-bit compare)
    pub const fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
    }
    /// `if (u32)dst != (u32)imm goto pc + 1 + off` (32-bit compare, kernel 5.1+)
    pub const fn jne32_imm(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP32 | BPF_JNE | BPF_K, dst, 0, off, imm)
    }
    /// `if dst != src goto pc + 1 + off`
    pub const fn jne_reg(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JNE | BPF_X, dst, src, off, 0)
    }
    pub const fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    /// The kernel's encoding (little-endian fields; dst_reg in the low nibble of byte 1).
    pub fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [self.code, (self.dst & 0x0f) | (self.src << 4), off[0], off[1], imm[0], imm[1], imm[2], imm[3]]
    }
}

/// All instructions' bytes, as BPF_PROG_LOAD takes them.
pub(crate) fn encode(prog: &[Insn]) -> Vec<u8> {
    prog.iter().flat_map(|i| i.to_bytes()).collect()
}

/// Loads the context into R2 (type), R3 (access), R4 (major), R5 (minor).
fn prologue() -> [Insn; 6] {
    [
        Insn::ldx_w(R2, R1, 0),
        Insn::and32_imm(R2, 0xffff),
        Insn::ldx_w(R3, R1, 0),
        Insn::rsh32_imm(R3, 16),
        Insn::ldx_w(R4, R1, 4),
        Insn::ldx_w(R5, R1, 8),
    ]
}

/// `if reg != n goto next`: a 64-bit compare (as runc) when `n` fits a sign-extended imm, else a
/// 32-bit one (the registers hold zero-extended u32 values).
fn skip_unless_eq(reg: u8, n: u32) -> Insn {
    match i32::try_from(n) {
        Ok(imm) => Insn::jne_imm(reg, imm, 0),
        Err(_) => Insn::jne32_imm(reg, n as i32, 0),
    }
}

/// One exception: checks that jump to the next block on mismatch, then `return action`.
fn block(kind: Kind, major: Option<u32>, minor: Option<u32>, access: Access, action: bool) -> Result<Vec<Insn>> {
    let ty = match kind {
        Kind::Char => DEV_CHAR,
        Kind::Block => DEV_BLOCK,
        Kind::All => return Err(Error::Cgroup("internal error: an 'a' rule left in the device exceptions".into())),
    };
    let mut b = vec![Insn::jne_imm(R2, ty, 0)];
    if access != Access::ALL {
        // if (access & rule_access) != access goto next
        b.push(Insn::mov32_reg(R1, R3));
        b.push(Insn::and32_imm(R1, i32::from(access.0)));
        b.push(Insn::jne_reg(R1, R3, 0));
    }
    if let Some(m) = major {
        b.push(skip_unless_eq(R4, m));
    }
    if let Some(m) = minor {
        b.push(skip_unless_eq(R5, m));
    }
    b.push(Insn::mov32_imm(R0, i32::from(action)));
    b.push(Insn::exit());
    // Point each conditional jump at the first instruction after the block.
    let len = b.len();
    for (i, insn) in b.iter_mut().enumerate() {
        if insn.code & 0x07 == BPF_JMP || insn.code & 0x07 == BPF_JMP32 {
            if insn.code & 0xf0 == BPF_EXIT {
                continue;
            }
            insn.off = i16::try_from(len - i - 1).map_err(|_| Error::Cgroup("device program block too long".into()))?;
        }
    }
    Ok(b)
}

/// The program enforcing `state`: one block per exception, then the default action.
pub(crate) fn program(state: &State) -> Result<Vec<Insn>> {
    let mut p = prologue().to_vec();
    for (&(kind, major, minor), &access) in &state.exceptions {
        p.extend(block(kind, major, minor, access, !state.default_allow)?);
    }
    p.push(Insn::mov32_imm(R0, i32::from(state.default_allow)));
    p.push(Insn::exit());
    Ok(p)
}
