//! Networks, for real: every test runs skiff inside a network namespace of its own (made by
//! the test, with only `lo` up), so its bridges, veths, nftables table, DNS servers and
//! published ports exist there and vanish with it; no packet can leave the machine (that
//! namespace has no route out), and the host's own network is never touched.
//!
//! "The host" below is the test's namespace: a client there stands for a program on the host.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{eventually, text, Store};

/// A network namespace held by a `sleep` of ours.
struct Netns {
    holder: Child,
    fd: std::fs::File,
}

impl Netns {
    fn new() -> Netns {
        let mine = std::fs::metadata("/proc/self/ns/net")
            .map(|m| std::os::linux::fs::MetadataExt::st_ino(&m))
            .unwrap();
        let holder = Command::new("unshare").args(["--net", "--", "sleep", "100000"]).spawn().expect("unshare");
        let path = format!("/proc/{}/ns/net", holder.id());
        assert!(
            eventually(5, || std::fs::metadata(&path)
                .map(|m| std::os::linux::fs::MetadataExt::st_ino(&m))
                .is_ok_and(|i| i != mine)),
            "the holder never entered a namespace of its own"
        );
        let fd = std::fs::File::open(&path).unwrap();
        let ns = Netns { holder, fd };
        let o = ns.command("ip", &["link", "set", "lo", "up"]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        ns
    }

    fn enter(&self, c: &mut Command) {
        let fd = self.fd.as_raw_fd();
        // SAFETY: setns(2) in the forked child before exec; async-signal-safe.
        unsafe {
            c.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    fn command(&self, prog: &str, args: &[&str]) -> Command {
        let mut c = Command::new(prog);
        c.args(args);
        self.enter(&mut c);
        c
    }

    /// Output of a command run in the namespace (asserting success).
    fn sh(&self, prog: &str, args: &[&str]) -> String {
        let o = self.command(prog, args).output().unwrap();
        assert!(o.status.success(), "{prog} {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    /// Runs `f` on a thread that has joined the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let fd = self.fd.as_raw_fd();
        std::thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: setns(2) on this thread only (CLONE_NEWNET applies per thread).
                assert_eq!(unsafe { libc::setns(fd, libc::CLONE_NEWNET) }, 0, "setns");
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A store whose skiff runs in a namespace of its own, with Docker's default network.
struct NetStore {
    store: Store,
    ns: Netns,
}

impl NetStore {
    fn new() -> NetStore {
        let dns = Path::new(common::skiff_bin()).with_file_name("skiff-dns");
        assert!(
            dns.exists(),
            "{} missing: build the workspace (cargo test --workspace builds it)",
            dns.display()
        );
        NetStore {
            store: Store::new(),
            ns: Netns::new(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.store.cmd(args);
        c.env("SKIFF_DEFAULT_NETWORK", "bridge");
        self.ns.enter(&mut c);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn skiff")
    }

    fn ok(&self, args: &[&str]) -> String {
        common::succeeded(args, self.run(args))
    }

    /// Runs and asserts failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "skiff {args:?} succeeded: {}", text(&o.stdout));
        text(&o.stderr)
    }

    fn inspect(&self, name: &str, fmt: &str) -> String {
        self.ok(&["inspect", "-f", fmt, name]).trim().to_string()
    }

    /// The container's endpoint on network `net`, from inspect.
    fn endpoint(&self, name: &str, net: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.inspect(name, "{{json .NetworkSettings.Networks}}")).unwrap();
        v[net].clone()
    }

    fn ip_of(&self, name: &str) -> String {
        self.inspect(name, "{{.NetworkSettings.IPAddress}}")
    }

    fn root(&self) -> &Path {
        self.store.path()
    }

    /// A user network's state dir (`<root>/networks/<id>`).
    fn net_dir(&self, net: &str) -> PathBuf {
        let id = self.ok(&["network", "inspect", "-f", "{{.Id}}", net]).trim().to_string();
        self.root().join("networks").join(id)
    }

    fn links(&self) -> String {
        self.ns.sh("ip", &["-o", "link"])
    }

    fn ruleset(&self) -> String {
        self.ns.sh("nft", &["list", "ruleset"])
    }
}

impl Drop for NetStore {
    fn drop(&mut self) {
        // Containers go while their namespace is still there (the store's own drop checks mounts).
        let ids = self.run(&["ps", "-aq", "--no-trunc"]);
        let ids: Vec<String> = text(&ids.stdout).lines().map(str::to_string).collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.run(&args);
        }
    }
}

/// `GET path` from `addr` (host:port), over plain HTTP/1.0; the body.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// Retries `http_get` for a few seconds (the server inside may still be starting).
fn http_get_soon(addr: &str, path: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        match http_get(addr, path) {
            Ok(b) if !b.is_empty() => return b,
            Ok(_) => last = "empty reply".into(),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("GET http://{addr}{path}: {last}");
}

/// A static UDP echo server for the busybox image (busybox has no UDP server applet), built
/// once into cargo's target tmp dir and reused while newer than its source (tests/vm/ci.sh
/// builds it on the host for the guest, which has no compiler).
fn udp_echo() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/udp-echo.c");
        let out = dir.join("udp-echo");
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if mtime(&out).is_some() && (mtime(&src).is_none() || mtime(&out) >= mtime(&src)) {
            return out;
        }
        let tmp = dir.join(format!("udp-echo-{}", std::process::id()));
        let st = Command::new("cc").args(["-static", "-O2", "-o"]).arg(&tmp).arg(&src).status().expect("cc");
        assert!(st.success(), "building {} (cc -static needs libc6-dev)", src.display());
        // Atomic: concurrent test binaries each build one, the last rename wins, all equal.
        std::fs::rename(&tmp, &out).expect("place udp-echo");
        out
    })
}

#[test]
fn user_network_names_aliases_and_isolation() {
    let s = NetStore::new();
    s.ok(&["network", "create", "app"]);
    s.ok(&["network", "create", "other"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app",
        "--network-alias",
        "www",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    // By name, by alias, by NAME.dns.skiff, and by the short id; TCP to the server.
    let id = s.inspect("web", "{{.Id}}");
    let script = format!(
        "wget -qO- http://web/ && wget -qO- http://www/ && wget -qO- http://web.dns.skiff/ && wget -qO- http://{}/",
        &id[..12]
    );
    let mut out = String::new();
    for _ in 0..50 {
        let o = s.run(&["run", "--rm", "--network", "app", "busybox", "sh", "-c", &script]);
        out = text(&o.stdout);
        if o.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(out, "hello-from-web\n".repeat(4));
    // The client's resolv.conf names the network's DNS server, its hosts file its own address.
    let rc = s.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "--hostname",
        "cli",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts; hostname",
    ]);
    let gw = s.inspect("web", "{{.NetworkSettings.Gateway}}");
    assert!(rc.contains(&format!("nameserver {gw}\n")) && rc.contains("search dns.skiff"), "{rc}");
    assert!(rc.contains("\tcli\n") && rc.trim_end().ends_with("cli"), "{rc}");
    // Another network neither resolves nor reaches it.
    let ip = s.ip_of("web");
    let o = s.run(&[
        "run",
        "--rm",
        "--network",
        "other",
        "busybox",
        "sh",
        "-c",
        &format!("nslookup web; wget -T 2 -qO- http://{ip}/"),
    ]);
    assert!(!o.status.success(), "{}", text(&o.stdout));
    assert!(!text(&o.stdout).contains("hello-from-web"));
    // The default bridge has no DNS by name (Docker's rule) but reaches by address.
    let o = s.run(&["run", "--rm", "busybox", "nslookup", "web"]);
    assert!(!o.status.success());
}

#[test]
fn published_tcp_and_udp_reach_the_container_from_the_host_and_from_containers() {
    let s = NetStore::new();
    let echo = udp_echo();
    let vol = format!("{}:/udp-echo:ro", echo.display());
    s.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "-p",
        "127.0.0.1:18080:80",
        "-p",
        "18081:80",
        "-p",
        "127.0.0.1:15353:5353/udp",
        "-v",
        &vol,
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo published-ok > /www/f && httpd -p 80 -h /www && exec /udp-echo 5353",
    ]);
    assert_eq!(
        s.ok(&["port", "srv"]),
        "5353/udp -> 127.0.0.1:15353\n80/tcp -> 127.0.0.1:18080\n80/tcp -> 0.0.0.0:18081\n"
    );
    assert_eq!(s.ok(&["port", "srv", "80"]), "127.0.0.1:18080\n0.0.0.0:18081\n");
    // Host -> container, TCP (both bindings) and UDP.
    let (a, b, u) = s.ns.run(|| {
        let a = http_get_soon("127.0.0.1:18080", "/f");
        let b = http_get_soon("127.0.0.1:18081", "/f");
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut got = String::new();
        for _ in 0..20 {
            sock.send_to(b"ping-udp", "127.0.0.1:15353").unwrap();
            let mut buf = [0u8; 64];
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                got = String::from_utf8_lossy(&buf[..n]).into_owned();
                break;
            }
        }
        (a, b, got)
    });
    assert_eq!((a.as_str(), b.as_str(), u.as_str()), ("published-ok\n", "published-ok\n", "echo:ping-udp"));
    // Another container reaches the published port through its gateway (the host's address).
    let gw = s.inspect("srv", "{{.NetworkSettings.Gateway}}");
    let got = s.ok(&["run", "--rm", "busybox", "wget", "-qO-", &format!("http://{gw}:18081/f")]);
    assert_eq!(got, "published-ok\n");
    // And the container its own published port (hairpin mode on its bridge port).
    assert_eq!(s.ok(&["exec", "srv", "wget", "-qO-", &format!("http://{gw}:18081/f")]), "published-ok\n");
    // ps shows the mappings; stop removes the rules, start brings them back.
    let ps = s.ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains("127.0.0.1:18080->80/tcp"), "{ps}");
    s.ok(&["stop", "-t", "1", "srv"]);
    assert!(!s.ruleset().contains("dport 18080"), "{}", s.ruleset());
    assert!(s.ns.run(|| http_get("127.0.0.1:18080", "/f")).is_err());
    s.ok(&["start", "srv"]);
    assert_eq!(s.ns.run(|| http_get_soon("127.0.0.1:18080", "/f")), "published-ok\n");
    // A quick restart, before the kernel has torn down the previous run's namespace and veth.
    for _ in 0..3 {
        s.ok(&["restart", "-t", "0", "srv"]);
        assert_eq!(s.ns.run(|| http_get_soon("127.0.0.1:18080", "/f")), "published-ok\n");
    }
}

