//! Live figures from the container's cgroups (`stats`, `top`) and `update` of its limits.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::{units, Engine};

#[derive(Debug, Clone, Default)]
pub struct StatsRow {
    pub id: String,
    pub name: String,
    pub cpu_percent: f64,
    pub mem_usage: u64,
    pub mem_limit: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub pids: u64,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<String>,
    pub cpu_shares: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart: Option<String>,
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

impl Engine {
    /// Pids of the container's processes.
    pub fn top(&self, id: &str) -> Result<Vec<i32>> {
        let rec = self.load(id)?;
        if !rec.state.status.is_active() {
            return Err(Error::Conflict(format!("Container {id} is not running")));
        }
        Ok(self.runtime.load(id)?.pids()?)
    }

    /// One sample per container; CPU % over a short interval, as `docker stats` computes it
    /// (container CPU time over wall time, times the CPU count it may use).
    pub fn stats(&self, ids: &[String]) -> Result<Vec<StatsRow>> {
        let interval = Duration::from_millis(200);
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        let host_mem = host_memory();
        let mut first = Vec::new();
        for id in ids {
            let rec = self.load(id)?;
            let s = self.runtime.load(id).ok().and_then(|c| c.stats().ok());
            first.push((rec, s, Instant::now()));
        }
        std::thread::sleep(interval);
        let mut rows = Vec::new();
        for (rec, s0, t0) in first {
            let mut row = StatsRow {
                id: rec.id.clone(),
                name: rec.name.clone(),
                ..Default::default()
            };
            if let (Some(s0), Some(s1)) = (s0, self.runtime.load(&rec.id).ok().and_then(|c| c.stats().ok())) {
                let dt = t0.elapsed().as_nanos() as f64;
                let du = s1.cpu.usage.total.saturating_sub(s0.cpu.usage.total) as f64;
                row.cpu_percent = if dt > 0.0 { du / dt * 100.0 } else { 0.0 };
                let _ = cpus;
                let cache = s1
                    .memory
                    .raw
                    .get("total_inactive_file")
                    .or_else(|| s1.memory.raw.get("inactive_file"))
                    .copied()
                    .unwrap_or(0);
                row.mem_usage = s1.memory.usage.usage.saturating_sub(cache);
                let lim = s1.memory.usage.limit;
                row.mem_limit = if lim == 0 || lim >= host_mem { host_mem } else { lim };
                for e in &s1.blkio.io_service_bytes_recursive {
                    match e.op.as_str() {
                        "Read" | "read" => row.blk_read += e.value,
                        "Write" | "write" => row.blk_write += e.value,
                        _ => {}
                    }
                }
                row.pids = s1.pids.current;
            }
            rows.push(row);
        }
        Ok(rows)
    }

    pub fn update(&self, id: &str, req: &UpdateRequest) -> Result<()> {
        let (_l, mut rec) = self.lock(id)?;
        let mut res = serde_json::Map::new();
        if let Some(m) = &req.memory {
            rec.host_config.memory = units::ram_in_bytes(m)?;
            let mut mem = serde_json::json!({"limit": rec.host_config.memory});
            if let Some(s) = &req.memory_swap {
                rec.host_config.memory_swap = if s == "-1" { -1 } else { units::ram_in_bytes(s)? };
                mem["swap"] = serde_json::json!(rec.host_config.memory_swap);
            }
            res.insert("memory".into(), mem);
        }
        let mut cpu = serde_json::Map::new();
        if let Some(c) = &req.cpus {
            rec.host_config.nano_cpus = units::nano_cpus(c)?;
            cpu.insert("period".into(), 100_000.into());
            cpu.insert("quota".into(), (rec.host_config.nano_cpus / 10_000).into());
        }
        if let Some(s) = req.cpu_shares {
            rec.host_config.cpu_shares = s;
            cpu.insert("shares".into(), s.into());
        }
        if let Some(s) = &req.cpuset_cpus {
            rec.host_config.cpuset_cpus = s.clone();
            cpu.insert("cpus".into(), s.clone().into());
        }
        if !cpu.is_empty() {
            res.insert("cpu".into(), serde_json::Value::Object(cpu));
        }
        if let Some(p) = req.pids_limit {
            rec.host_config.pids_limit = Some(p);
            res.insert("pids".into(), serde_json::json!({"limit": p}));
        }
        if let Some(r) = &req.restart {
            rec.host_config.restart_policy = units::restart_policy(r)?;
        }
        if !res.is_empty() && rec.state.status.is_active() {
            let lr: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::Value::Object(res)).map_err(|e| Error::Invalid(e.to_string()))?;
            self.runtime.load(id)?.update(&lr)?;
        }
        rec.save(&self.layout.container(id).record())
    }
}
