//! cgroup namespace and `cgroup` mounts on the host's real layout: with a cgroup namespace the
//! container sees its own cgroup as `/`; a `cgroup` mount shows, read-only, the container's own
//! cgroup: on v1 and hybrid one directory per v1 hierarchy (and on hybrid the cgroup2 mount as
//! `unified`), on pure v2 the container's cgroup2 directory itself.

mod common;

use common::cgroups::{CgroupLayout, Kind};
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
    if CgroupLayout::detect().is_v2() {
        // The single unified line.
        assert_eq!(paths, [(String::new(), "/".to_string())], "{out}");
    } else {
        assert!(paths.iter().any(|(c, _)| c.contains("memory")), "{out}");
    }
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
    // The memory hierarchy's line on v1 and hybrid, the `0::` one on pure v2.
    let ctl = if CgroupLayout::detect().is_v2() { "" } else { "memory" };
    let memory = cgroup_paths(&out).into_iter().find(|(c, _)| c == ctl).expect("memory line");
    assert_eq!(memory.1, format!("/skiff/{id}"), "{out}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn cgroup_mount_has_one_read_only_dir_per_hierarchy() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let l = CgroupLayout::detect();
    // v1 and hybrid: a directory per hierarchy; pure v2: the cgroup2 directory at the top.
    let (memory, pids) = if l.is_v2() {
        ("/sys/fs/cgroup", "/sys/fs/cgroup")
    } else {
        ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids")
    };
    let script = format!(
        "ls /sys/fs/cgroup; echo ==; ls {memory}/ | grep -c -e limit_in_bytes -e '^memory.max$'; \
         cat {pids}/cgroup.procs | wc -l; \
         echo 1 > {pids}/pids.max 2>/dev/null && echo WRITABLE; \
         mkdir /sys/fs/cgroup/x 2>/dev/null && echo TMPFS-WRITABLE; echo end"
    );
    let b = Bundle::new(&with_cgroup_mount(&script, true));
    let id = unique_id("cgmnt");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    let (names, rest) = out.split_once("==").expect("marker");
    let names: Vec<&str> = names.split_whitespace().collect();
    let want: &[&str] = match l.kind {
        Kind::V2 => &["cgroup.procs", "cgroup.freeze", "memory.max", "pids.max", "cpu.max", "io.max"],
        Kind::V1 => &["memory", "pids", "cpuset", "freezer", "devices", "blkio", "cpu", "cpuacct"],
        Kind::Hybrid => &["memory", "pids", "cpuset", "freezer", "devices", "blkio", "cpu", "cpuacct", "unified"],
    };
    for want in want {
        assert!(names.contains(want), "{want} missing from /sys/fs/cgroup: {names:?}");
    }
    // Pure v1 has no cgroup2 mount to show.
    assert_eq!(names.contains(&"unified"), l.kind == Kind::Hybrid, "{names:?}");
    // Combined hierarchies (cpu,cpuacct) are reachable under each controller's name (above).
    let rest: Vec<&str> = rest.split_whitespace().collect();
    assert!(rest[0].parse::<u32>().unwrap() >= 1, "memory files are not the container's cgroup: {out}");
    // Only the container's own processes are in its cgroup: sh and its pipeline.
    let procs: u32 = rest[1].parse().unwrap();
    assert!((1..=4).contains(&procs), "cgroup.procs lists {procs} processes: {out}");
    assert!(!out.contains("WRITABLE"), "cgroup mount is writable: {out}");
    assert!(out.trim_end().ends_with("end"), "{out}");
    assert_no_leftovers(&rt, &id);
}
