//! Stats from cgroup2 files, as runc's `fs2` manager reads them.

use std::collections::BTreeSet;
use std::path::Path;

use super::{parse_dev, parse_u64, read_keyed, read_opt, read_u64, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use crate::error::Result;

/// Adds what the cgroup2 directory `dir` says about controllers that `v1` (the controllers of
/// v1 hierarchies on a hybrid host) does not already cover.
pub(super) fn read(dir: &Path, v1: &BTreeSet<&str>, s: &mut Stats) -> Result<()> {
    if !v1.contains("cpu") && !v1.contains("cpuacct") {
        cpu(dir, s)?;
    }
    if !v1.contains("memory") {
        memory(dir, s)?;
    }
    if !v1.contains("pids") {
        s.pids.current = read_u64(dir, "pids.current", 0)?.unwrap_or(0);
        s.pids.limit = read_u64(dir, "pids.max", 0)?.unwrap_or(0);
    }
    if !v1.contains("blkio") {
        io(dir, s)?;
    }
    if !v1.contains("hugetlb") {
        hugetlb(dir, s)?;
    }
    Ok(())
}

/// cpu.stat counts microseconds; runc reports nanoseconds.
fn cpu(dir: &Path, s: &mut Stats) -> Result<()> {
    let Some(st) = read_keyed(dir, "cpu.stat")? else { return Ok(()) };
    let get = |k: &str| st.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = get("usage_usec") * 1000;
    s.cpu.usage.user = get("user_usec") * 1000;
    s.cpu.usage.kernel = get("system_usec") * 1000;
    s.cpu.throttling.periods = get("nr_periods");
    s.cpu.throttling.throttled_periods = get("nr_throttled");
    s.cpu.throttling.throttled_time = get("throttled_usec") * 1000;
    Ok(())
}

/// `memory.<kind>current`, `max`, `peak`; a limit of `max` is u64::MAX as in runc.
fn entry(dir: &Path, kind: &str) -> Result<MemoryEntry> {
    let f = |n: &str| read_u64(dir, &format!("memory.{kind}{n}"), u64::MAX).map(|v| v.unwrap_or(0));
    Ok(MemoryEntry { limit: f("max")?, usage: f("current")?, max: f("peak")?, failcnt: 0 })
}

fn memory(dir: &Path, s: &mut Stats) -> Result<()> {
    if read_opt(dir, "memory.current")?.is_none() {
        return Ok(());
    }
    let usage = entry(dir, "")?;
    // Like runc: swap is reported v1-style as memory+swap.
    let mut swap = entry(dir, "swap.")?;
    swap.usage += usage.usage;
    if swap.limit != u64::MAX {
        swap.limit = swap.limit.saturating_add(usage.limit);
    }
    s.memory.usage = usage;
    s.memory.swap = swap;
    if let Some(raw) = read_keyed(dir, "memory.stat")? {
        s.memory.cache = raw.get("file").copied().unwrap_or(0);
        s.memory.raw = raw;
    }
    Ok(())
}

/// io.stat: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` per device.
fn io(dir: &Path, s: &mut Stats) -> Result<()> {
    let name = "io.stat";
    let Some(text) = read_opt(dir, name)? else { return Ok(()) };
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(dev) = f.next() else { continue };
        let (major, minor) = parse_dev(dir, name, dev)?;
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry { major, minor, op: op.to_string(), value: parse_u64(dir, name, v)? });
        }
    }
    Ok(())
}

fn hugetlb(dir: &Path, s: &mut Stats) -> Result<()> {
    for size in super::hugetlb_sizes(dir, "current") {
        let usage = read_u64(dir, &format!("hugetlb.{size}.current"), u64::MAX)?.unwrap_or(0);
        let failcnt = read_keyed(dir, &format!("hugetlb.{size}.events"))?
            .and_then(|e| e.get("max").copied())
            .unwrap_or(0);
        s.hugetlb.insert(size, Hugetlb { usage, max: 0, failcnt });
    }
    Ok(())
}
