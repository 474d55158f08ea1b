//! Debian's podman 4.3 (with conmon) running its containers on skiff-runtime
//! (`podman --runtime PATH`): exit statuses, detached containers with logs/exec/pause/stop,
//! terminals, resource limits, security options, volumes, `--network none`, a bridge network
//! with a published port, and `--rm` leaving nothing behind.
//!
//! Every container is checked to have gone through skiff: while it runs, skiff's state dir
//! `/run/skiff/<id>` (podman never passes `--root`) holds it, and podman reports our binary as
//! its OCI runtime. All podman state lives in a temp dir (`CONTAINERS_CONF`,
//! `CONTAINERS_STORAGE_CONF`, file locks, a file events log); the image is imported from a
//! busybox rootfs (no registry). Teardown removes containers, storage, leftover processes (by
//! pid) and mounts, the network's bridge and netavark's iptables chains, restores
//! `net.ipv4.ip_forward`, and removes the host dirs podman creates outside its configured
//! paths (`/run/containers`, `/var/lib/containers`, `/run/netns`, the `libpod_parent`
//! cgroups) when they did not exist before. Root and podman only: skipped otherwise.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::BIN;
use serde_json::Value;

const IMAGE: &str = "localhost/skiff-busybox:test";
/// skiff's default state root: podman never passes `--root`.
const STATE_ROOT: &str = "/run/skiff";
const TIMEOUT: Duration = Duration::from_secs(120);

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

fn skip() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping the podman tests: they need root");
        return true;
    }
    for tool in ["podman", "conmon", "tar", "script"] {
        if which(tool).is_none() {
            eprintln!("skipping the podman tests: {tool} is not installed (scripts/setup.sh installs podman and conmon)");
            return true;
        }
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipping the podman tests: /bin/busybox (busybox-static) is missing");
        return true;
    }
    false
}

