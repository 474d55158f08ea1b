//! Host-independent checks of `linux.resources`: each bad value is an error naming its field.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use crate::error::{Error, Result};

/// v1's `cpu.cfs_period_us` range (1ms..1s); cgroup2's cpu.max accepts the same.
pub(super) const PERIOD_MIN: u64 = 1_000;
pub(super) const PERIOD_MAX: u64 = 1_000_000;
/// The smallest CFS quota the kernel takes (1ms).
pub(super) const QUOTA_MIN: i64 = 1_000;
/// The largest device numbers Linux has (12-bit major, 20-bit minor).
const MAJOR_MAX: i64 = (1 << 12) - 1;
const MINOR_MAX: i64 = (1 << 20) - 1;

/// A byte count where -1 means unlimited and 0 means unset (as runc reads them).
fn bytes(field: &str, v: Option<i64>) -> Result<()> {
    match v {
        Some(n) if n < -1 => Err(Error::field(field, format!("{n} is negative (use -1 for unlimited)"))),
        _ => Ok(()),
    }
}

fn memory(m: &LinuxMemory) -> Result<()> {
    bytes("linux.resources.memory.limit", m.limit())?;
    bytes("linux.resources.memory.reservation", m.reservation())?;
    bytes("linux.resources.memory.swap", m.swap())?;
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::field("linux.resources.memory.swappiness", format!("{s} is out of range (0-100)")));
        }
    }
    if let (Some(limit), Some(swap)) = (m.limit(), m.swap()) {
        if limit > 0 && swap > 0 && swap < limit {
            return Err(Error::field(
                "linux.resources.memory.swap",
                format!("{swap} is below the memory limit {limit} (swap is the total of memory and swap)"),
            ));
        }
    }
    if m.swap().is_some_and(|s| s > 0) && m.limit().is_none_or(|l| l <= 0) {
        return Err(Error::field("linux.resources.memory.swap", "a swap limit needs a memory limit"));
    }
    Ok(())
}

fn cpu(c: &LinuxCpu) -> Result<()> {
    // 0 is "unset", as runc reads it (Docker's `update` sends every field, the unset ones as 0).
    if let Some(p) = c.period().filter(|&p| p != 0) {
        if !(PERIOD_MIN..=PERIOD_MAX).contains(&p) {
            return Err(Error::field("linux.resources.cpu.period", format!("{p} is out of range ({PERIOD_MIN}-{PERIOD_MAX} microseconds)")));
        }
    }
    if let Some(q) = c.quota() {
        if q != -1 && q != 0 && q < QUOTA_MIN {
            return Err(Error::field("linux.resources.cpu.quota", format!("{q} is invalid (-1 for no limit, or at least {QUOTA_MIN} microseconds)")));
        }
    }
    if let Some(b) = c.burst() {
        if b > 0 && c.quota().is_some_and(|q| q > 0 && b > q as u64) {
            return Err(Error::field("linux.resources.cpu.burst", format!("{b} exceeds the quota")));
        }
    }
    if let Some(r) = c.realtime_runtime() {
        if r < -1 {
            return Err(Error::field("linux.resources.cpu.realtimeRuntime", format!("{r} is negative (use -1 for no limit)")));
        }
        if let Some(p) = c.realtime_period() {
            if r > 0 && r as u64 > p {
                return Err(Error::field("linux.resources.cpu.realtimeRuntime", format!("{r} exceeds realtimePeriod {p}")));
            }
        }
    }
    if let Some(s) = c.shares() {
        if s != 0 && !(2..=262_144).contains(&s) {
            return Err(Error::field("linux.resources.cpu.shares", format!("{s} is out of range (2-262144)")));
        }
    }
    if let Some(i) = c.idle() {
        if !(0..=1).contains(&i) {
            return Err(Error::field("linux.resources.cpu.idle", format!("{i} must be 0 or 1")));
        }
    }
    for (field, v) in [("linux.resources.cpu.cpus", c.cpus()), ("linux.resources.cpu.mems", c.mems())] {
        if let Some(s) = v {
            cpu_list(field, s)?;
        }
    }
    Ok(())
}

/// A cpu/node list like `0-3,5`.
fn cpu_list(field: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Ok(());
    }
    let ok = s.split(',').all(|part| {
        let mut ends = part.splitn(2, '-');
        let lo = ends.next().and_then(|a| a.trim().parse::<u32>().ok());
        match (lo, ends.next()) {
            (Some(_), None) => true,
            (Some(lo), Some(hi)) => hi.trim().parse::<u32>().is_ok_and(|hi| hi >= lo),
            _ => false,
        }
    });
    if ok {
        Ok(())
    } else {
        Err(Error::field(field, format!("{s:?} is not a list like \"0-3,5\"")))
    }
}

fn device(field: &str, major: i64, minor: i64) -> Result<()> {
    if !(0..=MAJOR_MAX).contains(&major) || !(0..=MINOR_MAX).contains(&minor) {
        return Err(Error::field(field, format!("bad device number {major}:{minor}")));
    }
    Ok(())
}

fn weight(field: &str, w: Option<u16>) -> Result<()> {
    match w {
        Some(w) if w != 0 && !(10..=1000).contains(&w) => Err(Error::field(field, format!("{w} is out of range (10-1000)"))),
        _ => Ok(()),
    }
}

