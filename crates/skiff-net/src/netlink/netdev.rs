//! Moving an existing link into another network namespace (runtime-spec `linux.netDevices`).

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use super::{check_ifname, Netlink};
use crate::Result;

impl Netlink {
    /// Moves the link `index` into the network namespace `netns` and names it `new_name` there,
    /// in one request (as runc does: a rename after the move could clash with a name in the
    /// target namespace, one before it with a name here). The link keeps its state; the
    /// caller sets it up on a handle opened in `netns`.
    pub fn move_link_to_netns(&mut self, index: u32, new_name: &str, netns: BorrowedFd<'_>) -> Result<()> {
        check_ifname(new_name)?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::IfName(new_name.to_string()));
        msg.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| e.named(format!("move link #{index} into the container's network namespace as {new_name}")))
    }

    /// The permanent addresses of global scope on the link `index` (address, prefix length):
    /// what runc carries over when it moves a device, since the kernel drops a link's addresses
    /// when it changes namespace. Dynamic and link-local addresses belong to the old network.
    pub fn global_addresses(&mut self, index: u32) -> Result<Vec<(IpAddr, u8)>> {
        let answers = self
            .dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
            .map_err(|e| e.named(format!("list the addresses of link #{index}")))?;
        let mut out = Vec::new();
        for answer in answers {
            let RouteNetlinkMessage::NewAddress(a) = answer else { continue };
            if a.header.index != index || a.header.scope != AddressScope::Universe {
                continue;
            }
            let mut permanent = a.header.flags.contains(AddressHeaderFlags::Permanent);
            let (mut local, mut address) = (None, None);
            for attr in &a.attributes {
                match attr {
                    AddressAttribute::Flags(f) => permanent = f.contains(AddressFlags::Permanent),
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => address = Some(*ip),
                    _ => {}
                }
            }
            if let (true, Some(ip)) = (permanent, local.or(address)) {
                out.push((ip, a.header.prefix_len));
            }
        }
        Ok(out)
    }
}