/// A finished command: status and its output, read back from files (a detached container's
/// conmon must not keep a pipe of ours open).
struct Done {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Done {
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if t0.elapsed() < timeout => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

fn read_back(mut f: fs::File) -> String {
    let mut s = String::new();
    let _ = f.rewind().and_then(|_| f.read_to_string(&mut s));
    s
}

/// Spawns `cmd` with stdout/stderr into temp files; `None` when it outlived `timeout` (it is
/// then killed by pid and reaped).
fn spawn_capture(mut cmd: Command) -> (Child, fs::File, fs::File) {
    let out = tempfile::tempfile().expect("temp file");
    let err = tempfile::tempfile().expect("temp file");
    cmd.stdout(out.try_clone().expect("dup")).stderr(err.try_clone().expect("dup"));
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    (child, out, err)
}

fn finish(mut child: Child, out: fs::File, err: fs::File, timeout: Duration) -> Option<Done> {
    match wait_timeout(&mut child, timeout) {
        Some(status) => Some(Done { status, stdout: read_back(out), stderr: read_back(err) }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

fn run_timeout(cmd: Command, timeout: Duration) -> Option<Done> {
    let what = format!("{cmd:?}");
    let (child, out, err) = spawn_capture(cmd);
    let done = finish(child, out, err, timeout);
    if done.is_none() {
        eprintln!("timed out after {timeout:?}, killed: {what}");
    }
    done
}

/// `'arg'` for sh, as `script -c` wants one command line.
fn sh_quote(args: &[String]) -> String {
    args.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect::<Vec<_>>().join(" ")
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

/// The path of `/proc/self/mountinfo`'s field 5 (mount point), octal escapes as they are.
fn mount_points() -> Vec<String> {
    mountinfo().lines().filter_map(|l| l.split(' ').nth(4).map(str::to_string)).collect()
}

// ---- host-wide state podman creates outside its configured paths -------------------------

/// Host paths podman 4.3 creates whatever its configuration says: netavark's run dir and IPAM
/// db, the image blob-info cache, the netns mount, and the cgroupfs parent (conmon's cgroup
/// goes below it). Removed again when the last fixture ends, if they did not exist before.
fn host_paths() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ["/run/containers", "/var/lib/containers", "/run/netns"].iter().map(PathBuf::from).collect();
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        v.extend(rd.flatten().map(|h| h.path().join("libpod_parent")));
    }
    v
}

/// (live fixtures, host paths missing when the first one started).
static HOST: Mutex<Option<(usize, Vec<PathBuf>)>> = Mutex::new(None);

fn host_enter() {
    let mut g = HOST.lock().unwrap_or_else(|e| e.into_inner());
    match g.as_mut() {
        Some((n, _)) => *n += 1,
        None => *g = Some((1, host_paths().into_iter().filter(|p| !p.exists()).collect())),
    }
}

fn host_leave() {
    let mut g = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let Some((n, missing)) = g.as_mut() else { return };
    *n -= 1;
    if *n > 0 {
        return;
    }
    for p in missing.iter() {
        if !p.exists() {
            continue;
        }
        if p.starts_with("/sys/fs/cgroup") {
            rmdir_tree(p);
        } else if p == Path::new("/run/netns") {
            // podman bind-mounts it onto itself; only an empty one is ours to drop.
            if fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false) {
                if mount_points().iter().any(|m| m == "/run/netns") {
                    let _ = nix::mount::umount2(p.as_path(), nix::mount::MntFlags::MNT_DETACH);
                }
                let _ = fs::remove_dir(p);
            }
        } else {
            let _ = fs::remove_dir_all(p);
        }
        if p.exists() {
            eprintln!("podman tests: could not remove {} (created by podman during the tests)", p.display());
        }
    }
    *g = None;
}

/// Removes an (empty of processes) cgroup directory and its sub-cgroups.
fn rmdir_tree(p: &Path) {
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(p);
}

// ---- the bridge network ---------------------------------------------------------------------

/// A named netavark bridge network (its own bridge name and subnet, no DNS) made podman's
/// default, plus what the host looked like before it.
struct Net {
    name: String,
    bridge: String,
    /// "10.231.N." of the /24 subnet.
    prefix: String,
    ip_forward: String,
    /// (iptables binary, table, `-S` lines) before the tests.
    rules_before: Vec<(String, String, BTreeSet<String>)>,
    /// `nft list tables` before: iptables-nft makes a table just by listing it.
    tables_before: BTreeSet<String>,
}

fn nft_tables() -> BTreeSet<String> {
    let mut c = Command::new("nft");
    c.args(["list", "tables"]).stdin(Stdio::null());
    run_timeout(c, Duration::from_secs(30)).map(|d| d.stdout.lines().map(str::to_string).collect()).unwrap_or_default()
}

fn iptables_rules(bin: &str, table: &str) -> BTreeSet<String> {
    let mut c = Command::new(bin);
    c.args(["-t", table, "-S"]).stdin(Stdio::null());
    run_timeout(c, Duration::from_secs(30)).map(|d| d.stdout.lines().map(str::to_string).collect()).unwrap_or_default()
}

impl Net {
    fn new() -> Net {
        let pid = std::process::id();
        let tables_before = nft_tables();
        let mut rules_before = Vec::new();
        for bin in ["iptables", "ip6tables"] {
            if which(bin).is_some() {
                for table in ["filter", "nat", "mangle"] {
                    rules_before.push((bin.to_string(), table.to_string(), iptables_rules(bin, table)));
                }
            }
        }
        Net {
            name: format!("skiff-pm-{pid}"),
            bridge: format!("skpm{}", pid % 100_000),
            prefix: format!("10.231.{}.", 20 + pid % 200),
            ip_forward: fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default(),
            rules_before,
            tables_before,
        }
    }

    /// netavark's network file: podman 4.3 has no flag to name the bridge.
    fn config(&self) -> String {
        serde_json::json!({
            "name": self.name,
            "id": format!("{:0>64x}", (std::process::id() as u128) << 64 | 0x5c1ff),
            "driver": "bridge",
            "network_interface": self.bridge,
            "created": "2026-01-01T00:00:00Z",
            "subnets": [{"subnet": format!("{}0/24", self.prefix), "gateway": format!("{}1", self.prefix)}],
            "ipv6_enabled": false,
            "internal": false,
            "dns_enabled": false,
            "ipam_options": {"driver": "host-local"}
        })
        .to_string()
    }

    /// Removes the bridge and the iptables rules and chains that were not there before, and
    /// restores ip_forward. Returns what it had to remove that netavark should have removed.
    fn teardown(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            problems.push(format!("bridge {} left behind", self.bridge));
            let mut c = Command::new("ip");
            c.args(["link", "del", &self.bridge]).stdin(Stdio::null());
            let _ = run_timeout(c, Duration::from_secs(30));
        }
        for (bin, table, before) in &self.rules_before {
            let now = iptables_rules(bin, table);
            let ours = |l: &str| l.contains("NETAVARK") || l.contains(&self.prefix) || l.contains(&self.bridge);
            let new_chains: Vec<&str> = now.iter().filter(|l| !before.contains(*l) && ours(l)).filter_map(|l| l.strip_prefix("-N ")).collect();
            // Rules netavark added to chains it did not create (FORWARD, PREROUTING, ...).
            for l in now.iter().filter(|l| !before.contains(*l) && ours(l)) {
                let Some(rule) = l.strip_prefix("-A ") else { continue };
                if new_chains.iter().any(|c| rule.split(' ').next() == Some(c)) {
                    continue;
                }
                let mut c = Command::new("sh");
                c.args(["-c", &format!("{bin} -t {table} -D {rule}")]).stdin(Stdio::null());
                let _ = run_timeout(c, Duration::from_secs(30));
            }
            for verb in ["-F", "-X"] {
                for chain in &new_chains {
                    let mut c = Command::new(bin);
                    c.args(["-t", table, verb, chain]).stdin(Stdio::null());
                    let _ = run_timeout(c, Duration::from_secs(30));
                }
            }
            let left: Vec<String> = iptables_rules(bin, table).into_iter().filter(|l| !before.contains(l) && ours(l)).collect();
            if !left.is_empty() {
                problems.push(format!("{bin} -t {table}: could not remove {left:?}"));
            }
        }
        // The iptables tables that listing (or netavark) made, empty now: as they were, absent.
        for t in nft_tables().difference(&self.tables_before) {
            let f: Vec<&str> = t.split_whitespace().collect();
            if let ["table", family @ ("ip" | "ip6"), name @ ("filter" | "nat" | "mangle")] = f[..] {
                let bin = if family == "ip" { "iptables" } else { "ip6tables" };
                if iptables_rules(bin, name).iter().any(|l| l.starts_with("-A ")) {
                    continue;
                }
                let mut c = Command::new("nft");
                c.args(["delete", "table", family, name]).stdin(Stdio::null());
                let _ = run_timeout(c, Duration::from_secs(30));
            }
        }
        if fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default() != self.ip_forward {
            if let Err(e) = fs::write("/proc/sys/net/ipv4/ip_forward", self.ip_forward.trim()) {
                problems.push(format!("restore net.ipv4.ip_forward: {e}"));
            }
        }
        problems
    }
}

// ---- the podman fixture ---------------------------------------------------------------------

/// One podman installation in a temp dir, driving skiff-runtime, with the busybox image.
struct Podman {
    dir: tempfile::TempDir,
    net: Option<Net>,
    /// Container ids seen, for the teardown's check of skiff's state root.
    ids: Mutex<Vec<String>>,
    torn_down: bool,
}

impl Podman {
    /// `net`: give it a bridge network as its default; otherwise the default is
    /// `--network none` (the other tests must not touch netavark).
    fn new(net: bool) -> Podman {
        let dir = tempfile::Builder::new().prefix("skt-podman").tempdir().expect("temp dir");
        host_enter();
        let p = Podman { dir, net: net.then(Net::new), ids: Mutex::new(Vec::new()), torn_down: false };
        p.setup();
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn setup(&self) {
        let d = self.dir.path().display().to_string();
        for sub in ["root", "runroot", "tmp", "net", "data"] {
            fs::create_dir_all(self.path(sub)).expect("mkdir");
        }
        let storage = format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n");
        fs::write(self.path("storage.conf"), storage).expect("write storage.conf");
        let (netns, default_network) = match &self.net {
            Some(n) => {
                fs::write(self.path("net").join(format!("{}.json", n.name)), n.config()).expect("write network");
                ("bridge", format!("default_network = \"{}\"\n", n.name))
            }
            None => ("none", String::new()),
        };
        let conf = format!(
            "[containers]\nnetns = \"{netns}\"\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{d}/events.log\"\n\
             runtime_supports_json = [\"crun\", \"runc\", \"skiff-runtime\"]\nlock_type = \"file\"\n\
             tmp_dir = \"{d}/tmp\"\nstatic_dir = \"{d}/root/libpod\"\nvolume_path = \"{d}/root/volumes\"\n\
             [network]\nnetwork_backend = \"netavark\"\nnetwork_config_dir = \"{d}/net\"\n{default_network}"
        );
        fs::write(self.path("containers.conf"), conf).expect("write containers.conf");

        let mkrootfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkrootfs.sh");
        let mut c = Command::new(mkrootfs);
        c.arg(self.path("rootfs")).stdin(Stdio::null());
        let out = run_timeout(c, TIMEOUT).expect("mkrootfs.sh finishes");
        assert!(out.status.success(), "mkrootfs.sh: {}", out.stderr);
        let mut c = Command::new("tar");
        c.arg("-C").arg(self.path("rootfs")).arg("-cf").arg(self.path("rootfs.tar")).arg(".").stdin(Stdio::null());
        let out = run_timeout(c, TIMEOUT).expect("tar finishes");
        assert!(out.status.success(), "tar: {}", out.stderr);
        self.ok(&["import", self.path("rootfs.tar").to_str().expect("utf-8 path"), IMAGE]);
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.args(self.argv(args)).stdin(Stdio::null());
        c.env("CONTAINERS_CONF", self.path("containers.conf")).env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"));
        c
    }

    fn argv(&self, args: &[&str]) -> Vec<String> {
        ["--runtime", BIN].iter().chain(args).map(|s| s.to_string()).collect()
    }

    fn run(&self, args: &[&str]) -> Done {
        run_timeout(self.cmd(args), TIMEOUT).unwrap_or_else(|| panic!("podman {args:?} hung"))
    }

    /// Runs podman and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let d = self.run(args);
        assert!(d.status.success(), "podman {args:?} failed ({}): {}{}", d.code(), d.stderr, d.stdout);
        d.stdout
    }

