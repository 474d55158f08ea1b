//! runtime-spec 1.2/1.3 fields runc 1.2+ and crun apply (issue 13, item 4), each checked on
//! what the container did: `process.scheduler`, `process.ioPriority`,
//! `process.execCPUAffinity`, `linux.memoryPolicy`, `linux.netDevices`, and `linux.intelRdt`
//! on a host without resctrl. Invalid values fail `create` naming the field and leave nothing.
//!
//! The installed runc (1.1.5) predates these fields and ignores them; where that matters the
//! tests say so (see `runc_1_1_ignores_what_skiff_applies`).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;

const RUNC: &str = "/usr/sbin/runc";

/// The `Name:\tvalue` line of /proc/PID/status.
fn status_field(pid: i32, name: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    field_of(&text, name)
}

fn field_of(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// The value of `key` in /proc/PID/sched text ("policy    :    3").
fn sched_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// The nice value of a process (field 19 of /proc/PID/stat).
fn nice_of(stat: &str) -> i32 {
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    rest.split_whitespace().nth(16).expect("nice").parse().expect("number")
}

fn ioprio_of(pid: i32) -> i64 {
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, pid) takes two integers and returns one.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
    assert!(r >= 0, "ioprio_get({pid}): {}", std::io::Error::last_os_error());
    r
}

/// create must fail with a message holding every one of `want`, and leave nothing.
fn create_fails(cfg: &serde_json::Value, tag: &str, want: &[&str]) {
    let rt = Runtime::new();
    let b = Bundle::new(cfg);
    let id = unique_id(tag);
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    for w in want {
        assert!(err.contains(w), "{tag}: {w:?} not in: {err}");
    }
    assert_no_leftovers(&rt, &id);
}

#[test]
fn scheduler_and_io_priority_apply_to_the_init_and_to_exec() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = base_config(&["sleep", "30"]);
    cfg["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    cfg["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    let b = Bundle::new(&cfg);
    let id = unique_id("sched");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.init_pid(&id).expect("init pid");
    let sched = std::fs::read_to_string(format!("/proc/{pid}/sched")).expect("sched");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let ioprio = ioprio_of(pid);
    // exec'd processes start from the container's process, as in runc: same settings.
    let inside = rt.run(&["exec", &id, "sh", "-c", "cat /proc/self/sched; echo; cat /proc/self/stat"]);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
    assert_eq!(sched_field(&sched, "policy"), "3", "SCHED_BATCH: {sched}");
    assert_eq!(nice_of(&stat), 7);
    assert_eq!(ioprio, (2 << 13) | 6, "IOPRIO_CLASS_BE, priority 6");
    let out = String::from_utf8_lossy(&inside.stdout);
    assert!(inside.status.success(), "{}", String::from_utf8_lossy(&inside.stderr));
    assert_eq!(sched_field(&out, "policy"), "3", "{out}");
    assert_eq!(nice_of(out.lines().last().expect("stat line")), 7, "{out}");
}

#[test]
fn an_exec_process_of_its_own_gets_its_own_scheduler() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["sleep", "30"]));
    let id = unique_id("schedx");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let proc_file = b.path().join("exec.json");
    let process = json!({
        "args": ["sh", "-c", "cat /proc/self/stat"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin"], "scheduler": {"policy": "SCHED_IDLE"}, "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    });
    std::fs::write(&proc_file, process.to_string()).expect("write process");
    let out = rt.ok(&["exec", "--process", proc_file.to_str().unwrap(), &id]);
    let bad = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}});
    std::fs::write(&proc_file, bad.to_string()).expect("write process");
    let err = rt.fails(&["exec", "--process", proc_file.to_str().unwrap(), &id]);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
    // SCHED_IDLE shows as nice 0 with policy 5; the stat line has the policy as field 41.
    let rest = &out[out.rfind(')').expect("comm") + 2..];
    assert_eq!(rest.split_whitespace().nth(38), Some("5"), "policy field of {out}");
    assert!(err.contains("process.ioPriority.priority") && err.contains("8"), "{err}");
}

