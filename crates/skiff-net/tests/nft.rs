//! The nftables table of skiff-net, as root. Every test runs in a fresh network namespace of its
//! own (a thread that unshares CLONE_NEWNET; nft, run from that thread, sees that namespace's
//! ruleset): the host's ruleset is never touched. `ip` is used here only, to build the test's
//! bridge, veth pair and "container" namespace.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use skiff_net::nft::{Nft, Proto, Published};

fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if Command::new(Nft::new().program()).arg("--version").output().is_err() {
        eprintln!("skipped: no nft binary");
        return false;
    }
    true
}

/// Runs `f` in a thread of its own, in a new network namespace.
fn in_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let t = std::thread::spawn(move || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        f()
    });
    t.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().expect(prog);
    assert!(out.status.success(), "{prog} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &str) {
    run("ip", &args.split_whitespace().collect::<Vec<_>>());
}

fn nft_list_table() -> String {
    let nft = Nft::new();
    run(&nft.program().display().to_string(), &["list", "table", "inet", "skiff"])
}

fn tcp(host: &str, port: u16, cport: u16) -> Published {
    Published {
        host_ip: None,
        host_port: port,
        container_ip: host.parse().unwrap(),
        container_port: cport,
        proto: Proto::Tcp,
    }
}

#[test]
fn concurrent_ensure_base_makes_one_table() {
    if !can_run() {
        return;
    }
    in_netns(|| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..3 {
                        Nft::new().ensure_base().expect("ensure_base");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("ensure_base thread");
        }
        let nft = Nft::new();
        let ruleset = run(&nft.program().display().to_string(), &["list", "ruleset"]);
        assert_eq!(ruleset.matches("table inet skiff").count(), 1, "{ruleset}");
        assert_eq!(ruleset.matches("jump ports").count(), 2, "{ruleset}");
        assert_eq!(ruleset.matches("jump masq").count(), 1, "{ruleset}");
        assert_eq!(ruleset.matches("ct state established,related accept").count(), 1, "{ruleset}");
        let t = Instant::now();
        nft.ensure_base().expect("ensure_base again");
        eprintln!("ensure_base with everything in place: {:?}", t.elapsed());
        assert_eq!(nft_list_table(), ruleset.trim_start(), "ensure_base is idempotent");
        // A fixed rule gone (someone flushed a chain): ensure_base puts it back.
        run(&nft.program().display().to_string(), &["flush", "chain", "inet", "skiff", "forward"]);
        let t = Instant::now();
        nft.ensure_base().expect("ensure_base repairs");
        eprintln!("ensure_base rewriting the fixed rules: {:?}", t.elapsed());
        assert_eq!(nft_list_table(), ruleset.trim_start(), "ensure_base repairs");
        nft.remove_all().expect("remove_all");
        nft.remove_all().expect("remove_all of nothing");
        assert!(!run(&nft.program().display().to_string(), &["list", "ruleset"]).contains("skiff"));
        // publish with no table: the table and chains are made on the way.
        nft.publish("c1", &[tcp("10.88.0.2", 18080, 8080)]).expect("publish without a table");
        assert_eq!(nft.list_published().expect("list"), vec![("c1".to_string(), tcp("10.88.0.2", 18080, 8080))]);
        nft.remove_all().expect("remove_all");
        assert!(nft.list_published().expect("list without a table").is_empty());
    });
}

