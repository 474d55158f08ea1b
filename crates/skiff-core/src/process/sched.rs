//! Scheduling settings of runtime-spec 1.2/1.3 a container process gets before its program
//! runs: `process.ioPriority` (ioprio_set), `process.scheduler` (sched_setattr),
//! `process.execCPUAffinity` (sched_setaffinity) and `linux.memoryPolicy` (set_mempolicy).
//!
//! [`validate_process`] and [`validate_linux`] refuse what can never work when the config is
//! loaded (at create, or `exec --process`), naming the field; the `apply_*` functions run in
//! the container's processes, before the seccomp filter (a profile may deny these syscalls) and
//! before the user switch (RT classes and negative nice values need CAP_SYS_NICE/ADMIN).
//!
//! As runc: `ioPriority` and `scheduler` apply to the init and to every exec'd process;
//! `execCPUAffinity` only to exec'd processes (`initial` before the process joins the
//! container's cgroup, `final` right before its program), while a process without `final`
//! (the init included) has its affinity reset to every CPU its cpuset allows, instead of
//! inheriting the runtime's; `memoryPolicy` to the init (its children inherit it).
//!
//! The raw syscalls are the four `sys_*` functions at the bottom; everything else is pure and
//! unit-tested.

use nix::sched::CpuSet;
use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxMemoryPolicy, LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process, Scheduler,
};

use crate::error::{Error, Result};

/// Highest CPU number a list may name (glibc's `CPU_SETSIZE` - 1, nix's `CpuSet`).
const MAX_CPU: u32 = 1023;
/// Highest NUMA node number a list may name (the kernel's `MAX_NUMNODES` is at most 1024).
const MAX_NODE: u32 = 1023;
/// Words of the node mask handed to set_mempolicy.
const NODE_WORDS: usize = (MAX_NODE as usize + 1) / 64;

const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_WHO_PROCESS: i32 = 1;

const MPOL_F_NUMA_BALANCING: i32 = 1 << 13;
const MPOL_F_RELATIVE_NODES: i32 = 1 << 14;
const MPOL_F_STATIC_NODES: i32 = 1 << 15;

/// Parses a CPU or node list ("0-3,7"): sorted, without duplicates. `max` is the highest
/// number allowed; errors say what is wrong with the list (the caller names the field).
pub fn parse_list(s: &str, max: u32) -> std::result::Result<Vec<u32>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let num = |t: &str| -> std::result::Result<u32, String> {
        let t = t.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not a list such as \"0-3,7\" ({t:?} is not a number)"));
        }
        let n: u32 = t.parse().map_err(|_| format!("{t} is out of range (at most {max})"))?;
        if n > max {
            return Err(format!("{n} is out of range (at most {max})"));
        }
        Ok(n)
    };
    let mut out = Vec::new();
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("range {lo}-{hi} in {s:?} runs backwards"));
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The `ioprio` value of `process.ioPriority`: class in the top bits, priority (0-7) below.
pub fn ioprio_value(class: IOPriorityClass, priority: i64) -> std::result::Result<i32, String> {
    if !(0..=7).contains(&priority) {
        return Err(format!("{priority} is out of range (0-7)"));
    }
    let class = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    Ok((class << IOPRIO_CLASS_SHIFT) | priority as i32)
}

/// The kernel's `struct sched_attr` (`SCHED_ATTR_SIZE_VER1`, with the utilization clamps).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

fn policy_name(p: LinuxSchedulerPolicy) -> &'static str {
    match p {
        LinuxSchedulerPolicy::SchedOther => "SCHED_OTHER",
        LinuxSchedulerPolicy::SchedFifo => "SCHED_FIFO",
        LinuxSchedulerPolicy::SchedRr => "SCHED_RR",
        LinuxSchedulerPolicy::SchedBatch => "SCHED_BATCH",
        LinuxSchedulerPolicy::SchedIso => "SCHED_ISO",
        LinuxSchedulerPolicy::SchedIdle => "SCHED_IDLE",
        LinuxSchedulerPolicy::SchedDeadline => "SCHED_DEADLINE",
    }
}

