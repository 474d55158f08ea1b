//! Stats, freezer and OOM against fake v1 / v2 / hybrid trees, and the freezer on this host's
//! cgroup2 mount (root only).

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

fn write(p: &Path, s: &str) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(p, s).unwrap();
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// mountinfo for v1 hierarchies (one controller each) and, optionally, a cgroup2 mount.
fn fake(root: &Path, v1: &[&str], v2: Option<&str>) -> Cgroups {
    let r = root.display();
    let mut mi = String::new();
    let mut cg = String::new();
    for (i, c) in v1.iter().enumerate() {
        fs::create_dir_all(root.join(c)).unwrap();
        mi.push_str(&format!("{} 1 0:{i} / {r}/{c} rw - cgroup cgroup rw,{c}\n", 40 + i));
        cg.push_str(&format!("{}:{c}:/\n", i + 1));
    }
    if let Some(u) = v2 {
        fs::create_dir_all(root.join(u)).unwrap();
        mi.push_str(&format!("99 1 0:99 / {r}/{u} rw - cgroup2 cgroup2 rw\n"));
        cg.push_str("0::/\n");
    }
    Cgroups::from_text(&mi, &cg).unwrap()
}

/// The container dir `c` in every hierarchy.
fn manager(cg: &Cgroups) -> Manager {
    let m = cg.resolve(Some("/c"), "c").unwrap();
    for p in &m.paths {
        fs::create_dir_all(p).unwrap();
    }
    m
}

fn dir<'a>(m: &'a Manager, suffix: &str) -> &'a PathBuf {
    m.paths.iter().find(|p| p.parent().is_some_and(|d| d.ends_with(suffix))).unwrap()
}

#[test]
fn stats_from_v1_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = fake(tmp.path(), &["cpu", "cpuacct", "memory", "pids", "blkio", "hugetlb", "freezer"], None);
    let m = manager(&cg);
    let acct = dir(&m, "cpuacct");
    write(&acct.join("cpuacct.usage"), "3000\n");
    write(&acct.join("cpuacct.usage_percpu"), "1000 2000 \n");
    write(&acct.join("cpuacct.usage_percpu_sys"), "100 200\n");
    write(&acct.join("cpuacct.usage_percpu_user"), "900 1800\n");
    write(&acct.join("cpuacct.stat"), "user 7\nsystem 2\n");
    write(&dir(&m, "cpu").join("cpu.stat"), "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\nnr_bursts 0\n");
    let mem = dir(&m, "memory");
    write(&mem.join("memory.usage_in_bytes"), "8192\n");
    write(&mem.join("memory.limit_in_bytes"), "9223372036854771712\n");
    write(&mem.join("memory.max_usage_in_bytes"), "16384\n");
    write(&mem.join("memory.failcnt"), "2\n");
    write(&mem.join("memory.memsw.usage_in_bytes"), "8192\n");
    write(&mem.join("memory.memsw.limit_in_bytes"), "1048576\n");
    write(&mem.join("memory.stat"), "cache 4096\nrss 4096\ntotal_cache 4096\n");
    write(&dir(&m, "pids").join("pids.current"), "3\n");
    write(&dir(&m, "pids").join("pids.max"), "max\n");
    write(&dir(&m, "blkio").join("blkio.throttle.io_service_bytes"), "8:0 Read 4096\n8:0 Write 512\nTotal 4608\n");
    write(&dir(&m, "blkio").join("blkio.throttle.io_serviced"), "8:0 Read 1\n8:0 Write 1\nTotal 2\n");
    let h = dir(&m, "hugetlb");
    write(&h.join("hugetlb.2MB.usage_in_bytes"), "2097152\n");
    write(&h.join("hugetlb.2MB.max_usage_in_bytes"), "4194304\n");
    write(&h.join("hugetlb.2MB.failcnt"), "1\n");
    write(&h.join("hugetlb.2MB.limit_in_bytes"), "0\n");

    let s = m.stats(&cg).unwrap();
    let tick = 1_000_000_000 / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as u64;
    assert_eq!(s.cpu.usage.total, 3000);
    assert_eq!(s.cpu.usage.percpu, vec![1000, 2000]);
    assert_eq!(s.cpu.usage.percpu_kernel, vec![100, 200]);
    assert_eq!(s.cpu.usage.percpu_user, vec![900, 1800]);
    assert_eq!((s.cpu.usage.user, s.cpu.usage.kernel), (7 * tick, 2 * tick));
    assert_eq!((s.cpu.throttling.periods, s.cpu.throttling.throttled_periods, s.cpu.throttling.throttled_time), (10, 4, 5000));
    assert_eq!(s.memory.usage, stats::MemoryEntry { limit: 9223372036854771712, usage: 8192, max: 16384, failcnt: 2 });
    assert_eq!(s.memory.swap, stats::MemoryEntry { limit: 1048576, usage: 8192, max: 0, failcnt: 0 });
    assert_eq!(s.memory.kernel, stats::MemoryEntry::default());
    assert_eq!(s.memory.cache, 4096);
    assert_eq!(s.memory.raw.get("rss"), Some(&4096));
    assert_eq!((s.pids.current, s.pids.limit), (3, 0));
    let b = &s.blkio.io_service_bytes_recursive;
    assert_eq!(b.len(), 2);
    assert_eq!((b[0].major, b[0].minor, b[0].op.as_str(), b[0].value), (8, 0, "Read", 4096));
    assert_eq!((b[1].op.as_str(), b[1].value), ("Write", 512));
    assert_eq!(s.blkio.io_serviced_recursive.len(), 2);
    assert_eq!(s.hugetlb.len(), 1);
    assert_eq!(s.hugetlb["2MB"], stats::Hugetlb { usage: 2097152, max: 4194304, failcnt: 1 });

    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["pids"], serde_json::json!({"current": 3}));
    assert_eq!(v["blkio"]["ioServiceBytesRecursive"][0], serde_json::json!({"major": 8, "op": "Read", "value": 4096}));
    assert_eq!(v["cpu"]["throttling"], serde_json::json!({"periods": 10, "throttledPeriods": 4, "throttledTime": 5000}));
}

