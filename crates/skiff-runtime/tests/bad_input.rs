//! Bad input gets a clear error, a non-zero exit, and leaves nothing behind.

mod common;

use common::*;
use serde_json::json;

fn create_fails(rt: &Runtime, bundle: &std::path::Path, id: &str) -> String {
    let err = rt.fails(&["create", "--bundle", bundle.to_str().unwrap(), id]);
    assert_no_leftovers(rt, id);
    err
}

#[test]
fn missing_config() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["true"]));
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    let id = unique_id("noconf");
    let err = create_fails(&rt, b.path(), &id);
    assert!(err.contains("config.json") && err.contains("No such file"), "{err}");
}

#[test]
fn malformed_config_names_the_json_path() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = base_config(&["true"]);
    cfg["process"]["args"] = json!([1, 2]);
    let b = Bundle::new(&cfg);
    let err = create_fails(&rt, b.path(), &unique_id("badtype"));
    assert!(err.contains("process.args[0]") && err.contains("invalid type"), "{err}");
    std::fs::write(b.path().join("config.json"), "{\"ociVersion\": \"1.0.2\", ").unwrap();
    let err = create_fails(&rt, b.path(), &unique_id("trunc"));
    assert!(err.contains("invalid JSON"), "{err}");
    let mut cfg = base_config(&["true"]);
    cfg["linux"]["namespaces"] = json!([{"type": "pdi"}]);
    b.write_config(&cfg);
    let err = create_fails(&rt, b.path(), &unique_id("badns"));
    assert!(err.contains("linux.namespaces[0].type") && err.contains("pdi"), "{err}");
    let mut cfg = base_config(&["true"]);
    cfg["ociVersion"] = json!("2.0.0");
    b.write_config(&cfg);
    let err = create_fails(&rt, b.path(), &unique_id("ver"));
    assert!(err.contains("ociVersion"), "{err}");
}

#[test]
fn newer_spec_versions_are_accepted() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    for v in ["1.0.0", "1.1.0", "1.2.0", "1.3.0"] {
        let mut cfg = base_config(&["true"]);
        cfg["ociVersion"] = json!(v);
        let b = Bundle::new(&cfg);
        let (code, _, err) = rt.run_container(&unique_id("ver"), &b);
        assert_eq!(code, 0, "ociVersion {v}: {err}");
    }
}

#[test]
fn missing_bundle_and_rootfs() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("nobundle");
    let err = rt.fails(&["create", "--bundle", "/nonexistent/bundle", &id]);
    assert!(err.contains("/nonexistent/bundle"), "{err}");
    assert_no_leftovers(&rt, &id);
    let b = Bundle::new(&base_config(&["true"]));
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    let err = create_fails(&rt, b.path(), &unique_id("norootfs"));
    assert!(err.contains("root.path") && err.contains("rootfs"), "{err}");
}

#[test]
fn duplicate_and_invalid_ids() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["sleep", "60"]));
    let id = unique_id("dup");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("already exists"), "{err}");
    // The first container is untouched.
    assert_eq!(rt.state(&id)["pid"].as_i64().unwrap(), pid);
    assert_eq!(rt.status(&id), "created");
    rt.ok(&["delete", "--force", &id]);
    for bad in ["a/b", "..", ".", "../escape", ""] {
        let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), bad]);
        assert!(err.contains("invalid container id") || err.contains("required"), "{bad:?}: {err}");
    }
    assert!(!rt.root.path().parent().unwrap().join("escape").exists());
    assert_eq!(std::fs::read_dir(rt.root.path()).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn unknown_signal() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["sleep", "60"]));
    let id = unique_id("sig");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let err = rt.fails(&["kill", &id, "SIGBOGUS"]);
    assert!(err.contains("unknown signal"), "{err}");
    assert_eq!(rt.status(&id), "running");
    let err = rt.fails(&["delete", &id]);
    assert!(err.contains("not stopped"), "{err}");
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["kill", &id, "9"]);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

#[test]
fn missing_program_fails_at_create() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["/no/such/program"]));
    let err = create_fails(&rt, b.path(), &unique_id("noprog"));
    assert!(err.contains("/no/such/program"), "{err}");
}

#[test]
fn non_namespaced_sysctl_refused() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = base_config(&["true"]);
    cfg["linux"]["sysctl"] = json!({"kernel.panic": "1"});
    let b = Bundle::new(&cfg);
    let err = create_fails(&rt, b.path(), &unique_id("sysctl"));
    assert!(err.contains("linux.sysctl.kernel.panic"), "{err}");
    let mut cfg = base_config(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.write_config(&cfg);
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let (code, out, err) = rt.run_container(&unique_id("sysctl2"), &b);
    assert_eq!((code, out.as_str()), (0, "1\n"), "{err}");
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(), host);
}

/// A mount destination that escapes by `..` or through a symlink stays inside the rootfs.
#[test]
fn mount_destination_cannot_escape_the_rootfs() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let victim = tempfile::tempdir().unwrap();
    let victim_path = victim.path().canonicalize().unwrap();
    let mut cfg = base_config(&["true"]);
    let rel: String = "../".repeat(20) + victim_path.strip_prefix("/").unwrap().to_str().unwrap();
    let m = cfg["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": format!("/{rel}/escape-dotdot"), "type": "tmpfs", "source": "tmpfs"}));
    m.push(json!({"destination": "/evil/escape-link", "type": "tmpfs", "source": "tmpfs"}));
    let b = Bundle::new(&cfg);
    // /evil -> the victim dir, by absolute symlink: must resolve inside the rootfs.
    std::os::unix::fs::symlink(&victim_path, b.rootfs().join("evil")).unwrap();
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let id = unique_id("escape");
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(before, after, "host mount table changed");
    assert!(!victim_path.join("escape-dotdot").exists(), "mount point created outside the rootfs (..)");
    assert!(!victim_path.join("escape-link").exists(), "mount point created outside the rootfs (symlink)");
    // Either confined (created inside the rootfs) or refused: never outside.
    if out.status.success() {
        let inside = b.rootfs().join(victim_path.strip_prefix("/").unwrap());
        assert!(inside.join("escape-dotdot").exists(), "'..' destination not confined to the rootfs");
        assert!(inside.join("escape-link").exists(), "symlinked destination not resolved inside the rootfs");
    }
    assert_no_leftovers(&rt, &id);
}

/// `--systemd-cgroup` on a host without systemd: a clear error saying so and naming the cgroup
/// the driver would have used; nothing left behind.
#[test]
fn systemd_cgroup_without_systemd() {
    if skip() || std::path::Path::new("/run/systemd/system").is_dir() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = base_config(&["true"]);
    cfg["linux"]["cgroupsPath"] = json!("machine.slice:skiff:abc");
    let b = Bundle::new(&cfg);
    let id = unique_id("sysd");
    let err = rt.fails(&["--systemd-cgroup", "create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_no_leftovers(&rt, &id);
    assert!(err.contains("systemd is not running") && err.contains("/machine.slice/skiff-abc.scope"), "{err}");
    cfg["linux"]["cgroupsPath"] = json!("machine.slice:skiff");
    b.write_config(&cfg);
    let err = rt.fails(&["--systemd-cgroup", "create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_no_leftovers(&rt, &id);
    assert!(err.contains("linux.cgroupsPath") && err.contains("slice:prefix:name"), "{err}");
}
