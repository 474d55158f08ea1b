//! Rootless networks (pasta, slirp4netns) against the real helpers, as root: a "container" is a
//! `sleep` in a network namespace of its own; the servers behind the published ports are
//! sockets opened in that namespace by this process. Traffic only goes to 127.0.0.1 and to the
//! test's own namespaces (the slirp4netns gateway, 10.0.2.2, is inside slirp4netns).
//! Every helper is ended by the test (detach, or the container's end) and checked gone.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};
use skiff_net::netlink::in_netns;
use skiff_net::nft::{free_port, Proto};
use skiff_net::rootless::{attach, detach, Attached, Backend, Options, PortMap};
use skiff_net::Error;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A process in a new network namespace; killed (by pid) and reaped on drop.
struct Container {
    child: Child,
    netns: File,
}

impl Container {
    fn new() -> Container {
        let mut cmd = Command::new("sleep");
        cmd.arg("600").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: unshare is a plain syscall, fine between fork and exec.
        unsafe {
            cmd.pre_exec(|| unshare(CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from));
        }
        let child = cmd.spawn().expect("spawn sleep in a new netns (the tests need root)");
        let netns = File::open(format!("/proc/{}/ns/net", child.id())).expect("open the container's netns");
        Container { child, netns }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `ip ARGS` run in the container's namespace.
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .arg("ip")
            .args(args)
            .output()
            .expect("nsenter ip");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.stop();
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::Invalid(e.to_string())
}

/// Both helpers, or the reason one cannot run here.
fn available(b: Backend) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(b.program()).is_file()))
        .unwrap_or(false);
    if !found {
        eprintln!("skipped: {} is not installed", b.program());
    }
    found
}

fn opts(b: Backend, ports: Vec<PortMap>) -> Options {
    Options {
        backend: Some(b),
        ports,
        ..Options::default()
    }
}

/// Whether the helper process of `a` is gone (or a zombie, or its pid now someone else's).
fn gone(a: &Attached) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{}/stat", a.pid)) else {
        return true;
    };
    let Some(close) = text.rfind(')') else { return true };
    let f: Vec<&str> = text[close + 1..].split_whitespace().collect();
    f.first() == Some(&"Z") || f.get(19).and_then(|s| s.parse::<u64>().ok()) != Some(a.pid_start)
}

fn wait_gone(a: &Attached, within: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        if gone(a) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    gone(a)
}

/// Processes other than this one and `except` holding an fd on the namespace `netns`.
fn netns_holders(netns: &File, except: i32) -> Vec<i32> {
    let ino = netns.metadata().expect("netns metadata").ino();
    let want = format!("net:[{ino}]");
    let me = i32::try_from(std::process::id()).expect("pid");
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || pid == except {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
        {
            out.push(pid);
        }
    }
    out
}

/// A TCP echo server (one connection, one line, answered "echo:LINE") in the container.
fn tcp_echo(c: &Container, port: u16) -> std::thread::JoinHandle<()> {
    let listener = in_netns(c.netns.as_fd(), || {
        TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).map_err(io_err)
    })
    .expect("listen in the container");
    std::thread::spawn(move || {
        if let Ok((conn, _)) = listener.accept() {
            let mut line = String::new();
            let mut r = BufReader::new(&conn);
            if r.read_line(&mut line).is_ok() {
                let _ = (&conn).write_all(format!("echo:{line}").as_bytes());
            }
        }
    })
}

/// A UDP echo server (answers every datagram "echo:DATA" for 10 s) in the container.
fn udp_echo(c: &Container, port: u16) -> std::thread::JoinHandle<()> {
    let sock = in_netns(c.netns.as_fd(), || {
        UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).map_err(io_err)
    })
    .expect("udp in the container");
    std::thread::spawn(move || {
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        let t = Instant::now();
        let mut buf = [0u8; 512];
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = sock.send_to(&reply, peer);
            }
        }
    })
}

/// Attaches with host ports picked free just before, picking again (up to 5 times) when one
/// was taken in between (an ephemeral port, free when picked, is any connection's to take).
fn attach_on_free_ports(pid: i32, protos: &[Proto], options: impl Fn(&[u16]) -> Options) -> (Attached, Vec<u16>) {
    for _ in 0..5 {
        let ports: Vec<u16> = protos.iter().map(|&p| free_port(Some(LOCALHOST), p).expect("port")).collect();
        match attach(pid, &options(&ports)) {
            Ok(a) => return (a, ports),
            Err(Error::Conflict(m)) => eprintln!("picking other ports: {m}"),
            Err(e) => panic!("attach: {e:?}"),
        }
    }
    panic!("attach: the picked host ports were taken 5 times over");
}

