//! prepare()/finish() against the recording double: which calls, in which order.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{makedev, SFlag};
use oci_spec::runtime::Spec;

use super::{finish, prepare, CgroupMount, RootfsCtx};
use crate::syscall::{Call, FileKind, RecordingSyscall};

const R: &str = "/r";
const B: &str = "/b";

fn spec(json: &str) -> Spec {
    serde_json::from_str(json).expect("test spec parses")
}

fn ctx<'a>(spec: &'a Spec, cgroups: &'a [CgroupMount]) -> RootfsCtx<'a> {
    RootfsCtx {
        spec,
        rootfs: Path::new(R),
        bundle: Path::new(B),
        no_pivot: false,
        in_userns: false,
        cgroups,
        cgroupns: false,
        mount_label: None,
    }
}

fn m(source: Option<&str>, target: &str, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> Call {
    Call::mount(source, target, fstype, flags, data)
}

fn pb(s: &str) -> PathBuf {
    PathBuf::from(s)
}

const SAMPLE: &str = r#"{
  "ociVersion": "1.0.2",
  "root": {"path": "rootfs", "readonly": false},
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "rprivate"]}
  ],
  "linux": {
    "namespaces": [{"type": "mount"}, {"type": "network"}],
    "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 432, "uid": 1000, "gid": 1001}]
  }
}"#;

#[test]
fn sample_spec_mount_order() {
    let s = spec(SAMPLE);
    let sys = RecordingSyscall::new();
    sys.add("/b/data", FileKind::Dir);
    prepare(&sys, &ctx(&s, &[])).expect("prepare");
    let slave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
    let bind_rec = MsFlags::MS_BIND | MsFlags::MS_REC;
    assert_eq!(
        sys.mounts(),
        vec![
            m(None, "/", None, slave, None),
            m(Some(R), R, None, bind_rec, None),
            m(Some("proc"), "/r/proc", Some("proc"), MsFlags::empty(), None),
            m(Some("tmpfs"), "/r/dev", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME, Some("mode=755,size=65536k")),
            m(
                Some("devpts"),
                "/r/dev/pts",
                Some("devpts"),
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                Some("newinstance,ptmxmode=0666,mode=0620,gid=5")
            ),
            // The relative source is taken from the bundle; `ro` needs a second, remount call.
            m(Some("/b/data"), "/r/data", None, bind_rec, None),
            m(None, "/r/data", None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None),
            m(None, "/r/data", None, MsFlags::MS_PRIVATE | MsFlags::MS_REC, None),
        ]
    );
}

#[test]
fn devices_links_and_ptmx() {
    let s = spec(SAMPLE);
    let sys = RecordingSyscall::new();
    sys.add("/b/data", FileKind::Dir);
    sys.add("/proc/kcore", FileKind::File);
    prepare(&sys, &ctx(&s, &[])).expect("prepare");
    let calls: Vec<Call> = sys
        .calls()
        .into_iter()
        .filter(|c| !matches!(c, Call::Mount { .. } | Call::Mkdir(_)))
        .collect();
    let chr = |path: &str, major, minor, perm| Call::Mknod { path: pb(path), kind: SFlag::S_IFCHR, perm, dev: makedev(major, minor) };
    let own = |path: &str, uid, gid| Call::Lchown { path: pb(path), uid, gid };
    let link = |target: &str, link: &str| Call::Symlink { target: pb(target), link: pb(link) };
    assert_eq!(
        calls,
        vec![
            Call::Umask(0),
            chr("/r/dev/null", 1, 3, 0o666),
            own("/r/dev/null", 0, 0),
            chr("/r/dev/zero", 1, 5, 0o666),
            own("/r/dev/zero", 0, 0),
            chr("/r/dev/full", 1, 7, 0o666),
            own("/r/dev/full", 0, 0),
            chr("/r/dev/random", 1, 8, 0o666),
            own("/r/dev/random", 0, 0),
            chr("/r/dev/urandom", 1, 9, 0o666),
            own("/r/dev/urandom", 0, 0),
            chr("/r/dev/tty", 5, 0, 0o666),
            own("/r/dev/tty", 0, 0),
            chr("/r/dev/fuse", 10, 229, 0o660),
            own("/r/dev/fuse", 1000, 1001),
            Call::Umask(0o022),
            Call::Unlink(pb("/r/dev/ptmx")),
            link("pts/ptmx", "/r/dev/ptmx"),
            link("/proc/self/fd", "/r/dev/fd"),
            link("/proc/self/fd/0", "/r/dev/stdin"),
            link("/proc/self/fd/1", "/r/dev/stdout"),
            link("/proc/self/fd/2", "/r/dev/stderr"),
            link("/proc/kcore", "/r/dev/core"),
        ]
    );
}

