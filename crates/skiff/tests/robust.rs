//! Nothing lost: concurrent commands on one store, commands and monitors killed with SIGKILL
//! at random points, and what is left afterwards.

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use common::{cgroup_dirs, procs_with, text, Store};

/// Every container id the store knows of, with or without a record (for leak checks).
fn all_ids(s: &Store) -> HashSet<String> {
    let mut ids = HashSet::new();
    for sub in ["containers", "runtime"] {
        for e in std::fs::read_dir(s.path().join(sub)).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().trim_start_matches(".removing-").to_string();
            if n.len() == 64 {
                ids.insert(n);
            }
        }
    }
    ids
}

/// After cleanup: no mount under the store, no cgroup of any id seen, no process of it.
fn assert_clean(s: &Store, seen: &HashSet<String>) {
    let root = s.path().to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "mounts left under {root}");
    for id in seen {
        assert!(cgroup_dirs(id).is_empty(), "cgroups left for {id}: {:?}", cgroup_dirs(id));
    }
    // Monitors and cleanups name the store in their command line.
    let procs = procs_with(&root);
    assert!(procs.is_empty(), "processes of the store still running: {procs:?}");
    let left: Vec<String> = std::fs::read_dir(s.path().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "container dirs left: {left:?}");
    let tmp: Vec<String> = std::fs::read_dir(s.path().join("image/tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(tmp.is_empty(), "image store work dirs left: {tmp:?}");
}

#[test]
fn thirty_concurrent_runs_one_name_collision() {
    let s = Store::new();
    let mut children = Vec::new();
    for i in 0..30 {
        // c0..c28 and a second "c0": exactly one collision.
        let name = format!("c{}", if i == 29 { 0 } else { i });
        let mut c = s.cmd(&["run", "-d", "--name", &name, "busybox", "sh", "-c", &format!("echo I am {name}; sleep 30")]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        children.push((name, c.spawn().unwrap()));
    }
    // Readers at the same time.
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut c = s.cmd(&["ps", "-a"]);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        readers.push(c.spawn().unwrap());
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for (name, ch) in children {
        let o = ch.wait_with_output().unwrap();
        if o.status.success() {
            ok += 1;
        } else {
            let e = text(&o.stderr);
            assert!(e.contains("is already in use") && name == "c0", "{name}: {e}");
            assert_eq!(o.status.code(), Some(125));
            conflicts += 1;
        }
    }
    for r in readers {
        let o = r.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    assert_eq!((ok, conflicts), (29, 1));
    let names: HashSet<String> = s.ok(&["ps", "--format", "{{.Names}}"]).lines().map(str::to_string).collect();
    assert_eq!(names.len(), 29);
    // Each runs its own command.
    assert!(common::eventually(10, || s.ok(&["logs", "c7"]) == "I am c7\n"));
    let seen = all_ids(&s);
    // Remove them all at once.
    let mut rms = Vec::new();
    for n in &names {
        let mut c = s.cmd(&["rm", "-f", n]);
        c.stdout(Stdio::null());
        rms.push(c.spawn().unwrap());
    }
    for mut r in rms {
        assert!(r.wait().unwrap().success());
    }
    assert!(s.ids().is_empty());
    assert_clean(&s, &seen);
}

/// `rm -f` of every container; a --rm container may remove itself between our ps and our rm.
fn rm_all(s: &Store) {
    for id in s.ids() {
        let o = s.run(&["rm", "-f", &id]);
        assert!(
            o.status.success() || text(&o.stderr).contains("No such container"),
            "rm -f {id}: {}",
            text(&o.stderr)
        );
    }
}

/// A xorshift generator: reproducible delays without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn sigkill_at_random_points_leaves_nothing_behind() {
    let rounds: u64 = std::env::var("SKIFF_FAULT_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let s = Store::new();
    let mut rng = Rng(0x5eed_cafe ^ std::process::id() as u64);
    let mut seen = HashSet::new();
    for i in 0..rounds {
        let args: Vec<&str> = match i % 4 {
            0 => vec!["run", "-d", "busybox", "sleep", "30"],
            1 => vec!["run", "--rm", "busybox", "true"],
            2 => vec!["create", "busybox", "true"],
            _ => vec!["run", "busybox", "sh", "-c", "echo x > /f"],
        };
        let mut c = s.cmd(&args);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng.next() % 30_000));
        let _ = child.kill();
        let _ = child.wait();
        if i % 10 == 9 {
            // Meanwhile, and between kills, the store stays usable.
            let o = s.run(&["ps", "-a"]);
            assert!(o.status.success(), "ps -a after kills: {}", text(&o.stderr));
            seen.extend(all_ids(&s));
            rm_all(&s);
        }
    }
    seen.extend(all_ids(&s));
    assert!(s.run(&["images"]).status.success());
    rm_all(&s);
    s.ok(&["system", "prune", "-f"]);
    // Monitors of --rm containers may still be finishing their cleanup.
    let root = s.path().to_string_lossy().into_owned();
    assert!(common::eventually(10, || procs_with(&root).is_empty()));
    s.ok(&["system", "prune", "-f"]);
    assert!(s.ids().is_empty());
    assert_clean(&s, &seen);
    // And it still runs containers.
    assert_eq!(s.ok(&["run", "--rm", "busybox", "echo", "alive"]), "alive\n");
}

#[test]
fn a_killed_monitor_leaves_a_container_rm_f_cleans() {
    let s = Store::new();
    let id = s.ok(&["run", "-d", "busybox", "sleep", "60"]);
    let id = id.trim().to_string();
    let mon: i32 = s.inspect(&id, "{{.State.Pid}}").parse().unwrap();
    assert!(mon > 0);
    let monitors = common::monitors_of(s.path());
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(monitors[0]), nix::sys::signal::Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // The container itself still runs, and the engine still knows it.
    assert_eq!(s.inspect(&id, "{{.State.Status}}"), "running");
    s.ok(&["rm", "-f", &id]);
    let seen: HashSet<String> = [id.clone()].into();
    assert!(
        !std::path::Path::new(&format!("/proc/{mon}")).exists() || std::fs::read_to_string(format!("/proc/{mon}/stat")).unwrap_or_default().contains(" Z ")
    );
    assert_clean(&s, &seen);
}
