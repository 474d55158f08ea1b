//! Containers on networks (Docker's model over `skiff-net`):
//!
//! - `--network none`: a network namespace with only `lo`; `host`: the host's;
//!   `container:OTHER`: OTHER's (which must run), with its hosts/resolv.conf/hostname;
//! - `bridge` (the default) or a user network NAME: at start the engine gives the container an
//!   address (IPAM, per network, locked), then between the runtime's create and start — the
//!   container's namespace exists, its program has not run — a veth pair with `eth0` inside,
//!   its default route, the published ports' DNAT rules and, on user networks, its names in the
//!   network's DNS server. When the container stops (or is removed, even after its monitor was
//!   killed) [`Engine::net_teardown`] undoes all of it.
//!
//! Rootless containers get their network from pasta or slirp4netns instead (`rootless_net`).

pub mod etc;
mod publish;
mod rootless;
mod setup;
mod teardown;

pub use setup::Plan;

use std::collections::BTreeMap;
use std::net::IpAddr;

use skiff_net::config::{Network, Networks};

use crate::error::{Error, Result};
use crate::options::CreateRequest;
use crate::record::{ContainerRecord, Endpoint, IpamConfig, Status};
use crate::Engine;

/// How a container is networked, from its `NetworkMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    None,
    Host,
    /// The other container's id.
    Container(&'a str),
    /// Bridge networks (the endpoints in `NetworkSettings`).
    Bridge,
}

pub fn mode(network_mode: &str) -> Mode<'_> {
    match network_mode {
        "none" => Mode::None,
        "host" => Mode::Host,
        m => match m.strip_prefix("container:") {
            Some(id) => Mode::Container(id),
            None => Mode::Bridge,
        },
    }
}

/// The network a container uses when `--network` is not given: `bridge` as Docker's, unless
/// `$SKIFF_DEFAULT_NETWORK` names another (podman's `containers.conf` `netns` setting).
pub fn default_network() -> String {
    std::env::var("SKIFF_DEFAULT_NETWORK")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bridge".into())
}

/// A skiff-net error as the engine reports it.
pub fn from_net(e: skiff_net::Error) -> Error {
    match e {
        skiff_net::Error::Conflict(m) => Error::Conflict(m),
        skiff_net::Error::NotFound(_) | skiff_net::Error::Invalid(_) => Error::Invalid(e.to_string()),
        other => Error::Other(other.to_string()),
    }
}

/// What `--network`, `--ip`, `--network-alias`, ... ask of one connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    pub ip: Option<String>,
    pub ip6: Option<String>,
    pub aliases: Vec<String>,
    pub mac_address: Option<String>,
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || Error::Invalid(format!("invalid MAC address: {s}"));
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        if p.len() != 2 {
            return Err(bad());
        }
    }
    if m[0] & 1 == 1 {
        return Err(Error::Invalid(format!("invalid MAC address: {s}: a multicast address")));
    }
    Ok(m)
}

impl Engine {
    /// The store's networks (`<root>/networks`).
    pub fn networks(&self) -> Result<Networks> {
        Networks::open(&self.layout.root).map_err(from_net)
    }

    /// A network by name or id; `bridge`/`default` is made on first use.
    pub fn network(&self, name: &str) -> Result<Network> {
        let nets = self.networks()?;
        match name {
            "bridge" | "default" => nets.ensure_default().map_err(from_net),
            n => nets.get(n).map_err(from_net),
        }
    }

    /// The endpoint `create`/`connect` records for a connection to `net`, checked.
    pub(crate) fn endpoint_for(&self, net: &Network, req: &ConnectRequest, iface: String) -> Result<Endpoint> {
        let user_net = !net.is_default();
        if !req.aliases.is_empty() && !user_net {
            return Err(Error::Invalid(
                "network-scoped alias is supported only for containers in user defined networks".into(),
            ));
        }
        let mut ipam = IpamConfig::default();
        for (want, v6) in [(&req.ip, false), (&req.ip6, true)] {
            let Some(s) = want else { continue };
            let a: IpAddr = s.parse().map_err(|_| Error::Invalid(format!("invalid IP address: {s}")))?;
            if a.is_ipv6() != v6 {
                return Err(Error::Invalid(format!("invalid IP address: {s}: not an IPv{} address", if v6 { 6 } else { 4 })));
            }
            if !user_net {
                return Err(Error::Invalid("user specified IP address is supported on user defined networks only".into()));
            }
            let sub = net.subnets.iter().find(|x| x.subnet.contains(&a)).ok_or_else(|| {
                Error::Invalid(format!(
                    "invalid IP address {a}: not in the subnet{} of network {}",
                    if net.subnets.len() > 1 { "s" } else { "" },
                    net.name
                ))
            })?;
            if a == sub.gateway || a == sub.subnet.network() || (a.is_ipv4() && a == sub.subnet.broadcast()) {
                return Err(Error::Invalid(format!("invalid IP address {a}: reserved in network {}", net.name)));
            }
            if v6 {
                ipam.ipv6 = a.to_string();
            } else {
                ipam.ipv4 = a.to_string();
            }
        }
        let requested_mac = match &req.mac_address {
            Some(m) => {
                parse_mac(m)?;
                m.to_ascii_lowercase()
            }
            None => String::new(),
        };
        Ok(Endpoint {
            ipam_config: (ipam != IpamConfig::default()).then_some(ipam),
            aliases: req.aliases.clone(),
            network_id: net.id.clone(),
            requested_mac,
            interface: iface,
            ..Default::default()
        })
    }

