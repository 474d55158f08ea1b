//! `skiff run` and friends on real containers: output, exit codes, options, limits.

mod common;

use common::{cgroup_dirs, cgroup_file, text, Store};

#[test]
fn run_prints_output_and_propagates_exit_status() {
    let s = Store::new();
    let o = s.run(&["run", "--rm", "busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(text(&o.stdout), "to-out\n");
    assert_eq!(text(&o.stderr), "to-err\n");
    // --rm removed it.
    assert!(s.ids().is_empty());
}

#[test]
fn docker_exit_codes_for_engine_errors() {
    let s = Store::new();
    let e = s.fails(&["run", "--rm", "busybox", "/no/such/program"], 127);
    assert!(e.contains("no such file or directory") || e.contains("not found"), "{e}");
    let e = s.fails(&["run", "--rm", "busybox", "/etc/passwd"], 126);
    assert!(e.contains("permission denied"), "{e}");
    let e = s.fails(&["run", "--rm", "--pull", "never", "nosuchimage"], 125);
    assert!(e.contains("Unable to find image 'nosuchimage"), "{e}");
    // Nothing half-made: no container was left for any of them.
    assert!(s.ids().is_empty(), "{:?}", s.ids());
}

#[test]
fn env_workdir_user_hostname_and_files() {
    let s = Store::new();
    let env_file = s.path().join("env.list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let out = s.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env",
        "B=two words",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp/work",
        "-u",
        "nobody",
        "--hostname",
        "boat",
        "busybox",
        "sh",
        "-c",
        "echo $A/$B/$FROM_FILE/$HOME; pwd; id -u; hostname; cat /etc/hostname; grep boat /etc/hosts | wc -l",
    ]);
    assert_eq!(out, "1/two words/yes//nonexistent\n/tmp/work\n65534\nboat\nboat\n1\n");
    // Default hostname is the short id; PATH and HOSTNAME are set.
    let out = s.ok(&["run", "--name", "h1", "busybox", "sh", "-c", "echo $HOSTNAME; echo $PATH"]);
    let id = s.inspect("h1", "{{.Id}}");
    assert_eq!(out, format!("{}\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", &id[..12]));
}

#[test]
fn detached_container_lifecycle() {
    let s = Store::new();
    let id = s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 3' TERM; echo started; while true; do sleep 0.1; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    assert!(common::eventually(5, || s.ok(&["logs", "web"]) == "started\n"));
    let ps = s.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{ps}");
    assert!(ps.contains(&id[..12]) && ps.contains(" Up ") && ps.trim_end().ends_with("web"), "{ps}");
    assert_eq!(s.inspect("web", "{{.State.Status}} {{.State.Running}} {{.Name}}"), "running true /web");
    // exec sees the container's processes and hostname.
    let out = s.ok(&["exec", "web", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '"]);
    assert!(out.starts_with(&format!("{}\nsh -c trap", &id[..12])), "{out}");
    assert_eq!(s.run(&["exec", "web", "sh", "-c", "exit 9"]).status.code(), Some(9));
    assert!(!cgroup_dirs(id).is_empty());
    // stop: the TERM trap runs, its status is kept.
    assert_eq!(s.ok(&["stop", "web"]), "web\n");
    assert_eq!(s.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"), "exited 3");
    assert_eq!(s.ok(&["logs", "web"]), "started\ngot TERM\n");
    assert!(cgroup_dirs(id).is_empty(), "cgroups left: {:?}", cgroup_dirs(id));
    assert!(s.ok(&["ps"]).lines().count() == 1);
    assert!(s.ok(&["ps", "-a"]).contains("Exited (3)"));
    // start again, then kill.
    assert_eq!(s.ok(&["start", "web"]), "web\n");
    assert!(common::eventually(5, || s.ok(&["logs", "web"]).matches("started").count() == 2));
    s.ok(&["kill", "web"]);
    assert_eq!(s.ok(&["wait", "web"]), "137\n");
    assert_eq!(s.ok(&["rm", "web"]), "web\n");
    assert!(s.ids().is_empty());
    assert!(!s.path().join("containers").join(id).exists());
}

#[test]
fn stop_escalates_to_sigkill_after_the_timeout() {
    let s = Store::new();
    // sh as pid 1 ignores SIGTERM without a handler.
    s.ok(&["run", "-d", "--name", "stubborn", "busybox", "sleep", "100"]);
    let t = std::time::Instant::now();
    s.ok(&["stop", "-t", "1", "stubborn"]);
    let took = t.elapsed();
    assert!(took >= std::time::Duration::from_millis(900), "{took:?}");
    assert_eq!(s.inspect("stubborn", "{{.State.ExitCode}}"), "137");
    // --stop-signal is used instead of TERM.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' USR1; while true; do sleep 0.1; done",
    ]);
    s.ok(&["stop", "usr1"]);
    assert_eq!(s.inspect("usr1", "{{.State.ExitCode}}"), "42");
}

#[test]
fn rm_refuses_a_running_container_without_force() {
    let s = Store::new();
    let id = s.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "100"]);
    let e = s.fails(&["rm", "busy"], 1);
    assert!(e.contains("You cannot remove a running container"), "{e}");
    assert_eq!(s.inspect("busy", "{{.State.Status}}"), "running");
    s.ok(&["rm", "-f", "busy"]);
    assert!(s.ids().is_empty());
    assert!(cgroup_dirs(id.trim()).is_empty());
}

