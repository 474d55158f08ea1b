//! The exec record: what `exec` needs of a container, written next to `state.json` at create
//! time (`<root>/<id>/exec.rec`), so that an `exec` reads a small file instead of the whole
//! state, whose config (mounts, resources, hooks, a seccomp profile of hundreds of rules) it
//! would otherwise deserialise, and never compiles or even hashes the seccomp profile.
//!
//! What is in it: the init's pid and start time, the cgroup directories and the container id
//! (the live status, as [`crate::state::Store::status`] derives it), the namespace kinds of the
//! config (joined as the init's), the config's `process` (the base of `exec ID COMMAND`; spec
//! 1.2's `ioPriority`, `scheduler` and `execCPUAffinity` included, kept as oci-spec serialises
//! them), `linux.personality`, and the seccomp filter as the BPF program the container's init
//! installed, with its seccomp(2) load flags (worked out on this kernel at create time; the
//! container cannot outlive the kernel).
//!
//! The file is not JSON: `exec`'s peak RSS is mostly the pages of our own code it touches, and
//! serde's deserialisers for oci-spec's types are spread over the binary (about 230 KB of RSS
//! more than this). It is a list of `KEY LEN:VALUE\n` entries (LEN the value's length in
//! bytes, so a value may hold anything), the rarely set process fields as JSON values.
//!
//! Anything more that `exec` comes to take from the config goes into [`ExecRecord`] and
//! [`ExecRecord::of`] (both the record written at create and the one a fallback builds in
//! memory come from there, so the two cannot disagree), its encoding into [`encode`] and
//! [`decode`], with [`FORMAT`] bumped. A process field this file does not know (a newer
//! oci-spec) means no record is written.
//!
//! A container without a usable record (made by an older skiff, a record of another format, a
//! notifying seccomp filter, whose agent wants the whole config and state) is exec'd from its
//! full state, as before: [`super::Runtime::load_for_exec`].

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxNamespaceType, LinuxPersonality, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Process, User,
};

use crate::error::{Error, Result};
use crate::namespaces::ORDER;
use crate::seccomp::Filter;
use crate::state::{Record, Status, Store, EXEC_FIFO, STATE_FILE};

/// The record's file in the container's state dir.
pub const EXEC_RECORD: &str = "exec.rec";

/// The record's layout version (its first entry); a record of another one is ignored (the full
/// state is used).
pub const FORMAT: &str = "skiff exec record 1";

/// What `exec` takes from a container (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecRecord {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (see [`Record::pid_start`]).
    pub pid_start: u64,
    pub cgroup_paths: Vec<PathBuf>,
    /// The kinds of `linux.namespaces` (new or joined): exec joins the init's of these kinds.
    pub namespaces: Vec<LinuxNamespaceType>,
    /// The config's `process`.
    pub process: Option<Process>,
    /// `linux.personality`.
    pub personality: Option<LinuxPersonality>,
    /// The seccomp filter of `linux.seccomp` (None without one).
    pub seccomp: Option<SeccompBpf>,
}

/// A seccomp filter as generated BPF.
#[derive(Debug, Clone, PartialEq)]
pub struct SeccompBpf {
    /// The instructions in memory order (libseccomp's export format).
    pub bpf: Vec<u8>,
    /// seccomp(2) flags.
    pub load_flags: u32,
    /// Syscall names of the profile this libseccomp does not know (warned about on use).
    pub unknown: Vec<String>,
}

impl ExecRecord {
    /// The record of a container's state, without its seccomp filter.
    pub fn of(rec: &Record) -> ExecRecord {
        let spec = &rec.spec;
        ExecRecord {
            id: rec.id.clone(),
            pid: rec.pid,
            pid_start: rec.pid_start,
            cgroup_paths: rec.cgroup_paths.clone(),
            namespaces: crate::spec::namespaces(spec).iter().map(|n| n.typ()).collect(),
            process: spec.process().clone(),
            personality: crate::personality::of(spec).cloned(),
            seccomp: None,
        }
    }

