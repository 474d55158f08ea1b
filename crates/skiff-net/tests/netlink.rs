//! The netlink layer against the real kernel (needs root). Everything happens in network
//! namespaces made by the test (one "host" namespace per test for the bridge, one per
//! container), so the machine's own links are never touched; the namespaces go away with their
//! last fd.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};
use skiff_net::netlink::{in_netns, setup_container_iface, IfaceConfig, Netlink, VethSpec};
use skiff_net::Error;

/// A new, empty network namespace, made on a throwaway thread; the fd keeps it alive.
fn new_netns() -> OwnedFd {
    std::thread::spawn(|| {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET) (the tests need root)");
        OwnedFd::from(File::open("/proc/thread-self/ns/net").expect("open /proc/thread-self/ns/net"))
    })
    .join()
    .expect("netns thread")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn io_err(e: std::io::Error) -> Error {
    Error::Invalid(e.to_string())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Accepts one connection on `addr` in the namespace `ns` (a thread setns'd there), echoes what
/// it reads; the connecting side runs on another thread setns'd into `from`.
fn tcp_roundtrip(listen_ns: BorrowedFd<'_>, from_ns: BorrowedFd<'_>, addr: IpAddr) {
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let server = s.spawn(move || {
            in_netns(listen_ns, || {
                let listener = TcpListener::bind(SocketAddr::new(addr, 0)).map_err(io_err)?;
                tx.send(listener.local_addr().map_err(io_err)?).map_err(|e| Error::Invalid(e.to_string()))?;
                let (mut conn, peer) = listener.accept().map_err(io_err)?;
                let mut buf = [0u8; 5];
                conn.read_exact(&mut buf).map_err(io_err)?;
                conn.write_all(&buf).map_err(io_err)?;
                Ok(peer)
            })
        });
        let target = rx.recv_timeout(Duration::from_secs(5)).expect("listener address");
        let t = Instant::now();
        let got = in_netns(from_ns, || {
            let mut conn = TcpStream::connect_timeout(&target, Duration::from_secs(3)).map_err(io_err)?;
            conn.write_all(b"hello").map_err(io_err)?;
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).map_err(io_err)?;
            Ok(buf)
        });
        let got = got.unwrap_or_else(|e| panic!("connect to {target}: {e}"));
        assert_eq!(&got, b"hello");
        let peer = server.join().expect("server thread").expect("server");
        eprintln!("tcp {} -> {target}: ok in {:.2} ms", peer.ip(), ms(t));
    });
}

