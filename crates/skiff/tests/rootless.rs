//! Rootless: a throwaway non-root user with an /etc/subuid range runs skiff with its store in
//! its home: images, run, -d/exec/logs/stop/rm, users mapped into the range, volumes,
//! --network none|host, commit, push and pull. Everything happens inside the user's pause namespaces; the
//! host keeps no mount, and the user, its files and /etc/sub[ug]id are restored afterwards.
//!
//! Networks: those tests default to `--network none` (SKIFF_DEFAULT_NETWORK, as tests/common
//! does); the `rootless_network_*` tests use Docker's default (`bridge`), which rootless is pasta
//! or slirp4netns. Those need /dev/net/tun open to the user: they make it 0666 while they run
//! (one at a time) and restore its mode. Their only traffic is to the host's 127.0.0.1.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::text;

struct User {
    name: String,
    home: tempfile::TempDir,
    subuid: Vec<u8>,
    subgid: Vec<u8>,
    /// Environment for the user's skiff on top of the defaults (`None`: removed).
    env: Vec<(&'static str, Option<String>)>,
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
        // Unique per test: the tests of this file run in parallel.
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("skrl{}x{}", std::process::id() % 100000, N.fetch_add(1, Ordering::Relaxed));
        sh(Command::new("/usr/sbin/useradd")
            .args(["-M", "-d"])
            .arg(home.path())
            .args(["-s", "/bin/sh", &name]));
        let u = User {
            name,
            home,
            subuid,
            subgid,
            env: Vec::new(),
        };
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
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid", &self.name, "--regid", &self.name, "--init-groups", "--"])
            .arg(self.home.path().join("bin/skiff"))
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .current_dir("/");
        // As tests/common's Store: no network unless a test asks (here: through `env`).
        if std::env::var_os("SKIFF_DEFAULT_NETWORK").is_none() {
            c.env("SKIFF_DEFAULT_NETWORK", "none");
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.output().unwrap()
    }

    /// The user's uid on the host.
    fn uid(&self) -> u32 {
        std::fs::metadata(self.home.path()).unwrap().uid()
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

/// Serializes the tests that open /dev/net/tun to the user (each restores its mode).
static TUN_LOCK: Mutex<()> = Mutex::new(());

/// /dev/net/tun readable and writable by everyone while it lives (pasta and slirp4netns open
/// it as the user); its mode is restored on drop, also on a panic. Left alone if already 0666.
struct TunAccess {
    restore: Option<u32>,
}

impl TunAccess {
    fn grant() -> Option<TunAccess> {
        let tun = Path::new("/dev/net/tun");
        let Ok(md) = std::fs::metadata(tun) else {
            eprintln!("skipping: no /dev/net/tun");
            return None;
        };
        let mode = md.permissions().mode() & 0o7777;
        if mode & 0o777 == 0o666 {
            return Some(TunAccess { restore: None });
        }
        std::fs::set_permissions(tun, std::fs::Permissions::from_mode((mode & !0o777) | 0o666)).unwrap();
        Some(TunAccess { restore: Some(mode) })
    }
}

impl Drop for TunAccess {
    fn drop(&mut self) {
        if let Some(mode) = self.restore {
            std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(mode)).expect("restore /dev/net/tun's mode");
        }
    }
}

fn installed(program: &str) -> bool {
    ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(program).exists())
}

/// A port nobody listens on at 127.0.0.1 (the kernel's pick; free again once dropped).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0): the status line and the body.
fn http_get(port: u16, path: &str) -> std::io::Result<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    Ok((head.lines().next().unwrap_or("").to_string(), body.to_string()))
}

