//! Stats from cgroup v1 controller files, as runc's `fs` manager reads them.

use std::path::Path;

use super::{parse_dev, parse_u64, read_keyed, read_opt, read_u64, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use crate::error::Result;

/// Adds what controller `controller` of the v1 directory `dir` says.
pub(super) fn read(dir: &Path, controller: &str, s: &mut Stats) -> Result<()> {
    match controller {
        "cpuacct" => cpuacct(dir, s),
        "cpu" => cpu(dir, s),
        "memory" => memory(dir, s),
        "pids" => pids(dir, s),
        "blkio" => blkio(dir, s),
        "hugetlb" => hugetlb(dir, s),
        _ => Ok(()),
    }
}

fn list(dir: &Path, name: &str) -> Result<Vec<u64>> {
    let Some(text) = read_opt(dir, name)? else { return Ok(Vec::new()) };
    text.split_whitespace().map(|v| parse_u64(dir, name, v)).collect()
}

/// Nanoseconds per USER_HZ tick (cpuacct.stat counts ticks).
fn ns_per_tick() -> u64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100);
    1_000_000_000 / u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100)
}

fn cpuacct(dir: &Path, s: &mut Stats) -> Result<()> {
    let u = &mut s.cpu.usage;
    u.total = read_u64(dir, "cpuacct.usage", 0)?.unwrap_or(0);
    u.percpu = list(dir, "cpuacct.usage_percpu")?;
    u.percpu_kernel = list(dir, "cpuacct.usage_percpu_sys")?;
    u.percpu_user = list(dir, "cpuacct.usage_percpu_user")?;
    if let Some(st) = read_keyed(dir, "cpuacct.stat")? {
        let ns = ns_per_tick();
        u.user = st.get("user").copied().unwrap_or(0) * ns;
        u.kernel = st.get("system").copied().unwrap_or(0) * ns;
    }
    Ok(())
}

fn cpu(dir: &Path, s: &mut Stats) -> Result<()> {
    if let Some(st) = read_keyed(dir, "cpu.stat")? {
        let t = &mut s.cpu.throttling;
        t.periods = st.get("nr_periods").copied().unwrap_or(0);
        t.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        t.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    Ok(())
}

/// `<prefix>usage_in_bytes`, `limit_in_bytes`, `max_usage_in_bytes`, `failcnt`.
fn memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let f = |n: &str| read_u64(dir, &format!("{prefix}{n}"), u64::MAX).map(|v| v.unwrap_or(0));
    Ok(MemoryEntry {
        limit: f("limit_in_bytes")?,
        usage: f("usage_in_bytes")?,
        max: f("max_usage_in_bytes")?,
        failcnt: f("failcnt")?,
    })
}

fn memory(dir: &Path, s: &mut Stats) -> Result<()> {
    let m = &mut s.memory;
    m.usage = memory_entry(dir, "memory.")?;
    m.swap = memory_entry(dir, "memory.memsw.")?;
    m.kernel = memory_entry(dir, "memory.kmem.")?;
    m.kernel_tcp = memory_entry(dir, "memory.kmem.tcp.")?;
    if let Some(raw) = read_keyed(dir, "memory.stat")? {
        m.cache = raw.get("cache").copied().unwrap_or(0);
        m.raw = raw;
    }
    Ok(())
}

fn pids(dir: &Path, s: &mut Stats) -> Result<()> {
    s.pids.current = read_u64(dir, "pids.current", 0)?.unwrap_or(0);
    // "max" (no limit) is 0, as in runc.
    s.pids.limit = read_u64(dir, "pids.max", 0)?.unwrap_or(0);
    Ok(())
}

/// `8:0 Read 4096` lines; the closing `Total N` line has no device and is skipped.
fn blkio_file(dir: &Path, names: [&str; 2]) -> Result<Vec<BlkioEntry>> {
    for name in names {
        let Some(text) = read_opt(dir, name)? else { continue };
        let mut out = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 3 {
                continue;
            }
            let (major, minor) = parse_dev(dir, name, f[0])?;
            out.push(BlkioEntry { major, minor, op: f[1].to_string(), value: parse_u64(dir, name, f[2])? });
        }
        return Ok(out);
    }
    Ok(Vec::new())
}

fn blkio(dir: &Path, s: &mut Stats) -> Result<()> {
    s.blkio.io_service_bytes_recursive =
        blkio_file(dir, ["blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"])?;
    s.blkio.io_serviced_recursive = blkio_file(dir, ["blkio.throttle.io_serviced_recursive", "blkio.throttle.io_serviced"])?;
    Ok(())
}

fn hugetlb(dir: &Path, s: &mut Stats) -> Result<()> {
    for size in super::hugetlb_sizes(dir, "usage_in_bytes") {
        let f = |n: &str| read_u64(dir, &format!("hugetlb.{size}.{n}"), u64::MAX).map(|v| v.unwrap_or(0));
        let h = Hugetlb { usage: f("usage_in_bytes")?, max: f("max_usage_in_bytes")?, failcnt: f("failcnt")? };
        s.hugetlb.insert(size, h);
    }
    Ok(())
}
