//! containerd 1.6 with `containerd-shim-runc-v2` running its containers on skiff-runtime.
//!
//! One containerd daemon for the whole file, started on first use with everything (root, state,
//! sockets, fifos, the runc root) in a temp dir and CRI disabled. Its PATH starts with a dir whose
//! `runc` is a symlink to our binary, and every `ctr run` also selects it through the runtime
//! options (`--runc-binary`, i.e. `BinaryName`) with `--runc-root` in the temp dir. Each container
//! is checked to have skiff's state under that root, so none went through Debian's runc.
//!
//! The image is built here from busybox-static (layer tar, config, manifest, index: an
//! oci-archive) and loaded with `ctr image import`: no registry, no network.
//!
//! Cleanup runs at process exit (atexit), also after failed tests: containers removed through
//! ctr, the daemon stopped, leftover shims and container processes killed by pid and reaped
//! (this process is a child subreaper, so orphaned shims are ours), mounts under the temp dir
//! detached, cgroups of our namespace removed, the temp dir deleted.
//!
//! Skipped (passes, says why) when not root or containerd, ctr, the shim, busybox-static, tar
//! or sha256sum is missing.

mod common;

use common::clients::*;
use common::count_in;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const IMAGE: &str = "docker.io/skiff/busybox:ctrd-test";
/// How long any single ctr command may take.
const CTR_TIMEOUT: Duration = Duration::from_secs(60);

/// The shared daemon.
struct Daemon {
    dir: PathBuf,
    ns: String,
    child: Mutex<Option<Child>>,
    /// Whether /run/containerd existed before we started (the shims put their sockets in
    /// /run/containerd/s whatever the config says).
    run_dir_existed: bool,
    manifest_digest: String,
}

static DAEMON: OnceLock<Option<Daemon>> = OnceLock::new();

/// The daemon, started on first use; `None` means skip.
fn daemon() -> Option<&'static Daemon> {
    DAEMON
        .get_or_init(|| {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipping containerd tests: needs root");
                return None;
            }
            for tool in ["containerd", "ctr", "containerd-shim-runc-v2", "tar", "sha256sum"] {
                if which(tool).is_none() {
                    eprintln!("skipping containerd tests: {tool} is not installed (scripts/setup.sh installs containerd)");
                    return None;
                }
            }
            if !Path::new("/bin/busybox").exists() {
                eprintln!("skipping containerd tests: needs /bin/busybox (busybox-static)");
                return None;
            }
            Some(start_daemon())
        })
        .as_ref()
}

fn start_daemon() -> Daemon {
    // Orphaned shims (containerd double-forks them) and their children become ours to reap
    // instead of pid 1's, which does not reap on this machine.
    nix::sys::prctl::set_child_subreaper(true).expect("become a child subreaper");
    // Short path: socket paths must fit in 108 bytes.
    let dir = tempfile::Builder::new()
        .prefix("skc")
        .tempdir_in("/tmp")
        .expect("temp dir")
        .keep();
    let ns = format!("skiff-ctrd-{}", std::process::id());
    let run_dir_existed = Path::new("/run/containerd").exists();
    // SAFETY: registering a plain extern "C" fn; it only runs at exit.
    unsafe {
        libc::atexit(cleanup_at_exit);
    }
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(common::BIN, bin.join("runc")).unwrap();
    std::fs::create_dir_all(dir.join("fifo")).unwrap();
    let d = dir.display();
    let config = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.ttrpc.sock"
[debug]
  address = ""
  level = "debug"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new("containerd")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start containerd");
    let mut daemon = Daemon {
        dir,
        ns,
        child: Mutex::new(Some(child)),
        run_dir_existed,
        manifest_digest: String::new(),
    };
    let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let t0 = Instant::now();
        while !daemon.ctr(&["version"]).status.success() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "containerd did not come up:\n{}",
                daemon.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let archive = daemon.dir.join("image.tar");
        let digest = build_oci_archive(&daemon.dir.join("image"), &archive);
        daemon.ok(&["image", "import", archive.to_str().unwrap()]);
        digest
    }));
    match ready {
        Ok(digest) => daemon.manifest_digest = digest,
        Err(e) => {
            // Not stored in DAEMON, so the atexit hook would not see it: clean up now.
            daemon.cleanup();
            std::panic::resume_unwind(e);
        }
    }
    daemon
}