    fn inspect(&self, id: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, id]).trim().to_string()
    }

    /// `podman run -d`: the new container's id, checked to run on skiff.
    fn run_detached(&self, opts: &[&str], script: &str) -> String {
        let args: Vec<&str> = ["run", "-d"].iter().copied().chain(opts.iter().copied()).chain([IMAGE, "sh", "-c", script]).collect();
        let id = self.ok(&args).trim().to_string();
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).push(id.clone());
        assert_eq!(self.inspect(&id, "{{.OCIRuntime}}"), BIN);
        skiff_state(&id);
        id
    }

    /// A podman command on a pty (`script`), with `input` as its keyboard.
    fn spawn_tty(&self, args: &[&str], input: &str) -> (Child, fs::File, fs::File) {
        let mut input_file = tempfile::tempfile().expect("temp file");
        input_file.write_all(input.as_bytes()).and_then(|_| input_file.rewind()).expect("write input");
        let line = format!("podman {}", sh_quote(&self.argv(args)));
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"]).stdin(input_file);
        c.env("CONTAINERS_CONF", self.path("containers.conf")).env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"));
        spawn_capture(c)
    }

    fn run_tty(&self, args: &[&str], input: &str) -> Done {
        let (child, out, err) = self.spawn_tty(args, input);
        finish(child, out, err, TIMEOUT).unwrap_or_else(|| panic!("podman {args:?} on a pty hung"))
    }

    /// `podman run --rm [opts] IMAGE sh -c SCRIPT`, where the script first waits for a gate
    /// file: meanwhile the test checks that skiff holds the container (its state dir, the
    /// cgroups it made). After the exit: nothing of it is left (state, cgroups, mounts).
    /// `tty`: `-it` on a pty with this keyboard input.
    fn run_gated(&self, opts: &[&str], script: &str, tty: Option<&str>) -> Done {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let cidfile = self.path(&format!("cid-{n}"));
        let gate = self.path(&format!("gate-{n}"));
        fs::create_dir(&gate).expect("mkdir gate");
        fs::set_permissions(&gate, fs::Permissions::from_mode(0o755)).expect("chmod gate");
        let (cid, vol) = (cidfile.to_str().expect("utf-8").to_string(), format!("{}:/gate:ro", gate.display()));
        let script = format!("while [ ! -e /gate/go ]; do sleep 0.02; done; {script}");
        let mut args: Vec<&str> = vec!["run", "--rm", "--cidfile", &cid, "-v", &vol];
        if tty.is_some() {
            args.push("-it");
        }
        args.extend(opts);
        args.extend([IMAGE, "sh", "-c", &script]);

        let (mut child, out, err) = match tty {
            Some(input) => self.spawn_tty(&args, input),
            None => spawn_capture(self.cmd(&args)),
        };
        // The container id (podman writes the cidfile before calling the runtime), then
        // skiff's state for it.
        let t0 = Instant::now();
        let mut id = String::new();
        loop {
            if id.is_empty() {
                if let Some(cid) = fs::read_to_string(&cidfile).ok().map(|s| s.trim().to_string()).filter(|s| s.len() == 64) {
                    self.ids.lock().unwrap_or_else(|e| e.into_inner()).push(cid.clone());
                    id = cid;
                }
            }
            if !id.is_empty() && state_file(&id).exists() {
                break;
            }
            if matches!(child.try_wait(), Ok(Some(_))) || t0.elapsed() > TIMEOUT {
                let done = finish(child, out, err, Duration::from_secs(5));
                panic!("podman {args:?} never ran its container {id:?} on skiff: {:?}", done.map(|d| (d.code(), d.stdout, d.stderr)));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let cgroups = skiff_state(&id);
        assert!(!cgroups.is_empty(), "skiff made no cgroup for {id}");
        fs::write(gate.join("go"), "").expect("open the gate");
        let done = finish(child, out, err, TIMEOUT).unwrap_or_else(|| panic!("podman {args:?} hung"));
        assert_gone(&id, &cgroups);
        done
    }

    /// Tears everything down; returns what was left that should not have been.
    fn teardown(&mut self) -> Vec<String> {
        self.torn_down = true;
        let mut problems = Vec::new();
        let dir = self.dir.path().display().to_string();
        for args in [&["rm", "--all", "--force", "--time", "0"][..], &["system", "reset", "--force"][..]] {
            match run_timeout(self.cmd(args), TIMEOUT) {
                Some(d) if d.status.success() => {}
                Some(d) => problems.push(format!("podman {args:?}: {}", d.stderr)),
                None => problems.push(format!("podman {args:?} hung")),
            }
        }
        // conmon and the `podman container cleanup` it runs name our dir on their command
        // lines; they end by themselves shortly after the containers are gone.
        let ours = || -> Vec<i32> {
            let Ok(rd) = fs::read_dir("/proc") else { return Vec::new() };
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
                .filter(|pid| *pid != std::process::id() as i32)
                .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&dir)))
                .collect()
        };
        let t0 = Instant::now();
        while !ours().is_empty() && t0.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in ours() {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).map(|c| String::from_utf8_lossy(&c).replace('\0', " ")).unwrap_or_default();
            problems.push(format!("process {pid} left running: {cmdline}"));
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        for id in self.ids.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if Path::new(STATE_ROOT).join(id).exists() {
                problems.push(format!("skiff state of {id} left behind"));
                let mut c = Command::new(BIN);
                c.args(["delete", "--force", id]).stdin(Stdio::null());
                let _ = run_timeout(c, TIMEOUT);
            }
        }
        let mut mounts: Vec<String> = mount_points().into_iter().filter(|m| m.starts_with(&dir)).collect();
        mounts.reverse();
        for m in mounts {
            problems.push(format!("mount {m} left behind"));
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(net) = &self.net {
            problems.extend(net.teardown());
        }
        problems
    }

    /// Tears down and requires a clean host.
    fn finish(mut self) {
        let problems = self.teardown();
        assert!(problems.is_empty(), "podman teardown: {problems:#?}");
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if !self.torn_down {
            for p in self.teardown() {
                eprintln!("podman teardown: {p}");
            }
        }
        host_leave();
    }
}

