//! `linux.netDevices` (runtime-spec 1.3): existing host network devices moved into the
//! container's network namespace, renamed as asked, and set up.
//!
//! As runc: the devices are moved (one netlink request each, move and rename together) by the
//! runtime once the init's network namespace exists and before the container is set up, so
//! hooks and the program see them, with their permanent global addresses (which the kernel
//! drops in a move) and up. On delete nothing moves back: the namespace's owner decides
//! what happens to them (a namespace the container made dies with it, and with it a virtual
//! device; the kernel returns a physical one to the host). A create that fails while moving
//! them moves back those it had moved.
//!
//! [`validate`] refuses at create, before anything is made: a container without a network
//! namespace of its own, invalid or clashing names, and devices the host does not have.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::{LinuxNamespaceType, LinuxNetDevice, Spec};
use skiff_net::netlink::{check_ifname, Netlink};

use crate::error::{Error, Result};

fn devices(spec: &Spec) -> Option<&HashMap<String, LinuxNetDevice>> {
    spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()).filter(|d| !d.is_empty())
}

/// The devices in a stable order (host name, name in the container).
fn plan(devs: &HashMap<String, LinuxNetDevice>) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = devs
        .iter()
        .map(|(host, d)| (host.as_str(), d.name().as_deref().filter(|n| !n.is_empty()).unwrap_or(host.as_str())))
        .collect();
    out.sort_unstable();
    out
}

/// Checks `linux.netDevices`; `host_has` says whether the host has a device of that name.
pub fn check(spec: &Spec, host_has: &mut dyn FnMut(&str) -> Result<bool>) -> Result<()> {
    let Some(devs) = devices(spec) else { return Ok(()) };
    let netns = crate::spec::namespaces(spec).iter().find(|n| n.typ() == LinuxNamespaceType::Network);
    let Some(netns) = netns else {
        return Err(Error::field(
            "linux.netDevices",
            "moving network devices needs a network namespace of the container's own (add {\"type\": \"network\"} to linux.namespaces)",
        ));
    };
    if let Some(path) = netns.path() {
        let same = match (std::fs::metadata(path), std::fs::metadata("/proc/self/ns/net")) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            return Err(Error::field(
                "linux.netDevices",
                format!("the network namespace {} is the host's: devices cannot be moved into it", path.display()),
            ));
        }
    }
    let plan = plan(devs);
    for (host, name) in &plan {
        check_ifname(host).map_err(|e| Error::field(format!("linux.netDevices.{host}"), e.to_string()))?;
        check_ifname(name).map_err(|e| Error::field(format!("linux.netDevices.{host}.name"), e.to_string()))?;
        if let Some((other, _)) = plan.iter().find(|(o, n)| n == name && o != host) {
            return Err(Error::field(
                "linux.netDevices",
                format!("{other} and {host} would both be named {name} in the container"),
            ));
        }
    }
    for (host, _) in &plan {
        if !host_has(host)? {
            return Err(Error::field(
                format!("linux.netDevices.{host}"),
                format!("the host has no network device {host}"),
            ));
        }
    }
    Ok(())
}

/// [`check`] against the host's devices.
pub fn validate(spec: &Spec) -> Result<()> {
    if devices(spec).is_none() {
        return Ok(());
    }
    let mut nl = None;
    check(spec, &mut |name| {
        let nl = match &mut nl {
            Some(nl) => nl,
            None => nl.insert(Netlink::open().map_err(|e| Error::field("linux.netDevices", e.to_string()))?),
        };
        Ok(nl
            .link(name)
            .map_err(|e| Error::field(format!("linux.netDevices.{name}"), e.to_string()))?
            .is_some())
    })
}

/// Moves the devices into the network namespace of `init_pid`, renamed, and sets them up. On
/// failure those already moved are moved back under their host names.
pub fn attach(spec: &Spec, init_pid: i32) -> Result<()> {
    let Some(devs) = devices(spec) else { return Ok(()) };
    let ns_path = format!("/proc/{init_pid}/ns/net");
    let netns: OwnedFd = std::fs::File::open(&ns_path)
        .map_err(|e| Error::io("open network namespace", &ns_path, e))?
        .into();
    let mut host = Netlink::open().map_err(|e| Error::field("linux.netDevices", e.to_string()))?;
    let mut inside = Netlink::open_in(netns.as_fd()).map_err(|e| Error::field("linux.netDevices", e.to_string()))?;
    let mut moved: Vec<(&str, &str)> = Vec::new();
    for (host_name, name) in plan(devs) {
        let r = move_one(&mut host, &mut inside, &netns, host_name, name);
        if let Err(e) = r {
            move_back(&mut inside, &moved);
            return Err(e);
        }
        moved.push((host_name, name));
    }
    Ok(())
}

