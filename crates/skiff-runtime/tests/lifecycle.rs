//! The runc lifecycle on real containers: create/start/state/kill/delete, run, exec, list, ps,
//! hooks, terminals, namespaces by path, time offsets, id mappings.

mod common;

use common::*;
use serde_json::json;

fn sh(script: &str) -> serde_json::Value {
    base_config(&["sh", "-c", script])
}

#[test]
fn create_start_kill_delete_with_status_transitions() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&sh("sleep 60"));
    let id = unique_id("life");
    let pid_file = b.path().join("pid");
    // Options after the id, and --flag=value, as callers use both.
    rt.ok(&["create", &id, &format!("--bundle={}", b.path().display()), "--pid-file", pid_file.to_str().unwrap()]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.path().canonicalize().unwrap().to_str().unwrap());
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // The runtime process is gone; the init waits.
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // runc deletes a created container without --force: so do we.
    rt.ok(&["delete", &id]);
    assert!(!rt.state_dir(&id).exists());

    let id = unique_id("life");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    assert!(rt.fails(&["start", &id]).contains("cannot start an already running container"));
    let err = rt.fails(&["delete", &id]);
    assert!(err.contains("cannot delete container") && err.contains("not stopped: running"), "{err}");
    rt.ok(&["kill", &id, "KILL"]);
    for _ in 0..200 {
        if rt.status(&id) == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(rt.status(&id), "stopped");
    assert!(rt.fails(&["kill", &id, "TERM"]).contains("container not running"));
    assert!(rt.fails(&["start", &id]).contains("cannot start a container that has stopped"));
    rt.ok(&["delete", &id]);
    assert_no_leftovers(&rt, &id);
    assert!(rt.fails(&["state", &id]).contains("does not exist"));
    // containerd deletes twice: --force on a gone id succeeds.
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn delete_of_created_container_kills_it() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&sh("sleep 60"));
    let id = unique_id("delc");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["delete", &id]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z")).unwrap_or(false);
    assert!(!alive, "init {pid} still alive after delete");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn run_propagates_exit_status_and_signals() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&sh("echo out; echo err >&2; exit 42"));
    let id = unique_id("exit");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!((code, out.as_str(), err.as_str()), (42, "out\n", "err\n"));
    assert_no_leftovers(&rt, &id);
    // A nested shell killed by a signal: the status is 128+N.
    let b = Bundle::new(&sh("sh -c 'kill -9 $$'; exit $?"));
    let (code, _, _) = rt.run_container(&unique_id("sig"), &b);
    assert_eq!(code, 137);
    // The init killed from the host while `run` waits: run reports 137.
    let b = Bundle::new(&sh("sleep 60"));
    let id = unique_id("sigh");
    let mut child = rt.cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id]).stdin(std::process::Stdio::null()).spawn().unwrap();
    let mut pid = None;
    for _ in 0..500 {
        if let Some(p) = rt.init_pid(&id) {
            if std::path::Path::new(&rt.state_dir(&id)).join("exec.fifo").exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            pid = Some(p);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = pid.expect("container started");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(137));
    // SIGTERM to `run` is forwarded to the container's init.
    let b = Bundle::new(&sh("trap 'exit 3' TERM; echo ready > /tmp/ready; while :; do sleep 0.05; done"));
    let id = unique_id("fwd");
    let mut child = rt.cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id]).stdin(std::process::Stdio::null()).spawn().unwrap();
    wait_for_file(&b.rootfs().join("tmp/ready"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    assert_no_leftovers(&rt, &id);
}

#[test]
fn run_detach_list_ps_and_exec() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&sh("sleep 60"));
    let id = unique_id("exec");
    rt.ok(&["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(rt.status(&id), "running");
    let list: serde_json::Value = serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "running");
    assert_eq!(rt.ok(&["list", "-q"]).trim(), id);
    // exec joins every namespace: same hostname, pid namespace, cwd inside the rootfs.
    let out = rt.ok(&["exec", &id, "sh", "-c", "hostname; echo $$ > /dev/null; ps -o pid | wc -l; ls /proc/1/exe >/dev/null && cat /proc/1/comm"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "skiff-test");
    assert_eq!(lines[2], "sleep");
    let out = rt.run(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = rt.run(&["exec", "--cwd", "/tmp", "--env", "FOO=bar", &id, "sh", "-c", "echo $FOO $PWD"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bar /tmp\n");
    let err = rt.fails(&["exec", &id, "no-such-program"]);
    assert!(err.contains("no-such-program"), "{err}");
    let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(pids, vec![init]);
    rt.ok(&["kill", &id, "SIGKILL"]);
    for _ in 0..200 {
        if rt.status(&id) == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(rt.fails(&["exec", &id, "true"]).contains("stopped"));
    rt.ok(&["delete", &id]);
    assert_no_leftovers(&rt, &id);
}

#[test]
fn exec_gets_the_same_from_the_exec_record_as_from_the_state() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = sh("sleep 60");
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2000], "umask": 18});
    cfg["process"]["env"] = json!(["PATH=/bin:/usr/bin", "A=two\nlines"]);
    cfg["process"]["cwd"] = json!("/tmp");
    cfg["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
    cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    cfg["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]});
    let b = Bundle::new(&cfg);
    let id = unique_id("execrec");
    rt.ok(&["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id]);
    let record = rt.state_dir(&id).join("exec.rec");
    assert!(record.exists());
    let script = "id; ulimit -n; grep -E '^(CapEff|CapBnd)' /proc/self/status; umask; pwd; echo \"$A\"; hostname; mkdir /tmp/d 2>&1 || echo denied";
    let with = rt.ok(&["exec", &id, "sh", "-c", script]);
    assert!(with.contains("uid=1000 gid=1000 groups=2000"), "{with}");
    assert!(with.contains("\n256\n") && with.contains("/tmp\ntwo\nlines\nskiff-test\n") && with.contains("denied"), "{with}");
    // A container made by a skiff without exec records (or with an unusable one): exec reads
    // the whole state, and gets the same.
    std::fs::remove_file(&record).unwrap();
    assert_eq!(rt.ok(&["exec", &id, "sh", "-c", script]), with);
    std::fs::write(&record, "format 5:bogus\n").unwrap();
    assert_eq!(rt.ok(&["exec", &id, "sh", "-c", script]), with);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

#[test]
fn process_user_rlimits_and_capabilities_apply() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = sh("id; ulimit -n; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; umask");
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000], "umask": 18});
    cfg["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]});
    cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    let b = Bundle::new(&cfg);
    let (code, out, err) = rt.run_container(&unique_id("user"), &b);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("uid=1000 gid=1000 groups=2000,3000"), "{out}");
    assert!(out.contains("\n256\n"), "{out}");
    // CAP_KILL is bit 5 (0x20); bounding adds CAP_CHOWN (bit 0).
    assert!(out.contains("CapEff:\t0000000000000020"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000021"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.trim_end().ends_with("0022"), "{out}");
}

#[test]
fn hooks_run_in_order_with_state() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let l = log.path().display().to_string();
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo {name} $(echo $s | grep -o '\"status\":\"[a-z]*\"') >> {l}")]});
    let inside = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> /tmp/hooks")]});
    let mut cfg = sh("cat /tmp/hooks");
    cfg["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [inside("startContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    let b = Bundle::new(&cfg);
    let (code, out, err) = rt.run_container(&unique_id("hooks"), &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "startContainer\n");
    let text = std::fs::read_to_string(log.path()).unwrap();
    let order: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(order, vec!["prestart", "createRuntime", "createContainer", "poststart", "poststop"], "{text}");
    assert!(text.contains("poststop \"status\":\"stopped\""), "{text}");
    assert!(text.contains("createRuntime \"status\":\"creating\""), "{text}");
}

#[test]
fn failing_create_hook_leaves_nothing() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = sh("true");
    cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    let b = Bundle::new(&cfg);
    let id = unique_id("hookfail");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("createRuntime"), "{err}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn join_namespace_by_path_and_time_offsets() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let a = Bundle::new(&sh("sleep 60"));
    let ida = unique_id("nsa");
    rt.ok(&["run", "-d", "--bundle", a.path().to_str().unwrap(), &ida]);
    let pa = rt.state(&ida)["pid"].as_i64().unwrap();
    let mut cfg = sh("readlink /proc/self/ns/net; cat /proc/uptime");
    let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network");
    ns.push(json!({"type": "network", "path": format!("/proc/{pa}/ns/net")}));
    ns.push(json!({"type": "time"}));
    cfg["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    let b = Bundle::new(&cfg);
    let (code, out, err) = rt.run_container(&unique_id("nsb"), &b);
    assert_eq!(code, 0, "{err}");
    let theirs = std::fs::read_link(format!("/proc/{pa}/ns/net")).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), theirs.to_str().unwrap());
    let up: f64 = lines.next().unwrap().split_whitespace().next().unwrap().parse().unwrap();
    let host_up: f64 = std::fs::read_to_string("/proc/uptime").unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(up - host_up > 863000.0, "boottime offset not applied: {up} vs {host_up}");
    rt.ok(&["delete", "--force", &ida]);
}

#[test]
fn several_uid_mapping_ranges() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = sh("cat /proc/self/uid_map /proc/self/gid_map");
    cfg["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 400000, "size": 1}, {"containerID": 1, "hostID": 500001, "size": 999}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 400000, "size": 1}, {"containerID": 1, "hostID": 500001, "size": 999}]);
    let b = Bundle::new(&cfg);
    let (code, out, err) = rt.run_container(&unique_id("maps"), &b);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, vec![vec!["0", "400000", "1"], vec!["1", "500001", "999"], vec!["0", "400000", "1"], vec!["1", "500001", "999"]]);
}

#[test]
fn terminal_through_console_socket() {
    if skip() {
        return;
    }
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let rt = Runtime::new();
    let mut cfg = sh("tty; echo hello-tty");
    cfg["process"]["terminal"] = json!(true);
    let b = Bundle::new(&cfg);
    let sock_path = b.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let id = unique_id("tty");
    let sp = sock_path.clone();
    let bp = b.path().to_path_buf();
    let root = rt.root.path().to_path_buf();
    let idc = id.clone();
    let creator = std::thread::spawn(move || {
        std::process::Command::new(BIN)
            .args(["--root", root.to_str().unwrap(), "create", "--console-socket", sp.to_str().unwrap(), "--bundle", bp.to_str().unwrap(), &idc])
            .output()
            .unwrap()
    });
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), nix::sys::socket::MsgFlags::empty()).unwrap();
    let mut master = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd was just received and is ours.
            master = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let master = master.expect("pty master received");
    let out = creator.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    rt.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut text = String::new();
    let mut chunk = [0u8; 1024];
    use std::io::Read;
    while let Ok(n) = f.read(&mut chunk) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
        if text.contains("hello-tty") {
            break;
        }
    }
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("hello-tty"), "{text}");
}

