//! Fault injection: `create` and `run -d` killed with SIGKILL at a random moment leave nothing
//! behind once `delete -f` (or a new `create` of the same id, then `delete -f`) has run: no
//! cgroup directory in any hierarchy, no process of the container, no state dir, no mount.
//!
//! `SKIFF_SIGKILL_TRIES` sets the number of tries (default sized for CI), `SKIFF_SIGKILL_SEED`
//! replays a run (the seed is printed).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const DEFAULT_TRIES: usize = 300;

/// xorshift64*: enough randomness for kill delays and choices, replayable from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The cgroup hierarchies' mount points: each directory under /sys/fs/cgroup that is a
/// cgroup fs, or /sys/fs/cgroup itself on a pure cgroup2 host.
fn hierarchies() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = Vec::new();
    for line in mi.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let fstype = right.split(' ').next().unwrap_or("");
        if fstype == "cgroup" || fstype == "cgroup2" {
            if let Some(mp) = left.split(' ').nth(4) {
                out.push(PathBuf::from(mp));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The host's mounts, without the ids (a line per mount).
fn mounts() -> BTreeSet<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines().map(|l| l.split(' ').skip(2).collect::<Vec<_>>().join(" ")).collect()
}

/// Processes of the try: an argument equal to the id or the marker (the runtime's forked
/// children before they exec, the container's program after), or a cgroup under `base`.
fn processes(id: &str, marker: &str, base: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if args.iter().any(|a| a == id || a == marker) || cg.contains(&format!("/{base}/")) {
            out.push((pid, args.join(" ")));
        }
    }
    out
}

/// Held by each test here: `reap_all` reaps any child, so one test's would take the other's
/// runtime from under its `wait`.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Reaps every exited child (orphaned container processes come to us: we are a subreaper).
fn reap_all() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// What a try left behind.
#[derive(Default, Debug)]
struct Leftovers {
    cgroups: Vec<PathBuf>,
    processes: Vec<(i32, String)>,
    state_dir: bool,
    mounts: Vec<String>,
}

impl Leftovers {
    fn is_empty(&self) -> bool {
        self.cgroups.is_empty() && self.processes.is_empty() && !self.state_dir && self.mounts.is_empty()
    }
}

