//! The host's routes, read from `/proc/net/route` and `/proc/net/ipv6_route` (no netlink
//! needed): a new network's subnet must not overlap one of them. Parsing takes the file's text,
//! so it is tested without the host's tables.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::IpNet;

use crate::error::{Error, Result};

/// One route of the host's main table: its destination and its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub dest: IpNet,
    pub dev: String,
}

/// Whether `dev` is one of our bridges (the default `skiff0` or a user network's `skbr-*`):
/// their routes are our networks' own, checked against the network definitions instead.
pub fn is_our_bridge(dev: &str) -> bool {
    dev == "skiff0" || dev.starts_with("skbr-")
}

/// Parses `/proc/net/route`: `Iface Destination Gateway Flags RefCnt Use Metric Mask ...`, the
/// destination and mask in hex of the kernel's in-memory (network order) bytes. Default routes,
/// unparsable lines and our own bridges' routes are left out.
pub fn parse_v4(text: &str) -> Vec<HostRoute> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || is_our_bridge(f[0]) {
            continue;
        }
        let (Ok(dest), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else {
            continue;
        };
        let mask = Ipv4Addr::from(mask.to_ne_bytes());
        let Ok(prefix) = ipnet::ipv4_mask_to_prefix(mask) else {
            continue;
        };
        if prefix == 0 {
            continue;
        }
        if let Ok(net) = ipnet::Ipv4Net::new(Ipv4Addr::from(dest.to_ne_bytes()), prefix) {
            out.push(HostRoute {
                dest: IpNet::V4(net.trunc()),
                dev: f[0].to_string(),
            });
        }
    }
    out
}

/// `RTF_LOCAL`: a route of the local table (the host's own addresses).
const RTF_LOCAL: u32 = 0x8000_0000;

/// Parses `/proc/net/ipv6_route`: `dest plen src splen nexthop metric refcnt use flags dev`.
/// Default routes, local-table routes (the host's own addresses), `lo`, link-local and
/// multicast routes, and our bridges' routes are left out.
pub fn parse_v6(text: &str) -> Vec<HostRoute> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[9] == "lo" || is_our_bridge(f[9]) {
            continue;
        }
        let (Ok(dest), Ok(plen), Ok(flags)) = (u128::from_str_radix(f[0], 16), u8::from_str_radix(f[1], 16), u32::from_str_radix(f[8], 16)) else {
            continue;
        };
        if plen == 0 || flags & RTF_LOCAL != 0 {
            continue;
        }
        let Ok(net) = ipnet::Ipv6Net::new(Ipv6Addr::from(dest), plen) else {
            continue;
        };
        let net = net.trunc();
        let special = ["fe80::/10", "ff00::/8"]
            .iter()
            .any(|s| s.parse::<ipnet::Ipv6Net>().is_ok_and(|n| n.contains(&net)));
        if !special {
            out.push(HostRoute {
                dest: IpNet::V6(net),
                dev: f[9].to_string(),
            });
        }
    }
    out
}

/// Reads the host's routes (both families) from `proc_net` (normally `/proc/net`); a missing
/// file (no IPv6 in the kernel) is no routes.
pub fn read_host_routes(proc_net: &Path) -> Result<Vec<HostRoute>> {
    let mut out = Vec::new();
    for (file, parse) in [("route", parse_v4 as fn(&str) -> Vec<HostRoute>), ("ipv6_route", parse_v6)] {
        let path = proc_net.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => out.extend(parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &path, e)),
        }
    }
    Ok(out)
}

/// The first host route `net` overlaps, if any.
pub fn overlapping<'a>(net: &IpNet, routes: &'a [HostRoute]) -> Option<&'a HostRoute> {
    routes.iter().find(|r| overlaps(net, &r.dest))
}

/// Whether two networks share an address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0
skiff0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
skbr-0123abcd\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
garbage line
eth1\tZZZZ\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
";

    const V6: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0
20010db8000000010000000000000000 30 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001   skbr-0123abcd
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    fn r(dest: &str, dev: &str) -> HostRoute {
        HostRoute {
            dest: dest.parse().unwrap(),
            dev: dev.into(),
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn v4_routes() {
        assert_eq!(parse_v4(V4), vec![r("192.0.2.0/24", "eth0"), r("10.0.0.0/8", "wlan0")]);
        assert!(parse_v4("").is_empty());
    }

    #[test]
    fn v6_routes() {
        assert_eq!(parse_v6(V6), vec![r("fd00::/64", "eth0")]);
    }

    #[test]
    fn overlap() {
        let routes = vec![r("192.0.2.0/24", "eth0"), r("10.0.0.0/8", "wlan0")];
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(overlapping(&n("10.1.0.0/16"), &routes).map(|r| r.dev.as_str()), Some("wlan0"));
        assert_eq!(overlapping(&n("192.0.0.0/16"), &routes).map(|r| r.dev.as_str()), Some("eth0"));
        assert_eq!(overlapping(&n("172.17.0.0/16"), &routes), None);
        assert_eq!(overlapping(&n("fd00::/64"), &routes), None);
        assert!(overlaps(&n("172.16.0.0/12"), &n("172.20.0.0/16")));
        assert!(!overlaps(&n("172.16.0.0/16"), &n("172.17.0.0/16")));
    }

    #[test]
    fn reads_this_host() {
        let routes = read_host_routes(Path::new("/proc/net")).unwrap();
        assert!(routes.iter().all(|r| r.dest.prefix_len() > 0 && !is_our_bridge(&r.dev)));
        assert!(read_host_routes(Path::new("/nonexistent")).unwrap().is_empty());
    }
}
