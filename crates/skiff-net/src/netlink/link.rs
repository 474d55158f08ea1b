//! Links: lookups, bridges, veth pairs, up/down, master, deletion, listing.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::{check_ifname, Netlink};
use crate::{Error, Result};

const EEXIST: i32 = libc::EEXIST;
const ENODEV: i32 = libc::ENODEV;
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GLINK: u32 = 0x0a;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union (40 bytes, as the kernel copies).
#[repr(C)]
struct IfreqData {
    name: [u8; 16],
    data: *mut EthtoolValue,
    pad: [u8; 16],
}

/// What a lookup tells about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfoSummary {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "bridge", "veth"... (`None` for physical devices and `lo`).
    pub kind: Option<String>,
    pub up: bool,
    pub mtu: u32,
    /// The bridge (or bond) it is a port of.
    pub master: Option<u32>,
    pub mac: Option<Vec<u8>>,
}

/// A veth pair to create (see [`Netlink::add_veth`]).
#[derive(Debug, Clone, Copy)]
pub struct VethSpec<'a> {
    /// The host side's name (Docker: `veth` + 7 hex digits).
    pub host_name: &'a str,
    /// The peer's name in its namespace: a temporary name to rename later, or "eth0" at once.
    pub peer_name: &'a str,
    /// The namespace the peer is created in.
    pub peer_netns: BorrowedFd<'a>,
    /// Both ends' MTU; 0 leaves the kernel's default.
    pub mtu: u32,
    /// The bridge (index) the host side is attached to; it is then also set up.
    pub bridge: Option<u32>,
    pub peer_mac: Option<[u8; 6]>,
}

fn by_name(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg
}

