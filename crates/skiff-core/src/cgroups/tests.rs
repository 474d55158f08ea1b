//! Tests of the cgroups module: detection, resolution, fake v1/v2 trees, and the real host.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

// ---------------------------------------------------------------- detection

/// A legacy host: combined cpu,cpuacct, named systemd hierarchy with extra options.
const LEGACY_MI: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
35 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
37 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,net_cls,net_prio
38 31 0:34 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,cpuset,clone_children
";
const LEGACY_CG: &str = "\
12:cpuset:/
7:net_cls,net_prio:/
4:memory:/user.slice/user-1000.slice/session-2.scope
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
";

/// This machine.
const HYBRID_MI: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const HYBRID_CG: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/d61e9522612266e2f469d65c482681b9
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

const UNIFIED_MI: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
26 22 0:24 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
27 26 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:3 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
const UNIFIED_CG: &str = "0::/user.slice/user-1000.slice/session-3.scope\n";

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn find<'a>(cg: &'a Cgroups, mount: &str) -> &'a Hierarchy {
    let m = Path::new(mount);
    match cg.hierarchies.iter().find(|h| h.mount == m) {
        Some(h) => h,
        None => panic!("no hierarchy at {mount}: {cg:?}"),
    }
}

#[test]
fn detect_legacy_with_combined_cpu_cpuacct() {
    let cg = Cgroups::from_text(LEGACY_MI, LEGACY_CG).unwrap();
    assert_eq!(cg.layout, Layout::Legacy);
    assert_eq!(cg.hierarchies.len(), 5);
    let cpu = find(&cg, "/sys/fs/cgroup/cpu,cpuacct");
    assert_eq!(cpu.controllers, names(&["cpu", "cpuacct"]));
    assert!(!cpu.v2);
    assert_eq!(cpu.own, PathBuf::from("user.slice"));
    let sd = find(&cg, "/sys/fs/cgroup/systemd");
    assert_eq!(sd.controllers, names(&["name=systemd"]));
    assert_eq!(
        sd.own,
        PathBuf::from("user.slice/user-1000.slice/session-2.scope")
    );
    let cpuset = find(&cg, "/sys/fs/cgroup/cpuset");
    assert_eq!(
        cpuset.controllers,
        names(&["cpuset"]),
        "clone_children is an option, not a controller"
    );
    assert_eq!(cpuset.own, PathBuf::new());
    assert_eq!(
        find(&cg, "/sys/fs/cgroup/net_cls,net_prio").controllers,
        names(&["net_cls", "net_prio"])
    );
}

#[test]
fn detect_hybrid_like_this_machine() {
    let cg = Cgroups::from_text(HYBRID_MI, HYBRID_CG).unwrap();
    assert_eq!(cg.layout, Layout::Hybrid);
    assert_eq!(cg.hierarchies.len(), 10);
    assert_eq!(cg.hierarchies.iter().filter(|h| h.v2).count(), 1);
    let u = find(&cg, "/sys/fs/cgroup/unified");
    assert!(u.v2);
    assert!(u.controllers.is_empty());
    assert_eq!(u.own, PathBuf::new());
    let mem = find(&cg, "/sys/fs/cgroup/memory");
    assert_eq!(
        mem.own,
        PathBuf::from("process_api/d61e9522612266e2f469d65c482681b9")
    );
    assert_eq!(
        find(&cg, "/sys/fs/cgroup/systemd").controllers,
        names(&["name=systemd"])
    );
    assert_eq!(find(&cg, "/sys/fs/cgroup/cpu").controllers, names(&["cpu"]));
}

#[test]
fn detect_unified() {
    let cg = Cgroups::from_text(UNIFIED_MI, UNIFIED_CG).unwrap();
    assert_eq!(cg.layout, Layout::Unified);
    assert_eq!(
        cg.hierarchies,
        vec![Hierarchy {
            mount: "/sys/fs/cgroup".into(),
            controllers: vec![],
            v2: true,
            own: "user.slice/user-1000.slice/session-3.scope".into(),
        }]
    );
}