fn forwards_tcp_and_udp(b: Backend) {
    if !available(b) {
        return;
    }
    let mut c = Container::new();
    let tcp = tcp_echo(&c, 8080);
    let udp = udp_echo(&c, 8081);
    // Host loopback allowed: without it both helpers lose UDP replies to clients on the host
    // itself (slirp4netns: podman #4586; pasta: the gateway source it gives host-local clients
    // is only mapped back without --no-map-gw). See the module doc.
    let (a, hosts) = attach_on_free_ports(c.pid(), &[Proto::Tcp, Proto::Udp], |p| {
        let ports = vec![
            PortMap {
                host_ip: Some(LOCALHOST),
                host_port: p[0],
                container_port: 8080,
                proto: Proto::Tcp,
            },
            PortMap {
                host_ip: None,
                host_port: p[1],
                container_port: 8081,
                proto: Proto::Udp,
            },
        ];
        Options {
            allow_host_loopback: true,
            ..opts(b, ports)
        }
    });
    let (ht, hu) = (hosts[0], hosts[1]);
    assert_eq!(a.backend, b);
    assert!(a.pid_start > 0 && !gone(&a), "{a:?}");

    // Inside: eth0 with the address reported, a default route via the gateway reported.
    let addrs = c.ip(&["-4", "addr", "show", "dev", "eth0"]);
    let ip = a.container_ip.expect("container address");
    assert!(addrs.contains(&format!("inet {ip}/")), "{addrs}");
    let routes = c.ip(&["-4", "route"]);
    let gw = a.gateway.expect("gateway");
    assert!(routes.contains(&format!("default via {gw} dev eth0")), "{routes}");
    if b == Backend::Slirp4netns {
        assert_eq!(ip.to_string(), "10.0.2.100");
        assert!(addrs.contains("mtu 65520"), "{addrs}");
    }
    assert!(a.dns.is_some());

    // From the host: 127.0.0.1:ht reaches the container's 8080, bytes both ways.
    let mut conn = TcpStream::connect_timeout(&SocketAddr::new(LOCALHOST, ht), Duration::from_secs(3)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    conn.write_all(b"hello tcp\n").expect("write");
    let mut got = String::new();
    conn.read_to_string(&mut got).expect("read");
    assert_eq!(got, "echo:hello tcp\n");
    tcp.join().expect("tcp server");

    // UDP likewise (retried: a first datagram may race the helper's flow setup). pasta of
    // Debian bookworm (0.0~git20230309) loses the replies of UDP flows spliced from the host's
    // loopback (the datagram arrives, the answer does not): there the round trip goes to the
    // host's own address (pasta's copy of it, which is the container's), still local traffic.
    let to = match b {
        Backend::Pasta => SocketAddr::new(ip, hu),
        Backend::Slirp4netns => SocketAddr::new(LOCALHOST, hu),
    };
    assert_eq!(udp_roundtrip(to).as_deref(), Some(&b"echo:hello udp"[..]), "UDP via {to}");
    detach(&a).expect("detach");
    assert!(wait_gone(&a, Duration::from_secs(2)), "helper still running: {a:?}");
    detach(&a).expect("detach twice");
    assert!(TcpListener::bind((LOCALHOST, ht)).is_ok(), "host port {ht} released");
    assert!(wait_no_holders(&c), "no helper left on the namespace");
    c.stop();
    udp.join().expect("udp server");
}

/// Sends "hello udp" to `to` until an answer comes (10 tries).
fn udp_roundtrip(to: SocketAddr) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)).expect("udp");
    sock.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let mut buf = [0u8; 64];
    for _ in 0..10 {
        sock.send_to(b"hello udp", to).expect("send");
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

fn wait_no_holders(c: &Container) -> bool {
    let t = Instant::now();
    loop {
        let h = netns_holders(&c.netns, c.pid());
        if h.is_empty() {
            return true;
        }
        if t.elapsed() > Duration::from_secs(6) {
            eprintln!("still holding the netns: {h:?}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pasta_forwards_tcp_and_udp() {
    forwards_tcp_and_udp(Backend::Pasta);
}

#[test]
fn slirp4netns_forwards_tcp_and_udp() {
    forwards_tcp_and_udp(Backend::Slirp4netns);
}

fn port_in_use(b: Backend) {
    if !available(b) {
        return;
    }
    let c = Container::new();
    let taken = TcpListener::bind((LOCALHOST, 0)).expect("bind");
    let port = taken.local_addr().expect("addr").port();
    for host_ip in [Some(LOCALHOST), None] {
        let ports = vec![PortMap {
            host_ip,
            host_port: port,
            container_port: 80,
            proto: Proto::Tcp,
        }];
        let err = attach(c.pid(), &opts(b, ports)).expect_err("the port is taken").to_string();
        assert!(err.contains(&format!("port {port}")) && err.contains("already in use"), "{err}");
    }
    assert!(wait_no_holders(&c), "no helper left behind");
}

#[test]
fn pasta_port_in_use() {
    port_in_use(Backend::Pasta);
}

#[test]
fn slirp4netns_port_in_use() {
    port_in_use(Backend::Slirp4netns);
}

fn container_end_ends_helper(b: Backend) {
    if !available(b) {
        return;
    }
    let mut c = Container::new();
    let (a, hosts) = attach_on_free_ports(c.pid(), &[Proto::Tcp], |p| {
        let ports = vec![PortMap {
            host_ip: Some(LOCALHOST),
            host_port: p[0],
            container_port: 80,
            proto: Proto::Tcp,
        }];
        opts(b, ports)
    });
    let hp = hosts[0];
    assert!(!gone(&a));
    c.stop();
    assert!(wait_gone(&a, Duration::from_secs(6)), "helper outlived the container: {a:?}");
    assert!(wait_no_holders(&c), "no helper left on the namespace");
    assert!(TcpListener::bind((LOCALHOST, hp)).is_ok(), "host port {hp} released");
    detach(&a).expect("detach after the end is fine");
}

#[test]
fn pasta_ends_with_the_container() {
    container_end_ends_helper(Backend::Pasta);
}

#[test]
fn slirp4netns_ends_with_the_container() {
    container_end_ends_helper(Backend::Slirp4netns);
}

/// With slirp4netns, 10.0.2.2 is the host's loopback only when allowed (it never leaves
/// slirp4netns: refused otherwise).
#[test]
fn slirp4netns_host_loopback() {
    if !available(Backend::Slirp4netns) {
        return;
    }
    let host = TcpListener::bind((LOCALHOST, 0)).expect("bind");
    let port = host.local_addr().expect("addr").port();
    for allow in [false, true] {
        let c = Container::new();
        let o = Options {
            allow_host_loopback: allow,
            ..opts(Backend::Slirp4netns, vec![])
        };
        let a = attach(c.pid(), &o).expect("attach");
        let target = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)), port);
        let got = in_netns(c.netns.as_fd(), || {
            let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(2)).map_err(io_err)?;
            s.write_all(b"hi").map_err(io_err)
        });
        if allow {
            got.expect("10.0.2.2 reaches the host's loopback");
            let (mut conn, _) = host.accept().expect("accept");
            let mut buf = [0u8; 2];
            conn.read_exact(&mut buf).expect("read");
            assert_eq!(&buf, b"hi");
        } else {
            assert!(got.is_err(), "the host's loopback must not be reachable");
        }
        detach(&a).expect("detach");
        assert!(wait_gone(&a, Duration::from_secs(2)));
    }
}

/// Time to attach, median of 10 per backend (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn attach_latency() {
    for b in [Backend::Pasta, Backend::Slirp4netns] {
        if !available(b) {
            continue;
        }
        let mut times = Vec::new();
        for _ in 0..10 {
            let c = Container::new();
            let hp = free_port(Some(LOCALHOST), Proto::Tcp).expect("port");
            let ports = vec![PortMap {
                host_ip: None,
                host_port: hp,
                container_port: 80,
                proto: Proto::Tcp,
            }];
            let t = Instant::now();
            let a = attach(c.pid(), &opts(b, ports)).expect("attach");
            times.push(t.elapsed());
            detach(&a).expect("detach");
        }
        times.sort();
        eprintln!(
            "{}: median {:?}, min {:?}, max {:?}",
            b.program(),
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
}