#[test]
fn exec_cpu_affinity_is_for_exec_and_the_init_gets_every_cpu() {
    if skip() {
        return;
    }
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").expect("cpus");
    if online.trim() != "0-1" && !online.trim().starts_with("0-") {
        eprintln!("skipping: needs at least CPUs 0 and 1 online (have {online})");
        return;
    }
    let all = status_field(std::process::id() as i32, "Cpus_allowed_list");
    // The runtime runs on CPU 0 only (this thread's affinity, inherited by the runtime): the
    // init does not inherit that, as with runc 1.2+.
    let mut zero = nix::sched::CpuSet::new();
    zero.set(0).expect("cpu 0");
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &zero).expect("pin this thread");
    let rt = Runtime::new();
    let mut cfg = base_config(&["sleep", "30"]);
    cfg["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    let b = Bundle::new(&cfg);
    let id = unique_id("affinity");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.init_pid(&id).expect("init pid");
    let init = status_field(pid, "Cpus_allowed_list");
    let exec = rt.ok(&["exec", &id, "grep", "Cpus_allowed_list", "/proc/self/status"]);
    let proc_file = b.path().join("exec.json");
    let process = json!({"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"], "execCPUAffinity": {"final": "0"}});
    std::fs::write(&proc_file, process.to_string()).expect("write process");
    let own = rt.ok(&["exec", "--process", proc_file.to_str().unwrap(), &id]);
    let plain = json!({"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]});
    std::fs::write(&proc_file, plain.to_string()).expect("write process");
    let reset = rt.ok(&["exec", "--process", proc_file.to_str().unwrap(), &id]);
    rt.ok(&["delete", "--force", &id]);
    let mut every = nix::sched::CpuSet::new();
    for c in 0..nix::sched::CpuSet::count() {
        let _ = every.set(c);
    }
    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &every);
    assert_no_leftovers(&rt, &id);
    assert_eq!(init, all, "the init's affinity is reset, not the runtime's CPU 0");
    assert_eq!(field_of(&exec, "Cpus_allowed_list"), "1", "execCPUAffinity.final of the config");
    assert_eq!(field_of(&own, "Cpus_allowed_list"), "0", "execCPUAffinity.final of --process");
    assert_eq!(field_of(&reset, "Cpus_allowed_list"), all, "no final: every CPU of the cpuset");
}

#[test]
fn memory_policy_binds_the_init_to_node_0() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = base_config(&[
        "sh",
        "-c",
        "grep -m1 heap /proc/self/numa_maps; grep -m1 stack /proc/1/numa_maps; grep Mems_allowed_list /proc/self/status",
    ]);
    cfg["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    let b = Bundle::new(&cfg);
    let id = unique_id("mpol");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_no_leftovers(&rt, &id);
    // numa_maps shows the policy each mapping is allocated with: the process's own.
    let first = out.lines().next().unwrap_or_default();
    assert!(first.contains(" bind:0 ") || first.contains(" bind=static:0 "), "{out}");
}

#[test]
fn invalid_values_fail_create_naming_the_field() {
    if skip() {
        return;
    }
    let with = |path: &[&str], v: serde_json::Value| {
        let mut cfg = base_config(&["true"]);
        cfg[path[0]][path[1]] = v;
        cfg
    };
    create_fails(
        &with(&["process", "ioPriority"], json!({"class": "IOPRIO_CLASS_NOPE", "priority": 1})),
        "ioclass",
        &["process.ioPriority.class", "IOPRIO_CLASS_NOPE"],
    );
    create_fails(
        &with(&["process", "ioPriority"], json!({"class": "IOPRIO_CLASS_RT", "priority": 9})),
        "ioprio",
        &["process.ioPriority.priority", "9", "0-7"],
    );
    create_fails(
        &with(&["process", "scheduler"], json!({"policy": "SCHED_NOPE"})),
        "policy",
        &["process.scheduler.policy", "SCHED_NOPE"],
    );
    create_fails(
        &with(&["process", "scheduler"], json!({"policy": "SCHED_FIFO", "priority": 100})),
        "rtprio",
        &["process.scheduler.priority", "1 to 99"],
    );
    create_fails(
        &with(&["process", "scheduler"], json!({"policy": "SCHED_OTHER", "nice": 20})),
        "nice",
        &["process.scheduler.nice", "20"],
    );
    create_fails(
        &with(&["process", "execCPUAffinity"], json!({"final": "0-x"})),
        "cpus",
        &["process.execCPUAffinity.final"],
    );
    create_fails(
        &with(&["process", "execCPUAffinity"], json!({"initial": "3-1"})),
        "cpus2",
        &["process.execCPUAffinity.initial", "backwards"],
    );
    create_fails(
        &with(&["linux", "memoryPolicy"], json!({"mode": "MPOL_NOPE", "nodes": "0"})),
        "mode",
        &["linux.memoryPolicy.mode", "MPOL_NOPE"],
    );
    create_fails(
        &with(&["linux", "memoryPolicy"], json!({"mode": "MPOL_BIND", "nodes": "7"})),
        "node",
        &["linux.memoryPolicy.nodes", "node 7 does not exist"],
    );
    create_fails(
        &with(&["linux", "memoryPolicy"], json!({"mode": "MPOL_BIND"})),
        "nonodes",
        &["linux.memoryPolicy.nodes", "at least one node"],
    );
    create_fails(
        &with(&["linux", "memoryPolicy"], json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]})),
        "mflag",
        &["linux.memoryPolicy.flags", "MPOL_F_NOPE"],
    );
}