fn move_one(host: &mut Netlink, inside: &mut Netlink, netns: &OwnedFd, host_name: &str, name: &str) -> Result<()> {
    let field = || format!("linux.netDevices.{host_name}");
    let index = host
        .link_index(host_name)
        .map_err(|e| Error::field(field(), e.to_string()))?
        .ok_or_else(|| Error::field(field(), format!("the host has no network device {host_name}")))?;
    // Down first, as runc: nothing on the host uses it while it changes.
    host.link_down(host_name).map_err(|e| Error::field(field(), e.to_string()))?;
    // The kernel drops its addresses in the move; runc carries the permanent global ones over.
    let addrs = host.global_addresses(index).map_err(|e| Error::field(field(), e.to_string()))?;
    host.move_link_to_netns(index, name, netns.as_fd())
        .map_err(|e| Error::field(field(), e.to_string()))?;
    let inner = |e: skiff_net::Error| Error::field(field(), format!("in the container: {e}"));
    let index = inside
        .link_index(name)
        .map_err(inner)?
        .ok_or_else(|| Error::field(field(), format!("{name} is not in the container after the move")))?;
    for (addr, prefix) in addrs {
        inside.add_address(index, addr, prefix).map_err(inner)?;
    }
    inside.link_up(name).map_err(inner)
}

/// Best effort: moves `moved` (host name, container name) back to the runtime's namespace.
fn move_back(inside: &mut Netlink, moved: &[(&str, &str)]) {
    let Ok(own) = std::fs::File::open("/proc/self/ns/net") else { return };
    for (host_name, name) in moved {
        let r = inside.link_index(name).and_then(|i| match i {
            Some(i) => {
                let _ = inside.link_down(name);
                inside.move_link_to_netns(i, host_name, own.as_fd())
            }
            None => Ok(()),
        });
        if let Err(e) = r {
            tracing::warn!("linux.netDevices: moving {name} back to the host as {host_name}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).expect("spec json")
    }

    fn err(s: &Spec, host: &[&str]) -> String {
        check(s, &mut |n| Ok(host.contains(&n))).unwrap_err().to_string()
    }

    #[test]
    fn needs_a_network_namespace_of_its_own() {
        let s = spec(serde_json::json!({"ociVersion": "1.3.0", "linux": {"netDevices": {"dummy0": {}}}}));
        assert!(err(&s, &["dummy0"]).contains("needs a network namespace"));
        let s = spec(
            serde_json::json!({"ociVersion": "1.3.0", "linux": {"namespaces": [{"type": "network", "path": "/proc/self/ns/net"}], "netDevices": {"dummy0": {}}}}),
        );
        assert!(err(&s, &["dummy0"]).contains("is the host's"));
    }

    #[test]
    fn names_are_checked_and_devices_must_exist() {
        let ns = serde_json::json!([{"type": "network"}]);
        let s = spec(serde_json::json!({"ociVersion": "1.3.0", "linux": {"namespaces": ns, "netDevices": {"dummy0": {"name": "ctr0"}}}}));
        assert!(check(&s, &mut |n| Ok(n == "dummy0")).is_ok());
        let e = err(&s, &[]);
        assert!(e.contains("linux.netDevices.dummy0") && e.contains("no network device dummy0"), "{e}");
        let s = spec(serde_json::json!({"ociVersion": "1.3.0", "linux": {"namespaces": ns, "netDevices": {"dummy0": {"name": "a/b"}}}}));
        assert!(err(&s, &["dummy0"]).contains("linux.netDevices.dummy0.name"));
        let s = spec(serde_json::json!({"ociVersion": "1.3.0", "linux": {"namespaces": ns, "netDevices": {"averyveryverylongname": {}}}}));
        assert!(err(&s, &[]).contains("longer than 15"));
        let s = spec(serde_json::json!({"ociVersion": "1.3.0", "linux": {"namespaces": ns, "netDevices": {"a0": {"name": "x"}, "b0": {"name": "x"}}}}));
        assert!(err(&s, &["a0", "b0"]).contains("both be named x"));
        let s = spec(serde_json::json!({"ociVersion": "1.3.0", "linux": {"namespaces": ns, "netDevices": {"a0": {}}}}));
        assert_eq!(plan(devices(&s).expect("devices")), vec![("a0", "a0")]);
    }
}