#[test]
fn detect_mount_root_not_slash() {
    // A container whose /sys/fs/cgroup shows the host's /docker/abc (root field) while
    // /proc/self/cgroup shows host paths: our own cgroup is relative to the mounted root.
    let mi = "\
100 90 0:40 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
101 90 0:41 /docker/abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
102 90 0:42 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
    let cg = "4:memory:/docker/abc/sub/inner\n3:pids:/docker/abc\n0::/docker/abc/sub\n";
    let c = Cgroups::from_text(mi, cg).unwrap();
    assert_eq!(c.layout, Layout::Hybrid);
    assert_eq!(
        find(&c, "/sys/fs/cgroup/memory").own,
        PathBuf::from("sub/inner")
    );
    assert_eq!(find(&c, "/sys/fs/cgroup/pids").own, PathBuf::new());
    assert_eq!(find(&c, "/sys/fs/cgroup/unified").own, PathBuf::from("sub"));
    // Relative paths follow the own cgroup inside the mount.
    let m = c.resolve(Some("ctr"), "x").unwrap();
    assert_eq!(
        m.paths,
        vec![
            PathBuf::from("/sys/fs/cgroup/memory/sub/inner/ctr"),
            PathBuf::from("/sys/fs/cgroup/unified/sub/ctr"),
            PathBuf::from("/sys/fs/cgroup/pids/ctr"),
        ]
    );
}

#[test]
fn detect_cgroupns_own_outside_mount_root() {
    // Our cgroup is not below the mount's root: fall back to the mount's top.
    let mi = "50 40 0:30 /.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let c = Cgroups::from_text(mi, "0::/elsewhere\n").unwrap();
    assert_eq!(c.hierarchies[0].own, PathBuf::new());
}

#[test]
fn detect_escaped_mount_point_and_duplicates() {
    let mi = "\
1 0 0:30 / /mnt/cg\\040space rw - cgroup cgroup rw,memory
2 0 0:30 / /other/memory rw - cgroup cgroup rw,memory
";
    let c = Cgroups::from_text(mi, "4:memory:/\n").unwrap();
    assert_eq!(
        c.hierarchies.len(),
        1,
        "a second mount of the same hierarchy is ignored"
    );
    assert_eq!(c.hierarchies[0].mount, PathBuf::from("/mnt/cg space"));
}

#[test]
fn detect_nothing_mounted_is_error() {
    let e = Cgroups::from_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "").unwrap_err();
    assert!(e.to_string().contains("no cgroup hierarchy"), "{e}");
}

#[test]
fn detect_this_host() {
    // Whatever the host is, detection must succeed and every mount must exist.
    let cg = Cgroups::detect().unwrap();
    assert!(!cg.hierarchies.is_empty());
    for h in &cg.hierarchies {
        assert!(h.mount.is_dir(), "{h:?}");
        assert!(h.mount.join(&h.own).is_dir(), "{h:?}");
    }
}

// ---------------------------------------------------------------- resolution

#[test]
fn resolve_absolute_relative_default() {
    let cg = Cgroups::from_text(HYBRID_MI, HYBRID_CG).unwrap();
    let abs = cg.resolve(Some("/a/b"), "id").unwrap();
    assert_eq!(abs.paths.len(), 10);
    assert!(abs
        .paths
        .contains(&PathBuf::from("/sys/fs/cgroup/memory/a/b")));
    assert!(abs
        .paths
        .contains(&PathBuf::from("/sys/fs/cgroup/unified/a/b")));
    assert!(abs
        .paths
        .contains(&PathBuf::from("/sys/fs/cgroup/systemd/a/b")));

    let rel = cg.resolve(Some("a/b"), "id").unwrap();
    assert!(rel.paths.contains(&PathBuf::from(
        "/sys/fs/cgroup/memory/process_api/d61e9522612266e2f469d65c482681b9/a/b"
    )));
    assert!(rel.paths.contains(&PathBuf::from("/sys/fs/cgroup/cpu/a/b")));

    for none in [None, Some("")] {
        let def = cg.resolve(none, "c1").unwrap();
        assert!(def
            .paths
            .contains(&PathBuf::from("/sys/fs/cgroup/memory/skiff/c1")));
        assert!(def
            .paths
            .contains(&PathBuf::from("/sys/fs/cgroup/unified/skiff/c1")));
    }

    // Order follows the hierarchies.
    let order: Vec<PathBuf> = cg
        .hierarchies
        .iter()
        .map(|h| h.mount.join("skiff/c1"))
        .collect();
    assert_eq!(cg.resolve(None, "c1").unwrap().paths, order);

    // `.` and doubled slashes are harmless.
    let m = cg.resolve(Some("/a/./b//"), "id").unwrap();
    assert!(m.paths.contains(&PathBuf::from("/sys/fs/cgroup/cpu/a/b")));
}