/// `process.scheduler` as a `sched_attr`, checked as runc checks it (and as the kernel would,
/// so that a value it refuses fails at create naming the field). Errors are `(field, msg)`.
pub fn sched_attr(s: &Scheduler) -> std::result::Result<SchedAttr, (&'static str, String)> {
    let policy = *s.policy();
    let name = policy_name(policy);
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(("process.scheduler.nice", format!("{nice} is out of range (-20 to 19)")));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(policy, LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr);
    if realtime && !(1..=99).contains(&priority) {
        return Err(("process.scheduler.priority", format!("{name} needs a priority from 1 to 99, not {priority}")));
    }
    if !realtime && priority != 0 {
        return Err((
            "process.scheduler.priority",
            format!("only SCHED_FIFO and SCHED_RR take a priority, not {name}"),
        ));
    }
    let (runtime, deadline, period) = (s.runtime().unwrap_or(0), s.deadline().unwrap_or(0), s.period().unwrap_or(0));
    let policy_no = match policy {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => return Err(("process.scheduler.policy", "SCHED_ISO is not implemented by Linux".into())),
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    if policy == LinuxSchedulerPolicy::SchedDeadline {
        if deadline == 0 || runtime < 1024 || runtime > deadline || (period != 0 && period < deadline) || deadline >> 63 != 0 || period >> 63 != 0 {
            return Err((
                "process.scheduler",
                format!("SCHED_DEADLINE needs 1024 <= runtime <= deadline <= period (or period 0), in ns; got runtime {runtime}, deadline {deadline}, period {period}"),
            ));
        }
    } else if runtime != 0 || deadline != 0 || period != 0 {
        return Err((
            "process.scheduler",
            format!("runtime, deadline and period are for SCHED_DEADLINE only, not {name}"),
        ));
    }
    let flags = s.flags().iter().flatten().fold(0u64, |acc, f| {
        acc | match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy_no,
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
        util_min: 0,
        util_max: 0,
    })
}

/// `linux.memoryPolicy` as set_mempolicy's mode (with flags) and node mask. `online` lists the
/// host's NUMA nodes: without a static or relative flag every node must be one of them.
/// Errors are `(field, msg)`.
pub fn mempolicy(p: &LinuxMemoryPolicy, online: &[u32]) -> std::result::Result<(i32, [u64; NODE_WORDS]), (&'static str, String)> {
    let nodes = parse_list(p.nodes().as_deref().unwrap_or(""), MAX_NODE).map_err(|m| ("linux.memoryPolicy.nodes", m))?;
    let (mode, name) = match p.mode() {
        MemoryPolicyModeType::MpolDefault => (0, "MPOL_DEFAULT"),
        MemoryPolicyModeType::MpolPreferred => (1, "MPOL_PREFERRED"),
        MemoryPolicyModeType::MpolBind => (2, "MPOL_BIND"),
        MemoryPolicyModeType::MpolInterleave => (3, "MPOL_INTERLEAVE"),
        MemoryPolicyModeType::MpolLocal => (4, "MPOL_LOCAL"),
        MemoryPolicyModeType::MpolPreferredMany => (5, "MPOL_PREFERRED_MANY"),
        MemoryPolicyModeType::MpolWeightedInterleave => (6, "MPOL_WEIGHTED_INTERLEAVE"),
    };
    match mode {
        0 | 4 if !nodes.is_empty() => return Err(("linux.memoryPolicy.nodes", format!("{name} takes no nodes"))),
        2 | 3 | 5 | 6 if nodes.is_empty() => return Err(("linux.memoryPolicy.nodes", format!("{name} needs at least one node"))),
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => MPOL_F_NUMA_BALANCING,
            MemoryPolicyFlagType::MpolFRelativeNodes => MPOL_F_RELATIVE_NODES,
            MemoryPolicyFlagType::MpolFStaticNodes => MPOL_F_STATIC_NODES,
        };
    }
    if flags & MPOL_F_STATIC_NODES != 0 && flags & MPOL_F_RELATIVE_NODES != 0 {
        return Err((
            "linux.memoryPolicy.flags",
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other".into(),
        ));
    }
    if flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES) != 0 && nodes.is_empty() {
        return Err(("linux.memoryPolicy.flags", "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES need nodes".into()));
    }
    if flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES) == 0 {
        if let Some(n) = nodes.iter().find(|n| !online.contains(n)) {
            return Err((
                "linux.memoryPolicy.nodes",
                format!("node {n} does not exist on this host (online nodes: {})", format_list(online)),
            ));
        }
    }
    let mut mask = [0u64; NODE_WORDS];
    for n in nodes {
        mask[n as usize / 64] |= 1 << (n % 64);
    }
    Ok((mode | flags, mask))
}