impl Daemon {
    fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("c.sock"))
            .arg("--namespace")
            .arg(&self.ns)
            .args(args);
        c
    }

    /// Runs ctr with a timeout; output through files (a container may inherit ctr's stdio).
    fn ctr(&self, args: &[&str]) -> Out {
        run_captured(self.ctr_cmd(args), None, CTR_TIMEOUT, &format!("ctr {args:?}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(
            o.status.success(),
            "ctr {args:?} failed ({}): {}{}\n{}",
            o.status,
            o.stdout,
            o.stderr,
            self.log_tail()
        );
        o.stdout
    }

    /// The `ctr run` options selecting our binary: BinaryName, its --root, fifos in the temp dir.
    fn run_opts(&self) -> Vec<String> {
        vec![
            "--runc-binary".into(),
            self.dir.join("bin/runc").display().to_string(),
            "--runc-root".into(),
            self.dir.join("runc").display().to_string(),
            "--fifo-dir".into(),
            self.dir.join("fifo").display().to_string(),
        ]
    }

    /// `ctr run [extra] OPTS IMAGE id args...` as an argument vector.
    fn run_args(&self, extra: &[&str], id: &str, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec!["run".into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(self.run_opts());
        v.push(IMAGE.into());
        v.push(id.into());
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
            .join(id)
    }

    fn rootfs(&self, id: &str) -> PathBuf {
        self.bundle(id).join("rootfs")
    }

    /// skiff's state dir for `id` under the root the shim passes (`--runc-root` + namespace).
    fn state_dir(&self, id: &str) -> PathBuf {
        self.dir.join("runc").join(&self.ns).join(id)
    }

    /// The shim's default runc root for our namespace: used when ctr's runtime options are
    /// dropped (`--uidmap`, `--no-pivot`), with `runc` from containerd's PATH.
    fn default_root(&self) -> PathBuf {
        Path::new("/run/containerd/runc").join(&self.ns)
    }

    /// The container went through skiff-runtime: its state.json is skiff's record (runc's has
    /// `init_process_pid`, ours `pid_start` and `cgroup_created`).
    fn assert_ours(&self, id: &str) -> Value {
        // Nothing ran without our options.
        let default = self.default_root().join(id);
        assert!(!default.exists(), "{} exists", default.display());
        self.assert_ours_in(&self.state_dir(id), id)
    }

    fn assert_ours_in(&self, state_dir: &Path, id: &str) -> Value {
        let p = state_dir.join("state.json");
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}: not created by skiff-runtime?", p.display()));
        let v: Value = serde_json::from_str(&text).expect("state.json is JSON");
        assert!(
            v.get("pid_start").is_some() && v.get("cgroup_created").is_some(),
            "not skiff's state: {text}"
        );
        assert!(v.get("init_process_pid").is_none(), "runc's state: {text}");
        assert_eq!(v["id"], id);
        v
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "containerd.log (tail):\n{}",
            lines[lines.len().saturating_sub(25)..].join("\n")
        )
    }

    /// `ctr task ls` as (id -> (pid, status)).
    fn tasks(&self) -> Vec<(String, i32, String)> {
        self.ok(&["task", "ls"])
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((
                    f.first()?.to_string(),
                    f.get(1)?.parse().ok()?,
                    f.get(2)?.to_string(),
                ))
            })
            .collect()
    }

    fn task_status(&self, id: &str) -> Option<(i32, String)> {
        self.tasks()
            .into_iter()
            .find(|t| t.0 == id)
            .map(|t| (t.1, t.2))
    }

    fn containers(&self) -> Vec<String> {
        self.ok(&["container", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The container's v1 cgroup dirs (containerd's default path `/<namespace>/<id>`).
    fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        hierarchies()
            .into_iter()
            .map(|h| h.join(&self.ns).join(id))
            .filter(|p| p.exists())
            .collect()
    }

    /// Nothing of `id` is left: no container, no skiff state, no cgroup, no rootfs mount.
    fn assert_gone(&self, id: &str) {
        assert!(
            !self.containers().contains(&id.to_string()),
            "container {id} still listed"
        );
        assert!(
            !self.state_dir(id).exists(),
            "skiff state of {id} left behind"
        );
        assert!(
            self.cgroup_dirs(id).is_empty(),
            "cgroups of {id} left: {:?}",
            self.cgroup_dirs(id)
        );
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let rootfs = self.rootfs(id);
        assert!(
            !mi.contains(rootfs.to_str().unwrap()),
            "rootfs of {id} still mounted"
        );
    }

    /// Creates `/tmp/go` in the container's rootfs (releases a [`GATE`]d script).
    fn open_gate(&self, id: &str) -> std::io::Result<()> {
        std::fs::write(self.rootfs(id).join("tmp/go"), "")
    }

    /// Waits until skiff's state for `id` exists (the container was created) and checks it.
    fn wait_ours(&self, id: &str) -> Value {
        wait_until(&format!("state of {id}"), Duration::from_secs(30), || {
            self.state_dir(id).join("state.json").exists()
        });
        self.assert_ours(id)
    }
}

