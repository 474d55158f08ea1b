//! The default `config.json` that `skiff-runtime spec` writes (and the engine starts from).
//!
//! OWNER: CLI helper.
//!
//! It is runc's default spec (`runc spec`, `runc spec --rootless`) with our hostname and spec
//! version, plus Docker's default seccomp profile resolved for its capabilities
//! ([`crate::seccomp::default_profile`]). runc's own `spec` has no `linux.seccomp`; we follow
//! the configs Docker generates instead, so that a container made from `spec` gets the same
//! syscall filter as `docker run` (the later engine calls the same function). It is written as a
//! JSON literal, so it reads like the file it produces, and parsed into [`Spec`] (a test checks
//! that it parses and round-trips).

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::spec::OCI_VERSION;

/// runc's default spec (rootful), or its rootless variant.
pub fn default_spec(rootless: bool) -> Spec {
    serde_json::from_value(default_spec_json(rootless)).expect("the built-in default spec is valid")
}

/// [`default_spec`] as JSON, with arrays (capabilities) in runc's order, for writing out.
pub fn default_spec_json(rootless: bool) -> Value {
    if rootless {
        // SAFETY: geteuid/getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        rootless_json(uid, gid)
    } else {
        rootful_json()
    }
}

/// The rootful default as JSON (serialize the parsed [`Spec`] for the field order runc uses).
pub fn rootful_json() -> Value {
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": default_caps(),
                "effective": default_caps(),
                "permitted": default_caps(),
                "ambient": default_caps()
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "skiff",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"}
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": default_seccomp()
        }
    })
}

/// Docker's default profile for the default capabilities (Docker resolves it against the
/// bounding set).
fn default_seccomp() -> Value {
    let caps: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    serde_json::to_value(crate::seccomp::default_profile(&caps, crate::seccomp::native_arch())).unwrap_or_default()
}

/// The rootless variant, as runc's `ToRootless` makes it: a user namespace mapping the caller
/// (`uid`/`gid`) to root, no network namespace, /sys bind-mounted (sysfs cannot be mounted
/// without owning a network namespace), no `gid=`/`uid=` mount options, no cgroup resources.
/// Unlike runc we also drop the `/sys/fs/cgroup` mount: an unprivileged user cannot mount a
/// cgroup filesystem without a cgroup namespace, and the container gets no cgroup of its own.
pub fn rootless_json(uid: u32, gid: u32) -> Value {
    let mut v = rootful_json();
    let linux = v["linux"].as_object_mut().expect("linux object");
    linux.remove("resources");
    let ns = linux["namespaces"].as_array_mut().expect("namespaces array");
    ns.retain(|n| n["type"] != "network");
    ns.push(json!({"type": "user"}));
    linux.insert("uidMappings".into(), json!([{"containerID": 0, "hostID": uid, "size": 1}]));
    linux.insert("gidMappings".into(), json!([{"containerID": 0, "hostID": gid, "size": 1}]));

    let mounts = v["mounts"].as_array_mut().expect("mounts array");
    mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    for m in mounts.iter_mut() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        } else if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
            opts.retain(|o| o.as_str().is_none_or(|s| !s.starts_with("gid=") && !s.starts_with("uid=")));
        }
    }
    v
}

/// runc's (and Docker's) masked paths: hidden from the container.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// runc's (and Docker's) read-only paths.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

fn default_caps() -> Value {
    json!(DEFAULT_CAPS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceType;

    fn round_trip(v: Value) -> Spec {
        let spec: Spec = serde_json::from_value(v).expect("parses");
        let text = serde_json::to_string(&spec).unwrap();
        let again: Spec = serde_json::from_str(&text).unwrap();
        assert_eq!(spec, again);
        // Our own loader (with its version check) accepts it too.
        crate::spec::parse(text.as_bytes()).expect("skiff's parser accepts it");
        spec
    }

    #[test]
    fn rootful_parses_and_round_trips() {
        let spec = round_trip(rootful_json());
        assert_eq!(spec.version(), OCI_VERSION);
        assert_eq!(spec.hostname().as_deref(), Some("skiff"));
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert_eq!(p.args().as_ref().unwrap(), &vec!["sh".to_string()]);
        assert_eq!(p.no_new_privileges(), Some(true));
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path().to_str(), Some("rootfs"));
        assert_eq!(root.readonly(), Some(true));
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
        let ns: Vec<_> = crate::spec::namespaces(&spec).iter().map(|n| n.typ()).collect();
        assert!(ns.contains(&LinuxNamespaceType::Network));
        assert!(!ns.contains(&LinuxNamespaceType::User));
        assert_eq!(default_spec(false), spec);
        let seccomp = spec.linux().as_ref().unwrap().seccomp().as_ref().expect("spec has Docker's default seccomp profile");
        assert_eq!(seccomp.default_errno_ret(), Some(1));
        let names: Vec<&str> = seccomp.syscalls().iter().flatten().flat_map(|s| s.names()).map(String::as_str).collect();
        // Without CAP_SYS_ADMIN: no mount, clone only with the namespace-flag mask.
        assert!(names.contains(&"read") && !names.contains(&"mount"));
        assert!(crate::seccomp::compile(seccomp).is_ok());
    }

    #[test]
    fn rootless_maps_caller_and_drops_netns() {
        let spec = round_trip(rootless_json(1000, 1001));
        let linux = spec.linux().as_ref().unwrap();
        let u = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!((u.container_id(), u.host_id(), u.size()), (0, 1000, 1));
        let g = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!((g.container_id(), g.host_id(), g.size()), (0, 1001, 1));
        assert!(linux.resources().is_none());
        let ns: Vec<_> = crate::spec::namespaces(&spec).iter().map(|n| n.typ()).collect();
        assert!(ns.contains(&LinuxNamespaceType::User));
        assert!(!ns.contains(&LinuxNamespaceType::Network));
        let mounts = spec.mounts().as_ref().unwrap();
        let sys = mounts.iter().find(|m| m.destination().to_str() == Some("/sys")).unwrap();
        assert_eq!(sys.typ().as_deref(), Some("none"));
        assert!(sys.options().as_ref().unwrap().contains(&"rbind".to_string()));
        assert!(mounts.iter().all(|m| m.destination().to_str() != Some("/sys/fs/cgroup")));
        for m in mounts {
            for o in m.options().iter().flatten() {
                assert!(!o.starts_with("gid=") && !o.starts_with("uid="), "{o}");
            }
        }
    }
}