#[test]
fn publish_all_picks_free_ports_for_exposed_ones() {
    let s = NetStore::new();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "pp",
        "--expose",
        "80",
        "-P",
        "-p",
        "90",
        "busybox",
        "sh",
        "-c",
        "echo pp > /i && exec httpd -f -p 80 -h /",
    ]);
    let ports = s.ok(&["port", "pp"]);
    let lines: Vec<&str> = ports.lines().collect();
    assert_eq!(lines.len(), 2, "{ports}");
    let host80 = lines
        .iter()
        .find(|l| l.starts_with("80/tcp -> 0.0.0.0:"))
        .expect("80 published")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    assert!(lines.iter().any(|l| l.starts_with("90/tcp -> 0.0.0.0:")), "{ports}");
    assert_eq!(s.ns.run(|| http_get_soon(&format!("127.0.0.1:{host80}"), "/i")), "pp\n");
}

#[test]
fn none_host_and_container_modes() {
    let s = NetStore::new();
    let links = s.ok(&["run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(links, "lo\n");
    // The default (bridge): lo and eth0, an address, a default route via the gateway.
    let out = s.ok(&["run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net; ip -4 -o addr show eth0; ip route"]);
    assert!(out.starts_with("eth0\nlo\n"), "{out}");
    assert!(out.contains("inet 172.17.0.") && out.contains("default via 172.17.0.1 dev eth0"), "{out}");
    // host: the namespace's own links (here: lo and the default bridge skiff0).
    let host = s.ok(&["run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"]);
    assert!(host.contains("skiff0") && host.contains("lo"), "{host}");
    // container:OTHER shares OTHER's namespace: its address, its localhost servers.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "aa",
        "busybox",
        "sh",
        "-c",
        "echo shared > /s && exec httpd -f -p 127.0.0.1:8000 -h /",
    ]);
    let ip = s.ip_of("aa");
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "container:aa",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8000/s && break; sleep 0.2; done; hostname",
    ]);
    assert!(out.contains(&format!("inet {ip}/")), "{out}");
    assert!(out.contains("shared\n"), "{out}");
    assert!(out.trim_end().ends_with(&s.inspect("aa", "{{.Config.Hostname}}")), "{out}");
    let err = s.fails(&["run", "--rm", "--network", "container:aa", "-p", "80:80", "busybox", "true"]);
    assert!(err.contains("conflicting options: port publishing"), "{err}");
    s.ok(&["create", "--name", "stopped", "busybox", "true"]);
    let err = s.fails(&["run", "--rm", "--network", "container:stopped", "busybox", "true"]);
    assert!(err.contains("cannot join network of a non running container: stopped"), "{err}");
}

