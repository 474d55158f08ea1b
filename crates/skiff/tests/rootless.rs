//! Rootless: a throwaway non-root user with an /etc/subuid range runs skiff with its store in
//! its home: images, run, -d/exec/logs/stop/rm, users mapped into the range, volumes,
//! --network none|host, commit, push and pull. Everything happens inside the user's pause namespaces; the
//! host keeps no mount, and the user, its files and /etc/sub[ug]id are restored afterwards.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;

struct User {
    name: String,
    home: tempfile::TempDir,
    subuid: Vec<u8>,
    subgid: Vec<u8>,
}

fn sh(c: &mut Command) -> Output {
    let o = c.output().expect("spawn");
    assert!(o.status.success(), "{c:?}: {}", text(&o.stderr));
    o
}

impl User {
    fn new() -> Option<User> {
        for tool in ["/usr/sbin/useradd", "/usr/sbin/userdel", "/usr/bin/newuidmap", "/usr/bin/setpriv"] {
            if !Path::new(tool).exists() {
                eprintln!("skipping: {tool} missing (scripts/setup.sh installs uidmap)");
                return None;
            }
        }
        let subuid = std::fs::read("/etc/subuid").unwrap_or_default();
        let subgid = std::fs::read("/etc/subgid").unwrap_or_default();
        let home = tempfile::Builder::new().prefix("skiff-rootless-").tempdir_in("/tmp").unwrap();
        let name = format!("skrl{}", std::process::id() % 100000);
        sh(Command::new("/usr/sbin/useradd")
            .args(["-M", "-d"])
            .arg(home.path())
            .args(["-s", "/bin/sh", &name]));
        let u = User { name, home, subuid, subgid };
        // Our own range, whether or not useradd added one.
        for f in ["/etc/subuid", "/etc/subgid"] {
            let mut t = std::fs::read_to_string(f).unwrap_or_default();
            if !t.lines().any(|l| l.starts_with(&format!("{}:", u.name))) {
                t.push_str(&format!("{}:700000:65536\n", u.name));
                std::fs::write(f, t).unwrap();
            }
        }
        sh(Command::new("chown").arg(format!("{0}:{0}", u.name)).arg(u.home.path()));
        std::fs::set_permissions(u.home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // The binaries and the image tar where the user can read them.
        let bin = u.home.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for b in [
            common::skiff_bin().to_string(),
            Path::new(common::skiff_bin()).with_file_name("skiff-monitor").to_string_lossy().into_owned(),
        ] {
            std::fs::copy(&b, bin.join(Path::new(&b).file_name().unwrap())).unwrap();
        }
        std::fs::copy(common::busybox_tar(), u.home.path().join("busybox.tar")).unwrap();
        Some(u)
    }

    fn store(&self) -> PathBuf {
        self.home.path().join(".local/share/skiff")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("/usr/bin/setpriv")
            .args(["--reuid", &self.name, "--regid", &self.name, "--init-groups", "--"])
            .arg(self.home.path().join("bin/skiff"))
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .current_dir("/")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "rootless skiff {args:?} ({:?}): {} {}",
            o.status.code(),
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn pause_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.store().join("pause.pid"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        if let Some(pid) = self.pause_pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("/usr/sbin/userdel").arg(&self.name).output();
        std::fs::write("/etc/subuid", &self.subuid).unwrap();
        std::fs::write("/etc/subgid", &self.subgid).unwrap();
        // Files the user's containers made are owned by its subordinate ids: root removes them.
        let _ = Command::new("rm").arg("-rf").arg(self.home.path()).status();
    }
}

#[test]
fn a_non_root_user_runs_containers() {
    let Some(u) = User::new() else { return };
    let tar = u.home.path().join("busybox.tar");
    assert!(u.ok(&["import", tar.to_str().unwrap(), "busybox"]).starts_with("sha256:"));
    // The store is in the user's home, owned by the user.
    let md = std::fs::metadata(u.store()).unwrap();
    assert_ne!(md.uid(), 0);
    // Root in the container, the image's files owned by root (mapped), the user's range used.
    let out = u.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "id -u; stat -c %u /bin/busybox; cat /proc/self/uid_map | wc -l; echo ok > /tmp/f && cat /tmp/f",
    ]);
    assert_eq!(out, "0\n0\n2\nok\n");
    // A user id of the range inside: files it writes belong to the matching subordinate id.
    let vol = u.ok(&["run", "--rm", "-u", "1234", "-v", "data:/v", "busybox", "sh", "-c", "id -u"]);
    assert_eq!(vol, "1234\n");
    u.ok(&["run", "--rm", "-v", "data:/v", "busybox", "sh", "-c", "echo x > /v/f; chown 1234 /v/f"]);
    let f = u.store().join("volumes/data/_data/f");
    let owner = std::fs::metadata(&f).unwrap().uid();
    assert!(owner >= 100000 && owner != 1234 && owner != 0, "file of container uid 1234 is host uid {owner}");
    // A detached container, exec, logs, stop, rm.
    u.ok(&[
        "run",
        "-d",
        "--name",
        "bg",
        "busybox",
        "sh",
        "-c",
        "echo up; trap 'exit 5' TERM; while true; do sleep 0.1; done",
    ]);
    assert!(common::eventually(5, || u.ok(&["logs", "bg"]) == "up\n"));
    assert_eq!(u.ok(&["exec", "-u", "nobody", "bg", "id", "-u"]), "65534\n");
    u.ok(&["stop", "bg"]);
    assert_eq!(u.ok(&["inspect", "-f", "{{.State.ExitCode}}", "bg"]).trim(), "5");
    // commit works without a cgroup to freeze.
    u.ok(&["run", "--name", "w1", "busybox", "sh", "-c", "echo committed > /etc/c"]);
    u.ok(&["commit", "w1", "mine"]);
    assert_eq!(u.ok(&["run", "--rm", "mine", "cat", "/etc/c"]), "committed\n");
    // --network none has only lo; host sees the host's interfaces.
    assert_eq!(u.ok(&["run", "--rm", "busybox", "ls", "/sys/class/net"]), "lo\n");
    let host = u.ok(&["run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"]);
    assert!(host.lines().count() > 1, "{host}");
    // Nothing of the user's store is mounted on the host.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(u.home.path().to_str().unwrap()), "rootless mounts leaked to the host");
    u.ok(&["rm", "bg", "w1"]);
    assert_eq!(u.ok(&["ps", "-aq"]), "");
    // push and pull run inside the user's namespaces too; the pulled layer is unpacked rootless.
    let reg = testreg::Registry::start(testreg::RegistryOpts::default());
    let dest = format!("{}/rl/mine:1", reg.host());
    u.ok(&["push", "-q", "--tls-verify=false", "mine", &dest]);
    u.ok(&["rmi", "mine"]);
    let pulled = u.ok(&["pull", "--tls-verify=false", &dest]);
    assert_eq!(pulled.matches("Pull complete").count(), 2, "{pulled}");
    assert_eq!(
        u.ok(&["run", "--rm", &dest, "sh", "-c", "cat /etc/c; stat -c %u /bin/busybox"]),
        "committed\n0\n"
    );
    // A layer with a device node: refused in a rootless store, naming the entry; nothing added.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Char);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_mode(0o666);
    h.set_size(0);
    h.set_cksum();
    b.append_data(&mut h, "dev/evil-null", &[][..]).unwrap();
    let dev_tar = u.home.path().join("dev.tar");
    std::fs::write(&dev_tar, b.into_inner().unwrap()).unwrap();
    let before = u.ok(&["images", "-q"]);
    let o = u.run(&["import", dev_tar.to_str().unwrap(), "devices:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("dev/evil-null"), "{}", text(&o.stderr));
    assert_eq!(u.ok(&["images", "-q"]), before);
}
