//! The OCI `config.json` of a container, made from its record the way Docker's daemon makes
//! it: Docker's default capabilities, seccomp profile, masked and read-only paths, devices and
//! mounts, then what the user asked for.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::record::{ContainerRecord, MountPoint};
use crate::users::ExecUser;

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init`'s init comes from on the host (Debian's `tini`), and where it goes.
pub const INIT_SOURCES: &[&str] = &["/usr/bin/tini-static", "/usr/bin/tini", "/usr/bin/docker-init"];
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Capability names as the runtime wants them (`CAP_X`), from Docker's forms (`x`, `CAP_X`).
pub fn cap_name(s: &str) -> String {
    let up = s.to_ascii_uppercase();
    if up.starts_with("CAP_") || up == "ALL" {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capabilities of the container's process: Docker's defaults (or every capability the
/// host has, for `--privileged`), plus `--cap-add`, minus `--cap-drop` (`ALL` allowed in
/// either).
pub fn capabilities(rec: &ContainerRecord) -> Result<Vec<String>> {
    let host: Vec<String> = host_caps();
    if rec.host_config.privileged {
        return Ok(host);
    }
    let add: Vec<String> = rec.host_config.cap_add.iter().map(|c| cap_name(c)).collect();
    let drop: Vec<String> = rec.host_config.cap_drop.iter().map(|c| cap_name(c)).collect();
    for c in add.iter().chain(drop.iter()) {
        if c != "ALL" && c.parse::<caps::Capability>().is_err() {
            return Err(Error::Invalid(format!("invalid capability: {}", c.trim_start_matches("CAP_"))));
        }
    }
    let mut set: Vec<String> = if add.iter().any(|c| c == "ALL") {
        host.clone()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    for c in &add {
        if c != "ALL" && !set.contains(c) {
            set.push(c.clone());
        }
    }
    if drop.iter().any(|c| c == "ALL") {
        set.retain(|c| add.contains(c));
    } else {
        set.retain(|c| !drop.contains(c));
    }
    Ok(set)
}

/// The capabilities in our own bounding set (what a privileged container can get).
fn host_caps() -> Vec<String> {
    match caps::read(None, caps::CapSet::Bounding) {
        Ok(set) => {
            let mut v: Vec<String> = set.iter().map(|c| c.to_string()).collect();
            v.sort();
            v
        }
        Err(_) => DEFAULT_CAPS.iter().map(|s| s.to_string()).collect(),
    }
}

/// The environment: PATH (image or default), HOSTNAME, TERM for a tty, the image's, the
/// user's (a later `K=V` replaces an earlier `K`), HOME from the user's passwd entry if unset.
pub fn environment(rec: &ContainerRecord, image_env: &[String], user: &ExecUser) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let set = |kv: &str, env: &mut Vec<String>| {
        let key = kv.split('=').next().unwrap_or(kv);
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(e) => *e = kv.to_string(),
            None => env.push(kv.to_string()),
        }
    };
    if !image_env.iter().any(|e| e.starts_with("PATH=")) {
        set(DEFAULT_PATH, &mut env);
    }
    set(&format!("HOSTNAME={}", rec.config.hostname), &mut env);
    if rec.config.tty {
        set("TERM=xterm", &mut env);
    }
    for e in image_env.iter().chain(rec.config.env.iter()) {
        set(e, &mut env);
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    env
}

/// Everything the spec needs that is not in the record.
pub struct Inputs<'a> {
    pub rootfs: &'a Path,
    pub dir: &'a crate::layout::ContainerDir,
    pub user: &'a ExecUser,
    /// The process's environment (see [`environment`]).
    pub env: Vec<String>,
    pub cwd: String,
    /// A seccomp profile from `--security-opt seccomp=FILE`, already read.
    pub seccomp_file: Option<Value>,
    pub rootless: bool,
    /// A network namespace to join (`--network container:OTHER`).
    pub netns: Option<String>,
}

pub fn build(rec: &ContainerRecord, inp: &Inputs) -> Result<Value> {
    let caps = capabilities(rec)?;
    let hc = &rec.host_config;
    let no_new_privs = hc
        .security_opt
        .iter()
        .any(|o| o == "no-new-privileges" || o == "no-new-privileges=true" || o == "no-new-privileges:true");
    let mut args = rec.argv();
    if args.is_empty() {
        return Err(Error::Invalid("no command specified".into()));
    }
    if hc.init == Some(true) {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let rlimits: Vec<Value> = hc
        .ulimits
        .iter()
        .map(|u| json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "soft": u.soft as u64, "hard": u.hard as u64}))
        .collect();
    let mut process = json!({
        "terminal": rec.config.tty,
        "user": {"uid": inp.user.uid, "gid": inp.user.gid},
        "args": args,
        "env": inp.env,
        "cwd": inp.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privs,
        "oomScoreAdj": 0,
    });
    if !inp.user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(inp.user.additional_gids);
    }
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }
    let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"}), json!({"type": "mount"})];
    match &inp.netns {
        Some(path) => namespaces.push(json!({"type": "network", "path": path})),
        None if hc.network_mode != "host" => namespaces.push(json!({"type": "network"})),
        None => {}
    }
    if inp.rootless {
        // Nested in the rootless user namespace, mapping all of its ids (see `rootless`).
        namespaces.push(json!({"type": "user"}));
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": format!("/skiff-{}", rec.id),
        "resources": resources(rec),
    });
    if inp.rootless {
        linux["uidMappings"] = crate::rootless::identity_maps("uid_map");
        linux["gidMappings"] = crate::rootless::identity_maps("gid_map");
    }
    if !hc.privileged {
        linux["maskedPaths"] = json!(skiff_core::template::MASKED_PATHS);
        linux["readonlyPaths"] = json!(skiff_core::template::READONLY_PATHS);
    }
    if let Some(sc) = seccomp(rec, &caps, inp.seccomp_file.as_ref())? {
        linux["seccomp"] = sc;
    }
    if hc.privileged {
        linux["devices"] = json!(host_devices());
    }
    Ok(json!({
        "ociVersion": skiff_core::spec::OCI_VERSION,
        "process": process,
        "root": {"path": inp.rootfs, "readonly": hc.read_only_rootfs},
        "hostname": rec.config.hostname,
        "mounts": mounts(rec, inp)?,
        "linux": linux,
    }))
}

/// Docker's default device rules: deny all, then the usual character devices.
pub(crate) fn resources(rec: &ContainerRecord) -> Value {
    let hc = &rec.host_config;
    let dev = |t: &str, major: i64, minor: Option<i64>, access: &str| {
        let mut d = json!({"allow": true, "type": t, "major": major, "access": access});
        if let Some(m) = minor {
            d["minor"] = json!(m);
        }
        d
    };
    let devices = if hc.privileged {
        vec![json!({"allow": true, "access": "rwm"})]
    } else {
        vec![
            json!({"allow": false, "access": "rwm"}),
            json!({"allow": true, "type": "c", "access": "m"}),
            json!({"allow": true, "type": "b", "access": "m"}),
            dev("c", 1, Some(3), "rwm"),
            dev("c", 1, Some(5), "rwm"),
            dev("c", 1, Some(7), "rwm"),
            dev("c", 1, Some(8), "rwm"),
            dev("c", 1, Some(9), "rwm"),
            dev("c", 5, Some(0), "rwm"),
            dev("c", 5, Some(1), "rwm"),
            dev("c", 5, Some(2), "rwm"),
            dev("c", 136, None, "rwm"),
            dev("c", 10, Some(200), "rwm"),
        ]
    };
    let mut r = json!({"devices": devices});
    if hc.memory > 0 {
        r["memory"] = json!({"limit": hc.memory});
        if hc.memory_swap != 0 {
            r["memory"]["swap"] = json!(hc.memory_swap);
        }
    }
    let mut cpu = serde_json::Map::new();
    if hc.nano_cpus > 0 {
        cpu.insert("period".into(), json!(100_000u64));
        cpu.insert("quota".into(), json!(hc.nano_cpus / 10_000));
    }
    if hc.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(hc.cpu_shares));
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(hc.cpuset_cpus));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = hc.pids_limit {
        if p > 0 {
            r["pids"] = json!({"limit": p});
        }
    }
    r
}

/// Every character and block device directly under the host's /dev (for `--privileged`).
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/dev") else { return out };
    for e in rd.flatten() {
        let Ok(md) = std::fs::symlink_metadata(e.path()) else { continue };
        let ft = md.file_type();
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            continue;
        };
        let name = e.file_name().to_string_lossy().into_owned();
        // The container has its own pty instance and console.
        if matches!(name.as_str(), "ptmx" | "console" | "tty") {
            continue;
        }
        let rdev = md.rdev();
        out.push(json!({
            "path": format!("/dev/{name}"), "type": kind,
            "major": nix::sys::stat::major(rdev), "minor": nix::sys::stat::minor(rdev),
            "fileMode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid(),
        }));
    }
    out
}

fn seccomp(rec: &ContainerRecord, caps: &[String], file: Option<&Value>) -> Result<Option<Value>> {
    let opt = rec
        .host_config
        .security_opt
        .iter()
        .find_map(|o| o.strip_prefix("seccomp=").or_else(|| o.strip_prefix("seccomp:")));
    if rec.host_config.privileged || opt == Some("unconfined") {
        return Ok(None);
    }
    if let Some(profile) = file {
        return crate::spec::docker_profile(profile, caps).map(Some);
    }
    let p = skiff_core::seccomp::default_profile(caps, skiff_core::seccomp::native_arch());
    Ok(Some(serde_json::to_value(p).map_err(|e| Error::Other(e.to_string()))?))
}

/// Converts a seccomp profile in Docker's format (`defaultAction`, `archMap` or
/// `architectures`, `syscalls` with `names`, `action`, `args`, `includes`/`excludes` by
/// capability) into the runtime spec's `linux.seccomp`.
pub fn docker_profile(p: &Value, caps: &[String]) -> Result<Value> {
    let bad = |m: &str| Error::Invalid(format!("invalid seccomp profile: {m}"));
    let default_action = p.get("defaultAction").and_then(Value::as_str).ok_or_else(|| bad("missing defaultAction"))?;
    let mut out = json!({"defaultAction": default_action});
    if let Some(e) = p.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = e.clone();
    }
    let native = skiff_core::seccomp::native_arch();
    let mut archs: Vec<Value> = Vec::new();
    if let Some(map) = p.get("archMap").and_then(Value::as_array) {
        for m in map {
            if m.get("architecture").and_then(Value::as_str) == Some(native) {
                archs.push(json!(native));
                if let Some(subs) = m.get("subArchitectures").and_then(Value::as_array) {
                    archs.extend(subs.iter().cloned());
                }
            }
        }
    } else if let Some(a) = p.get("architectures").and_then(Value::as_array) {
        archs = a.clone();
    }
    if !archs.is_empty() {
        out["architectures"] = json!(archs);
    }
    let caps_hold = |v: Option<&Value>| -> bool {
        v.and_then(|v| v.get("caps"))
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().filter_map(Value::as_str).all(|c| caps.iter().any(|h| h == c)))
    };
    let mut syscalls = Vec::new();
    for s in p.get("syscalls").and_then(Value::as_array).into_iter().flatten() {
        let inc = s.get("includes");
        if inc.and_then(|i| i.get("caps")).is_some() && !caps_hold(inc) {
            continue;
        }
        if s.get("excludes").and_then(|e| e.get("caps")).is_some() && caps_hold(s.get("excludes")) {
            continue;
        }
        let names = match (s.get("names"), s.get("name")) {
            (Some(n), _) => n.clone(),
            (None, Some(n)) => json!([n]),
            _ => return Err(bad("a syscalls entry has no names")),
        };
        let mut e = json!({"names": names, "action": s.get("action").cloned().ok_or_else(|| bad("a syscalls entry has no action"))?});
        for k in ["args", "errnoRet"] {
            if let Some(v) = s.get(k).filter(|v| !v.is_null()) {
                e[k] = v.clone();
            }
        }
        syscalls.push(e);
    }
    out["syscalls"] = json!(syscalls);
    for k in ["flags", "listenerPath", "listenerMetadata"] {
        if let Some(v) = p.get(k).filter(|v| !v.is_null()) {
            out[k] = v.clone();
        }
    }
    Ok(out)
}

fn mounts(rec: &ContainerRecord, inp: &Inputs) -> Result<Vec<Value>> {
    let hc = &rec.host_config;
    let sys_opts = if hc.privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    if inp.rootless {
        // sysfs may be mounted only by the owner of the network namespace: ours with a
        // network namespace of its own, the host's otherwise (then it is bound).
        if hc.network_mode == "host" {
            m.push(json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
        } else {
            m.push(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}));
        }
        for o in m.iter_mut() {
            if let Some(opts) = o.get_mut("options").and_then(Value::as_array_mut) {
                opts.retain(|x| x.as_str().is_none_or(|s| !s.starts_with("gid=")));
            }
        }
    } else {
        m.push(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}));
        let cg_opts = if hc.privileged {
            json!(["nosuid", "noexec", "nodev", "relatime"])
        } else {
            json!(["nosuid", "noexec", "nodev", "relatime", "ro"])
        };
        m.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": cg_opts}));
    }
    let ro_etc = if hc.read_only_rootfs { "ro" } else { "rw" };
    for (dest, src) in [
        ("/etc/resolv.conf", inp.dir.resolv()),
        ("/etc/hostname", inp.dir.hostname()),
        ("/etc/hosts", inp.dir.hosts()),
    ] {
        if user_covers(&rec.mounts, dest) {
            continue;
        }
        m.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate", ro_etc]}));
    }
    if hc.init == Some(true) {
        let src = INIT_SOURCES.iter().find(|p| Path::new(p).exists()).ok_or_else(|| {
            Error::Invalid(format!(
                "--init: no init binary on this host (looked for {}; apt-get install tini)",
                INIT_SOURCES.join(", ")
            ))
        })?;
        m.push(json!({"destination": INIT_PATH, "type": "bind", "source": src, "options": ["bind", "ro", "nosuid", "nodev"]}));
    }
    // User mounts last, parents before children.
    let mut user: Vec<&MountPoint> = rec.mounts.iter().collect();
    user.sort_by_key(|mp| Path::new(&mp.destination).components().count());
    for mp in user {
        m.push(user_mount(mp));
    }
    Ok(m)
}

fn user_covers(mounts: &[MountPoint], dest: &str) -> bool {
    mounts.iter().any(|m| m.destination == dest)
}

fn user_mount(mp: &MountPoint) -> Value {
    if mp.kind == "tmpfs" {
        let mut opts = vec![json!("nosuid"), json!("nodev"), json!("noexec")];
        opts.extend(mp.options.iter().map(|o| json!(o)));
        if !mp.rw {
            opts.push(json!("ro"));
        }
        return json!({"destination": mp.destination, "type": "tmpfs", "source": "tmpfs", "options": opts});
    }
    let mut opts = vec![json!("rbind"), json!(if mp.rw { "rw" } else { "ro" })];
    let prop = if mp.propagation.is_empty() { "rprivate" } else { &mp.propagation };
    opts.push(json!(prop));
    json!({"destination": mp.destination, "type": "bind", "source": mp.source, "options": opts})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> ContainerRecord {
        let mut r = ContainerRecord {
            id: "abc".into(),
            ..Default::default()
        };
        r.config.cmd = vec!["sh".into()];
        r.config.hostname = "abc".into();
        r
    }

    #[test]
    fn caps_add_drop_all() {
        let mut r = rec();
        assert_eq!(capabilities(&r).unwrap().len(), DEFAULT_CAPS.len());
        r.host_config.cap_drop = vec!["ALL".into()];
        r.host_config.cap_add = vec!["net_admin".into(), "chown".into()];
        assert_eq!(capabilities(&r).unwrap(), vec!["CAP_CHOWN".to_string(), "CAP_NET_ADMIN".to_string()]);
        r.host_config.cap_drop = vec!["CAP_KILL".into()];
        r.host_config.cap_add = vec![];
        let c = capabilities(&r).unwrap();
        assert!(!c.contains(&"CAP_KILL".to_string()) && c.contains(&"CAP_CHOWN".to_string()));
        r.host_config.cap_add = vec!["bogus".into()];
        assert_eq!(capabilities(&r).unwrap_err().to_string(), "invalid capability: BOGUS");
    }

    #[test]
    fn env_order_and_override() {
        let mut r = rec();
        r.config.tty = true;
        r.config.env = vec!["A=2".into(), "PATH=/x".into()];
        let u = ExecUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        };
        let env = environment(&r, &["A=1".into(), "B=1".into()], &u);
        assert_eq!(env, vec!["PATH=/x", "HOSTNAME=abc", "TERM=xterm", "A=2", "B=1", "HOME=/root"]);
    }

    #[test]
    fn docker_profile_resolves_caps_and_arch() {
        let p = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": skiff_core::seccomp::native_arch(), "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["reboot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_BOOT"]}},
                {"names": ["chown"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_BOOT"]}}
            ]
        });
        let out = docker_profile(&p, &["CAP_CHOWN".into()]).unwrap();
        let names: Vec<String> = out["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
            .collect();
        assert_eq!(names, vec!["read", "write", "chown"]);
        assert_eq!(out["architectures"].as_array().unwrap().len(), 2);
        assert!(docker_profile(&json!({"syscalls": []}), &[]).is_err());
    }
}