    /// Fills the record's network mode and endpoints from `create`'s flags.
    pub(crate) fn resolve_network(&self, req: &CreateRequest, rec: &mut ContainerRecord) -> Result<()> {
        let asked = req.network.clone().unwrap_or_else(default_network);
        let conflicts = |what: &str| -> Result<()> { Err(Error::Invalid(format!("conflicting options: {what} and the network mode"))) };
        let has_ports = !req.publish.is_empty() || req.publish_all;
        match asked.as_str() {
            "none" | "host" => {
                if req.ip.is_some() || req.ip6.is_some() || !req.aliases.is_empty() {
                    return Err(Error::Invalid(format!("--ip, --ip6 and --network-alias need a bridge network, not {asked}")));
                }
                if asked == "none" && has_ports {
                    return conflicts("port publishing");
                }
                if asked == "host" && req.mac_address.is_some() {
                    return conflicts("mac-address");
                }
                rec.host_config.network_mode = asked;
            }
            m if m.starts_with("container:") => {
                let other = self.resolve(&m["container:".len()..])?;
                if other == rec.id {
                    return Err(Error::Invalid("cannot join own network".into()));
                }
                if req.hostname.is_some() {
                    return conflicts("hostname");
                }
                if has_ports {
                    return conflicts("port publishing");
                }
                if !req.dns.is_empty() || !req.add_hosts.is_empty() || req.mac_address.is_some() || req.ip.is_some() {
                    return conflicts("dns, add-host, mac-address and ip");
                }
                rec.host_config.network_mode = format!("container:{other}");
            }
            name => {
                if self.rootless {
                    // Rootless: no bridges; pasta/slirp4netns give each container its own network.
                    if name != "bridge" && name != "default" {
                        return Err(Error::Invalid(format!(
                            "network {name}: rootless containers use the default network (pasta/slirp4netns); user networks need root"
                        )));
                    }
                    if req.ip.is_some() || !req.aliases.is_empty() {
                        return Err(Error::Invalid(
                            "--ip and --network-alias need root (rootless containers use pasta/slirp4netns)".into(),
                        ));
                    }
                    rec.host_config.network_mode = "bridge".into();
                    let ep = Endpoint {
                        interface: "eth0".into(),
                        ..Default::default()
                    };
                    rec.network_settings.networks = BTreeMap::from([("bridge".to_string(), ep)]);
                    return Ok(());
                }
                let net = self.network(name)?;
                let cr = ConnectRequest {
                    ip: req.ip.clone(),
                    ip6: req.ip6.clone(),
                    aliases: req.aliases.clone(),
                    mac_address: req.mac_address.clone(),
                };
                let ep = self.endpoint_for(&net, &cr, "eth0".into())?;
                rec.host_config.network_mode = if net.is_default() { "bridge".into() } else { net.name.clone() };
                rec.network_settings.networks = BTreeMap::from([(net.name.clone(), ep)]);
            }
        }
        Ok(())
    }

    /// Whether a container with this id holds (or is taking) addresses right now: its start
    /// holds its lock, a running one has a live status. For IPAM's crash recovery.
    fn owner_live(&self, id: &str) -> bool {
        let dir = self.layout.container(id);
        if !dir.record().exists() {
            return false;
        }
        match crate::lock::try_exclusive(&dir.lock()) {
            Ok(Some(_)) => {}
            _ => return true,
        }
        match self.load(id) {
            Ok(mut r) => {
                self.live(&mut r);
                r.state.status.is_active()
            }
            Err(_) => false,
        }
    }