#[test]
fn publish_unpublish_leaves_the_others() {
    if !can_run() {
        return;
    }
    in_netns(|| {
        let nft = Nft::new();
        nft.ensure_base().expect("ensure_base");
        let c1 = vec![
            tcp("10.88.0.2", 18080, 8080),
            Published {
                proto: Proto::Udp,
                ..tcp("10.88.0.2", 18080, 8080)
            },
        ];
        let c2 = vec![Published {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            ..tcp("10.88.0.3", 18081, 80)
        }];
        let c3 = vec![
            tcp("10.88.0.4", 18082, 80),
            Published {
                host_ip: Some("fd00::1".parse().unwrap()),
                ..tcp("fd00::4", 18083, 80)
            },
        ];
        for (id, ports) in [("c1", &c1), ("c2", &c2), ("c3", &c3)] {
            nft.publish(id, ports).expect("publish");
        }
        let set = |v: Vec<(String, Published)>| v.into_iter().collect::<HashSet<_>>();
        let tagged = |id: &str, v: &[Published]| v.iter().map(|p| (id.to_string(), *p)).collect::<Vec<_>>();
        let all = [tagged("c1", &c1), tagged("c2", &c2), tagged("c3", &c3)].concat();
        assert_eq!(set(nft.list_published().expect("list")), set(all.clone()));
        // Written over netlink, read by nft as its own syntax.
        let table = nft_list_table();
        for line in [
            "meta nfproto ipv4 tcp dport 18080 dnat ip to 10.88.0.2:8080 comment \"skiff:c1\"",
            "meta nfproto ipv4 udp dport 18080 dnat ip to 10.88.0.2:8080 comment \"skiff:c1\"",
            "ip daddr 127.0.0.1 tcp dport 18081 dnat ip to 10.88.0.3:80 comment \"skiff:c2\"",
            "ip6 daddr fd00::1 tcp dport 18083 dnat ip6 to [fd00::4]:80 comment \"skiff:c3\"",
        ] {
            assert!(table.contains(line), "{line} in {table}");
        }

        // Ports taken by our rules are refused like Docker does; others are free.
        let err = nft.check_port(None, 18080, Proto::Tcp).expect_err("18080 is published");
        assert_eq!(err.to_string(), "Bind for 0.0.0.0:18080 failed: port is already allocated");
        assert!(nft.check_port(Some("127.0.0.1".parse().unwrap()), 18081, Proto::Tcp).is_err());
        assert!(nft.check_port(None, 18081, Proto::Udp).is_ok());
        assert!(nft.check_port(None, 18099, Proto::Tcp).is_ok());
        let held = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = held.local_addr().expect("addr").port();
        assert!(nft.check_port(None, port, Proto::Tcp).is_err(), "a socket of the host holds it");

        nft.unpublish("c2").expect("unpublish c2");
        nft.unpublish("c2").expect("unpublish c2 again is a no-op");
        assert_eq!(set(nft.list_published().expect("list")), set([tagged("c1", &c1), tagged("c3", &c3)].concat()));
        nft.unpublish("c1").expect("unpublish c1");
        assert_eq!(set(nft.list_published().expect("list")), set(tagged("c3", &c3)));
        nft.unpublish("c3").expect("unpublish c3");
        assert!(nft.list_published().expect("list").is_empty());

        // Bad input: refused before nft runs, nothing half-made.
        assert!(nft.publish("c\"4", &c1).is_err());
        let mixed = Published {
            host_ip: Some("fd00::1".parse().unwrap()),
            ..tcp("10.88.0.5", 18084, 80)
        };
        assert!(nft.publish("c5", &[tcp("10.88.0.5", 18085, 80), mixed]).is_err());
        assert!(nft.list_published().expect("list").is_empty(), "no rule of a failed publish");

        // Networks: idempotent add, exact removal.
        ip("link add br-t1 type bridge");
        ip("link add br-t2 type bridge");
        let net1 = ["10.88.0.0/24".parse().unwrap(), "fd00:88::/64".parse().unwrap()];
        nft.add_network("br-t1", &net1, false).expect("add_network");
        let once = nft_list_table();
        nft.add_network("br-t1", &net1, false).expect("add_network again");
        assert_eq!(nft_list_table(), once, "add_network is idempotent");
        nft.add_network("br-t2", &["10.89.0.0/24".parse().unwrap()], true)
            .expect("add_network internal");
        eprintln!("{}", nft_list_table());
        nft.remove_network("br-t1").expect("remove_network");
        let left = nft_list_table();
        assert!(!left.contains("br-t1") && left.contains("br-t2"), "{left}");
        nft.remove_network("br-t2").expect("remove_network");
        assert!(!nft_list_table().contains("skiff-net:"));

        // Timing: a container's publish (one nft call) and unpublish (a listing and one call).
        let (mut publish, mut unpublish, mut list) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let n = 10u32;
        for i in 0..n {
            let t = Instant::now();
            nft.publish("timed", &c1).expect("publish");
            publish += t.elapsed();
            let t = Instant::now();
            nft.unpublish("timed").expect("unpublish");
            unpublish += t.elapsed();
            let t = Instant::now();
            assert!(nft.list_published().expect("list").is_empty(), "round {i}");
            list += t.elapsed();
        }
        eprintln!(
            "publish (2 ports): {:?} mean, unpublish: {:?} mean, list_published: {:?} mean, over {n} rounds",
            publish / n,
            unpublish / n,
            list / n
        );
        nft.remove_all().expect("remove_all");
    });
}

