//! cgroup v2 files for memory, cpu and io, `unified` keys, and enabling controllers.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};

use super::validate::throttles;
use super::Write;
use crate::error::{Error, Result};

/// `-1` is cgroup2's "max".
fn num(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// cgroup v1 cpu.shares (2..262144, default 1024) -> cgroup2 cpu.weight (1..10000, default
/// 100), with runc's linear formula `1 + ((shares - 2) * 9999) / 262142` (1024 -> 39).
/// crun 1.23 switched to a quadratic curve on a log scale that maps 1024 to exactly 100;
/// we keep runc's, since skiff aims at runc compatibility and kubelet assumes it.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// blkio.weight (10..1000) -> io.weight (1..10000), runc's `1 + (w - 10) * 9999 / 990`.
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10) * 9999) / 990
}

/// cgroup2 memory.swap.max from the spec's swap (memory + swap), as runc converts it.
fn swap_value(swap: i64, limit: i64) -> Result<Option<String>> {
    if limit == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        s => {
            if limit <= 0 {
                return Err(Error::field("linux.resources.memory.swap", "a swap limit needs a memory limit"));
            }
            Ok(Some((s - limit).to_string()))
        }
    }
}

/// The current value of a numeric file (None if absent or unreadable).
fn read_u64(p: &Path) -> Option<u64> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    let limit = m.limit().unwrap_or(0);
    if m.check_before_update() == Some(true) && limit > 0 {
        if let Some(cur) = read_u64(&dir.join("memory.current")) {
            if (limit as u64) < cur {
                return Err(Error::field(
                    "linux.resources.memory.limit",
                    format!("rejecting memory limit {limit} below the current usage {cur} (checkBeforeUpdate)"),
                ));
            }
        }
    }
    if let Some(v) = swap_value(m.swap().unwrap_or(0), limit)? {
        out.push(Write::new(dir, "memory.swap.max", v, "linux.resources.memory.swap"));
    }
    if limit != 0 {
        out.push(Write::new(dir, "memory.max", num(limit), "linux.resources.memory.limit"));
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        out.push(Write::new(dir, "memory.low", num(r), "linux.resources.memory.reservation"));
    }
    if m.swappiness().is_some() {
        tracing::debug!("linux.resources.memory.swappiness ignored: cgroup v2 has no per-cgroup swappiness");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::debug!("linux.resources.memory.disableOOMKiller ignored: cgroup v2 cannot disable the OOM killer");
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::warn!("linux.resources.memory.kernel/kernelTCP are deprecated and ignored");
    }
    Ok(out)
}

pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    if c.realtime_runtime().is_some_and(|r| r > 0) || c.realtime_period().is_some_and(|p| p > 0) {
        return Err(Error::field("linux.resources.cpu.realtimeRuntime", "realtime scheduling limits are not supported on cgroup v2"));
    }
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        out.push(Write::new(dir, "cpu.weight", shares_to_weight(s).to_string(), "linux.resources.cpu.shares"));
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 { quota.to_string() } else { "max".to_string() };
        if period != 0 {
            v.push_str(&format!(" {period}"));
        }
        out.push(Write::new(dir, "cpu.max", v, "linux.resources.cpu.quota"));
    }
    if let Some(b) = c.burst() {
        out.push(Write::new(dir, "cpu.max.burst", b.to_string(), "linux.resources.cpu.burst"));
    }
    if let Some(i) = c.idle() {
        out.push(Write::new(dir, "cpu.idle", i.to_string(), "linux.resources.cpu.idle"));
    }
    Ok(out)
}

