//! seccomp from `linux.seccomp`, compiled with libseccomp.
//!
//! `compile` turns the spec into a filter in the init before the rootfs is set up (libseccomp
//! needs no files); `Filter::load` installs it as late as possible, right before execve, so the
//! runtime's own syscalls are not subject to it. Semantics follow runc:
//! - unknown syscall names are skipped with a warning (profiles list syscalls of newer kernels);
//! - a rule whose action equals the default action is skipped (libseccomp refuses it);
//! - several conditions on the same argument index become one rule per condition (libseccomp
//!   cannot AND two comparisons of one argument), otherwise all conditions form one rule;
//! - `SCMP_ACT_ERRNO` without `errnoRet` returns EPERM; `SCMP_ACT_TRACE` returns EPERM to a
//!   tracer as its message, as runc does;
//! - the filter does not set no_new_privs itself: without `noNewPrivileges` it is loaded while
//!   the process still has CAP_SYS_ADMIN (before the capability drop).
//!
//! libseccomp only generates the BPF; we install it with seccomp(2) ourselves, with the spec's
//! `flags` (those the kernel lacks are skipped with a warning, as runc does) and, for a
//! notifying filter, `SECCOMP_FILTER_FLAG_NEW_LISTENER`. That way `WAIT_KILLABLE_RECV` works
//! even where libseccomp is older than the kernel (Debian 12's 2.5.4 cannot set it).

pub mod cache;
mod default_profile;
mod flags;
pub mod notify;
#[cfg(test)]
mod default_tests;
#[cfg(test)]
mod tests;

pub use default_profile::{default_profile, native_arch};

use std::os::fd::OwnedFd;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompOperator,
};

use crate::error::{Error, Result};

/// A compiled filter, ready to load.
pub struct Filter {
    prog: Prog,
    /// Some rule uses SCMP_ACT_NOTIFY: loading yields a listener fd.
    pub notify: bool,
    /// seccomp(2) flags to load with (the spec's that this kernel has, plus NEW_LISTENER).
    load_flags: u32,
    /// Syscall names the profile lists that this libseccomp does not know.
    pub unknown: Vec<String>,
}

/// A libseccomp context (its BPF is generated when loaded), or a BPF program generated before
/// (see [`cache`]). Either is installed with seccomp(2) directly.
enum Prog {
    Lib(ScmpFilterContext),
    Bpf(Vec<libc::sock_filter>),
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter").field("notify", &self.notify).field("load_flags", &self.load_flags).field("unknown", &self.unknown).finish()
    }
}

fn lib_err(what: impl std::fmt::Display, e: libseccomp::error::SeccompError) -> Error {
    Error::Other(format!("seccomp: {what}: {e}"))
}

fn action(a: LinuxSeccompAction, errno_ret: Option<u32>, field: &str) -> Result<ScmpAction> {
    let errno = match errno_ret {
        Some(n) => i32::try_from(n).map_err(|_| Error::field(format!("{field}.errnoRet"), format!("{n} is not an errno")))?,
        None => libc::EPERM,
    };
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(u16::try_from(errno).unwrap_or(libc::EPERM as u16)),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn compare(a: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare> {
    let index = u32::try_from(a.index()).ok().filter(|i| *i < 6).ok_or_else(|| Error::field(format!("{field}.index"), format!("{} is not a syscall argument (0-5)", a.index())))?;
    let op = match a.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // runc: value is the mask, valueTwo the value compared after masking.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return Ok(ScmpArgCompare::new(index, ScmpCompareOp::MaskedEqual(a.value()), a.value_two().unwrap_or(0)));
        }
    };
    Ok(ScmpArgCompare::new(index, op, a.value()))
}

/// Groups a rule's conditions the way runc does: one rule with all of them when every index is
/// distinct, else one rule per condition.
fn condition_sets(args: &[LinuxSeccompArg], field: &str) -> Result<Vec<Vec<ScmpArgCompare>>> {
    let cmps: Vec<ScmpArgCompare> = args.iter().enumerate().map(|(i, a)| compare(a, &format!("{field}.args[{i}]"))).collect::<Result<_>>()?;
    let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
    indexes.sort_unstable();
    indexes.dedup();
    if cmps.is_empty() {
        Ok(vec![Vec::new()])
    } else if indexes.len() == args.len() {
        Ok(vec![cmps])
    } else {
        Ok(cmps.into_iter().map(|c| vec![c]).collect())
    }
}

