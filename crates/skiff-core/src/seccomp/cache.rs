//! A cache of generated BPF programs under the state root, because libseccomp is slow: building
//! Docker's default profile and generating its BPF takes 8-17 ms on this machine (see
//! `benches/seccomp_compile.rs`), against a goal of 1 ms per container.
//!
//! The key is the exact `linux.seccomp` JSON plus the architecture, the libseccomp version and
//! the kernel release. Entries are files `seccomp-<hash>.bpf` in the state root (files, so the
//! container listing, which reads directories, does not see them); each holds its whole key,
//! compared byte for byte on use, so a hash collision or a stale or torn file is only a miss.
//! Writes go to a temporary file renamed into place. On a hit the filter is installed with
//! seccomp(SECCOMP_SET_MODE_FILTER) directly, with no libseccomp call at all. The load flags
//! (the spec's `flags`, a notifying filter's listener) are worked out again on each use, because
//! which of them this kernel has is not part of the BPF.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxSeccomp, Spec};

use super::{compile, Filter, Prog};
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"skiff seccomp bpf 1\n";
const INSN: usize = std::mem::size_of::<libc::sock_filter>();

/// The filter of a config's `linux.seccomp`, through the cache in `root` when it can be cached.
pub fn for_spec(spec: &Spec, root: &Path) -> Result<Option<Filter>> {
    let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let t = std::time::Instant::now();
    let key = key(s)?;
    let path = entry_path(root, &key);
    if let Some(f) = read(&path, &key, s)? {
        if !f.unknown.is_empty() {
            tracing::warn!("seccomp: unknown syscalls skipped: {}", f.unknown.join(", "));
        }
        tracing::debug!("seccomp: BPF from cache {} in {:?}", path.display(), t.elapsed());
        return Ok(Some(f));
    }
    let f = compile(s)?;
    let bpf = f.bpf()?;
    if let Err(e) = write(&path, &key, &f.unknown, &bpf) {
        tracing::debug!("seccomp: could not cache the BPF in {}: {e}", path.display());
    }
    let prog = parse(&bpf).ok_or_else(|| Error::Other("seccomp: libseccomp generated an empty BPF program".into()))?;
    tracing::debug!("seccomp: compiled {} BPF instructions in {:?}", prog.len(), t.elapsed());
    Ok(Some(Filter { prog: Prog::Bpf(prog), notify: f.notify, load_flags: f.load_flags, unknown: f.unknown }))
}

/// Everything the generated BPF depends on.
fn key(s: &LinuxSeccomp) -> Result<Vec<u8>> {
    let v = libseccomp::ScmpVersion::current().map_err(|e| Error::Other(format!("seccomp: libseccomp version: {e}")))?;
    let kernel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let mut key = format!("{} libseccomp {}.{}.{} kernel {kernel}\n", std::env::consts::ARCH, v.major, v.minor, v.micro).into_bytes();
    serde_json::to_writer(&mut key, s).map_err(|e| Error::Other(format!("seccomp: encode profile: {e}")))?;
    Ok(key)
}

fn entry_path(root: &Path, key: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    root.join(format!("seccomp-{:016x}.bpf", h.finish()))
}

/// Layout: MAGIC, key length (u32 LE), key, unknown-names length (u32 LE), names joined by
/// '\n', then the BPF program. `Ok(None)` is a miss.
fn read(path: &Path, key: &[u8], s: &LinuxSeccomp) -> Result<Option<Filter>> {
    let Some((unknown, prog)) = read_entry(path, key) else {
        return Ok(None);
    };
    let notify = super::flags::notifies(s);
    let load_flags = super::flags::load_flags(s, notify)?;
    Ok(Some(Filter { prog: Prog::Bpf(prog), notify, load_flags, unknown }))
}

fn read_entry(path: &Path, key: &[u8]) -> Option<(Vec<String>, Vec<libc::sock_filter>)> {
    let data = std::fs::read(path).ok()?;
    let rest = data.strip_prefix(MAGIC)?;
    let (stored_key, rest) = field(rest)?;
    if stored_key != key {
        return None;
    }
    let (unknown, bpf) = field(rest)?;
    let unknown = std::str::from_utf8(unknown).ok()?.split('\n').filter(|n| !n.is_empty()).map(String::from).collect();
    Some((unknown, parse(bpf)?))
}

