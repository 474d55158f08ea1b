//! Our own nftables table, `inet skiff` (no iptables): masquerade for networks, forward verdicts
//! (`--internal` networks cut off), DNAT for published ports, added and removed per container.
//!
//! ```text
//! table inet skiff
//!   prerouting  nat/dstnat:   fib daddr type local jump ports
//!   output      nat/-100:     fib daddr type local jump ports      (the host itself, 127.0.0.1)
//!   ports       per container: meta nfproto ipv4 [ip daddr H] tcp dport P dnat ip to C:CP
//!                              comment "skiff:<container id>"
//!   postrouting nat/srcnat:   ip saddr 127.0.0.0/8 oifname != "lo" ct status dnat masquerade
//!                             jump masq
//!   masq        per network:  ip saddr S oifname != "BR" masquerade  (not for --internal)
//!                             oifname "BR" ip saddr S ct status dnat masquerade  (hairpin)
//!   forward     filter:       jump isolate; ct state established,related accept
//!   isolate     per network:  iifname "BR" accept; oifname "BR" accept
//!                             (--internal: iifname "BR" oifname != "BR" drop, and back)
//! ```
//!
//! Localhost to a container: the `output` chain DNATs 127.0.0.1:P to the container; a packet
//! with a loopback source may only leave through the bridge if the bridge has
//! `net.ipv4.conf.BR.route_localnet=1` (set by [`Nft::add_network`]), and the `postrouting`
//! masquerade rewrites the 127.0.0.1 source to the bridge's address so that the container's reply
//! comes back. IPv6 `::1` has no such switch: `[::1]:P` does not reach a container.
//!
//! Every change is one atomic transaction. The table and the networks' rules (rare) are written
//! by `nft -f -` (~6-18 ms a call); a container's DNAT rules (on its start and stop path) go
//! straight over nftables netlink (`nl.rs`: ~0.15 ms to publish, no `nft` process).

mod exec;
mod nl;
mod rules;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::{Error, Result};

/// Our table, family and name.
pub const TABLE: &str = "inet skiff";
const TABLE_NAME: &str = "skiff";
/// The chain of the containers' DNAT rules.
const PORTS: &str = "ports";

/// A published port's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// `tcp` or `udp`, as Docker and nft write them.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One `-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]` mapping, resolved to the container's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Published {
    /// `None` (or an unspecified address): every local address of the host.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    pub proto: Proto,
}

/// The handle on our ruleset: where `nft` is.
#[derive(Debug, Clone)]
pub struct Nft {
    program: PathBuf,
}

impl Default for Nft {
    fn default() -> Self {
        Nft::new()
    }
}

impl Nft {
    /// `nft` from `$SKIFF_NFT`, `/usr/sbin/nft` or `$PATH`.
    pub fn new() -> Nft {
        Nft { program: exec::find_nft() }
    }

    /// A given `nft` binary.
    pub fn with_program(program: impl Into<PathBuf>) -> Nft {
        Nft { program: program.into() }
    }

    /// The `nft` binary used.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Creates the table and its base chains if missing and (re)writes their fixed rules. One
    /// transaction: idempotent, and safe against concurrent callers (the kernel serializes
    /// transactions, and each one leaves the same state).
    /// When the fixed rules are all there already (the usual case), this only reads them
    /// (~0.3 ms over netlink) and changes nothing; otherwise one `nft` call (~18 ms).
    pub fn ensure_base(&self) -> Result<()> {
        if self.base_present()? {
            return Ok(());
        }
        exec::apply(&self.program, &rules::base())
    }

