//! Known container-escape classes, each attacked from inside a real container:
//! CVE-2019-5736 (`/proc/<pid>/exe` of a runtime process), CVE-2024-21626 (leaked fds and
//! `process.cwd`), CVE-2021-30465 / CVE-2019-16884 (symlinks and races on mount destinations),
//! masked and read-only paths, and what a container without CAP_SYS_ADMIN must not do.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

fn sh(script: &str) -> Value {
    base_config(&["sh", "-c", script])
}

/// Default capabilities without CAP_SYS_ADMIN (and without CAP_DAC_OVERRIDE).
fn without_sys_admin(cfg: &mut Value) {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_FOWNER"]);
    cfg["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
}

fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// CVE-2019-5736. The init of a created container is our binary until `start`, and a process
/// `exec`'d into the container sees it as pid 1. The attacker holds `/proc/1/exe` open, waits
/// for the init to exec (no process then runs the runtime binary), and reopens the held fd for
/// writing through `/proc/self/fd`. It must not even get the first open; the binary is unchanged.
#[test]
fn proc_exe_of_the_init_is_out_of_reach() {
    if skip() {
        return;
    }
    let before = std::fs::read(BIN).unwrap();
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["sleep", "60"]));
    let id = unique_id("exe");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    // O_RDWR without truncation (`<>`): a hole is detected without destroying the binary.
    let attack = r#"
        r=/tmp/result
        readlink /proc/1/exe >> $r 2>&1 || echo READLINK-DENIED >> $r
        ls /proc/1/fd/ >/dev/null 2>&1 && for f in /proc/1/fd/*; do readlink $f >> $r 2>&1 && echo FD-VISIBLE >> $r; done
        if command exec 3</proc/1/exe 2>/dev/null; then echo OPENED-EXE >> $r; else echo OPEN-DENIED >> $r; fi
        echo ready > /tmp/ready
        i=0; while [ "$(cat /proc/1/comm)" != sleep ] && [ $i -lt 500 ]; do usleep 10000; i=$((i+1)); done
        i=0; while [ $i -lt 200 ]; do
            if command exec 4<>/proc/self/fd/3; then echo REOPENED-RW >> $r; break; fi
            usleep 10000; i=$((i+1))
        done 2>/dev/null
        echo done >> $r
    "#;
    let pid_file = b.path().join("attacker.pid");
    rt.ok(&["exec", "-d", "--pid-file", pid_file.to_str().unwrap(), &id, "sh", "-c", attack]);
    wait_for_file(&b.rootfs().join("tmp/ready"));
    rt.ok(&["start", &id]);
    let result = wait_for_done(&b.rootfs().join("tmp/result"));
    // The attacker was orphaned to us (the test is a subreaper): reap it, or its zombie keeps
    // the container's pid namespace, and so the init, from finishing exit.
    reap_pid(std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap());
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
    assert!(result.contains("READLINK-DENIED") && result.contains("OPEN-DENIED"), "the init's exe was reachable: {result}");
    assert!(!result.contains("FD-VISIBLE") && !result.contains("REOPENED-RW") && !result.contains("skiff"), "{result}");
    assert!(std::fs::read(BIN).unwrap() == before, "the runtime binary changed");
}

fn wait_for_done(p: &Path) -> String {
    for _ in 0..1000 {
        let s = std::fs::read_to_string(p).unwrap_or_default();
        if s.contains("done") {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never finished: {:?}", p.display(), std::fs::read_to_string(p));
}

/// CVE-2019-5736 during `exec`: a scanner inside the container keeps opening `/proc/<pid>/exe`
/// of every process it sees while the host runs execs (each slow to start: a long PATH to
/// search), and records any exe that is not busybox (a runtime process caught before it execs).
#[test]
fn proc_exe_of_exec_children_is_out_of_reach() {
    if skip() {
        return;
    }
    let before = std::fs::read(BIN).unwrap();
    let rt = Runtime::new();
    let scan = r#"
        r=/tmp/result; : > $r
        end=$(( $(date +%s) + 60 ))
        while [ ! -e /tmp/stop ] && [ $(date +%s) -lt $end ]; do
            for p in /proc/[0-9]*; do
                [ "$p" = /proc/$$ ] && continue
                if command exec 3<$p/exe; then
                    [ /proc/self/fd/3 -ef /bin/busybox ] || { echo "FOREIGN $p" >> $r; command exec 4<>/proc/self/fd/3 && echo "RW $p" >> $r; }
                    exec 3<&- 4<&-
                fi 2>/dev/null
            done
        done
        echo done >> $r
    "#;
    let b = Bundle::new(&sh(scan));
    let id = unique_id("exescan");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let long_path = (0..15000).map(|i| format!("/n{i}")).collect::<Vec<_>>().join(":") + ":/bin";
    for _ in 0..15 {
        rt.ok(&["exec", "--env", &format!("PATH={long_path}"), &id, "true"]);
    }
    std::fs::write(b.rootfs().join("tmp/stop"), "").unwrap();
    let result = wait_for_done(&b.rootfs().join("tmp/result"));
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
    assert!(!result.contains("FOREIGN") && !result.contains("RW"), "a runtime process's exe was reachable: {result}");
    assert!(std::fs::read(BIN).unwrap() == before, "the runtime binary changed");
}

/// Runs `exec -d` and returns the exec'd process's pid.
fn exec_detached(rt: &Runtime, b: &Bundle, extra: &[&str], id: &str, fd3: Option<&std::fs::File>) -> i64 {
    let pid_file = b.path().join(format!("exec-{}.pid", unique_id("p")));
    let mut args = vec!["exec", "-d", "--pid-file", pid_file.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[id, "sleep", "60"]);
    let mut cmd = rt.cmd(&args);
    if let Some(f) = fd3 {
        with_fd3(&mut cmd, f);
    }
    // Files, not pipes: the detached process inherits them and would hold a pipe open.
    let err = tempfile::NamedTempFile::new().unwrap();
    let status = cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(err.reopen().unwrap()).status().unwrap();
    assert!(status.success(), "exec -d: {}", std::fs::read_to_string(err.path()).unwrap_or_default());
    std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap()
}

/// Kills and reaps a detached exec'd process (orphaned to the test, a subreaper): its zombie
/// would keep the container's pid namespace, and so its init, from finishing exit.
fn kill_exec(pid: i64) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    reap_pid(pid as i32);
}

/// CVE-2024-21626: only 0, 1, 2 (and preserved fds) reach the init's program and exec'd
/// processes. Listed from the host, so the listing itself opens nothing in them.
#[test]
fn no_runtime_fd_reaches_the_container() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["sleep", "60"]));
    let id = unique_id("fds");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(fds_once_execd(init), vec![0, 1, 2], "init");
    let pid = exec_detached(&rt, &b, &[], &id, None);
    assert_eq!(fds_once_execd(pid), vec![0, 1, 2], "exec");
    kill_exec(pid);
    // A preserved fd passes; nothing else does.
    let extra = tempfile::tempfile().unwrap();
    let pid = exec_detached(&rt, &b, &["--preserve-fds", "1"], &id, Some(&extra));
    assert_eq!(fds_once_execd(pid), vec![0, 1, 2, 3], "exec --preserve-fds 1");
    kill_exec(pid);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

/// Makes `f` the child's fd 3.
fn with_fd3<'a>(cmd: &'a mut std::process::Command, f: &std::fs::File) -> &'a mut std::process::Command {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = f.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe; they run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: clear it then.
            let r = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// CVE-2024-21626: `process.cwd` (and `exec --cwd`) of `/proc/self/fd/N` never leaves the
/// rootfs: either refused, or a directory inside the container. The bundle dir (the rootfs's
/// parent on the host) holds a marker that must never be listed.
#[test]
fn cwd_through_proc_self_fd_stays_inside() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&sh("true"));
    std::fs::write(b.path().join("HOST-MARKER"), "").unwrap();
    let check = |out: &std::process::Output, what: &str| {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("HOST-MARKER") && !text.contains("config.json") && !text.contains("unreachable"), "{what}: escaped: {text}");
        if out.status.success() {
            assert!(text.starts_with('/'), "{what}: {text}");
        }
    };
    for n in 3..=10 {
        let mut cfg = sh("pwd; ls -a; ls -a ..");
        cfg["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.write_config(&cfg);
        let id = unique_id("cwd");
        let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        check(&out, &format!("process.cwd fd {n}"));
        rt.run(&["delete", "--force", &id]);
        assert_no_leftovers(&rt, &id);
    }
    b.write_config(&sh("sleep 60"));
    let id = unique_id("cwd");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    for n in 3..=10 {
        let out = rt.run(&["exec", "--cwd", &format!("/proc/self/fd/{n}"), &id, "sh", "-c", "pwd; ls -a; ls -a .."]);
        check(&out, &format!("exec --cwd fd {n}"));
    }
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

/// Runs a container that must either be refused or keep `victim` and the host mount table
/// untouched.
fn assert_confined(rt: &Runtime, b: &Bundle, victim: &Path, what: &str) -> std::process::Output {
    let before = host_mounts();
    let listing = |p: &Path| std::fs::read_dir(p).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()).unwrap_or_default();
    let victim_before = listing(victim);
    let id = unique_id("mnt");
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(before, host_mounts(), "{what}: host mount table changed");
    assert_eq!(victim_before, listing(victim), "{what}: host dir {} changed", victim.display());
    assert_no_leftovers(rt, &id);
    out
}

/// CVE-2019-16884 / CVE-2021-30465: a rootfs whose /proc is a symlink out of it (absolute or
/// `..` chain), a proc mount on a symlink to another dir, and a tmpfs whose destination links
/// to the host's /tmp: all stay inside the rootfs (or are refused).
#[test]
fn symlinked_mount_destinations_stay_inside() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let victim = tempfile::tempdir().unwrap();
    let victim_path = victim.path().canonicalize().unwrap();
    std::fs::write(victim_path.join("keep"), "").unwrap();
    let dotdot = "../".repeat(20) + victim_path.strip_prefix("/").unwrap().to_str().unwrap();
    for target in [victim_path.to_str().unwrap(), dotdot.as_str()] {
        let b = Bundle::new(&sh("test -e /proc/self/status && echo PROC-OK"));
        std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
        std::os::unix::fs::symlink(target, b.rootfs().join("proc")).unwrap();
        let out = assert_confined(&rt, &b, &victim_path, &format!("/proc -> {target}"));
        if out.status.success() {
            let inside = b.rootfs().join(victim_path.strip_prefix("/").unwrap());
            assert!(inside.is_dir(), "/proc -> {target}: proc not mounted inside the rootfs");
        }
    }

    // A proc mount whose destination links to another dir of the rootfs.
    let mut cfg = sh("test -e /other/self/status && echo PROC-IN-OTHER; cat /proc/timer_list | wc -c");
    cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/myproc", "type": "proc", "source": "proc"}));
    let b = Bundle::new(&cfg);
    std::fs::create_dir(b.rootfs().join("other")).unwrap();
    std::os::unix::fs::symlink("/other", b.rootfs().join("myproc")).unwrap();
    let out = assert_confined(&rt, &b, &victim_path, "proc on /myproc -> /other");
    if out.status.success() {
        assert_eq!(String::from_utf8_lossy(&out.stdout), "PROC-IN-OTHER\n0\n", "masked paths of /proc must hold");
    }

    // A tmpfs whose destination links to the host's /tmp, absolutely and by `..`.
    let host_tmp = Path::new("/tmp");
    let marker = tempfile::Builder::new().prefix("skt-hosttmp").tempfile_in(host_tmp).unwrap();
    let mut cfg = sh("touch /hosttmp/written /dotdot/written; ls /hosttmp /dotdot");
    let m = cfg["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/hosttmp", "type": "tmpfs", "source": "tmpfs"}));
    m.push(json!({"destination": "/dotdot", "type": "tmpfs", "source": "tmpfs"}));
    let b = Bundle::new(&cfg);
    std::os::unix::fs::symlink("/tmp", b.rootfs().join("hosttmp")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../tmp", b.rootfs().join("dotdot")).unwrap();
    let out = assert_confined(&rt, &b, host_tmp, "tmpfs on /hosttmp -> /tmp");
    assert!(marker.path().exists());
    assert!(!host_tmp.join("written").exists(), "wrote into the host's /tmp");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// CVE-2021-30465: a mount destination whose parent a racer keeps swapping between a directory
/// and a symlink to a host dir (as a malicious container would in a shared volume) never puts a
/// mount or a directory on the host.
#[test]
fn raced_mount_destination_stays_inside() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let victim = tempfile::tempdir().unwrap();
    let victim_path = victim.path().canonicalize().unwrap();
    let mut cfg = sh("true");
    cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/race/sub", "type": "tmpfs", "source": "tmpfs"}));
    let b = Bundle::new(&cfg);
    let race = b.rootfs().join("race");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racer = {
        let (race, stop, victim) = (race.clone(), stop.clone(), victim_path.clone());
        std::thread::spawn(move || {
            let (dir, link) = (race.with_extension("dir"), race.with_extension("link"));
            let _ = std::fs::create_dir(&dir);
            let _ = std::fs::create_dir(dir.join("sub"));
            let _ = std::os::unix::fs::symlink(&victim, &link);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::rename(&dir, &race);
                let _ = std::fs::rename(&race, &dir);
                let _ = std::fs::rename(&link, &race);
                let _ = std::fs::rename(&race, &link);
            }
        })
    };
    let before = host_mounts();
    for _ in 0..20 {
        let id = unique_id("race");
        rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        rt.run(&["delete", "--force", &id]);
        assert_no_leftovers(&rt, &id);
        assert!(!victim_path.join("sub").exists(), "a mount point was created in the host dir");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    racer.join().unwrap();
    assert_eq!(before, host_mounts(), "host mount table changed");
}

/// Masked paths are empty, read-only paths refuse writes even for root, and without
/// CAP_SYS_ADMIN they cannot be remounted or unmasked.
#[test]
fn masked_and_readonly_paths_hold() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    // Writes are harmless on the host if they ever went through: the current value back, and
    // sysrq `h` (help).
    let script = r#"
        echo timer_list=$(cat /proc/timer_list 2>&1 | wc -c)
        echo keys=$(cat /proc/keys 2>&1 | wc -c)
        echo firmware=$(ls -A /sys/firmware | wc -l)
        echo skiff-evil > /proc/sys/kernel/hostname 2>/dev/null && echo HOSTNAME-WRITTEN
        cat /proc/sys/kernel/threads-max > /proc/sys/kernel/threads-max 2>/dev/null && echo THREADS-WRITTEN
        echo h > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ-WRITTEN
        mount -o remount,rw /proc/sys 2>/dev/null && echo REMOUNTED
        mount -o remount,rw /proc/sysrq-trigger 2>/dev/null && echo REMOUNTED
        umount /proc/timer_list 2>/dev/null && echo UNMASKED
        umount /sys/firmware 2>/dev/null && echo UNMASKED
        echo skiff-evil > /proc/sys/kernel/hostname 2>/dev/null && echo HOSTNAME-WRITTEN
        hostname
    "#;
    let mut cfg = sh(script);
    without_sys_admin(&mut cfg);
    let b = Bundle::new(&cfg);
    let (code, out, err) = rt.run_container(&unique_id("masked"), &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "timer_list=0\nkeys=0\nfirmware=0\nskiff-test\n", "{err}");
    // With CAP_SYS_ADMIN root may remount, but the paths still start out masked/read-only.
    let (code, out, err) = rt.run_container(&unique_id("masked"), &Bundle::new(&sh("cat /proc/timer_list | wc -c; echo h > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ-WRITTEN; echo x > /proc/sys/kernel/hostname 2>/dev/null && echo HOSTNAME-WRITTEN; true")));
    assert_eq!((code, out.as_str()), (0, "0\n"), "{err}");
}

/// Without CAP_SYS_ADMIN: no remount of /, no new mounts, no module loading; and a new user
/// namespace (`unshare -Ur`, which the kernel allows anyone) gives back none of it: mounts
/// inherited from the container are locked, masks stay, read-only stays read-only.
#[test]
fn no_sys_admin_means_no_mounts_modules_or_userns_way_back() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let script = r#"
        mount -o remount,rw / 2>/dev/null && echo REMOUNTED-ROOT
        touch /rootfile 2>/dev/null && echo ROOT-WRITABLE
        mount -t tmpfs t /mnt 2>/dev/null && echo MOUNTED
        insmod /tmp/dummy.ko 2>/dev/null; echo insmod=$?
        grep ^CapBnd /proc/self/status
        unshare -Ur sh -c 'mount -o remount,rw / 2>/dev/null && echo USERNS-REMOUNTED; mount -t tmpfs t /mnt 2>/dev/null && echo USERNS-MOUNTED; insmod /tmp/dummy.ko 2>/dev/null && echo USERNS-INSMOD; echo userns=$(id -u)'
        unshare -Urm sh -c '
            umount /proc/timer_list 2>/dev/null && echo USERNS-UNMASKED
            umount -l /sys/firmware 2>/dev/null && echo USERNS-UNMASKED
            mount -o remount,rw /proc/sys 2>/dev/null && echo USERNS-PROCSYS-RW
            mount -o remount,rw / 2>/dev/null && echo USERNS-ROOT-RW
            echo x > /proc/sys/kernel/hostname 2>/dev/null && echo USERNS-HOSTNAME
            echo h > /proc/sysrq-trigger 2>/dev/null && echo USERNS-SYSRQ
            echo mntns-timer_list=$(cat /proc/timer_list 2>&1 | wc -c)
            echo mntns-firmware=$(ls -A /sys/firmware | wc -l)'
        true
    "#;
    let mut cfg = sh(script);
    without_sys_admin(&mut cfg);
    // CAP_SETFCAP: the kernel lets `unshare -Ur` map uid 0 only if the unsharer held it (as
    // Docker's default set does); with it, the way back through a user namespace is open.
    for set in ["bounding", "effective", "permitted"] {
        cfg["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_SETFCAP"));
    }
    cfg["root"]["readonly"] = json!(true);
    let b = Bundle::new(&cfg);
    std::fs::write(b.rootfs().join("tmp/dummy.ko"), b"\x7fELF not really a module").unwrap();
    let (code, out, err) = rt.run_container(&unique_id("nosysadmin"), &b);
    assert_eq!(code, 0, "{err}");
    // init_module needs CAP_SYS_MODULE in the host user namespace: EPERM (ENOSYS on kernels
    // built without modules, as on the test VM).
    assert!(out.starts_with("insmod=1\nCapBnd:\t00000000a00004e9\n") || out.starts_with("insmod=38\nCapBnd:\t00000000a00004e9\n"), "{out}");
    assert!(out.ends_with("userns=0\nmntns-timer_list=0\nmntns-firmware=0\n"), "unshare -U: {out}");
    assert!(!out.contains("REMOUNTED") && !out.contains("WRITABLE") && !out.contains("MOUNTED") && !out.contains("USERNS-"), "{out}");
}
