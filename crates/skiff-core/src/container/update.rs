//! `update`: change a live container's cgroup limits.

use oci_spec::runtime::{Linux, LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::Container;
use crate::cgroups::{Cgroups, Manager};
use crate::error::{Error, Result};
use crate::state::Status;

/// `$a.$f = $b.$f` for each optional field set in `b`.
macro_rules! over {
    ($a:ident, $b:ident, $($get:ident => $set:ident),* $(,)?) => {
        $( if let Some(v) = $b.$get() { $a.$set(Some(v)); } )*
    };
}
/// The same for fields held by reference (`Option<String>`, `Option<Vec<_>>`).
macro_rules! over_ref {
    ($a:ident, $b:ident, $($get:ident => $set:ident),* $(,)?) => {
        $( if let Some(v) = $b.$get() { $a.$set(Some(v.clone())); } )*
    };
}

fn merge_memory(a: &mut LinuxMemory, b: &LinuxMemory) {
    over!(a, b, limit => set_limit, reservation => set_reservation, swap => set_swap, kernel => set_kernel,
        kernel_tcp => set_kernel_tcp, swappiness => set_swappiness, disable_oom_killer => set_disable_oom_killer,
        use_hierarchy => set_use_hierarchy, check_before_update => set_check_before_update);
}

fn merge_cpu(a: &mut LinuxCpu, b: &LinuxCpu) {
    over!(a, b, shares => set_shares, quota => set_quota, idle => set_idle, burst => set_burst, period => set_period,
        realtime_runtime => set_realtime_runtime, realtime_period => set_realtime_period);
    over_ref!(a, b, cpus => set_cpus, mems => set_mems);
}

fn merge_block_io(a: &mut LinuxBlockIo, b: &LinuxBlockIo) {
    over!(a, b, weight => set_weight, leaf_weight => set_leaf_weight);
    over_ref!(a, b, weight_device => set_weight_device, throttle_read_bps_device => set_throttle_read_bps_device,
        throttle_write_bps_device => set_throttle_write_bps_device, throttle_read_iops_device => set_throttle_read_iops_device,
        throttle_write_iops_device => set_throttle_write_iops_device);
}

/// `over` laid on `base`: every field set in `over` replaces the recorded one, the rest stays.
/// Lists (devices, hugepage limits, throttles) are replaced whole; `rdma` and `unified` maps
/// are merged key by key.
pub fn merge_resources(base: &LinuxResources, over: &LinuxResources) -> LinuxResources {
    let mut r = base.clone();
    if let Some(m) = over.memory() {
        let mut cur = r.memory().unwrap_or_default();
        merge_memory(&mut cur, m);
        r.set_memory(Some(cur));
    }
    if let Some(c) = over.cpu() {
        let mut cur = r.cpu().clone().unwrap_or_default();
        merge_cpu(&mut cur, c);
        r.set_cpu(Some(cur));
    }
    if let Some(b) = over.block_io() {
        let mut cur = r.block_io().clone().unwrap_or_default();
        merge_block_io(&mut cur, b);
        r.set_block_io(Some(cur));
    }
    if let Some(p) = over.pids() {
        r.set_pids(Some(*p));
    }
    over_ref!(r, over, devices => set_devices, hugepage_limits => set_hugepage_limits, network => set_network);
    if let Some(m) = over.rdma() {
        let mut cur = r.rdma().clone().unwrap_or_default();
        cur.extend(m.iter().map(|(k, v)| (k.clone(), *v)));
        r.set_rdma(Some(cur));
    }
    if let Some(m) = over.unified() {
        let mut cur = r.unified().clone().unwrap_or_default();
        cur.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        r.set_unified(Some(cur));
    }
    r
}

impl Container {
    /// Applies `res` over the container's recorded resources to its cgroups and records the
    /// result, so a later update starts from it. Refused once the container has stopped.
    pub fn update(&mut self, res: &LinuxResources) -> Result<()> {
        if self.status() == Status::Stopped {
            return Err(Error::State("container not running".into()));
        }
        if self.rec.cgroup_paths.is_empty() {
            return Err(Error::Cgroup(format!("container {} has no cgroups to update", self.id())));
        }
        let base = self.rec.spec.linux().as_ref().and_then(|l| l.resources().clone()).unwrap_or_default();
        let merged = merge_resources(&base, res);
        // The whole merged set is applied, as runc does: it is validated as one (a new memory
        // limit against the recorded swap), and v1 memory/memsw are ordered against the
        // current limit.
        let cgroups = Cgroups::detect()?;
        let manager = Manager { paths: self.rec.cgroup_paths.clone() };
        manager.apply_resources(&cgroups, &merged)?;
        let mut linux: Linux = self.rec.spec.linux().clone().unwrap_or_default();
        linux.set_resources(Some(merged));
        self.rec.spec.set_linux(Some(linux));
        self.store.save(&self.rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merge_overrides_only_set_fields() {
        let base = res(r#"{"memory":{"limit":100,"swap":200},"cpu":{"shares":512,"cpus":"0-1"},"pids":{"limit":10},
            "unified":{"memory.high":"50"}}"#);
        let over = res(r#"{"memory":{"limit":150},"cpu":{"quota":20000},"unified":{"pids.max":"5"}}"#);
        let m = merge_resources(&base, &over);
        let mem = m.memory().as_ref().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(150), Some(200)));
        let cpu = m.cpu().as_ref().unwrap();
        assert_eq!((cpu.shares(), cpu.quota(), cpu.cpus().as_deref()), (Some(512), Some(20000), Some("0-1")));
        assert_eq!(m.pids().unwrap().limit(), 10);
        let u = m.unified().as_ref().unwrap();
        assert_eq!(u.get("memory.high").map(String::as_str), Some("50"));
        assert_eq!(u.get("pids.max").map(String::as_str), Some("5"));
    }

    #[test]
    fn merge_into_nothing_is_the_update() {
        let over = res(r#"{"pids":{"limit":3},"blockIO":{"weight":100}}"#);
        let m = merge_resources(&LinuxResources::default(), &over);
        assert_eq!(m.pids().unwrap().limit(), 3);
        assert_eq!(m.block_io().as_ref().unwrap().weight(), Some(100));
        assert!(m.memory().is_none());
    }
}