/// Removes what a leaking try left, so that the host stays clean and the next try is judged
/// on its own.
fn clean_up(rt: &Runtime, id: &str, left: &Leftovers, hier: &[PathBuf], base: &str) {
    for (pid, _) in &left.processes {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGKILL);
    }
    let t0 = Instant::now();
    while !processes(id, "-", base).is_empty() && t0.elapsed() < Duration::from_secs(5) {
        reap_all();
        std::thread::sleep(Duration::from_millis(10));
    }
    reap_all();
    for h in hier {
        for d in [h.join(base).join(id), h.join(base)] {
            for _ in 0..200 {
                match std::fs::remove_dir(&d) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(Duration::from_millis(10)),
                    _ => break,
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(rt.state_dir(id));
}

/// What the host had before the tries, and where ours live.
struct Host {
    hier: Vec<PathBuf>,
    mounts_before: BTreeSet<String>,
    bundle: String,
}

/// Looks for everything of the try; a process gets `grace` to finish exiting.
fn leftovers(rt: &Runtime, id: &str, marker: &str, base: &str, host: &Host, grace: Duration) -> (Leftovers, bool) {
    let mut late = false;
    let t0 = Instant::now();
    let mut procs = processes(id, marker, base);
    while !procs.is_empty() && t0.elapsed() < grace {
        late = true;
        reap_all();
        std::thread::sleep(Duration::from_millis(5));
        procs = processes(id, marker, base);
    }
    let cgroups = host
        .hier
        .iter()
        .flat_map(|h| [h.join(base).join(id), h.join(base)])
        .filter(|d| d.exists())
        .collect();
    // Only what could be ours: other tests on the host may mount meanwhile.
    let root = rt.root.path().to_string_lossy().into_owned();
    let ours = |m: &&String| m.contains(id) || m.contains(base) || m.contains(&root) || m.contains(&host.bundle);
    let mounts = mounts().difference(&host.mounts_before).filter(ours).cloned().collect();
    (
        Leftovers {
            cgroups,
            processes: procs,
            state_dir: rt.state_dir(id).exists(),
            mounts,
        },
        late,
    )
}

fn spawn_runtime(rt: &Runtime, args: &[&str]) -> std::process::Child {
    rt.cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn skiff-runtime")
}

#[test]
fn sigkill_during_create_or_run_leaves_nothing() {
    if skip() {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tries = env_u64("SKIFF_SIGKILL_TRIES").unwrap_or(DEFAULT_TRIES as u64) as usize;
    let seed = env_u64("SKIFF_SIGKILL_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    }) | 1;
    eprintln!("sigkill: {tries} tries, seed {seed} (SKIFF_SIGKILL_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["true"]));
    let bundle = b.path().to_str().unwrap().to_string();
    let host = Host {
        hier: hierarchies(),
        mounts_before: mounts(),
        bundle: bundle.clone(),
    };
    assert!(!host.hier.is_empty(), "no cgroup hierarchy mounted");
    let base = format!("skt-sigkill-{}", std::process::id());

    let mut failures: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut late = 0;
    let mut completed = 0;
    let t_start = Instant::now();
    for n in 0..tries {
        let id = unique_id("sigkill");
        let marker = (900_000_000 + (std::process::id() % 1000) * 100_000 + n as u32).to_string();
        let mut cfg = base_config(&["sleep", &marker]);
        cfg["linux"]["cgroupsPath"] = json!(format!("/{base}/{id}"));
        b.write_config(&cfg);

        let run = rng.below(2) == 1;
        let delay = Duration::from_micros(rng.below(20_000));
        let then = rng.below(3);
        let mut child = if run {
            spawn_runtime(&rt, &["run", "-d", "--bundle", &bundle, &id])
        } else {
            spawn_runtime(&rt, &["create", "--bundle", &bundle, &id])
        };
        std::thread::sleep(delay);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
        let st = child.wait().expect("wait for the runtime");
        if st.success() {
            completed += 1;
        }
        let what = format!(
            "try {n} ({}, killed after {delay:?}, then {})",
            if run { "run -d" } else { "create" },
            ["delete -f", "delete -f, create, delete -f", "create, delete -f"][then as usize]
        );

        let mut errors = Vec::new();
        let create_again = |errors: &mut Vec<String>| {
            let had_state = rt.state_dir(&id).join("state.json").exists();
            let out = rt.run(&["create", "--bundle", &bundle, &id]);
            if out.status.success() == had_state {
                errors.push(format!(
                    "create again (state.json {}): {:?}: {}",
                    if had_state { "present" } else { "absent" },
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        };
        if then == 2 {
            create_again(&mut errors);
        }
        let out = rt.run(&["delete", "-f", &id]);
        if !out.status.success() {
            errors.push(format!("delete -f: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        if then == 1 {
            create_again(&mut errors);
            let out = rt.run(&["delete", "-f", &id]);
            if !out.status.success() {
                errors.push(format!("second delete -f: {}", String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        reap_all();

        let (left, was_late) = leftovers(&rt, &id, &marker, &base, &host, Duration::from_secs(2));
        if was_late {
            late += 1;
        }
        if !errors.is_empty() {
            failures.entry("command errors").or_default().push(format!("{what}: {errors:?}"));
        }
        if !left.cgroups.is_empty() {
            failures.entry("cgroup dirs").or_default().push(format!(
                "{what}: {} dirs: {:?} ...",
                left.cgroups.len(),
                &left.cgroups[..2.min(left.cgroups.len())]
            ));
        }
        if !left.processes.is_empty() {
            failures.entry("processes").or_default().push(format!("{what}: {:?}", left.processes));
        }
        if left.state_dir {
            failures.entry("state dir").or_default().push(what.clone());
        }
        if !left.mounts.is_empty() {
            failures.entry("mounts").or_default().push(format!("{what}: {:?}", left.mounts));
        }
        if !left.is_empty() {
            clean_up(&rt, &id, &left, &host.hier, &base);
        }
    }
    let elapsed = t_start.elapsed();
    eprintln!(
        "sigkill: {tries} tries in {elapsed:.1?}; {completed} runtimes finished before the kill; {late} tries had a process exit only after delete -f returned"
    );
    for (kind, list) in &failures {
        eprintln!("sigkill: {} of {tries} tries left {kind}", list.len());
        for f in list.iter().take(5) {
            eprintln!("    {f}");
        }
    }
    // Nothing of ours may stay, whatever the outcome.
    for h in &host.hier {
        let _ = std::fs::remove_dir(h.join(&base));
    }
    assert!(
        failures.is_empty(),
        "seed {seed}: leftovers after SIGKILL: {:?}",
        failures.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
    );
    let root_dirs: Vec<PathBuf> = std::fs::read_dir(rt.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert!(root_dirs.is_empty(), "seed {seed}: dirs left in the runtime root: {root_dirs:?}");
}

/// A create in progress (held in a createRuntime hook) is listed as `creating`; a second
/// `create` of its id and `delete -f` leave it alone. Once its runtime is killed it is listed
/// as `stopped`, and a new `create` of the id takes over.
#[test]
fn a_create_in_progress_is_refused_and_a_dead_one_reclaimed() {
    if skip() {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = Runtime::new();
    let id = unique_id("creating");
    let base = format!("skt-creating-{}", std::process::id());
    // A fraction unique to this test process: the hook is found (and ended) by it.
    let hold = format!("30.{}", std::process::id());
    let mut cfg = base_config(&["sleep", "60"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("/{base}/{id}"));
    cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", hold]}]});
    let b = Bundle::new(&cfg);
    let bundle = b.path().to_str().unwrap().to_string();
    let mounts_before = mounts();
    let hooks = || processes("-", &hold, "-");

    /// Kills the runtime and its hook should an assertion fail while they run.
    struct Guard<'a>(std::process::Child, &'a dyn Fn() -> Vec<(i32, String)>);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            for (pid, _) in (self.1)() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    let guard = Guard(spawn_runtime(&rt, &["create", "--bundle", &bundle, &id]), &hooks);
    let t0 = Instant::now();
    while hooks().is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(10), "the createRuntime hook never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    let list: serde_json::Value = serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    assert_eq!(list[0]["status"], "creating", "{list}");
    assert!(list[0]["pid"].as_i64().unwrap() > 0, "{list}");
    let err = rt.fails(&["create", "--bundle", &bundle, &id]);
    assert!(err.contains("already exists"), "{err}");
    let err = rt.fails(&["delete", "-f", &id]);
    assert!(err.contains("is being created"), "{err}");
    assert!(rt.state_dir(&id).exists());

    drop(guard);
    let list: serde_json::Value = serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["status"], "stopped", "{list}");
    assert_eq!(list[0]["pid"], 0, "{list}");

    // The new create undoes the dead one first.
    cfg["hooks"] = json!({});
    b.write_config(&cfg);
    rt.ok(&["create", "--bundle", &bundle, &id]);
    assert_eq!(rt.status(&id), "created");
    rt.ok(&["delete", "-f", &id]);
    reap_all();
    let host = Host {
        hier: hierarchies(),
        mounts_before,
        bundle,
    };
    let (left, _) = leftovers(&rt, &id, "-", &base, &host, Duration::from_secs(2));
    assert!(left.is_empty(), "{left:?}");
    assert!(hooks().is_empty());
}