fn field(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

fn write(path: &Path, key: &[u8], unknown: &[String], bpf: &[u8]) -> std::io::Result<()> {
    let names = unknown.join("\n");
    let len = |n: usize| u32::try_from(n).map(u32::to_le_bytes).map_err(|_| std::io::Error::other("too large"));
    let mut data = Vec::with_capacity(MAGIC.len() + key.len() + names.len() + bpf.len() + 8);
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&len(key.len())?);
    data.extend_from_slice(key);
    data.extend_from_slice(&len(names.len())?);
    data.extend_from_slice(names.as_bytes());
    data.extend_from_slice(bpf);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let r = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(&data)?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// BPF instructions from their in-memory bytes (libseccomp's export format).
pub(super) fn parse(bpf: &[u8]) -> Option<Vec<libc::sock_filter>> {
    if bpf.is_empty() || !bpf.len().is_multiple_of(INSN) || bpf.len() / INSN > usize::from(u16::MAX) {
        return None;
    }
    let prog = bpf
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(profile: serde_json::Value) -> Spec {
        let mut spec = crate::template::default_spec(false);
        if let Some(l) = spec.linux_mut() {
            l.set_seccomp(Some(serde_json::from_value(profile).unwrap()));
        }
        spec
    }

    #[test]
    fn second_lookup_hits_the_cache_and_filters_the_same() {
        let root = tempfile::tempdir().unwrap();
        let spec = crate::template::default_spec(false);
        let first = for_spec(&spec, root.path()).unwrap().unwrap();
        let files: Vec<_> = std::fs::read_dir(root.path()).unwrap().flatten().map(|e| e.file_name().into_string().unwrap()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].starts_with("seccomp-") && files[0].ends_with(".bpf"));
        let second = for_spec(&spec, root.path()).unwrap().unwrap();
        assert!(first.is_bpf() && second.is_bpf());
        let (Prog::Bpf(a), Prog::Bpf(b)) = (&first.prog, &second.prog) else { panic!("not BPF") };
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(b).all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k)));
        // The cached program is what libseccomp generates for the profile.
        let direct = compile(spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap()).unwrap().bpf().unwrap();
        assert_eq!(parse(&direct).unwrap().len(), a.len());
    }

    #[test]
    fn a_torn_or_foreign_entry_is_a_miss_and_unknown_names_survive() {
        let root = tempfile::tempdir().unwrap();
        let spec = spec_with(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_call_q", "uname"], "action": "SCMP_ACT_ERRNO"}]}));
        let s = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
        let path = entry_path(root.path(), &key(s).unwrap());
        std::fs::write(&path, b"skiff seccomp bpf 1\n\xff\xff").unwrap();
        let f = for_spec(&spec, root.path()).unwrap().unwrap();
        assert_eq!(f.unknown, vec!["no_such_call_q".to_string()]);
        let again = read(&path, &key(s).unwrap(), s).unwrap().expect("rewritten entry");
        assert_eq!(again.unknown, f.unknown);
        assert!(read(&path, b"another key", s).unwrap().is_none());
        assert_eq!(super::super::tests::in_child(&again, uname_errno), libc::EPERM);
    }

    fn uname_errno() -> i32 {
        // SAFETY: a null buffer makes uname fail with EFAULT unless the filter answers first.
        let r = unsafe { libc::syscall(libc::SYS_uname, std::ptr::null_mut::<libc::c_void>()) };
        if r < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(0) } else { 0 }
    }

    #[test]
    fn notify_and_flags_are_cached_and_keep_their_load_flags() {
        let root = tempfile::tempdir().unwrap();
        let spec = spec_with(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]}));
        let first = for_spec(&spec, root.path()).unwrap().unwrap();
        let hit = for_spec(&spec, root.path()).unwrap().unwrap();
        assert!(first.is_bpf() && hit.is_bpf() && !hit.notify);
        assert_eq!((first.load_flags, hit.load_flags), (2, 2));
        assert_eq!(super::super::tests::in_child(&hit, uname_errno), libc::EPERM);
        let spec = spec_with(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"], "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_NOTIFY"}]}));
        for_spec(&spec, root.path()).unwrap().unwrap();
        let hit = for_spec(&spec, root.path()).unwrap().unwrap();
        assert!(hit.notify && hit.is_bpf());
        assert_eq!(hit.load_flags, 8 | 32, "NEW_LISTENER | WAIT_KILLABLE_RECV");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 2);
    }
}
