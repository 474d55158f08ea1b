//! Networks for rootless containers, as podman gives them: a user-mode helper (pasta or
//! slirp4netns) gives the container's network namespace an interface, an address, a default
//! route and its published ports, with no privilege over the host's network.
//!
//! The caller is the process that has just created the container (after the runtime's `create`,
//! before `start`), in the container owner's user namespace and the host's network namespace.
//! [`attach`] returns once the namespace is configured and the host ports are bound; record the
//! [`Attached`] it returns in the container's state and call [`detach`] on stop and rm (also
//! after a crash: it checks the pid's start time, so a reused pid is never signalled).
//!
//! What the container sees:
//!
//! | backend     | eth0 address                      | gateway               | DNS ([`Attached::dns`]) |
//! |-------------|-----------------------------------|-----------------------|-------------------------|
//! | pasta       | the host's (default-route iface)  | the host's gateway    | 169.254.1.1, forwarded to the host's first resolver |
//! | slirp4netns | 10.0.2.100/24                     | 10.0.2.2              | 10.0.2.3                |
//!
//! The interface is `eth0` with both. MTU: pasta 65520 unless given; slirp4netns 65520 unless
//! given (its own default is 1500). IPv6: pasta copies the host's (when [`Options::ipv6`]),
//! slirp4netns `--enable-ipv6` gives fd00::100/64.
//!
//! The host's loopback is not reachable from the container unless
//! [`Options::allow_host_loopback`]: then the gateway address (10.0.2.2 with slirp4netns, the
//! host's gateway with pasta) reaches the host's 127.0.0.1.
//!
//! Published ports are bound by the helper on the host (`0.0.0.0`, or `host_ip`), so
//! `127.0.0.1:HOST_PORT` reaches the container. pasta binds both IPv4 and IPv6 for a port with no
//! `host_ip`; slirp4netns IPv4 only. A port that is taken is refused before the helper starts
//! ("port 8080 is already in use"; pasta alone would not say: it binds what it can).
//! UDP limitations, measured with the installed versions (TCP is fine in every case, and so
//! are UDP clients on other machines):
//! - slirp4netns 1.2.0 (libslirp, podman #4586): with the host loopback disabled, replies to a
//!   client on the host's 127.0.0.1 are dropped;
//! - pasta 0.0~git20230309: replies to a client on the host's 127.0.0.1 are always lost (the
//!   spliced UDP path; fixed in later passt); a client on the host's own address gets its
//!   reply only without `--no-map-gw`, i.e. with [`Options::allow_host_loopback`].
//!
//! Lifetime: the helper (`pasta --foreground`, `slirp4netns`) runs in its own session with
//! stdin /dev/null and stdout/stderr to [`Options::log_file`] (or an anonymous memory file read
//! for error messages only), and no fd but the ones it is given. Beside it a small keeper process
//! (forked, not exec'd; a few hundred KiB) watches the container's init through a pidfd: when it
//! exits the keeper ends the helper (SIGTERM, SIGKILL after 5 s) — pasta of this version does
//! not notice by itself, slirp4netns never does. slirp4netns also gets `--exit-fd` whose only
//! write end is the keeper's: if the keeper is killed, slirp4netns exits. pasta drops
//! capabilities (which clears its parent-death signal), so a SIGKILLed keeper leaves pasta
//! running until [`detach`]. The engine itself can be SIGKILLed at any time: nothing depends
//! on it.

mod pasta;
mod slirp;
mod spawn;

use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::nft::{port_is_free, Proto};

/// The interface name in the container.
const IFNAME: &str = "eth0";
/// The address pasta is told to forward DNS queries from (`--dns-forward`), podman's choice.
const DNS_FORWARD_PASTA: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// How long the helper may take to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Pasta,
    Slirp4netns,
}

impl Backend {
    /// The program's name.
    pub fn program(self) -> &'static str {
        match self {
            Backend::Pasta => "pasta",
            Backend::Slirp4netns => "slirp4netns",
        }
    }
}

/// One published port: `[host_ip:]host_port:container_port[/proto]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortMap {
    /// `None` (or unspecified): every address of the host.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// What [`attach`] sets up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `None`: pasta if found in `PATH`, else slirp4netns.
    pub backend: Option<Backend>,
    pub ports: Vec<PortMap>,
    pub mtu: Option<u32>,
    pub ipv6: bool,
    /// Let the container reach the host's 127.0.0.1 through the gateway address.
    pub allow_host_loopback: bool,
    /// Where the helper's stdout and stderr go (appended, created 0600). `None`: an anonymous
    /// memory file, only read for [`attach`]'s error messages.
    pub log_file: Option<PathBuf>,
}