fn state_file(id: &str) -> PathBuf {
    Path::new(STATE_ROOT).join(id).join("state.json")
}

/// Requires skiff's state for container `id` (proof that podman ran it with skiff-runtime, not
/// a runc or crun from PATH); returns the cgroup dirs skiff made for it, all present.
fn skiff_state(id: &str) -> Vec<PathBuf> {
    let text = fs::read_to_string(state_file(id)).unwrap_or_else(|e| panic!("no skiff state for {id}: {e}"));
    let v: Value = serde_json::from_str(&text).expect("skiff state JSON");
    assert_eq!(v["id"], id);
    let cgroups: Vec<PathBuf> = v["cgroup_paths"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(PathBuf::from)).collect();
    for c in &cgroups {
        assert!(c.exists(), "cgroup {} of {id} missing", c.display());
        assert!(c.to_string_lossy().contains(&format!("libpod-{id}")), "cgroup {} is not podman's", c.display());
    }
    cgroups
}

/// The container's cgroup dir in the v1 hierarchy `controller`.
fn cgroup_of(cgroups: &[PathBuf], controller: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup").join(controller);
    cgroups
        .iter()
        .find(|c| c.parent().and_then(Path::parent) == Some(root.as_path()))
        .cloned()
        .unwrap_or_else(|| panic!("no {controller} cgroup in {cgroups:?}"))
}