#[test]
fn bridge_two_containers_connectivity_and_cleanup() {
    let host = new_netns();
    let ns_a = new_netns();
    let ns_b = new_netns();

    let t = Instant::now();
    let mut nl = Netlink::open_in(host.as_fd()).expect("open in host ns");
    eprintln!("open netlink socket in a netns: {:.3} ms", ms(t));
    let t = Instant::now();
    let mut nl_here = Netlink::open().expect("open");
    eprintln!("open netlink socket here: {:.3} ms", ms(t));
    assert_eq!(nl_here.link_index("lo").expect("lo"), Some(1));
    let leftovers_before = nl_here.list_links_with_prefix("sk").expect("list");

    nl.link_up("lo").expect("host lo up");
    let t = Instant::now();
    let br = nl
        .ensure_bridge("skbr0", &[(ip("10.99.0.1"), 24), (ip("fd00:99::1"), 64)], 1500)
        .expect("bridge");
    eprintln!("ensure_bridge (create, 2 addresses, up): {:.3} ms", ms(t));
    let t = Instant::now();
    assert_eq!(
        nl.ensure_bridge("skbr0", &[(ip("10.99.0.1"), 24), (ip("fd00:99::1"), 64)], 1500)
            .expect("bridge again"),
        br
    );
    eprintln!("ensure_bridge (exists): {:.3} ms", ms(t));

    // Container A, in one call: pair created on the bridge (host side up, the peer already
    // named eth0 with its MAC, one request), then inside: eth0 and lo up, addresses, routes.
    let t = Instant::now();
    let spec = VethSpec {
        host_name: "vethsk0a",
        peer_name: "eth0",
        peer_netns: ns_a.as_fd(),
        mtu: 1500,
        bridge: Some(br),
        peer_mac: Some([0x02, 0x42, 10, 99, 0, 2]),
    };
    let cfg = IfaceConfig {
        name: "eth0",
        rename_to: None,
        mac: None,
        addrs: &[(ip("10.99.0.2"), 24), (ip("fd00:99::2"), 64)],
        gateways: &[ip("10.99.0.1"), ip("fd00:99::1")],
    };
    let idx_a = nl.connect_container(&spec, &cfg).expect("container a");
    eprintln!(
        "container A: connect_container (veth on bridge; inside: thread, socket, eth0 up, lo up, 2 addrs, 2 routes; link syncs): {:.3} ms",
        ms(t)
    );

    // Container B: the step-by-step path (pair, master, up).
    let t = Instant::now();
    nl.create_veth("vethsk0b", "eth0tmp", ns_b.as_fd(), 1500).expect("veth b");
    nl.set_master("vethsk0b", br).expect("master b");
    nl.link_up("vethsk0b").expect("up b");
    let t_veth = ms(t);
    let t2 = Instant::now();
    let cfg = IfaceConfig {
        name: "eth0tmp",
        rename_to: Some("eth0"),
        mac: Some([0x02, 0x42, 10, 99, 0, 3]),
        addrs: &[(ip("10.99.0.3"), 24), (ip("fd00:99::3"), 64)],
        ..cfg
    };
    setup_container_iface(ns_b.as_fd(), &cfg).expect("container b iface");
    eprintln!(
        "container B: veth + set_master + up {t_veth:.3} ms + inside netns {:.3} ms = {:.3} ms",
        ms(t2),
        ms(t)
    );

    // What the kernel says now.
    let host_a = nl.link("vethsk0a").expect("lookup").expect("vethsk0a exists");
    assert_eq!(
        (host_a.master, host_a.up, host_a.mtu, host_a.kind.as_deref()),
        (Some(br), true, 1500, Some("veth"))
    );
    let host_b = nl.link("vethsk0b").expect("lookup").expect("vethsk0b exists");
    assert_eq!((host_b.master, host_b.up), (Some(br), true));
    assert_eq!(nl.link_index("eth0").expect("lookup"), None, "the peers live in the containers' namespaces");
    assert_eq!(nl.link_index("eth0tmp").expect("lookup"), None);
    let mut in_a = Netlink::open_in(ns_a.as_fd()).expect("open in a");
    let eth0 = in_a.link("eth0").expect("lookup").expect("eth0 in a");
    assert_eq!((eth0.index, eth0.up, eth0.mtu), (idx_a, true, 1500));
    assert_eq!(eth0.mac.as_deref(), Some(&[0x02, 0x42, 10, 99, 0, 2][..]));
    assert!(in_a.link("lo").expect("lo").expect("lo").up);
    let mut in_b = Netlink::open_in(ns_b.as_fd()).expect("open in b");
    let eth0 = in_b.link("eth0").expect("lookup").expect("eth0 in b (renamed)");
    assert_eq!(eth0.mac.as_deref(), Some(&[0x02, 0x42, 10, 99, 0, 3][..]));
    assert_eq!(in_b.link_index("eth0tmp").expect("lookup"), None);
    drop(in_b);
    let t = Instant::now();
    let routes = in_a.routes_v4().expect("routes");
    eprintln!("routes_v4: {:.3} ms: {routes:?}", ms(t));
    assert!(routes.contains(&("0.0.0.0/0".parse().expect("net"), Some("eth0".into()))));
    assert!(routes.contains(&("10.99.0.0/24".parse().expect("net"), Some("eth0".into()))));
    let host_routes = nl.routes_v4().expect("host routes");
    assert!(
        host_routes.contains(&("10.99.0.0/24".parse().expect("net"), Some("skbr0".into()))),
        "{host_routes:?}"
    );
    drop(in_a);

    // Real traffic: A -> B over the bridge, v4 and v6, and A -> the host namespace through the
    // default routes (addresses outside the subnet, on the host namespace's lo).
    tcp_roundtrip(ns_b.as_fd(), ns_a.as_fd(), ip("10.99.0.3"));
    tcp_roundtrip(ns_a.as_fd(), ns_b.as_fd(), ip("fd00:99::2"));
    nl.add_address(1, ip("192.0.2.1"), 32).expect("host lo v4");
    nl.add_address(1, ip("2001:db8::1"), 128).expect("host lo v6");
    tcp_roundtrip(host.as_fd(), ns_a.as_fd(), ip("192.0.2.1"));
    tcp_roundtrip(host.as_fd(), ns_b.as_fd(), ip("2001:db8::1"));

    // The containers' namespaces go: their veth pairs go with them.
    drop(ns_a);
    drop(ns_b);
    let t = Instant::now();
    while nl.link_index("vethsk0a").expect("lookup").is_some() || nl.link_index("vethsk0b").expect("lookup").is_some() {
        assert!(t.elapsed() < Duration::from_secs(10), "veths still there after their namespaces were dropped");
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("veths gone {:.1} ms after their namespaces' last fd", ms(t));
    assert_eq!(nl.list_links_with_prefix("vethsk").expect("list"), Vec::<String>::new());
    assert!(nl.delete_link("skbr0").expect("delete bridge"));
    drop(nl);
    drop(host);
    assert_eq!(
        nl_here.list_links_with_prefix("sk").expect("list"),
        leftovers_before,
        "nothing made in the test's own namespace"
    );
}

#[test]
fn bridge_idempotent_under_concurrent_callers() {
    let host = new_netns();
    let fd = host.as_fd();
    for round in 0..20 {
        let barrier = Arc::new(Barrier::new(2));
        let results: Vec<_> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let barrier = barrier.clone();
                    s.spawn(move || {
                        let mut nl = Netlink::open_in(fd)?;
                        barrier.wait();
                        let t = Instant::now();
                        let r = nl.ensure_bridge("skbr1", &[(ip("10.98.0.1"), 24), (ip("fd00:98::1"), 64)], 0);
                        Ok::<_, Error>((r?, ms(t)))
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().expect("thread")).collect()
        });
        let (a, ta) = results[0].as_ref().unwrap_or_else(|e| panic!("round {round}: {e}"));
        let (b, tb) = results[1].as_ref().unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(a, b, "both callers get the same bridge");
        if round == 0 {
            eprintln!("2 concurrent ensure_bridge: {ta:.3} ms and {tb:.3} ms");
        }
        let mut nl = Netlink::open_in(fd).expect("open");
        let link = nl.link("skbr1").expect("lookup").expect("bridge exists");
        assert!(link.up && link.kind.as_deref() == Some("bridge"));
        assert!(nl.delete_link("skbr1").expect("delete"));
    }
    // A name taken by something that is not a bridge.
    let other = new_netns();
    let mut nl = Netlink::open_in(fd).expect("open");
    nl.create_veth("skvethx", "peerx", other.as_fd(), 0).expect("veth");
    let err = nl.ensure_bridge("skvethx", &[], 0).expect_err("a veth is not a bridge");
    eprintln!("ensure_bridge over a veth: {err}");
    assert!(matches!(err, Error::Conflict(_)) && err.to_string().contains("skvethx"));
}

