//! Shared helpers of the integration tests: a busybox root filesystem tar, unique names,
//! a private podman (own storage in a temp dir), a private dockerd, overlay mounts. Every
//! helper cleans up in `Drop`, so a failing test leaves nothing behind.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use skiff_image::{Store, StoreOptions};

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}{}x{nanos}", std::process::id())
}

pub fn open_store(dir: &Path) -> Store {
    Store::open(dir, StoreOptions { rootless: !is_root() }).unwrap()
}

pub const BUSYBOX: &str = "/bin/busybox";

/// A busybox root filesystem: /bin/busybox and applet symlinks, /etc/passwd, /etc/marker.
pub fn busybox_rootfs(marker: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        b.append_data(&mut h, p, std::io::empty()).unwrap();
    };
    let file = |b: &mut tar::Builder<Vec<u8>>, p: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, p, data).unwrap();
    };
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        dir(&mut b, d, if d == "tmp" { 0o1777 } else { 0o755 });
    }
    let bb = fs::read(BUSYBOX).expect("busybox-static installed");
    file(&mut b, "bin/busybox", &bb, 0o755);
    for applet in ["sh", "ls", "cat", "echo", "true", "rm", "mkdir", "touch"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox").unwrap();
    }
    file(&mut b, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644);
    file(&mut b, "etc/marker", marker.as_bytes(), 0o644);
    b.into_inner().unwrap()
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).trim().to_string()
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v
}

pub fn unmount_all_below(dir: &Path) {
    for m in mounts_below(dir) {
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A read-only overlay of layer dirs (bottom first) at `target`; unmounted on drop.
pub struct Overlay {
    pub target: PathBuf,
}

impl Overlay {
    pub fn mount(lower_bottom_first: &[PathBuf], upper_work: Option<(&Path, &Path)>, target: &Path) -> Overlay {
        fs::create_dir_all(target).unwrap();
        let lower: Vec<String> = lower_bottom_first.iter().rev().map(|p| p.display().to_string()).collect();
        let mut opts = format!("lowerdir={}", lower.join(":"));
        if let Some((u, w)) = upper_work {
            opts.push_str(&format!(",upperdir={},workdir={}", u.display(), w.display()));
        }
        opts.push_str(",redirect_dir=off,metacopy=off,index=off");
        nix::mount::mount(Some("overlay"), target, Some("overlay"), nix::mount::MsFlags::empty(), Some(opts.as_str()))
            .unwrap_or_else(|e| panic!("mount overlay {opts}: {e}"));
        Overlay { target: target.to_path_buf() }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.target, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// podman with its own storage and config under a temp dir.
pub struct Podman {
    pub dir: tempfile::TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        let dir = tempfile::Builder::new().prefix("skiff-podman").tempdir().unwrap();
        let d = dir.path();
        fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
                d.display()
            ),
        )
        .unwrap();
        fs::write(
            d.join("containers.conf"),
            format!(
                "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{0}/events.log\"\ntmp_dir = \"{0}/tmp\"\nvolume_path = \"{0}/volumes\"\nstatic_dir = \"{0}/graph/libpod\"\n",
                d.display()
            ),
        )
        .unwrap();
        Podman { dir }
    }

    pub fn env(&self, cmd: &mut Command) {
        let d = self.dir.path();
        cmd.env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("TMPDIR", d);
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        self.env(&mut c);
        c
    }

    /// The `containers-storage:` transport spec for skopeo.
    pub fn storage_ref(&self, image: &str) -> String {
        let d = self.dir.path();
        format!("containers-storage:[overlay@{0}/graph+{0}/run]{image}", d.display())
    }

    pub fn skopeo(&self) -> Command {
        let mut c = Command::new("skopeo");
        self.env(&mut c);
        c
    }

    pub fn inspect(&self, image: &str, format: &str) -> String {
        stdout(self.cmd().args(["image", "inspect", "--format", format, image]))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd().args(["system", "reset", "--force"]).output();
        unmount_all_below(self.dir.path());
    }
}

/// A private dockerd (own data-root, exec-root, socket, key path) stopped on drop, leaving
/// /etc/docker as it found it.
pub struct Dockerd {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    etc_before: Vec<PathBuf>,
    run_docker_existed: bool,
}

fn list_dir(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(p).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.sort();
    v
}

impl Dockerd {
    pub fn start() -> Dockerd {
        // Short paths: the socket path must fit in sun_path.
        let dir = tempfile::Builder::new().prefix("skd").tempdir_in("/tmp").unwrap();
        let d = dir.path();
        let etc_before = list_dir(Path::new("/etc/docker"));
        let run_docker_existed = Path::new("/run/docker").exists();
        fs::write(d.join("daemon.json"), format!("{{\"deprecated-key-path\": \"{}/key.json\"}}", d.display())).unwrap();
        let log = fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}/docker.sock", d.display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-masq=false"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd");
        let mut me = Dockerd {
            dir,
            child: Some(child),
            etc_before,
            run_docker_existed,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if me.cmd().arg("version").output().is_ok_and(|o| o.status.success()) {
                break;
            }
            if let Some(c) = me.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let log = fs::read_to_string(me.dir.path().join("dockerd.log")).unwrap_or_default();
                    panic!("dockerd exited with {st}: {log}");
                }
            }
            assert!(Instant::now() < deadline, "dockerd did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        me
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("/usr/bin/docker");
        c.env("DOCKER_HOST", format!("unix://{}/docker.sock", self.dir.path().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("cli"));
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        unmount_all_below(self.dir.path());
        for p in list_dir(Path::new("/etc/docker")) {
            if !self.etc_before.contains(&p) {
                let _ = fs::remove_file(&p).or_else(|_| fs::remove_dir_all(&p));
            }
        }
        if !self.run_docker_existed {
            // Only if empty: another daemon may have started meanwhile.
            let _ = fs::remove_dir("/run/docker/plugins");
            let _ = fs::remove_dir("/run/docker");
        }
    }
}