#[test]
fn resolve_refuses_escapes_and_roots() {
    let cg = Cgroups::from_text(UNIFIED_MI, UNIFIED_CG).unwrap();
    for bad in ["/../etc", "a/../../b", "..", "/a/..", "/", "."] {
        let e = cg.resolve(Some(bad), "id").unwrap_err();
        assert!(
            e.to_string().starts_with("cgroup: cgroups path"),
            "{bad}: {e}"
        );
    }
    let e = cg.resolve(Some("../x"), "id").unwrap_err();
    assert!(e.to_string().contains("'..'"), "{e}");
    assert!(cg.resolve(None, "..").is_err());
    assert!(cg.resolve(None, "a/b").is_err());
}

#[test]
fn resolve_refuses_systemd_form() {
    let cg = Cgroups::from_text(UNIFIED_MI, UNIFIED_CG).unwrap();
    let e = cg
        .resolve(Some("system.slice:skiff:abc"), "abc")
        .unwrap_err();
    assert_eq!(e.to_string(), format!("cgroup: {SYSTEMD_UNSUPPORTED}"));
    assert!(is_systemd_path(":skiff:abc"));
    assert!(!is_systemd_path("/a:b:c"));
    assert!(!is_systemd_path("a:b"));
    assert_eq!(
        systemd_unsupported().to_string(),
        "cgroup: systemd cgroup driver is not supported (no systemd on this host)"
    );
}

#[test]
fn mounts_for_rootfs() {
    let cg = Cgroups::from_text(LEGACY_MI, LEGACY_CG).unwrap();
    let m = cg.resolve(None, "c").unwrap();
    let mounts = cg.mounts_for(&m);
    let got: Vec<(String, bool)> = mounts.iter().map(|c| (c.name.clone(), c.v2)).collect();
    assert_eq!(
        got,
        vec![
            ("systemd".into(), false),
            ("cpu,cpuacct".into(), false),
            ("memory".into(), false),
            ("net_cls,net_prio".into(), false),
            ("cpuset".into(), false)
        ]
    );
    assert_eq!(
        mounts[2].host_dir,
        PathBuf::from("/sys/fs/cgroup/memory/skiff/c")
    );

    let cg = Cgroups::from_text(HYBRID_MI, HYBRID_CG).unwrap();
    let mounts = cg.mounts_for(&cg.resolve(None, "c").unwrap());
    assert_eq!(
        mounts.last().map(|c| (c.name.as_str(), c.v2)),
        Some(("unified", true))
    );

    let cg = Cgroups::from_text(UNIFIED_MI, UNIFIED_CG).unwrap();
    let mounts = cg.mounts_for(&cg.resolve(None, "c").unwrap());
    assert_eq!(mounts.len(), 1);
    assert_eq!((mounts[0].name.as_str(), mounts[0].v2), ("", true));
}

// ---------------------------------------------------------------- fake trees

fn write(p: &Path, s: &str) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(p, s).unwrap();
}

fn read(p: &Path) -> String {
    match fs::read_to_string(p) {
        Ok(s) => s,
        Err(e) => panic!("read {}: {e}", p.display()),
    }
}

/// The kernel drops a cgroup's interface files with the directory; a plain fs does not. Stands
/// in for that before `remove` on a fake tree.
fn fake_kernel_drop_files(dirs: &[PathBuf]) {
    for d in dirs {
        if let Ok(rd) = fs::read_dir(d) {
            for e in rd.flatten() {
                if e.file_type().unwrap().is_file() {
                    fs::remove_file(e.path()).unwrap();
                }
            }
        }
    }
}