    /// Whether the base chains hold their fixed rules (counted; their jumps imply the regular
    /// chains exist, since the kernel refuses a jump to a missing chain).
    fn base_present(&self) -> Result<bool> {
        for (chain, rules) in rules::BASE_RULES {
            if nl::list(TABLE_NAME, chain)?.len() != *rules {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Adds (or replaces) a network's rules in one transaction; sets its bridge's
    /// `route_localnet` and the namespace's forwarding (see `set_sysctls`). The bridge must
    /// exist. `internal`: its containers reach only each other. Calls for one bridge must not
    /// race each other (the engine holds its network lock).
    pub fn add_network(&self, bridge: &str, subnets: &[IpNet], internal: bool) -> Result<()> {
        rules::check_name("bridge name", bridge, 15)?;
        set_sysctls(bridge, subnets)?;
        let mut script = rules::base();
        script.push_str(&self.delete_tagged(&[rules::NET_TAG, bridge].concat(), &["masq", "isolate"])?);
        script.push_str(&rules::network(bridge, subnets, internal));
        exec::apply(&self.program, &script)
    }

    /// Whether a network's rules are in place (read over netlink, ~0.2 ms): the engine's check
    /// before it calls [`Nft::add_network`] (an `nft` run) on a container's start.
    pub fn network_present(&self, bridge: &str) -> Result<bool> {
        let tag = [rules::NET_TAG, bridge].concat();
        if !self.base_present()? {
            return Ok(false);
        }
        Ok(nl::list(TABLE_NAME, "isolate")?.iter().any(|r| r.comment.as_deref() == Some(tag.as_str())))
    }

    /// Removes a network's rules (none: nothing to do).
    pub fn remove_network(&self, bridge: &str) -> Result<()> {
        rules::check_name("bridge name", bridge, 15)?;
        let script = self.delete_tagged(&[rules::NET_TAG, bridge].concat(), &["masq", "isolate"])?;
        if script.is_empty() {
            return Ok(());
        }
        exec::apply(&self.program, &script)
    }

    /// Adds a container's DNAT rules, all or none, tagged with its id, after [`Nft::ensure_base`]
    /// (so a fresh host works too). Networks' rules are [`Nft::add_network`]'s: the engine
    /// calls it whenever it (re)creates a network's bridge.
    pub fn publish(&self, container_id: &str, ports: &[Published]) -> Result<()> {
        rules::check_name("container id", container_id, 100)?;
        if ports.is_empty() {
            return Ok(());
        }
        for p in ports {
            rules::check_mapping(p)?;
        }
        self.ensure_base()?;
        nl::add_dnat(TABLE_NAME, PORTS, &[rules::PORT_TAG, container_id].concat(), ports)
    }

    /// Removes exactly the container's DNAT rules (by handle, found by their comment). Costs
    /// ~10 ms on this kernel whatever the tool: an nftables transaction that deletes anything
    /// waits for an RCU grace period. None left: nothing to do.
    pub fn unpublish(&self, container_id: &str) -> Result<()> {
        rules::check_name("container id", container_id, 100)?;
        let tag = [rules::PORT_TAG, container_id].concat();
        let mut tries = 0;
        loop {
            let handles: Vec<u64> = nl::list(TABLE_NAME, PORTS)?
                .into_iter()
                .filter(|r| r.comment.as_deref() == Some(&tag))
                .map(|r| r.handle)
                .collect();
            if handles.is_empty() {
                return Ok(());
            }
            match nl::delete(TABLE_NAME, PORTS, &handles) {
                // A rule gone in between (a concurrent unpublish): list again.
                Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) && tries < 3 => tries += 1,
                other => return other,
            }
        }
    }

    /// Every published port in the ruleset, with its container's id (for `skiff port` and to
    /// find what a crashed container left).
    pub fn list_published(&self) -> Result<Vec<(String, Published)>> {
        let mut out = Vec::new();
        for r in nl::list(TABLE_NAME, PORTS)? {
            let id = r.comment.as_deref().and_then(|c| c.strip_prefix(rules::PORT_TAG));
            if let (Some(id), Some(p)) = (id, r.port) {
                out.push((id.to_string(), p));
            }
        }
        Ok(out)
    }

    /// Drops our whole table (tests, cleanup). No table: nothing to do.
    pub fn remove_all(&self) -> Result<()> {
        // `add` then `delete` in one transaction: no error when the table is absent.
        exec::apply(&self.program, &format!("add table {TABLE}\ndelete table {TABLE}\n"))
    }

    /// Fails with Docker's "port is already allocated" when `host_port` is published by a
    /// container of ours (on the same or a wildcard address) or a socket of the host holds it.
    pub fn check_port(&self, host_ip: Option<IpAddr>, host_port: u16, proto: Proto) -> Result<()> {
        let host_ip = host_ip.filter(|ip| !ip.is_unspecified());
        let ours = self
            .list_published()?
            .into_iter()
            .any(|(_, p)| p.proto == proto && p.host_port == host_port && (host_ip.is_none() || p.host_ip.is_none() || p.host_ip == host_ip));
        if ours || !port_is_free(host_ip, host_port, proto) {
            let shown = host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            return Err(Error::Conflict(format!(
                "Bind for {} failed: port is already allocated",
                SocketAddr::new(shown, host_port)
            )));
        }
        Ok(())
    }

    /// Script deleting, by handle, the rules of `chains` whose comment is exactly `tag`.
    fn delete_tagged(&self, tag: &str, chains: &[&str]) -> Result<String> {
        let mut script = String::new();
        for chain in chains {
            let Some(items) = exec::list(&self.program, &["chain", "inet", "skiff", chain])? else {
                continue;
            };
            for r in exec::rules(items) {
                if r.comment.as_deref() == Some(tag) {
                    script.push_str(&format!("delete rule {TABLE} {chain} handle {}\n", r.handle));
                }
            }
        }
        Ok(script)
    }
}

/// Whether a socket of the host could take `port` (binds one and lets it go). `None`: any address.
pub fn port_is_free(host_ip: Option<IpAddr>, port: u16, proto: Proto) -> bool {
    let addr = SocketAddr::new(host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr).is_ok(),
        Proto::Udp => UdpSocket::bind(addr).is_ok(),
    }
}

/// A host port free right now, chosen by the kernel (for `-p CONTAINER_PORT` and `-P`).
pub fn free_port(host_ip: Option<IpAddr>, proto: Proto) -> Result<u16> {
    let addr = SocketAddr::new(host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), 0);
    let local = match proto {
        Proto::Tcp => TcpListener::bind(addr).and_then(|s| s.local_addr()),
        Proto::Udp => UdpSocket::bind(addr).and_then(|s| s.local_addr()),
    };
    local
        .map(|a| a.port())
        .map_err(|e| Error::Conflict(format!("no free {} port on {}: {e}", proto.as_str(), addr.ip())))
}

/// What a bridge network needs of the kernel, in the calling thread's network namespace:
/// `net.ipv4.conf.<bridge>.route_localnet=1`, which lets DNATed packets with a 127.0.0.1 source
/// leave through the bridge (the masquerade then gives them the bridge's address), and
/// forwarding (`net.ipv4.ip_forward`, `net.ipv6.conf.all.forwarding` for an IPv6 subnet) as
/// Docker and netavark set it: containers' outbound traffic and hairpin DNAT are forwarded.
fn set_sysctls(bridge: &str, subnets: &[IpNet]) -> Result<()> {
    let mut paths = vec![
        format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "/proc/sys/net/ipv4/ip_forward".to_string(),
    ];
    if subnets.iter().any(|n| matches!(n, IpNet::V6(_))) {
        paths.push("/proc/sys/net/ipv6/conf/all/forwarding".to_string());
    }
    for path in paths.iter().map(PathBuf::from) {
        let on = std::fs::read(&path).is_ok_and(|v| v.trim_ascii() == b"1");
        if !on {
            std::fs::write(&path, b"1").map_err(|e| Error::io("write", &path, e))?;
        }
    }
    Ok(())
}