/// Nothing of container `id` left: skiff state, its cgroups, mounts naming it. Podman's
/// cleanup may still be running when the client returns: allow it a few seconds.
fn assert_gone(id: &str, cgroups: &[PathBuf]) {
    let left = || -> Vec<String> {
        let mut v = Vec::new();
        if Path::new(STATE_ROOT).join(id).exists() {
            v.push(format!("{STATE_ROOT}/{id}"));
        }
        v.extend(cgroups.iter().filter(|c| c.exists()).map(|c| c.display().to_string()));
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            let named = rd.flatten().map(|h| h.path().join("libpod_parent").join(format!("libpod-{id}")));
            v.extend(named.filter(|c| c.exists() && !cgroups.contains(c)).map(|c| c.display().to_string()));
        }
        v.extend(mountinfo().lines().filter(|l| l.contains(id)).map(str::to_string));
        v
    };
    let t0 = Instant::now();
    while !left().is_empty() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(left().is_empty(), "container {id} left behind: {:#?}", left());
}

fn read_u64(p: &Path) -> u64 {
    fs::read_to_string(p).ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| panic!("{} holds no number", p.display()))
}

/// The effective capability mask printed by `grep CapEff /proc/self/status`.
fn cap_eff(out: &str) -> u64 {
    let hex = out.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap_or_else(|| panic!("no CapEff in {out:?}"));
    u64::from_str_radix(hex.trim(), 16).expect("hex CapEff")
}

fn timed(name: &str, t0: Instant) {
    eprintln!("podman test {name}: {:.1} s", t0.elapsed().as_secs_f64());
}

// ---- the tests --------------------------------------------------------------------------------