/// Script prefix: waits until the host creates /tmp/go, so a foreground container lives long
/// enough to be checked.
const GATE: &str = "while [ ! -e /tmp/go ]; do sleep 0.02; done; ";

// ---------------------------------------------------------------------------------------------
// The image: an oci-archive built from busybox-static.

/// An OCI image layout (one uncompressed layer: the busybox rootfs) tarred into `archive`;
/// returns the manifest digest.
fn build_oci_archive(dir: &Path, archive: &Path) -> String {
    let rootfs = dir.join("rootfs");
    common::make_rootfs(&rootfs);
    std::fs::create_dir_all(dir.join("layout/blobs/sha256")).unwrap();
    let layout = dir.join("layout");
    let layer = dir.join("layer.tar");
    let st = Command::new("tar")
        .args([
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--sort=name",
            "-C",
        ])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success(), "tar of the layer failed");
    let layer_bytes = std::fs::read(&layer).unwrap();
    let (layer_digest, layer_size) = blob(&layout, &layer_bytes);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "/"
        },
        // Uncompressed layer: the diff id is the layer digest.
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
    });
    let (config_digest, config_size) = blob(&layout, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]
    });
    let (manifest_digest, manifest_size) = blob(&layout, &serde_json::to_vec(&manifest).unwrap());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "ctrd-test"}
        }]
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(archive)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success(), "tar of the archive failed");
    manifest_digest
}

// ---------------------------------------------------------------------------------------------
// Cleanup at exit.

extern "C" fn cleanup_at_exit() {
    if let Some(Some(d)) = DAEMON.get() {
        d.cleanup();
    }
}

