//! The monitor's loop: output → log and clients, client input → container, init exit →
//! exit record → exit command.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::{Error, Result};
use std::os::unix::ffi::OsStrExt;

use crate::proto;

use crate::io;
use crate::log::Log;
use crate::run::Args;

/// An attached client: what it sent that is not a whole frame yet, and output not yet taken.
struct Client {
    fd: i32,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// Said it will clean up after the exit itself.
    cleans: bool,
}

/// A client that falls this far behind is dropped rather than stalling the container.
const MAX_BACKLOG: usize = 4 << 20;

struct Monitor<'a> {
    args: &'a Args,
    log: Log,
    /// Output sources: (fd, stream index 0 stdout / 1 stderr).
    outputs: Vec<(i32, usize)>,
    /// Where client input goes: the pty master or the stdin pipe.
    input: Option<i32>,
    clients: Vec<Client>,
    listener: i32,
}

pub fn run(args: &Args) -> Result<Infallible> {
    let sigfd = io::sigchld_fd()?;
    let log = Log::open(args.log.clone(), args.log_max_size, args.log_max_file)?;
    let mut outputs = Vec::new();
    if let Some(p) = args.pty {
        outputs.push((p, 0));
    }
    outputs.extend(args.stdout.map(|f| (f, 0)));
    outputs.extend(args.stderr.map(|f| (f, 1)));
    for &(fd, _) in &outputs {
        io::set_nonblocking(fd, true);
        io::set_cloexec(fd, true);
    }
    let input = args.pty.or(args.stdin);
    if let Some(fd) = args.stdin {
        io::set_cloexec(fd, true);
    }
    let listener = listen(args)?;
    let mut m = Monitor {
        args,
        log,
        outputs,
        input,
        clients: Vec::new(),
        listener,
    };
    if let Some(fd) = args.client {
        io::set_cloexec(fd, true);
        io::set_nonblocking(fd, true);
        m.clients.push(Client {
            fd,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            cleans: false,
        });
    }
    let code = m.serve(sigfd)?;
    m.finish(code)
}

/// Binds `<dir>/attach.sock` through `/proc/self/fd` so that a long directory path does not
/// hit the 108-byte limit of a socket address.
fn listen(args: &Args) -> Result<i32> {
    let dir = CString::new(args.dir.as_os_str().as_bytes()).map_err(|_| Error::other("dir has a NUL byte"))?;
    // SAFETY: open/socket/bind/listen with valid arguments; fds are owned by the monitor.
    unsafe {
        let dfd = io::check(libc::open(dir.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC))?;
        let path = format!("/proc/self/fd/{dfd}/attach.sock");
        let cpath = CString::new(path).map_err(|_| Error::other("bad socket path"))?;
        libc::unlink(cpath.as_ptr());
        let fd = io::check(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0))?;
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (i, b) in cpath.as_bytes().iter().enumerate() {
            addr.sun_path[i] = *b as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + cpath.as_bytes().len() + 1;
        io::check(libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len as libc::socklen_t))?;
        libc::close(dfd);
        io::check(libc::listen(fd, 16))?;
        Ok(fd)
    }
}

