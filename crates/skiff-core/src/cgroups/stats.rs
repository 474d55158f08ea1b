//! Resource usage of a container's cgroup, in the shape of runc's `events --stats` data
//! (runc `types/events.go`, including its Go `omitempty` rules: zero numbers and empty lists
//! marked so are left out, nested structs never are).
//!
//! Values come from v1 controller files ([`v1`]) and cgroup2 files ([`v2`]). A file that does
//! not exist is absent data (zero / left out), not an error; on a hybrid host the cgroup2
//! directory only contributes controllers that no v1 hierarchy has (e.g. hugetlb here).

mod v1;
mod v2;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::{Cgroups, Manager};
use crate::error::{Error, Result};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `data` of a runc stats event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// Per page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// Always `null`: runc only fills it for interfaces it configured itself.
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as it is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 for no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Blkio {
    #[serde(rename = "ioServiceBytesRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Intel RDT is not supported: always `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntelRdt {}

impl Manager {
    /// Reads the cgroup's usage from every hierarchy it is in.
    pub fn stats(&self, cgroups: &Cgroups) -> Result<Stats> {
        let mut s = Stats::default();
        let hierarchies: Vec<_> = self.paths.iter().filter_map(|p| Some((p, cgroups.hierarchy_of(p)?))).collect();
        let v1_controllers: BTreeSet<&str> = hierarchies
            .iter()
            .filter(|(_, h)| !h.v2)
            .flat_map(|(_, h)| h.controllers.iter().map(String::as_str))
            .collect();
        for (dir, h) in &hierarchies {
            if h.v2 {
                v2::read(dir, &v1_controllers, &mut s)?;
            } else {
                for c in &h.controllers {
                    v1::read(dir, c, &mut s)?;
                }
            }
        }
        Ok(s)
    }
}

/// The file's text, `None` if it does not exist.
fn read_opt(dir: &Path, name: &str) -> Result<Option<String>> {
    let p = dir.join(name);
    match fs::read_to_string(&p) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", p, e)),
    }
}

fn bad(dir: &Path, name: &str, what: &str) -> Error {
    Error::Cgroup(format!("{}: cannot parse {what:?}", dir.join(name).display()))
}

fn parse_u64(dir: &Path, name: &str, v: &str) -> Result<u64> {
    v.trim().parse().map_err(|_| bad(dir, name, v))
}

/// A file holding one number; `max` reads as `max_value`.
fn read_u64(dir: &Path, name: &str, max_value: u64) -> Result<Option<u64>> {
    match read_opt(dir, name)? {
        None => Ok(None),
        Some(t) if t.trim() == "max" => Ok(Some(max_value)),
        Some(t) => parse_u64(dir, name, &t).map(Some),
    }
}

/// A flat keyed file (`key value` per line), e.g. memory.stat or cpu.stat.
fn read_keyed(dir: &Path, name: &str) -> Result<Option<BTreeMap<String, u64>>> {
    let Some(text) = read_opt(dir, name)? else { return Ok(None) };
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line.split_once(' ').ok_or_else(|| bad(dir, name, line))?;
        out.insert(k.to_string(), parse_u64(dir, name, v)?);
    }
    Ok(Some(out))
}

/// `major:minor` of a device column.
fn parse_dev(dir: &Path, name: &str, dev: &str) -> Result<(u64, u64)> {
    let (ma, mi) = dev.split_once(':').ok_or_else(|| bad(dir, name, dev))?;
    Ok((parse_u64(dir, name, ma)?, parse_u64(dir, name, mi)?))
}

/// Page sizes that have a `hugetlb.<size>.<suffix>` file in `dir`, sorted.
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else { return Vec::new() };
    let mut sizes: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let size = n.strip_prefix("hugetlb.")?.strip_suffix(suffix)?.strip_suffix('.')?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    sizes
}