/// A helper running for a container: record it with the container, give it to [`detach`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attached {
    pub backend: Backend,
    /// The helper process.
    pub pid: i32,
    /// Its start time (`/proc/PID/stat` field 22), so that a reused pid is not taken for it.
    pub pid_start: u64,
    pub container_ip: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    /// The address the container's resolv.conf should name: the helper forwards it to the
    /// host's resolvers.
    pub dns: Option<IpAddr>,
}

/// Gives the network namespace of `pid` (the container's init) its interface, address, default
/// route and port forwards; returns once they are configured and the ports bound.
pub fn attach(pid: i32, opts: &Options) -> Result<Attached> {
    if pid <= 0 {
        return Err(Error::Invalid(format!("bad container pid {pid}")));
    }
    let path_var = std::env::var_os("PATH");
    let (backend, program) = find_backend(opts.backend, path_var.as_deref())?;
    for p in &opts.ports {
        check_port(p)?;
    }
    let ns_path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let netns = File::open(&ns_path).map_err(|e| Error::io("open", &ns_path, e))?;
    let container = spawn::pidfd_open(pid).map_err(|e| Error::io("pidfd_open", &PathBuf::from(format!("/proc/{pid}")), e))?;
    let (log, log_start) = open_log(opts.log_file.as_deref())?;
    let (ready_r, ready_w) = spawn::pipe().map_err(|e| io_err("pipe", e))?;
    let started = Instant::now();
    let result = match backend {
        Backend::Pasta => {
            // SAFETY: geteuid/getegid cannot fail.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            let cmd = spawn::Command {
                program: &program,
                args: pasta::args(opts, uid, gid),
                fds: vec![netns.as_raw_fd(), ready_w.as_raw_fd()],
                log: log.as_raw_fd(),
                container: container.as_raw_fd(),
                keep: None,
            };
            launch(cmd, ready_w, &ready_r, backend).map(|helper| {
                let (container_ip, gateway) = pasta::parse_report(&read_log(&log, log_start));
                Attached {
                    backend,
                    pid: helper,
                    pid_start: 0,
                    container_ip,
                    gateway,
                    dns: Some(IpAddr::V4(DNS_FORWARD_PASTA)),
                }
            })
        }
        Backend::Slirp4netns => attach_slirp(opts, &program, &netns, &container, &log, ready_w, &ready_r),
    };
    let mut attached = match result {
        Ok(a) => a,
        Err(e) => return Err(explain(e, backend, opts, &log, log_start)),
    };
    attached.pid_start = match proc_stat(attached.pid) {
        Some((_, start)) => start,
        None => {
            let e = Error::Invalid(format!("{} exited right after starting", backend.program()));
            return Err(explain(e, backend, opts, &log, log_start));
        }
    };
    tracing::debug!(
        backend = backend.program(),
        pid = attached.pid,
        ms = started.elapsed().as_millis() as u64,
        "rootless network attached"
    );
    Ok(attached)
}

fn attach_slirp(opts: &Options, program: &Path, netns: &File, container: &OwnedFd, log: &File, ready_w: OwnedFd, ready_r: &OwnedFd) -> Result<Attached> {
    let dir = private_dir()?;
    let api = dir.join("api.sock");
    let (exit_r, exit_w) = spawn::pipe().map_err(|e| io_err("pipe", e))?;
    let cmd = spawn::Command {
        program,
        args: slirp::args(opts, &api),
        fds: vec![netns.as_raw_fd(), ready_w.as_raw_fd(), exit_r.as_raw_fd()],
        log: log.as_raw_fd(),
        container: container.as_raw_fd(),
        keep: Some(exit_w),
    };
    let result = launch(cmd, ready_w, ready_r, Backend::Slirp4netns).and_then(|helper| {
        drop(exit_r);
        for p in &opts.ports {
            if let Err(why) = slirp::add_hostfwd(&api, p) {
                kill_helper(helper);
                return Err(Error::Invalid(format!(
                    "slirp4netns: forwarding {} port {}: {why}",
                    p.proto.as_str(),
                    p.host_port
                )));
            }
        }
        Ok(Attached {
            backend: Backend::Slirp4netns,
            pid: helper,
            pid_start: 0,
            container_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 100))),
            gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2))),
            dns: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3))),
        })
    });
    // slirp4netns keeps its listening socket; the path is not needed any more.
    let _ = std::fs::remove_file(&api);
    let _ = std::fs::remove_dir(&dir);
    result
}