#[test]
fn resource_limits_reach_the_cgroup() {
    let s = Store::new();
    let id = s.ok(&[
        "run",
        "-d",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "20",
        "--cpu-shares",
        "512",
        "busybox",
        "sleep",
        "100",
    ]);
    let id = id.trim();
    assert_eq!(
        cgroup_file(id, "memory", "memory.limit_in_bytes")
            .or_else(|| cgroup_file(id, "", "memory.max"))
            .as_deref(),
        Some("67108864")
    );
    assert_eq!(cgroup_file(id, "pids", "pids.max").as_deref(), Some("20"));
    if common::cgroup_v2() {
        // One cpu.max for quota and period; shares become a weight (runc's formula: 512 -> 20).
        assert_eq!(cgroup_file(id, "", "cpu.max").as_deref(), Some("50000 100000"));
        assert_eq!(cgroup_file(id, "", "cpu.weight").as_deref(), Some("20"));
    } else {
        assert_eq!(cgroup_file(id, "cpu", "cpu.cfs_quota_us").as_deref(), Some("50000"));
        assert_eq!(cgroup_file(id, "cpu", "cpu.shares").as_deref(), Some("512"));
    }
    // The limit is real: a fork bomb stops at 20 processes.
    let o = s.run(&["exec", id, "sh", "-c", "for i in $(seq 1 40); do sleep 5 & done"]);
    assert_ne!(o.status.code(), Some(0), "40 forks succeeded under pids-limit 20");
    let current: u32 = cgroup_file(id, "pids", "pids.current").unwrap().parse().unwrap();
    assert!((15..=20).contains(&current), "{current} processes in a pids-limit 20 container");
    // update changes it live.
    s.ok(&["update", "--pids-limit", "30", id]);
    assert_eq!(cgroup_file(id, "pids", "pids.max").as_deref(), Some("30"));
    s.ok(&["rm", "-f", id]);
}

