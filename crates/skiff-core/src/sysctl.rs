//! Sysctls: only the ones that live in a namespace the container owns are allowed, as runc does;
//! anything else would change the host and is refused before the container is created.

use std::path::PathBuf;

use oci_spec::runtime::LinuxNamespaceType as Ns;

use crate::error::{Error, Result};

const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Which namespace a sysctl key belongs to, if any.
pub fn namespace_of(key: &str) -> Option<Ns> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(Ns::Ipc)
    } else if key.starts_with("net.") {
        Some(Ns::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(Ns::Uts)
    } else {
        None
    }
}

/// Refuses a key that is not namespaced, or whose namespace the container does not have.
pub fn check(key: &str, namespaces: &[Ns]) -> Result<()> {
    let field = format!("linux.sysctl.{key}");
    if key.is_empty() || key.contains("..") || key.starts_with('/') {
        return Err(Error::field(field, "malformed key"));
    }
    match namespace_of(&key.replace('/', ".")) {
        None => Err(Error::field(field, "not a namespaced sysctl; it would change the host, so it is refused")),
        Some(ns) if !namespaces.contains(&ns) => Err(Error::field(
            field,
            format!("needs a {} namespace of the container's own", format!("{ns:?}").to_lowercase()),
        )),
        Some(_) => Ok(()),
    }
}

/// The /proc/sys file for a key (`net.ipv4.ip_forward` -> `/proc/sys/net/ipv4/ip_forward`).
pub fn proc_path(key: &str) -> PathBuf {
    if key.contains('/') {
        PathBuf::from("/proc/sys").join(key)
    } else {
        PathBuf::from("/proc/sys").join(key.replace('.', "/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_keys_need_their_namespace() {
        assert!(check("kernel.shmmax", &[Ns::Ipc]).is_ok());
        assert!(check("fs.mqueue.msg_max", &[Ns::Ipc]).is_ok());
        assert!(check("net.ipv4.ip_forward", &[Ns::Network]).is_ok());
        assert!(check("net.ipv4.ip_forward", &[Ns::Ipc]).is_err());
        let e = check("kernel.panic", &[Ns::Ipc, Ns::Network]).unwrap_err().to_string();
        assert!(e.contains("linux.sysctl.kernel.panic") && e.contains("not a namespaced"), "{e}");
        assert!(check("vm.swappiness", &[]).is_err());
    }

    #[test]
    fn proc_paths() {
        assert_eq!(proc_path("net.ipv4.ip_forward"), PathBuf::from("/proc/sys/net/ipv4/ip_forward"));
    }
}
