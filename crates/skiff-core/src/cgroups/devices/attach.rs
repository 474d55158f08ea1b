//! bpf(2) for the device program: load, attach to a cgroup2 directory, query, detach. The raw
//! syscalls stay in this file behind a few safe functions.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;

use super::bpf::{encode, Insn};
use crate::error::{Error, Result};

// Commands, program and attach types, flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

const LOG_SIZE: usize = 256 * 1024;

/// The BPF_PROG_LOAD part of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
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
}

/// BPF_PROG_ATTACH / BPF_PROG_DETACH, up to `replace_bpf_fd`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// BPF_PROG_QUERY, up to `prog_cnt`.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

/// BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, sizeof attr). Callers pass an attr whose pointers are valid for the call.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::result::Result<libc::c_long, Errno> {
    let size = std::mem::size_of::<T>();
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] prefix of `union bpf_attr` of
    // `size` bytes; the kernel reads (and for some commands writes) only those bytes, and every
    // user pointer inside it is valid for the duration of this call (callers' contract).
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// Wraps a new file descriptor returned by the kernel.
fn owned(fd: libc::c_long) -> Result<OwnedFd> {
    let fd = RawFd::try_from(fd).map_err(|_| Error::Cgroup(format!("bpf returned a bad fd {fd}")))?;
    // SAFETY: the kernel just returned `fd` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn u32_fd(fd: &impl AsRawFd) -> u32 {
    // File descriptors are never negative.
    fd.as_raw_fd().unsigned_abs()
}

/// BPF_PROG_LOAD with a verifier log of `log` (empty: no log).
fn load_with_log(code: &[u8], insn_cnt: u32, license: &CString, log: &mut [u8]) -> std::result::Result<libc::c_long, Errno> {
    let mut name = [0u8; 16];
    name[..10].copy_from_slice(b"skiff_devs");
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    if !log.is_empty() {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    // `code`, `license` and `log` outlive the call.
    bpf(BPF_PROG_LOAD, &mut attr)
}

/// Loads a cgroup device program. On failure, loads again with a verifier log for the error.
pub(crate) fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let code = encode(prog);
    let insn_cnt = u32::try_from(prog.len()).map_err(|_| Error::Cgroup("device program too long".into()))?;
    let license = CString::new("Apache").map_err(|e| Error::Cgroup(e.to_string()))?;
    match load_with_log(&code, insn_cnt, &license, &mut []) {
        Ok(fd) => owned(fd),
        Err(first) => {
            let mut log = vec![0u8; LOG_SIZE];
            let again = load_with_log(&code, insn_cnt, &license, &mut log);
            if let Ok(fd) = again {
                return owned(fd);
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            Err(Error::Cgroup(format!(
                "load device BPF program ({} instructions): {first}; verifier log: {}",
                prog.len(),
                if text.trim().is_empty() { "(empty)" } else { text.trim() }
            )))
        }
    }
}

fn open_dir(dir: &Path) -> Result<File> {
    File::open(dir).map_err(|e| Error::io("open cgroup", dir, e))
}

fn query_fd(cg: &File, dir: &Path) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: u32_fd(cg),
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: u32::try_from(ids.len()).unwrap_or(u32::MAX),
            ..Default::default()
        };
        // `ids` outlives the call and has room for `prog_cnt` ids.
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            Err(Errno::ENOSPC) if attr.prog_cnt as usize > ids.len() => ids.resize(attr.prog_cnt as usize, 0),
            Err(e) => return Err(Error::sys(format!("query device programs of {}", dir.display()), e)),
        }
    }
}

/// Ids of the device programs attached to the cgroup2 directory `dir`.
#[cfg(test)]
pub(crate) fn query(dir: &Path) -> Result<Vec<u32>> {
    query_fd(&open_dir(dir)?, dir)
}

fn attach_cmd(cmd: libc::c_long, cg: &File, prog: &OwnedFd, flags: u32) -> std::result::Result<(), Errno> {
    let mut attr = AttachAttr {
        target_fd: u32_fd(cg),
        attach_bpf_fd: u32_fd(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    bpf(cmd, &mut attr).map(|_| ())
}

/// Loads `prog`, attaches it to `dir` (BPF_F_ALLOW_MULTI) and then detaches the device
/// programs that were attached there before, as runc does on update: the cgroup is never
/// without a filter.
pub(crate) fn replace(dir: &Path, prog: &[Insn]) -> Result<()> {
    let cg = open_dir(dir)?;
    let old = query_fd(&cg, dir)?;
    let fd = load(prog)?;
    attach_cmd(BPF_PROG_ATTACH, &cg, &fd, BPF_F_ALLOW_MULTI)
        .map_err(|e| Error::sys(format!("attach device program to {}", dir.display()), e))?;
    for id in old {
        let mut attr = GetFdAttr { prog_id: id, ..Default::default() };
        let old_fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) {
            Ok(fd) => owned(fd)?,
            // Detached meanwhile.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(format!("get device program {id}"), e)),
        };
        match attach_cmd(BPF_PROG_DETACH, &cg, &old_fd, 0) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys(format!("detach device program {id} from {}", dir.display()), e)),
        }
    }
    Ok(())
}