type Job = Box<dyn FnOnce() + Send>;

/// A network namespace of the test's own, kept by a thread that runs what it is given in it
/// (the "container" and an "outside" host). Its threads and sockets stay in it.
struct Netns {
    jobs: mpsc::Sender<Job>,
    tid: i32,
}

impl Netns {
    fn new() -> Netns {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (tid_tx, tid_rx) = mpsc::channel();
        std::thread::spawn(move || {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
            tid_tx.send(nix::unistd::gettid().as_raw()).expect("send tid");
            for job in rx {
                job();
            }
        });
        Netns {
            jobs,
            tid: tid_rx.recv().expect("netns thread"),
        }
    }

    fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        });
        self.jobs.send(job).expect("send job");
        rx.recv().expect("job result").unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// Moves `link` of the current namespace here, as `addr`, default route via `gw`.
    fn take_link(&self, link: &str, addr: &str, gw: Option<&str>) {
        ip(&format!("link set {link} netns {}", self.tid));
        let (link, addr, gw) = (link.to_string(), addr.to_string(), gw.map(str::to_string));
        self.run(move || {
            ip("link set lo up");
            ip(&format!("addr add {addr} dev {link}"));
            ip(&format!("link set {link} up"));
            if let Some(gw) = gw {
                ip(&format!("route add default via {gw}"));
            }
        });
    }
}

/// A TCP server replying with the peer's address, and for `udp` a UDP echo, on `port` of every
/// address of the current namespace.
fn serve(port: u16, udp: bool) {
    let listener = TcpListener::bind(("0.0.0.0", port)).expect("tcp bind");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let peer = conn.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
            let _ = conn.write_all(format!("hello {peer}\n").as_bytes());
        }
    });
    if udp {
        let sock = UdpSocket::bind(("0.0.0.0", port)).expect("udp bind");
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&[b"echo ", &buf[..n]].concat(), from);
            }
        });
    }
}

