//! runc 1.1's behaviour where clients depend on it (issue 13, item 3), each checked on what the
//! container did and, where runc supports it, against the installed runc run the same way:
//! `kill --all` on a stopped container with processes left in its cgroup, `exec
//! --ignore-paused`, the environment of hooks without `env`, a time namespace inside a new user
//! namespace, and the error and warning texts clients match (procfs/sysfs through a symlink, an
//! unknown capability).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const RUNC: &str = "/usr/sbin/runc";

/// One runtime binary with a private root: ours, or runc for comparison.
struct Rt {
    bin: PathBuf,
    root: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Rt {
    fn ours() -> Rt {
        Rt::with(Path::new(BIN))
    }

    /// runc when installed (the comparison is skipped otherwise).
    fn runc() -> Option<Rt> {
        Path::new(RUNC).exists().then(|| Rt::with(Path::new(RUNC)))
    }

    fn with(bin: &Path) -> Rt {
        let _ = nix::sys::prctl::set_child_subreaper(true);
        Rt {
            bin: bin.to_path_buf(),
            root: tempfile::Builder::new().prefix("skt-root").tempdir().unwrap(),
            ids: Default::default(),
        }
    }

    fn name(&self) -> String {
        self.bin.file_name().unwrap_or_default().to_string_lossy().into_owned()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Runs to the end; output through files (a detached init keeps pipes open).
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        if let Some(pos) = args.iter().position(|a| *a == "--bundle") {
            if let Some(id) = args.get(pos + 2) {
                self.ids.borrow_mut().push(id.to_string());
            }
        }
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let status = self
            .cmd(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .expect("run the runtime");
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.rewind().unwrap();
            f.read_to_end(&mut v).unwrap();
            v
        };
        Output {
            status,
            stdout: read(out),
            stderr: read(err),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}",
            self.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn status(&self, id: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["state", id])).unwrap();
        v["status"].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self
                .cmd(&["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Reap what we adopted as subreaper, by pid: a waitpid(-1) would also collect the
        // runtimes other test threads are still waiting for (their wait then fails, ECHILD).
        let me = std::process::id().to_string();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(str::trim).unwrap_or("").to_string();
            let ours = ["skiff-runtime", "runc"].contains(&field("Name:").as_str());
            if field("PPid:") == me && field("State:").starts_with('Z') && !ours {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
        }
    }
}

fn sh(script: &str) -> serde_json::Value {
    base_config(&["sh", "-c", script])
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    // A zombie counts as gone: the signal was delivered and it died.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
}

/// The init of a container sharing the host pid namespace starts a child that traps SIGTERM and
/// exits. Then, as with runc: the container is `stopped`, `kill` fails, `kill --all TERM`
/// reaches the child and exits 0, and `kill --all` again (nothing left) exits 0 too.
fn kill_all_on_stopped(rt: &Rt) {
    let mut cfg = sh("sh -c 'trap \"echo got-term > /tmp/got; exit 0\" TERM; echo $$ > /tmp/child; while :; do sleep 0.05; done' & while [ ! -s /tmp/child ]; do sleep 0.01; done; exit 0");
    cfg["linux"]["namespaces"] = json!([{"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    let b = Bundle::new(&cfg);
    let id = unique_id("killall");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    wait_until("the init to exit", || rt.status(&id) == "stopped");
    let child: i32 = std::fs::read_to_string(b.rootfs().join("tmp/child")).unwrap().trim().parse().unwrap();
    assert!(alive(child), "{}: the child {child} should outlive the init", rt.name());
    let out = rt.run(&["kill", &id, "KILL"]);
    assert!(!out.status.success(), "{}: kill without --all on a stopped container succeeded", rt.name());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container not running"),
        "{}: {}",
        rt.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    rt.ok(&["kill", "--all", &id, "TERM"]);
    let got = wait_for_file(&b.rootfs().join("tmp/got"));
    assert_eq!(got.trim(), "got-term", "{}", rt.name());
    wait_until("the child to exit", || !alive(child));
    rt.ok(&["kill", "--all", &id, "KILL"]);
    rt.ok(&["delete", &id]);
}

#[test]
fn kill_all_signals_what_a_stopped_host_pid_container_left() {
    if skip() {
        return;
    }
    kill_all_on_stopped(&Rt::ours());
    if let Some(runc) = Rt::runc() {
        kill_all_on_stopped(&runc);
    }
}

/// `exec --ignore-paused` into a paused container: refused without the flag; with it the
/// process is started in the frozen cgroup, does nothing until `resume`, then runs and exec
/// returns its status. runc 1.1.5 does the same (its exec blocks until resume).
fn exec_ignore_paused(rt: &Rt) {
    let b = Bundle::new(&sh("sleep 60"));
    let id = unique_id("igpause");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["pause", &id]);
    let out = rt.run(&["exec", &id, "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot exec in a paused container (use --ignore-paused to override)"),
        "{}: {err}",
        rt.name()
    );
    let mut exec = rt
        .cmd(&["exec", "--ignore-paused", &id, "sh", "-c", "echo ran > /tmp/ran; exit 7"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(!b.rootfs().join("tmp/ran").exists(), "{}: the process ran in a paused container", rt.name());
    assert_eq!(rt.status(&id), "paused", "{}", rt.name());
    rt.ok(&["resume", &id]);
    let status = exec.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{}", rt.name());
    assert_eq!(std::fs::read_to_string(b.rootfs().join("tmp/ran")).unwrap(), "ran\n", "{}", rt.name());
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_ignore_paused_runs_on_resume() {
    if skip() {
        return;
    }
    exec_ignore_paused(&Rt::ours());
    if let Some(runc) = Rt::runc() {
        exec_ignore_paused(&runc);
    }
}

/// Hooks without `env`: createContainer and startContainer (run by the container's init) get
/// `process.env`; the runtime's own hooks (createRuntime, poststart, poststop) inherit the
/// runtime's environment. A hook with `env` gets exactly that.
fn hook_env(rt: &Rt) -> Vec<(String, String)> {
    let mut cfg = base_config(&["true"]);
    cfg["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FROM_PROCESS=1"]);
    let b = Bundle::new(&cfg);
    let out = b.path().join("hooks");
    std::fs::create_dir(&out).unwrap();
    let host = |name: &str| json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("env > {}/{name}", out.display())]}]);
    cfg["hooks"] = json!({
        "createRuntime": host("createRuntime"),
        "createContainer": host("createContainer"),
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "env > /tmp/startContainer"]}],
        "poststart": host("poststart"),
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("env > {}/poststop", out.display())], "env": ["ONLY=this"]}]
    });
    b.write_config(&cfg);
    let id = unique_id("hookenv");
    let r = rt.run_env(&["run", "--bundle", b.path().to_str().unwrap(), &id], &[("FROM_CALLER", "1")]);
    assert!(r.status.success(), "{}: {}", rt.name(), String::from_utf8_lossy(&r.stderr));
    let mut seen = Vec::new();
    for (hook, file) in [
        ("createRuntime", out.join("createRuntime")),
        ("createContainer", out.join("createContainer")),
        ("startContainer", b.rootfs().join("tmp/startContainer")),
        ("poststart", out.join("poststart")),
        ("poststop", out.join("poststop")),
    ] {
        let env = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {hook} wrote nothing: {e}", rt.name()));
        let mut vars: Vec<&str> = ["FROM_PROCESS", "FROM_CALLER", "ONLY"]
            .into_iter()
            .filter(|v| env.lines().any(|l| l.starts_with(&format!("{v}="))))
            .collect();
        vars.sort();
        seen.push((hook.to_string(), vars.join(",")));
    }
    seen
}