#[test]
fn stats_from_v2_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = fake(tmp.path(), &[], Some("unified"));
    let m = manager(&cg);
    let d = &m.paths[0];
    write(&d.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 6\nnr_throttled 2\nthrottled_usec 40\n");
    write(&d.join("memory.current"), "10000\n");
    write(&d.join("memory.max"), "max\n");
    write(&d.join("memory.peak"), "20000\n");
    write(&d.join("memory.swap.current"), "100\n");
    write(&d.join("memory.swap.max"), "50000\n");
    write(&d.join("memory.stat"), "anon 6000\nfile 4000\n");
    write(&d.join("pids.current"), "2\n");
    write(&d.join("pids.max"), "64\n");
    write(&d.join("io.stat"), "8:16 rbytes=1024 wbytes=2048 rios=3 wios=4 dbytes=0 dios=0\n");
    write(&d.join("hugetlb.1GB.current"), "0\n");
    write(&d.join("hugetlb.1GB.events"), "max 5\n");
    write(&d.join("hugetlb.1GB.rsvd.current"), "0\n");

    let s = m.stats(&cg).unwrap();
    assert_eq!((s.cpu.usage.total, s.cpu.usage.user, s.cpu.usage.kernel), (1_500_000, 1_000_000, 500_000));
    assert!(s.cpu.usage.percpu.is_empty());
    assert_eq!((s.cpu.throttling.periods, s.cpu.throttling.throttled_periods, s.cpu.throttling.throttled_time), (6, 2, 40_000));
    assert_eq!(s.memory.usage, stats::MemoryEntry { limit: u64::MAX, usage: 10000, max: 20000, failcnt: 0 });
    // runc reports v2 swap like v1 memsw: swap + memory.
    assert_eq!((s.memory.swap.usage, s.memory.swap.limit), (10100, 50000u64.saturating_add(u64::MAX)));
    assert_eq!(s.memory.cache, 4000);
    assert_eq!((s.pids.current, s.pids.limit), (2, 64));
    let b = &s.blkio.io_service_bytes_recursive;
    assert_eq!(b.iter().map(|e| (e.major, e.minor, e.op.as_str(), e.value)).collect::<Vec<_>>(), vec![(8, 16, "Read", 1024), (8, 16, "Write", 2048)]);
    let n = &s.blkio.io_serviced_recursive;
    assert_eq!(n.iter().map(|e| (e.op.as_str(), e.value)).collect::<Vec<_>>(), vec![("Read", 3), ("Write", 4)]);
    assert_eq!(s.hugetlb.keys().collect::<Vec<_>>(), vec!["1GB"]);
    assert_eq!(s.hugetlb["1GB"], stats::Hugetlb { usage: 0, max: 0, failcnt: 5 });
}

#[test]
fn stats_hybrid_takes_v2_only_for_what_v1_lacks_and_missing_files_are_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = fake(tmp.path(), &["cpuacct", "memory", "pids"], Some("unified"));
    let m = manager(&cg);
    write(&dir(&m, "cpuacct").join("cpuacct.usage"), "77\n");
    let u = dir(&m, "unified");
    write(&u.join("cpu.stat"), "usage_usec 999\nuser_usec 1\nsystem_usec 1\n");
    write(&u.join("hugetlb.2MB.current"), "4096\n");
    let s = m.stats(&cg).unwrap();
    assert_eq!(s.cpu.usage.total, 77);
    assert_eq!(s.hugetlb["2MB"].usage, 4096);
    assert_eq!(s.memory.usage, stats::MemoryEntry::default());
    assert_eq!(s.pids, stats::Pids::default());
}

