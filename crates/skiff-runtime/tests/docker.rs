//! Docker 20.10 (dockerd + its own containerd + containerd-shim-runc-v2) running its containers
//! on skiff-runtime, registered as extra runtimes in daemon.json.
//!
//! One dockerd for the whole file, started on first use, with data root, exec root, pidfile,
//! socket, key file and CLI config in a temp dir, no networking of its own (`--iptables=false
//! --ip-forward=false --ip-masq=false --bridge=none`, containers with `--network none`) and a
//! cgroup parent of its own (`skiff-dkr-<pid>`). dockerd starts its managed containerd, whose
//! root and state are under our data and exec roots. Runtimes:
//! - `skiff`: a two-line wrapper that appends its arguments to `calls.log` and execs our binary;
//!   every container started through it is checked to appear there with `create`, and running
//!   ones to have skiff's `state.json` under the root the shim passes
//!   (`<exec-root>/runtime-runc/moby/<id>`: Docker 20.10 uses that root for every runtime);
//! - `skiff-direct`: our binary itself (the configuration docs/docker.md recommends);
//! - `runc` (Docker's default): the reference for exit codes and error texts.
//!
//! The image is a busybox-static rootfs tar brought in with `docker import`: no registry.
//!
//! Cleanup runs at process exit (atexit), also after failed tests: containers removed through
//! docker, dockerd stopped by pid, leftover containerd/shim processes (they name our temp dir)
//! and container processes killed by pid and reaped (we are a child subreaper), mounts under
//! the temp dir detached, our cgroup parent removed, and what dockerd writes outside the temp
//! dir (`/etc/docker/key.json`, `/run/docker/plugins`, `/run/containerd/s`) removed when it did
//! not exist before.
//!
//! Skipped (passes, says why) when not root or dockerd, docker, containerd, the shim, runc,
//! busybox-static, tar or script(1) is missing, or when a system containerd socket exists
//! (dockerd would use it instead of starting its own).

mod common;

use common::clients::*;
use common::count_in;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

const IMAGE: &str = "skiff-busybox:docker-test";
const DOCKER: &str = "/usr/bin/docker";
/// How long any single docker command may take.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Daemon {
    dir: PathBuf,
    /// Our cgroup parent (a directory name under every hierarchy).
    parent: String,
    child: Mutex<Option<Child>>,
    /// Paths outside the temp dir that dockerd or its shims create, and whether each existed.
    outside: Vec<(PathBuf, bool)>,
}

static DAEMON: OnceLock<Option<Daemon>> = OnceLock::new();

fn daemon() -> Option<&'static Daemon> {
    DAEMON
        .get_or_init(|| {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipping docker tests: needs root");
                return None;
            }
            if !Path::new(DOCKER).exists() {
                eprintln!("skipping docker tests: {DOCKER} is not installed (docker.io; scripts/setup.sh installs it)");
                return None;
            }
            for tool in ["dockerd", "containerd", "containerd-shim-runc-v2", "runc", "tar", "script"] {
                if which(tool).is_none() {
                    eprintln!("skipping docker tests: {tool} is not installed (scripts/setup.sh installs docker.io)");
                    return None;
                }
            }
            if !Path::new("/bin/busybox").exists() {
                eprintln!("skipping docker tests: needs /bin/busybox (busybox-static)");
                return None;
            }
            if Path::new("/run/containerd/containerd.sock").exists() {
                eprintln!("skipping docker tests: /run/containerd/containerd.sock exists, dockerd would use that containerd instead of its own");
                return None;
            }
            Some(start_daemon())
        })
        .as_ref()
}