#[test]
fn no_dev_core_without_kcore_and_no_devices_when_dev_is_bound() {
    let s = spec(SAMPLE);
    let sys = RecordingSyscall::new();
    sys.add("/b/data", FileKind::Dir);
    prepare(&sys, &ctx(&s, &[])).expect("prepare");
    assert!(!sys.calls().iter().any(|c| matches!(c, Call::Symlink { link, .. } if link == Path::new("/r/dev/core"))));

    let s = spec(r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}]}"#);
    let sys = RecordingSyscall::new();
    sys.add("/dev", FileKind::Dir);
    prepare(&sys, &ctx(&s, &[])).expect("prepare");
    assert!(!sys.calls().iter().any(|c| matches!(c, Call::Mknod { .. } | Call::Symlink { .. })));
}

#[test]
fn userns_devices_are_bind_mounted_onto_files() {
    let s = spec(r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}]}"#);
    let sys = RecordingSyscall::new();
    let mut c = ctx(&s, &[]);
    c.in_userns = true;
    prepare(&sys, &c).expect("prepare");
    let calls = sys.calls();
    assert!(!calls.iter().any(|c| matches!(c, Call::Mknod { .. })));
    assert!(calls.contains(&Call::CreateFile(pb("/r/dev/null"))));
    assert!(calls.contains(&m(Some("/dev/null"), "/r/dev/null", None, MsFlags::MS_BIND, None)));
    assert!(calls.contains(&m(Some("/dev/tty"), "/r/dev/tty", None, MsFlags::MS_BIND, None)));
    // No devpts in this spec: /dev/ptmx is left alone.
    assert!(!calls.contains(&Call::Unlink(pb("/r/dev/ptmx"))));
}

#[test]
fn userns_device_missing_on_the_host_names_the_field() {
    let s = spec(r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}],
        "linux": {"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}}"#);
    let sys = RecordingSyscall::new();
    sys.fail_once("/r/dev/fuse", Errno::ENOENT);
    let mut c = ctx(&s, &[]);
    c.in_userns = true;
    let e = prepare(&sys, &c).unwrap_err().to_string();
    assert!(e.contains("linux.devices[/dev/fuse]") && e.contains("bind mounts of the host"), "{e}");
}

