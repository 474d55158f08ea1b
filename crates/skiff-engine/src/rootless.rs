//! Rootless engine: a per-store "pause" process holds a user namespace (the caller as root,
//! their `/etc/subuid`/`/etc/subgid` range as ids 1..N, written by the setuid helpers
//! `newuidmap`/`newgidmap`) and a mount namespace owned by it. Every `skiff` command of a
//! non-root user joins both before it touches the store, as podman's rootless mode does: there
//! it may unpack layers with their owners, mount overlays (`userxattr`), and create containers,
//! each in a user namespace of its own nested inside. The mounts are never seen on the host.
//!
//! The pause process is `<store>/pause.pid` ("PID STARTTIME"); it lives until killed, and a
//! later command makes a new one if it is gone.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;

use nix::sched::CloneFlags;
use nix::unistd::{fork, ForkResult};

use crate::error::{Error, Result};
use crate::lock;

/// An identity mapping of every id of the current user namespace, for a container's nested
/// one: one extent per extent of ours (`file` is `uid_map` or `gid_map`), because the kernel
/// requires each extent of a child's map to lie within one extent of its parent's.
pub fn identity_maps(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default();
    let maps: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|n| n.parse::<u64>().ok());
            let (inner, _outer, count) = (f.next()??, f.next()??, f.next()??);
            Some(serde_json::json!({"containerID": inner, "hostID": inner, "size": count}))
        })
        .collect();
    serde_json::Value::Array(maps)
}

fn pause_alive(root: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(root.join("pause.pid")).ok()?;
    let mut it = text.split_whitespace();
    let pid: i32 = it.next()?.parse().ok()?;
    let start: u64 = it.next()?.parse().ok()?;
    crate::Engine::alive(pid, start).then_some(pid)
}

fn join(pid: i32) -> Result<()> {
    for ns in ["user", "mnt"] {
        let path = format!("/proc/{pid}/ns/{ns}");
        let f = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        nix::sched::setns(&f, CloneFlags::empty()).map_err(|e| Error::Other(format!("rootless: setns {path}: {e}")))?;
    }
    Ok(())
}

/// Joins the store's rootless namespaces, making them first if needed. A no-op when this
/// process is already in a user namespace (a monitor's cleanup runs inside it).
pub fn enter(root: &Path) -> Result<()> {
    if skiff_core::rootless::in_user_namespace() {
        return Ok(());
    }
    std::fs::create_dir_all(root).map_err(|e| Error::io("create", root, e))?;
    let _l = lock::exclusive(&root.join("pause.lock"))?;
    let pid = match pause_alive(root) {
        Some(pid) => pid,
        None => spawn_pause(root)?,
    };
    join(pid)
}

/// Forks the pause process into new user and mount namespaces and writes its maps.
fn spawn_pause(root: &Path) -> Result<i32> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| Error::Other(format!("pipe: {e}")))?;
    let (go_r, go_w) = nix::unistd::pipe().map_err(|e| Error::Other(format!("pipe: {e}")))?;
    // SAFETY: the engine is single-threaded; the child runs only the code below.
    match unsafe { fork() }.map_err(|e| Error::Other(format!("fork: {e}")))? {
        ForkResult::Child => {
            drop(ready_r);
            drop(go_w);
            // Nothing of the caller's may stay open in a process that lives on: above all not
            // the pause.lock we were forked holding (flock locks belong to the open file).
            let keep = [ready_w.as_raw_fd(), go_r.as_raw_fd()];
            for fd in 3..1024 {
                if !keep.contains(&fd) {
                    // SAFETY: closing inherited fds in the forked child, which owns no others.
                    unsafe { libc::close(fd) };
                }
            }
            let ok = nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).is_ok();
            let _ = nix::unistd::write(&ready_w, if ok { b"1" } else { b"0" });
            let mut b = [0u8; 1];
            let go = std::fs::File::from(go_r).read(&mut b).is_ok_and(|n| n == 1 && b[0] == b'1');
            if !ok || !go {
                // SAFETY: leaving the forked child.
                unsafe { libc::_exit(1) };
            }
            let _ = nix::unistd::setsid();
            if let Ok(dn) = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
                // SAFETY: our own stdio onto /dev/null.
                unsafe {
                    libc::dup2(dn.as_raw_fd(), 0);
                    libc::dup2(dn.as_raw_fd(), 1);
                    libc::dup2(dn.as_raw_fd(), 2);
                }
            }
            let _ = nix::sys::prctl::set_name(c"skiff-pause");
            loop {
                nix::unistd::pause();
            }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(go_r);
            let pid = child.as_raw();
            let mut b = [0u8; 1];
            let unshared = std::fs::File::from(ready_r).read(&mut b).is_ok_and(|n| n == 1 && b[0] == b'1');
            let mapped = if unshared {
                write_maps(pid)
            } else {
                Err(Error::Other(
                    "rootless: cannot create a user namespace (unshare CLONE_NEWUSER failed; are unprivileged user namespaces enabled?)".into(),
                ))
            };
            let mut go = std::fs::File::from(go_w);
            if let Err(e) = mapped {
                let _ = go.write_all(b"0");
                let _ = nix::sys::wait::waitpid(child, None);
                return Err(e);
            }
            let _ = go.write_all(b"1");
            let start = skiff_core::state::proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
            let pf = root.join("pause.pid");
            std::fs::write(&pf, format!("{pid} {start}\n")).map_err(|e| Error::io("write", &pf, e))?;
            Ok(pid)
        }
    }
}

/// `0 → our id`, `1.. → our delegated range` through newuidmap/newgidmap; without a range,
/// only our own id (written directly).
fn write_maps(pid: i32) -> Result<()> {
    let caller = skiff_core::rootless::Caller::current();
    for (helper, own, ranges, file) in [
        (&caller.newuidmap, caller.uid, &caller.subuid, "uid_map"),
        (&caller.newgidmap, caller.gid, &caller.subgid, "gid_map"),
    ] {
        match (ranges.first(), helper) {
            (Some(r), Some(h)) => {
                let args = [
                    pid.to_string(),
                    "0".into(),
                    own.to_string(),
                    "1".into(),
                    "1".into(),
                    r.start.to_string(),
                    r.count.to_string(),
                ];
                let o = Command::new(h)
                    .args(&args)
                    .output()
                    .map_err(|e| Error::Other(format!("rootless: {}: {e}", h.display())))?;
                if !o.status.success() {
                    return Err(Error::Other(format!(
                        "rootless: {} {}: {}",
                        h.display(),
                        args.join(" "),
                        String::from_utf8_lossy(&o.stderr).trim()
                    )));
                }
            }
            _ => {
                if file == "gid_map" {
                    let sg = format!("/proc/{pid}/setgroups");
                    std::fs::write(&sg, "deny").map_err(|e| Error::io("write", &sg, e))?;
                }
                let p = format!("/proc/{pid}/{file}");
                std::fs::write(&p, format!("0 {own} 1\n")).map_err(|e| Error::io("write", &p, e))?;
            }
        }
    }
    Ok(())
}