fn start_daemon() -> Daemon {
    // containerd and its shims are orphaned when dockerd stops: they become ours to reap.
    nix::sys::prctl::set_child_subreaper(true).expect("become a child subreaper");
    // Short path: socket paths must fit in 108 bytes.
    let dir = tempfile::Builder::new()
        .prefix("skd")
        .tempdir_in("/tmp")
        .expect("temp dir")
        .keep();
    let outside = [
        "/etc/docker/key.json",
        "/etc/docker",
        "/run/docker/plugins",
        "/run/docker",
        "/run/containerd/s",
        "/run/containerd",
    ]
    .iter()
    .map(|p| (PathBuf::from(p), Path::new(p).exists()))
    .collect();
    // SAFETY: registering a plain extern "C" fn; it only runs at exit.
    unsafe {
        libc::atexit(cleanup_at_exit);
    }
    let d = dir.display().to_string();
    for sub in ["data", "exec", "cli"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let wrapper = dir.join("skiff-wrap");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\necho \"$*\" >> {d}/calls.log\nexec {} \"$@\"\n", common::BIN),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let parent = format!("skiff-dkr-{}", std::process::id());
    let config = serde_json::json!({
        "userland-proxy": false,
        "deprecated-key-path": format!("{d}/key.json"),
        // Absolute: a relative parent is taken relative to the runtime's own cgroups (on this
        // host the memory one is not the root), by runc and skiff alike.
        "cgroup-parent": format!("/{parent}"),
        "runtimes": {
            "skiff": {"path": wrapper},
            "skiff-direct": {"path": common::BIN},
        }
    });
    std::fs::write(dir.join("daemon.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
    let child = Command::new(which("dockerd").unwrap())
        .arg("--config-file")
        .arg(dir.join("daemon.json"))
        .args(["--data-root", &format!("{d}/data")])
        .args(["--exec-root", &format!("{d}/exec")])
        .args(["--pidfile", &format!("{d}/dockerd.pid")])
        .args(["-H", &format!("unix://{d}/docker.sock")])
        .args(["--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start dockerd");
    let daemon = Daemon {
        dir,
        parent,
        child: Mutex::new(Some(child)),
        outside,
    };
    let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let t0 = Instant::now();
        while daemon.docker(&["version", "--format", "{{.Server.Version}}"]).code() != 0 {
            let exited = daemon
                .child
                .lock()
                .unwrap()
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            assert!(
                !exited && t0.elapsed() < Duration::from_secs(60),
                "dockerd did not come up:\n{}",
                daemon.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let rootfs = daemon.dir.join("rootfs");
        common::make_rootfs(&rootfs);
        let tar = daemon.dir.join("rootfs.tar");
        let st = Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success(), "tar of the rootfs failed");
        daemon.ok(&["import", "-c", r#"CMD ["sh"]"#, tar.to_str().unwrap(), IMAGE]);
    }));
    if let Err(e) = ready {
        daemon.cleanup();
        std::panic::resume_unwind(e);
    }
    daemon
}

impl Daemon {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_HOST", format!("unix://{}/docker.sock", self.dir.display()))
            .env("DOCKER_CONFIG", self.dir.join("cli"))
            .args(args);
        c
    }

    /// Runs docker with `input` on stdin (None: /dev/null) and a timeout.
    fn docker_in(&self, args: &[&str], input: Option<&str>) -> Out {
        run_captured(self.cmd(args), input, TIMEOUT, &format!("docker {args:?}"))
    }

    fn docker(&self, args: &[&str]) -> Out {
        self.docker_in(args, None)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}): {}{}\n{}",
            o.status,
            o.stdout,
            o.stderr,
            self.log_tail()
        );
        o.stdout
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("dockerd.log (tail):\n{}", lines[lines.len().saturating_sub(20)..].join("\n"))
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }

    /// Where the shim tells the runtime to keep its state.
    fn state_dir(&self, id: &str) -> PathBuf {
        self.dir.join("exec/runtime-runc/moby").join(id)
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default()
    }

    /// Our wrapper ran `create` for `id`.
    fn assert_created_by_us(&self, id: &str) {
        assert_eq!(id.len(), 64, "not a full container id: {id:?}");
        let calls = self.calls();
        assert!(
            calls
                .lines()
                .any(|l| l.contains(" create ") && l.ends_with(id)),
            "skiff-runtime never created {id}; calls:\n{calls}"
        );
    }

    /// A running container of runtime `skiff` or `skiff-direct`: docker says so, and the state
    /// the runtime keeps for it is skiff's (runc's has `init_process_pid`), with the same pid.
    fn assert_ours_running(&self, name: &str, runtime: &str) -> (String, Value) {
        let got = self.inspect(name, "{{.Id}} {{.HostConfig.Runtime}} {{.State.Pid}}");
        let f: Vec<&str> = got.split_whitespace().collect();
        let (id, rt, pid) = (f[0].to_string(), f[1], f[2]);
        assert_eq!(rt, runtime, "{name}");
        if runtime == "skiff" {
            self.assert_created_by_us(&id);
        }
        let p = self.state_dir(&id).join("state.json");
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}: not created by skiff-runtime?", p.display()));
        let v: Value = serde_json::from_str(&text).expect("state.json is JSON");
        assert!(
            v.get("pid_start").is_some() && v.get("init_process_pid").is_none(),
            "not skiff's state: {text}"
        );
        assert_eq!(v["pid"].as_i64().map(|p| p.to_string()).as_deref(), Some(pid));
        (id, v)
    }

    /// The container's cgroup dir in hierarchy `h` (cgroupfs driver: `<parent>/<id>`).
    fn cgroup(&self, h: &str, id: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup").join(h).join(&self.parent).join(id)
    }

    /// Removes `name` and checks that nothing of it is left (state, cgroups).
    fn remove(&self, name: &str) {
        let id = self.inspect(name, "{{.Id}}");
        self.ok(&["rm", "-f", name]);
        self.assert_gone(&id);
    }

    fn assert_gone(&self, id: &str) {
        assert!(!self.state_dir(id).exists(), "runtime state of {id} left behind");
        let left: Vec<PathBuf> = hierarchies()
            .into_iter()
            .map(|h| h.join(&self.parent).join(id))
            .filter(|p| p.exists())
            .collect();
        assert!(left.is_empty(), "cgroups of {id} left: {left:?}");
    }

    /// `docker run --rm --network none --runtime RT --cidfile F [extra] IMAGE args`; returns
    /// the output and the container's id (from the cidfile).
    fn run(&self, rt: &str, extra: &[&str], args: &[&str], input: Option<&str>) -> (Out, String) {
        let cidfile = self.dir.join(format!("cid-{}", common::unique_id("c")));
        let mut v = vec!["run", "--rm", "--network", "none", "--runtime", rt, "--cidfile", cidfile.to_str().unwrap()];
        v.extend_from_slice(extra);
        v.push(IMAGE);
        v.extend_from_slice(args);
        let o = self.docker_in(&v, input);
        let id = std::fs::read_to_string(&cidfile).unwrap_or_default();
        (o, id)
    }

    /// `docker run -d --name NAME --runtime RT IMAGE sh -c SCRIPT`, checked to be ours.
    fn run_detached(&self, rt: &str, name: &str, extra: &[&str], script: &str) -> String {
        let mut v = vec!["run", "-d", "--network", "none", "--runtime", rt, "--name", name];
        v.extend_from_slice(extra);
        v.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        self.ok(&v);
        self.assert_ours_running(name, rt).0
    }

    /// The container's /tmp/count (a counter its script keeps writing), read through the
    /// merged rootfs on the host (works while the container is frozen).
    fn count(&self, name: &str) -> u64 {
        count_in(&self.count_file(name))
    }

    fn count_file(&self, name: &str) -> PathBuf {
        PathBuf::from(self.inspect(name, "{{.GraphDriver.Data.MergedDir}}")).join("tmp/count")
    }

    /// The counter file's text as it is: for a frozen container, whose file may be empty.
    fn count_text(&self, name: &str) -> String {
        let file = self.count_file(name);
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
    }
}