/// "0-2,5" for [0, 1, 2, 5].
fn format_list(items: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let start = items[i];
        while i + 1 < items.len() && items[i + 1] == items[i] + 1 {
            i += 1;
        }
        out.push(if items[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", items[i])
        });
        i += 1;
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(",")
    }
}

/// The host's online NUMA nodes (a kernel without NUMA has node 0 only).
fn online_nodes() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/node/online")
        .ok()
        .and_then(|t| parse_list(&t, MAX_NODE).ok())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| vec![0])
}

fn cpu_set(field: &str, list: &str) -> Result<CpuSet> {
    let cpus = parse_list(list, MAX_CPU).map_err(|m| Error::field(field, m))?;
    let mut set = CpuSet::new();
    for c in cpus {
        set.set(c as usize).map_err(|e| Error::field(field, format!("cpu {c}: {e}")))?;
    }
    Ok(set)
}

/// Checks `process.ioPriority`, `process.scheduler` and `process.execCPUAffinity`.
pub fn validate_process(p: &Process) -> Result<()> {
    if let Some(io) = p.io_priority() {
        ioprio_value(io.class(), io.priority()).map_err(|m| Error::field("process.ioPriority.priority", m))?;
    }
    if let Some(s) = p.scheduler() {
        sched_attr(s).map_err(|(f, m)| Error::field(f, m))?;
    }
    if let Some(a) = p.exec_cpu_affinity() {
        if let Some(l) = a.initial() {
            cpu_set("process.execCPUAffinity.initial", l)?;
        }
        if let Some(l) = a.cpu_affinity_final() {
            cpu_set("process.execCPUAffinity.final", l)?;
        }
    }
    Ok(())
}

/// Checks `linux.memoryPolicy` (its nodes against the host's).
pub fn validate_linux(linux: &Linux) -> Result<()> {
    if let Some(p) = linux.memory_policy() {
        mempolicy(p, &online_nodes()).map_err(|(f, m)| Error::field(f, m))?;
    }
    Ok(())
}

/// `process.scheduler` then `process.ioPriority` (runc's order), on the calling process.
pub fn apply_process(p: &Process) -> Result<()> {
    if let Some(s) = p.scheduler() {
        let attr = sched_attr(s).map_err(|(f, m)| Error::field(f, m))?;
        sys_sched_setattr(&attr).map_err(|e| Error::field("process.scheduler", format!("sched_setattr({}): {e}", policy_name(*s.policy()))))?;
    }
    if let Some(io) = p.io_priority() {
        let v = ioprio_value(io.class(), io.priority()).map_err(|m| Error::field("process.ioPriority.priority", m))?;
        sys_ioprio_set(v).map_err(|e| Error::field("process.ioPriority", format!("ioprio_set({}, {}): {e}", io.class(), io.priority())))?;
    }
    Ok(())
}

/// `process.execCPUAffinity.initial`, in an exec'd process before it joins the cgroup.
pub fn apply_initial_affinity(p: &Process) -> Result<()> {
    match p.exec_cpu_affinity().as_ref().and_then(|a| a.initial().as_deref()) {
        Some(list) => set_affinity("process.execCPUAffinity.initial", list),
        None => Ok(()),
    }
}

/// The affinity a process runs its program with: `process.execCPUAffinity.final` for an
/// exec'd process that has it; otherwise (the init, as runc) every CPU, which the kernel
/// narrows to the cpuset of the process's cgroup, so the runtime's own affinity is not passed
/// on. A reset the kernel refuses is left alone.
pub fn apply_final_affinity(p: &Process, exec: bool) -> Result<()> {
    match p.exec_cpu_affinity().as_ref().and_then(|a| a.cpu_affinity_final().as_deref()).filter(|_| exec) {
        Some(list) => set_affinity("process.execCPUAffinity.final", list),
        None => {
            let mut all = CpuSet::new();
            for c in 0..CpuSet::count() {
                let _ = all.set(c);
            }
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &all);
            Ok(())
        }
    }
}

fn set_affinity(field: &str, list: &str) -> Result<()> {
    let set = cpu_set(field, list)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(|e| Error::field(field, format!("sched_setaffinity({list}): {e}")))
}