/// Every file and directory under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A v1 tree like a legacy host: cpu,cpuacct / cpuset / memory / freezer / systemd, with our
/// own memory cgroup at /process_api/me.
fn fake_v1(root: &Path) -> Cgroups {
    for h in ["cpu,cpuacct", "cpuset", "memory", "freezer", "systemd"] {
        write(&root.join(h).join("cgroup.procs"), "1\n42\n");
    }
    write(&root.join("cpuset/cpuset.cpus"), "0-3\n");
    write(&root.join("cpuset/cpuset.mems"), "0\n");
    write(&root.join("freezer/freezer.state"), "THAWED\n");
    write(&root.join("memory/process_api/me/cgroup.procs"), "42\n");
    let r = root.display();
    let mi = format!(
        "\
31 23 0:28 / {r} rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {r}/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 31 0:31 / {r}/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 31 0:32 / {r}/memory rw,relatime - cgroup cgroup rw,memory
35 31 0:34 / {r}/freezer rw,relatime - cgroup cgroup rw,freezer
36 31 0:37 / {r}/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
"
    );
    let cg =
        "5:name=systemd:/\n4:freezer:/\n3:memory:/process_api/me\n2:cpuset:/\n1:cpu,cpuacct:/\n";
    let c = Cgroups::from_text(&mi, cg).unwrap();
    assert_eq!(c.layout, Layout::Legacy);
    c
}

fn fake_v2(root: &Path) -> Cgroups {
    write(
        &root.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    );
    write(&root.join("cgroup.procs"), "1\n");
    write(&root.join("user.slice/session/cgroup.procs"), "42\n");
    write(
        &root.join("user.slice/session/cgroup.controllers"),
        "memory pids\n",
    );
    let mi = format!(
        "27 26 0:25 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        root.display()
    );
    let c = Cgroups::from_text(&mi, "0::/user.slice/session\n").unwrap();
    assert_eq!(c.layout, Layout::Unified);
    c
}

#[test]
fn fake_v1_create_add_pids_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cg = fake_v1(root);
    let before = tree(root);

    let m = cg.resolve(None, "c1").unwrap();
    let created = m.create().unwrap();
    let expect: Vec<PathBuf> = ["cpu,cpuacct", "cpuset", "memory", "freezer", "systemd"]
        .iter()
        .flat_map(|h| [root.join(h).join("skiff"), root.join(h).join("skiff/c1")])
        .collect();
    assert_eq!(created, expect);

    // cpuset inherited from the nearest parent, at both levels; nothing else got cpuset files.
    for d in ["cpuset/skiff", "cpuset/skiff/c1"] {
        assert_eq!(read(&root.join(d).join("cpuset.cpus")), "0-3");
        assert_eq!(read(&root.join(d).join("cpuset.mems")), "0");
    }
    assert!(!root.join("memory/skiff/c1/cpuset.cpus").exists());

    // Creating again makes nothing new.
    assert_eq!(m.create().unwrap(), Vec::<PathBuf>::new());

    m.add(1234).unwrap();
    for p in &m.paths {
        assert_eq!(read(&p.join("cgroup.procs")), "1234");
    }
    assert!(m.add(0).is_err());
    // The kernel lists every task; different hierarchies may list different ones mid-move.
    write(&root.join("memory/skiff/c1/cgroup.procs"), "1234\n77\n");
    assert_eq!(m.pids().unwrap(), vec![77, 1234]);

    assert!(!is_frozen(&m.paths));
    write(&root.join("freezer/skiff/c1/freezer.state"), "FREEZING\n");
    assert!(!is_frozen(&m.paths));
    write(&root.join("freezer/skiff/c1/freezer.state"), "FROZEN\n");
    assert!(is_frozen(&m.paths));

    fake_kernel_drop_files(&created);
    remove(&created).unwrap();
    assert_eq!(tree(root), before, "exactly the pre-existing tree is left");
    // Removing again is fine (ENOENT ignored).
    remove(&created).unwrap();
}

#[test]
fn fake_v1_shared_parent_is_left_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cg = fake_v1(root);
    let a = cg.resolve(None, "a").unwrap();
    let b = cg.resolve(None, "b").unwrap();
    let ca = a.create().unwrap();
    let cb = b.create().unwrap();
    assert_eq!(ca.len(), 10);
    assert_eq!(cb, b.paths, "b only made its own leaf directories");

    fake_kernel_drop_files(&ca);
    remove(&ca).unwrap();
    for p in &a.paths {
        assert!(!p.exists(), "{}", p.display());
    }
    for p in &b.paths {
        assert!(p.is_dir(), "{} must survive", p.display());
    }
    assert!(root.join("memory/skiff").is_dir());
}

