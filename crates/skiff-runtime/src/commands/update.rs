//! `update`: new resource limits for a running (or created, or paused) container.

use std::io::Read;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxCpu, LinuxPids, LinuxResources};
use skiff_core::Runtime;

use crate::cli::UpdateArgs;

/// A memory size as runc's `update` takes it (docker's `RAMInBytes`): a number with an optional
/// binary unit `b`, `k`, `m`, `g`, `t`, `p` (any case, optionally followed by `i` and/or `b`,
/// e.g. `64m`, `1GiB`, `1.5g`), or `-1` for unlimited.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => bail!("invalid size {s:?}"),
    };
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    let v = n * (1u64 << shift) as f64;
    if num.is_empty() || !v.is_finite() || v > i64::MAX as f64 {
        bail!("invalid size {s:?}");
    }
    Ok(v as i64)
}

/// The `--resources` JSON (file or `-` for stdin), or empty resources.
fn read_resources(a: &UpdateArgs) -> Result<LinuxResources> {
    let Some(path) = &a.resources else { return Ok(LinuxResources::default()) };
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("read resources from stdin")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("parse resources {}", path.display()))
}

/// The resources the arguments ask for: the JSON, then each flag given on top of it.
pub fn resources(a: &UpdateArgs) -> Result<LinuxResources> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        bail!("intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported");
    }
    let mut r = read_resources(a)?;
    let size = |v: &Option<String>, flag: &str| v.as_deref().map(parse_size).transpose().with_context(|| format!("--{flag}"));

    let mut mem = r.memory().unwrap_or_default();
    let before = mem;
    if let Some(v) = size(&a.memory, "memory")? {
        mem.set_limit(Some(v));
    }
    if let Some(v) = size(&a.memory_reservation, "memory-reservation")? {
        mem.set_reservation(Some(v));
    }
    if let Some(v) = size(&a.memory_swap, "memory-swap")? {
        mem.set_swap(Some(v));
    }
    if let Some(v) = size(&a.kernel_memory, "kernel-memory")? {
        mem.set_kernel(Some(v));
    }
    if let Some(v) = size(&a.kernel_memory_tcp, "kernel-memory-tcp")? {
        mem.set_kernel_tcp(Some(v));
    }
    if mem != before || r.memory().is_some() {
        r.set_memory(Some(mem));
    }

    let mut cpu = r.cpu().clone().unwrap_or_default();
    let before = cpu.clone();
    apply_cpu(&mut cpu, a);
    if cpu != before || r.cpu().is_some() {
        r.set_cpu(Some(cpu));
    }

    if let Some(w) = a.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    if let Some(n) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(n);
        r.set_pids(Some(p));
    }
    Ok(r)
}

fn apply_cpu(c: &mut LinuxCpu, a: &UpdateArgs) {
    if let Some(v) = a.cpu_period {
        c.set_period(Some(v));
    }
    if let Some(v) = a.cpu_quota {
        c.set_quota(Some(v));
    }
    if let Some(v) = a.cpu_burst {
        c.set_burst(Some(v));
    }
    if let Some(v) = a.cpu_share {
        c.set_shares(Some(v));
    }
    if let Some(v) = a.cpu_rt_period {
        c.set_realtime_period(Some(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        c.set_realtime_runtime(Some(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        c.set_cpus(Some(v.clone()));
    }
    if let Some(v) = &a.cpuset_mems {
        c.set_mems(Some(v.clone()));
    }
}

/// `update`: [`skiff_core::Container::update`] with the merged flags.
pub fn update(rt: &Runtime, a: &UpdateArgs) -> Result<i32> {
    let res = resources(a)?;
    rt.load(&a.id)?.update(&res)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_runc() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("-1").unwrap(), -1);
        for bad in ["", "m", "12x", "-2", "1..2k", "99999999999p"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_build_resources() {
        let cli = crate::cli::parse_from(["skiff-runtime", "update", "--memory", "64m", "--memory-swap=-1", "--pids-limit", "-1", "--cpu-quota", "-1", "--cpu-period", "100000", "--cpuset-cpus", "0", "--blkio-weight", "300", "c"]).unwrap();
        let Some(crate::cli::Command::Update(a)) = cli.command else { panic!("not update") };
        assert_eq!(a.id, "c");
        let r = resources(&a).unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.swap(), m.reservation()), (Some(64 << 20), Some(-1), None));
        assert_eq!(r.pids().unwrap().limit(), -1);
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.quota(), c.period(), c.cpus().as_deref(), c.shares()), (Some(-1), Some(100000), Some("0"), None));
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
    }

    #[test]
    fn no_flags_no_resources() {
        let cli = crate::cli::parse_from(["skiff-runtime", "update", "c"]).unwrap();
        let Some(crate::cli::Command::Update(a)) = cli.command else { panic!("not update") };
        let r = resources(&a).unwrap();
        assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none() && r.block_io().is_none());
    }
}