    /// The live status, as [`Store::status`] derives it from a [`Record`].
    pub fn status(&self, store: &Store) -> Status {
        let alive = self.pid > 0 && matches!(crate::state::proc_stat(self.pid), Some((s, t)) if s != 'Z' && s != 'X' && t == self.pid_start);
        if !alive {
            return Status::Stopped;
        }
        if crate::cgroups::is_frozen(&self.cgroup_paths) {
            return Status::Paused;
        }
        if store.dir(&self.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// The seccomp filter kept in the record.
    pub(crate) fn filter(&self) -> Result<Option<Filter>> {
        let Some(s) = &self.seccomp else { return Ok(None) };
        let prog = parse_bpf(&s.bpf).ok_or_else(|| Error::Other(format!("exec record of {}: bad seccomp BPF", self.id)))?;
        if !s.unknown.is_empty() {
            tracing::warn!("seccomp: unknown syscalls skipped: {}", s.unknown.join(", "));
        }
        Ok(Some(Filter::from_bpf(prog, false, s.load_flags, s.unknown.clone())))
    }
}

/// BPF instructions from their bytes in memory order.
fn parse_bpf(bpf: &[u8]) -> Option<Vec<libc::sock_filter>> {
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    if bpf.is_empty() || !bpf.len().is_multiple_of(INSN) || bpf.len() / INSN > usize::from(u16::MAX) {
        return None;
    }
    let insn = |c: &[u8]| libc::sock_filter {
        code: u16::from_ne_bytes([c[0], c[1]]),
        jt: c[2],
        jf: c[3],
        k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
    };
    Some(bpf.chunks_exact(INSN).map(insn).collect())
}

/// Writes the exec record of a container just created, with `filter`, the seccomp filter its
/// init got. Best effort: without a record `exec` reads the full state, so a failure is only
/// logged. No record for a notifying filter (see the module docs).
pub(crate) fn write(store: &Store, rec: &Record, filter: Option<&Filter>) {
    if let Err(e) = try_write(store, rec, filter) {
        tracing::debug!("exec record of {}: {e}", rec.id);
    }
}

fn try_write(store: &Store, rec: &Record, filter: Option<&Filter>) -> Result<()> {
    let mut r = ExecRecord::of(rec);
    if let Some(f) = filter {
        let Some((prog, load_flags)) = f.bpf_parts().filter(|_| !f.notify) else {
            return Ok(());
        };
        let mut bpf = Vec::with_capacity(prog.len() * 8);
        for i in prog {
            bpf.extend_from_slice(&i.code.to_ne_bytes());
            bpf.extend_from_slice(&[i.jt, i.jf]);
            bpf.extend_from_slice(&i.k.to_ne_bytes());
        }
        r.seccomp = Some(SeccompBpf {
            bpf,
            load_flags,
            unknown: f.unknown.clone(),
        });
    }
    let Some(data) = encode(&r)? else {
        return Ok(());
    };
    let dir = store.dir(&rec.id);
    let tmp = dir.join(".exec.rec.tmp");
    let path = dir.join(EXEC_RECORD);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&data))
        .and_then(|()| std::fs::rename(&tmp, &path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write exec record", &path, e)
    })
}

/// The exec record of container `id`, or None when there is no usable one (then the full state
/// is to be read: that also reports a container that does not exist).
pub(crate) fn read(store: &Store, id: &str) -> Option<ExecRecord> {
    let dir = store.dir(id);
    let data = std::fs::read(dir.join(EXEC_RECORD)).ok()?;
    // A state dir being deleted loses its files in any order: no state, no record.
    if !dir.join(STATE_FILE).exists() {
        return None;
    }
    let r = decode(&data);
    if r.is_none() {
        tracing::debug!("exec record of {id}: not usable; reading the state");
    }
    r.filter(|r| r.id == id)
}

/// The process fields [`encode`] writes as their own entries, and those it writes as JSON.
const PROCESS_FIELDS: &[&str] = &[
    "terminal",
    "user",
    "args",
    "env",
    "cwd",
    "capabilities",
    "rlimits",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
];
const PROCESS_JSON: &[&str] = &["consoleSize", "commandLine", "ioPriority", "scheduler", "execCPUAffinity"];
const USER_FIELDS: &[&str] = &["uid", "gid", "umask", "additionalGids"];