fn block_io(b: &LinuxBlockIo) -> Result<()> {
    weight("linux.resources.blockIO.weight", b.weight())?;
    weight("linux.resources.blockIO.leafWeight", b.leaf_weight())?;
    for d in b.weight_device().iter().flatten() {
        device("linux.resources.blockIO.weightDevice", d.major(), d.minor())?;
        weight("linux.resources.blockIO.weightDevice", d.weight())?;
        weight("linux.resources.blockIO.weightDevice", d.leaf_weight())?;
    }
    for (field, list) in throttles(b) {
        for d in list {
            device(field, d.major(), d.minor())?;
        }
    }
    Ok(())
}

/// The four throttle lists with their field names.
pub(super) fn throttles(b: &LinuxBlockIo) -> [(&'static str, &[LinuxThrottleDevice]); 4] {
    fn l(v: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        v.as_deref().unwrap_or(&[])
    }
    [
        ("linux.resources.blockIO.throttleReadBpsDevice", l(b.throttle_read_bps_device())),
        ("linux.resources.blockIO.throttleWriteBpsDevice", l(b.throttle_write_bps_device())),
        ("linux.resources.blockIO.throttleReadIOPSDevice", l(b.throttle_read_iops_device())),
        ("linux.resources.blockIO.throttleWriteIOPSDevice", l(b.throttle_write_iops_device())),
    ]
}

/// A hugepage size as the kernel names it in hugetlb files: `<n>KB`, `<n>MB` or `<n>GB`.
fn page_size(s: &str) -> Result<()> {
    let digits = s.strip_suffix("KB").or_else(|| s.strip_suffix("MB")).or_else(|| s.strip_suffix("GB"));
    match digits {
        Some(d) if !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()) && !d.starts_with('0') => Ok(()),
        _ => Err(Error::field("linux.resources.hugepageLimits", format!("bad page size {s:?} (expected e.g. \"2MB\" or \"1GB\")"))),
    }
}

/// Syntax of a `unified` key: one file name (`controller.file`), nothing path-like.
fn unified_key(k: &str) -> Result<()> {
    if k.is_empty() || k.contains('/') || k.contains("..") || k.contains('\0') || !k.contains('.') || k.starts_with('.') {
        return Err(Error::field("linux.resources.unified", format!("bad key {k:?} (expected a file name like \"memory.high\")")));
    }
    Ok(())
}

pub(super) fn resources(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() < -1 {
            return Err(Error::field("linux.resources.pids.limit", format!("{} is negative (use -1 or 0 for no limit)", p.limit())));
        }
    }
    if let Some(b) = r.block_io() {
        block_io(b)?;
    }
    for l in r.hugepage_limits().iter().flatten() {
        page_size(l.page_size())?;
        if l.limit() < -1 {
            return Err(Error::field("linux.resources.hugepageLimits", format!("{}: limit {} is negative", l.page_size(), l.limit())));
        }
    }
    for (dev, _) in r.rdma().iter().flatten() {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(Error::field("linux.resources.rdma", format!("bad device name {dev:?}")));
        }
    }
    for p in r.network().iter().flat_map(|n| n.priorities().iter().flatten()) {
        if p.name().is_empty() || p.name().contains(char::is_whitespace) || p.name().contains('/') {
            return Err(Error::field("linux.resources.network.priorities", format!("bad interface name {:?}", p.name())));
        }
    }
    for k in r.unified().iter().flat_map(|u| u.keys()) {
        unified_key(k)?;
    }
    Ok(())
}

/// True if the memory request sets any limit (so a missing controller matters).
pub(super) fn memory_requested(m: &LinuxMemory) -> bool {
    let lim = |v: Option<i64>| v.is_some_and(|n| n > 0);
    lim(m.limit()) || lim(m.reservation()) || lim(m.swap()) || m.swappiness().is_some() || m.disable_oom_killer() == Some(true)
}

pub(super) fn cpu_requested(c: &LinuxCpu) -> bool {
    c.shares().is_some_and(|s| s > 0)
        || c.quota().is_some_and(|q| q > 0)
        || c.burst().is_some_and(|b| b > 0)
        || c.realtime_runtime().is_some_and(|r| r > 0)
        || c.idle().is_some_and(|i| i > 0)
}

pub(super) fn block_io_requested(b: &LinuxBlockIo) -> bool {
    b.weight().is_some_and(|w| w > 0)
        || b.leaf_weight().is_some_and(|w| w > 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || throttles(b).iter().any(|(_, l)| l.iter().any(|d| d.rate() > 0))
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxResources;

    #[test]
    fn dockers_unset_zeros_are_unset() {
        // What `docker update --memory 64m --memory-swap 128m` sends.
        let docker = r#"{"memory":{"limit":67108864,"reservation":0,"swap":134217728,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}"#;
        let r: LinuxResources = serde_json::from_str(docker).unwrap();
        super::resources(&r).unwrap();
        let bad: LinuxResources = serde_json::from_str(r#"{"cpu":{"period":10}}"#).unwrap();
        assert!(super::resources(&bad).unwrap_err().to_string().contains("cpu.period: 10 is out of range"));
    }
}