#[test]
fn run_rm_exit_status_env_volume_tty_and_runtime_errors() {
    if skip() {
        return;
    }
    let t0 = Instant::now();
    let pm = Podman::new(false);

    // podman sees skiff as its runtime.
    let info = pm.ok(&["info", "--format", "{{.Host.OCIRuntime.Path}}"]);
    assert_eq!(info.trim(), BIN);

    // Exit status, both output streams, -e, -v (written through from the container), and
    // --network none (the default here): only lo.
    let data = pm.path("data");
    let vol = format!("{}:/data", data.display());
    let g = pm.run_gated(
        &["-e", "FOO=bar baz", "-v", &vol],
        "echo \"$FOO\" > /data/env; ls /sys/class/net > /data/net; echo to-stdout; echo to-stderr >&2; exit 7",
        None,
    );
    assert_eq!(g.code(), 7, "podman run --rm: {}", g.stderr);
    assert!(g.stdout.contains("to-stdout"), "{}", g.stdout);
    assert!(g.stderr.contains("to-stderr"), "{}", g.stderr);
    assert_eq!(fs::read_to_string(data.join("env")).expect("env file"), "bar baz\n");
    assert_eq!(fs::read_to_string(data.join("net")).expect("net file"), "lo\n");
    let g = pm.run_gated(&[], "true", None);
    assert_eq!(g.code(), 0, "{}", g.stderr);

    // `run -it` on a pty: the keyboard reaches an interactive shell, whose tty is a pts and
    // whose exit status is podman's.
    let g = pm.run_gated(&[], "exec sh", Some("tty\necho in-$((6*7))\nexit 3\n"));
    assert_eq!(g.code(), 3, "podman run -it: {}{}", g.stdout, g.stderr);
    assert!(g.stdout.contains("\n/dev/pts/"), "tty did not print a pts: {:?}", g.stdout);
    assert!(g.stdout.contains("in-42"), "{:?}", g.stdout);

    // Runtime errors, as runc reports them at create: podman maps them to 127 and 126.
    let d = pm.run(&["run", "--rm", IMAGE, "/nonexistent"]);
    assert_eq!(d.code(), 127, "{}", d.stderr);
    assert!(d.stderr.contains(BIN) && d.stderr.contains("no such file or directory"), "{}", d.stderr);
    let d = pm.run(&["run", "--name", "not-executable", IMAGE, "/etc/passwd"]);
    assert_eq!(d.code(), 126, "{}", d.stderr);
    assert!(d.stderr.contains(BIN) && d.stderr.contains("permission denied"), "{}", d.stderr);
    // runtime_supports_json gave skiff `--log-format=json --log FILE`: podman read the error
    // from skiff's JSON log line.
    let id = pm.inspect("not-executable", "{{.Id}}");
    pm.ids.lock().unwrap_or_else(|e| e.into_inner()).push(id.clone());
    let log = fs::read_to_string(pm.path("runroot").join("overlay-containers").join(&id).join("userdata/oci-log")).expect("skiff's --log file");
    let last: Value = serde_json::from_str(log.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("oci-log is not JSON lines ({e}): {log}"));
    assert_eq!(last["level"], "error", "{log}");
    assert_eq!(last["msg"], "exec: \"/etc/passwd\": permission denied", "{log}");
    pm.ok(&["rm", "not-executable"]);
    assert_gone(&id, &[]);

    pm.finish();
    timed("run_rm_exit_status_env_volume_tty_and_runtime_errors", t0);
}