fn put(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    out.push(b' ');
    out.extend_from_slice(value.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn put_list<'a>(out: &mut Vec<u8>, key: &str, items: Option<impl ExactSizeIterator<Item = &'a [u8]>>) {
    let Some(items) = items else { return };
    put(out, &format!("{key}#"), items.len().to_string().as_bytes());
    for i in items {
        put(out, key, i);
    }
}

fn caps_text(set: &Option<Capabilities>) -> Option<String> {
    set.as_ref().map(|s| {
        let mut names: Vec<String> = s.iter().map(|c| c.to_string()).collect();
        names.sort();
        names.join(" ")
    })
}

/// The record's bytes; None when the process has a field this encoding does not know.
fn encode(r: &ExecRecord) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(4096);
    put(&mut out, "format", FORMAT.as_bytes());
    put(&mut out, "id", r.id.as_bytes());
    put(&mut out, "pid", r.pid.to_string().as_bytes());
    put(&mut out, "pid_start", r.pid_start.to_string().as_bytes());
    for c in &r.cgroup_paths {
        put(&mut out, "cgroup", c.as_os_str().as_bytes());
    }
    for n in &r.namespaces {
        let Some(i) = ORDER.iter().position(|k| k == n) else { return Ok(None) };
        put(&mut out, "ns", i.to_string().as_bytes());
    }
    if let Some(p) = &r.personality {
        put(
            &mut out,
            "personality",
            &serde_json::to_vec(p).map_err(|e| Error::Other(format!("encode: {e}")))?,
        );
    }
    if let Some(s) = &r.seccomp {
        put(&mut out, "seccomp.flags", s.load_flags.to_string().as_bytes());
        put(&mut out, "seccomp.bpf", &s.bpf);
        for u in &s.unknown {
            put(&mut out, "seccomp.unknown", u.as_bytes());
        }
    }
    let Some(p) = &r.process else { return Ok(Some(out)) };
    // Every field oci-spec writes must be one we keep.
    let v = serde_json::to_value(p).map_err(|e| Error::Other(format!("encode: {e}")))?;
    let known = |obj: Option<&serde_json::Map<String, serde_json::Value>>, names: &[&[&str]]| {
        obj.is_some_and(|o| o.keys().all(|k| names.iter().any(|n| n.contains(&k.as_str()))))
    };
    if !known(v.as_object(), &[PROCESS_FIELDS, PROCESS_JSON]) || !known(v.get("user").and_then(|u| u.as_object()), &[USER_FIELDS]) {
        return Ok(None);
    }
    put(&mut out, "process", b"");
    if let Some(t) = p.terminal() {
        put(&mut out, "p.terminal", if t { b"1" } else { b"0" });
    }
    let u = p.user();
    put(&mut out, "p.uid", u.uid().to_string().as_bytes());
    put(&mut out, "p.gid", u.gid().to_string().as_bytes());
    if let Some(m) = u.umask() {
        put(&mut out, "p.umask", m.to_string().as_bytes());
    }
    let gids: Option<Vec<String>> = u.additional_gids().as_ref().map(|g| g.iter().map(|g| g.to_string()).collect());
    put_list(&mut out, "p.gids", gids.as_ref().map(|g| g.iter().map(|s| s.as_bytes())));
    put_list(&mut out, "p.args", p.args().as_ref().map(|a| a.iter().map(|s| s.as_bytes())));
    put_list(&mut out, "p.env", p.env().as_ref().map(|a| a.iter().map(|s| s.as_bytes())));
    put(&mut out, "p.cwd", p.cwd().as_os_str().as_bytes());
    if let Some(c) = p.capabilities() {
        put(&mut out, "p.caps", b"");
        for (key, set) in [
            ("p.caps.bounding", c.bounding()),
            ("p.caps.effective", c.effective()),
            ("p.caps.inheritable", c.inheritable()),
            ("p.caps.permitted", c.permitted()),
            ("p.caps.ambient", c.ambient()),
        ] {
            if let Some(text) = caps_text(set) {
                put(&mut out, key, text.as_bytes());
            }
        }
    }
    let rlimits: Option<Vec<String>> = p
        .rlimits()
        .as_ref()
        .map(|l| l.iter().map(|l| format!("{} {} {}", l.typ(), l.hard(), l.soft())).collect());
    put_list(&mut out, "p.rlimits", rlimits.as_ref().map(|l| l.iter().map(|s| s.as_bytes())));
    if let Some(n) = p.no_new_privileges() {
        put(&mut out, "p.nnp", if n { b"1" } else { b"0" });
    }
    if let Some(a) = p.apparmor_profile() {
        put(&mut out, "p.apparmor", a.as_bytes());
    }
    if let Some(s) = p.selinux_label() {
        put(&mut out, "p.selinux", s.as_bytes());
    }
    if let Some(o) = p.oom_score_adj() {
        put(&mut out, "p.oom", o.to_string().as_bytes());
    }
    for name in PROCESS_JSON {
        if let Some(value) = v.get(*name) {
            put(
                &mut out,
                &format!("p.json.{name}"),
                &serde_json::to_vec(value).map_err(|e| Error::Other(format!("encode: {e}")))?,
            );
        }
    }
    Ok(Some(out))
}