#[test]
fn security_options() {
    let s = Store::new();
    let status = |args: &[&str]| -> String {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "grep", "-E", "^(CapEff|Seccomp|NoNewPrivs):", "/proc/self/status"]);
        s.ok(&a)
    };
    let def = status(&[]);
    // Docker's 14 default capabilities: 0x a80425fb; seccomp filtering on.
    assert!(def.contains("CapEff:\t00000000a80425fb"), "{def}");
    assert!(def.contains("Seccomp:\t2"), "{def}");
    assert!(def.contains("NoNewPrivs:\t0"), "{def}");
    let dropped = status(&["--cap-drop", "ALL", "--cap-add", "CHOWN"]);
    assert!(dropped.contains("CapEff:\t0000000000000001"), "{dropped}");
    let un = status(&["--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges"]);
    assert!(un.contains("Seccomp:\t0") && un.contains("NoNewPrivs:\t1"), "{un}");
    let p = status(&["--privileged"]);
    assert!(p.contains("Seccomp:\t0") && !p.contains("CapEff:\t00000000a80425fb"), "{p}");
    // The default profile denies what Docker's does: unshare of a user namespace.
    let o = s.run(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert_ne!(o.status.code(), Some(0));
    // A profile file in Docker's format.
    let prof = s.path().join("prof.json");
    std::fs::write(
        &prof,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let o = s.run(&[
        "run",
        "--rm",
        "--security-opt",
        &format!("seccomp={}", prof.display()),
        "busybox",
        "mkdir",
        "/tmp/x",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("Operation not permitted"), "{}", text(&o.stderr));
    // --read-only: the root is read-only, --tmpfs gives a writable place.
    let o = s.run(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>&1; touch /scratch/y && echo ok",
    ]);
    assert!(
        text(&o.stdout).contains("Read-only file system") && text(&o.stdout).contains("ok"),
        "{}",
        text(&o.stdout)
    );
    // --ulimit
    assert_eq!(
        s.ok(&["run", "--rm", "--ulimit", "nofile=512:1024", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"]),
        "512\n1024\n"
    );
}

#[test]
fn volumes_and_binds() {
    let s = Store::new();
    let host = s.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from host\n").unwrap();
    let bind = format!("{}:/data", host.display());
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo from container > /data/out.txt",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(std::fs::read_to_string(host.join("out.txt")).unwrap(), "from container\n");
    // :ro
    let ro = format!("{}:/data:ro", host.display());
    let o = s.run(&["run", "--rm", "-v", &ro, "busybox", "touch", "/data/nope"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!host.join("nope").exists());
    // A named volume outlives its containers.
    s.ok(&["run", "--rm", "-v", "vol1:/v", "busybox", "sh", "-c", "echo kept > /v/f"]);
    assert_eq!(s.ok(&["run", "--rm", "-v", "vol1:/v", "busybox", "cat", "/v/f"]), "kept\n");
    assert!(s.ok(&["volume", "ls"]).contains("vol1"));
    let insp = s.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "vol1"]);
    assert!(std::path::Path::new(insp.trim()).join("f").exists());
    // In use: refused; then removed.
    s.ok(&["run", "-d", "--name", "user", "-v", "vol1:/v", "busybox", "sleep", "100"]);
    let e = s.fails(&["volume", "rm", "vol1"], 1);
    assert!(e.contains("volume is in use"), "{e}");
    s.ok(&["rm", "-f", "user"]);
    s.ok(&["volume", "rm", "vol1"]);
    assert!(!s.ok(&["volume", "ls", "-q"]).contains("vol1"));
    // A new, empty volume over an image directory gets its content (Docker's copy-up), with
    // owners and modes; `nocopy` opts out; a volume that has data keeps it.
    assert_eq!(
        s.ok(&[
            "run",
            "--rm",
            "-v",
            "etcvol:/etc",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hostname >/dev/null; stat -c '%a %u' /etc/passwd; grep -c root /etc/passwd"
        ]),
        "644 0\n1\n"
    );
    assert_eq!(
        s.ok(&[
            "run",
            "--rm",
            "-v",
            "emptyvol:/etc:nocopy",
            "busybox",
            "sh",
            "-c",
            "ls /etc/passwd 2>&1 | grep -c 'No such'"
        ]),
        "1\n"
    );
    s.ok(&["run", "--rm", "-v", "etcvol:/etc", "busybox", "sh", "-c", "echo changed > /etc/passwd"]);
    assert_eq!(s.ok(&["run", "--rm", "-v", "etcvol:/etc", "busybox", "cat", "/etc/passwd"]), "changed\n");
    s.ok(&["volume", "rm", "etcvol", "emptyvol"]);
    // An anonymous volume goes with `rm -v`.
    s.ok(&["run", "--name", "anon", "-v", "/scratch", "busybox", "true"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]).lines().count(), 1);
    s.ok(&["rm", "-v", "anon"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn restart_policy_on_failure_retries_then_stops() {
    let s = Store::new();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    assert!(
        common::eventually(10, || s.inspect("flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"),
        "{}",
        s.inspect("flaky", "{{.RestartCount}} {{.State.Status}}")
    );
    assert_eq!(s.ok(&["logs", "flaky"]), "run\nrun\nrun\n", "{}", s.inspect("flaky", "{{.State.Error}}"));
    // always: restarts until stopped by the user.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 0",
    ]);
    assert!(common::eventually(10, || s.inspect("always", "{{.RestartCount}}").parse::<u32>().unwrap_or(0) >= 1));
    s.ok(&["stop", "always"]);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(s.inspect("always", "{{.State.Status}}"), "exited");
}

#[test]
fn logs_options_and_rotation() {
    let s = Store::new();
    s.ok(&[
        "run",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo err >&2",
    ]);
    assert_eq!(s.ok(&["logs", "--tail", "2", "lg"]), "line5\n");
    let o = s.run(&["logs", "lg"]);
    assert_eq!(text(&o.stdout), "line1\nline2\nline3\nline4\nline5\n");
    assert_eq!(text(&o.stderr), "err\n");
    let t = s.ok(&["logs", "-t", "lg"]);
    assert!(t.lines().all(|l| l.len() > 20 && l.as_bytes()[4] == b'-' && l.contains('T')), "{t}");
    assert_eq!(s.ok(&["logs", "--since", "2000-01-01T00:00:00Z", "--tail", "2", "lg"]), "line5\n");
    assert_eq!(s.ok(&["logs", "--since", "2099-01-01T00:00:00Z", "lg"]), "");
    // The file is Docker's json-file format.
    let path = s.inspect("lg", "{{.LogPath}}");
    let first = std::fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!((v["log"].as_str(), v["stream"].as_str()), (Some("line1\n"), Some("stdout")));
    // Rotation at max-size keeps max-file files.
    s.ok(&[
        "run",
        "--name",
        "big",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 1 300); do echo line-$i; done",
    ]);
    let p = s.inspect("big", "{{.LogPath}}");
    assert!(std::path::Path::new(&format!("{p}.1")).exists());
    assert!(!std::path::Path::new(&format!("{p}.2")).exists());
    assert!(std::fs::metadata(&p).unwrap().len() <= 2048);
    assert!(s.ok(&["logs", "big"]).ends_with("line-300\n"));
    // -f follows until the container stops.
    s.ok(&["run", "-d", "--name", "fl", "busybox", "sh", "-c", "echo a; sleep 0.5; echo b"]);
    assert_eq!(s.ok(&["logs", "-f", "fl"]), "a\nb\n");
    // -f across rotations: every line once, in order (a rotated file is read to its end).
    s.ok(&[
        "run", "-d", "--name", "rot", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "busybox", "sh", "-c",
        "for i in $(seq 1 100); do echo r-$i; usleep 15000; done",
    ]);
    let want: String = (1..=100).map(|i| format!("r-{i}\n")).collect();
    assert_eq!(s.ok(&["logs", "-f", "rot"]), want);
    let p = s.inspect("rot", "{{.LogPath}}");
    assert!(std::path::Path::new(&format!("{p}.1")).exists(), "the log never rotated");
}

#[test]
fn ps_filters_formats_and_inspect_templates() {
    let s = Store::new();
    assert_eq!(
        s.run(&["run", "--name", "one", "-l", "tier=db", "busybox", "sh", "-c", "exit 2"]).status.code(),
        Some(2)
    );
    s.ok(&["run", "-d", "--name", "two", "-l", "tier=web", "busybox", "sleep", "100"]);
    assert_eq!(s.ok(&["ps", "--format", "{{.Names}}"]), "two\n");
    assert_eq!(
        s.ok(&["ps", "-a", "--filter", "label=tier=db", "--format", "{{.Names}} {{.State}}"]),
        "one exited\n"
    );
    assert_eq!(s.ok(&["ps", "-a", "--filter", "exited=2", "-q"]).lines().count(), 1);
    assert_eq!(s.ok(&["ps", "-a", "--filter", "status=running", "--format", "{{.Names}}"]), "two\n");
    let json = s.ok(&["ps", "-a", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r["Names"] == "one" && r["State"] == "exited"));
    let table = s.ok(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Status}}"]);
    assert!(table.starts_with("NAMES   STATUS\n"), "{table}");
    assert_eq!(
        s.inspect("one", "{{.State.ExitCode}} {{index .Config.Labels \"tier\"}} {{json .Config.Cmd}}"),
        "2 db [\"sh\",\"-c\",\"exit 2\"]"
    );
    let full: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "two"])).unwrap();
    assert_eq!(full[0]["State"]["Running"], true);
    assert!(full[0]["State"]["Pid"].as_i64().unwrap() > 0);
    assert_eq!(full[0]["HostConfig"]["RestartPolicy"]["Name"], "no");
    // rename, then the new name works and the old one is free.
    s.ok(&["rename", "two", "three"]);
    assert_eq!(s.inspect("three", "{{.Name}}"), "/three");
    s.fails(&["inspect", "two"], 1);
    // top lists the container's process.
    assert!(s.ok(&["top", "three"]).contains("sleep 100"));
    // pause freezes; unpause thaws.
    s.ok(&["pause", "three"]);
    assert_eq!(s.inspect("three", "{{.State.Status}} {{.State.Paused}}"), "paused true");
    assert!(s.ok(&["ps"]).contains("(Paused)"));
    s.ok(&["unpause", "three"]);
    assert_eq!(s.inspect("three", "{{.State.Status}}"), "running");
    let st = s.ok(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "three"]);
    assert_eq!(st, "three 1\n");
}