/// Starts the helper, waits for its readiness (a line on `ready_r`) or its end. Returns its pid.
fn launch(cmd: spawn::Command<'_>, ready_w: OwnedFd, ready_r: &OwnedFd, backend: Backend) -> Result<i32> {
    let name = backend.program();
    let info = spawn::start(cmd).map_err(|e| Error::Invalid(format!("start {name}: {e}")))?;
    drop(ready_w);
    let deadline = Instant::now() + READY_TIMEOUT;
    let helper = match spawn::read_i32(info.as_raw_fd()) {
        Ok(Some(pid)) if pid > 0 => pid,
        Ok(Some(neg)) => return Err(Error::Invalid(format!("start {name}: fork: {}", std::io::Error::from_raw_os_error(-neg)))),
        Ok(None) | Err(_) => return Err(Error::Invalid(format!("start {name}: its keeper process exited"))),
    };
    let mut fds = [
        libc::pollfd {
            fd: ready_r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: info.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            kill_helper(helper);
            return Err(Error::Invalid(format!("{name} was not ready within {}s", READY_TIMEOUT.as_secs())));
        }
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: two valid pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            kill_helper(helper);
            return Err(io_err("poll", e));
        }
        if fds[0].revents & libc::POLLIN != 0 {
            let mut buf = [0u8; 64];
            // SAFETY: reads into our buffer.
            let got = unsafe { libc::read(ready_r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if got > 0 {
                return Ok(helper);
            }
        }
        if fds[0].revents != 0 || fds[1].revents != 0 {
            // Hung up without a word, or the keeper reports the helper's end.
            let status = spawn::read_i32(info.as_raw_fd()).ok().flatten();
            kill_helper(helper);
            return Err(Error::Invalid(format!(
                "{name} exited before the network was ready ({})",
                describe_status(status)
            )));
        }
    }
}

fn describe_status(status: Option<i32>) -> String {
    match status {
        Some(s) if libc::WIFEXITED(s) => format!("exit status {}", libc::WEXITSTATUS(s)),
        Some(s) if libc::WIFSIGNALED(s) => format!("killed by signal {}", libc::WTERMSIG(s)),
        _ => "status unknown".to_string(),
    }
}

/// Turns a failure into the most useful error: a port taken (by someone else, found once the
/// helper is gone), else the helper's own words.
fn explain(e: Error, backend: Backend, opts: &Options, log: &File, log_start: u64) -> Error {
    for p in &opts.ports {
        if let Err(conflict) = check_port(p) {
            return conflict;
        }
    }
    let text = read_log(log, log_start);
    let words: Vec<&str> = text.lines().filter(|l| !l.contains("to syslog") && !l.trim().is_empty()).collect();
    if words.is_empty() {
        return e;
    }
    let tail = words[words.len().saturating_sub(5)..].join("; ");
    let hint = if text.contains("tun") {
        " (/dev/net/tun must be readable and writable by the user: mode 0666)"
    } else {
        ""
    };
    Error::Invalid(format!("{e}: {}: {tail}{hint}", backend.program()))
}

/// Refuses a host port someone holds.
fn check_port(p: &PortMap) -> Result<()> {
    let ip = p.host_ip.filter(|ip| !ip.is_unspecified());
    if port_is_free(ip, p.host_port, p.proto) {
        return Ok(());
    }
    let on = ip.map(|ip| format!(" on {ip}")).unwrap_or_default();
    Err(Error::Conflict(format!("port {}{on} is already in use ({})", p.host_port, p.proto.as_str())))
}

/// The backend to use and its path: the one asked for, or pasta, else slirp4netns.
fn find_backend(wanted: Option<Backend>, path: Option<&std::ffi::OsStr>) -> Result<(Backend, PathBuf)> {
    let candidates: &[Backend] = match wanted {
        Some(Backend::Pasta) => &[Backend::Pasta],
        Some(Backend::Slirp4netns) => &[Backend::Slirp4netns],
        None => &[Backend::Pasta, Backend::Slirp4netns],
    };
    let default_path = std::ffi::OsStr::new("/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin");
    for &b in candidates {
        if let Some(p) = which(b.program(), path.unwrap_or(default_path)) {
            return Ok((b, p));
        }
    }
    let hint = match wanted {
        Some(Backend::Pasta) => "pasta not found in PATH: install the passt package (apt-get install passt)",
        Some(Backend::Slirp4netns) => "slirp4netns not found in PATH: install the slirp4netns package",
        None => "neither pasta nor slirp4netns found in PATH: install the passt package (or slirp4netns) for rootless networking",
    };
    Err(Error::Invalid(hint.to_string()))
}

fn which(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The helper's log: the caller's file (appended) or a memfd. Returns it and where this
/// attach's output starts.
fn open_log(path: Option<&Path>) -> Result<(File, u64)> {
    if let Some(path) = path {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .append(true)
            .read(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        let start = f.metadata().map(|m| m.len()).unwrap_or(0);
        return Ok((f, start));
    }
    // SAFETY: memfd_create with a NUL-terminated name; returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"skiff-netns-helper".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io_err("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: the fd is new and ours.
    Ok((File::from(unsafe { OwnedFd::from_raw_fd(fd) }), 0))
}

/// What the helper wrote since `start` (at most 64 KiB).
fn read_log(log: &File, start: u64) -> String {
    let mut buf = vec![0u8; 64 * 1024];
    let n = log.read_at(&mut buf, start).unwrap_or(0);
    buf.truncate(n);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A new 0700 directory under the temp dir (for slirp4netns's API socket).
fn private_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let mut last = None;
    for _ in 0..16 {
        let mut r = [0u8; 6];
        let _ = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut r));
        let name: String = r.iter().map(|b| format!("{b:02x}")).collect();
        let dir = base.join(format!("skiff-slirp-{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = Some((dir, e)),
        }
    }
    let (dir, e) = last.unwrap_or_else(|| (base.clone(), std::io::Error::other("no attempt")));
    Err(Error::io("mkdir", &dir, e))
}

fn io_err(op: &'static str, e: std::io::Error) -> Error {
    Error::Io {
        op,
        path: String::new(),
        source: e,
    }
}

/// `(state, start time)` of a process, from `/proc/PID/stat`; `None` when it is gone.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(char, u64)> {
    // "PID (comm) S ppid ... ": comm may hold spaces and parentheses, the last ')' ends it;
    // after it, field 3 (state) is index 0 and field 22 (starttime) index 19.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    Some((state, f.get(19)?.parse().ok()?))
}

/// Ends the helper right away (it may not be recorded anywhere yet).
fn kill_helper(pid: i32) {
    if let Some((_, start)) = proc_stat(pid) {
        let a = Attached {
            backend: Backend::Pasta,
            pid,
            pid_start: start,
            container_ip: None,
            gateway: None,
            dns: None,
        };
        let _ = detach(&a);
    }
}

/// Ends the helper of `a`: SIGTERM, SIGKILL after 3 s, and waits until it is gone. A helper
/// already gone (or a pid now someone else's: another start time) is fine.
pub fn detach(a: &Attached) -> Result<()> {
    if a.pid <= 0 {
        return Ok(());
    }
    let pidfd = match spawn::pidfd_open(a.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
        Err(e) => return Err(Error::io("pidfd_open", &PathBuf::from(format!("/proc/{}", a.pid)), e)),
    };
    // Checked after opening the pidfd: if the start time matches, the pidfd is that process.
    match proc_stat(a.pid) {
        Some((state, start)) if start == a.pid_start && state != 'Z' && state != 'X' => {}
        _ => return Ok(()),
    }
    for (sig, wait_ms) in [(libc::SIGTERM, 3000), (libc::SIGKILL, 3000)] {
        match spawn::pidfd_signal(pidfd.as_raw_fd(), sig) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
            Err(e) => return Err(Error::io("kill", &PathBuf::from(format!("/proc/{}", a.pid)), e)),
        }
        if spawn::wait_readable(pidfd.as_raw_fd(), wait_ms).map_err(|e| io_err("poll", e))? {
            return Ok(());
        }
    }
    Err(Error::Invalid(format!("{} (pid {}) did not exit after SIGKILL", a.backend.program(), a.pid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        let text = "1234 (pas ta) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 \
                    18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat(text), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
        let own = proc_stat(std::process::id() as i32).expect("own stat");
        assert!(own.1 > 0);
    }

    #[test]
    fn backend_lookup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().as_os_str();
        let err = find_backend(None, Some(empty)).expect_err("nothing there").to_string();
        assert!(err.contains("install the passt package"), "{err}");
        let err = find_backend(Some(Backend::Slirp4netns), Some(empty)).expect_err("nothing there").to_string();
        assert!(err.contains("slirp4netns not found"), "{err}");
        {
            use std::os::unix::fs::PermissionsExt;
            let fake = dir.path().join("slirp4netns");
            std::fs::write(&fake, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let (b, p) = find_backend(None, Some(empty)).expect("slirp4netns as the fallback");
        assert_eq!((b, p), (Backend::Slirp4netns, dir.path().join("slirp4netns")));
    }

    #[test]
    fn detach_leaves_other_processes_alone() {
        let me = std::process::id() as i32;
        let a = Attached {
            backend: Backend::Pasta,
            pid: me,
            pid_start: 1,
            container_ip: None,
            gateway: None,
            dns: None,
        };
        detach(&a).expect("a start time that does not match is not ours");
        detach(&Attached { pid: 0, ..a.clone() }).expect("no pid");
        detach(&Attached { pid: i32::MAX, ..a }).expect("no such process");
    }
}
