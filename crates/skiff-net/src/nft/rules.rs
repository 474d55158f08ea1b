//! The text of our rules (nft's own syntax, fed to `nft -f -`) and the reading back of published
//! ports from a JSON listing.

use std::fmt::Write;

use ipnet::IpNet;

use super::{Published, TABLE};
use crate::{Error, Result};

/// Comment prefix of a container's DNAT rules: `skiff:<container id>` (see `nl.rs`).
pub(crate) const PORT_TAG: &str = "skiff:";
/// Comment prefix of a network's rules: `skiff-net:<bridge>`.
pub(crate) const NET_TAG: &str = "skiff-net:";

/// The base chains and how many fixed rules [`base`] puts in each.
pub(crate) const BASE_RULES: &[(&str, usize)] = &[("prerouting", 1), ("output", 1), ("postrouting", 2), ("forward", 2)];

/// The table, its base chains and their fixed rules. Idempotent and atomic: `add` of what exists
/// is a no-op, the base chains are flushed and refilled in the same transaction, and the chains
/// holding per network / per container rules (`ports`, `masq`, `isolate`) are never flushed.
/// Concurrent runs are serialized by the kernel's nftables commit lock and end in the same state.
pub(crate) fn base() -> String {
    let t = TABLE;
    format!(
        "add table {t}
add chain {t} prerouting {{ type nat hook prerouting priority -100; policy accept; }}
add chain {t} output {{ type nat hook output priority -100; policy accept; }}
add chain {t} postrouting {{ type nat hook postrouting priority 100; policy accept; }}
add chain {t} forward {{ type filter hook forward priority 0; policy accept; }}
add chain {t} ports
add chain {t} masq
add chain {t} isolate
flush chain {t} prerouting
flush chain {t} output
flush chain {t} postrouting
flush chain {t} forward
add rule {t} prerouting fib daddr type local jump ports
add rule {t} output fib daddr type local jump ports
add rule {t} postrouting ip saddr 127.0.0.0/8 oifname != \"lo\" ct status dnat masquerade
add rule {t} postrouting jump masq
add rule {t} forward jump isolate
add rule {t} forward ct state established,related accept
"
    )
}

/// A network's rules: masquerade of its subnets' traffic leaving through another interface
/// (not for `--internal`), masquerade of DNATed traffic coming back into the bridge (a container
/// reaching a published port of its own network through the gateway), and the forward verdicts.
pub(crate) fn network(bridge: &str, subnets: &[IpNet], internal: bool) -> String {
    let (t, c) = (TABLE, format!("comment \"{NET_TAG}{bridge}\""));
    let mut s = String::new();
    for net in subnets {
        let fam = match net {
            IpNet::V4(_) => "ip",
            IpNet::V6(_) => "ip6",
        };
        let net = net.trunc();
        if !internal {
            let _ = writeln!(s, "add rule {t} masq {fam} saddr {net} oifname != \"{bridge}\" masquerade {c}");
        }
        let _ = writeln!(s, "add rule {t} masq oifname \"{bridge}\" {fam} saddr {net} ct status dnat masquerade {c}");
    }
    if internal {
        let _ = writeln!(s, "add rule {t} isolate iifname \"{bridge}\" oifname != \"{bridge}\" drop {c}");
        let _ = writeln!(s, "add rule {t} isolate oifname \"{bridge}\" iifname != \"{bridge}\" drop {c}");
    } else {
        let _ = writeln!(s, "add rule {t} isolate iifname \"{bridge}\" accept {c}");
        let _ = writeln!(s, "add rule {t} isolate oifname \"{bridge}\" accept {c}");
    }
    s
}

/// Checks a port mapping: ports not 0, host and container addresses of one family.
pub(crate) fn check_mapping(p: &Published) -> Result<()> {
    if let Some(h) = p.host_ip.filter(|ip| !ip.is_unspecified()) {
        if h.is_ipv4() != p.container_ip.is_ipv4() {
            return Err(Error::Invalid(format!(
                "cannot publish {h}:{} to {} (address families differ)",
                p.host_port, p.container_ip
            )));
        }
    }
    if p.host_port == 0 || p.container_port == 0 {
        return Err(Error::Invalid(format!("invalid port mapping {}:{}", p.host_port, p.container_port)));
    }
    Ok(())
}

/// Checks a name that goes into a rule (a bridge, a container id): nothing that could end the
/// quoted string or the comment.
pub(crate) fn check_name(what: &str, name: &str, max: usize) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= max && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("invalid {what} {name:?} for a firewall rule")))
    }
}