#[test]
fn hooks_without_env_inherit_as_in_runc() {
    if skip() {
        return;
    }
    let ours = hook_env(&Rt::ours());
    let expect: Vec<(String, String)> = [
        ("createRuntime", "FROM_CALLER"),
        ("createContainer", "FROM_PROCESS"),
        ("startContainer", "FROM_PROCESS"),
        ("poststart", "FROM_CALLER"),
        ("poststop", "ONLY"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(ours, expect);
    if let Some(runc) = Rt::runc() {
        assert_eq!(hook_env(&runc), expect, "runc");
    }
}

/// A time namespace in a new user namespace: the offsets are written (runc 1.1.5 has no time
/// namespace at all, so there is nothing to compare with).
#[test]
fn time_namespace_in_a_user_namespace_has_its_offsets() {
    if skip() || !Path::new("/proc/self/ns/time").exists() {
        return;
    }
    let rt = Rt::ours();
    let mut cfg = base_config(&["cat", "/proc/uptime"]);
    cfg["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}, {"type": "user"}, {"type": "time"}]);
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 86400, "nanosecs": 0}});
    let b = Bundle::new(&cfg);
    let uptime = || -> f64 {
        std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = uptime();
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &unique_id("timens")]);
    let after = uptime();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let inside: f64 = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|_| panic!("uptime inside: {text:?}"));
    assert!(
        inside >= before + 86400.0 && inside <= after + 86400.0 + 1.0,
        "uptime inside {inside}, host {before}..{after}"
    );
}

/// procfs or sysfs over a symlink in the rootfs is refused in runc's words; and an unknown
/// capability in config.json is ignored with runc's warning (runc >= 1.1).
fn errors_and_warnings(rt: &Rt) {
    for (dir, typ) in [("proc", "proc"), ("sys", "sysfs")] {
        let b = Bundle::new(&sh("true"));
        std::fs::remove_dir(b.rootfs().join(dir)).unwrap();
        std::fs::create_dir(b.rootfs().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", b.rootfs().join(dir)).unwrap();
        let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &unique_id("symproc")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: {typ} mounted through a symlink", rt.name());
        let want = format!(r#"error mounting \"{typ}\" to rootfs at \"/{dir}\": filesystem \"{typ}\" must be mounted on ordinary directory"#);
        let plain = want.replace('\\', "");
        assert!(err.contains(&want) || err.contains(&plain), "{}: {err}", rt.name());
        assert!(
            std::fs::read_dir(b.rootfs().join("elsewhere")).unwrap().next().is_none(),
            "{}: mounted through the symlink",
            rt.name()
        );
    }
    let mut cfg = sh("grep ^CapBnd /proc/self/status");
    for set in ["bounding", "effective", "permitted"] {
        cfg["process"]["capabilities"][set] = json!(["CAP_KILL", "CAP_FOO"]);
    }
    let b = Bundle::new(&cfg);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &unique_id("capfoo")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {err}", rt.name());
    assert!(err.contains("ignoring unknown or unavailable capabilities: [CAP_FOO]"), "{}: {err}", rt.name());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "CapBnd:\t0000000000000020", "{}", rt.name());
}

#[test]
fn error_and_warning_texts_match_runc() {
    if skip() {
        return;
    }
    errors_and_warnings(&Rt::ours());
    if let Some(runc) = Rt::runc() {
        errors_and_warnings(&runc);
    }
}