impl Monitor<'_> {
    /// Runs until the init exits; returns its status.
    fn serve(&mut self, sigfd: i32) -> Result<i32> {
        // The init may have exited before we were exec'd.
        if let Some(code) = io::reap(self.args.pid) {
            return Ok(code);
        }
        let mut buf = vec![0u8; 32 * 1024];
        crate::trim::trim();
        loop {
            let mut fds = vec![pollfd(sigfd, libc::POLLIN), pollfd(self.listener, libc::POLLIN)];
            for &(fd, _) in &self.outputs {
                fds.push(pollfd(fd, libc::POLLIN));
            }
            for c in &self.clients {
                let ev = if c.outbuf.is_empty() { libc::POLLIN } else { libc::POLLIN | libc::POLLOUT };
                fds.push(pollfd(c.fd, ev));
            }
            // SAFETY: poll over a vector we own.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n < 0 {
                let e = Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            let nout = self.outputs.len();
            let mut closed = Vec::new();
            for i in 0..nout {
                if fds[2 + i].revents != 0 {
                    let (fd, stream) = self.outputs[i];
                    match io::read(fd, &mut buf) {
                        Ok(0) => closed.push(fd),
                        Ok(k) => self.output(stream, &buf[..k]),
                        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
                        Err(_) => closed.push(fd),
                    }
                }
            }
            for fd in closed {
                // Every writer is gone (or a pty whose slaves are all closed): stop polling it.
                self.outputs.retain(|&(f, _)| f != fd);
                io::close(fd);
            }
            let revents: Vec<i16> = fds[2 + nout..].iter().map(|f| f.revents).collect();
            self.service_clients(&revents, &mut buf);
            if fds[1].revents != 0 {
                self.accept();
            }
            if fds[0].revents != 0 {
                io::drain_signalfd(sigfd);
                if let Some(code) = io::reap(self.args.pid) {
                    return Ok(code);
                }
            }
        }
    }

    fn output(&mut self, stream: usize, data: &[u8]) {
        self.log.add(stream, data);
        let kind = if stream == 0 { proto::STDOUT } else { proto::STDERR };
        let frame = proto::frame(kind, data);
        for c in &mut self.clients {
            c.outbuf.extend_from_slice(&frame);
        }
        self.flush_clients();
    }

    fn flush_clients(&mut self) {
        self.clients.retain_mut(|c| {
            while !c.outbuf.is_empty() {
                match io::write(c.fd, &c.outbuf) {
                    Ok(n) => {
                        c.outbuf.drain(..n);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                    Err(_) => {
                        io::close(c.fd);
                        return false;
                    }
                }
            }
            if c.outbuf.len() > MAX_BACKLOG {
                io::close(c.fd);
                return false;
            }
            true
        });
    }

    fn service_clients(&mut self, revents: &[i16], buf: &mut [u8]) {
        let mut gone = Vec::new();
        let mut frames = Vec::new();
        for (c, &ev) in self.clients.iter_mut().zip(revents) {
            if ev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 {
                continue;
            }
            match io::read(c.fd, buf) {
                Ok(0) => gone.push(c.fd),
                Ok(n) => {
                    c.inbuf.extend_from_slice(&buf[..n]);
                    match proto::take_frames(&mut c.inbuf) {
                        Ok(f) => {
                            c.cleans |= f.iter().any(|(k, _)| *k == proto::CLEANUP);
                            frames.extend(f);
                        }
                        Err(_) => gone.push(c.fd),
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
                Err(_) => gone.push(c.fd),
            }
        }
        for (kind, payload) in frames {
            self.input(kind, &payload);
        }
        self.clients.retain(|c| {
            if gone.contains(&c.fd) {
                io::close(c.fd);
                false
            } else {
                true
            }
        });
        self.flush_clients();
    }

    fn input(&mut self, kind: u8, payload: &[u8]) {
        match kind {
            proto::STDIN => {
                if let Some(fd) = self.input {
                    // Blocking write: the container reads its input at its own pace.
                    if io::write_all(fd, payload).is_err() && self.args.pty.is_none() {
                        io::close(fd);
                        self.input = None;
                    }
                }
            }
            proto::STDIN_CLOSE if self.args.pty.is_none() => {
                if let Some(fd) = self.input.take() {
                    io::close(fd);
                }
            }
            proto::RESIZE if payload.len() == 4 => {
                if let Some(p) = self.args.pty {
                    io::resize(p, u16::from_be_bytes([payload[0], payload[1]]), u16::from_be_bytes([payload[2], payload[3]]));
                }
            }
            _ => {}
        }
    }

    fn accept(&mut self) {
        loop {
            // SAFETY: accept4 on our listening socket; no address wanted.
            let fd = unsafe {
                libc::accept4(
                    self.listener,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd < 0 {
                return;
            }
            self.clients.push(Client {
                fd,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                cleans: false,
            });
        }
    }

    /// After the init's exit: drain what it left, record the status, tell the clients, and
    /// become the exit command (the clients stay open in it until cleanup is done).
    fn finish(&mut self, code: i32) -> Result<Infallible> {
        let mut buf = vec![0u8; 32 * 1024];
        for (fd, stream) in self.outputs.clone() {
            // Bounded: a process of the container that survived the init (an exec) may keep
            // writing; what it writes after this is not ours to log.
            for _ in 0..256 {
                match io::read(fd, &mut buf) {
                    Ok(k) if k > 0 => self.output(stream, &buf[..k]),
                    _ => break,
                }
            }
        }
        self.log.flush();
        let (secs, nanos) = crate::time::now_parts();
        write_exit(&self.args.dir, code, &crate::time::rfc3339_nano(secs, nanos))?;
        let exit = proto::frame(proto::EXIT, &code.to_be_bytes());
        for c in &mut self.clients {
            c.outbuf.extend_from_slice(&exit);
            io::set_nonblocking(c.fd, false);
            let _ = io::write_all(c.fd, &c.outbuf);
            io::set_cloexec(c.fd, false);
        }
        io::close(self.listener);
        let sock = self.args.dir.join("attach.sock");
        let _ = std::fs::remove_file(sock);
        if let Some(c) = self.clients.iter().find(|c| c.cleans) {
            if cleaned_by(c.fd) {
                std::process::exit(0);
            }
        }
        if self.args.exit_command.is_empty() {
            std::process::exit(0);
        }
        let fds: Vec<String> = self.clients.iter().map(|c| c.fd.to_string()).collect();
        let argv: Vec<CString> = self.args.exit_command.iter().filter_map(|a| CString::new(a.as_bytes()).ok()).collect();
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        std::env::set_var("SKIFF_ATTACHED_FDS", fds.join(","));
        // SAFETY: argv is a NUL-terminated array of C strings that outlive the call.
        unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
        Err(Error::last_os_error())
    }
}

/// Waits (at most a minute) for the client that took the cleanup on to report it done.
fn cleaned_by(fd: i32) -> bool {
    let mut inbuf = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as i32;
        if left <= 0 {
            return false;
        }
        let mut p = [pollfd(fd, libc::POLLIN)];
        // SAFETY: poll on one fd we own.
        if unsafe { libc::poll(p.as_mut_ptr(), 1, left) } <= 0 {
            continue;
        }
        match io::read(fd, &mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                inbuf.extend_from_slice(&buf[..n]);
                match proto::take_frames(&mut inbuf) {
                    Ok(frames) if frames.iter().any(|(k, _)| *k == proto::CLEANED) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        }
    }
}

fn pollfd(fd: i32, events: i16) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}

/// `<dir>/exit.json`: `{"ExitCode":N,"FinishedAt":"..."}`, written atomically.
fn write_exit(dir: &std::path::Path, code: i32, at: &str) -> Result<()> {
    let tmp = dir.join("exit.json.tmp");
    std::fs::write(&tmp, format!("{{\"ExitCode\":{code},\"FinishedAt\":\"{at}\"}}\n"))?;
    std::fs::rename(&tmp, dir.join("exit.json"))
}