impl Daemon {
    fn cleanup(&self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let sigkill = |pid: i32| {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        };
        // 1. Containers and tasks, through containerd.
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
        {
            for id in self.ctr(&["task", "ls", "-q"]).stdout.lines() {
                let _ = self.ctr(&["task", "rm", "--force", id]);
            }
            for id in self.ctr(&["container", "ls", "-q"]).stdout.lines() {
                let _ = self.ctr(&["container", "rm", id]);
            }
        }
        // 2. The daemon: SIGTERM, then SIGKILL after 10 s.
        if let Some(c) = child.take() {
            terminate(c, Duration::from_secs(10));
        }
        // 3. Shims still running for this daemon, and processes left in our cgroups.
        let sock = self.dir.join("c.sock").display().to_string();
        for pid in pids_with_arg(&sock) {
            sigkill(pid);
        }
        // 4, 5. Processes left in our namespace's cgroups, mounts under the temp dir, then
        // those cgroups.
        sweep_after_daemon(&self.dir, &self.ns);
        // 6. Our namespace's dir in the shim's default runc root (empty by now), the shim
        // socket dir containerd 1.6 hard-codes if we made it, then our temp dir.
        let _ = std::fs::remove_dir(self.default_root());
        if !self.run_dir_existed {
            for d in [
                "/run/containerd/s",
                "/run/containerd/fifo",
                "/run/containerd/runc",
                "/run/containerd",
            ] {
                let _ = std::fs::remove_dir(d);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// ctr on a pty.

/// Runs ctr with a new pty as its stdio and controlling terminal; `input` is typed once
/// `trigger` shows up in the output. Returns (exit code, output).
fn ctr_on_pty(
    d: &Daemon,
    args: &[String],
    on_output: &mut dyn FnMut(&str) -> Option<Vec<u8>>,
) -> (i32, String) {
    let size = nix::pty::Winsize {
        ws_row: 31,
        ws_col: 97,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .unwrap();
    }
    let slave = std::fs::File::from(pty.slave);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = d.ctr_cmd(&args);
    common::on_controlling_tty(&mut cmd, &slave);
    let mut child = cmd.spawn().expect("run ctr on a pty");
    drop(cmd);
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    // A watchdog: a stuck ctr is killed, which ends the read loop with EIO.
    let pid = child.id() as i32;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done2 = done.clone();
    let watchdog = std::thread::spawn(move || {
        let t0 = Instant::now();
        while !done2.load(std::sync::atomic::Ordering::SeqCst) {
            if t0.elapsed() > CTR_TIMEOUT {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    });
    let mut text = String::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n) = master.read(&mut chunk) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
        if let Some(input) = on_output(&text) {
            master.write_all(&input).unwrap();
        }
    }
    let status = child.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !watchdog.join().unwrap(),
        "ctr {args:?} timed out; output: {text}"
    );
    (status.code().unwrap_or(-1), text)
}

/// Starts a detached container running `script` (through ctr run -d) and checks it is ours.
fn run_detached(d: &Daemon, id: &str, script: &str) -> i32 {
    let args = d.run_args(&["-d"], id, &["sh", "-c", script]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    d.ok(&args);
    d.assert_ours(id);
    let (pid, status) = d.task_status(id).expect("task listed");
    assert_eq!(status, "RUNNING");
    pid
}

/// Stops and removes a detached container, checking nothing is left.
fn remove(d: &Daemon, id: &str) {
    let _ = d.ctr(&["task", "kill", "-s", "KILL", id]);
    wait_until(&format!("{id} stopped"), Duration::from_secs(20), || {
        d.task_status(id).is_none_or(|t| t.1 == "STOPPED")
    });
    let _ = d.ctr(&["task", "rm", id]);
    d.ok(&["container", "rm", id]);
    d.assert_gone(id);
}

// ---------------------------------------------------------------------------------------------
// The tests.

fn timed(name: &str, f: impl FnOnce(&Daemon)) {
    let Some(d) = daemon() else { return };
    let t0 = Instant::now();
    f(d);
    eprintln!("{name}: {:.2?}", t0.elapsed());
}

/// The image came in through `ctr image import` of our archive.
#[test]
fn image_import_from_local_oci_archive() {
    timed("image_import_from_local_oci_archive", |d| {
        let ls = d.ok(&["image", "ls"]);
        let line = ls
            .lines()
            .find(|l| l.starts_with(IMAGE))
            .unwrap_or_else(|| panic!("{IMAGE} not listed: {ls}"));
        assert!(line.contains(&d.manifest_digest), "{line}");
        assert!(
            line.contains("linux/"),
            "platform not read from our config: {line}"
        );
        // Unpacked for the default snapshotter: a container can be made from it.
        let check = d.ok(&["image", "check"]);
        assert!(
            check
                .lines()
                .any(|l| l.starts_with(IMAGE) && l.contains("complete")),
            "{check}"
        );
    });
}

/// `ctr run --rm`: output and exit status come back, the process runs in the cwd it asked
/// for (created by the runtime, as runc does), and the container is removed afterwards.
#[test]
fn run_rm_propagates_exit_code() {
    timed("run_rm_propagates_exit_code", |d| {
        let id = "rm-exit";
        let script = format!("{GATE}echo out; echo err >&2; pwd; exit 42");
        let args = d.run_args(&["--rm", "--cwd", "/work/new"], id, &["sh", "-c", &script]);
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let mut child = d
            .ctr_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .spawn()
            .unwrap();
        let ours = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.wait_ours(id)));
        let gate = d.open_gate(id);
        let status = common::wait_timeout(&mut child, CTR_TIMEOUT, "ctr run --rm");
        let (stdout, stderr) = (read_file(out), read_file(err));
        let ours = ours.unwrap_or_else(|e| std::panic::resume_unwind(e));
        gate.expect("write the gate file into the rootfs");
        assert_eq!(ours["spec"]["process"]["cwd"], "/work/new");
        assert_eq!(
            status.code(),
            Some(42),
            "stdout: {stdout}\nstderr: {stderr}"
        );
        assert_eq!(stdout, "out\n/work/new\n");
        assert_eq!(stderr, "err\n");
        d.assert_gone(id);

        let o = d.ctr(
            &d.run_args(&["--rm"], "rm-zero", &["true"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_eq!(o.code(), 0, "{}{}", o.stdout, o.stderr);
        d.assert_gone("rm-zero");

        // Killed from the host while ctr waits: the shim reports 128+SIGKILL.
        let id = "rm-kill";
        let args = d.run_args(&["--rm"], id, &["sleep", "1000"]);
        let mut child = d
            .ctr_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let ours = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until("rm-kill running", Duration::from_secs(30), || {
                d.task_status(id).is_some_and(|t| t.1 == "RUNNING")
            });
            d.assert_ours(id);
        }));
        let _ = d.ctr(&["task", "kill", "-s", "KILL", id]);
        let status = common::wait_timeout(&mut child, CTR_TIMEOUT, "ctr run --rm (killed)");
        ours.unwrap_or_else(|e| std::panic::resume_unwind(e));
        assert_eq!(status.code(), Some(137));
        d.assert_gone(id);
    });
}

/// `ctr run -t`: the container's stdio is a pty, input typed into ctr's terminal reaches it,
/// the exit status comes back.
#[test]
fn run_with_tty() {
    timed("run_with_tty", |d| {
        let id = "tty-run";
        let script = "tty; echo ready; read line; echo got-$line; exit 5";
        let args = d.run_args(&["--rm", "-t"], id, &["sh", "-c", script]);
        let mut sent = false;
        let mut checked = None;
        let (code, text) = ctr_on_pty(d, &args, &mut |text| {
            if !sent && text.contains("ready") {
                sent = true;
                checked = Some(d.assert_ours(id));
                return Some(b"abc\r".to_vec());
            }
            None
        });
        assert!(
            checked.is_some(),
            "never saw the container's output: {text}"
        );
        assert!(
            text.contains("/dev/pts/0"),
            "container's stdin is not a pty: {text}"
        );
        assert!(
            text.contains("got-abc"),
            "input did not reach the container: {text}"
        );
        assert_eq!(code, 5, "{text}");
        d.assert_gone(id);
    });
}

/// `ctr run -d`, then `ctr task exec` with and without a tty, detached, and `ctr task ps`
/// (the shim's `ps --format json`).
#[test]
fn detached_exec_and_ps() {
    timed("detached_exec_and_ps", |d| {
        let id = "det-exec";
        let init = run_detached(d, id, "echo started > /tmp/started; exec sleep 1000");
        let fifo = d.dir.join("fifo").display().to_string();

        let o = d.ctr(&[
            "task",
            "exec",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            "e1",
            id,
            "sh",
            "-c",
            "cat /tmp/started; echo $$; exit 7",
        ]);
        assert_eq!(o.code(), 7, "{}{}", o.stdout, o.stderr);
        assert!(
            o.stdout.starts_with("started\n"),
            "exec not in the container: {}",
            o.stdout
        );

        let args: Vec<String> = [
            "task",
            "exec",
            "-t",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            "e2",
            id,
            "sh",
            "-c",
            "tty; read x; echo tty-$x; exit 8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut sent = false;
        let (code, text) = ctr_on_pty(d, &args, &mut |text| {
            if !sent && text.contains("/dev/pts/") {
                sent = true;
                return Some(b"in\r".to_vec());
            }
            None
        });
        assert_eq!(code, 8, "{text}");
        assert!(text.contains("tty-in"), "exec's pty input: {text}");

        // A detached exec: `task ps` lists it with the init, and both are in the container's cgroup.
        d.ok(&[
            "task",
            "exec",
            "-d",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            "bg",
            id,
            "sleep",
            "1000",
        ]);
        let mut pids = Vec::new();
        wait_until("two processes in task ps", Duration::from_secs(20), || {
            pids = d
                .ok(&["task", "ps", id])
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next()?.parse::<i32>().ok())
                .collect();
            pids.len() == 2
        });
        assert!(pids.contains(&init), "init {init} not in task ps: {pids:?}");
        let procs = std::fs::read_to_string(
            Path::new("/sys/fs/cgroup/pids")
                .join(&d.ns)
                .join(id)
                .join("cgroup.procs"),
        )
        .unwrap();
        for p in &pids {
            assert!(
                procs.lines().any(|l| l.trim() == p.to_string()),
                "{p} not in the container's cgroup: {procs}"
            );
        }
        remove(d, id);
    });
}

/// `ctr task pause` / `resume`: the state shows in `ctr task ls`, the freezer cgroup is frozen
/// and the container's counter really stops, then moves again.
#[test]
fn pause_and_resume() {
    timed("pause_and_resume", |d| {
        let id = "pause";
        run_detached(
            d,
            id,
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done",
        );
        let count_file = d.rootfs(id).join("tmp/count");
        let count = || count_in(&count_file);
        let c0 = count();
        wait_until("the counter to move", Duration::from_secs(20), || {
            count() > c0
        });
        d.ok(&["task", "pause", id]);
        assert_eq!(d.task_status(id).map(|t| t.1).as_deref(), Some("PAUSED"));
        let freezer = Path::new("/sys/fs/cgroup/freezer")
            .join(&d.ns)
            .join(id)
            .join("freezer.state");
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
        // Raw text: the loop may have been frozen between truncating and writing the file,
        // which leaves it empty until the resume.
        let raw = || std::fs::read_to_string(&count_file).unwrap();
        let frozen_text = raw();
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(raw(), frozen_text, "the counter moved while paused");
        let frozen: u64 = frozen_text.trim().parse().unwrap_or(c0);
        d.ok(&["task", "resume", id]);
        assert_eq!(d.task_status(id).map(|t| t.1).as_deref(), Some("RUNNING"));
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
        wait_until(
            "the counter to move after resume",
            Duration::from_secs(20),
            || count() > frozen,
        );
        remove(d, id);
    });
}

/// `ctr task kill` (SIGTERM, the default) reaches the init's trap and its exit status is
/// reported; `kill --all` kills exec'd processes too; `task rm` and `container rm` (the
/// runtime's `delete`, twice) leave nothing behind.
#[test]
fn kill_kill_all_and_delete() {
    timed("kill_kill_all_and_delete", |d| {
        let id = "kill-term";
        run_detached(
            d,
            id,
            "trap 'exit 42' TERM; echo > /tmp/trap; while :; do sleep 0.05; done",
        );
        common::wait_for_file(&d.rootfs(id).join("tmp/trap"));
        d.ok(&["task", "kill", id]);
        wait_until("kill-term stopped", Duration::from_secs(20), || {
            d.task_status(id).is_some_and(|t| t.1 == "STOPPED")
        });
        let o = d.ctr(&["task", "rm", id]);
        assert!(o.status.success(), "{}", o.stderr);
        assert!(
            o.stderr.contains("exit code 42"),
            "the trap's exit status: {}",
            o.stderr
        );
        assert!(!d.state_dir(id).exists(), "task rm left skiff state");
        d.ok(&["container", "rm", id]);
        d.assert_gone(id);

        let id = "kill-all";
        let fifo = d.dir.join("fifo").display().to_string();
        let init = run_detached(d, id, "exec sleep 1000");
        d.ok(&[
            "task",
            "exec",
            "-d",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            "x",
            id,
            "sleep",
            "1001",
        ]);
        let procs = Path::new("/sys/fs/cgroup/pids")
            .join(&d.ns)
            .join(id)
            .join("cgroup.procs");
        let mut pids: Vec<i32> = Vec::new();
        wait_until("the exec'd process", Duration::from_secs(20), || {
            pids = std::fs::read_to_string(&procs)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            pids.len() == 2
        });
        let exec_pid = *pids.iter().find(|p| **p != init).expect("exec pid");
        d.ok(&["task", "kill", "--all", "-s", "KILL", id]);
        wait_until("kill-all stopped", Duration::from_secs(20), || {
            d.task_status(id).is_some_and(|t| t.1 == "STOPPED")
        });
        wait_until("the exec'd process to die", Duration::from_secs(20), || {
            !alive(exec_pid.into())
        });
        d.ok(&["task", "rm", id]);
        d.ok(&["container", "rm", id]);
        d.assert_gone(id);
    });
}

/// `ctr run --uidmap` sends task options of its own, which drop `--runc-binary` and
/// `--runc-root`: the shim then runs `runc` from containerd's PATH (ours) with its default root.
#[test]
fn user_namespace_through_path_runc() {
    timed("user_namespace_through_path_runc", |d| {
        let id = "userns";
        let args = d.run_args(
            &["-d", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"],
            id,
            &["sleep", "1000"],
        );
        d.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let st = d.assert_ours_in(&d.default_root().join(id), id);
        let pid = st["pid"].as_i64().expect("pid") as i32;
        let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
        assert_eq!(map.split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"]);
        let _ = d.ctr(&["task", "kill", "-s", "KILL", id]);
        wait_until("userns stopped", Duration::from_secs(20), || {
            d.task_status(id).is_none_or(|t| t.1 == "STOPPED")
        });
        d.ok(&["task", "rm", id]);
        d.ok(&["container", "rm", id]);
        assert!(!d.default_root().join(id).exists(), "skiff state left in the default root");
        d.assert_gone(id);
    });
}

/// A failing create: our error message travels through the `--log` JSON file to the shim and
/// ctr prints it; nothing of the container is left.
#[test]
fn create_errors_reach_ctr() {
    timed("create_errors_reach_ctr", |d| {
        for (id, extra, cmd, want) in [
            (
                "bad-bin",
                vec![],
                "/bin/nonexistent",
                r#"exec: "/bin/nonexistent": no such file or directory"#,
            ),
            (
                "bad-cwd",
                vec!["--cwd", "/etc/passwd"],
                "true",
                "invalid config: process.cwd: chdir /etc/passwd: ENOTDIR",
            ),
            // The systemd cgroup driver (containerd's SystemdCgroup option) is refused, saying why.
            (
                "sysd",
                vec!["--runc-systemd-cgroup", "--cgroup", "system.slice:ctrd:sysd"],
                "true",
                "--systemd-cgroup: ",
            ),
        ] {
            let mut extra = extra;
            extra.push("--rm");
            let args = d.run_args(&extra, id, &[cmd]);
            let o = d.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>());
            assert_ne!(o.code(), 0);
            assert!(
                o.stderr.contains("OCI runtime create failed"),
                "{}",
                o.stderr
            );
            assert!(
                o.stderr.contains(want),
                "our message ({want}) not in ctr's output: {}",
                o.stderr
            );
            let _ = d.ctr(&["container", "rm", id]);
            d.assert_gone(id);
        }
    });
}

/// containerd's delete sequence against skiff-runtime directly, with the shim's flags:
/// `delete ID` then `delete --force ID` on the id already gone, `delete --force` of an id that
/// never existed and of a half-created state dir: all exit 0 and log no error.
#[test]
fn delete_twice_and_force_delete_of_gone_ids_exit_zero() {
    if !nix::unistd::geteuid().is_root() || !Path::new("/bin/busybox").exists() {
        eprintln!("skipping: needs root and /bin/busybox");
        return;
    }
    let t0 = Instant::now();
    let rt = common::Runtime::new();
    let b = common::Bundle::new(&common::base_config(&["sleep", "1000"]));
    let log = rt.root.path().join("log.json");
    let g = |args: &[&str]| {
        let mut v = vec!["--log", log.to_str().unwrap(), "--log-format", "json"];
        v.extend_from_slice(args);
        // Files, not pipes: the container's init is forked from `create` and keeps its stdio.
        let err = tempfile::tempfile().unwrap();
        let mut child = rt
            .cmd(&v)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err.try_clone().unwrap())
            .spawn()
            .expect("run skiff-runtime");
        let status = common::wait_timeout(&mut child, CTR_TIMEOUT, &format!("skiff-runtime {args:?}"));
        (status.code().unwrap_or(-1), read_file(err))
    };
    let id = common::unique_id("ctrdel");
    assert_eq!(
        g(&[
            "create",
            "--bundle",
            b.path().to_str().unwrap(),
            "--pid-file",
            b.path().join("init.pid").to_str().unwrap(),
            &id
        ])
        .0,
        0
    );
    assert_eq!(g(&["start", &id]).0, 0);
    let pid = rt.init_pid(&id).expect("init pid");
    assert_eq!(g(&["kill", &id, "9"]).0, 0);
    wait_until("the init to die", Duration::from_secs(20), || !alive(pid.into()));
    common::reap_pid(pid);
    assert_eq!(g(&["delete", &id]), (0, String::new()));
    assert_eq!(g(&["delete", "--force", &id]), (0, String::new()));
    assert_eq!(
        g(&["delete", "--force", "never-existed"]),
        (0, String::new())
    );
    std::fs::create_dir(rt.root.path().join("half")).unwrap();
    assert_eq!(g(&["delete", "--force", "half"]), (0, String::new()));
    assert!(
        !rt.root.path().join("half").exists(),
        "half-created state dir left"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("\"level\":\"error\""),
        "errors logged: {text}"
    );
    // Without --force a gone id is an error (runc's behaviour too), reported in the log.
    assert_eq!(g(&["delete", "never-existed"]).0, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["msg"], "container never-existed does not exist");
    common::assert_no_leftovers(&rt, &id);
    eprintln!(
        "delete_twice_and_force_delete_of_gone_ids_exit_zero: {:.2?}",
        t0.elapsed()
    );
}
