//! Addresses and routes, and the container side of a veth (eth0, lo, default routes).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::BorrowedFd;

use ipnet::{IpNet, Ipv4Net};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{check_ifname, in_netns, Netlink, VethSpec};
use crate::{Error, Result};

/// How the container's end of a veth is set up inside its namespace.
#[derive(Debug, Clone)]
pub struct IfaceConfig<'a> {
    /// The peer's name as created (e.g. a temporary name, or already "eth0").
    pub name: &'a str,
    /// Its name in the container (usually "eth0"); `None` keeps `name`.
    pub rename_to: Option<&'a str>,
    pub mac: Option<[u8; 6]>,
    /// Addresses with their prefix lengths (v4 and v6).
    pub addrs: &'a [(IpAddr, u8)],
    /// Default routes' gateways, at most one per family.
    pub gateways: &'a [IpAddr],
}

fn family(addr: &IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

impl Netlink {
    pub(super) fn add_address_inner(&mut self, index: u32, link: &str, addr: IpAddr, prefix: u8, exists_ok: bool) -> Result<()> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(Error::Invalid(format!("invalid prefix length /{prefix} for {addr} on {link}")));
        }
        let mut msg = AddressMessage::default();
        msg.header.family = family(&addr);
        msg.header.prefix_len = prefix;
        msg.header.scope = AddressScope::Universe;
        msg.header.index = index;
        match addr {
            IpAddr::V4(v4) => {
                msg.attributes.push(AddressAttribute::Local(addr));
                if prefix < 31 {
                    if let Ok(net) = Ipv4Net::new(v4, prefix) {
                        msg.attributes.push(AddressAttribute::Broadcast(net.broadcast()));
                    }
                }
            }
            // No duplicate address detection: the address is usable at once (the network's
            // IPAM already made sure it is unique), as Docker and netavark do.
            IpAddr::V6(_) => msg.header.flags = AddressHeaderFlags::Nodad,
        }
        msg.attributes.push(AddressAttribute::Address(addr));
        match self.request(RouteNetlinkMessage::NewAddress(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Ok(()) => Ok(()),
            Err(e) if exists_ok && e.errno == libc::EEXIST => Ok(()),
            Err(e) => Err(e.named(format!("add address {addr}/{prefix} to {link}"))),
        }
    }

    /// Adds `addr/prefix` to the link `index` (`EEXIST` when it is already there).
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        self.add_address_inner(index, &format!("link #{index}"), addr, prefix, false)
    }

    /// Adds (or replaces) the default route of `gateway`'s family, via `gateway` on the link
    /// `index`, in the main table.
    pub fn add_default_route(&mut self, index: u32, gateway: IpAddr) -> Result<()> {
        self.add_default_route_inner(index, &format!("link #{index}"), gateway)
    }

    fn add_default_route_inner(&mut self, index: u32, link: &str, gateway: IpAddr) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(&gateway);
        msg.header.destination_prefix_length = 0;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes.push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        msg.attributes.push(RouteAttribute::Oif(index));
        self.request(RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_REPLACE)
            .map_err(|e| e.named(format!("add default route via {gateway} on {link}")))
    }

    /// Sets up the container's interface from inside its namespace (this handle must have been
    /// opened there): renamed (eth0), its MAC set, up, its addresses, `lo` up, the default
    /// routes. Returns the interface's index.
    pub fn configure_iface(&mut self, cfg: &IfaceConfig<'_>) -> Result<u32> {
        check_ifname(cfg.name)?;
        let index = self.link_index(cfg.name)?.ok_or_else(|| Error::NotFound(format!("link {}", cfg.name)))?;
        let name = cfg.rename_to.unwrap_or(cfg.name);
        self.rename_link(index, name, cfg.mac, true)?;
        self.sync_link_state(name);
        self.link_up("lo")?;
        for (addr, prefix) in cfg.addrs {
            self.add_address_inner(index, name, *addr, *prefix, false)?;
        }
        for gateway in cfg.gateways {
            self.add_default_route_inner(index, name, *gateway)?;
        }
        Ok(index)
    }

    /// The IPv4 routes of the main table: destination and output device name.
    pub fn routes_v4(&mut self) -> Result<Vec<(IpNet, Option<String>)>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let answers = self.dump(RouteNetlinkMessage::GetRoute(msg)).map_err(|e| e.named("list IPv4 routes"))?;
        let mut names: Option<HashMap<u32, String>> = None;
        let mut out = Vec::new();
        for answer in answers {
            let RouteNetlinkMessage::NewRoute(route) = answer else { continue };
            let mut table = u32::from(route.header.table);
            let mut dst = Ipv4Addr::UNSPECIFIED;
            let mut oif = None;
            for attr in &route.attributes {
                match attr {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            if table != u32::from(RouteHeader::RT_TABLE_MAIN) || route.header.kind != RouteType::Unicast {
                continue;
            }
            let Ok(net) = Ipv4Net::new(dst, route.header.destination_prefix_length) else {
                continue;
            };
            let dev = match oif {
                Some(i) => {
                    if names.is_none() {
                        names = Some(self.links()?.into_iter().map(|l| (l.index, l.name)).collect());
                    }
                    names.as_ref().and_then(|n| n.get(&i).cloned())
                }
                None => None,
            };
            out.push((IpNet::V4(net), dev));
        }
        Ok(out)
    }
}

impl Netlink {
    /// A container's whole network attachment: the veth pair (`veth`, usually on a bridge),
    /// then its end set up inside the container's namespace (`iface`, see
    /// [`configure_iface`](Self::configure_iface)), then the host side's and the bridge's
    /// link states synced (see [`sync_link_state`](Self::sync_link_state)) so IPv6 answers at
    /// once. When the container side fails, the pair is deleted (nothing half-made). Returns
    /// the container interface's index.
    pub fn connect_container(&mut self, veth: &VethSpec<'_>, iface: &IfaceConfig<'_>) -> Result<u32> {
        self.add_veth(veth)?;
        let index = match setup_container_iface(veth.peer_netns, iface) {
            Ok(index) => index,
            Err(e) => {
                if let Err(cleanup) = self.delete_link(veth.host_name) {
                    tracing::warn!("{cleanup}");
                }
                return Err(e);
            }
        };
        self.sync_link_state(veth.host_name);
        if let Some(bridge) = veth.bridge {
            if let Some(name) = self.link_name(bridge)? {
                self.sync_link_state(&name);
            }
        }
        Ok(index)
    }
}

/// Opens a socket in the container's namespace `netns` and applies `cfg` there (see
/// [`Netlink::configure_iface`]); the calling thread's namespace never changes.
pub fn setup_container_iface(netns: BorrowedFd<'_>, cfg: &IfaceConfig<'_>) -> Result<u32> {
    in_netns(netns, || Netlink::open()?.configure_iface(cfg))
}