/// The entries of a record, in order.
struct Entries<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = Option<(&'a str, &'a [u8])>;

    /// Some(None) on a malformed entry.
    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let entry = (|| {
            let sp = self.data.iter().position(|b| *b == b' ')?;
            let key = std::str::from_utf8(&self.data[..sp]).ok()?;
            let rest = &self.data[sp + 1..];
            let colon = rest.iter().position(|b| *b == b':')?;
            let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
            let rest = &rest[colon + 1..];
            if rest.len() <= len || rest[len] != b'\n' {
                return None;
            }
            self.data = &rest[len + 1..];
            Some((key, &rest[..len]))
        })();
        if entry.is_none() {
            self.data = &[];
        }
        Some(entry)
    }
}

fn text(v: &[u8]) -> Option<String> {
    std::str::from_utf8(v).ok().map(str::to_string)
}

fn num<T: std::str::FromStr>(v: &[u8]) -> Option<T> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn flag(v: &[u8]) -> Option<bool> {
    match v {
        b"1" => Some(true),
        b"0" => Some(false),
        _ => None,
    }
}

fn caps(v: &[u8]) -> Option<Capabilities> {
    std::str::from_utf8(v)
        .ok()?
        .split(' ')
        .filter(|n| !n.is_empty())
        .map(|n| n.parse::<Capability>().ok())
        .collect()
}

fn rlimit(v: &[u8]) -> Option<PosixRlimit> {
    let mut it = std::str::from_utf8(v).ok()?.split(' ');
    let typ: PosixRlimitType = it.next()?.parse().ok()?;
    let (hard, soft): (u64, u64) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?);
    PosixRlimitBuilder::default().typ(typ).hard(hard).soft(soft).build().ok()
}

