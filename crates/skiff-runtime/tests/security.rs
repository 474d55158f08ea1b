//! Process security settings on real containers: the five capability sets, unknown capability
//! names (ignored with a warning, as in runc 1.1), `linux.personality`, `oomScoreAdj` (also in
//! a user namespace and for `exec`), and the session keyring (`--no-new-keyring`).

mod common;

use common::*;
use serde_json::json;

fn sh(script: &str) -> serde_json::Value {
    base_config(&["sh", "-c", script])
}

/// The `Cap*` lines of `/proc/<pid>/status`, as (name, hex) pairs.
fn cap_lines(status: &str) -> Vec<(String, String)> {
    status
        .lines()
        .filter(|l| l.starts_with("Cap"))
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.to_string(), v.trim().to_string())))
        .collect()
}

fn caps_of(pid: i64) -> Vec<(String, String)> {
    cap_lines(&std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status of the init"))
}

fn expect(inh: u64, prm: u64, eff: u64, bnd: u64, amb: u64) -> Vec<(String, String)> {
    [("CapInh", inh), ("CapPrm", prm), ("CapEff", eff), ("CapBnd", bnd), ("CapAmb", amb)]
        .iter()
        .map(|(k, v)| (k.to_string(), format!("{v:016x}")))
        .collect()
}

// Capability bits.
const CHOWN: u64 = 1 << 0;
const KILL: u64 = 1 << 5;
const SETUID: u64 = 1 << 7;
const NET_BIND: u64 = 1 << 10;

/// Each of the five sets is applied exactly as given. The init's sets are read while it waits
/// for `start` (after they are applied, before the exec); after the exec the kernel's rules
/// apply (for a non-root user without file capabilities: permitted = effective = ambient).
#[test]
fn five_capability_sets_are_applied_exactly() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = sh("grep ^Cap /proc/self/status");
    cfg["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETUID"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_KILL"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    for uid in [1000, 0] {
        cfg["process"]["user"] = json!({"uid": uid, "gid": uid});
        let b = Bundle::new(&cfg);
        let id = unique_id("caps5");
        rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        assert_eq!(caps_of(pid), expect(KILL | NET_BIND, KILL | NET_BIND, KILL, KILL | CHOWN | NET_BIND | SETUID, NET_BIND), "uid {uid}: init before exec");
        rt.ok(&["delete", "--force", &id]);
        assert_no_leftovers(&rt, &id);
    }
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let b = Bundle::new(&cfg);
    let (code, out, err) = rt.run_container(&unique_id("caps5"), &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cap_lines(&out), expect(KILL | NET_BIND, NET_BIND, NET_BIND, KILL | CHOWN | NET_BIND | SETUID, NET_BIND), "after exec: {out}");
}