#[test]
fn mknod_eperm_falls_back_to_bind() {
    let s = spec(r#"{"ociVersion": "1.0.2"}"#);
    let sys = RecordingSyscall::new();
    sys.fail_once("/r/dev/zero", Errno::EPERM);
    prepare(&sys, &ctx(&s, &[])).expect("prepare");
    let calls = sys.calls();
    assert!(calls.contains(&m(Some("/dev/zero"), "/r/dev/zero", None, MsFlags::MS_BIND, None)));
    assert!(!calls.contains(&Call::Lchown { path: pb("/r/dev/zero"), uid: 0, gid: 0 }));
    assert!(calls.contains(&Call::Lchown { path: pb("/r/dev/full"), uid: 0, gid: 0 }));
}

#[test]
fn bind_of_a_file_creates_a_file_and_keeps_locked_flags_on_eperm() {
    // An EPERM on the bind itself is an error, not something to retry.
    let s = spec(r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/etc/hosts", "type": "bind", "source": "/host/hosts", "options": ["bind", "ro"]}]}"#);
    let sys = RecordingSyscall::new();
    sys.add("/host/hosts", FileKind::File);
    sys.fail_once("/r/etc/hosts", Errno::EPERM);
    assert!(prepare(&sys, &ctx(&s, &[])).is_err());

    // The remount is retried with the source's locked flags.
    let sys = RecordingSyscall::new();
    sys.add("/host/hosts", FileKind::File);
    sys.add("/dev", FileKind::Dir);
    sys.set_mount_flags("/host/hosts", MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    super::mounts::bind(
        &sys,
        Path::new(R),
        Path::new("/host/hosts"),
        Path::new("/etc/hosts"),
        &super::mount::parse_options(&["bind"]),
    )
    .expect("plain bind");
    assert!(sys.calls().contains(&Call::CreateFile(pb("/r/etc/hosts"))));
    sys.fail_once("/r/etc/hosts", Errno::EPERM);
    super::mounts::remount_keep_locked(
        &sys,
        Path::new(R),
        Path::new("/etc/hosts"),
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some(Path::new("/host/hosts")),
    )
    .expect("retry with locked flags");
    let mounts = sys.mounts();
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
    assert_eq!(
        mounts[1..],
        [
            m(None, "/r/etc/hosts", None, base | MsFlags::MS_STRICTATIME, None),
            // Locked atime replaces the requested one; nodev/noexec are kept.
            m(None, "/r/etc/hosts", None, base | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME, None),
        ]
    );
}

#[test]
fn proc_on_a_symlink_is_refused() {
    let s = spec(r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"}]}"#);
    let sys = RecordingSyscall::new();
    sys.add("/r/proc", FileKind::Symlink);
    let e = prepare(&sys, &ctx(&s, &[])).expect_err("proc on a symlink");
    let want = r#"error mounting "proc" to rootfs at "/proc": filesystem "proc" must be mounted on ordinary directory"#;
    assert!(e.to_string().contains(want), "{e}");
    assert!(!sys.mounts().iter().any(|c| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "proc")));
}

#[test]
fn sysfs_in_userns_without_netns_is_an_rbind_of_sys() {
    let json = r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}],
        "linux": {"namespaces": [{"type": "user"}, {"type": "mount"}]}}"#;
    let s = spec(json);
    let sys = RecordingSyscall::new();
    sys.add("/sys", FileKind::Dir);
    sys.add("/dev", FileKind::Dir);
    let mut c = ctx(&s, &[]);
    c.in_userns = true;
    prepare(&sys, &c).expect("prepare");
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_RDONLY;
    assert_eq!(
        sys.mounts()[2..4],
        [
            m(Some("/sys"), "/r/sys", None, MsFlags::MS_BIND | MsFlags::MS_REC, None),
            m(None, "/r/sys", None, flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT, None),
        ]
    );

    // With its own network namespace sysfs is mounted for real.
    let s = spec(&json.replace(r#"{"type": "mount"}"#, r#"{"type": "mount"}, {"type": "network"}"#));
    let sys = RecordingSyscall::new();
    sys.add("/dev", FileKind::Dir);
    let mut c = ctx(&s, &[]);
    c.in_userns = true;
    prepare(&sys, &c).expect("prepare");
    assert_eq!(sys.mounts()[2], m(Some("sysfs"), "/r/sys", Some("sysfs"), flags, None));
}

#[test]
fn ro_tmpfs_is_remounted_after_the_mount() {
    let s = spec(r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nodev", "size=1m"]},
        {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}]}"#);
    let sys = RecordingSyscall::new();
    sys.add("/dev", FileKind::Dir);
    prepare(&sys, &ctx(&s, &[])).expect("prepare");
    assert_eq!(
        sys.mounts()[2..4],
        [
            m(Some("tmpfs"), "/r/tmp", Some("tmpfs"), MsFlags::MS_NODEV, Some("size=1m")),
            m(Some("tmpfs"), "/r/tmp", Some("tmpfs"), MsFlags::MS_NODEV | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT, Some("size=1m")),
        ]
    );
}

const CGROUP_SPEC: &str = r#"{"ociVersion": "1.0.2", "mounts": [
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}]}"#;

