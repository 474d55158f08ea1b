//! pause / resume, events (stats and OOM), kill --all and delete --force on real containers
//! (the v1 freezer on v1 and hybrid hosts, cgroup.freeze on pure v2). Root only.

mod common;

use std::time::{Duration, Instant};

use common::cgroups::{cgroup_procs, keyed, CgroupLayout};
use common::*;
use serde_json::Value;

/// A container whose init counts as fast as it can into /tmp/count of its rootfs.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; done";

fn start(rt: &Runtime, script: &str) -> (Bundle, String) {
    let b = Bundle::new(&base_config(&["sh", "-c", script]));
    let id = unique_id("frz");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["start", &id]);
    (b, id)
}

/// The running counter's number.
fn count(b: &Bundle) -> u64 {
    count_in(&b.rootfs().join("tmp/count"))
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cgroup_pids(id: &str) -> Vec<i32> {
    cgroup_procs(id)
}

/// Whether the kernel's freezer holds the container frozen: the v1 freezer's state, or on
/// pure v2 cgroup.freeze and the `frozen` of cgroup.events (set once every task stopped).
fn kernel_frozen(id: &str) -> bool {
    let l = CgroupLayout::detect();
    if l.mount_of("freezer").is_some() {
        let state = std::fs::read_to_string(l.dir(id, "freezer").join("freezer.state")).unwrap();
        return state.trim() == "FROZEN";
    }
    let dir = l.unified().expect("neither a v1 freezer nor cgroup2").join("skiff").join(id);
    let freeze = std::fs::read_to_string(dir.join("cgroup.freeze")).unwrap();
    freeze.trim() == "1" && keyed(&dir.join("cgroup.events"), "frozen") == Some(1)
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').and_then(|i| s[i + 2..].chars().next()))
        .is_some_and(|c| c != 'Z' && c != 'X')
}

#[test]
fn pause_stops_and_resume_restarts_a_busy_loop() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let (b, id) = start(&rt, COUNTER);
    wait_for_file(&b.rootfs().join("tmp/count"));
    let a = count(&b);
    wait_until("the counter to move", Duration::from_secs(20), || count(&b) > a);

    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    assert!(kernel_frozen(&id), "paused, but the kernel's freezer does not say frozen");
    // Raw text: the loop may have been frozen between truncating and writing the file.
    let raw = || std::fs::read_to_string(b.rootfs().join("tmp/count")).unwrap();
    let frozen = raw();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(raw(), frozen, "the counter moved while paused");
    let frozen: u64 = frozen.trim().parse().unwrap_or(a);
    let e = rt.fails(&["pause", &id]);
    assert!(e.contains("container not running"), "{e}");

    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    assert!(!kernel_frozen(&id), "resumed, but the kernel's freezer still says frozen");
    wait_until("the counter to move after resume", Duration::from_secs(20), || count(&b) > frozen);
    let e = rt.fails(&["resume", &id]);
    assert!(e.contains("container not paused"), "{e}");

    rt.ok(&["kill", &id, "KILL"]);
    wait_until("stopped", Duration::from_secs(20), || rt.status(&id) == "stopped");
    assert!(rt.fails(&["pause", &id]).contains("container not running"));
    assert!(rt.fails(&["resume", &id]).contains("container not paused"));
    rt.ok(&["delete", &id]);
    assert_no_leftovers(&rt, &id);
}