#[test]
fn detached_logs_exec_tty_pause_limits_stop_rm() {
    if skip() {
        return;
    }
    let t0 = Instant::now();
    let pm = Podman::new(false);
    let vol = format!("{}:/vol", pm.path("data").display());
    // Counts into /vol/counter; TERM ends it with status 3.
    let id = pm.run_detached(
        &["-e", "FOO=bar", "-v", &vol, "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5"],
        "trap 'exit 3' TERM; echo started; i=0; while :; do i=$((i+1)); echo $i > /vol/counter; sleep 0.05; done",
    );
    let cgroups = skiff_state(&id);
    assert_eq!(pm.inspect(&id, "{{.State.Status}}"), "running");
    wait_until("logs", TIMEOUT, || pm.ok(&["logs", &id]).contains("started"));

    // exec: output, environment, exit status.
    let d = pm.run(&["exec", "-e", "X=1", &id, "sh", "-c", "echo \"$X $FOO\"; exit 5"]);
    assert_eq!((d.code(), d.stdout.as_str()), (5, "1 bar\n"), "{}", d.stderr);
    // exec -it on a pty.
    let d = pm.run_tty(&["exec", "-it", &id, "sh", "-c", "tty; exit 4"], "");
    assert_eq!(d.code(), 4, "{}{}", d.stdout, d.stderr);
    assert!(d.stdout.contains("/dev/pts/"), "exec -it: {:?}", d.stdout);

    // Limits: the cgroup files podman asked skiff for, as the host and the container see them.
    let (mem, pids, cpu) = (cgroup_of(&cgroups, "memory"), cgroup_of(&cgroups, "pids"), cgroup_of(&cgroups, "cpu"));
    assert_eq!(read_u64(&mem.join("memory.limit_in_bytes")), 64 << 20);
    assert_eq!(fs::read_to_string(pids.join("pids.max")).expect("pids.max").trim(), "50");
    assert_eq!((read_u64(&cpu.join("cpu.cfs_quota_us")), read_u64(&cpu.join("cpu.cfs_period_us"))), (50_000, 100_000));
    let seen =
        pm.ok(&["exec", &id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"]);
    assert_eq!(seen, "67108864\n50\n50000\n");

    // pause: podman and skiff say paused, the freezer is FROZEN, the counter stands still.
    let counter = pm.path("data").join("counter");
    wait_until("the counter", TIMEOUT, || fs::read_to_string(&counter).is_ok_and(|s| s.trim().parse::<u64>().is_ok()));
    pm.ok(&["pause", &id]);
    assert_eq!(pm.inspect(&id, "{{.State.Status}}"), "paused");
    let mut c = Command::new(BIN);
    c.args(["state", &id]).stdin(Stdio::null());
    let st: Value = serde_json::from_str(&run_timeout(c, TIMEOUT).expect("skiff state").stdout).expect("state JSON");
    assert_eq!(st["status"], "paused");
    assert_eq!(fs::read_to_string(cgroup_of(&cgroups, "freezer").join("freezer.state")).expect("freezer.state").trim(), "FROZEN");
    // Raw text: the freeze may have caught `echo $i > counter` between truncate and write.
    let frozen_text = fs::read_to_string(&counter).expect("counter");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fs::read_to_string(&counter).expect("counter"), frozen_text, "the counter moved while paused");
    let frozen = frozen_text.trim().parse::<u64>().unwrap_or(0);
    let d = pm.run(&["exec", &id, "true"]);
    assert_ne!(d.code(), 0, "exec into a paused container succeeded");
    pm.ok(&["unpause", &id]);
    assert_eq!(pm.inspect(&id, "{{.State.Status}}"), "running");
    wait_until("the counter to move after unpause", TIMEOUT, || {
        fs::read_to_string(&counter).ok().and_then(|s| s.trim().parse::<u64>().ok()).is_some_and(|n| n > frozen)
    });

    // stop: SIGTERM reaches the trap (no 10 s wait for SIGKILL); rm removes everything.
    let t = Instant::now();
    pm.ok(&["stop", "--time", "20", &id]);
    assert!(t.elapsed() < Duration::from_secs(15), "stop took {:?}", t.elapsed());
    assert_eq!(pm.inspect(&id, "{{.State.Status}} {{.State.ExitCode}}"), "exited 3");
    pm.ok(&["rm", &id]);
    assert_gone(&id, &cgroups);
    let d = pm.run(&["inspect", &id]);
    assert_ne!(d.code(), 0, "container still known after rm");

    // The pids limit bites: a child shell cannot fork 30 processes under --pids-limit 20
    // (in a container of its own: a shell that cannot fork exits, the counting init would too).
    let g = pm.run_gated(
        &["--pids-limit", "20"],
        "sh -c 'for i in $(seq 30); do sleep 2 & done; wait' 2>&1; read m < /sys/fs/cgroup/pids/pids.max; echo max=$m",
        None,
    );
    assert_eq!(g.code(), 0, "{}", g.stderr);
    assert!(g.stdout.contains("can't fork") && g.stdout.ends_with("max=20\n"), "30 forks under --pids-limit 20: {}", g.stdout);

    pm.finish();
    timed("detached_logs_exec_tty_pause_limits_stop_rm", t0);
}

#[test]
fn user_read_only_cap_drop_and_seccomp_profile() {
    if skip() {
        return;
    }
    let t0 = Instant::now();
    let pm = Podman::new(false);
    let data = pm.path("data");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o777)).expect("chmod");
    let vol = format!("{}:/data", data.display());

    // --user and --read-only: ids, a read-only root (podman keeps /tmp a tmpfs), and a file
    // written through the volume that the host sees owned by 1000.
    let g = pm.run_gated(
        &["--user", "1000:1000", "--read-only", "-v", &vol, "--tmpfs", "/scratch:mode=1770"],
        "id -u; id -g; touch /rootfile; touch /tmp/t && echo tmp-ok; echo hi > /data/by-user; stat -c '%a %n' /tmp /scratch; grep CapEff /proc/self/status",
        None,
    );
    assert_eq!(g.code(), 0, "{}", g.stderr);
    // Tmpfs modes as runc gives them: /tmp (copied up) that of the image's /tmp, a new
    // mount point the mount's mode=.
    assert!(g.stdout.starts_with("1000\n1000\ntmp-ok\n1777 /tmp\n1770 /scratch\n"), "{}", g.stdout);
    assert!(g.stderr.contains("Read-only file system"), "{}", g.stderr);
    let meta = fs::metadata(data.join("by-user")).expect("file from the container");
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    assert_eq!(cap_eff(&g.stdout), 0, "a non-root user keeps no effective capabilities");

    // Control: with podman's default profile and capabilities, mkdir and chown work.
    let probe = "mkdir /tmp/d && echo mkdir-ok; touch /tmp/f && echo touch-ok; chown 1 /tmp/f && echo chown-ok; grep CapEff /proc/self/status";
    let g = pm.run_gated(&[], probe, None);
    assert_eq!(g.code(), 0, "{}", g.stderr);
    assert!(g.stdout.contains("mkdir-ok\ntouch-ok\nchown-ok\n"), "{}{}", g.stdout, g.stderr);
    assert_ne!(cap_eff(&g.stdout) & 1, 0, "CAP_CHOWN expected by default");

    // --cap-drop CHOWN and a seccomp profile that answers mkdir with EPERM.
    let profile = pm.path("deny-mkdir.json");
    fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#)
        .expect("write profile");
    let seccomp = format!("seccomp={}", profile.display());
    let g = pm.run_gated(&["--cap-drop", "CHOWN", "--security-opt", &seccomp], probe, None);
    assert_eq!(g.code(), 0, "{}", g.stderr);
    assert!(g.stdout.starts_with("touch-ok\n"), "mkdir or chown not refused: {}", g.stdout);
    assert!(g.stderr.contains("can't create directory '/tmp/d': Operation not permitted"), "{}", g.stderr);
    assert!(g.stderr.contains("chown: /tmp/f: Operation not permitted"), "{}", g.stderr);
    assert_eq!(cap_eff(&g.stdout) & 1, 0, "CAP_CHOWN still effective");
    assert_ne!(cap_eff(&g.stdout), 0, "only CHOWN was to be dropped");

    pm.finish();
    timed("user_read_only_cap_drop_and_seccomp_profile", t0);
}