/// Waits for the server behind the port to answer `path` (the helper's port is bound before the
/// container's program runs, so early connections may find no server yet).
fn fetch(port: u16, path: &str) -> String {
    let mut last = None;
    for _ in 0..100 {
        match http_get(port, path) {
            Ok((status, body)) if status.contains(" 200 ") => return body,
            other => last = Some(other),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("GET http://127.0.0.1:{port}{path}: {last:?}");
}

/// `(comm, uid, start time)` of a live (not zombie) process.
fn proc_info(pid: i32) -> Option<(String, u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    if matches!(f.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    let uid = std::fs::metadata(format!("/proc/{pid}")).ok()?.uid();
    Some((comm.to_string(), uid, f.get(19)?.parse().ok()?))
}

fn is_helper(comm: &str) -> bool {
    comm.starts_with("pasta") || comm.starts_with("passt") || comm.starts_with("slirp4netns")
}

/// Live processes of host uid `uid`: `(pid, comm)`.
fn procs_of(uid: u32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Some((comm, u, _)) = proc_info(pid) {
            if u == uid {
                out.push((pid, comm));
            }
        }
    }
    out
}

/// The helper that inspect names for `ctr`, checked to be live, the user's, and the program the
/// backend names: `(pid, start time)`.
fn helper_of(u: &User, ctr: &str, backend: &str) -> (i32, u64) {
    let pid: i32 = u
        .ok(&["inspect", "-f", "{{.NetworkSettings.SkiffRootlessNet.pid}}", ctr])
        .trim()
        .parse()
        .unwrap();
    let (comm, uid, start) = proc_info(pid).unwrap_or_else(|| panic!("{backend} pid {pid} of {ctr} is not running"));
    assert_eq!(uid, u.uid(), "{comm} ({pid}) runs as the user");
    let want = if backend == "pasta" {
        comm.starts_with("pasta") || comm.starts_with("passt")
    } else {
        comm == backend
    };
    assert!(want, "pid {pid} is {comm}, not {backend}");
    let recorded: u64 = u
        .ok(&["inspect", "-f", "{{.NetworkSettings.SkiffRootlessNet.pid_start}}", ctr])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(recorded, start, "recorded start time of {pid}");
    (pid, start)
}

fn gone(pid: i32, start: u64) -> bool {
    proc_info(pid).is_none_or(|(_, _, s)| s != start)
}

/// `backend`: the helper expected; `choose`: set SKIFF_ROOTLESS_NETWORK to it (else the default).
fn rootless_network(backend: &str, choose: bool) {
    if !installed(backend) {
        eprintln!("skipping: {backend} not installed");
        return;
    }
    let _serial = TUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(_tun) = TunAccess::grant() else { return };
    let Some(mut u) = User::new() else { return };
    // Docker's default network (`bridge`): rootless, the helper.
    u.env.push(("SKIFF_DEFAULT_NETWORK", None));
    u.env.push(("SKIFF_ROOTLESS_NETWORK", choose.then(|| backend.to_string())));
    let tar = u.home.path().join("busybox.tar");
    u.ok(&["import", tar.to_str().unwrap(), "busybox"]);

    // eth0 with an address and a default route; --network none: only lo.
    let out = u.ok(&["run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net; ip -4 -o addr show dev eth0; ip route"]);
    let mut lines = out.lines();
    assert_eq!((lines.next(), lines.next()), (Some("eth0"), Some("lo")), "{out}");
    assert!(out.contains("eth0    inet ") || out.contains("eth0 inet "), "no IPv4 address on eth0: {out}");
    assert!(
        out.lines().any(|l| l.starts_with("default via ") && l.contains("dev eth0")),
        "no default route: {out}"
    );
    if backend == "slirp4netns" {
        assert!(out.contains("inet 10.0.2.100/24"), "{out}");
        assert!(out.contains("default via 10.0.2.2 dev eth0"), "{out}");
    }
    assert_eq!(u.ok(&["run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"]), "lo\n");
    // No helper outlives those containers.
    assert!(
        common::eventually(5, || !procs_of(u.uid()).iter().any(|(_, c)| is_helper(c))),
        "{:?}",
        procs_of(u.uid())
    );

    // A web server published on the host's 127.0.0.1, serving a file of a volume.
    let token = format!("served-by-{backend}-{}", std::process::id());
    u.ok(&["run", "--rm", "-v", "www:/www", "busybox", "sh", "-c", &format!("echo {token} > /www/file")]);
    // A port found free can be taken (as some connection's ephemeral port) before skiff binds
    // it: then pick another.
    let port = (0..5)
        .find_map(|_| {
            let port = free_port();
            let publish = format!("127.0.0.1:{port}:80");
            let args = ["run", "-d", "--name", "web", "-p", &publish, "-v", "www:/www", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"];
            let o = u.run(&args);
            let err = text(&o.stderr);
            if o.status.success() {
                Some(port)
            } else if err.contains("already allocated") || err.contains("in use") {
                u.run(&["rm", "-f", "web"]);
                None
            } else {
                panic!("rootless skiff {args:?} ({:?}): {err}", o.status.code())
            }
        })
        .expect("five picked ports were all taken before use");
    assert_eq!(fetch(port, "/file"), format!("{token}\n"));
    assert_eq!(u.ok(&["port", "web"]), format!("80/tcp -> 127.0.0.1:{port}\n"));
    assert_eq!(u.ok(&["port", "web", "80"]), format!("127.0.0.1:{port}\n"));
    assert_eq!(u.ok(&["inspect", "-f", "{{.NetworkSettings.SkiffRootlessNet.backend}}", "web"]).trim(), backend);
    let (pid, start) = helper_of(&u, "web", backend);
    // What inspect says the container got is what it has.
    let ip = u
        .ok(&["inspect", "-f", "{{.NetworkSettings.SkiffRootlessNet.container_ip}}", "web"])
        .trim()
        .to_string();
    let gw = u
        .ok(&["inspect", "-f", "{{.NetworkSettings.SkiffRootlessNet.gateway}}", "web"])
        .trim()
        .to_string();
    // Docker's own fields say the same.
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}}", "web"])
            .trim(),
        format!("{ip} {gw}")
    );
    let inside = u.ok(&["exec", "web", "sh", "-c", "ip -4 -o addr show dev eth0; ip route show default"]);
    assert!(inside.contains(&format!("inet {ip}/")), "inspect says {ip}: {inside}");
    assert!(inside.contains(&format!("default via {gw} ")), "inspect says gateway {gw}: {inside}");

    // A host port that is taken: by a listener on the host, and by the running container.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = other.local_addr().unwrap().port();
    let helpers_before: Vec<(i32, String)> = procs_of(u.uid()).into_iter().filter(|(_, c)| is_helper(c)).collect();
    assert_eq!(helpers_before.len(), 1, "{helpers_before:?}");
    for (name, p) in [("clash1", taken), ("clash2", port)] {
        let o = u.run(&[
            "run",
            "-d",
            "--name",
            name,
            "-p",
            &format!("127.0.0.1:{p}:80"),
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
        ]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{err}");
        assert!(err.contains(&format!("127.0.0.1:{p}")) && err.contains("already allocated"), "{err}");
        assert_eq!(u.ok(&["inspect", "-f", "{{.State.Running}}", name]).trim(), "false");
        let helpers: Vec<(i32, String)> = procs_of(u.uid()).into_iter().filter(|(_, c)| is_helper(c)).collect();
        assert_eq!(helpers, helpers_before, "a failed start left a helper");
    }
    assert_eq!(u.ok(&["ps", "-q"]).lines().count(), 1, "only web runs");
    drop(other);
    u.ok(&["rm", "clash1", "clash2"]);
    assert_eq!(fetch(port, "/file"), format!("{token}\n"), "web still serves");

    // stop ends the helper and frees the port; start makes a new one.
    u.ok(&["stop", "-t", "1", "web"]);
    assert!(common::eventually(5, || gone(pid, start)), "{backend} {pid} outlived stop");
    assert!(common::eventually(5, || port_free(port)), "port {port} still bound after stop");
    assert!(http_get(port, "/file").is_err(), "nothing answers on a stopped container's port");
    u.ok(&["start", "web"]);
    let (pid2, start2) = helper_of(&u, "web", backend);
    assert_ne!((pid2, start2), (pid, start));
    assert_eq!(fetch(port, "/file"), format!("{token}\n"));

    // rm -f: the helper is gone, the port free, nothing of the user but its pause process left.
    u.ok(&["rm", "-f", "web"]);
    assert!(common::eventually(5, || gone(pid2, start2)), "{backend} {pid2} outlived rm -f");
    assert!(common::eventually(5, || port_free(port)), "port {port} still bound after rm -f");
    let pause = u.pause_pid().expect("pause pid");
    assert!(
        common::eventually(5, || procs_of(u.uid()).iter().all(|(p, _)| *p == pause)),
        "processes of the user left: {:?}",
        procs_of(u.uid())
    );
}

#[test]
fn rootless_network_default_backend() {
    // The default: pasta if installed, else slirp4netns.
    let backend = if installed("pasta") { "pasta" } else { "slirp4netns" };
    rootless_network(backend, false);
}

#[test]
fn rootless_network_slirp4netns() {
    rootless_network("slirp4netns", true);
}

#[test]
fn rootless_network_backend_choice_is_checked() {
    let Some(mut u) = User::new() else { return };
    u.env.push(("SKIFF_DEFAULT_NETWORK", None));
    u.env.push(("SKIFF_ROOTLESS_NETWORK", Some("vpnkit".into())));
    let tar = u.home.path().join("busybox.tar");
    u.ok(&["import", tar.to_str().unwrap(), "busybox"]);
    let o = u.run(&["run", "--name", "bad", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("SKIFF_ROOTLESS_NETWORK=vpnkit: expected pasta or slirp4netns"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(u.ok(&["inspect", "-f", "{{.State.Running}}", "bad"]).trim(), "false");
}