/// A record from its bytes; None when they are not one of [`FORMAT`].
fn decode(data: &[u8]) -> Option<ExecRecord> {
    let mut it = Entries { data };
    if it.next()?? != ("format", FORMAT.as_bytes()) {
        return None;
    }
    let mut r = ExecRecord {
        id: String::new(),
        pid: 0,
        pid_start: 0,
        cgroup_paths: Vec::new(),
        namespaces: Vec::new(),
        process: None,
        personality: None,
        seccomp: None,
    };
    let mut p: Option<Process> = None;
    let mut user = User::default();
    let mut gids: Option<Vec<u32>> = None;
    let mut args: Option<Vec<String>> = None;
    let mut env: Option<Vec<String>> = None;
    let mut rlimits: Option<Vec<PosixRlimit>> = None;
    let mut caps_all: Option<LinuxCapabilities> = None;
    for entry in it {
        let (key, v) = entry?;
        match key {
            "id" => r.id = text(v)?,
            "pid" => r.pid = num(v)?,
            "pid_start" => r.pid_start = num(v)?,
            "cgroup" => r.cgroup_paths.push(PathBuf::from(std::ffi::OsStr::from_bytes(v))),
            "ns" => r.namespaces.push(*ORDER.get(num::<usize>(v)?)?),
            "personality" => r.personality = Some(serde_json::from_slice(v).ok()?),
            "seccomp.flags" => {
                r.seccomp
                    .get_or_insert_with(|| SeccompBpf {
                        bpf: Vec::new(),
                        load_flags: 0,
                        unknown: Vec::new(),
                    })
                    .load_flags = num(v)?
            }
            "seccomp.bpf" => r.seccomp.as_mut()?.bpf = v.to_vec(),
            "seccomp.unknown" => r.seccomp.as_mut()?.unknown.push(text(v)?),
            "process" => {
                let mut np = Process::default();
                // Process::default() is not empty: every field is set below or here.
                np.set_terminal(None);
                np.set_console_size(None);
                np.set_command_line(None);
                np.set_capabilities(None);
                np.set_rlimits(None);
                np.set_no_new_privileges(None);
                np.set_apparmor_profile(None);
                np.set_selinux_label(None);
                np.set_oom_score_adj(None);
                np.set_io_priority(None);
                np.set_scheduler(None);
                np.set_exec_cpu_affinity(None);
                p = Some(np);
            }
            "p.terminal" => {
                p.as_mut()?.set_terminal(Some(flag(v)?));
            }
            "p.uid" => {
                user.set_uid(num(v)?);
            }
            "p.gid" => {
                user.set_gid(num(v)?);
            }
            "p.umask" => {
                user.set_umask(Some(num(v)?));
            }
            "p.gids#" => gids = Some(Vec::with_capacity(num(v)?)),
            "p.gids" => gids.as_mut()?.push(num(v)?),
            "p.args#" => args = Some(Vec::with_capacity(num(v)?)),
            "p.args" => args.as_mut()?.push(text(v)?),
            "p.env#" => env = Some(Vec::with_capacity(num(v)?)),
            "p.env" => env.as_mut()?.push(text(v)?),
            "p.cwd" => {
                p.as_mut()?.set_cwd(PathBuf::from(std::ffi::OsStr::from_bytes(v)));
            }
            "p.caps" => {
                let mut c = LinuxCapabilities::default();
                c.set_bounding(None);
                c.set_effective(None);
                c.set_inheritable(None);
                c.set_permitted(None);
                c.set_ambient(None);
                caps_all = Some(c);
            }
            "p.caps.bounding" => {
                caps_all.as_mut()?.set_bounding(Some(caps(v)?));
            }
            "p.caps.effective" => {
                caps_all.as_mut()?.set_effective(Some(caps(v)?));
            }
            "p.caps.inheritable" => {
                caps_all.as_mut()?.set_inheritable(Some(caps(v)?));
            }
            "p.caps.permitted" => {
                caps_all.as_mut()?.set_permitted(Some(caps(v)?));
            }
            "p.caps.ambient" => {
                caps_all.as_mut()?.set_ambient(Some(caps(v)?));
            }
            "p.rlimits#" => rlimits = Some(Vec::with_capacity(num(v)?)),
            "p.rlimits" => rlimits.as_mut()?.push(rlimit(v)?),
            "p.nnp" => {
                p.as_mut()?.set_no_new_privileges(Some(flag(v)?));
            }
            "p.apparmor" => {
                p.as_mut()?.set_apparmor_profile(Some(text(v)?));
            }
            "p.selinux" => {
                p.as_mut()?.set_selinux_label(Some(text(v)?));
            }
            "p.oom" => {
                p.as_mut()?.set_oom_score_adj(Some(num(v)?));
            }
            "p.json.consoleSize" => {
                p.as_mut()?.set_console_size(Some(serde_json::from_slice(v).ok()?));
            }
            "p.json.commandLine" => {
                p.as_mut()?.set_command_line(Some(serde_json::from_slice(v).ok()?));
            }
            "p.json.ioPriority" => {
                p.as_mut()?.set_io_priority(Some(serde_json::from_slice(v).ok()?));
            }
            "p.json.scheduler" => {
                p.as_mut()?.set_scheduler(Some(serde_json::from_slice(v).ok()?));
            }
            "p.json.execCPUAffinity" => {
                p.as_mut()?.set_exec_cpu_affinity(Some(serde_json::from_slice(v).ok()?));
            }
            _ => return None,
        }
    }
    if let Some(p) = p.as_mut() {
        user.set_additional_gids(gids);
        p.set_user(user);
        p.set_args(args);
        p.set_env(env);
        p.set_capabilities(caps_all);
        p.set_rlimits(rlimits);
    }
    r.process = p;
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(spec: oci_spec::runtime::Spec) -> Record {
        Record {
            id: "c1".into(),
            pid: 42,
            pid_start: 7,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: String::new(),
            owner: String::new(),
            cgroup_paths: vec!["/sys/fs/cgroup/c 1\n".into(), "/sys/fs/cgroup/memory/c1".into()],
            cgroup_created: Vec::new(),
            spec,
        }
    }

    fn process(json: serde_json::Value) -> Process {
        serde_json::from_value(json).unwrap()
    }

    fn round_trip(p: Option<Process>) {
        let mut r = ExecRecord::of(&record(crate::template::default_spec(false)));
        r.process = p;
        r.personality = Some(serde_json::from_value(serde_json::json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]})).unwrap());
        r.seccomp = Some(SeccompBpf {
            bpf: vec![1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 255, 12, 13, 14, 15, 16],
            load_flags: 8,
            unknown: vec!["a b".into(), "c".into()],
        });
        let data = encode(&r).unwrap().expect("encodable");
        assert_eq!(decode(&data).as_ref(), Some(&r), "{}", String::from_utf8_lossy(&data));
    }

    #[test]
    fn every_process_field_round_trips() {
        round_trip(crate::template::default_spec(false).process().clone());
        round_trip(crate::template::default_spec(true).process().clone());
        round_trip(None);
        // Nothing but what a process must have.
        round_trip(Some(process(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}}))));
        // Everything, spec 1.2's ioPriority, scheduler and execCPUAffinity included, and values
        // with newlines, spaces and colons.
        round_trip(Some(process(serde_json::json!({
            "terminal": true,
            "consoleSize": {"height": 24, "width": 80},
            "user": {"uid": 1000, "gid": 1001, "umask": 18, "additionalGids": [5, 6]},
            "args": ["sh", "-c", "echo 'a\nb': c", ""],
            "commandLine": "x y",
            "env": ["A=1\n2", "B= :"],
            "cwd": "/work dir",
            "capabilities": {"bounding": ["CAP_KILL", "CAP_SYS_ADMIN"], "effective": [], "permitted": ["CAP_NET_RAW"], "ambient": ["CAP_CHOWN"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}, {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}],
            "noNewPrivileges": false,
            "apparmorProfile": "prof",
            "oomScoreAdj": -17,
            "selinuxLabel": "system_u:system_r:container_t:s0",
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 3},
            "scheduler": {"policy": "SCHED_BATCH", "nice": 5},
            "execCPUAffinity": {"initial": "0", "final": "0-1"},
        }))));
        round_trip(Some(process(
            serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": [], "env": [], "rlimits": [], "user": {"uid": 0, "gid": 0, "additionalGids": []}}),
        )));
    }

    #[test]
    fn a_process_field_the_encoding_does_not_know_gets_no_record() {
        let mut r = ExecRecord::of(&record(crate::template::default_spec(false)));
        r.process.as_mut().unwrap().user_mut().set_username(Some("bob".into()));
        assert!(encode(&r).unwrap().is_none());
    }

    #[test]
    fn written_record_reads_back_with_filter() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let rec = record(crate::template::default_spec(false));
        store.create_dir("c1").unwrap();
        let filter = crate::seccomp::cache::for_spec(&rec.spec, tmp.path()).unwrap().unwrap();
        // No state file yet: no record either.
        write(&store, &rec, Some(&filter));
        assert!(read(&store, "c1").is_none());
        store.save(&rec).unwrap();
        let r = read(&store, "c1").expect("record");
        let mut want = ExecRecord::of(&rec);
        want.seccomp = r.seccomp.clone();
        assert_eq!(r, want);
        assert!(r.namespaces.contains(&LinuxNamespaceType::Mount));
        let f = r.filter().unwrap().expect("filter");
        let (a, fa) = filter.bpf_parts().unwrap();
        let (b, fb) = f.bpf_parts().unwrap();
        assert_eq!(fa, fb);
        assert!(a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k)));
        // Another format, another id, an unknown entry or a torn file: the state is read instead.
        let path = store.dir("c1").join(EXEC_RECORD);
        let data = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&data).into_owned();
        assert!(text.starts_with("format 19:skiff exec record 1\n"));
        for bad in [
            text.replacen("record 1", "record 9", 1).into_bytes(),
            text.replacen("id 2:c1", "id 2:c2", 1).into_bytes(),
            [&data[..], b"bogus 0:\n"].concat(),
            data[..data.len() / 2].to_vec(),
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(read(&store, "c1").is_none());
        }
        std::fs::write(&path, &data).unwrap();
        assert!(read(&store, "c1").is_some());
    }

    #[test]
    fn a_notifying_filter_gets_no_record() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let mut spec = crate::template::default_spec(false);
        let profile =
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_NOTIFY"}]});
        spec.linux_mut().as_mut().unwrap().set_seccomp(Some(serde_json::from_value(profile).unwrap()));
        let rec = record(spec);
        store.create_dir("c1").unwrap();
        store.save(&rec).unwrap();
        let filter = crate::seccomp::cache::for_spec(&rec.spec, tmp.path()).unwrap().unwrap();
        write(&store, &rec, Some(&filter));
        assert!(!store.dir("c1").join(EXEC_RECORD).exists());
        write(&store, &rec, None);
        assert!(read(&store, "c1").is_some_and(|r| r.seccomp.is_none()));
    }
}