#[test]
fn events_stats_prints_one_runc_stats_object() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let (b, id) = start(&rt, COUNTER);
    wait_for_file(&b.rootfs().join("tmp/count"));
    std::thread::sleep(Duration::from_millis(200));
    let out = rt.ok(&["events", "--stats", &id]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());
    let d = &v["data"];
    assert!(d["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0, "{d}");
    assert!(d["memory"]["raw"].is_object(), "{d}");
    assert!(d["hugetlb"].is_object() && d["intel_rdt"].is_object() && d["network_interfaces"].is_null(), "{d}");
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
    let e = rt.fails(&["events", "--stats", &id]);
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn kill_all_reaches_every_process_also_when_paused() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    for paused in [false, true] {
        let (_b, id) = start(&rt, "sleep 1000 & sleep 1000 & sleep 1000 & wait");
        wait_until("four processes", Duration::from_secs(20), || cgroup_pids(&id).len() == 4);
        let pids = cgroup_pids(&id);
        if paused {
            rt.ok(&["pause", &id]);
            assert_eq!(rt.status(&id), "paused");
        }
        rt.ok(&["kill", "--all", &id, "KILL"]);
        wait_until("every process to die", Duration::from_secs(20), || pids.iter().all(|&p| !alive(p)));
        wait_until("stopped", Duration::from_secs(20), || rt.status(&id) == "stopped");
        assert!(cgroup_pids(&id).is_empty());
        rt.ok(&["delete", &id]);
        assert_no_leftovers(&rt, &id);
    }
}

#[test]
fn delete_force_of_a_paused_container_leaves_nothing() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let (b, id) = start(&rt, &format!("sleep 1000 & {COUNTER}"));
    wait_for_file(&b.rootfs().join("tmp/count"));
    let pids = cgroup_pids(&id);
    assert_eq!(pids.len(), 2, "{pids:?}");
    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let e = rt.fails(&["delete", &id]);
    assert!(e.contains("not stopped: paused"), "{e}");
    rt.ok(&["delete", "--force", &id]);
    assert!(pids.iter().all(|&p| !alive(p)), "processes survived: {pids:?}");
    assert_no_leftovers(&rt, &id);
}

/// Kills the background `events` process even when an assertion fails.
struct Bg(std::process::Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn events_reports_oom_and_ends_with_the_container() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    // Every round allocates (and touches) 64 MiB in dd's buffer, past a 32 MiB limit.
    let script = "while :; do dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; sleep 0.2; done";
    let b = Bundle::new(&base_config(&["sh", "-c", script]));
    let id = unique_id("oom");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    // Written directly (not linux.resources): events must find the limit the kernel has.
    let limit = CgroupLayout::detect().file(&id, "memory", "memory.limit_in_bytes", "memory.max");
    std::fs::write(limit, (32u64 << 20).to_string()).unwrap();

    let out_path = b.path().join("events.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let child = rt
        .cmd(&["events", "--interval", "1s", &id])
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut bg = Bg(child);
    // Let it register before the first OOM (it also catches later ones: the loop repeats).
    std::thread::sleep(Duration::from_millis(300));
    rt.ok(&["start", &id]);

    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&out_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
            .collect()
    };
    wait_until("an oom event", Duration::from_secs(20), || lines().iter().any(|v| v["type"] == "oom"));
    wait_until("a stats event", Duration::from_secs(20), || lines().iter().any(|v| v["type"] == "stats"));
    for v in lines() {
        assert_eq!(v["id"], id.as_str());
        if v["type"] == "oom" {
            assert!(v.get("data").is_none(), "{v}");
        } else {
            assert_eq!(v["type"], "stats");
            assert_eq!(v["data"]["memory"]["usage"]["limit"], 32u64 << 20, "{v}");
        }
    }

    // events ends by itself once the container is gone.
    rt.ok(&["kill", &id, "KILL"]);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = bg.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "events did not end after the container stopped");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    rt.ok(&["delete", &id]);
    assert_no_leftovers(&rt, &id);
}

#[test]
fn a_created_container_pauses_and_resumes_as_created() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&base_config(&["sh", "-c", "echo started > /tmp/started; sleep 60"]));
    let id = unique_id("pause-created");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let e = rt.fails(&["start", &id]);
    assert!(e.contains("paused"), "{e}");
    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "created");
    rt.ok(&["start", &id]);
    wait_for_file(&b.rootfs().join("tmp/started"));
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["kill", &id, "KILL"]);
    wait_until("stopped", Duration::from_secs(20), || rt.status(&id) == "stopped");
    rt.ok(&["delete", &id]);
    assert_no_leftovers(&rt, &id);
}
