//! `server.pid`: `<pid> <start time>` of the live server. The start time (field 22 of
//! /proc/<pid>/stat, in clock ticks since boot) tells our server from a process that got its pid
//! after it died.

use std::path::Path;

use crate::{Error, Result, PID_FILE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerId {
    pub pid: i32,
    pub start_time: u64,
}

/// Start time of a live (not zombie) process, None if there is no such process.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // `rest` starts at field 3 (state); the start time is field 22.
    fields.nth(22 - 4)?.parse().ok()
}

pub fn read(dir: &Path) -> Option<ServerId> {
    let s = std::fs::read_to_string(dir.join(PID_FILE)).ok()?;
    let mut it = s.split_ascii_whitespace();
    let pid = it.next()?.parse().ok().filter(|p: &i32| *p > 0)?;
    let start_time = it.next()?.parse().ok()?;
    Some(ServerId { pid, start_time })
}

/// The server recorded in the dir, if it is still the same live process.
pub fn live_server(dir: &Path) -> Option<ServerId> {
    let id = read(dir)?;
    (start_time(id.pid) == Some(id.start_time)).then_some(id)
}

/// Records this process as the dir's server (temp file + rename). The caller holds the lock.
#[cfg_attr(not(feature = "server"), allow(dead_code))] // used by the server
pub fn write_self(dir: &Path) -> Result<ServerId> {
    let pid = i32::try_from(std::process::id()).map_err(|_| Error::InvalidEntry("pid out of range".into()))?;
    let path = dir.join(PID_FILE);
    let start_time = start_time(pid).ok_or_else(|| Error::io("read", Path::new("/proc/self/stat"), std::io::ErrorKind::NotFound.into()))?;
    let tmp = dir.join(format!(".{PID_FILE}.tmp"));
    std::fs::write(&tmp, format!("{pid} {start_time}\n")).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))?;
    Ok(ServerId { pid, start_time })
}

/// Removes the pid file if it still names `me`. The caller holds the lock.
#[cfg_attr(not(feature = "server"), allow(dead_code))] // used by the server
pub fn remove_if_self(dir: &Path, me: ServerId) -> Result<()> {
    let path = dir.join(PID_FILE);
    if read(dir) == Some(me) {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_and_liveness() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(live_server(tmp.path()).is_none());
        let me = write_self(tmp.path()).unwrap();
        assert_eq!(live_server(tmp.path()), Some(me));
        // The same pid with another start time is a reused pid, not our server.
        std::fs::write(tmp.path().join(PID_FILE), format!("{} {}\n", me.pid, me.start_time + 1)).unwrap();
        assert!(live_server(tmp.path()).is_none());
        std::fs::write(tmp.path().join(PID_FILE), "garbage").unwrap();
        assert!(live_server(tmp.path()).is_none());
        remove_if_self(tmp.path(), me).unwrap();
        assert!(tmp.path().join(PID_FILE).exists(), "a pid file naming another server stays");
        write_self(tmp.path()).unwrap();
        remove_if_self(tmp.path(), me).unwrap();
        assert!(!tmp.path().join(PID_FILE).exists());
    }

    #[test]
    fn zombie_is_not_alive() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        // Not waited for yet: it becomes a zombie once it exits.
        for _ in 0..200 {
            if start_time(pid).is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(start_time(pid).is_none());
        let mut child = child;
        child.wait().unwrap();
    }
}
