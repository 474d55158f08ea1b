//! The process name (`/proc/PID/comm`, what ps, top, pgrep, killall and `docker top` show) is
//! the name the program was asked by, as with runc: `cat`, not `busybox` behind the applet
//! link. Scripts still run (they need the exec by path).

mod common;

use common::*;

#[test]
fn programs_are_named_as_asked_for() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    // The child runs /bin/sleep by path: by bare name busybox sh may run the applet itself or
    // re-exec /proc/self/exe (comm "exe"), which is busybox's choice and not the runtime's. The
    // loop waits out the moment between the child's fork and its exec, when it is still `sh`.
    let script = "cat /proc/self/comm; echo $(cat /proc/$$/comm)-is-pid1; /bin/sleep 30 & \
                  while [ \"$(cat /proc/$!/comm)\" = sh ]; do :; done; ps -o comm; kill $!";
    let b = Bundle::new(&base_config(&["sh", "-c", script]));
    let id = unique_id("comm");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[..2], ["cat", "sh-is-pid1"], "{out}");
    assert_eq!(lines[2..], ["COMMAND", "sh", "sleep", "ps"], "ps -o comm: {out}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn exec_and_scripts_keep_their_names() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = base_config(&["sleep", "30"]);
    cfg["process"]["noNewPrivileges"] = serde_json::json!(false);
    let b = Bundle::new(&cfg);
    std::fs::write(b.rootfs().join("bin/myscript"), "#!/bin/sh\necho script-ran $(cat /proc/$$/comm)\n").unwrap();
    std::fs::set_permissions(b.rootfs().join("bin/myscript"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let id = unique_id("commx");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    // `run -d` returns once the init was told to start, maybe before its execve: wait for it
    // (runc's init is `runc:[2:INIT]` in that window).
    let init = rt.run(&["exec", &id, "sh", "-c", "i=0; while [ \"$(cat /proc/1/comm)\" != sleep ] && [ $i -lt 500 ]; do i=$((i+1)); usleep 10000; done; cat /proc/1/comm"]);
    let own = rt.run(&["exec", &id, "/bin/cat", "/proc/self/comm"]);
    let script = rt.run(&["exec", &id, "myscript"]);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
    let out = |o: &std::process::Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(out(&init), "sleep\n");
    assert_eq!(out(&own), "cat\n");
    assert_eq!(out(&script), "script-ran myscript\n");
}