/// HTTP GET over the host's loopback (busybox wget segfaults on this host; no curl needed).
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::net::TcpStream;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.starts_with("HTTP/1.").then_some(resp)
}

#[test]
fn network_none_bridge_and_published_port() {
    if skip() {
        return;
    }
    if which("iptables").is_none() || !Path::new("/usr/lib/podman/netavark").exists() {
        eprintln!("skipping the podman network test: iptables or netavark is not installed");
        return;
    }
    let t0 = Instant::now();
    let pm = Podman::new(true);
    let net = pm.net.as_ref().expect("a network fixture");

    let g = pm.run_gated(&["--network", "none"], "ls /sys/class/net", None);
    assert_eq!((g.code(), g.stdout.as_str()), (0, "lo\n"), "{}", g.stderr);

    // The default network (ours): an address on the bridge's subnet and a published port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let token = format!("served-by-skiff-{}", std::process::id());
    let publish = format!("127.0.0.1:{port}:8080");
    let id = pm.run_detached(&["-p", &publish], &format!("mkdir -p /www && echo {token} > /www/index.html && exec httpd -f -p 8080 -h /www"));
    let cgroups = skiff_state(&id);
    let addr = pm.ok(&["exec", &id, "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet {}", net.prefix)), "eth0 not on {}0/24: {addr}", net.prefix);
    assert!(Path::new("/sys/class/net").join(&net.bridge).exists(), "no bridge {}", net.bridge);
    let mut body = None;
    wait_until("the published port to answer", Duration::from_secs(20), || {
        body = http_get(port, "/index.html");
        body.is_some()
    });
    let body = body.unwrap_or_default();
    assert!(body.starts_with("HTTP/1.") && body.contains(" 200 ") && body.ends_with(&format!("\r\n\r\n{token}\n")), "{body}");

    pm.ok(&["rm", "--force", "--time", "0", &id]);
    assert_gone(&id, &cgroups);
    wait_until("netavark to remove the bridge", Duration::from_secs(10), || !Path::new("/sys/class/net").join(&net.bridge).exists());

    pm.finish();
    timed("network_none_bridge_and_published_port", t0);
}

/// The criu from `scripts/criu.sh` (None, after saying why, when there is none).
fn criu() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/criu.sh");
    match Command::new(&script).stdin(Stdio::null()).stderr(Stdio::piped()).output() {
        Ok(o) if o.status.success() => Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())),
        Ok(o) => {
            eprintln!("skipping the podman checkpoint test: no working criu ({})", String::from_utf8_lossy(&o.stderr).trim());
            None
        }
        Err(e) => {
            eprintln!("skipping the podman checkpoint test: {}: {e}", script.display());
            None
        }
    }
}

/// `podman container checkpoint` / `restore` (podman finds criu on PATH: the wrapper's dir goes
/// first; conmon hands it to skiff-runtime, whose default is `criu` from PATH). A counter
/// checkpointed is gone from skiff, restored under the same id, and counts on in the same
/// podman log from where it stopped.
#[test]
fn checkpoint_and_restore() {
    if skip() {
        return;
    }
    let Some(criu) = criu() else { return };
    let t0 = Instant::now();
    let pm = Podman::new(false);
    let path = format!("{}:{}", criu.parent().expect("criu's dir").display(), std::env::var("PATH").unwrap_or_default());
    let podman = |args: &[&str]| {
        let mut c = pm.cmd(args);
        c.env("PATH", &path);
        let d = run_timeout(c, TIMEOUT).unwrap_or_else(|| panic!("podman {args:?} hung"));
        assert!(d.status.success(), "podman {args:?} failed ({}): {}{}", d.code(), d.stderr, d.stdout);
        d.stdout
    };
    let id = pm.run_detached(&[], "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done");
    let cgroups = skiff_state(&id);
    let numbers = || -> Vec<u64> { pm.ok(&["logs", &id]).lines().filter_map(|l| l.trim().parse().ok()).collect() };
    wait_until("counting", TIMEOUT, || numbers().len() >= 5);

    podman(&["container", "checkpoint", &id]);
    assert_eq!(pm.inspect(&id, "{{.State.Status}}"), "exited");
    assert_gone(&id, &cgroups);
    let at = numbers();
    let last = *at.last().expect("numbers");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(numbers().len(), at.len(), "counted on after checkpoint");

    podman(&["container", "restore", &id]);
    assert_eq!(pm.inspect(&id, "{{.State.Status}}"), "running");
    let cgroups = skiff_state(&id);
    wait_until("counting after restore", TIMEOUT, || numbers().len() >= at.len() + 3);
    let all = numbers();
    assert_eq!(&all[..at.len()], &at[..]);
    assert_eq!(all[at.len()], last + 1, "restored counter did not go on from {last}: {all:?}");
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "{all:?}");
    // exec works in the restored container.
    assert_eq!(pm.ok(&["exec", &id, "cat", "/proc/1/comm"]).trim(), "sh");

    pm.ok(&["rm", "--force", "--time", "0", &id]);
    assert_gone(&id, &cgroups);
    pm.finish();
    timed("checkpoint_and_restore", t0);
}