const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.02; done";

// ---------------------------------------------------------------------------------------------
// Cleanup at exit.

extern "C" fn cleanup_at_exit() {
    if let Some(Some(d)) = DAEMON.get() {
        d.cleanup();
    }
}

/// Pids whose command line mentions `needle` (containerd and shims of our daemon).
fn pids_naming(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(pid);
        }
    }
    out
}

impl Daemon {
    fn cleanup(&self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        // 1. Containers, through docker.
        if child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none()) {
            let ids = self.docker(&["ps", "-aq"]).stdout;
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut v = vec!["rm", "-f"];
                v.extend(ids);
                let _ = self.docker(&v);
            }
        }
        // 2. dockerd, by pid: SIGTERM (it stops its containerd), SIGKILL after 20 s.
        if let Some(c) = child.take() {
            terminate(c, Duration::from_secs(20));
        }
        // 3. containerd and shims naming our temp dir, then processes left in our cgroups.
        let needle = self.dir.display().to_string();
        let t0 = Instant::now();
        while !pids_naming(&needle).is_empty() && t0.elapsed() < Duration::from_secs(10) {
            reap_zombie_children();
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in pids_naming(&needle) {
            eprintln!("docker tests: killing leftover process {pid}");
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // 4, 5. Processes left in our cgroups, mounts under the temp dir, our cgroup parent.
        sweep_after_daemon(&self.dir, &self.parent);
        // 6. What dockerd made outside the temp dir (listed files before their dirs).
        for (p, existed) in &self.outside {
            if !existed {
                if p.is_dir() {
                    let _ = std::fs::remove_dir(p);
                } else {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

fn timed(name: &str, f: impl FnOnce(&Daemon)) {
    let Some(d) = daemon() else { return };
    let t0 = Instant::now();
    f(d);
    eprintln!("{name}: {:.2?}", t0.elapsed());
}

/// `docker run`: stdout, stderr and the exit status come back (0 and 3); a program that
/// cannot be run gives the CLI's 126 (not executable) and 127 (not found), exactly as with
/// runc, because our error text matches runc's where Docker looks for it.
#[test]
fn run_output_and_exit_codes_match_runc() {
    timed("run_output_and_exit_codes_match_runc", |d| {
        let (o, id) = d.run("skiff", &[], &["sh", "-c", "echo out; echo err >&2; exit 3"], None);
        assert_eq!(o.code(), 3, "{}{}", o.stdout, o.stderr);
        assert_eq!(o.stdout, "out\n");
        assert_eq!(o.stderr, "err\n");
        d.assert_created_by_us(&id);
        d.assert_gone(&id);
        let (o, id) = d.run("skiff", &[], &["true"], None);
        assert_eq!(o.code(), 0, "{}", o.stderr);
        d.assert_created_by_us(&id);

        for (args, code, text) in [
            (&["/etc/passwd"][..], 126, "permission denied"),
            (&["/tmp"][..], 126, "permission denied"),
            (&["nonexistent"][..], 127, "executable file not found in $PATH"),
            (&["/nonexistent/x"][..], 127, "no such file or directory"),
        ] {
            let (ours, id) = d.run("skiff", &[], args, None);
            let (runc, _) = d.run("runc", &[], args, None);
            assert_eq!(runc.code(), code, "runc {args:?}: {}", runc.stderr);
            assert_eq!(ours.code(), code, "skiff {args:?}: {}\n(runc said: {})", ours.stderr, runc.stderr);
            assert!(ours.stderr.contains(text), "skiff {args:?}: {}", ours.stderr);
            assert!(
                ours.stderr.contains(&format!("exec: \"{}\"", args[0])),
                "skiff {args:?}: {}",
                ours.stderr
            );
            d.assert_created_by_us(&id);
            d.assert_gone(&id);
        }
    });
}

/// `docker run -i` with piped stdin (EOF reaches the container), and `docker run -it` on a
/// terminal (script(1)): the container's stdio is a pty and input typed reaches it.
#[test]
fn interactive_stdin_and_tty() {
    timed("interactive_stdin_and_tty", |d| {
        let (o, id) = d.run("skiff", &["-i"], &["sh", "-c", "read x; echo got-$x; cat; echo eof; exit 4"], Some("abc\nrest\n"));
        assert_eq!(o.code(), 4, "{}{}", o.stdout, o.stderr);
        assert_eq!(o.stdout, "got-abc\nrest\neof\n");
        d.assert_created_by_us(&id);

        let cidfile = d.dir.join("cid-tty");
        let inner = format!(
            "{DOCKER} run --rm -it --network none --runtime skiff --cidfile {} {IMAGE} sh -c 'tty; read x; echo got-$x; exit 5'",
            cidfile.display()
        );
        let out = tempfile::tempfile().unwrap();
        let mut child = Command::new("script")
            .args(["-qec", &inner, "/dev/null"])
            .env("DOCKER_HOST", format!("unix://{}/docker.sock", d.dir.display()))
            .env("DOCKER_CONFIG", d.dir.join("cli"))
            .stdin(Stdio::piped())
            .stdout(out.try_clone().unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("script");
        let mut stdin = child.stdin.take().unwrap();
        let t0 = Instant::now();
        loop {
            let text = read_file(out.try_clone().unwrap());
            if text.contains("/dev/pts/") {
                break;
            }
            assert!(t0.elapsed() < TIMEOUT, "no tty output: {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
        stdin.write_all(b"typed\r").unwrap();
        let status = common::wait_timeout(&mut child, TIMEOUT, "docker run -it");
        drop(stdin);
        let text = read_file(out);
        assert!(text.contains("/dev/pts/0"), "stdin not a pty: {text}");
        assert!(text.contains("got-typed"), "input did not reach the container: {text}");
        assert_eq!(status.code(), Some(5), "{text}");
        d.assert_created_by_us(std::fs::read_to_string(&cidfile).unwrap().trim());
    });
}

/// `run -d`, `logs`, `exec` (output and exit status, also `exec -i`), `top`, `stats`.
#[test]
fn detached_logs_exec_top_stats() {
    timed("detached_logs_exec_top_stats", |d| {
        let name = "skiff-det";
        let id = d.run_detached("skiff", name, &[], &format!("echo started; echo to-stderr >&2; {COUNTER}"));
        wait_until("logs", TIMEOUT, || d.docker(&["logs", name]).stdout.contains("started"));
        let o = d.docker(&["logs", name]);
        assert_eq!(o.stdout, "started\n");
        assert_eq!(o.stderr, "to-stderr\n");

        let o = d.docker(&["exec", name, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 6"]);
        assert_eq!(o.code(), 6, "{}{}", o.stdout, o.stderr);
        assert!(o.stdout.starts_with("sh -c echo started"), "exec not in the container: {}", o.stdout);
        let o = d.docker_in(&["exec", "-i", name, "sh", "-c", "cat; exit 0"], Some("piped\n"));
        assert_eq!((o.code(), o.stdout.as_str()), (0, "piped\n"), "{}", o.stderr);
        // Docker 20.10 gives 126 for every exec the runtime refuses (runc too); the text is runc's.
        let o = d.docker(&["exec", name, "nonexistent"]);
        assert_eq!(o.code(), 126, "{}{}", o.stdout, o.stderr);
        // (docker 20.10 prints this error on stdout)
        let all = format!("{}{}", o.stdout, o.stderr);
        assert!(all.contains(r#"exec: "nonexistent": executable file not found in $PATH"#), "{all}");
        assert!(d.calls().lines().any(|l| l.contains(" exec ") && l.ends_with(&id)), "exec not through skiff");

        let pid = d.inspect(name, "{{.State.Pid}}");
        let top = d.ok(&["top", name]);
        assert!(
            top.lines().any(|l| l.split_whitespace().nth(1) == Some(pid.as_str()) && l.contains("sh -c echo started")),
            "init {pid} not in top:\n{top}"
        );
        // The shim lists the container's pids through the runtime's `ps --format json`.
        assert!(d.calls().lines().any(|l| l.contains(" ps ") && l.ends_with(&id)), "top not through skiff's ps");
        let stats = d.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}", name]);
        let f: Vec<&str> = stats.trim().split('|').collect();
        assert_eq!(f.len(), 3, "{stats}");
        let mem = f[0].split('/').next().unwrap().trim();
        assert!(!mem.starts_with("0B") && mem.chars().next().is_some_and(|c| c.is_ascii_digit()), "memory usage: {stats}");
        assert!(f[1].trim().parse::<u32>().is_ok_and(|n| n >= 1), "pids: {stats}");
        assert!(f[2].trim().trim_end_matches('%').parse::<f64>().is_ok(), "cpu: {stats}");
        d.remove(name);
    });
}

/// `stop` (SIGTERM reaches the init's trap, whose status is the exit code; an init without a
/// handler is killed after `-t`), `kill -s`, `kill`, `restart`.
#[test]
fn stop_kill_restart() {
    timed("stop_kill_restart", |d| {
        let name = "skiff-stop";
        d.run_detached("skiff", name, &[], "trap 'echo term; exit 43' TERM; echo > /tmp/ready; while :; do sleep 0.05; done");
        wait_until("trap", TIMEOUT, || d.docker(&["exec", name, "test", "-e", "/tmp/ready"]).code() == 0);
        let t0 = Instant::now();
        d.ok(&["stop", name]);
        assert!(t0.elapsed() < Duration::from_secs(8), "stop took {:?}: SIGTERM not delivered?", t0.elapsed());
        assert_eq!(d.inspect(name, "{{.State.Status}} {{.State.ExitCode}}"), "exited 43");
        assert!(d.docker(&["logs", name]).stdout.contains("term"));

        // restart of the stopped container: a new init through skiff-runtime again.
        let calls_before = d.calls().lines().filter(|l| l.contains(" create ")).count();
        d.ok(&["restart", "-t", "1", name]);
        let (_, st1) = d.assert_ours_running(name, "skiff");
        assert!(d.calls().lines().filter(|l| l.contains(" create ")).count() > calls_before);
        // restart of a running container: stop (trap, 43) then start.
        wait_until("trap again", TIMEOUT, || d.docker(&["exec", name, "test", "-e", "/tmp/ready"]).code() == 0);
        d.ok(&["restart", "-t", "5", name]);
        let (_, st2) = d.assert_ours_running(name, "skiff");
        assert_ne!(st1["pid"], st2["pid"], "restart did not start a new init");
        assert_eq!(d.inspect(name, "{{.RestartCount}} {{.State.Status}}"), "0 running");
        d.remove(name);

        // No handler: pid 1 ignores SIGTERM, docker kills after -t.
        let name = "skiff-stop-kill";
        d.run_detached("skiff", name, &[], "exec sleep 1000");
        d.ok(&["stop", "-t", "1", name]);
        assert_eq!(d.inspect(name, "{{.State.ExitCode}}"), "137");
        d.remove(name);

        // kill -s USR1 reaches a handler (the container lives on), kill (SIGKILL) ends it.
        let name = "skiff-kill";
        d.run_detached("skiff", name, &[], "trap 'echo usr1 > /tmp/usr1' USR1; echo > /tmp/ready; while :; do sleep 0.05; done");
        wait_until("trap", TIMEOUT, || d.docker(&["exec", name, "test", "-e", "/tmp/ready"]).code() == 0);
        d.ok(&["kill", "-s", "USR1", name]);
        wait_until("USR1 handled", TIMEOUT, || d.docker(&["exec", name, "cat", "/tmp/usr1"]).stdout == "usr1\n");
        assert_eq!(d.inspect(name, "{{.State.Status}}"), "running");
        d.ok(&["kill", name]);
        wait_until("killed", TIMEOUT, || d.inspect(name, "{{.State.Status}}") == "exited");
        assert_eq!(d.inspect(name, "{{.State.ExitCode}}"), "137");
        let id = d.inspect(name, "{{.Id}}");
        assert!(d.calls().lines().any(|l| l.contains(" kill ") && l.contains(&id)), "kill not through skiff");
        d.remove(name);
    });
}

/// `pause`/`unpause`: docker shows paused, the freezer cgroup is frozen, the counter stops,
/// then moves again.
#[test]
fn pause_and_unpause() {
    timed("pause_and_unpause", |d| {
        let name = "skiff-pause";
        let id = d.run_detached("skiff", name, &[], COUNTER);
        let c0 = d.count(name);
        wait_until("the counter to move", TIMEOUT, || d.count(name) > c0);
        d.ok(&["pause", name]);
        assert_eq!(d.inspect(name, "{{.State.Status}}"), "paused");
        let freezer = d.cgroup("freezer", &id).join("freezer.state");
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
        // Raw text: the loop may have been frozen between truncating and writing the file,
        // which leaves it empty until the unpause.
        let frozen_text = d.count_text(name);
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(d.count_text(name), frozen_text, "the counter moved while paused");
        let frozen: u64 = frozen_text.trim().parse().unwrap_or(c0);
        d.ok(&["unpause", name]);
        assert_eq!(d.inspect(name, "{{.State.Status}}"), "running");
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
        wait_until("the counter to move after unpause", TIMEOUT, || d.count(name) > frozen);
        let calls = d.calls();
        assert!(calls.lines().any(|l| l.contains(" pause ") && l.ends_with(&id)));
        assert!(calls.lines().any(|l| l.contains(" resume ") && l.ends_with(&id)));
        d.remove(name);
    });
}

/// `docker update` with memory, swap and CPU limits: the values land in the container's v1
/// cgroup files.
#[test]
fn update_memory_and_cpu() {
    timed("update_memory_and_cpu", |d| {
        let name = "skiff-update";
        let id = d.run_detached("skiff", name, &["--memory", "128m"], "exec sleep 1000");
        let mem = d.cgroup("memory", &id);
        let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string();
        assert_eq!(read(mem.join("memory.limit_in_bytes")), "134217728");
        d.ok(&["update", "--memory", "64m", "--memory-swap", "96m", "--cpus", "0.5", name]);
        assert_eq!(read(mem.join("memory.limit_in_bytes")), "67108864");
        if mem.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "100663296");
        }
        let cpu = d.cgroup("cpu", &id);
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(d.inspect(name, "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}"), "67108864 500000000");
        assert!(d.calls().lines().any(|l| l.contains(" update ") && l.ends_with(&id)));
        d.remove(name);
    });
}

/// `docker update --memory` alone: Docker sends the unset CPU fields as zeros
/// (`"cpu":{"shares":0,"quota":0,"period":0}`), which runc reads as "unset".
#[test]
fn update_memory_alone() {
    timed("update_memory_alone", |d| {
        let name = "skiff-update-mem";
        let id = d.run_detached("skiff", name, &[], "exec sleep 1000");
        let o = d.docker(&["update", "--memory", "64m", "--memory-swap", "128m", name]);
        let ok = o.code() == 0;
        let limit = std::fs::read_to_string(d.cgroup("memory", &id).join("memory.limit_in_bytes")).unwrap_or_default();
        d.remove(name);
        assert!(ok, "{}", o.stderr);
        assert_eq!(limit.trim(), "67108864");
    });
}

/// The runtime registered by its own path (no wrapper), as docs/docker.md suggests.
#[test]
fn runtime_registered_by_path() {
    timed("runtime_registered_by_path", |d| {
        let name = "skiff-direct";
        d.run_detached("skiff-direct", name, &[], "exec sleep 1000");
        let o = d.docker(&["exec", name, "sh", "-c", "exit 9"]);
        assert_eq!(o.code(), 9, "{}", o.stderr);
        d.remove(name);
        let (o, id) = d.run("skiff-direct", &[], &["sh", "-c", "echo direct; exit 3"], None);
        assert_eq!((o.code(), o.stdout.as_str()), (3, "direct\n"), "{}", o.stderr);
        d.assert_gone(id.trim());
    });
}
