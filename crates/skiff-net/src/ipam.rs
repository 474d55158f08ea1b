//! Addresses handed out per network, persisted in `<root>/networks/<id>/ipam.json` (address ->
//! owner, usually a container id; plus the reserved gateways). Every change happens under an
//! exclusive `flock` of `<root>/networks/<id>/lock` and is written atomically (tmp + rename), so
//! concurrent `skiff run`s never get the same address and a crash mid-write leaves the old file
//! or the new one. Addresses are handed out lowest first (IPv6 too: sequentially from the start
//! of the subnet or range), skipping the network, broadcast and gateway addresses.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::{is_reserved, Network, Subnet};
use crate::error::{Error, Result};
use crate::fsutil;

/// The persisted document.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The networks' gateways (the bridge's addresses), never handed out.
    #[serde(rename = "Gateways", default)]
    gateways: Vec<IpAddr>,
    /// Address -> owner.
    #[serde(rename = "Addresses", default)]
    addresses: BTreeMap<IpAddr, String>,
}

struct Paths {
    lock: PathBuf,
    file: PathBuf,
    tmp: PathBuf,
}

/// The network's IPAM files; `None` if its state directory is gone (the network was removed).
fn paths(net: &Network) -> Option<Paths> {
    let dir = net.state_dir();
    if dir.as_os_str().is_empty() || !dir.is_dir() {
        return None;
    }
    Some(Paths {
        lock: dir.join("lock"),
        file: dir.join("ipam.json"),
        tmp: dir.join("ipam.json.tmp"),
    })
}

fn read(p: &Paths) -> Result<State> {
    match fsutil::read_opt(&p.file)? {
        None => Ok(State::default()),
        Some(d) => serde_json::from_slice(&d).map_err(|e| Error::Invalid(format!("{}: {e}", p.file.display()))),
    }
}

/// Runs `f` on the network's state under its exclusive lock; writes the state back if `f`
/// succeeds and says it changed something. Nothing is written when `f` fails.
fn update<T>(net: &Network, f: impl FnOnce(&mut State) -> Result<(T, bool)>) -> Result<Option<T>> {
    let Some(p) = paths(net) else {
        return Ok(None);
    };
    let _lock = fsutil::lock(&p.lock, true)?;
    let mut st = read(&p)?;
    let (out, changed) = f(&mut st)?;
    if changed {
        st.gateways = net.subnets.iter().map(|s| s.gateway).collect();
        let data = serde_json::to_vec_pretty(&st).map_err(|e| Error::Invalid(format!("{}: {e}", p.file.display())))?;
        fsutil::write_atomic(&p.file, &p.tmp, &data)?;
    }
    Ok(Some(out))
}

/// Gives `owner` an address on the network: `requested` (which must lie in one of its subnets,
/// not the gateway, network or broadcast address, and be free), else the lowest free address of
/// the first (IPv4) subnet's range. An owner that already has an address there gets it back.
pub fn allocate(net: &Network, owner: &str, requested: Option<IpAddr>) -> Result<IpAddr> {
    let sub = match requested {
        Some(a) => subnet_of(net, a)?,
        None => net
            .subnets
            .first()
            .ok_or_else(|| Error::Invalid(format!("network {} has no subnet", net.name)))?,
    };
    check_owner(owner)?;
    update(net, |st| pick(net, st, sub, owner, requested))?.ok_or_else(|| Error::NotFound(net.name.clone()))
}

/// Gives `owner` one address in each of the network's subnets (IPv4, and IPv6 with `--ipv6`),
/// in the order of [`Network::subnets`], taking the `requested` ones (`--ip`, `--ip6`) where
/// given. All or nothing: on an error no address is taken.
pub fn allocate_all(net: &Network, owner: &str, requested: &[IpAddr]) -> Result<Vec<IpAddr>> {
    check_owner(owner)?;
    let mut wanted: Vec<Option<IpAddr>> = vec![None; net.subnets.len()];
    for &a in requested {
        let i = net.subnets.iter().position(|s| s.subnet.contains(&a)).ok_or_else(|| not_in_subnets(a))?;
        if let Some(other) = wanted[i].replace(a) {
            return Err(Error::Invalid(format!(
                "addresses {other} and {a} requested in the same subnet {}",
                net.subnets[i].subnet
            )));
        }
    }
    let res = update(net, |st| {
        let mut out = Vec::new();
        let mut changed = false;
        for (sub, req) in net.subnets.iter().zip(wanted) {
            let (a, c) = pick(net, st, sub, owner, req)?;
            out.push(a);
            changed |= c;
        }
        Ok((out, changed))
    })?;
    res.ok_or_else(|| Error::NotFound(net.name.clone()))
}

