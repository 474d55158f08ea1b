//! Test support: a network namespace per test (no query can leave the machine), a DNS client, a
//! fake upstream resolver, and a guard that kills the servers a test started.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use skiff_dns::Entry;

pub const EXE: &str = env!("CARGO_BIN_EXE_skiff-dns");
/// Where the servers listen in the test's netns.
pub const LISTEN: [&str; 2] = ["127.0.0.1", "::1"];
/// The fake upstream's address and its one answer.
pub const UPSTREAM: &str = "127.0.0.53";
pub const UPSTREAM_ANSWER: &str = "198.51.100.7";

pub fn listen() -> Vec<IpAddr> {
    LISTEN.iter().map(|s| s.parse().unwrap()).collect()
}

pub fn server_v4() -> SocketAddr {
    "127.0.0.1:53".parse().unwrap()
}

/// Points every server this test process starts at a resolv.conf naming the fake upstream
/// (first one of the servers' own addresses, which they must skip). The same for all tests,
/// each of which runs its fake upstream in its own netns.
pub fn set_resolv_conf() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("skiff-dns-test-resolv.conf");
        std::fs::write(&p, format!("search example.invalid\nnameserver 127.0.0.1\nnameserver {UPSTREAM}\n")).unwrap();
        // SAFETY (of the intent; set_var is safe in edition 2021): done once, before any server
        // is spawned; std's env lock serializes it with Command's reads of the environment.
        std::env::set_var("SKIFF_DNS_RESOLV_CONF", &p);
    });
}

fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `f` on a thread of its own in a new network namespace (with `lo` up if asked): every
/// socket it opens and process it starts is in that namespace, which has no route out.
pub fn in_netns<T: Send + 'static>(lo_up: bool, f: impl FnOnce() -> T + Send + 'static) -> T {
    set_resolv_conf();
    std::thread::spawn(move || {
        // SAFETY: unshare of the network namespace affects this thread only.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare(CLONE_NEWNET): {} (these tests need root)", std::io::Error::last_os_error());
        if lo_up {
            ip(&["link", "set", "lo", "up"]);
        }
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

pub fn bring_lo_up() {
    ip(&["link", "set", "lo", "up"]);
}

pub fn entry(id: &str, names: &[&str], ips: &[&str]) -> Entry {
    Entry {
        container_id: id.into(),
        names: names.iter().map(|s| s.to_string()).collect(),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
    }
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace();
    if f.next()? == "Z" {
        return None;
    }
    f.nth(18)?.parse().ok()
}

pub fn alive(pid: i32) -> bool {
    start_time(pid).is_some()
}

/// A network's DNS dir in a temp dir; kills (by pid, checked by start time) every server it saw
/// when dropped.
pub struct Net {
    pub tmp: tempfile::TempDir,
    seen: Mutex<Vec<(i32, u64)>>,
}

impl Net {
    pub fn new() -> Net {
        Net {
            tmp: tempfile::tempdir().unwrap(),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("dns")
    }

    /// Notes the live server so that the guard kills it; returns its pid.
    pub fn track(&self) -> Option<i32> {
        let pid = skiff_dns::server_pid(&self.dir())?;
        let st = start_time(pid)?;
        let mut seen = self.seen.lock().unwrap();
        if !seen.contains(&(pid, st)) {
            seen.push((pid, st));
        }
        Some(pid)
    }

    pub fn add(&self, e: &Entry) -> skiff_dns::Result<()> {
        let r = skiff_dns::add(&self.dir(), &listen(), Path::new(EXE), e);
        self.track();
        r
    }

    pub fn remove(&self, id: &str) {
        skiff_dns::remove(&self.dir(), id).unwrap();
    }

    /// Waits (bounded) until the server `pid` has exited by itself.
    pub fn wait_exit(&self, pid: i32, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.track();
        for (pid, st) in self.seen.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if start_time(*pid) == Some(*st) {
                // SAFETY: plain kill(2) of a server this test started (same pid and start time).
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
        }
    }
}

fn message(name: &str, t: RecordType) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m
}

fn rand_id() -> u16 {
    static N: AtomicUsize = AtomicUsize::new(1);
    (N.fetch_add(7919, Ordering::Relaxed) % 65536) as u16
}

/// One UDP query; None on timeout.
pub fn try_query(server: SocketAddr, name: &str, t: RecordType, timeout: Duration) -> Option<Message> {
    let m = message(name, t);
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let s = UdpSocket::bind(local).unwrap();
    s.connect(server).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.send(&m.to_vec().unwrap()).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.recv(&mut buf).ok()?;
        let r = Message::from_vec(&buf[..n]).unwrap();
        if r.metadata.id == m.metadata.id {
            return Some(r);
        }
    }
}

pub fn query(server: SocketAddr, name: &str, t: RecordType) -> Message {
    try_query(server, name, t, Duration::from_millis(1500)).unwrap_or_else(|| panic!("no answer from {server} for {name} {t}"))
}

pub fn query_tcp(server: SocketAddr, name: &str, t: RecordType) -> Message {
    use std::io::{Read, Write};
    let m = message(name, t);
    let data = m.to_vec().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(&(data.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&data).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len).into()];
    s.read_exact(&mut buf).unwrap();
    let r = Message::from_vec(&buf).unwrap();
    assert_eq!(r.metadata.id, m.metadata.id);
    r
}

/// The answers' data as text, sorted ("192.0.2.10", "web." ...).
pub fn answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

/// Asserts a NOERROR answer with exactly these records.
pub fn assert_answers(m: &Message, want: &[&str]) {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(answers(m), want);
}

/// A fake upstream resolver on UPSTREAM:53 (UDP) in the current netns: answers every A query
/// with UPSTREAM_ANSWER and counts the queries. Stops when dropped.
pub struct Upstream {
    pub queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    /// Call on the netns thread: the socket is opened there, before the thread is spawned.
    pub fn start() -> Upstream {
        let sock = UdpSocket::bind((UPSTREAM, 53)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, st) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                let Ok(req) = Message::from_vec(&buf[..n]) else { continue };
                q.fetch_add(1, Ordering::Relaxed);
                let mut resp = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
                resp.metadata.recursion_desired = req.metadata.recursion_desired;
                resp.metadata.recursion_available = true;
                for query in &req.queries {
                    resp.add_query(query.clone());
                    if query.query_type() == RecordType::A {
                        resp.add_answer(Record::from_rdata(query.name().clone(), 300, RData::A(A(UPSTREAM_ANSWER.parse().unwrap()))));
                    }
                }
                let _ = sock.send_to(&resp.to_vec().unwrap(), from);
            }
        });
        Upstream {
            queries,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