/// `linux.memoryPolicy`, on the calling process (inherited by its children and kept across
/// exec).
pub fn apply_memory_policy(linux: Option<&Linux>) -> Result<()> {
    let Some(p) = linux.and_then(|l| l.memory_policy().as_ref()) else {
        return Ok(());
    };
    let (mode, mask) = mempolicy(p, &online_nodes()).map_err(|(f, m)| Error::field(f, m))?;
    let nodes = p.nodes().as_deref().unwrap_or("");
    sys_set_mempolicy(mode, &mask).map_err(|e| Error::field("linux.memoryPolicy", format!("set_mempolicy({}, nodes {nodes:?}): {e}", p.mode())))
}

fn last_err(r: libc::c_long) -> std::result::Result<(), nix::errno::Errno> {
    if r < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(())
    }
}

fn sys_sched_setattr(attr: &SchedAttr) -> std::result::Result<(), nix::errno::Errno> {
    // SAFETY: sched_setattr reads `attr.size` bytes from a live, initialized struct sched_attr
    // of exactly that size; pid 0 is the calling thread.
    last_err(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) })
}

fn sys_ioprio_set(value: i32) -> std::result::Result<(), nix::errno::Errno> {
    // SAFETY: ioprio_set takes three integers; who 0 with IOPRIO_WHO_PROCESS is the caller.
    last_err(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) })
}