#[test]
fn intel_rdt_without_resctrl_is_a_clear_error_that_leaves_nothing() {
    if skip() {
        return;
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    if mi.lines().any(|l| l.split(" - ").nth(1).is_some_and(|t| t.starts_with("resctrl "))) {
        eprintln!("skipping: this host has resctrl mounted");
        return;
    }
    let mut cfg = base_config(&["true"]);
    cfg["linux"]["intelRdt"] = json!({"l3CacheSchema": "L3:0=f"});
    create_fails(&cfg, "rdt", &["linux.intelRdt", "resctrl is not mounted at /sys/fs/resctrl"]);
    cfg["linux"]["intelRdt"] = json!({"closID": "../x"});
    create_fails(&cfg, "rdtclos", &["linux.intelRdt.closID", "../x"]);
}

/// A virtual interface on the host to move (one end of a veth pair: this kernel may lack the
/// dummy driver), deleted with its peer on drop if still there.
struct Dummy(String, String);

impl Dummy {
    fn new() -> Dummy {
        let n = unique_id("");
        let mut parts = n.rsplit('-');
        let (count, pid) = (parts.next().unwrap_or("0"), parts.next().unwrap_or("0"));
        let name: String = format!("skd{pid}x{count}").chars().take(13).collect();
        let peer = format!("{name}p");
        ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        Dummy(name, peer)
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        for name in [&self.1, &self.0] {
            if host_has_link(name) {
                let _ = Command::new("ip").args(["link", "del", name]).output();
            }
        }
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn host_has_link(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn net_devices_move_into_the_container_renamed_and_up() {
    if skip() {
        return;
    }
    let dev = Dummy::new();
    // A permanent global address goes along (runc 1.3); a link-scope one stays behind.
    ip(&["addr", "add", "198.51.100.7/24", "dev", &dev.0]);
    ip(&["addr", "add", "169.254.9.9/16", "scope", "link", "dev", &dev.0]);
    let rt = Runtime::new();
    let mut cfg = base_config(&["sh", "-c", "ip -o addr show dev ctr0 >&2; ls /sys/class/net; cat /sys/class/net/ctr0/flags"]);
    cfg["linux"]["netDevices"] = json!({ dev.0.clone(): {"name": "ctr0"} });
    let b = Bundle::new(&cfg);
    let id = unique_id("netdev");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_no_leftovers(&rt, &id);
    let names: Vec<&str> = out.lines().take_while(|l| !l.starts_with("0x")).collect();
    assert_eq!(names, ["ctr0", "lo"], "{out}");
    let flags = u32::from_str_radix(out.lines().last().unwrap_or_default().trim_start_matches("0x"), 16).expect("flags");
    assert_eq!(flags & 1, 1, "ctr0 is up (IFF_UP): {out}");
    assert!(err.contains("inet 198.51.100.7/24") && !err.contains("169.254.9.9"), "addresses: {err}");
    // As runc: a virtual device dies with the namespace the container made (a veth with its
    // peer). The kernel tears a namespace down in the background.
    for _ in 0..500 {
        if !host_has_link(&dev.1) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        !host_has_link(&dev.0) && !host_has_link(&dev.1) && !host_has_link("ctr0"),
        "the veth outlived the container's namespace"
    );
}

#[test]
fn net_devices_stay_in_a_namespace_the_container_joined() {
    if skip() {
        return;
    }
    let dev = Dummy::new();
    let ns = format!("skt-ns-{}", dev.0);
    ip(&["netns", "add", &ns]);
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
        }
    }
    let _ns = Netns(ns.clone());
    let rt = Runtime::new();
    let mut cfg = base_config(&["sleep", "30"]);
    cfg["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "network", "path": format!("/var/run/netns/{ns}")}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    cfg["linux"]["netDevices"] = json!({ dev.0.clone(): {} });
    let b = Bundle::new(&cfg);
    let id = unique_id("netdevns");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let inside = rt.ok(&["exec", &id, "ls", "/sys/class/net"]);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
    assert!(inside.lines().any(|l| l == dev.0), "{inside}");
    // The namespace's owner decides what becomes of it (runc's behaviour): it stays there.
    assert!(!host_has_link(&dev.0));
    let links = ip(&["-n", &ns, "link", "show", &dev.0]);
    assert!(links.contains(&dev.0), "{links}");
    ip(&["-n", &ns, "link", "del", &dev.0]);
}

#[test]
fn net_devices_that_cannot_be_moved_fail_create_naming_them() {
    if skip() {
        return;
    }
    let mut cfg = base_config(&["true"]);
    cfg["linux"]["netDevices"] = json!({"skt-nosuch0": {}});
    create_fails(&cfg, "nodev", &["linux.netDevices.skt-nosuch0", "the host has no network device skt-nosuch0"]);
    let dev = Dummy::new();
    cfg["linux"]["netDevices"] = json!({ dev.0.clone(): {"name": "bad/name"} });
    create_fails(&cfg, "badname", &[&format!("linux.netDevices.{}.name", dev.0), "bad/name"]);
    cfg["linux"]["netDevices"] = json!({ dev.0.clone(): {} });
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]);
    create_fails(&cfg, "hostns", &["linux.netDevices", "network namespace of the container's own"]);
    assert!(host_has_link(&dev.0), "a refused create moved the device");
}

/// runc 1.1.5 (installed) knows none of these fields and runs the container without them;
/// skiff applies them (runc 1.2+/crun behaviour). Checked on the same bundle.
#[test]
fn runc_1_1_ignores_what_skiff_applies() {
    if skip() || !Path::new(RUNC).exists() {
        return;
    }
    let mut cfg = base_config(&["sh", "-c", "cat /proc/self/stat"]);
    cfg["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    let b = Bundle::new(&cfg);
    let policy = |out: &str| out[out.rfind(')').expect("comm") + 2..].split_whitespace().nth(38).map(str::to_string);
    let rt = Runtime::new();
    let id = unique_id("vsrunc");
    let (code, ours, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_no_leftovers(&rt, &id);
    let root = tempfile::Builder::new().prefix("skt-runc").tempdir().expect("tempdir");
    let out = Command::new(RUNC)
        .arg("--root")
        .arg(root.path())
        .args(["run", "--bundle", b.path().to_str().unwrap(), &id])
        .output()
        .expect("run runc");
    assert!(out.status.success(), "runc: {}", String::from_utf8_lossy(&out.stderr));
    let theirs = String::from_utf8_lossy(&out.stdout);
    assert_eq!(policy(&ours).as_deref(), Some("3"), "skiff: SCHED_BATCH");
    assert_eq!(policy(&theirs).as_deref(), Some("0"), "runc 1.1.5: SCHED_OTHER, the field ignored");
}

#[test]
fn features_advertise_what_is_applied() {
    let rt = Runtime::new();
    let f: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).expect("features JSON");
    let linux = &f["linux"];
    assert_eq!(linux["netDevices"], json!({"enabled": true}));
    assert_eq!(linux["intelRdt"]["enabled"], json!(true));
    let modes = linux["memoryPolicy"]["modes"].as_array().expect("modes");
    assert!(
        modes.contains(&json!("MPOL_BIND")) && modes.contains(&json!("MPOL_WEIGHTED_INTERLEAVE")) && modes.len() == 7,
        "{modes:?}"
    );
    assert_eq!(linux["memoryPolicy"]["flags"].as_array().map(Vec::len), Some(3));
}
