//! Rootless containers: a throwaway unprivileged user (with a delegated range in /etc/subuid and
//! /etc/subgid) runs `skiff-runtime` and the seed's experiments. Needs root to make the user;
//! skipped otherwise. The tests run one at a time (they share /etc/subuid and /etc/subgid,
//! which are restored byte for byte afterwards).

mod common;

mod rootless_user;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::cgroups::{CgroupLayout, Kind};
use common::*;
use rootless_user::*;
use serde_json::{json, Value};

/// base_config with a user namespace: container root is the user; 1..65536 the range.
fn rootless_config(u: &User, script: &str) -> Value {
    let mut cfg = base_config(&["sh", "-c", script]);
    cfg["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1}, {"containerID": 1, "hostID": RANGE_START, "size": RANGE_SIZE - 1}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1}, {"containerID": 1, "hostID": RANGE_START, "size": RANGE_SIZE - 1}]);
    cfg
}

fn run_fg(u: &User, id: &str, bundle: &Path) -> (i32, String, String) {
    let o = u.runtime(&["run", "--bundle", bundle.to_str().unwrap(), id], true);
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn uts_pid_and_net_experiments_as_an_unprivileged_user() {
    if skip_rootless() {
        return;
    }
    let u = User::new();
    let host = nix::unistd::gethostname().unwrap();
    let mut cfg = rootless_config(&u, "hostname; hostname changed-inside; hostname; echo $$; ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1");
    cfg["hostname"] = json!("rl-uts");
    // Nothing is delegated on this host: the limit is ignored with a warning, as runc does.
    cfg["linux"]["resources"] = json!({"pids": {"limit": 100}});
    let b = u.bundle("uts", &cfg);
    let id = unique_id("rl-uts");
    let (code, out, err) = run_fg(&u, &id, &b);
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["rl-uts", "changed-inside", "1", "lo", "lo"], "{out}\n{err}");
    assert_eq!(nix::unistd::gethostname().unwrap(), host);
    assert!(err.contains("linux.resources are ignored"), "{err}");
    // The state went to $XDG_RUNTIME_DIR/skiff, and nothing of the container is left.
    assert!(u.path("xdg/skiff").is_dir());
    u.assert_clean(&id);
}

#[test]
fn user_root_inside_is_the_user_outside_and_cannot_write_root_files() {
    if skip_rootless() {
        return;
    }
    let u = User::new();
    let host_dir = u.path("hostdir");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("root-owned"), "x").unwrap();
    std::fs::set_permissions(&host_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(host_dir.join("root-owned"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let script = "id -u; id -g; cat /proc/self/uid_map | wc -l; cat /hostdir/root-owned; echo; \
                  echo pwned > /hostdir/root-owned 2>/dev/null && echo WROTE; touch /hostdir/new 2>/dev/null && echo CREATED; \
                  echo done; sleep 60";
    // Output goes to a file in the rootfs: the container outlives the detached `run`.
    let mut cfg = rootless_config(&u, &format!("({script}) > /tmp/out 2>&1"));
    cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hostdir", "type": "bind", "source": host_dir, "options": ["rbind"]}));
    let b = u.bundle("user", &cfg);
    std::fs::create_dir(b.join("rootfs/hostdir")).unwrap();
    u.chown(&b.join("rootfs/hostdir"));
    let id = unique_id("rl-user");
    let out_file = b.join("rootfs/tmp/out");
    u.ok(&["run", "-d", "--bundle", b.to_str().unwrap(), &id]);
    let mut text = String::new();
    for _ in 0..500 {
        text = std::fs::read_to_string(&out_file).unwrap_or_default();
        if text.contains("done") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = u.init_pid(&id);
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(status_uid(&st), Some(u.uid), "host view of the container's root: {st}");
    // uid 0 and gid 0 inside; two uid map lines: newuidmap wrote the delegated range too.
    assert!(text.starts_with("0\n0\n2\nx\n"), "inside: {text}");
    assert!(!text.contains("WROTE") && !text.contains("CREATED"), "root-owned host files were writable: {text}");
    assert_eq!(std::fs::read_to_string(host_dir.join("root-owned")).unwrap(), "x");
    assert!(!host_dir.join("new").exists());
    // exec joins the container's namespaces, user namespace first, as the same user.
    assert_eq!(u.ok(&["exec", &id, "sh", "-c", "id -u; echo $$ > /dev/null; hostname"]), "0\nskiff-test\n");
    assert!(u.ok(&["list", "-q"]).contains(&id));
    u.ok(&["kill", &id, "KILL"]);
    u.delete(&id);
    u.assert_clean(&id);
}

#[test]
fn exec_into_a_created_container_before_start() {
    // runc execs into a created container too (podman's healthchecks and `exec` before `start`
    // do); the init is not dumpable then, and has not exec'd into its user namespace yet.
    if skip_rootless() {
        return;
    }
    let u = User::new();
    let b = u.bundle("created", &rootless_config(&u, "echo started > /tmp/started; sleep 60"));
    let id = unique_id("rl-created");
    u.ok(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(u.ok(&["state", &id]).contains("\"created\""));
    assert_eq!(u.ok(&["exec", &id, "sh", "-c", "id -u; hostname; test -e /tmp/started || echo not-started"]), "0\nskiff-test\nnot-started\n");
    // The init is dumpable for its caller, but our binary behind /proc/1/exe stays out of
    // the container's reach: it is the host's root's file, and busy.
    let before = std::fs::read(env!("CARGO_BIN_EXE_skiff-runtime")).unwrap();
    assert_eq!(u.ok(&["exec", &id, "sh", "-c", "echo x >> /proc/1/exe 2>/dev/null && echo WROTE; echo end"]), "end\n");
    assert!(std::fs::read(env!("CARGO_BIN_EXE_skiff-runtime")).unwrap() == before, "runtime binary changed");
    u.ok(&["start", &id]);
    u.ok(&["kill", &id, "KILL"]);
    u.delete(&id);
    u.assert_clean(&id);
}

#[test]
fn spec_rootless_runs_unmodified() {
    if skip_rootless() {
        return;
    }
    let u = User::new();
    let b = u.bundle("spec", &json!({}));
    std::fs::remove_file(b.join("config.json")).unwrap();
    u.ok(&["spec", "--rootless", "--bundle", b.to_str().unwrap()]);
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(b.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["linux"]["uidMappings"], json!([{"containerID": 0, "hostID": u.uid, "size": 1}]));
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(["sh", "-c", "id -u; cat /proc/self/uid_map; hostname; ls /sys/kernel >/dev/null && echo sys; cat /proc/self/setgroups"]);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let id = unique_id("rl-spec");
    let (code, out, err) = run_fg(&u, &id, &b);
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    // Own ids only (written by newuidmap/newgidmap, as the user has ranges; newgidmap denies
    // setgroups for a map of only the caller's own gid, as the kernel does for direct writes).
    assert_eq!(words, ["0", "0", &u.uid.to_string(), "1", "skiff", "sys", "deny"], "{out}\n{err}");
    u.assert_clean(&id);
}

#[test]
fn mapping_outside_the_delegated_range_is_refused_and_leaves_nothing() {
    if skip_rootless() {
        return;
    }
    let u = User::new();
    let mut cfg = rootless_config(&u, "true");
    cfg["linux"]["uidMappings"][1] = json!({"containerID": 1, "hostID": RANGE_START + RANGE_SIZE - 10, "size": 100});
    let b = u.bundle("bad", &cfg);
    let id = unique_id("rl-bad");
    let (code, _, err) = run_fg(&u, &id, &b);
    assert_ne!(code, 0);
    assert!(err.contains("linux.uidMappings[1]") && err.contains("/etc/subuid"), "{err}");
    u.assert_clean(&id);

    // Host root is never the user's to map.
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1}]);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (code, _, err) = run_fg(&u, &id, &b);
    assert_ne!(code, 0);
    assert!(err.contains("linux.gidMappings[0]") && err.contains("root"), "{err}");
    u.assert_clean(&id);

    // Only privilege may lower oom_score_adj.
    let own_adj: i64 = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap().trim().parse().unwrap();
    if own_adj > -1000 {
        cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1}]);
        cfg["process"]["oomScoreAdj"] = json!(own_adj - 1);
        std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
        let (code, _, err) = run_fg(&u, &id, &b);
        assert_ne!(code, 0);
        assert!(err.contains("process.oomScoreAdj"), "{err}");
        u.assert_clean(&id);
        cfg["process"].as_object_mut().unwrap().remove("oomScoreAdj");
    }

    // Device nodes are bind mounts of the host's: one the host lacks is named, and the
    // failure in the container's init leaves nothing behind either.
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1}]);
    cfg["linux"]["devices"] = json!([{"path": "/dev/skiff-no-such-node", "type": "c", "major": 1, "minor": 3}]);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (code, _, err) = run_fg(&u, &id, &b);
    assert_ne!(code, 0);
    assert!(err.contains("linux.devices[/dev/skiff-no-such-node]"), "{err}");
    u.assert_clean(&id);

    // Without a user namespace there is nothing an unprivileged user can run.
    let mut cfg = base_config(&["true"]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
    cfg.as_object_mut().unwrap().remove("hostname");
    std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (code, _, err) = run_fg(&u, &id, &b);
    assert_ne!(code, 0);
    assert!(err.contains("linux.namespaces") && err.contains("user namespace"), "{err}");
    u.assert_clean(&id);

    // No XDG_RUNTIME_DIR and no --root: a clear error, not a failed mkdir in /run.
    let o = u.runtime(&["list"], false);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("XDG_RUNTIME_DIR is not set"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = u.runtime_with_xdg(&["list"], Some(Path::new("/")));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("XDG_RUNTIME_DIR /: not a writable directory"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn own_id_only_without_ranges_writes_the_maps_directly() {
    if skip_rootless() {
        return;
    }
    let u = User::new();
    // Take the user's delegated range away again: only the single own-id mapping is possible.
    for (file, orig) in [("/etc/subuid", &u.subuid), ("/etc/subgid", &u.subgid)] {
        std::fs::write(file, orig.clone().unwrap_or_default()).unwrap();
    }
    let mut cfg = rootless_config(&u, "id -u; cat /proc/self/setgroups; cat /proc/self/gid_map");
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1}]);
    let b = u.bundle("direct", &cfg);
    let id = unique_id("rl-direct");
    let (code, out, err) = run_fg(&u, &id, &b);
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", "deny", "0", &u.gid.to_string(), "1"], "{out}");
    u.assert_clean(&id);
}