fn sys_set_mempolicy(mode: i32, mask: &[u64; NODE_WORDS]) -> std::result::Result<(), nix::errno::Errno> {
    // SAFETY: the kernel reads `maxnode - 1` bits (it drops one) from `mask`, a live array of
    // exactly that many bits.
    last_err(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, mask.as_ptr(), (NODE_WORDS * 64 + 1) as libc::c_ulong) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(json: serde_json::Value) -> std::result::Result<SchedAttr, (&'static str, String)> {
        sched_attr(&serde_json::from_value(json).expect("scheduler json"))
    }

    fn mpol(json: serde_json::Value, online: &[u32]) -> std::result::Result<(i32, [u64; NODE_WORDS]), (&'static str, String)> {
        mempolicy(&serde_json::from_value(json).expect("memoryPolicy json"), online)
    }

    #[test]
    fn cpu_and_node_lists() {
        assert_eq!(parse_list("0-1,3", MAX_CPU), Ok(vec![0, 1, 3]));
        assert_eq!(parse_list("3,1-2,2", MAX_CPU), Ok(vec![1, 2, 3]));
        assert_eq!(parse_list(" 7 ", MAX_CPU), Ok(vec![7]));
        assert_eq!(parse_list("", MAX_CPU), Ok(vec![]));
        for bad in ["x", "1-", "-1", "1,,2", "0-l1", "1 2", "+1"] {
            assert!(parse_list(bad, MAX_CPU).is_err(), "{bad:?}");
        }
        assert!(parse_list("3-1", MAX_CPU).unwrap_err().contains("backwards"));
        assert!(parse_list("1024", MAX_CPU).unwrap_err().contains("out of range"));
        assert!(parse_list("99999999999", MAX_CPU).unwrap_err().contains("out of range"));
        assert_eq!(format_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn io_priorities() {
        assert_eq!(ioprio_value(IOPriorityClass::IoprioClassBe, 4), Ok((2 << 13) | 4));
        assert_eq!(ioprio_value(IOPriorityClass::IoprioClassRt, 0), Ok(1 << 13));
        assert_eq!(ioprio_value(IOPriorityClass::IoprioClassIdle, 7), Ok((3 << 13) | 7));
        assert!(ioprio_value(IOPriorityClass::IoprioClassBe, 8).is_err());
        assert!(ioprio_value(IOPriorityClass::IoprioClassBe, -1).is_err());
        let mut p = Process::default();
        p.set_io_priority(Some(
            serde_json::from_value(serde_json::json!({"class": "IOPRIO_CLASS_BE", "priority": 9})).expect("json"),
        ));
        let e = validate_process(&p).unwrap_err().to_string();
        assert!(e.contains("process.ioPriority.priority") && e.contains("9"), "{e}");
        let bad: std::result::Result<Process, _> =
            serde_json::from_value(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "ioPriority": {"class": "IOPRIO_CLASS_NOPE"}}));
        assert!(bad.unwrap_err().to_string().contains("unknown variant"));
    }

    #[test]
    fn schedulers() {
        let a = sched(serde_json::json!({"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_RESET_ON_FORK"]})).expect("batch");
        assert_eq!((a.size, a.policy, a.nice, a.flags, a.priority), (56, 3, 5, 1, 0));
        let a = sched(serde_json::json!({"policy": "SCHED_FIFO", "priority": 10})).expect("fifo");
        assert_eq!((a.policy, a.priority), (1, 10));
        let a = sched(serde_json::json!({"policy": "SCHED_DEADLINE", "runtime": 10000, "deadline": 20000, "period": 30000})).expect("deadline");
        assert_eq!((a.policy, a.runtime, a.deadline, a.period), (6, 10000, 20000, 30000));
        let field = |j| sched(j).unwrap_err().0;
        assert_eq!(field(serde_json::json!({"policy": "SCHED_OTHER", "nice": 20})), "process.scheduler.nice");
        assert_eq!(field(serde_json::json!({"policy": "SCHED_OTHER", "priority": 3})), "process.scheduler.priority");
        assert_eq!(field(serde_json::json!({"policy": "SCHED_RR"})), "process.scheduler.priority");
        assert_eq!(
            field(serde_json::json!({"policy": "SCHED_FIFO", "priority": 100})),
            "process.scheduler.priority"
        );
        assert_eq!(field(serde_json::json!({"policy": "SCHED_ISO"})), "process.scheduler.policy");
        assert_eq!(field(serde_json::json!({"policy": "SCHED_OTHER", "runtime": 5})), "process.scheduler");
        assert_eq!(
            field(serde_json::json!({"policy": "SCHED_DEADLINE", "runtime": 30000, "deadline": 20000})),
            "process.scheduler"
        );
        let bad: std::result::Result<Scheduler, _> = serde_json::from_value(serde_json::json!({"policy": "SCHED_NOPE"}));
        assert!(bad.unwrap_err().to_string().contains("unknown variant"));
    }

    #[test]
    fn memory_policies() {
        let (mode, mask) = mpol(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0"}), &[0]).expect("bind");
        assert_eq!((mode, mask[0]), (2, 1));
        let (mode, mask) = mpol(
            serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "0-1,65", "flags": ["MPOL_F_STATIC_NODES"]}),
            &[0],
        )
        .expect("static");
        assert_eq!((mode, mask[0], mask[1]), (3 | MPOL_F_STATIC_NODES, 3, 2));
        assert_eq!(mpol(serde_json::json!({"mode": "MPOL_DEFAULT"}), &[0]).expect("default").0, 0);
        assert_eq!(mpol(serde_json::json!({"mode": "MPOL_PREFERRED"}), &[0]).expect("preferred local").0, 1);
        assert_eq!(mpol(serde_json::json!({"mode": "MPOL_LOCAL"}), &[0]).expect("local").0, 4);
        let err = |j, online: &[u32]| mpol(j, online).unwrap_err();
        let (f, m) = err(serde_json::json!({"mode": "MPOL_BIND", "nodes": "1"}), &[0]);
        assert_eq!(f, "linux.memoryPolicy.nodes");
        assert!(m.contains("node 1 does not exist") && m.contains("online nodes: 0"), "{m}");
        assert_eq!(err(serde_json::json!({"mode": "MPOL_BIND"}), &[0]).0, "linux.memoryPolicy.nodes");
        assert_eq!(
            err(serde_json::json!({"mode": "MPOL_DEFAULT", "nodes": "0"}), &[0]).0,
            "linux.memoryPolicy.nodes"
        );
        assert_eq!(
            err(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-x"}), &[0]).0,
            "linux.memoryPolicy.nodes"
        );
        let both = serde_json::json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]});
        assert_eq!(err(both, &[0]).0, "linux.memoryPolicy.flags");
        let bad: std::result::Result<LinuxMemoryPolicy, _> = serde_json::from_value(serde_json::json!({"mode": "MPOL_NOPE"}));
        assert!(bad.unwrap_err().to_string().contains("unknown variant"));
    }

    #[test]
    fn affinity_lists_are_checked_with_their_field() {
        let p: Process =
            serde_json::from_value(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "execCPUAffinity": {"initial": "0", "final": "2-1"}}))
                .expect("json");
        let e = validate_process(&p).unwrap_err().to_string();
        assert!(e.contains("process.execCPUAffinity.final") && e.contains("backwards"), "{e}");
        let bad: std::result::Result<Process, _> =
            serde_json::from_value(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "execCPUAffinity": {"initial": "0-"}}));
        assert!(bad.is_err());
    }
}