#[test]
fn fake_v1_relative_path_under_own_cgroup() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cg = fake_v1(root);
    let m = cg.resolve(Some("pod/ctr"), "ctr").unwrap();
    let created = m.create().unwrap();
    assert!(created.contains(&root.join("memory/process_api/me/pod")));
    assert!(created.contains(&root.join("memory/process_api/me/pod/ctr")));
    assert!(
        !created.contains(&root.join("memory/process_api/me")),
        "own cgroup is not ours"
    );
    fake_kernel_drop_files(&created);
    remove(&created).unwrap();
    assert!(root.join("memory/process_api/me").is_dir());
    assert!(!root.join("memory/process_api/me/pod").exists());
}

#[test]
fn fake_v1_half_way_failure_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cg = fake_v1(root);
    // memory/skiff is a file: cpu,cpuacct/skiff/c1 was already made when memory fails. (The
    // fake tree keeps cpuset's copied files, which the kernel would drop, so the failure comes
    // before them here; `real_half_way_failure_leaves_nothing` covers that on the host.)
    write(&root.join("memory/skiff"), "in the way");
    fs::remove_dir_all(root.join("cpuset")).unwrap();
    let mi_lines = cg
        .hierarchies
        .iter()
        .filter(|h| !h.mount.ends_with("cpuset"))
        .cloned()
        .collect();
    let cg = Cgroups {
        layout: cg.layout,
        hierarchies: mi_lines,
    };
    let before = tree(root);
    let m = cg.resolve(None, "c1").unwrap();
    let e = m.create().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&root.join("memory/skiff").display().to_string()),
        "{msg}"
    );
    assert!(msg.starts_with("create cgroup "), "{msg}");
    assert_eq!(tree(root), before);
}

#[test]
fn fake_v1_cpuset_without_values_fails_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cg = fake_v1(root);
    write(&root.join("cpuset/cpuset.cpus"), "\n");
    let before = tree(root);
    let e = cg.resolve(Some("/x/y"), "y").unwrap().create().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("cpuset.cpus") && msg.contains(&root.join("cpuset/x").display().to_string()),
        "{msg}"
    );
    assert_eq!(tree(root), before);
}

#[test]
fn fake_v2_create_add_pids_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cg = fake_v2(root);
    let before = tree(root);

    let m = cg.resolve(Some("ctrs/c1"), "c1").unwrap();
    assert_eq!(m.paths, vec![root.join("user.slice/session/ctrs/c1")]);
    let created = m.create().unwrap();
    assert_eq!(
        created,
        vec![
            root.join("user.slice/session/ctrs"),
            root.join("user.slice/session/ctrs/c1")
        ]
    );
    // v2 needs no cpuset copying.
    assert_eq!(fs::read_dir(&created[1]).unwrap().count(), 0);

    m.add(555).unwrap();
    assert_eq!(read(&m.paths[0].join("cgroup.procs")), "555");
    write(&m.paths[0].join("cgroup.procs"), "555\n556\n555\n");
    assert_eq!(m.pids().unwrap(), vec![555, 556]);

    write(&m.paths[0].join("cgroup.procs"), "555\nnot-a-pid\n");
    let e = m.pids().unwrap_err().to_string();
    assert!(e.contains("not a pid") && e.contains("cgroup.procs"), "{e}");

    assert!(!is_frozen(&m.paths));
    write(&m.paths[0].join("cgroup.freeze"), "1\n");
    assert!(is_frozen(&m.paths));
    write(&m.paths[0].join("cgroup.freeze"), "0\n");
    assert!(!is_frozen(&m.paths));

    fake_kernel_drop_files(&created);
    remove(&created).unwrap();
    assert_eq!(tree(root), before);
}

#[test]
fn remove_reports_leftover_files() {
    // On a plain fs a directory with files is ENOTEMPTY without child cgroups: an error
    // naming it, and the other directories are still removed.
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    write(&a.join("f"), "x");
    fs::create_dir(&b).unwrap();
    let e = remove(&[a.clone(), b.clone()]).unwrap_err().to_string();
    assert!(e.contains(&a.display().to_string()), "{e}");
    assert!(!b.exists());
}

// ---------------------------------------------------------------- this host (root only)

mod real {
    use std::process::{Child, Command};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static N: AtomicUsize = AtomicUsize::new(0);