fn tcp_get(addr: &str) -> std::io::Result<String> {
    let addr: SocketAddr = addr.parse().expect("addr");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

fn udp_echo(addr: &str) -> std::io::Result<String> {
    let to: SocketAddr = addr.parse().expect("addr");
    let local: IpAddr = if to.ip().is_loopback() { to.ip() } else { "0.0.0.0".parse().expect("ip") };
    let s = UdpSocket::bind(SocketAddr::new(local, 0))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.send_to(b"ping", to)?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn published_port_carries_traffic_from_the_host() {
    if !can_run() {
        return;
    }
    in_netns(|| {
        // host: br-t 10.88.0.1/24 -- veth -- container 10.88.0.2:8080 (TCP and UDP servers);
        // host 192.168.77.1/24 -- veth -- outside 192.168.77.2:9000.
        ip("link set lo up");
        ip("link add br-t type bridge");
        ip("addr add 10.88.0.1/24 dev br-t");
        ip("link set br-t up");
        ip("link add veth-h type veth peer name veth-c");
        ip("link set veth-h master br-t");
        // With br_netfilter (loaded here: bridge-nf-call-iptables=1), a container reaching its
        // own published port through the gateway is DNATed on the bridge path, and the frame
        // goes back out of the port it came in by: the port needs hairpin mode (as netavark and
        // Docker without userland proxy set it).
        ip("link set veth-h type bridge_slave hairpin on");
        ip("link set veth-h up");
        let ctr = Netns::new();
        ctr.take_link("veth-c", "10.88.0.2/24", Some("10.88.0.1"));
        ctr.run(|| serve(8080, true));
        ip("link add veth-o type veth peer name veth-x");
        ip("addr add 192.168.77.1/24 dev veth-o");
        ip("link set veth-o up");
        let outside = Netns::new();
        outside.take_link("veth-x", "192.168.77.2/24", None);
        outside.run(|| serve(9000, false));

        let nft = Nft::new();
        nft.ensure_base().expect("ensure_base");
        nft.add_network("br-t", &["10.88.0.0/24".parse().unwrap()], false).expect("add_network");
        let ports = [
            tcp("10.88.0.2", 18080, 8080),
            Published {
                proto: Proto::Udp,
                ..tcp("10.88.0.2", 18080, 8080)
            },
        ];
        let t = Instant::now();
        nft.publish("ctr1", &ports).expect("publish");
        eprintln!("publish: {:?}", t.elapsed());
        eprintln!("{}", nft_list_table());

        assert_eq!(tcp_get("10.88.0.2:8080").expect("direct"), "hello 10.88.0.1\n");
        // 127.0.0.1: output DNAT, route_localnet on the bridge, masquerade to the bridge's address.
        assert_eq!(tcp_get("127.0.0.1:18080").expect("tcp 127.0.0.1:18080"), "hello 10.88.0.1\n");
        assert_eq!(tcp_get("10.88.0.1:18080").expect("tcp 10.88.0.1:18080"), "hello 10.88.0.1\n");
        assert_eq!(tcp_get("192.168.77.1:18080").expect("tcp 192.168.77.1:18080"), "hello 192.168.77.1\n");
        assert_eq!(udp_echo("127.0.0.1:18080").expect("udp 127.0.0.1:18080"), "echo ping");
        assert_eq!(udp_echo("10.88.0.1:18080").expect("udp 10.88.0.1:18080"), "echo ping");
        // The container itself: hairpin through its gateway, and out (masqueraded).
        let hairpin = ctr.run(|| tcp_get("10.88.0.1:18080"));
        assert_eq!(hairpin.expect("hairpin 10.88.0.1:18080"), "hello 10.88.0.1\n");
        assert_eq!(ctr.run(|| tcp_get("192.168.77.2:9000")).expect("outbound"), "hello 192.168.77.1\n");

        // --internal: nothing leaves the bridge; its containers still reach published ports.
        nft.add_network("br-t", &["10.88.0.0/24".parse().unwrap()], true).expect("add_network internal");
        let err = ctr.run(|| tcp_get("192.168.77.2:9000")).expect_err("internal: no way out");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert_eq!(ctr.run(|| tcp_get("10.88.0.1:18080")).expect("internal hairpin"), "hello 10.88.0.1\n");
        nft.add_network("br-t", &["10.88.0.0/24".parse().unwrap()], false).expect("add_network again");
        assert_eq!(ctr.run(|| tcp_get("192.168.77.2:9000")).expect("outbound again"), "hello 192.168.77.1\n");

        let t = Instant::now();
        nft.unpublish("ctr1").expect("unpublish");
        eprintln!("unpublish: {:?}", t.elapsed());
        let err = tcp_get("127.0.0.1:18080").expect_err("no rule, no one listening");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        nft.remove_network("br-t").expect("remove_network");
        nft.remove_all().expect("remove_all");
    });
}