fn check_owner(owner: &str) -> Result<()> {
    if owner.is_empty() {
        return Err(Error::Invalid("an address needs an owner".into()));
    }
    Ok(())
}

fn not_in_subnets(a: IpAddr) -> Error {
    Error::Invalid(format!("no configured subnet or ip-range contain the IP address {a}"))
}

fn subnet_of(net: &Network, a: IpAddr) -> Result<&Subnet> {
    net.subnets.iter().find(|s| s.subnet.contains(&a)).ok_or_else(|| not_in_subnets(a))
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, v6: bool) -> Option<IpAddr> {
    if v6 {
        Some(IpAddr::V6(Ipv6Addr::from(v)))
    } else {
        u32::try_from(v).ok().map(|v| IpAddr::V4(Ipv4Addr::from(v)))
    }
}

/// Picks `owner`'s address in `sub`; the bool says whether the state changed.
fn pick(net: &Network, st: &mut State, sub: &Subnet, owner: &str, requested: Option<IpAddr>) -> Result<(IpAddr, bool)> {
    if let Some((&have, _)) = st.addresses.iter().find(|(a, o)| o.as_str() == owner && sub.subnet.contains(*a)) {
        return match requested {
            Some(r) if r != have => Err(Error::Conflict(format!("{owner} already has address {have} on network {}", net.name))),
            _ => Ok((have, false)),
        };
    }
    if let Some(r) = requested {
        if is_reserved(&sub.subnet, r) {
            return Err(Error::Invalid(format!(
                "address {r} is the network or broadcast address of subnet {}",
                sub.subnet
            )));
        }
        if r == sub.gateway || st.addresses.contains_key(&r) {
            return Err(Error::Conflict(format!("Address already in use: {r} on network {}", net.name)));
        }
        st.addresses.insert(r, owner.to_string());
        return Ok((r, true));
    }
    let v6 = matches!(sub.subnet, IpNet::V6(_));
    let range = sub.ip_range.unwrap_or(sub.subnet);
    let end = to_u128(range.broadcast());
    let mut c = to_u128(range.network());
    // Each step past a candidate passes an address in use, the gateway, or the subnet's network
    // or broadcast address: the scan is bounded by the number of addresses handed out.
    while c <= end {
        if let Some(a) = from_u128(c, v6) {
            if a != sub.gateway && !is_reserved(&sub.subnet, a) && !st.addresses.contains_key(&a) {
                st.addresses.insert(a, owner.to_string());
                return Ok((a, true));
            }
        }
        c = match c.checked_add(1) {
            Some(c) => c,
            None => break,
        };
    }
    Err(if v6 {
        Error::ExhaustedV6(net.name.clone())
    } else {
        Error::Exhausted(net.name.clone())
    })
}

/// Frees every address of `owner` on the network; returns them. A removed network has none.
pub fn release(net: &Network, owner: &str) -> Result<Vec<IpAddr>> {
    let res = update(net, |st| {
        let freed: Vec<IpAddr> = st.addresses.iter().filter(|(_, o)| o.as_str() == owner).map(|(a, _)| *a).collect();
        for a in &freed {
            st.addresses.remove(a);
        }
        let changed = !freed.is_empty();
        Ok((freed, changed))
    })?;
    Ok(res.unwrap_or_default())
}

/// The addresses handed out on the network: address -> owner.
pub fn owned(net: &Network) -> Result<BTreeMap<IpAddr, String>> {
    let Some(p) = paths(net) else {
        return Ok(BTreeMap::new());
    };
    let _lock = fsutil::lock(&p.lock, false)?;
    Ok(read(&p)?.addresses)
}

/// Crash recovery: frees the addresses of owners `live` says are gone; returns what it freed.
pub fn recover(net: &Network, live: &dyn Fn(&str) -> bool) -> Result<Vec<(IpAddr, String)>> {
    let res = update(net, |st| {
        let dead: Vec<(IpAddr, String)> = st.addresses.iter().filter(|(_, o)| !live(o)).map(|(a, o)| (*a, o.clone())).collect();
        for (a, _) in &dead {
            st.addresses.remove(a);
        }
        let changed = !dead.is_empty();
        Ok((dead, changed))
    })?;
    Ok(res.unwrap_or_default())
}

/// The MAC address for an interface with address `ip`, Docker's way: `02:42` then the last four
/// bytes of the address (locally administered, unicast).
pub fn mac_for(ip: IpAddr) -> [u8; 6] {
    let b = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x42, b[0], b[1], b[2], b[3]]
}

/// `02:42:ac:11:00:02`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests;
