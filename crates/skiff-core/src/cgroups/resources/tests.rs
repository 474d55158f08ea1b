//! Plans on fake v1/v2/hybrid trees (exact files and values), validation, and real writes on
//! this host's v1 memory hierarchy and cgroup2 mount (in cgroups made and removed here).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::super::{Cgroups, Manager};
use super::{enable_all_v2_plan, plan, v2, Write};
use crate::error::Error;

fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

fn res(json: &str) -> LinuxResources {
    match serde_json::from_str(json) {
        Ok(r) => r,
        Err(e) => panic!("{json}: {e}"),
    }
}

/// Every file under `root` with its content, to prove nothing changed.
fn snapshot(root: &Path) -> Vec<(PathBuf, String)> {
    fn walk(d: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut es: Vec<_> = fs::read_dir(d).unwrap().flatten().collect();
        es.sort_by_key(|e| e.path());
        for e in es {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push((p.clone(), fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

/// (dir relative to root, file, value) of each write.
fn triples(root: &Path, w: &[Write]) -> Vec<(String, String, String)> {
    w.iter()
        .map(|w| (w.dir.strip_prefix(root).unwrap().display().to_string(), w.file.clone(), w.value.clone()))
        .collect()
}

fn t(d: &str, f: &str, v: &str) -> (String, String, String) {
    (d.to_string(), f.to_string(), v.to_string())
}

fn field_of(e: Error) -> String {
    match e {
        Error::InvalidField { field, .. } => field,
        other => panic!("expected a field error, got {other}"),
    }
}

/// Files the kernel would show in a new v1 cgroup of each hierarchy (those plans look at).
const V1_FILES: &[(&str, &[&str])] = &[
    ("memory", &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness", "memory.oom_control"]),
    ("cpu,cpuacct", &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.rt_period_us", "cpu.rt_runtime_us", "cpu.idle"]),
    ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
    ("pids", &["pids.max"]),
    ("blkio", &["blkio.weight", "blkio.leaf_weight", "blkio.weight_device", "blkio.leaf_weight_device", "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"]),
    ("hugetlb", &["hugetlb.2MB.limit_in_bytes", "hugetlb.1GB.limit_in_bytes"]),
    ("net_cls,net_prio", &["net_cls.classid", "net_prio.ifpriomap"]),
    ("rdma", &["rdma.max"]),
];

/// A v1 host with every controller; the container `skiff/c1` exists with its files
/// (memory.limit_in_bytes holds `mem_limit`). `skip` leaves hierarchies out.
fn fake_v1(root: &Path, mem_limit: &str, skip: &[&str]) -> (Cgroups, Manager) {
    let mut mi = String::new();
    for (i, (h, files)) in V1_FILES.iter().enumerate() {
        if skip.contains(h) {
            continue;
        }
        for f in *files {
            write(&root.join(h).join("skiff/c1").join(f), "0\n");
        }
        mi.push_str(&format!("{} 31 0:{} / {}/{h} rw - cgroup cgroup rw,{h}\n", 32 + i, 40 + i, root.display()));
    }
    if !skip.contains(&"memory") {
        write(&root.join("memory/skiff/c1/memory.limit_in_bytes"), mem_limit);
    }
    let cg = Cgroups::from_text(&mi, "").unwrap();
    let m = cg.resolve(None, "c1").unwrap();
    (cg, m)
}

/// A cgroup2 host offering `controllers`; `skiff/c1` exists, nothing is delegated yet.
fn fake_v2(root: &Path, controllers: &str) -> (Cgroups, Manager) {
    write(&root.join("cgroup.controllers"), controllers);
    write(&root.join("cgroup.subtree_control"), "");
    write(&root.join("skiff/cgroup.subtree_control"), "");
    write(&root.join("skiff/c1/memory.current"), "1000000\n");
    let mi = format!("27 26 0:25 / {} rw - cgroup2 cgroup2 rw\n", root.display());
    let cg = Cgroups::from_text(&mi, "0::/\n").unwrap();
    let m = cg.resolve(None, "c1").unwrap();
    (cg, m)
}

const ALL: &str = r#"{
  "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200, "swappiness": 10,
             "disableOOMKiller": true, "kernel": 1000, "kernelTCP": 1000},
  "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000, "realtimeRuntime": 950,
          "realtimePeriod": 1000, "cpus": "0-1", "mems": "0", "idle": 1},
  "pids": {"limit": 32},
  "blockIO": {"weight": 500, "leafWeight": 300,
              "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}],
              "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
              "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
              "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
              "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
  "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
  "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}, {"name": "lo", "priority": 2}]},
  "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaHandles": 1}}
}"#;

#[test]
fn v1_every_field() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // Current limit 50 MiB: the new memsw (200 MiB) is above it, so memsw goes first.
    let (cg, m) = fake_v1(root, "52428800\n", &[]);
    let w = plan(&cg, &m, &res(ALL)).unwrap();
    let mem = "memory/skiff/c1";
    let cpu = "cpu,cpuacct/skiff/c1";
    let bio = "blkio/skiff/c1";
    assert_eq!(
        triples(root, &w),
        vec![
            t(mem, "memory.memsw.limit_in_bytes", "209715200"),
            t(mem, "memory.limit_in_bytes", "104857600"),
            t(mem, "memory.soft_limit_in_bytes", "52428800"),
            t(mem, "memory.swappiness", "10"),
            t(mem, "memory.oom_control", "1"),
            t(cpu, "cpu.shares", "512"),
            t(cpu, "cpu.cfs_period_us", "100000"),
            t(cpu, "cpu.cfs_quota_us", "50000"),
            t(cpu, "cpu.cfs_burst_us", "10000"),
            t(cpu, "cpu.rt_period_us", "1000"),
            t(cpu, "cpu.rt_runtime_us", "950"),
            t(cpu, "cpu.idle", "1"),
            t("cpuset/skiff/c1", "cpuset.cpus", "0-1"),
            t("cpuset/skiff/c1", "cpuset.mems", "0"),
            t("pids/skiff/c1", "pids.max", "32"),
            t(bio, "blkio.weight", "500"),
            t(bio, "blkio.leaf_weight", "300"),
            t(bio, "blkio.weight_device", "8:0 600"),
            t(bio, "blkio.leaf_weight_device", "8:0 200"),
            t(bio, "blkio.throttle.read_bps_device", "8:0 1048576"),
            t(bio, "blkio.throttle.write_bps_device", "8:0 2097152"),
            t(bio, "blkio.throttle.read_iops_device", "8:16 100"),
            t(bio, "blkio.throttle.write_iops_device", "8:0 0"),
            t("hugetlb/skiff/c1", "hugetlb.2MB.limit_in_bytes", "4194304"),
            t("net_cls,net_prio/skiff/c1", "net_cls.classid", "1048577"),
            t("net_cls,net_prio/skiff/c1", "net_prio.ifpriomap", "eth0 5"),
            t("net_cls,net_prio/skiff/c1", "net_prio.ifpriomap", "lo 2"),
            t("rdma/skiff/c1", "rdma.max", "mlx4_0 hca_handle=1"),
            t("rdma/skiff/c1", "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
        ]
    );
    // The executor writes exactly those values.
    m.apply_resources(&cg, &res(ALL)).unwrap();
    assert_eq!(fs::read_to_string(root.join(mem).join("memory.limit_in_bytes")).unwrap(), "104857600");
    assert_eq!(fs::read_to_string(root.join(cpu).join("cpu.cfs_quota_us")).unwrap(), "50000");
}

#[test]
fn v1_memory_order_lowering_and_unlimited() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // Current limit 1 GiB, new memsw 200 MiB: lowering, so memory first.
    let (cg, m) = fake_v1(root, "1073741824\n", &[]);
    let w = plan(&cg, &m, &res(r#"{"memory": {"limit": 104857600, "swap": 209715200}}"#)).unwrap();
    let files: Vec<_> = w.iter().map(|w| (w.file.as_str(), w.value.as_str())).collect();
    assert_eq!(files, [("memory.limit_in_bytes", "104857600"), ("memory.memsw.limit_in_bytes", "209715200")]);
    // -1 memory without swap means unlimited swap too, memsw first.
    let w = plan(&cg, &m, &res(r#"{"memory": {"limit": -1}}"#)).unwrap();
    let files: Vec<_> = w.iter().map(|w| (w.file.as_str(), w.value.as_str())).collect();
    assert_eq!(files, [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")]);
}

#[test]
fn v2_every_field() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cg, m) = fake_v2(root, "cpuset cpu io memory hugetlb pids rdma misc\n");
    let mut all = res(ALL);
    // cgroup2 has no net_cls/net_prio and no realtime limits: see the error tests.
    all.set_network(None);
    let mut cpu = all.cpu().clone().unwrap();
    cpu.set_realtime_runtime(None);
    cpu.set_realtime_period(None);
    all.set_cpu(Some(cpu));
    let mut u = HashMap::new();
    u.insert("memory.high".to_string(), "90000000".to_string());
    u.insert("cgroup.max.descendants".to_string(), "5".to_string());
    u.insert("misc.max".to_string(), "res_a 1".to_string());
    all.set_unified(Some(u));
    let w = plan(&cg, &m, &all).unwrap();
    let c = "skiff/c1";
    let enable = "+cpu +cpuset +hugetlb +io +memory +misc +pids +rdma";
    assert_eq!(
        triples(root, &w),
        vec![
            t("", "cgroup.subtree_control", enable),
            t("skiff", "cgroup.subtree_control", enable),
            // swap - limit
            t(c, "memory.swap.max", "104857600"),
            t(c, "memory.max", "104857600"),
            t(c, "memory.low", "52428800"),
            t(c, "cpu.weight", &(1 + (510 * 9999) / 262142).to_string()),
            t(c, "cpu.max", "50000 100000"),
            t(c, "cpu.max.burst", "10000"),
            t(c, "cpu.idle", "1"),
            t(c, "cpuset.cpus", "0-1"),
            t(c, "cpuset.mems", "0"),
            t(c, "pids.max", "32"),
            t(c, "io.weight", &format!("default {}", 1 + (490 * 9999) / 990)),
            t(c, "io.weight", &format!("8:0 {}", 1 + (590 * 9999) / 990)),
            t(c, "io.max", "8:0 rbps=1048576 wbps=2097152 wiops=max"),
            t(c, "io.max", "8:16 riops=100"),
            t(c, "hugetlb.2MB.max", "4194304"),
            t(c, "rdma.max", "mlx4_0 hca_handle=1"),
            t(c, "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
            t(c, "cgroup.max.descendants", "5"),
            t(c, "memory.high", "90000000"),
            t(c, "misc.max", "res_a 1"),
        ]
    );
}

#[test]
fn v2_only_missing_controllers_are_enabled() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cg, m) = fake_v2(root, "cpu memory pids\n");
    write(&root.join("cgroup.subtree_control"), "memory pids\n");
    write(&root.join("skiff/cgroup.subtree_control"), "pids\n");
    let w = plan(&cg, &m, &res(r#"{"memory": {"limit": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1, "period": 50000}}"#)).unwrap();
    assert_eq!(
        triples(root, &w),
        vec![
            t("", "cgroup.subtree_control", "+cpu"),
            t("skiff", "cgroup.subtree_control", "+cpu +memory"),
            t("skiff/c1", "memory.swap.max", "max"),
            t("skiff/c1", "memory.max", "max"),
            t("skiff/c1", "cpu.max", "max 50000"),
            t("skiff/c1", "pids.max", "max"),
        ]
    );
    // Nothing requested: nothing written, nothing enabled.
    assert!(plan(&cg, &m, &LinuxResources::default()).unwrap().is_empty());
}

#[test]
fn conversions() {
    assert_eq!(v2::shares_to_weight(0), 0);
    assert_eq!(v2::shares_to_weight(2), 1);
    assert_eq!(v2::shares_to_weight(1024), 39);
    assert_eq!(v2::shares_to_weight(262_144), 10_000);
    assert_eq!(v2::blkio_to_io_weight(10), 1);
    assert_eq!(v2::blkio_to_io_weight(1000), 10_000);
    assert_eq!(v2::blkio_to_io_weight(500), 1 + 490 * 9999 / 990);
}

#[test]
fn hybrid_hugetlb_goes_to_cgroup2() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (_, _) = fake_v1(root, "0\n", &["hugetlb", "net_cls,net_prio", "rdma"]);
    let u = root.join("unified");
    write(&u.join("cgroup.controllers"), "hugetlb\n");
    write(&u.join("skiff/c1/cgroup.procs"), "");
    let mut mi = String::new();
    for (i, (h, _)) in V1_FILES.iter().enumerate().filter(|(_, (h, _))| !["hugetlb", "net_cls,net_prio", "rdma"].contains(h)) {
        mi.push_str(&format!("{} 31 0:{} / {}/{h} rw - cgroup cgroup rw,{h}\n", 32 + i, 40 + i, root.display()));
    }
    mi.push_str(&format!("99 31 0:99 / {} rw - cgroup2 cgroup2 rw\n", u.display()));
    let cg = Cgroups::from_text(&mi, "").unwrap();
    let m = cg.resolve(None, "c1").unwrap();
    let w = plan(&cg, &m, &res(r#"{"pids": {"limit": 5}, "hugepageLimits": [{"pageSize": "1GB", "limit": -1}]}"#)).unwrap();
    assert_eq!(
        triples(root, &w),
        vec![
            t("unified", "cgroup.subtree_control", "+hugetlb"),
            t("unified/skiff", "cgroup.subtree_control", "+hugetlb"),
            t("pids/skiff/c1", "pids.max", "5"),
            t("unified/skiff/c1", "hugetlb.1GB.max", "max"),
        ]
    );
    // The memory controller is v1 here: a unified memory key is refused.
    let e = plan(&cg, &m, &res(r#"{"unified": {"memory.high": "1"}}"#)).unwrap_err();
    assert!(e.to_string().contains("memory controller is not available"), "{e}");
    // No rdma anywhere: a limit is an error naming the field.
    let e = plan(&cg, &m, &res(r#"{"rdma": {"mlx5_1": {"hcaHandles": 1}}}"#)).unwrap_err();
    assert_eq!(field_of(e), "linux.resources.rdma");
}

#[test]
fn absent_controllers_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let skip = ["hugetlb", "net_cls,net_prio", "rdma", "pids", "memory"];
    let (cg, m) = fake_v1(root, "0\n", &skip);
    for (json, field) in [
        (r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#, "linux.resources.hugepageLimits"),
        (r#"{"network": {"classID": 1}}"#, "linux.resources.network.classID"),
        (r#"{"network": {"priorities": [{"name": "eth0", "priority": 1}]}}"#, "linux.resources.network.priorities"),
        (r#"{"pids": {"limit": 10}}"#, "linux.resources.pids.limit"),
        (r#"{"memory": {"limit": 10000000}}"#, "linux.resources.memory"),
        (r#"{"unified": {"pids.max": "10"}}"#, "linux.resources.unified"),
    ] {
        let e = plan(&cg, &m, &res(json)).unwrap_err();
        let msg = e.to_string();
        assert_eq!(field_of(e), field, "{json}");
        assert!(msg.contains("not available") || msg.contains("no cgroup v2"), "{msg}");
    }
    // "No limit" values need no controller.
    plan(&cg, &m, &res(r#"{"pids": {"limit": -1}, "memory": {"limit": -1}, "hugepageLimits": []}"#)).unwrap();
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cg, m) = fake_v1(root, "0\n", &[]);
    let before = snapshot(root);
    // Each is valid up to one bad value, after good ones that would be written first.
    let good = r#""pids": {"limit": 7}, "cpu": {"shares": 100}"#;
    for (bad, field) in [
        (r#""memory": {"limit": -5}"#, "linux.resources.memory.limit"),
        (r#""memory": {"limit": 200, "swap": 100}"#, "linux.resources.memory.swap"),
        (r#""memory": {"swap": 100}"#, "linux.resources.memory.swap"),
        (r#""memory": {"swappiness": 101}"#, "linux.resources.memory.swappiness"),
        (r#""blockIO": {"weight": 5}"#, "linux.resources.blockIO.weight"),
        (r#""blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}"#, "linux.resources.blockIO.throttleReadBpsDevice"),
        (r#""blockIO": {"weightDevice": [{"major": 8, "minor": 2000000, "weight": 100}]}"#, "linux.resources.blockIO.weightDevice"),
        (r#""hugepageLimits": [{"pageSize": "2M", "limit": 1}]"#, "linux.resources.hugepageLimits"),
        (r#""hugepageLimits": [{"pageSize": "4MB", "limit": 1}]"#, "linux.resources.hugepageLimits"),
        (r#""unified": {"../memory.max": "1"}"#, "linux.resources.unified"),
        (r#""unified": {"a/b.c": "1"}"#, "linux.resources.unified"),
        (r#""unified": {"memory.max": "1"}"#, "linux.resources.unified"),
        (r#""pids": {"limit": -2}"#, "linux.resources.pids.limit"),
        (r#""rdma": {"mlx 5": {"hcaHandles": 1}}"#, "linux.resources.rdma"),
    ] {
        let json = format!("{{{good}, {bad}}}");
        let json = json.replacen(r#""pids": {"limit": 7}, "#, if bad.starts_with(r#""pids""#) { "" } else { r#""pids": {"limit": 7}, "# }, 1);
        let e = m.apply_resources(&cg, &res(&json)).unwrap_err();
        assert_eq!(field_of(e), field, "{json}");
        assert_eq!(snapshot(root), before, "{json} wrote something");
    }
    // CPU: period range, quota minimum, burst above quota.
    for (bad, field) in [
        (r#"{"cpu": {"period": 999}}"#, "linux.resources.cpu.period"),
        (r#"{"cpu": {"period": 1000001}}"#, "linux.resources.cpu.period"),
        (r#"{"cpu": {"quota": 500, "period": 100000}}"#, "linux.resources.cpu.quota"),
        (r#"{"cpu": {"quota": -7}}"#, "linux.resources.cpu.quota"),
        (r#"{"cpu": {"quota": 10000, "burst": 20000}}"#, "linux.resources.cpu.burst"),
        (r#"{"cpu": {"cpus": "0-x"}}"#, "linux.resources.cpu.cpus"),
        (r#"{"cpu": {"mems": "3-1"}}"#, "linux.resources.cpu.mems"),
        (r#"{"cpu": {"idle": 2}}"#, "linux.resources.cpu.idle"),
        (r#"{"cpu": {"shares": 1}}"#, "linux.resources.cpu.shares"),
    ] {
        let e = m.apply_resources(&cg, &res(bad)).unwrap_err();
        assert_eq!(field_of(e), field, "{bad}");
        assert_eq!(snapshot(root), before, "{bad} wrote something");
    }
}

#[test]
fn v1_missing_weight_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cg, m) = fake_v1(root, "0\n", &[]);
    // Like this host: blkio without CFQ/BFQ weight files.
    fs::remove_file(root.join("blkio/skiff/c1/blkio.weight")).unwrap();
    let e = plan(&cg, &m, &res(r#"{"blockIO": {"weight": 100}}"#)).unwrap_err();
    let msg = e.to_string();
    assert_eq!(field_of(e), "linux.resources.blockIO.weight");
    assert!(msg.contains("no weight file"), "{msg}");
    // Throttles alone are fine without weights.
    plan(&cg, &m, &res(r#"{"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]}}"#)).unwrap();
}

#[test]
fn v2_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cg, m) = fake_v2(root, "cpu memory pids\n");
    // checkBeforeUpdate: memory.current is 1000000.
    let e = plan(&cg, &m, &res(r#"{"memory": {"limit": 500000, "checkBeforeUpdate": true}}"#)).unwrap_err();
    assert!(e.to_string().contains("below the current usage 1000000"), "{e}");
    plan(&cg, &m, &res(r#"{"memory": {"limit": 500000}}"#)).unwrap();
    plan(&cg, &m, &res(r#"{"memory": {"limit": 2000000, "checkBeforeUpdate": true}}"#)).unwrap();
    // Realtime is v1 only.
    let e = plan(&cg, &m, &res(r#"{"cpu": {"realtimeRuntime": 100, "realtimePeriod": 1000}}"#)).unwrap_err();
    assert_eq!(field_of(e), "linux.resources.cpu.realtimeRuntime");
    // Dangerous interface files are refused.
    for k in ["cgroup.procs", "cgroup.subtree_control", "cgroup.kill", "cgroup.freeze"] {
        let e = plan(&cg, &m, &res(&format!(r#"{{"unified": {{"{k}": "1"}}}}"#))).unwrap_err();
        assert_eq!(field_of(e), "linux.resources.unified", "{k}");
    }
    // Swappiness and disableOOMKiller have no v2 file: nothing written for them.
    assert!(plan(&cg, &m, &res(r#"{"memory": {"swappiness": 5, "disableOOMKiller": true}}"#)).unwrap().is_empty());
}

#[test]
fn v1_only_host_refuses_unified() {
    let tmp = tempfile::tempdir().unwrap();
    let (cg, m) = fake_v1(tmp.path(), "0\n", &[]);
    let e = plan(&cg, &m, &res(r#"{"unified": {"cgroup.max.depth": "2"}}"#)).unwrap_err();
    let msg = e.to_string();
    assert_eq!(field_of(e), "linux.resources.unified");
    assert!(msg.contains("no cgroup v2"), "{msg}");
}

/// Real writes on this host, in uniquely named cgroups made and removed here.
mod host {
    use super::*;

    fn root_on_host(mount: &str) -> Option<PathBuf> {
        let m = PathBuf::from(mount);
        (nix::unistd::geteuid().is_root() && m.is_dir()).then_some(m)
    }

    /// rmdir's the given cgroups (deepest first) even if the test panics.
    struct Dirs(Vec<PathBuf>);
    impl Drop for Dirs {
        fn drop(&mut self) {
            for d in self.0.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
    }

    fn unique(tag: &str) -> String {
        format!("skiff-rt-{tag}-{}", std::process::id())
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap().trim().to_string()
    }

    #[test]
    fn real_v1_memory_and_swap_order() {
        let Some(mount) = root_on_host("/sys/fs/cgroup/memory").filter(|m| m.join("memory.memsw.limit_in_bytes").exists()) else {
            eprintln!("skipping: needs root and a v1 memory hierarchy with swap accounting");
            return;
        };
        let cg = Cgroups::detect().unwrap();
        let path = format!("/{}", unique("mem"));
        let m = cg.resolve(Some(&path), "x").unwrap();
        let _dirs = Dirs(m.create().unwrap());
        let dir = mount.join(path.trim_start_matches('/'));
        let r = |l: i64, s: i64| res(&format!(r#"{{"memory": {{"limit": {l}, "swap": {s}}}}}"#));
        // Raising from unlimited, then lowering both, then raising both: each needs its order.
        m.apply_resources(&cg, &r(64 << 20, 128 << 20)).unwrap();
        assert_eq!(read(&dir.join("memory.limit_in_bytes")), (64 << 20).to_string());
        assert_eq!(read(&dir.join("memory.memsw.limit_in_bytes")), (128 << 20).to_string());
        m.apply_resources(&cg, &r(16 << 20, 32 << 20)).unwrap();
        assert_eq!(read(&dir.join("memory.memsw.limit_in_bytes")), (32 << 20).to_string());
        m.apply_resources(&cg, &r(256 << 20, 512 << 20)).unwrap();
        assert_eq!(read(&dir.join("memory.limit_in_bytes")), (256 << 20).to_string());
        assert_eq!(read(&dir.join("memory.memsw.limit_in_bytes")), (512 << 20).to_string());
        m.apply_resources(&cg, &res(r#"{"memory": {"limit": -1}}"#)).unwrap();
        assert!(read(&dir.join("memory.limit_in_bytes")).parse::<u64>().unwrap() > 1 << 60);
    }

    #[test]
    fn real_v2_unified_interface_file() {
        let Some(mount) = root_on_host("/sys/fs/cgroup/unified").filter(|m| m.join("cgroup.controllers").exists()) else {
            eprintln!("skipping: needs root and a cgroup2 mount at /sys/fs/cgroup/unified");
            return;
        };
        let cg = Cgroups::detect().unwrap();
        let path = format!("/{}", unique("u"));
        let m = cg.resolve(Some(&path), "x").unwrap();
        let _dirs = Dirs(m.create().unwrap());
        let dir = mount.join(path.trim_start_matches('/'));
        let before = read(&mount.join("cgroup.subtree_control"));
        m.apply_resources(&cg, &res(r#"{"unified": {"cgroup.max.descendants": "3"}}"#)).unwrap();
        assert_eq!(read(&dir.join("cgroup.max.descendants")), "3");
        assert_eq!(read(&mount.join("cgroup.subtree_control")), before, "no controller was needed");
    }

    /// hugetlb on cgroup2 needs it enabled in the root's subtree_control; that is the host's,
    /// so this test only runs where it already is.
    #[test]
    fn real_v2_hugetlb() {
        let Some(mount) = root_on_host("/sys/fs/cgroup/unified") else {
            eprintln!("skipping: needs root and /sys/fs/cgroup/unified");
            return;
        };
        let delegated = fs::read_to_string(mount.join("cgroup.subtree_control")).unwrap_or_default();
        if !delegated.split_whitespace().any(|c| c == "hugetlb") {
            eprintln!("skipping: the cgroup2 root does not delegate hugetlb (not ours to change)");
            return;
        }
        let cg = Cgroups::detect().unwrap();
        let parent = unique("h");
        let path = format!("/{parent}/c");
        let m = cg.resolve(Some(&path), "x").unwrap();
        let _dirs = Dirs(m.create().unwrap());
        let dir = mount.join(path.trim_start_matches('/'));
        m.apply_resources(&cg, &res(r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#)).unwrap();
        assert!(read(&mount.join(&parent).join("cgroup.subtree_control")).contains("hugetlb"));
        assert_eq!(read(&dir.join("hugetlb.2MB.max")), "4194304");
    }
}

/// On cgroup2 the container's cgroup gets every controller the root offers (as runc's), limits
/// or not: enabled top down, only where missing.
#[test]
fn v2_create_enables_every_offered_controller() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cg, m) = fake_v2(root, "cpuset cpu io memory pids\n");
    let w = enable_all_v2_plan(&cg, &m).unwrap();
    let all = "+cpu +cpuset +io +memory +pids";
    assert_eq!(triples(root, &w), [t("", "cgroup.subtree_control", all), t("skiff", "cgroup.subtree_control", all)]);
    write(&root.join("cgroup.subtree_control"), "cpuset cpu io memory pids\n");
    write(&root.join("skiff/cgroup.subtree_control"), "memory pids\n");
    let w = enable_all_v2_plan(&cg, &m).unwrap();
    assert_eq!(triples(root, &w), [t("skiff", "cgroup.subtree_control", "+cpu +cpuset +io")]);
    // Applied one controller at a time (a refused one does not keep the others out).
    m.enable_all_v2(&cg);
    assert_eq!(fs::read_to_string(root.join("skiff/cgroup.subtree_control")).unwrap(), "+io");
    // A v1 host has nothing to enable.
    let (cg1, m1) = fake_v1(&tmp.path().join("v1"), "max", &[]);
    assert!(enable_all_v2_plan(&cg1, &m1).unwrap().is_empty());
}

/// cgroup2 with BFQ loaded: the weights go to io.bfq.weight unconverted (as runc), not to
/// iocost's io.weight.
#[test]
fn v2_block_io_weight_prefers_bfq() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cg, m) = fake_v2(root, "io\n");
    write(&root.join("skiff/c1/io.bfq.weight"), "default 100\n");
    let r = res(r#"{"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 600}]}}"#);
    let w: Vec<_> = triples(root, &plan(&cg, &m, &r).unwrap()).into_iter().filter(|(d, _, _)| d == "skiff/c1").collect();
    assert_eq!(w, [t("skiff/c1", "io.bfq.weight", "300"), t("skiff/c1", "io.bfq.weight", "8:0 600")]);
}
