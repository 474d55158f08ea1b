//! The seed text's six experiments (UTS, IPC, PID, mount, user, network), on real containers,
//! plus the namespace links of every kind.

mod common;

use common::*;
use serde_json::json;

fn sh(script: &str) -> serde_json::Value {
    base_config(&["sh", "-c", script])
}

#[test]
fn uts_hostname_inside_leaves_host_unchanged() {
    if skip() {
        return;
    }
    let host_before = nix::unistd::gethostname().unwrap();
    let rt = Runtime::new();
    let mut cfg = sh("hostname; hostname changed-inside; hostname; cat /proc/sys/kernel/hostname");
    cfg["hostname"] = json!("seed-uts");
    let b = Bundle::new(&cfg);
    let id = unique_id("uts");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "seed-uts\nchanged-inside\nchanged-inside\n");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_before);
    assert_no_leftovers(&rt, &id);
}

/// The keys of the System V message queues in /proc/sysvipc/msg.
fn msg_keys(text: &str) -> Vec<String> {
    text.lines().skip(1).filter_map(|l| l.split_whitespace().next().map(str::to_string)).collect()
}

#[test]
fn ipc_queues_do_not_cross_the_namespace() {
    if skip() {
        return;
    }
    // A queue made on the host is not seen inside.
    let out = std::process::Command::new("ipcmk").arg("-Q").output().expect("ipcmk");
    let text = String::from_utf8_lossy(&out.stdout);
    let msqid: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    let host_keys = msg_keys(&std::fs::read_to_string("/proc/sysvipc/msg").unwrap());
    assert!(!host_keys.is_empty());
    let rt = Runtime::new();
    let b = Bundle::new(&sh("cat /proc/sysvipc/msg"));
    let id = unique_id("ipc");
    let (code, inside, err) = rt.run_container(&id, &b);
    let _ = std::process::Command::new("ipcrm").args(["-q", &msqid]).status();
    assert_eq!(code, 0, "{err}");
    assert!(msg_keys(&inside).is_empty(), "host queue visible inside: {inside}");

    // And the reverse: a queue made inside (with the host's ipcmk, bind-mounted with its
    // libraries) is not seen on the host while the container runs.
    let mut cfg = sh("ipcmk -Q >/dev/null && cat /proc/sysvipc/msg > /tmp/msg && sleep 60");
    let mounts = cfg["mounts"].as_array_mut().unwrap();
    for d in ["/usr", "/lib", "/lib64"] {
        mounts.push(json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]}));
    }
    let b = Bundle::new(&cfg);
    let id = unique_id("ipc2");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let inside = wait_for_file(&b.rootfs().join("tmp/msg"));
    let keys = msg_keys(&inside);
    assert_eq!(keys.len(), 1, "{inside}");
    let host_keys = msg_keys(&std::fs::read_to_string("/proc/sysvipc/msg").unwrap());
    assert!(!host_keys.contains(&keys[0]), "container queue {} visible on host", keys[0]);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

#[test]
fn pid_echo_dollar_dollar_is_1() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&sh("echo $$"));
    let id = unique_id("pid");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "1");
}

#[test]
fn mount_proc_shows_only_container_processes_and_host_table_untouched() {
    if skip() {
        return;
    }
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let rt = Runtime::new();
    let b = Bundle::new(&sh("mount -t tmpfs none /mnt && touch /mnt/inside && ps -o pid,comm | tail -n +2"));
    let id = unique_id("mnt");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    let pids: Vec<&str> = out.lines().map(|l| l.split_whitespace().next().unwrap_or("")).collect();
    // sh (pid 1), ps and tail: nothing of the host's hundreds of processes.
    assert!(pids.contains(&"1") && pids.len() <= 3, "{out}");
    assert!(!b.rootfs().join("mnt/inside").exists(), "tmpfs mounted inside leaked to the host view");
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(before, after, "the host's mount table changed");
}

#[test]
fn user_root_inside_is_unprivileged_outside() {
    if skip() {
        return;
    }
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("root-owned"), "x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(host_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(host_dir.path().join("root-owned"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cfg = sh("id -u; id -g; cat /hostdir/root-owned; echo; echo pwned > /hostdir/root-owned 2>/dev/null && echo WROTE; touch /hostdir/new 2>/dev/null && echo CREATED; sleep 60");
    cfg["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 231072, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 231072, "size": 65536}]);
    cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hostdir", "type": "bind", "source": host_dir.path(), "options": ["rbind"]}));
    // sysfs cannot be mounted from a user namespace without its own... keep it: the net ns is ours.
    let b = Bundle::new(&cfg);
    // The rootfs belongs to host root, which the container cannot write: give the mount
    // point up front, as an engine preparing the image would.
    std::fs::create_dir(b.rootfs().join("hostdir")).unwrap();
    let id = unique_id("user");
    let rt = Runtime::new();
    let out_file = b.path().join("out");
    let out = std::fs::File::create(&out_file).unwrap();
    let status = rt
        .cmd(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id])
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success());
    let text = wait_for_file(&out_file);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let text = std::fs::read_to_string(&out_file).unwrap_or(text);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = st.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid_line.split_whitespace().nth(1) == Some("231072"), "host sees {uid_line}");
    assert!(text.starts_with("0\n0\nx\n"), "inside: {text}");
    assert!(!text.contains("WROTE") && !text.contains("CREATED"), "root-owned host files were writable: {text}");
    assert_eq!(std::fs::read_to_string(host_dir.path().join("root-owned")).unwrap(), "x");
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

#[test]
fn network_namespace_holds_only_lo() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&sh("ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1"));
    let id = unique_id("net");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, vec!["lo", "lo"], "{out}");
}

#[test]
fn every_namespace_kind_differs_from_the_host() {
    if skip() {
        return;
    }
    let mut cfg = sh("sleep 60");
    cfg["linux"]["namespaces"] = json!([{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"user"},{"type":"cgroup"},{"type":"time"}]);
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    let b = Bundle::new(&cfg);
    let rt = Runtime::new();
    let id = unique_id("allns");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["start", &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    for ns in ["uts", "ipc", "pid", "mnt", "user", "net", "cgroup", "time"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(theirs, ours, "{ns} namespace is the host's");
    }
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}
