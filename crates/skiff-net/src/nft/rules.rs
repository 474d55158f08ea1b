//! The text of our rules (nft's own syntax, fed to `nft -f -`) and the reading back of published
//! ports from a JSON listing.

use std::fmt::Write;
use std::net::IpAddr;

use ipnet::IpNet;

use super::{Proto, Published, TABLE};
use crate::{Error, Result};

/// Comment prefix of a container's DNAT rules: `skiff:<container id>`.
pub(crate) const PORT_TAG: &str = "skiff:";
/// Comment prefix of a network's rules: `skiff-net:<bridge>`.
pub(crate) const NET_TAG: &str = "skiff-net:";

/// The table and its chains, created if missing, nothing else changed: what a container's rules
/// need in order to be added. Cheap (no rule touched, no kernel change when all exist).
pub(crate) fn chains() -> String {
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
"
    )
}

/// The table, its base chains and their fixed rules. Idempotent and atomic: `add` of what exists
/// is a no-op, the base chains are flushed and refilled in the same transaction, and the chains
/// holding per network / per container rules (`ports`, `masq`, `isolate`) are never flushed.
/// Concurrent runs are serialized by the kernel's nftables commit lock and end in the same state.
pub(crate) fn base() -> String {
    let t = TABLE;
    chains()
        + &format!(
            "flush chain {t} prerouting
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

/// One DNAT rule of a container, in the `ports` chain (reached for local destinations only).
pub(crate) fn port(container_id: &str, p: &Published) -> Result<String> {
    let (nfproto, dnat) = match p.container_ip {
        IpAddr::V4(a) => ("ipv4", format!("dnat ip to {a}:{}", p.container_port)),
        IpAddr::V6(a) => ("ipv6", format!("dnat ip6 to [{a}]:{}", p.container_port)),
    };
    let daddr = match p.host_ip.filter(|ip| !ip.is_unspecified()) {
        None => String::new(),
        Some(IpAddr::V4(a)) if p.container_ip.is_ipv4() => format!("ip daddr {a} "),
        Some(IpAddr::V6(a)) if p.container_ip.is_ipv6() => format!("ip6 daddr {a} "),
        Some(h) => {
            return Err(Error::Invalid(format!(
                "cannot publish {h}:{} to {} (address families differ)",
                p.host_port, p.container_ip
            )))
        }
    };
    if p.host_port == 0 || p.container_port == 0 {
        return Err(Error::Invalid(format!("invalid port mapping {}:{}", p.host_port, p.container_port)));
    }
    let proto = p.proto.as_str();
    Ok(format!(
        "add rule {TABLE} ports meta nfproto {nfproto} {daddr}{proto} dport {} {dnat} comment \"{PORT_TAG}{container_id}\"\n",
        p.host_port
    ))
}

/// A published port read back from a rule's JSON expressions; `None` for anything else.
pub(crate) fn parse_port(expr: &[serde_json::Value]) -> Option<Published> {
    let (mut host_ip, mut port, mut dnat) = (None, None, None);
    for e in expr {
        if let Some(m) = e.get("match") {
            let Some(payload) = m.get("left").and_then(|l| l.get("payload")) else {
                continue;
            };
            let proto = payload.get("protocol").and_then(serde_json::Value::as_str);
            let field = payload.get("field").and_then(serde_json::Value::as_str);
            match (proto, field) {
                (Some("ip" | "ip6"), Some("daddr")) => host_ip = m.get("right")?.as_str()?.parse::<IpAddr>().ok(),
                (Some("tcp"), Some("dport")) => port = Some((Proto::Tcp, u16::try_from(m.get("right")?.as_u64()?).ok()?)),
                (Some("udp"), Some("dport")) => port = Some((Proto::Udp, u16::try_from(m.get("right")?.as_u64()?).ok()?)),
                _ => {}
            }
        } else if let Some(d) = e.get("dnat") {
            let addr = d.get("addr")?.as_str()?.parse::<IpAddr>().ok()?;
            let p = u16::try_from(d.get("port")?.as_u64()?).ok()?;
            dnat = Some((addr, p));
        }
    }
    let ((proto, host_port), (container_ip, container_port)) = (port?, dnat?);
    Some(Published {
        host_ip,
        host_port,
        container_ip,
        container_port,
        proto,
    })
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