#[test]
fn delegated_cgroup_is_used_and_its_limits_apply() {
    if skip_rootless() {
        return;
    }
    let mut u = User::new();
    u.delegate_cgroups();
    let l = CgroupLayout::detect();
    let rel = format!("/skt-rl-{}/ctr", u.name);
    let mut cfg = rootless_config(&u, "sleep 60");
    // v1 and hybrid: relative, below the caller's own cgroup, i.e. inside the delegated
    // subtree. Pure v2: the caller sits in the subtree's leaf (processes only in leaves), so
    // the container's cgroup is named absolutely, beside it in the same subtree.
    cfg["linux"]["cgroupsPath"] = if l.is_v2() { json!(rel) } else { json!("ctr") };
    cfg["linux"]["resources"] = json!({"pids": {"limit": 50}});
    let b = u.bundle("cg", &cfg);
    let id = unique_id("rl-cg");
    let o = u.runtime(&["run", "-d", "--bundle", b.to_str().unwrap(), &id], true);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("cannot write cgroup"), "{err}");
    let pid = u.init_pid(&id);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    if !l.is_v2() {
        assert!(cg.lines().any(|l| l.contains(":pids:") && l.ends_with(&rel)), "{cg}");
    }
    if l.kind != Kind::V1 {
        assert!(cg.lines().any(|l| l == format!("0::{rel}")), "{cg}");
    }
    let pids_dir = l.mount_of("pids").expect("a pids controller").dir.join(rel.trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(pids_dir.join("pids.max")).unwrap().trim(), "50");
    u.delete(&id);
    assert!(!pids_dir.exists(), "the container's cgroup was left behind");
    u.assert_clean(&id);
}
