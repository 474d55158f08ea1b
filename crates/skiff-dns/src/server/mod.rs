//! The `skiff-dns` server (feature `server`): `skiff-dns --dir DIR --listen IP [--listen IP]...
//! [--ready-fd N]`. With `--ready-fd` (how `add` starts it) it forks once more, and reports on fd
//! N `ready <pid>`, `running <pid>` (another server is live) or `error <why>`; the caller holds
//! the dir's lock until then. Without it, it takes the lock itself while it starts.

use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::pidfile::{self, ServerId};
use crate::records::{self, Lock};
use crate::{LOG_FILE, RECORDS_FILE};

mod bind;
mod forward;
mod handler;
mod zone;

pub use zone::DOMAIN;

/// How often the server checks whether it should exit (no entries left, or not the dir's server).
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// Env var naming the resolv.conf with the upstream resolvers (tests point it at a fake one).
pub const RESOLV_CONF_ENV: &str = "SKIFF_DNS_RESOLV_CONF";

static LOG: OnceLock<File> = OnceLock::new();

/// Appends a line to `server.log` in the state dir (nothing goes to stdout/stderr).
pub(crate) fn log(msg: std::fmt::Arguments<'_>) {
    if let Some(mut f) = LOG.get() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = writeln!(f, "{now} skiff-dns[{}]: {msg}", std::process::id());
    }
}

struct Args {
    dir: PathBuf,
    listen: Vec<IpAddr>,
    ready_fd: Option<i32>,
}

fn parse_args(mut args: impl Iterator<Item = std::ffi::OsString>) -> Result<Args, String> {
    let mut dir = None;
    let mut listen = Vec::new();
    let mut ready_fd = None;
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or_else(|| format!("{what} needs a value"));
        match a.to_str() {
            Some("--dir") => dir = Some(PathBuf::from(value("--dir")?)),
            Some("--listen") => {
                let v = value("--listen")?;
                listen.push(
                    v.to_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("--listen {v:?}: not an IP address"))?,
                );
            }
            Some("--ready-fd") => {
                let v = value("--ready-fd")?;
                ready_fd = Some(
                    v.to_str()
                        .and_then(|s| s.parse().ok())
                        .filter(|n| *n > 2)
                        .ok_or_else(|| format!("--ready-fd {v:?}: not a fd"))?,
                );
            }
            _ => {
                return Err(format!(
                    "unexpected argument {a:?}; usage: skiff-dns --dir DIR --listen IP [--listen IP]... [--ready-fd N]"
                ))
            }
        }
    }
    let dir = dir.ok_or("--dir is required")?;
    if listen.is_empty() {
        return Err("at least one --listen is required".into());
    }
    Ok(Args { dir, listen, ready_fd })
}

/// Where the server's startup report goes.
struct Report(Option<UnixStream>);

impl Report {
    fn send(&mut self, msg: &str) {
        if let Some(mut s) = self.0.take() {
            let _ = s.write_all(format!("{msg}\n").as_bytes());
        }
    }
}

/// The binary's main: returns the exit code.
pub fn main() -> i32 {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("skiff-dns: {e}");
            return 2;
        }
    };
    let mut report = Report(None);
    if let Some(fd) = args.ready_fd {
        // SAFETY: the spawner passed us this end of its socket pair as `fd` and nothing else in
        // this process owns it.
        let sock = unsafe { UnixStream::from_raw_fd(fd) };
        // SAFETY: plain fcntl on a fd we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        report = Report(Some(sock));
        // The second fork of the double fork: the spawner reaps our parent at once, the server
        // is reparented to init (or the nearest subreaper) and is no session leader.
        // SAFETY: no other thread exists yet (the runtime is built later), so the child may
        // go on running normal code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            report.send(&format!("error fork: {}", std::io::Error::last_os_error()));
            return 1;
        }
        if pid > 0 {
            // SAFETY: _exit in the parent, which has nothing to flush or clean up: the child
            // owns the state from here on.
            unsafe { libc::_exit(0) };
        }
    }
    match File::options().create(true).append(true).open(args.dir.join(LOG_FILE)) {
        Ok(f) => {
            let _ = LOG.set(f);
        }
        Err(e) => {
            report.send(&format!("error open log in {}: {e}", args.dir.display()));
            return 1;
        }
    }
    match run(&args, &mut report) {
        Ok(()) => 0,
        Err(e) => {
            log(format_args!("{e}"));
            report.send(&format!("error {e}"));
            1
        }
    }
}