#[test]
fn stats_malformed_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = fake(tmp.path(), &["pids"], None);
    let m = manager(&cg);
    write(&m.paths[0].join("pids.current"), "lots\n");
    let e = m.stats(&cg).unwrap_err().to_string();
    assert!(e.contains("pids.current") && e.contains("lots"), "{e}");
}

#[test]
fn freeze_v1_writes_freezer_state() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = fake(tmp.path(), &["freezer", "memory"], Some("unified"));
    let m = manager(&cg);
    let fz = dir(&m, "freezer");
    write(&fz.join("freezer.state"), "THAWED\n");
    // The cgroup2 side is left alone in hybrid, and does not count for is_frozen.
    let u = dir(&m, "unified");
    write(&u.join("cgroup.freeze"), "0\n");
    write(&u.join("cgroup.events"), "populated 1\nfrozen 0\n");
    m.freeze().unwrap();
    assert_eq!(read(&fz.join("freezer.state")), "FROZEN");
    assert_eq!(read(&u.join("cgroup.freeze")), "0\n");
    assert!(is_frozen(&m.paths));
    m.thaw().unwrap();
    assert_eq!(read(&fz.join("freezer.state")), "THAWED");
    assert!(!is_frozen(&m.paths));
    write(&u.join("cgroup.freeze"), "1\n");
    assert!(!is_frozen(&m.paths), "hybrid: only the v1 freezer counts");
}

#[test]
fn freeze_v2_waits_for_cgroup_events() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = fake(tmp.path(), &[], Some("unified"));
    let m = manager(&cg);
    let d = m.paths[0].clone();
    write(&d.join("cgroup.freeze"), "0\n");
    write(&d.join("cgroup.events"), "populated 1\nfrozen 0\n");
    // Plays the kernel: reports frozen only once cgroup.freeze says 1.
    let kernel = {
        let d = d.clone();
        std::thread::spawn(move || {
            for _ in 0..500 {
                if fs::read_to_string(d.join("cgroup.freeze")).unwrap().trim() == "1" {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            false
        })
    };
    let t0 = std::time::Instant::now();
    m.freeze().unwrap();
    assert!(kernel.join().unwrap());
    assert!(t0.elapsed() >= std::time::Duration::from_millis(50), "freeze returned before cgroup.events said frozen");
    assert!(is_frozen(&m.paths));
    write(&d.join("cgroup.events"), "populated 1\nfrozen 0\n");
    m.thaw().unwrap();
    assert_eq!(read(&d.join("cgroup.freeze")), "0");
    assert!(!is_frozen(&m.paths));
}

#[test]
fn freeze_without_freezer_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = fake(tmp.path(), &["memory"], None);
    let m = manager(&cg);
    assert!(m.freeze().unwrap_err().to_string().contains("no freezer"));
}

// ---------------------------------------------------------------- this host's cgroup2 (root)

/// Field 14 (utime) of /proc/PID/stat.
fn utime(pid: u32) -> u64 {
    let s = read(Path::new(&format!("/proc/{pid}/stat")));
    let rest = &s[s.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(11).unwrap().parse().unwrap()
}

#[test]
fn real_v2_freeze_stops_a_busy_child() {
    let mount = Path::new("/sys/fs/cgroup/unified");
    if !nix::unistd::geteuid().is_root() || !mount.join("cgroup.procs").is_file() {
        eprintln!("skipped: needs root and a cgroup2 mount at {}", mount.display());
        return;
    }
    let dir = mount.join(format!("skiff-frz-test-{}", std::process::id()));
    fs::create_dir(&dir).unwrap();
    struct Guard(PathBuf, Option<std::process::Child>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = fs::write(self.0.join("cgroup.freeze"), "0");
            if let Some(mut c) = self.1.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            if let Err(e) = remove(std::slice::from_ref(&self.0)) {
                eprintln!("cleanup: {e}");
            }
        }
    }
    let mut g = Guard(dir.clone(), None);
    let child = std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap();
    let pid = child.id();
    g.1 = Some(child);
    let m = Manager { paths: vec![dir.clone()] };
    m.add(pid as i32).unwrap();
    let busy = |ms: u64| {
        let a = utime(pid);
        std::thread::sleep(std::time::Duration::from_millis(ms));
        utime(pid) - a
    };
    assert!(busy(300) > 0, "child not running");

    m.freeze().unwrap();
    assert!(read(&dir.join("cgroup.events")).contains("frozen 1"));
    assert!(is_frozen(&m.paths));
    assert_eq!(busy(300), 0, "child still ran while frozen");

    m.thaw().unwrap();
    assert!(read(&dir.join("cgroup.events")).contains("frozen 0"));
    assert!(!is_frozen(&m.paths));
    assert!(busy(300) > 0, "child did not run again after thaw");
    drop(g);
    assert!(!dir.exists());
}
