//! Small filesystem helpers shared by the network store and IPAM: `flock` guards (released by
//! the kernel when the holder dies, so a SIGKILL never leaves a stale lock), atomic writes
//! (tmp + fsync + rename: a crash leaves the old file or the new one, never half of one),
//! random ids and RFC 3339 timestamps.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// A held `flock`; released on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Takes a lock on `path` (created if missing), waiting for it: exclusive or shared.
pub(crate) fn lock(path: &Path, exclusive: bool) -> Result<Lock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("open lock", path, e))?;
    let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
    loop {
        // SAFETY: flock on an fd we own for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(Lock { _file: file });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(Error::io("lock", path, e));
        }
    }
}

/// Writes `data` to `path` atomically through `tmp` (same directory). The caller holds the
/// exclusive lock that guards `path`, so one fixed `tmp` name is enough and a leftover from a
/// crash is simply overwritten.
pub(crate) fn write_atomic(path: &Path, tmp: &Path, data: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(tmp)
        .map_err(|e| Error::io("create", tmp, e))?;
    f.write_all(data).map_err(|e| Error::io("write", tmp, e))?;
    f.sync_data().map_err(|e| Error::io("sync", tmp, e))?;
    drop(f);
    std::fs::rename(tmp, path).map_err(|e| Error::io("rename", path, e))
}

/// Reads a file; `None` if it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Creates a directory (and its parents) if missing.
pub(crate) fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io("mkdir", path, e))
}

/// 64 random hex digits (a network id, Docker's form).
pub(crate) fn random_id() -> Result<String> {
    let mut buf = [0u8; 32];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: getrandom writes at most `len - got` bytes into our buffer.
        let n = unsafe { libc::getrandom(buf[got..].as_mut_ptr().cast(), buf.len() - got, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::io("getrandom", Path::new("/dev/urandom"), e));
        }
        got += n as usize;
    }
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The current UTC time as RFC 3339 with nanoseconds (`2026-11-30T14:27:36.123456789Z`).
pub(crate) fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

fn rfc3339(secs: i64, nanos: u32) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_796_048_856, 0), "2026-11-30T14:27:36.000000000Z");
        assert!(now_rfc3339().ends_with('Z'));
    }

    #[test]
    fn random_ids() {
        let (a, b) = (random_id().unwrap(), random_id().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let (p, t) = (d.path().join("f"), d.path().join("f.tmp"));
        std::fs::write(&t, b"leftover garbage from a crash").unwrap();
        write_atomic(&p, &t, b"one").unwrap();
        write_atomic(&p, &t, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!t.exists());
        assert_eq!(read_opt(&d.path().join("none")).unwrap(), None);
        let _a = lock(&d.path().join("lock"), false).unwrap();
        let _b = lock(&d.path().join("lock"), false).unwrap();
    }
}