    /// Containers (names) with a live connection to `net`.
    pub fn network_users(&self, net: &Network) -> Result<Vec<String>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|r| r.state.status.is_active() && r.network_settings.networks.values().any(|e| e.network_id == net.id))
            .map(|r| r.name)
            .collect())
    }

    /// `network rm`: refused while a running container is connected (Docker's rule; stopped
    /// ones keep their reference and fail to start). The bridge and its rules go too.
    pub fn network_remove(&self, name: &str) -> Result<Network> {
        let nets = self.networks()?;
        let net = match name {
            "bridge" | "host" | "none" => return Err(Error::Conflict(format!("{name} is a pre-defined network and cannot be removed"))),
            n => nets.get(n).map_err(from_net)?,
        };
        if net.is_default() {
            return Err(Error::Conflict(format!("{} is a pre-defined network and cannot be removed", net.name)));
        }
        let _l = self.bridge_lock(&net)?;
        let users = self.network_users(&net)?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                net.name,
                net.id,
                users.join(", ")
            )));
        }
        if !self.rootless {
            skiff_net::nft::Nft::new().remove_network(&net.bridge).map_err(from_net)?;
            let mut nl = skiff_net::netlink::Netlink::open().map_err(from_net)?;
            nl.delete_link(&net.bridge).map_err(from_net)?;
        }
        let gone = nets.remove(&net.id).map_err(from_net)?;
        let _ = std::fs::remove_file(self.layout.root.join("networks").join(format!(".{}.lock", net.id)));
        Ok(gone)
    }

    /// The user networks no container refers to, removed (`network prune`).
    pub fn network_prune(&self) -> Result<Vec<String>> {
        let recs = self.list()?;
        let mut gone = Vec::new();
        for net in self.networks()?.list().map_err(from_net)? {
            if net.is_default() || recs.iter().any(|r| r.network_settings.networks.values().any(|e| e.network_id == net.id)) {
                continue;
            }
            self.network_remove(&net.id)?;
            gone.push(net.name);
        }
        Ok(gone)
    }

    /// The lock serializing a network's bridge and rules (creation, removal).
    pub(crate) fn bridge_lock(&self, net: &Network) -> Result<crate::lock::Lock> {
        let p = self.layout.root.join("networks").join(format!(".{}.lock", net.id));
        crate::lock::exclusive(&p)
    }

    /// `network connect`: records the connection; a running container gets it at once.
    pub fn network_connect(&self, container: &str, network: &str, req: &ConnectRequest) -> Result<()> {
        let id = self.resolve(container)?;
        let (_l, mut rec) = self.lock(&id)?;
        if mode(&rec.host_config.network_mode) != Mode::Bridge {
            return Err(Error::Invalid(format!(
                "container {} is on network mode {}: it cannot be connected to a network",
                rec.name, rec.host_config.network_mode
            )));
        }
        if self.rootless {
            return Err(Error::Invalid("network connect needs root (rootless containers use pasta/slirp4netns)".into()));
        }
        let net = self.network(network)?;
        if rec.network_settings.networks.values().any(|e| e.network_id == net.id) {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            )));
        }
        let used: Vec<&str> = rec.network_settings.networks.values().map(|e| e.interface.as_str()).collect();
        let iface = (0..).map(|i| format!("eth{i}")).find(|n| !used.contains(&n.as_str())).unwrap_or_default();
        let ep = self.endpoint_for(&net, req, iface)?;
        rec.network_settings.networks.insert(net.name.clone(), ep);
        if rec.state.status == Status::Running || rec.state.status == Status::Paused {
            let pid = rec.state.pid;
            let plan = self.net_prepare_one(&mut rec, &net.name)?;
            if let Err(e) = self.net_attach(&plan, &rec, pid) {
                self.net_release_one(&mut rec, &net.name);
                return Err(e);
            }
            self.rewrite_hosts(&rec)?;
        }
        rec.save(&self.layout.container(&id).record())
    }

    /// `network disconnect`: the connection goes (at once from a running container).
    pub fn network_disconnect(&self, container: &str, network: &str) -> Result<()> {
        let id = self.resolve(container)?;
        let (_l, mut rec) = self.lock(&id)?;
        let net = self.network(network)?;
        let Some(name) = rec
            .network_settings
            .networks
            .iter()
            .find(|(_, e)| e.network_id == net.id)
            .map(|(n, _)| n.clone())
        else {
            return Err(Error::Invalid(format!("container {} is not connected to network {}", rec.name, net.name)));
        };
        self.net_release_one(&mut rec, &name);
        rec.network_settings.networks.remove(&name);
        if rec.state.status.is_active() {
            self.rewrite_hosts(&rec)?;
        }
        rec.save(&self.layout.container(&id).record())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_macs() {
        assert_eq!(mode("none"), Mode::None);
        assert_eq!(mode("container:abc"), Mode::Container("abc"));
        assert_eq!(mode("mynet"), Mode::Bridge);
        assert_eq!(parse_mac("02:42:AC:11:00:09").unwrap(), [2, 0x42, 0xac, 0x11, 0, 9]);
        assert!(parse_mac("01:00:00:00:00:01").is_err());
        assert!(parse_mac("02:42:ac:11:00").is_err());
        assert!(parse_mac("02:42:ac:11:00:zz").is_err());
    }
}