#[test]
fn create_then_start_attached() {
    let s = Store::new();
    let id = s.ok(&["create", "--name", "later", "busybox", "sh", "-c", "echo created-then-started; exit 4"]);
    assert_eq!(id.trim().len(), 64);
    assert_eq!(s.inspect("later", "{{.State.Status}}"), "created");
    assert!(s.ok(&["ps", "-a"]).contains("Created"));
    let o = s.run(&["start", "-a", "later"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(text(&o.stdout), "created-then-started\n");
    // Name collision: a clear error, nothing made.
    let e = s.fails(&["create", "--name", "later", "busybox", "true"], 125);
    assert!(e.contains("The container name \"/later\" is already in use"), "{e}");
    assert_eq!(s.ids().len(), 1);
}

#[test]
fn stdin_is_forwarded_with_i() {
    let s = Store::new();
    let mut c = s.cmd(&["run", "-i", "--rm", "busybox", "sh", "-c", "read a; echo got:$a; cat"]);
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\nrest of input\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(text(&o.stdout), "got:hello\nrest of input\n");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn init_reaps_and_forwards() {
    let s = Store::new();
    if !["/usr/bin/tini-static", "/usr/bin/tini", "/usr/bin/docker-init"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
    {
        let e = s.fails(&["run", "--rm", "--init", "busybox", "true"], 125);
        assert!(e.contains("--init"), "{e}");
        return;
    }
    let out = s.ok(&["run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"]);
    assert!(out.starts_with("/sbin/docker-init -- sh -c"), "{out}");
}

#[test]
fn exec_detached_restart_prune_and_cpuset() {
    let s = Store::new();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--cpuset-cpus",
        "0",
        "-m",
        "32m",
        "--memory-swap",
        "64m",
        "busybox",
        "sleep",
        "60",
    ]);
    let id = s.inspect("svc", "{{.Id}}");
    assert_eq!(cgroup_file(&id, "cpuset", "cpuset.cpus").as_deref(), Some("0"));
    if common::cgroup_v2() {
        // v2 limits the swap alone: memory-swap 64m with memory 32m is 32m of swap.
        assert_eq!(cgroup_file(&id, "", "memory.max").as_deref(), Some("33554432"));
        if let Some(sw) = cgroup_file(&id, "", "memory.swap.max") {
            assert_eq!(sw, "33554432");
        }
    } else if let Some(sw) = cgroup_file(&id, "memory", "memory.memsw.limit_in_bytes") {
        assert_eq!(sw, "67108864");
    }
    // exec -d returns at once; its process runs on in the container. (2 s: an `exec` takes
    // several hundred ms under an emulated CPU, tests/vm; waiting would take 2 s or more.)
    let t = std::time::Instant::now();
    s.ok(&["exec", "-d", "svc", "sh", "-c", "sleep 2; echo from-detached > /tmp/d"]);
    assert!(t.elapsed() < std::time::Duration::from_millis(1900), "exec -d waited");
    assert!(common::eventually(10, || s.run(&["exec", "svc", "cat", "/tmp/d"]).stdout == b"from-detached\n"));
    // restart: a new init (new pid), same container.
    let pid1 = s.inspect("svc", "{{.State.Pid}}");
    s.ok(&["restart", "-t", "0", "svc"]);
    let pid2 = s.inspect("svc", "{{.State.Pid}}");
    assert_ne!(pid1, pid2);
    assert_eq!(s.inspect("svc", "{{.State.Status}}"), "running");
    // container prune removes only stopped ones.
    s.ok(&["run", "--name", "done1", "busybox", "true"]);
    let out = s.ok(&["container", "prune", "-f"]);
    assert!(out.contains(&s_id_of_removed(&out)), "{out}");
    assert_eq!(s.ok(&["ps", "-a", "--format", "{{.Names}}"]), "svc\n");
    s.ok(&["rm", "-f", "svc"]);
}

/// The first id line of prune's output (64 hex digits).
fn s_id_of_removed(out: &str) -> String {
    out.lines()
        .find(|l| l.len() == 64 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or("<none>")
        .to_string()
}

#[test]
fn the_terminal_size_follows_sigwinch() {
    let s = Store::new();
    // A pty of our own, resized while skiff is attached (the kernel sends SIGWINCH to the
    // foreground process, skiff): the container's terminal follows.
    let cmd = format!(
        "stty rows 10 cols 20; ( sleep 1.2; stty rows 40 cols 100 < /dev/tty ) & exec env SKIFF_DEFAULT_NETWORK=none {} --root {} run -it --rm busybox sh -c 'stty size; sleep 2; stty size'",
        common::skiff_bin(),
        s.path().display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(out.contains("10 20"), "{out}");
    assert!(out.contains("40 100"), "{out}");
}
