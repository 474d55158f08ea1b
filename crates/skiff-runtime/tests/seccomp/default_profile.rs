//! Docker's default profile on real containers: busybox works, what Docker refuses is refused.
//! The containers keep CAP_SYS_ADMIN in their capability sets while the profile is resolved
//! without it, so a refusal comes from the filter, not from a missing capability (a control run
//! with the profile for CAP_SYS_ADMIN shows the same calls succeeding).

use super::*;

fn profile(caps: &[&str]) -> serde_json::Value {
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    serde_json::to_value(skiff_core::seccomp::default_profile(&caps, skiff_core::seccomp::native_arch())).unwrap()
}

const SCRIPT: &str = "ls / >/dev/null && echo ls-ok; ps >/dev/null && echo ps-ok; sh -c 'echo sub-ok'; \
    mkdir /tmp/d && echo mkdir-ok; linux32 true && echo linux32-ok; \
    unshare -U true 2>&1; echo unshare-rc=$?; \
    mount -t tmpfs t /mnt 2>&1; echo mount-rc=$?; \
    echo x > /tmp/m.ko; insmod /tmp/m.ko 2>&1; echo insmod-rc=$?";

#[test]
fn default_profile_runs_busybox_and_refuses_what_docker_refuses() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&with_profile(SCRIPT, profile(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"])));
    let id = unique_id("secdef");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{out} {err}");
    for ok in ["ls-ok", "ps-ok", "sub-ok", "mkdir-ok", "linux32-ok"] {
        assert!(out.contains(ok), "{ok} missing: {out}");
    }
    for refused in ["unshare-rc=1", "mount-rc=1", "insmod-rc=1"] {
        assert!(out.contains(refused), "{refused} missing: {out}");
    }
    assert!(out.contains("unshare: unshare(0x10000000): Operation not permitted"), "{out}");
    assert!(out.contains("mount: permission denied"), "{out}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn with_cap_sys_admin_in_the_profile_the_same_calls_succeed() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&with_profile(SCRIPT, profile(&["CAP_KILL", "CAP_SYS_ADMIN"])));
    let id = unique_id("secadm");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("unshare-rc=0") && out.contains("mount-rc=0"), "{out}");
    // No CAP_SYS_MODULE in the profile: still refused.
    assert!(out.contains("insmod-rc=1"), "{out}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn spec_writes_the_default_profile_and_its_config_runs() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["true"]));
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    let out = std::process::Command::new(BIN).arg("spec").current_dir(b.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    let sec = &cfg["linux"]["seccomp"];
    assert_eq!(sec["defaultAction"], "SCMP_ACT_ERRNO", "{sec}");
    assert_eq!(sec["defaultErrnoRet"], 1);
    assert!(sec["syscalls"].as_array().is_some_and(|s| s.len() > 5), "{sec}");
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(["sh", "-c", "mount -t tmpfs t /mnt 2>&1; echo mount-rc=$?; echo done"]);
    b.write_config(&cfg);
    let id = unique_id("secspec");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("mount-rc=1") && out.contains("done"), "{out}");
    // The compiled filter is cached in the state root (files, not container dirs).
    assert!(std::fs::read_dir(rt.root.path()).unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".bpf")));
    assert!(rt.ok(&["list", "-q"]).trim().is_empty());
    assert_no_leftovers(&rt, &id);
}