#[test]
fn unknown_capability_is_ignored_with_a_warning_except_on_the_command_line() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    // As runc >= 1.1: an unknown name in config.json or a --process file is dropped with a
    // warning (runc's words); a typo in `exec --cap` is still refused, naming the flag.
    let mut cfg = sh("sleep 60");
    cfg["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_FOO"]);
    let b = Bundle::new(&cfg);
    let id = unique_id("capfoo");
    let out = rt.run(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("ignoring unknown or unavailable capabilities: [CAP_FOO]"), "{err}");
    let err = rt.fails(&["exec", "--cap", "CAP_KILL", "--cap", "CAP_FOO", &id, "true"]);
    assert!(err.contains("--cap[1]: unknown capability CAP_FOO"), "{err}");
    let pfile = b.path().join("process.json");
    std::fs::write(&pfile, r#"{"args":["grep","^CapAmb","/proc/self/status"],"capabilities":{"ambient":["CAP_BAR"]}}"#).unwrap();
    let out = rt.ok(&["exec", "--process", pfile.to_str().unwrap(), &id]);
    assert!(out.contains("0000000000000000"), "{out}");
    // A good --cap still works and lands in the exec'd process.
    let out = rt.ok(&["exec", "--cap", "CAP_SYS_TIME", &id, "grep", "^CapBnd", "/proc/self/status"]);
    let bnd = u64::from_str_radix(out.split_whitespace().last().unwrap(), 16).unwrap();
    assert_ne!(bnd & (1 << 25), 0, "CAP_SYS_TIME not added: {out}");
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

/// `linux.personality` reaches the container's program and exec'd processes; bad values are
/// refused naming the field.
#[test]
fn personality_is_applied_and_checked() {
    if skip() || std::env::consts::ARCH != "x86_64" {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = sh("cat /proc/self/personality; uname -m; sleep 60");
    cfg["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]});
    let b = Bundle::new(&cfg);
    let id = unique_id("pers");
    let log = b.path().join("out");
    let logf = std::fs::File::create(&log).unwrap();
    let status = rt.cmd(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]).stdout(logf).status().unwrap();
    assert!(status.success());
    let mut out = String::new();
    for _ in 0..500 {
        out = std::fs::read_to_string(&log).unwrap_or_default();
        if out.lines().count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(out, "00040008\ni686\n", "init");
    let out = rt.ok(&["exec", &id, "sh", "-c", "cat /proc/self/personality; uname -m"]);
    assert_eq!(out, "00040008\ni686\n", "exec");
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);

    cfg["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE", "BOGUS"]});
    b.write_config(&cfg);
    let id = unique_id("pers");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("linux.personality.flags[1]") && err.contains("BOGUS"), "{err}");
    assert_no_leftovers(&rt, &id);
    cfg["linux"]["personality"] = json!({"domain": "LINUX64"});
    b.write_config(&cfg);
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("linux.personality.domain"), "{err}");
    assert_no_leftovers(&rt, &id);
}

/// oomScoreAdj holds for the init (also in a user namespace, where the init is non-dumpable
/// and its /proc files belong to the host's root) and for exec'd processes.
#[test]
fn oom_score_adj_in_userns_and_exec() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = sh("cat /proc/self/oom_score_adj; sleep 60");
    cfg["process"]["oomScoreAdj"] = json!(300);
    cfg["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 400000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 400000, "size": 65536}]);
    let b = Bundle::new(&cfg);
    let id = unique_id("oom");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap(), "300\n");
    assert_eq!(rt.ok(&["exec", &id, "cat", "/proc/self/oom_score_adj"]), "300\n");
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

/// Each container gets its own session keyring `_ses.<id>` unless `--no-new-keyring`.
#[test]
fn session_keyring_and_no_new_keyring() {
    if skip() || !std::path::Path::new("/proc/keys").exists() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&sh("sleep 60"));
    for no_new in [false, true] {
        let id = unique_id("keyring");
        let mut args = vec!["create", "--bundle", b.path().to_str().unwrap()];
        if no_new {
            args.push("--no-new-keyring");
        }
        args.push(&id);
        rt.ok(&args);
        let keys = std::fs::read_to_string("/proc/keys").unwrap();
        let has = keys.lines().any(|l| l.ends_with(&format!("_ses.{id}: empty")) || l.contains(&format!(" _ses.{id}:")));
        assert_eq!(has, !no_new, "--no-new-keyring={no_new}: {keys}");
        rt.ok(&["delete", "--force", &id]);
        assert_no_leftovers(&rt, &id);
    }
}

/// On a host without AppArmor or SELinux (this one) the label fields are ignored, as runc
/// does: the container runs, and its exec attribute stays unset.
#[test]
fn lsm_labels_are_ignored_without_the_lsm() {
    if skip() || std::path::Path::new("/sys/fs/selinux/enforce").exists()
        || std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'))
    {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = base_config(&["sh", "-c", "echo ran"]);
    cfg["process"]["apparmorProfile"] = serde_json::json!("docker-default");
    cfg["process"]["selinuxLabel"] = serde_json::json!("system_u:system_r:container_t:s0:c1,c2");
    let b = Bundle::new(&cfg);
    let id = unique_id("lsm");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "ran");
    assert_no_leftovers(&rt, &id);
}