#[test]
fn cgroup_v1_plan() {
    let s = spec(CGROUP_SPEC);
    let cgroups = vec![
        CgroupMount { name: "cpu,cpuacct".into(), host_dir: pb("/sys/fs/cgroup/cpu,cpuacct/c1"), v2: false },
        CgroupMount { name: "memory".into(), host_dir: pb("/sys/fs/cgroup/memory/c1"), v2: false },
    ];
    let sys = RecordingSyscall::new();
    sys.add("/dev", FileKind::Dir);
    for c in &cgroups {
        sys.add(c.host_dir.clone(), FileKind::Dir);
    }
    prepare(&sys, &ctx(&s, &cgroups)).expect("prepare");
    let user = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_RELATIME | MsFlags::MS_RDONLY;
    let bind_rec = MsFlags::MS_BIND | MsFlags::MS_REC;
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let cpu = "/r/sys/fs/cgroup/cpu,cpuacct";
    let mem = "/r/sys/fs/cgroup/memory";
    assert_eq!(
        sys.mounts()[2..9],
        [
            m(Some("tmpfs"), "/r/sys/fs/cgroup", Some("tmpfs"), tmpfs_flags, Some("mode=755")),
            m(Some("/sys/fs/cgroup/cpu,cpuacct/c1"), cpu, None, bind_rec, None),
            m(None, cpu, None, user | remount, None),
            m(Some("/sys/fs/cgroup/memory/c1"), mem, None, bind_rec, None),
            m(None, mem, None, user | remount, None),
            m(None, "/r/sys/fs/cgroup", None, remount | MsFlags::MS_RDONLY | tmpfs_flags, None),
            m(Some("/dev"), "/r/dev", None, bind_rec, None),
        ]
    );
    let links: Vec<Call> = sys.calls().into_iter().filter(|c| matches!(c, Call::Symlink { .. })).collect();
    assert_eq!(
        links,
        vec![
            Call::Symlink { target: pb("cpu,cpuacct"), link: pb("/r/sys/fs/cgroup/cpu") },
            Call::Symlink { target: pb("cpu,cpuacct"), link: pb("/r/sys/fs/cgroup/cpuacct") },
        ]
    );
}

#[test]
fn cgroup_v2_plan() {
    let s = spec(CGROUP_SPEC);
    let cgroups = vec![CgroupMount { name: String::new(), host_dir: pb("/sys/fs/cgroup/c1"), v2: true }];
    let user = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_RELATIME | MsFlags::MS_RDONLY;

    let sys = RecordingSyscall::new();
    sys.add("/dev", FileKind::Dir);
    let mut c = ctx(&s, &cgroups);
    c.cgroupns = true;
    prepare(&sys, &c).expect("prepare");
    assert_eq!(sys.mounts()[2], m(Some("cgroup2"), "/r/sys/fs/cgroup", Some("cgroup2"), user, None));
    assert_eq!(sys.mounts().len(), 4, "{:#?}", sys.mounts());

    let sys = RecordingSyscall::new();
    sys.add("/dev", FileKind::Dir);
    sys.add("/sys/fs/cgroup/c1", FileKind::Dir);
    prepare(&sys, &ctx(&s, &cgroups)).expect("prepare");
    assert_eq!(
        sys.mounts()[2..4],
        [
            m(Some("/sys/fs/cgroup/c1"), "/r/sys/fs/cgroup", None, MsFlags::MS_BIND | MsFlags::MS_REC, None),
            m(None, "/r/sys/fs/cgroup", None, user | MsFlags::MS_BIND | MsFlags::MS_REMOUNT, None),
        ]
    );
}