fn run(args: &Args, report: &mut Report) -> Result<(), String> {
    let dir = &args.dir;
    // Started by `add`, which holds the lock for us until we report; otherwise take it.
    let start_lock = match args.ready_fd {
        Some(_) => None,
        None => Some(records::lock(dir).map_err(|e| e.to_string())?),
    };
    if let Some(other) = pidfile::live_server(dir) {
        report.send(&format!("running {}", other.pid));
        return Ok(());
    }
    let resolv = std::env::var_os(RESOLV_CONF_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/resolv.conf"));
    let upstreams = forward::upstreams(&resolv, &args.listen).unwrap_or_else(|e| {
        log(format_args!(
            "no upstream resolvers ({}: {e}): names that are not ours get SERVFAIL",
            resolv.display()
        ));
        Vec::new()
    });
    let sockets = bind::bind(&args.listen, bind::PORT)?;
    let mut state = handler::State {
        watch: zone::Watch::new(dir.join(RECORDS_FILE)),
        zone: zone::Zone::default(),
    };
    state.refresh();
    let me = pidfile::write_self(dir).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let handler = handler::Handler {
        state: Mutex::new(state),
        upstreams,
    };
    let exit_lock = rt.block_on(async {
        let mut server = hickory_server::Server::new(handler);
        for s in sockets.udp {
            server.register_socket(tokio::net::UdpSocket::from_std(s).map_err(|e| format!("register udp socket: {e}"))?);
        }
        for s in sockets.tcp {
            let l = tokio::net::TcpListener::from_std(s).map_err(|e| format!("register tcp socket: {e}"))?;
            server.register_listener(l, Duration::from_secs(5), 4096);
        }
        report.send(&format!("ready {}", me.pid));
        drop(start_lock);
        Ok::<_, String>(serve(&mut server, dir, me).await)
    });
    let exit_lock = match exit_lock {
        Ok(l) => l,
        Err(e) => {
            let _ = pidfile::remove_if_self(dir, me);
            return Err(e);
        }
    };
    // Close the sockets (dropping the runtime drops every task and the sockets they own) before
    // the lock goes: an `add` waiting for it may start a new server on the same port at once.
    drop(rt);
    drop(exit_lock);
    Ok(())
}

/// Serves until it is time to exit; returns the dir's lock if it holds it (see [`check_exit`]).
async fn serve<H: hickory_server::server::RequestHandler>(server: &mut hickory_server::Server<H>, dir: &Path, me: ServerId) -> Option<Lock> {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = server.block_until_done() => {
                // Its sockets failed. The pid file stays: removing it without the lock could
                // race with an `add`, and a dead server's pid file is taken for what it is.
                log(format_args!("server stopped: {r:?}"));
                return None;
            }
            _ = tick.tick() => match check_exit(dir, me) {
                Exit::Stay => {}
                Exit::Quietly => return None,
                Exit::Locked(lock) => return Some(lock),
            }
        }
    }
}

enum Exit {
    Stay,
    /// Not the dir's server (any more): leave its pid file alone.
    Quietly,
    /// No entries left: the pid file is removed and the lock is held until the sockets are closed.
    Locked(Lock),
}

/// The exit side of the race described in `lifecycle`: decide under the dir's lock, with the
/// records file read under it, and remove the pid file before the lock is let go.
fn check_exit(dir: &Path, me: ServerId) -> Exit {
    if pidfile::read(dir) != Some(me) {
        log(format_args!("the pid file no longer names this server: exiting"));
        return Exit::Quietly;
    }
    match records::read(dir) {
        Ok(e) if !e.is_empty() => return Exit::Stay,
        Ok(_) => {}
        Err(e) => {
            log(format_args!("{e}"));
            return Exit::Stay;
        }
    }
    // Busy: an `add` or `remove` is changing the records; look again at the next tick.
    let lock = match records::try_lock(dir) {
        Ok(Some(l)) => l,
        Ok(None) => return Exit::Stay,
        Err(e) => {
            log(format_args!("{e}: exiting"));
            return Exit::Quietly;
        }
    };
    match records::read(dir) {
        Ok(e) if e.is_empty() => {}
        _ => return Exit::Stay,
    }
    if pidfile::read(dir) != Some(me) {
        return Exit::Quietly;
    }
    if let Err(e) = pidfile::remove_if_self(dir, me) {
        log(format_args!("{e}"));
    }
    Exit::Locked(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse_args(v.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn arguments() {
        let a = args(&["--dir", "/d", "--listen", "10.0.0.1", "--listen", "fd00::1", "--ready-fd", "5"]).unwrap();
        assert_eq!(a.dir, PathBuf::from("/d"));
        assert_eq!(a.listen.len(), 2);
        assert_eq!(a.ready_fd, Some(5));
        assert!(args(&["--dir", "/d"]).is_err());
        assert!(args(&["--listen", "10.0.0.1"]).is_err());
        assert!(args(&["--dir", "/d", "--listen", "nope"]).is_err());
        assert!(args(&["--dir", "/d", "--listen", "10.0.0.1", "--ready-fd", "1"]).is_err());
        assert!(args(&["--dir", "/d", "--listen", "10.0.0.1", "--bogus"]).is_err());
    }
}