/// Compiles `linux.seccomp`. Errors name the field; unknown syscall names are not errors.
pub fn compile(spec: &LinuxSeccomp) -> Result<Filter> {
    let default = action(spec.default_action(), spec.default_errno_ret(), "linux.seccomp.defaultAction")?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| lib_err("init filter", e))?;
    // no_new_privs is the spec's decision (process.noNewPrivileges), not the filter's.
    ctx.set_ctl_nnp(false).map_err(|e| lib_err("clear the no_new_privs attribute", e))?;
    for a in spec.architectures().iter().flatten() {
        ctx.add_arch(arch(*a)).map_err(|e| lib_err(format_args!("linux.seccomp.architectures: add {a:?}"), e))?;
    }
    let mut unknown = Vec::new();
    for (i, rule) in spec.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(rule.action(), rule.errno_ret(), &field)?;
        if act == default {
            continue;
        }
        let sets = condition_sets(rule.args().as_deref().unwrap_or(&[]), &field)?;
        for name in rule.names() {
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                unknown.push(name.clone());
                continue;
            };
            for conds in &sets {
                let r = if conds.is_empty() { ctx.add_rule(act, sys) } else { ctx.add_rule_conditional(act, sys, conds) };
                r.map_err(|e| lib_err(format_args!("{field}: rule for {name}"), e))?;
            }
        }
    }
    if !unknown.is_empty() {
        tracing::warn!("seccomp: unknown syscalls skipped: {}", unknown.join(", "));
    }
    let notify = flags::notifies(spec);
    if notify && spec.listener_path().is_none() {
        return Err(Error::field("linux.seccomp.listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath to send the notify fd to"));
    }
    let load_flags = flags::load_flags(spec, notify)?;
    Ok(Filter { prog: Prog::Lib(ctx), notify, load_flags, unknown })
}

/// Loads `filter` unless it belongs after no_new_privs; see `setup::exec` for the other case.
/// Returns the notify fd of a notifying filter.
pub fn load_early(filter: Option<&Filter>, no_new_privs: bool) -> Result<Option<OwnedFd>> {
    match filter {
        Some(f) if !no_new_privs => f.load(),
        _ => Ok(None),
    }
}

impl Filter {
    /// Installs the filter on this thread (all threads with TSYNC); returns the notify fd when
    /// a rule notifies. A cached filter allocates nothing here.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        let fd = match &self.prog {
            Prog::Bpf(prog) => flags::install(prog, self.load_flags)?,
            Prog::Lib(_) => {
                let prog = cache::parse(&self.bpf()?).ok_or_else(|| Error::Other("seccomp: libseccomp generated an empty BPF program".into()))?;
                flags::install(&prog, self.load_flags)?
            }
        };
        match (self.notify, fd) {
            (false, _) => Ok(None),
            (true, Some(fd)) => Ok(Some(fd)),
            (true, None) => Err(Error::Other("seccomp: the notifying filter gave no listener fd".into())),
        }
    }

    fn lib(&self) -> Result<&ScmpFilterContext> {
        match &self.prog {
            Prog::Lib(ctx) => Ok(ctx),
            Prog::Bpf(_) => Err(Error::Other("seccomp: a cached filter has no libseccomp context".into())),
        }
    }

    /// A BPF program's instructions and load flags, to keep for later (the exec record, see
    /// `container::exec_record`); None for a libseccomp context.
    pub(crate) fn bpf_parts(&self) -> Option<(&[libc::sock_filter], u32)> {
        match &self.prog {
            Prog::Bpf(prog) => Some((prog, self.load_flags)),
            Prog::Lib(_) => None,
        }
    }

    /// A filter from what [`Filter::bpf_parts`] gave.
    pub(crate) fn from_bpf(prog: Vec<libc::sock_filter>, notify: bool, load_flags: u32, unknown: Vec<String>) -> Filter {
        Filter { prog: Prog::Bpf(prog), notify, load_flags, unknown }
    }

    /// Whether this filter is a BPF program from the cache (or made for it).
    pub fn is_bpf(&self) -> bool {
        matches!(self.prog, Prog::Bpf(_))
    }

    /// The BPF program libseccomp generates for this filter (what `load` installs).
    pub fn bpf(&self) -> Result<Vec<u8>> {
        let mut f = tempfile_fd()?;
        self.lib()?.export_bpf(&f).map_err(|e| lib_err("export", e))?;
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().and_then(|_| f.read_to_end(&mut v)).map_err(|e| Error::Other(format!("seccomp: read export: {e}")))?;
        Ok(v)
    }

    /// The filter in libseccomp's pseudo-filter-code text (for tests and debugging).
    pub fn pfc(&self) -> Result<String> {
        let mut f = tempfile_fd()?;
        self.lib()?.export_pfc(&f).map_err(|e| lib_err("export", e))?;
        use std::io::{Read, Seek};
        let mut s = String::new();
        f.rewind().and_then(|_| f.read_to_string(&mut s)).map_err(|e| Error::Other(format!("seccomp: read export: {e}")))?;
        Ok(s)
    }
}

fn tempfile_fd() -> Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(c"skiff-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).map_err(|e| Error::sys("memfd_create", e))?;
    Ok(std::fs::File::from(fd))
}