/// io.weight (converted from blkio's range; per device too) and io.max, one line per device
/// with all of its throttles: `MAJ:MIN rbps=.. wbps=.. riops=.. wiops=..` (0 = no limit).
pub(super) fn block_io(dir: &Path, b: &LinuxBlockIo) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    // With BFQ loaded its own weights (blkio's range, unconverted) are the ones that act, as
    // runc writes them: io.weight is iocost's, which BFQ-scheduled devices ignore.
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if bfq {
            out.push(Write::new(dir, "io.bfq.weight", w.to_string(), "linux.resources.blockIO.weight"));
        } else {
            out.push(Write::new(dir, "io.weight", format!("default {}", blkio_to_io_weight(w)), "linux.resources.blockIO.weight"));
        }
    }
    if b.leaf_weight().is_some() {
        tracing::warn!("linux.resources.blockIO.leafWeight ignored: cgroup v2 has no leaf weights");
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|&w| w != 0) {
            let (file, w) = if bfq { ("io.bfq.weight", u64::from(w)) } else { ("io.weight", blkio_to_io_weight(w)) };
            out.push(Write::new(dir, file, format!("{}:{} {w}", d.major(), d.minor()), "linux.resources.blockIO.weightDevice"));
        }
    }
    // Devices in order of first appearance, each with its keys.
    let mut devs: Vec<((i64, i64), Vec<String>, &'static str)> = Vec::new();
    for ((field, list), key) in throttles(b).into_iter().zip(["rbps", "wbps", "riops", "wiops"]) {
        for d in list {
            let rate = if d.rate() == 0 { "max".to_string() } else { d.rate().to_string() };
            let kv = format!("{key}={rate}");
            match devs.iter_mut().find(|(n, _, _)| *n == (d.major(), d.minor())) {
                Some((_, kvs, _)) => kvs.push(kv),
                None => devs.push(((d.major(), d.minor()), vec![kv], field)),
            }
        }
    }
    for ((maj, min), kvs, field) in devs {
        out.push(Write::new(dir, "io.max", format!("{maj}:{min} {}", kvs.join(" ")), field));
    }
    Ok(out)
}

/// cgroup.* files a `unified` key must not write: membership, structure and freezing are the
/// runtime's business.
const UNIFIED_DENIED: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
    "cgroup.type",
    "cgroup.kill",
    "cgroup.freeze",
    "cgroup.controllers",
    "cgroup.events",
    "cgroup.stat",
];

/// The controller a `unified` key needs enabled (None for `cgroup.*` interface files).
pub(super) fn unified_controller(key: &str, available: &BTreeSet<String>) -> Result<Option<String>> {
    let field = "linux.resources.unified";
    let Some((prefix, _)) = key.split_once('.') else {
        return Err(Error::field(field, format!("bad key {key:?}")));
    };
    if prefix == "cgroup" {
        if UNIFIED_DENIED.contains(&key) {
            return Err(Error::field(field, format!("{key} may not be set through unified")));
        }
        return Ok(None);
    }
    if !available.contains(prefix) {
        let have: Vec<&str> = available.iter().map(String::as_str).collect();
        return Err(Error::field(
            field,
            format!("{key}: the {prefix} controller is not available (cgroup.controllers: {:?})", have.join(" ")),
        ));
    }
    Ok(Some(prefix.to_string()))
}

/// Writes enabling `needed` in `cgroup.subtree_control` of every ancestor of `dir`, from the
/// mount down to the parent, where it is not enabled yet.
///
/// Like runc, this also adds controllers to ancestors we did not create (the hierarchy's root,
/// or the parent of a `cgroupsPath`): cgroup2 only lets a cgroup use a controller its parent
/// enabled, so there is no other way. We only ever add: what the request needs, or (at create
/// on a pure cgroup2 host, `Manager::enable_all_v2`) every controller the root offers, as runc.
pub(super) fn enable_controllers(mount: &Path, dir: &Path, needed: &BTreeSet<String>) -> Result<Vec<Write>> {
    let mut ancestors: Vec<&Path> = dir.ancestors().skip(1).take_while(|a| a.starts_with(mount)).collect();
    ancestors.reverse();
    let mut out = Vec::new();
    for a in ancestors {
        let have: BTreeSet<String> = fs::read_to_string(a.join("cgroup.subtree_control"))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let missing: Vec<String> = needed.difference(&have).map(|c| format!("+{c}")).collect();
        if !missing.is_empty() {
            out.push(Write::new(a, "cgroup.subtree_control", missing.join(" "), "linux.resources"));
        }
    }
    Ok(out)
}