#[test]
fn domainname_oom_score_adj_readonly_root_and_no_pivot() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = sh("cat /proc/sys/kernel/domainname /proc/self/oom_score_adj; touch /rootfile 2>/dev/null && echo WRITABLE; grep -c ' / ' /proc/self/mountinfo");
    cfg["domainname"] = json!("skiff.example");
    cfg["process"]["oomScoreAdj"] = json!(500);
    cfg["root"]["readonly"] = json!(true);
    let b = Bundle::new(&cfg);
    for extra in [&[][..], &["--no-pivot"][..]] {
        let id = unique_id("misc");
        let mut args = vec!["run", "--bundle", b.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&id);
        let out = rt.run(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..2], &["skiff.example", "500"], "{extra:?}: {text}");
        assert!(!text.contains("WRITABLE"), "{extra:?}: root not read-only");
        assert_no_leftovers(&rt, &id);
    }
}

/// `run` in the foreground with `terminal: true` wires the container's pty to the caller's
/// terminal: the size is copied, input reaches the container, output comes back, and the exit
/// status propagates.
#[test]
fn terminal_in_foreground_run() {
    if skip() {
        return;
    }
    use std::io::{Read, Write};
    let rt = Runtime::new();
    let mut cfg = sh("tty; stty size; read line; echo got-$line; exit 3");
    cfg["process"]["terminal"] = json!(true);
    let b = Bundle::new(&cfg);
    let size = nix::pty::Winsize { ws_row: 33, ws_col: 101, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    // openpty's fds are inheritable: keep them out of children other tests spawn meanwhile.
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
    }
    let slave = std::fs::File::from(pty.slave);
    let mut cmd = rt.cmd(&["run", "--bundle", b.path().to_str().unwrap(), &unique_id("fgtty")]);
    on_controlling_tty(&mut cmd, &slave);
    let mut child = cmd.spawn().unwrap();
    // Only the runtime may hold the slave now, so the master reads EIO once it exits.
    drop(cmd);
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    let mut text = String::new();
    let mut chunk = [0u8; 1024];
    let mut sent = false;
    // Reads until the slave side is gone (EIO) once the runtime exits.
    while let Ok(n) = master.read(&mut chunk) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
        if !sent && text.contains("33 101") {
            master.write_all(b"abc\n").unwrap();
            sent = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(text.contains("/dev/pts/0"), "container's stdin is not its pty: {text}");
    assert!(text.contains("33 101"), "window size not copied: {text}");
    assert!(text.contains("got-abc"), "input did not reach the container: {text}");
    assert_eq!(status.code(), Some(3), "{text}");
}