#[test]
fn shared_parent_is_made_private_and_propagation_is_honoured() {
    let s = spec(r#"{"ociVersion": "1.0.2", "linux": {"rootfsPropagation": "rshared"}}"#);
    let sys = RecordingSyscall::new();
    sys.set_mountinfo(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
         40 22 0:40 / /r rw,relatime master:1 - ext4 /dev/sda1 rw\n",
    );
    super::pivot::prepare_root(&sys, &ctx(&s, &[])).expect("prepare_root");
    // /r is its own mount and not shared: nothing to make private.
    assert_eq!(sys.mounts().len(), 2);
    assert_eq!(sys.mounts()[0], m(None, "/", None, MsFlags::MS_SHARED | MsFlags::MS_REC, None));

    let sys = RecordingSyscall::new();
    sys.set_mountinfo("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
    super::pivot::prepare_root(&sys, &ctx(&s, &[])).expect("prepare_root");
    assert_eq!(sys.mounts()[1], m(None, "/", None, MsFlags::MS_PRIVATE, None));
    assert_eq!(sys.mounts()[2], m(Some(R), R, None, MsFlags::MS_BIND | MsFlags::MS_REC, None));

    let bad = spec(r#"{"ociVersion": "1.0.2", "linux": {"rootfsPropagation": "sideways"}}"#);
    assert!(super::pivot::prepare_root(&RecordingSyscall::new(), &ctx(&bad, &[])).is_err());
}

#[test]
fn mountinfo_parsing() {
    use super::pivot::shared_parent_mount;
    let mi = "22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n\
              30 22 0:30 / /var/lib/with\\040space rw shared:7 master:2 - ext4 x rw\n\
              31 22 0:31 / /var rw - ext4 y rw\n";
    assert_eq!(shared_parent_mount(mi, Path::new("/var/lib/with space/c/rootfs")), Some(pb("/var/lib/with space")));
    assert_eq!(shared_parent_mount(mi, Path::new("/var/lib/other")), None);
    assert_eq!(shared_parent_mount(mi, Path::new("/home/x")), Some(pb("/")));
    // `/varx` is not under `/var`.
    assert_eq!(shared_parent_mount(mi, Path::new("/varx")), Some(pb("/")));
}

const FINISH: &str = r#"{
  "ociVersion": "1.0.2",
  "root": {"path": "rootfs", "readonly": true},
  "mounts": [{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "ro"]}],
  "linux": {
    "rootfsPropagation": "slave",
    "maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/missing"],
    "readonlyPaths": ["/proc/sys", "/proc/nothere"]
  }
}"#;

#[test]
fn finish_pivots_then_readonly_masked_dev_root_propagation() {
    let s = spec(FINISH);
    let sys = RecordingSyscall::new();
    sys.add("/proc/kcore", FileKind::File);
    sys.add("/proc/acpi", FileKind::Dir);
    sys.add("/dev", FileKind::Dir);
    sys.add("/proc/sys", FileKind::Dir);
    sys.set_mount_flags("/proc/sys", MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME);
    finish(&sys, &ctx(&s, &[])).expect("finish");
    let ro_remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    assert_eq!(
        sys.calls(),
        vec![
            Call::Fchdir(pb(R)),
            Call::PivotRoot { new_root: pb("."), put_old: pb(".") },
            Call::Fchdir(pb("/")),
            m(None, ".", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None),
            Call::Umount2 { target: pb("."), flags: MntFlags::MNT_DETACH },
            Call::Chdir(pb("/")),
            m(Some("/proc/sys"), "/proc/sys", None, MsFlags::MS_BIND | MsFlags::MS_REC, None),
            m(Some("/proc/sys"), "/proc/sys", None, ro_remount | MsFlags::MS_NOSUID | MsFlags::MS_NODEV, None),
            m(Some("/dev/null"), "/proc/kcore", None, MsFlags::MS_BIND, None),
            m(Some("tmpfs"), "/proc/acpi", Some("tmpfs"), MsFlags::MS_RDONLY, None),
            m(None, "/dev", None, MsFlags::MS_NOSUID | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT, None),
            m(None, "/", None, ro_remount, None),
            m(None, "/", None, MsFlags::MS_SLAVE, None),
        ]
    );
}

