//! Process security settings: capabilities (all five sets), rlimits, no_new_privs, the session
//! keyring. Seccomp, AppArmor and SELinux come with the security issue.

use std::collections::HashSet;

use caps::{CapSet, Capability as Cap};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimit};

use crate::error::{Error, Result};

fn to_caps(set: &Option<Capabilities>, field: &str) -> Result<HashSet<Cap>> {
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        // oci-spec and caps name capabilities alike (CAP_SYS_ADMIN); go through the name.
        let name = c.to_string();
        let name = if name.starts_with("CAP_") { name } else { format!("CAP_{name}") };
        let cap: Cap = name.parse().map_err(|_| Error::field(format!("process.capabilities.{field}"), format!("unknown capability {name}")))?;
        out.insert(cap);
    }
    Ok(out)
}

/// The capability sets of a process, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: HashSet<Cap>,
    pub effective: HashSet<Cap>,
    pub inheritable: HashSet<Cap>,
    pub permitted: HashSet<Cap>,
    pub ambient: HashSet<Cap>,
}

impl CapSets {
    pub fn from_spec(c: &LinuxCapabilities) -> Result<CapSets> {
        Ok(CapSets {
            bounding: to_caps(c.bounding(), "bounding")?,
            effective: to_caps(c.effective(), "effective")?,
            inheritable: to_caps(c.inheritable(), "inheritable")?,
            permitted: to_caps(c.permitted(), "permitted")?,
            ambient: to_caps(c.ambient(), "ambient")?,
        })
    }

    /// Drops every capability outside the bounding set. Needs CAP_SETPCAP: call before
    /// switching user.
    pub fn apply_bounding(&self) -> Result<()> {
        for cap in caps::all() {
            if !self.bounding.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
                caps::drop(None, CapSet::Bounding, cap).map_err(|e| Error::Other(format!("drop {cap} from bounding set: {e}")))?;
            }
        }
        Ok(())
    }

    /// Sets inheritable, effective, permitted and ambient (after the user switch).
    pub fn apply(&self) -> Result<()> {
        let err = |what: &str, e: caps::errors::CapsError| Error::Other(format!("set {what} capabilities: {e}"));
        // Raise effective to what we still hold so CAP_SETPCAP allows the inheritable change,
        // then narrow effective before permitted (the kernel keeps effective within permitted).
        let held = caps::read(None, CapSet::Permitted).map_err(|e| err("permitted", e))?;
        caps::set(None, CapSet::Effective, &held).map_err(|e| err("effective", e))?;
        caps::set(None, CapSet::Inheritable, &self.inheritable).map_err(|e| err("inheritable", e))?;
        caps::set(None, CapSet::Effective, &self.effective).map_err(|e| err("effective", e))?;
        caps::set(None, CapSet::Permitted, &self.permitted).map_err(|e| err("permitted (it must hold every effective capability)", e))?;
        caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
        for cap in &self.ambient {
            // The kernel raises an ambient capability only if it is permitted and inheritable;
            // runc's default spec lists ambient caps without inheritable ones, and runc skips
            // those with a warning. So do we.
            if !(self.permitted.contains(cap) && self.inheritable.contains(cap)) {
                tracing::debug!("ambient capability {cap} is not both permitted and inheritable; skipped");
                continue;
            }
            caps::raise(None, CapSet::Ambient, *cap).map_err(|e| err("ambient", e))?;
        }
        Ok(())
    }
}

/// The resource number of an rlimit type name (`RLIMIT_NOFILE`).
fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

/// Applies `process.rlimits` to this process.
pub fn apply_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    for (i, l) in limits.iter().enumerate() {
        let name = l.typ().to_string();
        let name = if name.starts_with("RLIMIT_") { name } else { format!("RLIMIT_{}", name.to_uppercase()) };
        let res = rlimit_resource(&name).ok_or_else(|| Error::field(format!("process.rlimits[{i}].type"), format!("unknown rlimit {name}")))?;
        let lim = libc::rlimit { rlim_cur: l.soft(), rlim_max: l.hard() };
        // SAFETY: setrlimit reads the struct we pass by reference.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::field(format!("process.rlimits[{i}]"), format!("setrlimit {name} soft={} hard={}: {e}", l.soft(), l.hard())));
        }
    }
    Ok(())
}

/// Makes this process non-dumpable (CVE-2019-5736): until it execs the container's program it
/// is our binary, and a non-dumpable process's `/proc/<pid>/exe`, fds, memory and environ are
/// out of reach of the container's processes (they lack CAP_SYS_PTRACE in the host user
/// namespace). execve restores dumpability for the program it runs.
pub fn set_non_dumpable() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| Error::sys("prctl(PR_SET_DUMPABLE, 0)", e))
}

/// The init's protection of our binary when the runtime runs as the host's root: non-dumpable
/// from the start (see [`set_non_dumpable`]).
pub fn protect_init(host_root: bool) -> Result<()> {
    if host_root {
        return set_non_dumpable();
    }
    Ok(())
}

/// A rootless runtime's init is made dumpable again once set up, as runc's is (runc runs from a
/// sealed memfd copy instead). Entering a user namespace and switching ids made it
/// non-dumpable, and until it execs its memory belongs to the host's user namespace, so the
/// caller could not open `/proc/<init>/ns/*`: `exec` into a created container would fail.
/// Nothing is given away: the container's processes are the caller on the host, who can
/// already do all that `/proc/<init>/exe` allows.
pub fn open_init_to_caller(host_root: bool) -> Result<()> {
    if host_root {
        return Ok(());
    }
    nix::sys::prctl::set_dumpable(true).map_err(|e| Error::sys("prctl(PR_SET_DUMPABLE, 1)", e))
}

/// Sets no_new_privs.
pub fn set_no_new_privs() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| Error::sys("prctl(PR_SET_NO_NEW_PRIVS)", e))
}

/// Gives the process a fresh session keyring (runc does this unless --no-new-keyring), so a
/// container does not share the host's keys.
pub fn join_new_session_keyring(id: &str) -> Result<()> {
    let name = std::ffi::CString::new(format!("_ses.{id}")).map_err(|_| Error::Other("keyring name".into()))?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads a NUL-terminated string we own.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = nix::errno::Errno::last();
        // Kernels without keys, or keyctl blocked by a profile: not fatal, as in runc.
        if e != nix::errno::Errno::ENOSYS && e != nix::errno::Errno::EPERM && e != nix::errno::Errno::EACCES {
            return Err(Error::sys("join session keyring", e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_parse() {
        let c: LinuxCapabilities = serde_json::from_str(r#"{"bounding":["CAP_SYS_ADMIN","CAP_KILL"],"effective":["CAP_KILL"]}"#).unwrap();
        let s = CapSets::from_spec(&c).unwrap();
        assert!(s.bounding.contains(&Cap::CAP_SYS_ADMIN) && s.bounding.contains(&Cap::CAP_KILL));
        assert_eq!(s.effective.len(), 1);
        assert!(s.ambient.is_empty());
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(rlimit_resource("RLIMIT_NOFILE"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(rlimit_resource("RLIMIT_BOGUS"), None);
    }
}
