//! seccomp on real containers: rules apply to the container's program and to `exec`, the filter
//! goes on last (a profile that blocks execve and the runtime's own setup syscalls still
//! starts), and a broken profile is a clear error that leaves nothing behind.

mod common;

use common::*;
use serde_json::json;

fn with_profile(script: &str, profile: serde_json::Value) -> serde_json::Value {
    let mut cfg = base_config(&["sh", "-c", script]);
    cfg["linux"]["seccomp"] = profile;
    cfg
}

#[test]
fn errno_rule_blocks_the_syscall_inside() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["no_such_syscall_in_any_kernel"], "action": "SCMP_ACT_ERRNO"}
    ]});
    let b = Bundle::new(&with_profile("mkdir /tmp/d 2>&1; echo rc=$?; echo still-running", profile));
    let id = unique_id("secc");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Permission denied") && out.contains("rc=1"), "mkdir was not blocked with EACCES: {out}");
    assert!(out.contains("still-running"), "{out}");
    assert!(err.contains("no_such_syscall_in_any_kernel"), "unknown syscall not reported: {err}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn filter_goes_on_last_so_blocking_execve_and_setup_syscalls_still_starts() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    // execve for the container's own later execs, and syscalls the runtime uses to set the
    // process up (user switch, capabilities, closing fds): all before the filter is loaded.
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["execve", "capset", "setresuid", "setresgid", "setgroups", "close_range"], "action": "SCMP_ACT_ERRNO"}
    ]});
    let b = Bundle::new(&with_profile("echo started; /bin/true; echo exec-rc=$?", profile));
    let id = unique_id("secexec");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("started"), "container did not start: {out} {err}");
    assert!(out.contains("exec-rc=126") || out.contains("exec-rc=127"), "execve inside was not blocked: {out}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn exec_gets_the_containers_filter() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
    ]});
    let b = Bundle::new(&with_profile("sleep 30", profile));
    let id = unique_id("secx");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = rt.run(&["exec", &id, "mkdir", "/tmp/d"]);
    assert_ne!(out.status.code(), Some(0), "mkdir ran unfiltered in exec: {}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"), "{}", String::from_utf8_lossy(&out.stderr));
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

#[test]
fn broken_profiles_are_refused_by_field() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let cases = [
        (json!({"defaultAction": "SCMP_ACT_EXPLODE"}), "linux.seccomp.defaultAction"),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}), "linux.seccomp.architectures[0]"),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]}]}), "linux.seccomp.syscalls[0].args[0].index"),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}), "linux.seccomp.listenerPath"),
    ];
    for (profile, field) in cases {
        let b = Bundle::new(&with_profile("true", profile));
        let id = unique_id("secbad");
        let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
        assert!(err.contains(field), "error does not name {field}: {err}");
        assert_no_leftovers(&rt, &id);
    }
}

#[path = "seccomp/default_profile.rs"]
mod default_profile;
#[path = "seccomp/notify.rs"]
mod notify;
#[path = "seccomp/old_era.rs"]
mod old_era;