#[test]
fn finish_without_pivot_moves_and_chroots() {
    let s = spec(r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": false}}"#);
    let sys = RecordingSyscall::new();
    let mut c = ctx(&s, &[]);
    c.no_pivot = true;
    finish(&sys, &c).expect("finish");
    assert_eq!(
        sys.calls(),
        vec![
            Call::Chdir(pb(R)),
            m(Some(R), "/", None, MsFlags::MS_MOVE, None),
            Call::Chroot(pb(".")),
            Call::Chdir(pb("/")),
        ]
    );
}

#[test]
fn finish_makes_a_missing_cwd_after_the_pivot() {
    let s = spec(r#"{"ociVersion": "1.0.2", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/work/../app/src"},
        "root": {"path": "rootfs", "readonly": true}}"#);
    let sys = RecordingSyscall::new();
    sys.add("/app", FileKind::Dir);
    finish(&sys, &ctx(&s, &[])).expect("finish");
    let calls = sys.calls();
    let mkdir = calls.iter().position(|c| *c == Call::Mkdir(pb("/app/src"))).expect("cwd made, `..` clamped");
    let pivot = calls.iter().position(|c| matches!(c, Call::PivotRoot { .. })).expect("pivot");
    let ro_root = calls.iter().position(|c| matches!(c, Call::Mount { target, .. } if target == Path::new("/"))).expect("ro root");
    assert!(pivot < mkdir && mkdir < ro_root, "{calls:?}");
    assert_eq!(calls.iter().filter(|c| matches!(c, Call::Mkdir(_))).count(), 1, "{calls:?}");

    // An existing cwd (or "/") makes nothing.
    let s = spec(r#"{"ociVersion": "1.0.2", "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}}"#);
    let sys = RecordingSyscall::new();
    finish(&sys, &ctx(&s, &[])).expect("finish");
    assert!(!sys.calls().iter().any(|c| matches!(c, Call::Mkdir(_))));
}

#[test]
fn tmpcopyup_copies_from_underneath_into_the_new_tmpfs() {
    let s = spec(r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "nosuid"]},
        {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}]}"#);
    let sys = RecordingSyscall::new();
    sys.add("/dev", FileKind::Dir);
    prepare(&sys, &ctx(&s, &[])).expect("prepare");
    let calls = sys.calls();
    let mount = calls
        .iter()
        .position(|c| *c == m(Some("tmpfs"), "/r/run", Some("tmpfs"), MsFlags::MS_NOSUID, None))
        .expect("tmpfs mounted, tmpcopyup not passed as data");
    assert_eq!(calls[mount + 1], Call::CopyTree { from: pb("/r/run"), to: pb("/r/run") });

    assert!(!calls.iter().any(|c| matches!(c, Call::CopyMode { .. })), "/run was created: it keeps the tmpfs's mode");

    let bad = spec(r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/x", "type": "proc", "source": "proc", "options": ["tmpcopyup"]}]}"#);
    assert!(prepare(&RecordingSyscall::new(), &ctx(&bad, &[])).is_err());
}

/// runc chmods a tmpfs to the mode of the directory it covers (before a read-only remount),
/// with or without tmpcopyup; a tmpfs on a directory it created keeps its `mode=`.
#[test]
fn tmpfs_takes_the_mode_of_the_directory_it_covers() {
    let s = spec(r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700", "ro"]},
        {"destination": "/var/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]},
        {"destination": "/new", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"]}]}"#);
    let sys = RecordingSyscall::new();
    sys.add("/r/tmp", FileKind::Dir).add("/r/var/tmp", FileKind::Dir);
    prepare(&sys, &ctx(&s, &[])).expect("prepare");
    let calls = sys.calls();
    let at = |want: &Call| calls.iter().position(|c| c == want).unwrap_or_else(|| panic!("no {want:?} in {calls:#?}"));
    let tmp = at(&m(Some("tmpfs"), "/r/tmp", Some("tmpfs"), MsFlags::empty(), Some("mode=700")));
    assert_eq!(calls[tmp + 1], Call::CopyMode { from: pb("/r/tmp"), to: pb("/r/tmp") });
    assert_eq!(calls[tmp + 2], m(Some("tmpfs"), "/r/tmp", Some("tmpfs"), MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT, Some("mode=700")));
    let var_tmp = at(&m(Some("tmpfs"), "/r/var/tmp", Some("tmpfs"), MsFlags::empty(), None));
    assert_eq!(calls[var_tmp + 1], Call::CopyTree { from: pb("/r/var/tmp"), to: pb("/r/var/tmp") });
    assert_eq!(calls[var_tmp + 2], Call::CopyMode { from: pb("/r/var/tmp"), to: pb("/r/var/tmp") });
    at(&Call::Mkdir(pb("/r/new")));
    assert_eq!(calls.iter().filter(|c| matches!(c, Call::CopyMode { .. })).count(), 2, "{calls:#?}");
}
