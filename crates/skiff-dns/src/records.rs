//! The records file: the network's entries, read without a lock (it is only ever replaced by a
//! rename, so a reader sees a whole old or a whole new file) and changed under the dir's lock.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::{Entry, Error, Result, LOCK_FILE};

pub const RECORDS_FILE: &str = "records.json";

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Records {
    entries: Vec<Entry>,
}

/// Lists the entries of the network (none if the dir or the file is missing).
pub fn entries(dir: &Path) -> Result<Vec<Entry>> {
    read(dir)
}

pub(crate) fn read(dir: &Path) -> Result<Vec<Entry>> {
    let path = dir.join(RECORDS_FILE);
    match std::fs::read(&path) {
        Ok(data) => parse(&data).map_err(|source| Error::Records { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

/// Parses the content of a records file.
pub(crate) fn parse(data: &[u8]) -> serde_json::Result<Vec<Entry>> {
    serde_json::from_slice::<Records>(data).map(|r| r.entries)
}

/// Replaces the records file by `entries` (temp file + rename). The caller holds the lock.
pub(crate) fn write(dir: &Path, entries: Vec<Entry>) -> Result<()> {
    let path = dir.join(RECORDS_FILE);
    let tmp = dir.join(format!(".{RECORDS_FILE}.tmp"));
    let data = serde_json::to_vec(&Records { entries }).map_err(|source| Error::Records { path: path.clone(), source })?;
    // The lock makes us the only writer, so one fixed temp name is enough. No fsync: the file
    // describes running containers and is rewritten on every start after a crash anyway.
    let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(&data).map_err(|e| Error::io("write", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))
}

/// The dir's lock, held until dropped (flock on `dir/lock`, opened O_CLOEXEC by std so a
/// spawned server never inherits it).
pub(crate) struct Lock {
    _file: File,
}

/// The dir's lock file, opened (created if missing).
fn lock_file(dir: &Path) -> Result<(File, std::path::PathBuf)> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    Ok((file, path))
}

pub(crate) fn lock(dir: &Path) -> Result<Lock> {
    let (file, path) = lock_file(dir)?;
    file.lock().map_err(|e| Error::io("lock", &path, e))?;
    Ok(Lock { _file: file })
}

/// Like [`lock`] but gives up at once (None) if someone else holds it.
#[cfg_attr(not(feature = "server"), allow(dead_code))] // used by the server
pub(crate) fn try_lock(dir: &Path) -> Result<Option<Lock>> {
    let (file, path) = lock_file(dir)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Lock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}

/// A name as the server matches it: lower case, no trailing dot.
#[cfg_attr(not(feature = "server"), allow(dead_code))] // used by the server
pub(crate) fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Checks an entry before it is written: an id, and names a DNS server can answer.
pub(crate) fn validate(entry: &Entry) -> Result<()> {
    if entry.container_id.is_empty() {
        return Err(Error::InvalidEntry("empty container id".into()));
    }
    for name in &entry.names {
        let n = name.trim_end_matches('.');
        let ok = !n.is_empty()
            && n.len() <= 253
            && n.split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        if !ok {
            return Err(Error::InvalidEntry(format!("name {name:?} of {} is not a DNS name", entry.container_id)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, names: &[&str]) -> Entry {
        Entry {
            container_id: id.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ips: vec!["10.0.0.2".parse().unwrap()],
        }
    }

    #[test]
    fn write_read_round_trip_and_missing_dir() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(entries(&tmp.path().join("nope")).unwrap().is_empty());
        write(tmp.path(), vec![entry("a", &["web"]), entry("b", &["db"])]).unwrap();
        let got = entries(tmp.path()).unwrap();
        assert_eq!(got, vec![entry("a", &["web"]), entry("b", &["db"])]);
        assert!(!tmp.path().join(".records.json.tmp").exists());
    }

    #[test]
    fn malformed_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(RECORDS_FILE), b"{not json").unwrap();
        let e = entries(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("records.json") && e.contains("malformed"), "{e}");
    }

    #[test]
    fn validation() {
        assert!(validate(&entry("a", &["web", "Web-1", "a_b.c", "0123456789ab", "x."])).is_ok());
        for bad in ["", ".", "a b", "a..b", "é", &"x".repeat(64)] {
            assert!(validate(&entry("a", &[bad])).is_err(), "{bad:?}");
        }
        assert!(validate(&entry("", &["web"])).is_err());
    }

    #[test]
    fn try_lock_sees_a_held_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let held = lock(tmp.path()).unwrap();
        assert!(try_lock(tmp.path()).unwrap().is_none());
        drop(held);
        assert!(try_lock(tmp.path()).unwrap().is_some());
    }
}