fn summary(msg: &LinkMessage) -> LinkInfoSummary {
    let mut s = LinkInfoSummary {
        index: msg.header.index,
        name: String::new(),
        kind: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        mtu: 0,
        master: None,
        mac: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => s.name = n.clone(),
            LinkAttribute::Mtu(m) => s.mtu = *m,
            LinkAttribute::Controller(m) => s.master = Some(*m),
            LinkAttribute::Address(a) => s.mac = Some(a.clone()),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        s.kind = Some(kind.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    s
}

impl Netlink {
    /// The link named `name`: index, kind, state (`None` when there is none).
    pub fn link(&mut self, name: &str) -> Result<Option<LinkInfoSummary>> {
        check_ifname(name)?;
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        match self.get(RouteNetlinkMessage::GetLink(msg)) {
            Ok(RouteNetlinkMessage::NewLink(link)) => Ok(Some(summary(&link))),
            Ok(other) => Err(Error::Invalid(format!("netlink: unexpected answer to a link lookup of {name}: {other:?}"))),
            Err(e) if e.errno == ENODEV => Ok(None),
            Err(e) => Err(e.named(format!("look up link {name}"))),
        }
    }

    /// The index of the link named `name`, `None` when there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// Makes sure the bridge `name` exists with the gateway addresses `addrs` (address, prefix
    /// length) and is up; returns its index. Idempotent, and safe when several processes race
    /// to create the same bridge (`EEXIST` is success). `mtu` 0 leaves the kernel's default.
    /// Refused when `name` exists and is not a bridge.
    pub fn ensure_bridge(&mut self, name: &str, addrs: &[(IpAddr, u8)], mtu: u32) -> Result<u32> {
        check_ifname(name)?;
        let link = match self.link(name)? {
            Some(link) => link,
            None => {
                let mut msg = by_name(name);
                msg.header.flags = LinkFlags::Up;
                msg.header.change_mask = LinkFlags::Up;
                if mtu > 0 {
                    msg.attributes.push(LinkAttribute::Mtu(mtu));
                }
                msg.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
                match self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL) {
                    Ok(()) => {}
                    Err(e) if e.errno == EEXIST => {}
                    Err(e) => return Err(e.named(format!("create bridge {name}"))),
                }
                self.link(name)?
                    .ok_or_else(|| Error::Conflict(format!("bridge {name} vanished while being created")))?
            }
        };
        if link.kind.as_deref() != Some("bridge") {
            return Err(Error::Conflict(format!(
                "link {name} exists and is not a bridge (kind {})",
                link.kind.as_deref().unwrap_or("none")
            )));
        }
        for (addr, prefix) in addrs {
            self.add_address_inner(link.index, name, *addr, *prefix, true)?;
        }
        if !link.up {
            self.link_up(name)?;
        }
        Ok(link.index)
    }

    /// Creates the veth pair `host_name` (here) / `peer_name` (directly in the namespace
    /// `peer_netns`), both with `mtu` (0: the kernel's default), in one request.
    pub fn create_veth(&mut self, host_name: &str, peer_name: &str, peer_netns: BorrowedFd<'_>, mtu: u32) -> Result<()> {
        self.add_veth(&VethSpec {
            host_name,
            peer_name,
            peer_netns,
            mtu,
            bridge: None,
            peer_mac: None,
        })
    }

    /// [`create_veth`](Self::create_veth), with the host side already a port of the bridge
    /// `bridge_index` and up, still in one request.
    pub fn create_veth_on_bridge(&mut self, host_name: &str, peer_name: &str, peer_netns: BorrowedFd<'_>, mtu: u32, bridge_index: u32) -> Result<()> {
        self.add_veth(&VethSpec {
            host_name,
            peer_name,
            peer_netns,
            mtu,
            bridge: Some(bridge_index),
            peer_mac: None,
        })
    }

    /// Creates a veth pair as `spec` says, in one request (the peer stays down: the kernel
    /// cannot open it before the pair is complete). See also
    /// [`connect_container`](Self::connect_container).
    pub fn add_veth(&mut self, spec: &VethSpec<'_>) -> Result<()> {
        let VethSpec {
            host_name,
            peer_name,
            peer_netns,
            mtu,
            bridge,
            peer_mac,
        } = *spec;
        check_ifname(host_name)?;
        check_ifname(peer_name)?;
        let mut peer = by_name(peer_name);
        if mtu > 0 {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        peer.attributes.push(LinkAttribute::NetNsFd(peer_netns.as_raw_fd()));
        let mut msg = by_name(host_name);
        if mtu > 0 {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(bridge) = bridge {
            msg.attributes.push(LinkAttribute::Controller(bridge));
            msg.header.flags = LinkFlags::Up;
            msg.header.change_mask = LinkFlags::Up;
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL).map_err(|e| {
            let on = bridge.map(|b| format!(" on bridge #{b}")).unwrap_or_default();
            e.named(format!("create veth pair {host_name}/{peer_name}{on}"))
        })
    }

    fn set_flags(&mut self, name: &str, up: bool) -> Result<()> {
        check_ifname(name)?;
        let mut msg = by_name(name);
        msg.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
        msg.header.change_mask = LinkFlags::Up;
        let what = if up { "up" } else { "down" };
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| e.named(format!("set link {name} {what}")))
    }

    /// Sets the link `name` up.
    pub fn link_up(&mut self, name: &str) -> Result<()> {
        self.set_flags(name, true)?;
        self.sync_link_state(name);
        Ok(())
    }

    /// Makes the kernel apply the link's pending carrier change now (an ethtool "get link",
    /// which runs the link's pending linkwatch event) instead of up to a second later: until
    /// then its operational state is not up and IPv6 neither joins the solicited-node groups
    /// of its addresses nor answers neighbour solicitations for them (the first IPv6 packet to
    /// a new container or to a bridge's gateway would wait a retransmission, 1 s). Best
    /// effort; returns the carrier.
    pub fn sync_link_state(&mut self, name: &str) -> bool {
        if name.len() > super::IFNAME_MAX {
            return false;
        }
        let mut value = EthtoolValue { cmd: ETHTOOL_GLINK, data: 0 };
        let mut ifr = IfreqData {
            name: [0; 16],
            data: &mut value,
            pad: [0; 16],
        };
        ifr.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: SIOCETHTOOL reads a `struct ifreq` (40 bytes, `ifr` is that size, its name
        // NUL-terminated) whose `ifr_data` points to `value`, a live `struct ethtool_value` the
        // kernel fills for ETHTOOL_GLINK; both outlive the call. A netlink socket passes
        // device ioctls to its own network namespace.
        let rc = unsafe { libc::ioctl(self.sock.as_raw_fd(), SIOCETHTOOL as _, &mut ifr as *mut IfreqData) };
        rc == 0 && value.data != 0
    }

    /// The name of the link with index `index`.
    pub fn link_name(&mut self, index: u32) -> Result<Option<String>> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        match self.get(RouteNetlinkMessage::GetLink(msg)) {
            Ok(RouteNetlinkMessage::NewLink(link)) => Ok(Some(summary(&link).name)),
            Ok(_) => Ok(None),
            Err(e) if e.errno == ENODEV => Ok(None),
            Err(e) => Err(e.named(format!("look up link #{index}"))),
        }
    }

    /// Sets the link `name` down.
    pub fn link_down(&mut self, name: &str) -> Result<()> {
        self.set_flags(name, false)
    }

    /// Makes the link `name` a port of the bridge `master` (an index).
    pub fn set_master(&mut self, name: &str, master: u32) -> Result<()> {
        check_ifname(name)?;
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::Controller(master));
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| e.named(format!("attach link {name} to bridge #{master}")))
    }

    /// Turns on hairpin mode of the bridge port `name` (`ip link set NAME type bridge_slave
    /// hairpin on`): a container's packets may leave through the port they came in by, so it
    /// reaches its own published ports through the host's address (netavark does the same).
    pub fn set_hairpin(&mut self, name: &str) -> Result<()> {
        check_ifname(name)?;
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(true)])),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), 0)
            .map_err(|e| e.named(format!("hairpin mode on bridge port {name}")))
    }

    /// Renames the link `index` to `new_name`, optionally with a new MAC address and up, in
    /// one request (the kernel renames before it brings the link up).
    pub fn rename_link(&mut self, index: u32, new_name: &str, mac: Option<[u8; 6]>, up: bool) -> Result<()> {
        check_ifname(new_name)?;
        let mut msg = by_name(new_name);
        msg.header.index = index;
        if let Some(mac) = mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if up {
            msg.header.flags = LinkFlags::Up;
            msg.header.change_mask = LinkFlags::Up;
        }
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| e.named(format!("rename link #{index} to {new_name}")))
    }

    /// Deletes the link `name` (for a veth, both ends); `false` when there was none.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        check_ifname(name)?;
        match self.request(RouteNetlinkMessage::DelLink(by_name(name)), 0) {
            Ok(()) => Ok(true),
            Err(e) if e.errno == ENODEV => Ok(false),
            Err(e) => Err(e.named(format!("delete link {name}"))),
        }
    }

    /// All links of this namespace.
    pub fn links(&mut self) -> Result<Vec<LinkInfoSummary>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let answers = self.dump(RouteNetlinkMessage::GetLink(msg)).map_err(|e| e.named("list links"))?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(summary(link)),
                _ => None,
            })
            .collect())
    }

    /// The names of the links that start with `prefix` (leftovers to clean up).
    pub fn list_links_with_prefix(&mut self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.links()?.into_iter().map(|l| l.name).filter(|n| n.starts_with(prefix)).collect())
    }
}
