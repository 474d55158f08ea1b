//! Parsing and checking a network's subnets: `--subnet`, `--gateway`, `--ip-range`, `--ipv6`,
//! overlap with other networks and host routes, Docker's default address pools.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use super::{CreateRequest, Network, Subnet};
use crate::error::{Error, Result};
use crate::routes::{self, HostRoute};

/// The first address after the network address: the default gateway.
pub(super) fn first_host(net: &IpNet) -> IpAddr {
    match net.network() {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(1))),
        IpAddr::V6(a) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a).wrapping_add(1))),
    }
}

/// Whether `a` is the subnet's network address or (IPv4) its broadcast address.
pub(crate) fn is_reserved(net: &IpNet, a: IpAddr) -> bool {
    a == net.network() || (matches!(net, IpNet::V4(_)) && a == net.broadcast())
}

fn parse_cidr(what: &str, s: &str) -> Result<IpNet> {
    let net: IpNet = s
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("invalid {what} {s}: not a CIDR (like 10.1.0.0/16)")))?;
    if net.trunc() != net {
        return Err(Error::Invalid(format!("invalid {what} {s}: it should be {}", net.trunc())));
    }
    Ok(net)
}

/// Parses `--subnet`, `--gateway` and `--ip-range`, matching each gateway and range with the
/// subnet it lies in, and checks `--ipv6`.
pub(super) fn parse_subnets(req: &CreateRequest) -> Result<Vec<Subnet>> {
    let mut out: Vec<(IpNet, Option<IpAddr>, Option<IpNet>)> = Vec::new();
    for s in &req.subnets {
        let net = parse_cidr("subnet", s)?;
        let max = if matches!(net, IpNet::V4(_)) { 30 } else { 126 };
        if net.prefix_len() > max {
            return Err(Error::Invalid(format!("invalid subnet {s}: too small (at most /{max})")));
        }
        if out.iter().any(|(n, ..)| n.max_prefix_len() == net.max_prefix_len()) {
            return Err(Error::Invalid(format!("subnet {s}: one IPv4 and one IPv6 subnet per network are supported")));
        }
        out.push((net, None, None));
    }
    if out.is_empty() && !(req.gateways.is_empty() && req.ip_ranges.is_empty()) {
        return Err(Error::Invalid("every ip-range or gateway must have a corresponding subnet".into()));
    }
    for g in &req.gateways {
        let gw: IpAddr = g
            .trim()
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid gateway {g}: not an IP address")))?;
        let Some(entry) = out.iter_mut().find(|(n, ..)| n.contains(&gw)) else {
            return Err(Error::Invalid(format!("no matching subnet for gateway {g}")));
        };
        if let Some(old) = entry.1 {
            return Err(Error::Invalid(format!(
                "cannot configure multiple gateways ({old} and {gw}) for subnet {}",
                entry.0
            )));
        }
        if is_reserved(&entry.0, gw) {
            return Err(Error::Invalid(format!(
                "invalid gateway {g}: the network or broadcast address of subnet {}",
                entry.0
            )));
        }
        entry.1 = Some(gw);
    }
    for r in &req.ip_ranges {
        let range = parse_cidr("ip-range", r)?;
        let Some(entry) = out.iter_mut().find(|(n, ..)| n.contains(&range)) else {
            return Err(Error::Invalid(format!("no matching subnet for range {r}")));
        };
        if let Some(old) = entry.2 {
            return Err(Error::Invalid(format!(
                "cannot configure multiple ranges ({old}, {range}) on the same subnet ({})",
                entry.0
            )));
        }
        entry.2 = Some(range);
    }
    out.sort_by_key(|(n, ..)| n.max_prefix_len());
    let has_v6 = out.iter().any(|(n, ..)| matches!(n, IpNet::V6(_)));
    if req.ipv6 && !has_v6 {
        return Err(Error::Invalid("--ipv6 needs an IPv6 subnet (--subnet with an IPv6 CIDR)".into()));
    }
    if !req.ipv6 && has_v6 {
        return Err(Error::Invalid("an IPv6 subnet needs --ipv6".into()));
    }
    Ok(out
        .into_iter()
        .map(|(subnet, gw, ip_range)| Subnet {
            subnet,
            gateway: gw.unwrap_or_else(|| first_host(&subnet)),
            ip_range,
        })
        .collect())
}

/// Checks a subnet against the other networks and the host's routes.
pub(super) fn check_free(net: &IpNet, existing: &[Network], host: &[HostRoute]) -> Result<()> {
    for n in existing {
        if let Some(s) = n.subnets.iter().find(|s| routes::overlaps(net, &s.subnet)) {
            return Err(Error::Invalid(format!("subnet {net} overlaps with {} (network {})", s.subnet, n.name)));
        }
    }
    if let Some(r) = routes::overlapping(net, host) {
        return Err(Error::Invalid(format!("subnet {net} overlaps with {} (route on {})", r.dest, r.dev)));
    }
    Ok(())
}

/// Docker's default local pools: 172.17.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> impl Iterator<Item = IpNet> {
    let wide = (17u8..=31).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    let narrow = (0u8..16).filter_map(|k| Ipv4Net::new(Ipv4Addr::new(192, 168, k * 16, 0), 20).ok());
    wide.chain(narrow).map(IpNet::V4)
}

/// The first default pool free of other networks and host routes.
pub(super) fn free_pool(existing: &[Network], host: &[HostRoute]) -> Result<IpNet> {
    default_pools()
        .find(|p| check_free(p, existing, host).is_ok())
        .ok_or_else(|| Error::Invalid("all predefined address pools have been fully subnetted".into()))
}