#[test]
fn delete_link_both_ends_and_absent() {
    let host = new_netns();
    let peer_ns = new_netns();
    let mut nl = Netlink::open_in(host.as_fd()).expect("open");
    let mut in_peer = Netlink::open_in(peer_ns.as_fd()).expect("open peer");
    let t = Instant::now();
    nl.create_veth("skdel0", "skdel0p", peer_ns.as_fd(), 0).expect("veth");
    eprintln!("create_veth: {:.3} ms", ms(t));
    assert!(in_peer.link_index("skdel0p").expect("lookup").is_some());
    nl.link_up("skdel0").expect("up");
    assert!(nl.link("skdel0").expect("lookup").expect("exists").up);
    nl.link_down("skdel0").expect("down");
    assert!(!nl.link("skdel0").expect("lookup").expect("exists").up);
    assert_eq!(nl.list_links_with_prefix("skdel").expect("list"), vec!["skdel0".to_string()]);
    let t = Instant::now();
    assert!(nl.delete_link("skdel0").expect("delete"));
    eprintln!("delete_link: {:.3} ms", ms(t));
    assert_eq!(nl.link_index("skdel0").expect("lookup"), None);
    assert_eq!(in_peer.link_index("skdel0p").expect("lookup"), None, "the peer goes with its pair");
    assert!(!nl.delete_link("skdel0").expect("delete absent"));
    assert!(nl.list_links_with_prefix("skdel").expect("list").is_empty());
}

#[test]
fn bad_names_and_kernel_errors_are_named() {
    let host = new_netns();
    let peer_ns = new_netns();
    let mut nl = Netlink::open_in(host.as_fd()).expect("open");
    let long = "vethtoolongname16";
    let err = nl.create_veth(long, "eth0", peer_ns.as_fd(), 0).expect_err("too long");
    eprintln!("{err}");
    assert!(matches!(err, Error::Invalid(_)) && err.to_string().contains(long), "{err}");
    let err = nl.ensure_bridge("bad/name", &[], 0).expect_err("slash");
    assert!(err.to_string().contains("bad/name"), "{err}");
    let err = nl.delete_link("").expect_err("empty");
    eprintln!("{err}");

    // Refusals from the kernel name the link and keep the errno.
    let err = nl.set_master("sknothere", 4242).expect_err("no such link");
    eprintln!("{err}");
    assert!(err.to_string().contains("sknothere"), "{err}");
    let Error::Netlink { source, .. } = &err else {
        panic!("not a netlink error: {err:?}")
    };
    assert_eq!(source.raw_os_error(), Some(libc::ENODEV));
    nl.create_veth("skerr0", "skerr0p", peer_ns.as_fd(), 0).expect("veth");
    let err = nl.create_veth("skerr0", "skerr1p", peer_ns.as_fd(), 0).expect_err("exists");
    eprintln!("{err}");
    assert!(err.to_string().contains("skerr0"), "{err}");
    let err = nl.set_master("skerr0", 4242).expect_err("no such bridge");
    eprintln!("{err}");
    let idx = nl.link_index("skerr0").expect("lookup").expect("exists");
    let err = nl.add_address(idx, ip("10.97.0.1"), 40).expect_err("bad prefix");
    assert!(err.to_string().contains("/40"), "{err}");
    let err = nl.add_default_route(idx, ip("10.97.0.1")).expect_err("gateway not reachable, link down");
    eprintln!("{err}");
    assert!(err.to_string().contains("10.97.0.1"), "{err}");
}
