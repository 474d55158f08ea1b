//! cgroup namespace and `cgroup` mounts on this host's real (hybrid) layout: with a cgroup
//! namespace the container sees its own cgroup as `/`; a `cgroup` mount shows one read-only
//! directory per v1 hierarchy (and the cgroup2 mount as `unified`), holding the container's own
//! cgroup files.

mod common;

use common::*;
use serde_json::json;

fn with_cgroup_mount(script: &str, cgroupns: bool) -> serde_json::Value {
    let mut cfg = base_config(&["sh", "-c", script]);
    cfg["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
    ));
    if cgroupns {
        cfg["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "cgroup"}));
    }
    cfg
}

/// Paths of `/proc/self/cgroup` lines ("N:controllers:path"), keyed by controllers.
fn cgroup_paths(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctl, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((ctl.to_string(), path.to_string()))
        })
        .collect()
}

#[test]
fn cgroup_namespace_shows_own_cgroup_as_root() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&with_cgroup_mount("cat /proc/self/cgroup", true));
    let id = unique_id("cgns");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    let paths = cgroup_paths(&out);
    assert!(paths.iter().any(|(c, _)| c.contains("memory")), "{out}");
    for (ctl, path) in &paths {
        assert_eq!(path, "/", "hierarchy {ctl:?} is not rooted at the container's cgroup: {out}");
    }
    assert_no_leftovers(&rt, &id);
}

#[test]
fn without_cgroup_namespace_the_host_path_shows() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&with_cgroup_mount("cat /proc/self/cgroup", false));
    let id = unique_id("nocgns");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    let memory = cgroup_paths(&out).into_iter().find(|(c, _)| c == "memory").expect("memory line");
    assert_eq!(memory.1, format!("/skiff/{id}"), "{out}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn cgroup_mount_has_one_read_only_dir_per_hierarchy() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let script = "ls /sys/fs/cgroup; echo ==; ls /sys/fs/cgroup/memory/ | grep -c limit_in_bytes; \
                  cat /sys/fs/cgroup/pids/cgroup.procs | wc -l; \
                  echo 1 > /sys/fs/cgroup/pids/pids.max 2>/dev/null && echo WRITABLE; \
                  mkdir /sys/fs/cgroup/x 2>/dev/null && echo TMPFS-WRITABLE; echo end";
    let b = Bundle::new(&with_cgroup_mount(script, true));
    let id = unique_id("cgmnt");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    let (names, rest) = out.split_once("==").expect("marker");
    let names: Vec<&str> = names.split_whitespace().collect();
    for want in ["memory", "pids", "cpuset", "freezer", "devices", "blkio", "unified"] {
        assert!(names.contains(&want), "{want} missing from /sys/fs/cgroup: {names:?}");
    }
    // Combined hierarchies (cpu,cpuacct here) are reachable under each controller's name.
    assert!(names.contains(&"cpu") && names.contains(&"cpuacct"), "{names:?}");
    let rest: Vec<&str> = rest.split_whitespace().collect();
    assert!(rest[0].parse::<u32>().unwrap() >= 1, "memory files are not the container's cgroup: {out}");
    // Only the container's own processes are in its cgroup: sh and its pipeline.
    let procs: u32 = rest[1].parse().unwrap();
    assert!((1..=4).contains(&procs), "cgroup.procs lists {procs} processes: {out}");
    assert!(!out.contains("WRITABLE"), "cgroup mount is writable: {out}");
    assert!(out.trim_end().ends_with("end"), "{out}");
    assert_no_leftovers(&rt, &id);
}