    /// Kills the child and removes what we created, even when an assertion failed.
    struct Guard {
        child: Option<Child>,
        created: Vec<PathBuf>,
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            if let Err(e) = remove(&self.created) {
                eprintln!("cleanup: {e}");
            }
        }
    }

    fn host() -> Option<Cgroups> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: not root");
            return None;
        }
        let cg = Cgroups::detect().ok()?;
        // Every mount must be writable by us (not a read-only container view).
        if cg
            .hierarchies
            .iter()
            .any(|h| nix::unistd::access(&h.mount, nix::unistd::AccessFlags::W_OK).is_err())
        {
            eprintln!("skipped: cgroup mounts not writable");
            return None;
        }
        Some(cg)
    }

    fn unique(prefix: &str) -> String {
        format!(
            "/{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        )
    }

    fn sleeper() -> Child {
        Command::new("sleep").arg("30").spawn().unwrap()
    }

    #[test]
    fn real_create_join_remove() {
        let Some(cg) = host() else { return };
        let name = unique("skiff-test");
        let m = cg.resolve(Some(&format!("{name}/inner")), "x").unwrap();
        let mut g = Guard {
            child: None,
            created: Vec::new(),
        };
        g.created = m.create().unwrap();
        assert_eq!(g.created.len(), 2 * cg.hierarchies.len());
        for p in &m.paths {
            assert!(p.join("cgroup.procs").is_file(), "{}", p.display());
        }
        // v1 cpuset got usable values.
        if let Some(h) = cg
            .hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == "cpuset"))
        {
            let dir = h.mount.join(name.trim_start_matches('/')).join("inner");
            assert!(!read(&dir.join("cpuset.cpus")).trim().is_empty());
            assert!(!read(&dir.join("cpuset.mems")).trim().is_empty());
        }

        g.child = Some(sleeper());
        let pid = g.child.as_ref().map(|c| c.id()).unwrap();
        let pid = i32::try_from(pid).unwrap();
        m.add(pid).unwrap();

        let own = read(Path::new(&format!("/proc/{pid}/cgroup")));
        let want = format!("{name}/inner");
        let lines: Vec<&str> = own.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), cg.hierarchies.len(), "{own}");
        for l in &lines {
            assert!(l.ends_with(&format!(":{want}")), "not joined: {l}\n{own}");
        }
        assert_eq!(m.pids().unwrap(), vec![pid]);

        // v1 freezer, if the host has one.
        if let Some(fz) = m.paths.iter().find(|p| p.join("freezer.state").is_file()) {
            fs::write(fz.join("freezer.state"), "FROZEN").unwrap();
            let t0 = std::time::Instant::now();
            while !is_frozen(&m.paths) && t0.elapsed() < std::time::Duration::from_secs(2) {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert!(is_frozen(&m.paths));
            fs::write(fz.join("freezer.state"), "THAWED").unwrap();
            assert!(!is_frozen(&m.paths));
        }

        // Still populated: remove gives up after its bounded wait, leaving the dirs.
        let e = remove(&g.created).unwrap_err().to_string();
        assert!(e.contains("tasks still in it"), "{e}");
        assert!(m.paths.iter().all(|p| p.is_dir()));

        if let Some(mut c) = g.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        assert_eq!(m.pids().unwrap(), Vec::<i32>::new());
        remove(&g.created).unwrap();
        for p in &g.created {
            assert!(!p.exists(), "{} still exists", p.display());
        }
        g.created.clear();
    }

    #[test]
    fn real_half_way_failure_leaves_nothing() {
        let Some(cg) = host() else { return };
        let Some(cpuset) = cg
            .hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == "cpuset"))
        else {
            eprintln!("skipped: no v1 cpuset hierarchy");
            return;
        };
        let name = unique("skiff-test");
        // A parent cpuset cgroup with empty cpus/mems (made by the test, not by create): the
        // kernel refuses the child any cpus, after other hierarchies were already populated.
        let parent = cpuset.mount.join(name.trim_start_matches('/'));
        fs::create_dir(&parent).unwrap();
        let _g = Guard {
            child: None,
            created: vec![parent.clone()],
        };
        let m = cg.resolve(Some(&format!("{name}/c")), "c").unwrap();
        let e = m.create().unwrap_err().to_string();
        eprintln!("half-way failure: {e}");
        assert!(e.contains(&parent.join("c").display().to_string()), "{e}");
        for h in &cg.hierarchies {
            let top = h.mount.join(name.trim_start_matches('/'));
            if h.mount == cpuset.mount {
                assert!(top.is_dir() && !top.join("c").exists(), "{}", top.display());
            } else {
                assert!(!top.exists(), "{} left behind", top.display());
            }
        }
    }

    #[test]
    fn real_add_to_empty_cpuset_explains_enospc() {
        let Some(cg) = host() else { return };
        let Some(cpuset) = cg
            .hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == "cpuset"))
        else {
            eprintln!("skipped: no v1 cpuset hierarchy");
            return;
        };
        // Made behind create's back, so cpus/mems stay empty.
        let dir = cpuset
            .mount
            .join(unique("skiff-test").trim_start_matches('/'));
        fs::create_dir(&dir).unwrap();
        let mut g = Guard {
            child: Some(sleeper()),
            created: vec![dir.clone()],
        };
        let pid = g.child.as_ref().map(|c| c.id()).unwrap();
        let m = Manager {
            paths: vec![dir.clone()],
        };
        let e = m.add(i32::try_from(pid).unwrap()).unwrap_err().to_string();
        assert!(
            e.contains("empty cpuset.cpus or cpuset.mems")
                && e.contains(&dir.display().to_string()),
            "{e}"
        );
        assert_eq!(m.pids().unwrap(), Vec::<i32>::new());
        g.created = vec![dir];
    }

    #[test]
    fn real_shared_parent_survives() {
        let Some(cg) = host() else { return };
        let name = unique("skiff-test");
        let a = cg.resolve(Some(&format!("{name}/a")), "a").unwrap();
        let b = cg.resolve(Some(&format!("{name}/b")), "b").unwrap();
        let ga = Guard {
            child: None,
            created: a.create().unwrap(),
        };
        let gb = Guard {
            child: None,
            created: b.create().unwrap(),
        };
        assert_eq!(gb.created, b.paths);
        // cgroupfs answers EBUSY for a parent with children: left in place, no error.
        remove(&ga.created).unwrap();
        for p in &a.paths {
            assert!(!p.exists());
        }
        for p in &b.paths {
            assert!(p.is_dir());
        }
        // Clean the parent too: gb removes b, then ga's Drop removes the parent.
        drop(gb);
        drop(ga);
        for h in &cg.hierarchies {
            assert!(!h.mount.join(name.trim_start_matches('/')).exists());
        }
    }

    /// The fake-tree test below, on the kernel: on v1 a shared parent we just made is empty
    /// until its cpuset values are copied in, so a concurrent delete can remove it in that
    /// window, and create used to fail with "write .../skiff/cpuset.cpus: No such file".
    #[test]
    fn real_create_survives_a_concurrent_delete_of_the_shared_parent() {
        let Some(cg) = host() else { return };
        let name = unique("skiff-test");
        let top = cg.resolve(Some(&name), "top").unwrap();
        let _g = Guard {
            child: None,
            created: top.create().unwrap(),
        };
        let worker = |c: &'static str| {
            let m = cg.resolve(Some(&format!("{name}/{}/{c}", path::DEFAULT_PARENT)), c).unwrap();
            // A failed create leaves nothing; returning (not panicking) lets the other worker
            // finish and clean up before the test fails.
            std::thread::spawn(move || -> Result<()> {
                for _ in 0..150 {
                    let created = m.create()?;
                    remove(&created)?;
                    remove_default_parents(&m.paths);
                }
                Ok(())
            })
        };
        let (a, b) = (worker("a"), worker("b"));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        a.expect("create under a parent that comes and goes");
        b.expect("create under a parent that comes and goes");
        for p in &top.paths {
            assert!(!p.join(path::DEFAULT_PARENT).exists(), "{} left behind", p.display());
        }
    }
}

/// Two containers made and deleted at once under the shared default parent: one's delete may
/// remove the empty parent while the other is about to mkdir below it. Create must retry, not
/// fail with ENOENT.
#[test]
fn create_survives_a_concurrent_delete_of_the_shared_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let worker = |name: &'static str| {
        let root = root.clone();
        std::thread::spawn(move || {
            let m = Manager { paths: vec![root.join(path::DEFAULT_PARENT).join(name)] };
            for _ in 0..500 {
                let created = m.create().expect("create under a parent that comes and goes");
                remove(&created).unwrap();
                remove_default_parents(&m.paths);
            }
        })
    };
    let (a, b) = (worker("a"), worker("b"));
    a.join().unwrap();
    b.join().unwrap();
    assert!(!root.join(path::DEFAULT_PARENT).exists());
}
