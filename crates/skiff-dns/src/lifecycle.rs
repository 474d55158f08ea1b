//! Changing the records and keeping a server running while there are any.
//!
//! # The exit race
//! A server exits by itself once the records file has no entry left. `add` and the exiting
//! server agree through the dir's lock and the pid file:
//! - `add` writes the records file and looks at the pid file while holding the lock, and starts
//!   a server (and waits until it has written its pid file and is ready) before releasing it;
//! - the server decides to exit only while holding the same lock, after re-reading the records
//!   file under it and finding it empty; it then removes its pid file, closes its sockets and
//!   only then releases the lock (by exiting), never turning back once it removed the pid file.
//!
//! So the pid file names a live server exactly while some server is committed to serving, and
//! an `add` racing with an exit is in one of two orders. Either `add` takes the lock first: it
//! sees the live server and returns; the server then finds the new entry under the lock and
//! stays (it reloads the changed file before answering, so the entry resolves at once). Or the
//! server takes the lock first: `add` waits for it, and by then the pid file is gone and port 53
//! is free, so it starts a new server. A pid file left by a server that was killed names a
//! process that is gone or has another start time, and `add` replaces it.

use std::io::Read;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{pidfile, records, Entry, Error, Result};

/// How long `add` waits for a new server to report (it only reads resolv.conf and binds).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn add(dir: &Path, listen: &[IpAddr], server_exe: &Path, entry: &Entry) -> Result<()> {
    records::validate(entry)?;
    if listen.is_empty() {
        return Err(Error::InvalidEntry("no address to listen on".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let _lock = records::lock(dir)?;
    let old = records::read(dir)?;
    let mut new: Vec<Entry> = old.iter().filter(|e| e.container_id != entry.container_id).cloned().collect();
    new.push(entry.clone());
    records::write(dir, new)?;
    if pidfile::live_server(dir).is_some() {
        return Ok(());
    }
    if let Err(e) = spawn(dir, listen, server_exe) {
        // Leave the records as they were: the caller is told the entry was not added.
        records::write(dir, old)?;
        return Err(e);
    }
    Ok(())
}

pub fn remove(dir: &Path, container_id: &str) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let _lock = match records::lock(dir) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    let mut entries = records::read(dir)?;
    let before = entries.len();
    entries.retain(|e| e.container_id != container_id);
    if entries.len() != before {
        records::write(dir, entries)?;
    }
    Ok(())
}

/// Starts a detached server and waits for its report. The caller holds the dir's lock, which
/// the server relies on for writing its pid file (`--ready-fd` tells it so).
fn spawn(dir: &Path, listen: &[IpAddr], exe: &Path) -> Result<()> {
    let spawn_err = |source| Error::Spawn {
        exe: exe.to_path_buf(),
        source,
    };
    // Both ends are CLOEXEC; the child clears the flag on its end only.
    let (mut ours, theirs) = UnixStream::pair().map_err(spawn_err)?;
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.arg("--dir").arg(dir);
    for ip in listen {
        cmd.arg("--listen").arg(ip.to_string());
    }
    cmd.arg("--ready-fd")
        .arg(fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/");
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // syscalls (setsid, close_range, fcntl) on no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            // A session of its own: no controlling terminal, no signals from the caller's
            // terminal or process group. The server forks once more (a double fork) so that it
            // is not a session leader and the intermediate process is reaped right here.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Whatever the caller's process left without CLOEXEC is not inherited.
            let _ = libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(theirs);
    // The intermediate process exits as soon as it has forked the server.
    let status = child.wait().map_err(spawn_err)?;
    let report = read_report(&mut ours).map_err(|e| Error::ServerStart {
        dir: dir.to_path_buf(),
        message: format!("reading its report: {e}"),
    })?;
    let fail = |message: String| Error::ServerStart {
        dir: dir.to_path_buf(),
        message,
    };
    match report.split_once(' ') {
        Some(("ready" | "running", _)) => Ok(()),
        Some(("error", msg)) => Err(fail(msg.trim_end().to_string())),
        _ if report.is_empty() => Err(fail(format!(
            "it exited ({status}) before it was ready, see {}",
            dir.join(crate::LOG_FILE).display()
        ))),
        _ => Err(fail(format!("unexpected report {report:?}"))),
    }
}

/// Reads the server's one-line report until it closes its end (or the deadline passes).
fn read_report(sock: &mut UnixStream) -> std::io::Result<String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no report within {READY_TIMEOUT:?}")));
        }
        sock.set_read_timeout(Some(left))?;
        match sock.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.contains(&b'\n') || buf.len() > 4096 {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no report within {READY_TIMEOUT:?}")));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
