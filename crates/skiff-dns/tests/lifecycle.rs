//! Starting, sharing and stopping a network's server. Every test runs in a network namespace of
//! its own.

mod common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

#[test]
fn add_while_running_remove_and_exit_after_the_last() {
    in_netns(true, || {
        let net = Net::new();
        let s = server_v4();
        net.add(&entry("c1", &["one"], &["192.0.2.1"])).unwrap();
        let pid = net.track().expect("a live server");
        assert!(net.dir().join("server.pid").exists());
        // Detached: its own session, stdio on /dev/null, no fd of ours (the lock, the report
        // socket), just its 4 sockets (UDP+TCP on 2 addresses) and its own files.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let sid: i32 = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(3).unwrap().parse().unwrap();
        assert_ne!(sid as u32, std::process::id());
        // (The report socket is closed right after the report, so look until it is gone.)
        let fds = |pid: i32| -> Vec<(i32, String)> {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .flatten()
                .map(|e| {
                    (
                        e.file_name().to_str().unwrap().parse().unwrap(),
                        std::fs::read_link(e.path()).unwrap().to_string_lossy().into_owned(),
                    )
                })
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut open = fds(pid);
        while open.iter().filter(|(_, t)| t.starts_with("socket:")).count() != 4 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            open = fds(pid);
        }
        assert_eq!(open.iter().filter(|(_, t)| t.starts_with("socket:")).count(), 4, "{open:?}");
        for (fd, target) in &open {
            if *fd <= 2 {
                assert_eq!(target, "/dev/null", "fd {fd}");
            }
            assert!(!target.ends_with("/lock"), "{open:?}");
        }
        // Added while it runs: answered right after add returns.
        net.add(&entry("c2", &["two"], &["192.0.2.2"])).unwrap();
        assert_answers(&query(s, "two", RecordType::A), &["192.0.2.2"]);
        assert_eq!(net.track(), Some(pid), "the same server");
        // Replacing an entry (same container id) changes its records.
        net.add(&entry("c2", &["two", "deux"], &["192.0.2.22"])).unwrap();
        assert_answers(&query(s, "deux", RecordType::A), &["192.0.2.22"]);
        assert_answers(&query(s, "two", RecordType::A), &["192.0.2.22"]);
        assert_eq!(skiff_dns::entries(&net.dir()).unwrap().len(), 2);
        // Removed: stops resolving at once, under our domain NXDOMAIN.
        net.remove("c2");
        assert_eq!(query(s, "two.dns.skiff", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
        net.remove("c2"); // idempotent
        assert!(common::alive(pid), "one entry is left");
        // The last one removed: the server exits by itself and removes its pid file.
        net.remove("c1");
        assert!(net.wait_exit(pid, Duration::from_secs(3)), "server {pid} still running");
        assert!(!net.dir().join("server.pid").exists());
        assert_eq!(skiff_dns::server_pid(&net.dir()), None);
        assert!(
            try_query(s, "one", RecordType::A, Duration::from_millis(300)).is_none(),
            "nothing listens any more"
        );
        // An add after that starts a new one.
        net.add(&entry("c3", &["three"], &["192.0.2.3"])).unwrap();
        let pid2 = net.track().expect("a new server");
        assert_ne!(pid, pid2);
        assert_answers(&query(s, "three", RecordType::A), &["192.0.2.3"]);
        // remove on a dir that does not exist is fine.
        skiff_dns::remove(&net.tmp.path().join("nope"), "c1").unwrap();
    });
}

#[test]
fn concurrent_adds_leave_one_server_and_all_entries() {
    in_netns(true, || {
        let net = Arc::new(Net::new());
        let n = 8;
        let barrier = Arc::new(Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let (net, barrier) = (net.clone(), barrier.clone());
                // Threads spawned here share the netns of this thread.
                std::thread::spawn(move || {
                    barrier.wait();
                    net.add(&entry(&format!("id{i}"), &[&format!("c{i}")], &[&format!("192.0.2.{}", 100 + i)]))
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert_eq!(skiff_dns::entries(&net.dir()).unwrap().len(), n);
        for i in 0..n {
            assert_answers(&query(server_v4(), &format!("c{i}"), RecordType::A), &[&format!("192.0.2.{}", 100 + i)]);
        }
        let dir = net.dir();
        let servers = server_processes(&dir);
        assert_eq!(servers.len(), 1, "{servers:?}");
        assert_eq!(Some(servers[0]), skiff_dns::server_pid(&dir));
    });
}

/// Processes running skiff-dns for `dir`, found by their command lines.
fn server_processes(dir: &Path) -> Vec<i32> {
    let want = dir.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmd.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.first().is_some_and(|a| a.ends_with("skiff-dns")) && args.contains(&want) && common::alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn add_racing_with_the_exit_always_resolves() {
    in_netns(true, || {
        let net = Net::new();
        let s = server_v4();
        net.add(&entry("a", &["a0"], &["192.0.2.50"])).unwrap();
        // Remove the last entry, then add one back after a delay that walks across the
        // server's 500 ms check: the add meets a server that stays, one that is exiting, or none.
        for (i, delay_ms) in [0u64, 120, 240, 360, 480, 510, 600, 700].into_iter().enumerate() {
            net.remove("a");
            std::thread::sleep(Duration::from_millis(delay_ms));
            let ip = format!("192.0.2.{}", 51 + i);
            net.add(&entry("a", &[&format!("a{}", i + 1)], &[&ip])).unwrap();
            assert_answers(&query(s, &format!("a{}", i + 1), RecordType::A), &[&ip]);
            let dir = net.dir();
            assert_eq!(server_processes(&dir).len(), 1, "round {i}");
        }
    });
}

#[test]
fn port_53_taken_is_a_clear_error() {
    in_netns(true, || {
        let net = Net::new();
        let _squatter = std::net::UdpSocket::bind("127.0.0.1:53").unwrap();
        let e = net.add(&entry("c1", &["one"], &["192.0.2.1"])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("127.0.0.1:53/udp") && msg.contains("in use"), "{msg}");
        // Nothing half done: no entry, no server.
        assert!(skiff_dns::entries(&net.dir()).unwrap().is_empty());
        assert_eq!(skiff_dns::server_pid(&net.dir()), None);
        assert!(std::fs::read_to_string(net.dir().join("server.log")).unwrap().contains("in use"));
    });
}

#[test]
fn binds_before_the_address_exists() {
    // lo is down: 127.0.0.1 and ::1 are not configured yet, as a gateway address in DAD is not.
    in_netns(false, || {
        let net = Net::new();
        net.add(&entry("c1", &["one"], &["192.0.2.1"])).unwrap();
        assert!(net.track().is_some());
        bring_lo_up();
        assert_answers(&query(server_v4(), "one", RecordType::A), &["192.0.2.1"]);
    });
}

#[test]
fn stale_pid_file_and_a_second_server() {
    in_netns(true, || {
        let net = Net::new();
        std::fs::create_dir_all(net.dir()).unwrap();
        // Our own pid with a wrong start time: a pid reused by another process, not a server.
        std::fs::write(net.dir().join("server.pid"), format!("{} 1\n", std::process::id())).unwrap();
        net.add(&entry("c1", &["one"], &["192.0.2.1"])).unwrap();
        let pid = net.track().expect("a server");
        assert_ne!(pid as u32, std::process::id());
        assert_answers(&query(server_v4(), "one", RecordType::A), &["192.0.2.1"]);
        // Started by hand while one runs: it exits at once and quietly, the first one stays.
        let t = Instant::now();
        let out = std::process::Command::new(EXE)
            .arg("--dir")
            .arg(net.dir())
            .args(["--listen", "127.0.0.1"])
            .output()
            .unwrap();
        assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(skiff_dns::server_pid(&net.dir()), Some(pid));
        assert_answers(&query(server_v4(), "one", RecordType::A), &["192.0.2.1"]);
    });
}

#[test]
fn bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dns");
    let exe = Path::new(EXE);
    let l = listen();
    assert!(skiff_dns::add(&dir, &l, exe, &entry("c", &["bad name"], &["192.0.2.1"])).is_err());
    assert!(skiff_dns::add(&dir, &l, exe, &entry("", &["ok"], &["192.0.2.1"])).is_err());
    assert!(skiff_dns::add(&dir, &[], exe, &entry("c", &["ok"], &["192.0.2.1"])).is_err());
    let e = skiff_dns::add(&dir, &l, Path::new("/nonexistent/skiff-dns"), &entry("c", &["ok"], &["192.0.2.1"])).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/skiff-dns"), "{e}");
    assert!(skiff_dns::entries(&dir).unwrap().is_empty());
}

/// Figures for the report, not a check: `SKIFF_DNS_EXE=target/release/skiff-dns cargo test -p
/// skiff-dns --test lifecycle measure -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure() {
    in_netns(true, || {
        let exe = std::env::var_os("SKIFF_DNS_EXE").map(std::path::PathBuf::from).unwrap_or_else(|| EXE.into());
        let net = Net::new();
        let l = listen();
        let mut cold = Vec::new();
        for round in 0..5 {
            let t = Instant::now();
            skiff_dns::add(&net.dir(), &l, &exe, &entry("cold", &["cold"], &["192.0.2.1"])).unwrap();
            cold.push(t.elapsed());
            let pid = net.track().unwrap();
            net.remove("cold");
            assert!(net.wait_exit(pid, Duration::from_secs(3)), "round {round}");
        }
        for i in 0..50 {
            skiff_dns::add(
                &net.dir(),
                &l,
                &exe,
                &entry(&format!("id{i}"), &[&format!("c{i}"), &format!("{i:012x}")], &["192.0.2.1", "2001:db8::1"]),
            )
            .unwrap();
        }
        let pid = net.track().unwrap();
        let mut warm = Vec::new();
        for i in 0..200 {
            let t = Instant::now();
            skiff_dns::add(
                &net.dir(),
                &l,
                &exe,
                &entry(&format!("id{}", i % 50), &[&format!("c{}", i % 50)], &["192.0.2.2"]),
            )
            .unwrap();
            warm.push(t.elapsed());
        }
        let mut q = Vec::new();
        for i in 0..200 {
            let t = Instant::now();
            query(server_v4(), &format!("c{}", i % 50), RecordType::A);
            q.push(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(600));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let rss: Vec<&str> = status.lines().filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM")).collect();
        let stats = |v: &mut Vec<Duration>| {
            v.sort();
            format!("median {:?}, p95 {:?}, max {:?}", v[v.len() / 2], v[v.len() * 95 / 100], v[v.len() - 1])
        };
        println!("exe: {} ({} bytes)", exe.display(), std::fs::metadata(&exe).unwrap().len());
        println!("cold start (add, no server, until ready): {}", stats(&mut cold));
        println!("add with a running server (50 entries): {}", stats(&mut warm));
        println!("query round trip (UDP, ours): {}", stats(&mut q));
        println!("server with 50 entries: {rss:?}");
    });
}
