//! cgroup v1 files for memory, cpu, blkio and hugetlb.

use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};

use super::validate::throttles;
use super::Write;
use crate::error::{Error, Result};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// The current value of a numeric cgroup file (None if absent or not a number).
fn read_u64(p: &Path) -> Option<u64> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// memory.*: limit, memsw (swap is memory+swap, as in the spec), soft limit, swappiness, OOM.
pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    let limit = m.limit().filter(|&v| v != 0);
    let mut swap = m.swap().filter(|&v| v != 0);
    // Unlimited memory without a swap value means unlimited swap too (runc does the same),
    // where swap accounting exists.
    if limit == Some(-1) && swap.is_none() && dir.join(MEMSW).exists() {
        swap = Some(-1);
    }
    if swap.is_some_and(|s| s != -1) && !dir.join(MEMSW).exists() {
        return Err(Error::field("linux.resources.memory.swap", format!("swap accounting is not enabled on this host (no {MEMSW})")));
    }
    let lim_w = limit.map(|v| Write::new(dir, LIMIT, v.to_string(), "linux.resources.memory.limit"));
    let sw_w = swap.filter(|_| dir.join(MEMSW).exists()).map(|v| Write::new(dir, MEMSW, v.to_string(), "linux.resources.memory.swap"));
    // The kernel keeps memory.limit <= memsw.limit at every step: when the new memsw is above
    // the current memory limit (raising), memsw goes first; otherwise (lowering) memory first.
    let swap_first = match (limit, swap) {
        (Some(_), Some(s)) => s == -1 || read_u64(&dir.join(LIMIT)).is_none_or(|cur| cur < s as u64),
        _ => false,
    };
    if swap_first {
        out.extend(sw_w);
        out.extend(lim_w);
    } else {
        out.extend(lim_w);
        out.extend(sw_w);
    }
    if let Some(r) = m.reservation().filter(|&v| v != 0) {
        out.push(Write::new(dir, "memory.soft_limit_in_bytes", r.to_string(), "linux.resources.memory.reservation"));
    }
    if let Some(s) = m.swappiness() {
        out.push(Write::new(dir, "memory.swappiness", s.to_string(), "linux.resources.memory.swappiness"));
    }
    if m.disable_oom_killer() == Some(true) {
        out.push(Write::new(dir, "memory.oom_control", "1", "linux.resources.memory.disableOOMKiller"));
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::warn!("linux.resources.memory.kernel/kernelTCP are deprecated and ignored (the kernel no longer supports kernel memory limits)");
    }
    if m.use_hierarchy().is_some() {
        tracing::debug!("linux.resources.memory.useHierarchy ignored (always on in current kernels)");
    }
    Ok(out)
}

/// cpu.*: shares, CFS period/quota/burst, realtime, idle.
pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        out.push(Write::new(dir, "cpu.shares", s.to_string(), "linux.resources.cpu.shares"));
    }
    // Period before quota, as runc: a quota is checked against the (new) period.
    if let Some(p) = c.period().filter(|&p| p != 0) {
        out.push(Write::new(dir, "cpu.cfs_period_us", p.to_string(), "linux.resources.cpu.period"));
    }
    if let Some(q) = c.quota().filter(|&q| q != 0) {
        out.push(Write::new(dir, "cpu.cfs_quota_us", q.to_string(), "linux.resources.cpu.quota"));
    }
    if let Some(b) = c.burst() {
        if !dir.join("cpu.cfs_burst_us").exists() {
            return Err(Error::field("linux.resources.cpu.burst", "this kernel has no cpu.cfs_burst_us"));
        }
        out.push(Write::new(dir, "cpu.cfs_burst_us", b.to_string(), "linux.resources.cpu.burst"));
    }
    if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
        out.push(Write::new(dir, "cpu.rt_period_us", p.to_string(), "linux.resources.cpu.realtimePeriod"));
    }
    if let Some(r) = c.realtime_runtime().filter(|&r| r != 0) {
        out.push(Write::new(dir, "cpu.rt_runtime_us", r.to_string(), "linux.resources.cpu.realtimeRuntime"));
    }
    if let Some(i) = c.idle() {
        if !dir.join("cpu.idle").exists() {
            return Err(Error::field("linux.resources.cpu.idle", "this kernel has no cpu.idle"));
        }
        out.push(Write::new(dir, "cpu.idle", i.to_string(), "linux.resources.cpu.idle"));
    }
    Ok(out)
}

/// The weight file of a v1 blkio cgroup: `blkio.weight` (CFQ) or `blkio.bfq.weight` (BFQ).
fn weight_file(dir: &Path, cfq: &str, bfq: &str, field: &'static str) -> Result<String> {
    for f in [cfq, bfq] {
        if dir.join(f).exists() {
            return Ok(f.to_string());
        }
    }
    Err(Error::field(field, format!("this host's blkio controller has no weight file ({cfq} / {bfq}: no CFQ/BFQ I/O scheduler)")))
}

/// blkio.*: weights and throttles, one device per write.
pub(super) fn block_io(dir: &Path, b: &LinuxBlockIo) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        let f = weight_file(dir, "blkio.weight", "blkio.bfq.weight", "linux.resources.blockIO.weight")?;
        out.push(Write::new(dir, f, w.to_string(), "linux.resources.blockIO.weight"));
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        let f = "linux.resources.blockIO.leafWeight";
        if !dir.join("blkio.leaf_weight").exists() {
            return Err(Error::field(f, "this host's blkio controller has no blkio.leaf_weight"));
        }
        out.push(Write::new(dir, "blkio.leaf_weight", w.to_string(), f));
    }
    for d in b.weight_device().iter().flatten() {
        let f = "linux.resources.blockIO.weightDevice";
        if let Some(w) = d.weight() {
            let file = weight_file(dir, "blkio.weight_device", "blkio.bfq.weight_device", f)?;
            out.push(Write::new(dir, file, format!("{}:{} {w}", d.major(), d.minor()), f));
        }
        if let Some(w) = d.leaf_weight() {
            if !dir.join("blkio.leaf_weight_device").exists() {
                return Err(Error::field(f, "this host's blkio controller has no blkio.leaf_weight_device"));
            }
            out.push(Write::new(dir, "blkio.leaf_weight_device", format!("{}:{} {w}", d.major(), d.minor()), f));
        }
    }
    let files = [
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
    ];
    for ((field, list), file) in throttles(b).into_iter().zip(files) {
        for d in list {
            out.push(Write::new(dir, file, format!("{}:{} {}", d.major(), d.minor(), d.rate()), field));
        }
    }
    Ok(out)
}

/// Checks that a v1 hugetlb cgroup has a file for this page size.
pub(super) fn hugetlb_file(dir: &Path, size: &str) -> Result<()> {
    if dir.join(format!("hugetlb.{size}.limit_in_bytes")).exists() {
        Ok(())
    } else {
        Err(Error::field("linux.resources.hugepageLimits", format!("page size {size} is not supported by this host")))
    }
}
