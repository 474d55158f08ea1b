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
    pub resources: crate::options::Resources,
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

    /// New limits: recorded, and applied to a running container's cgroups as the same
    /// `linux.resources` a start would write.
    pub fn update(&self, id: &str, req: &UpdateRequest) -> Result<()> {
        let (_l, mut rec) = self.lock(id)?;
        crate::engine::apply_resources(&mut rec.host_config, &req.resources)?;
        if let Some(r) = &req.restart {
            rec.host_config.restart_policy = units::restart_policy(r)?;
        }
        if req.resources.any() && rec.state.status.is_active() {
            let mut res = crate::spec::resources(&rec);
            if let Some(o) = res.as_object_mut() {
                o.remove("devices");
            }
            let lr: oci_spec::runtime::LinuxResources = serde_json::from_value(res).map_err(|e| Error::Invalid(e.to_string()))?;
            self.runtime.load(id)?.update(&lr)?;
        }
        rec.save(&self.layout.container(id).record())
    }
}