#[test]
fn internal_network_has_no_route_out() {
    let s = NetStore::new();
    s.ok(&["network", "create", "--internal", "priv"]);
    s.ok(&["network", "create", "pub"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "priv",
        "busybox",
        "sh",
        "-c",
        "echo in > /x && exec httpd -f -p 80 -h /",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "out",
        "--network",
        "pub",
        "busybox",
        "sh",
        "-c",
        "echo out > /x && exec httpd -f -p 80 -h /",
    ]);
    let out_ip = s.ip_of("out");
    let script = format!(
        "ip route; for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://db/x && break; sleep 0.2; done; wget -T 2 -qO- http://{out_ip}/x || echo no-way-out"
    );
    let o = s.ok(&["run", "--rm", "--network", "priv", "busybox", "sh", "-c", &script]);
    assert!(!o.contains("default"), "an internal network has no default route: {o}");
    let lines: Vec<&str> = o.lines().collect();
    assert!(lines.contains(&"in") && lines.contains(&"no-way-out") && !lines.contains(&"out"), "{o}");
}

#[test]
fn a_killed_monitor_then_rm_f_leaves_nothing() {
    let s = NetStore::new();
    s.ok(&["network", "create", "n1"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "n1",
        "--network-alias",
        "vv",
        "-p",
        "127.0.0.1:18090:80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    let id = s.inspect("victim", "{{.Id}}");
    let dir = s.net_dir("n1");
    let veth = format!("sk{}", &id[..10]);
    assert!(s.links().contains(&veth));
    assert!(s.ruleset().contains(&format!("skiff:{id}")));
    assert!(std::fs::read_to_string(dir.join("ipam.json")).unwrap().contains(&id));
    assert!(std::fs::read_to_string(dir.join("dns/records.json")).unwrap().contains(&id));
    let dns_pid: i32 = std::fs::read_to_string(dir.join("dns/server.pid"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let monitors = common::monitors_of(s.root());
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(monitors[0]), nix::sys::signal::Signal::SIGKILL).unwrap();
    s.ok(&["rm", "-f", "victim"]);
    // The veth goes with the container's namespace, which the kernel tears down right after.
    assert!(eventually(10, || !s.links().contains(&veth)), "{}", s.links());
    let rules = s.ruleset();
    assert!(!rules.contains(&id) && !rules.contains("18090"), "{rules}");
    assert!(!std::fs::read_to_string(dir.join("ipam.json")).unwrap().contains(&id));
    assert!(!std::fs::read_to_string(dir.join("dns/records.json")).unwrap_or_default().contains(&id));
    assert!(
        eventually(5, || !Path::new(&format!("/proc/{dns_pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{dns_pid}/stat")).unwrap_or_default().contains(") Z")),
        "the DNS server outlived its last name"
    );
    // The port is free again for the next container.
    s.ok(&["run", "-d", "--name", "next", "-p", "127.0.0.1:18090:80", "busybox", "httpd", "-f", "-p", "80"]);
}

#[test]
fn fifty_containers_started_at_once_get_fifty_addresses() {
    let s = NetStore::new();
    s.ok(&["network", "create", "--subnet", "10.77.0.0/24", "many"]);
    let names: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let children: Vec<Child> = names
        .iter()
        .map(|n| {
            s.cmd(&["run", "-d", "--name", n, "--network", "many", "busybox", "sleep", "1000"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let mut ips: Vec<String> = names.iter().map(|n| s.ip_of(n)).collect();
    // Each container has the address the engine recorded, inside.
    let inside = s.ok(&["exec", "c7", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(inside.contains(&format!("inet {}/24", ips[7])), "{inside}");
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 50, "{ips:?}");
    assert!(ips.iter().all(|ip| ip.starts_with("10.77.0.") && ip != "10.77.0.1"), "{ips:?}");
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    s.ok(&args);
    let ipam = std::fs::read_to_string(s.net_dir("many").join("ipam.json")).unwrap();
    assert!(!ipam.contains("10.77.0.2\""), "{ipam}");
    assert!(eventually(20, || !s.links().contains("@if")), "veths left: {}", s.links());
}

#[test]
fn ip_mac_add_host_dns_flags() {
    let s = NetStore::new();
    s.ok(&["network", "create", "--subnet", "10.88.5.0/24", "--gateway", "10.88.5.254", "fixed"]);
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "fixed",
        "--ip",
        "10.88.5.42",
        "--mac-address",
        "02:11:22:33:44:55",
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "10.9.9.9",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:3",
        "busybox",
        "sh",
        "-c",
        "ip -o link show eth0; ip -o addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf",
    ]);
    assert!(out.contains("inet 10.88.5.42/24") && out.contains("link/ether 02:11:22:33:44:55"), "{out}");
    assert!(out.contains("default via 10.88.5.254"), "{out}");
    assert!(
        out.contains("10.1.2.3\tdb.local\n") && out.contains("10.88.5.254\tgw\n") && out.contains("10.88.5.42\t"),
        "{out}"
    );
    assert!(out.contains("nameserver 10.88.5.254\nnameserver 10.9.9.9\n"), "{out}");
    assert!(out.contains("search corp.example\n") && out.contains("options ndots:3\n"), "{out}");
    // The same --ip twice: the second is refused, nothing of it left.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "fixed",
        "--ip",
        "10.88.5.42",
        "busybox",
        "sleep",
        "100",
    ]);
    let err = s.fails(&[
        "run",
        "-d",
        "--name",
        "second",
        "--network",
        "fixed",
        "--ip",
        "10.88.5.42",
        "busybox",
        "sleep",
        "100",
    ]);
    assert!(err.contains("10.88.5.42"), "{err}");
    assert_eq!(s.inspect("second", "{{.State.Status}}"), "created");
    assert!(!std::fs::read_to_string(s.net_dir("fixed").join("ipam.json"))
        .unwrap()
        .contains(&s.inspect("second", "{{.Id}}")));
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let s = NetStore::new();
    s.ok(&["network", "create", "front"]);
    s.ok(&["network", "create", "back"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        "echo api > /a && exec httpd -f -p 80 -h /",
    ]);
    s.ok(&["network", "connect", "--alias", "backend-api", "back", "api"]);
    let ifs = s.ok(&["exec", "api", "ls", "/sys/class/net"]);
    assert_eq!(ifs, "eth0\neth1\nlo\n");
    let back_ip = s.endpoint("api", "back")["IPAddress"].as_str().unwrap().to_string();
    assert!(!back_ip.is_empty());
    let hosts = s.ok(&["exec", "api", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&back_ip), "{hosts}");
    let got = s.ok(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://backend-api/a && break; sleep 0.2; done",
    ]);
    assert_eq!(got, "api\n");
    let err = s.fails(&["network", "rm", "back"]);
    assert!(err.contains("has active endpoints"), "{err}");
    s.ok(&["network", "disconnect", "back", "api"]);
    assert_eq!(s.ok(&["exec", "api", "ls", "/sys/class/net"]), "eth0\nlo\n");
    let o = s.run(&["run", "--rm", "--network", "back", "busybox", "nslookup", "backend-api"]);
    assert!(!o.status.success(), "{}", text(&o.stdout));
    s.ok(&["network", "rm", "back"]);
    let ls = s.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls, "bridge\nfront\nhost\nnone\n");
    // `inspect` finds networks too; the running container is listed in it.
    assert_eq!(s.inspect("front", "{{.Name}} {{.Driver}} {{.Scope}}"), "front bridge local");
    let containers = s.ok(&["network", "inspect", "-f", "{{json .Containers}}", "front"]);
    assert!(containers.contains("\"Name\":\"api\"") && containers.contains(&s.ip_of("api")), "{containers}");
    // `system prune` removes the networks no container refers to, not the others.
    s.ok(&["network", "create", "unused"]);
    let out = s.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Networks:\nunused\n"), "{out}");
    assert_eq!(s.ok(&["network", "ls", "--format", "{{.Name}}"]), "bridge\nfront\nhost\nnone\n");
}

#[test]
fn ipv6_network() {
    let s = NetStore::new();
    s.ok(&["network", "create", "--ipv6", "--subnet", "fd00:77::/64", "six"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "s6",
        "--network",
        "six",
        "busybox",
        "sh",
        "-c",
        "echo v6 > /x && exec httpd -f -p 80 -h /",
    ]);
    let v6 = s.endpoint("s6", "six")["GlobalIPv6Address"].as_str().unwrap().to_string();
    assert!(v6.starts_with("fd00:77::"), "{v6}");
    let out = s.ok(&["run", "--rm", "--network", "six", "busybox", "sh", "-c", "nslookup -type=AAAA s6; for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- \"http://[$(nslookup -type=AAAA s6 | awk '/Address: fd00/{print $2}')]/x\" && break; sleep 0.2; done"]);
    assert!(out.contains(&v6) && out.contains("v6\n"), "{out}");
}

#[test]
fn bad_input_is_refused_and_nothing_is_half_made() {
    let s = NetStore::new();
    // A subnet that overlaps a route of the host (here: of the test's namespace).
    s.ns.sh("ip", &["link", "add", "sktesta", "type", "veth", "peer", "name", "sktestb"]);
    s.ns.sh("ip", &["addr", "add", "10.66.1.1/24", "dev", "sktesta"]);
    s.ns.sh("ip", &["link", "set", "sktesta", "up"]);
    let err = s.fails(&["network", "create", "--subnet", "10.66.0.0/16", "clash"]);
    assert!(err.contains("10.66") && err.contains("overlap"), "{err}");
    for (args, want) in [
        (vec!["network", "create", "--subnet", "10.0.0.0/33", "x"], "10.0.0.0/33"),
        (vec!["network", "create", "--subnet", "banana", "x"], "banana"),
        (vec!["network", "create", "--subnet", "10.5.0.0/24", "--gateway", "10.6.0.1", "x"], "10.6.0.1"),
        (vec!["network", "create", "bad/name"], "bad/name"),
    ] {
        let err = s.fails(&args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let ls = s.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls, "bridge\nhost\nnone\n");
    // Bad run flags: refused before anything is created.
    s.ok(&["network", "create", "--subnet", "10.70.0.0/24", "good"]);
    for (args, want) in [
        (vec!["run", "--network", "nope", "busybox", "true"], "network nope not found"),
        (vec!["run", "--network", "good", "--ip", "10.71.0.5", "busybox", "true"], "not in the subnet"),
        (vec!["run", "--ip", "172.17.0.9", "busybox", "true"], "user defined networks"),
        (vec!["run", "-p", "70000:80", "busybox", "true"], "invalid port"),
        (vec!["run", "-p", "80/sctp", "busybox", "true"], "invalid proto"),
        (vec!["run", "--mac-address", "zz:zz", "busybox", "true"], "invalid MAC address"),
        (vec!["run", "--add-host", "nohost", "busybox", "true"], "--add-host"),
        (vec!["run", "--dns", "not-an-ip", "busybox", "true"], "not-an-ip"),
        (vec!["run", "--network", "none", "-p", "80:80", "busybox", "true"], "conflicting options"),
    ] {
        let err = s.fails(&args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(s.ok(&["ps", "-aq"]).is_empty());
    // A taken port: Docker's message; the second container does not run and holds nothing.
    s.ok(&["run", "-d", "--name", "one", "-p", "18100:80", "busybox", "httpd", "-f", "-p", "80"]);
    let err = s.fails(&["run", "-d", "--name", "two", "-p", "18100:80", "busybox", "httpd", "-f", "-p", "80"]);
    assert!(err.contains("0.0.0.0:18100 failed: port is already allocated"), "{err}");
    assert_eq!(s.inspect("two", "{{.State.Status}}"), "created");
    let two = s.inspect("two", "{{.Id}}");
    assert!(!s.links().contains(&format!("sk{}", &two[..10])));
    assert!(!s.ruleset().contains(&two));
    // A port a host program holds.
    let holder = s.ns.run(|| std::net::TcpListener::bind("127.0.0.1:18101").unwrap());
    let err = s.fails(&["run", "-d", "--name", "three", "-p", "127.0.0.1:18101:80", "busybox", "true"]);
    assert!(err.contains("port is already allocated"), "{err}");
    drop(holder);
    // rm of a network in use: refused, the network and its container untouched.
    s.ok(&["run", "-d", "--name", "user", "--network", "good", "busybox", "sleep", "100"]);
    let err = s.fails(&["network", "rm", "good"]);
    assert!(err.contains("active endpoints"), "{err}");
    assert_eq!(s.inspect("user", "{{.State.Status}}"), "running");
    assert!(s.ok(&["exec", "user", "ip", "-o", "addr"]).contains("10.70.0."));
    let err = s.fails(&["network", "rm", "bridge"]);
    assert!(err.contains("pre-defined"), "{err}");
}

#[test]
fn addresses_a_crash_left_taken_are_recovered_when_the_network_runs_out() {
    let s = NetStore::new();
    // A /29: the gateway .1 and five addresses .2-.6 for containers.
    s.ok(&["network", "create", "--subnet", "10.90.0.0/29", "tiny"]);
    let ipam = s.net_dir("tiny").join("ipam.json");
    // A start that crashed after taking .2, before recording it anywhere.
    let stale = "f".repeat(64);
    std::fs::write(&ipam, format!("{{\"Gateways\":[\"10.90.0.1\"],\"Addresses\":{{\"10.90.0.2\":\"{stale}\"}}}}")).unwrap();
    for i in 0..5 {
        s.ok(&["run", "-d", "--name", &format!("t{i}"), "--network", "tiny", "busybox", "sleep", "100"]);
    }
    let mut ips: Vec<String> = (0..5).map(|i| s.ip_of(&format!("t{i}"))).collect();
    ips.sort();
    assert_eq!(ips, ["10.90.0.2", "10.90.0.3", "10.90.0.4", "10.90.0.5", "10.90.0.6"]);
    assert!(!std::fs::read_to_string(&ipam).unwrap().contains(&stale));
    // Really full now: a clear error, the container not started, nothing taken.
    let err = s.fails(&["run", "-d", "--name", "t5", "--network", "tiny", "busybox", "sleep", "100"]);
    assert!(err.contains("no available IPv4 addresses on network tiny"), "{err}");
    assert_eq!(s.inspect("t5", "{{.State.Status}}"), "created");
    // One stops: its address is free for the next.
    s.ok(&["stop", "-t", "0", "t3"]);
    s.ok(&["start", "t5"]);
    assert_eq!(
        s.ok(&["exec", "t5", "cat", "/etc/hosts"]).lines().last().unwrap().split('\t').next().unwrap(),
        s.ip_of("t5")
    );
}
