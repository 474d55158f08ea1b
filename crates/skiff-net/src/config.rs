//! Network definitions, Docker's model: one JSON document per network in
//! `<root>/networks/<name>.json`, the network's state (IPAM) in `<root>/networks/<id>/`.
//! Writes are atomic (tmp + rename) under an exclusive `flock` of `<root>/networks/lock`; reads
//! take it shared. The default network `bridge` (Linux bridge `skiff0`, 172.17.0.0/16 unless a
//! host route is there) is made on first use.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::routes::{self, HostRoute};

/// The default network's name, as in Docker.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's Linux bridge.
pub const DEFAULT_BRIDGE: &str = "skiff0";
/// Names that are Docker's predefined networks (`host` and `none` have no definition file).
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// One subnet of a network, with its gateway (the bridge's address) and the optional range
/// addresses are handed out from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    #[serde(rename = "Subnet")]
    pub subnet: IpNet,
    #[serde(rename = "Gateway")]
    pub gateway: IpAddr,
    #[serde(rename = "IPRange", default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
}

/// A network definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    #[serde(rename = "Name")]
    pub name: String,
    /// 64 hex digits, random.
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339, UTC.
    #[serde(rename = "Created")]
    pub created: String,
    /// Always `bridge` for now.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// The Linux bridge: `skiff0` for the default network, else `skbr-` + 8 hex of the id.
    #[serde(rename = "Bridge")]
    pub bridge: String,
    /// One IPv4 subnet, first, then with `--ipv6` one IPv6 subnet.
    #[serde(rename = "Subnets")]
    pub subnets: Vec<Subnet>,
    #[serde(rename = "Internal", default)]
    pub internal: bool,
    #[serde(rename = "EnableIPv6", default)]
    pub ipv6: bool,
    #[serde(rename = "Labels", default)]
    pub labels: BTreeMap<String, String>,
    /// `<root>/networks/<id>`: the network's state (IPAM); set when loaded.
    #[serde(skip)]
    pub(crate) state_dir: PathBuf,
}

impl Network {
    /// `<root>/networks/<id>`, where the network's IPAM file and lock live.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Whether this is the default `bridge` network.
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }

    /// The IPv4 subnet.
    pub fn subnet_v4(&self) -> Option<&Subnet> {
        self.subnets.iter().find(|s| matches!(s.subnet, IpNet::V4(_)))
    }

    /// The IPv6 subnet, with `--ipv6`.
    pub fn subnet_v6(&self) -> Option<&Subnet> {
        self.subnets.iter().find(|s| matches!(s.subnet, IpNet::V6(_)))
    }
}

/// What `skiff network create` asks for, as typed (parsed and checked by [`Networks::create`]).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    /// `None` or `bridge`.
    pub driver: Option<String>,
    /// `--subnet`, each matched with the `--gateway` and `--ip-range` inside it.
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    pub ip_ranges: Vec<String>,
    pub internal: bool,
    pub ipv6: bool,
    pub labels: BTreeMap<String, String>,
}

/// The network store, `<root>/networks/`.
#[derive(Debug, Clone)]
pub struct Networks {
    dir: PathBuf,
    routes: Option<Vec<HostRoute>>,
}

impl Networks {
    /// Opens (making it if missing) the store under `root`.
    pub fn open(root: &Path) -> Result<Networks> {
        let dir = root.join("networks");
        fsutil::mkdir(&dir)?;
        Ok(Networks { dir, routes: None })
    }

    /// Uses these host routes instead of reading `/proc/net` (tests, or a caller that read them).
    pub fn with_host_routes(mut self, routes: Vec<HostRoute>) -> Networks {
        self.routes = Some(routes);
        self
    }

    /// `<root>/networks`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self, exclusive: bool) -> Result<fsutil::Lock> {
        fsutil::lock(&self.dir.join("lock"), exclusive)
    }

    fn host_routes(&self) -> Result<Vec<HostRoute>> {
        match &self.routes {
            Some(r) => Ok(r.clone()),
            None => routes::read_host_routes(Path::new("/proc/net")),
        }
    }

    /// Creates a network (and the default one first, so user networks never take its pool).
    pub fn create(&self, req: &CreateRequest) -> Result<Network> {
        validate_name(&req.name)?;
        if PREDEFINED.contains(&req.name.as_str()) {
            return Err(Error::Conflict(format!("network with name {} already exists", req.name)));
        }
        match req.driver.as_deref() {
            None | Some("bridge") => {}
            Some(d) => return Err(Error::Invalid(format!("plugin \"{d}\" not found"))),
        }
        let mut subnets = parse_subnets(req)?;
        let _lock = self.lock(true)?;
        let routes = self.host_routes()?;
        self.ensure_default_locked(&routes)?;
        if self.load(&req.name)?.is_some() {
            return Err(Error::Conflict(format!("network with name {} already exists", req.name)));
        }
        let existing = self.load_all()?;
        for s in &subnets {
            check_free(&s.subnet, &existing, &routes)?;
        }
        if !subnets.iter().any(|s| matches!(s.subnet, IpNet::V4(_))) {
            let subnet = free_pool(&existing, &routes)?;
            subnets.insert(
                0,
                Subnet {
                    subnet,
                    gateway: first_host(&subnet),
                    ip_range: None,
                },
            );
        }
        let id = loop {
            let id = fsutil::random_id()?;
            if existing.iter().all(|n| n.bridge != user_bridge(&id)) {
                break id;
            }
        };
        let net = Network {
            name: req.name.clone(),
            bridge: user_bridge(&id),
            id,
            created: fsutil::now_rfc3339(),
            driver: "bridge".into(),
            subnets,
            internal: req.internal,
            ipv6: req.ipv6,
            labels: req.labels.clone(),
            state_dir: PathBuf::new(),
        };
        self.store(net)
    }

    /// The default `bridge` network, made on first use: 172.17.0.0/16 gateway 172.17.0.1, or
    /// the first free default pool if a host route or another network is there.
    pub fn ensure_default(&self) -> Result<Network> {
        {
            let _lock = self.lock(false)?;
            if let Some(n) = self.load(DEFAULT_NETWORK)? {
                return Ok(n);
            }
        }
        let _lock = self.lock(true)?;
        self.ensure_default_locked(&self.host_routes()?)
    }

    fn ensure_default_locked(&self, routes: &[HostRoute]) -> Result<Network> {
        if let Some(n) = self.load(DEFAULT_NETWORK)? {
            return Ok(n);
        }
        let subnet = free_pool(&self.load_all()?, routes)?;
        let net = Network {
            name: DEFAULT_NETWORK.into(),
            id: fsutil::random_id()?,
            created: fsutil::now_rfc3339(),
            driver: "bridge".into(),
            bridge: DEFAULT_BRIDGE.into(),
            subnets: vec![Subnet {
                subnet,
                gateway: first_host(&subnet),
                ip_range: None,
            }],
            internal: false,
            ipv6: false,
            labels: BTreeMap::new(),
            state_dir: PathBuf::new(),
        };
        self.store(net)
    }

    /// Writes a new network: its state directory first, then its definition (the commit point).
    fn store(&self, mut net: Network) -> Result<Network> {
        net.state_dir = self.dir.join(&net.id);
        fsutil::mkdir(&net.state_dir)?;
        let data = serde_json::to_vec_pretty(&net).map_err(|e| Error::Invalid(format!("network {}: {e}", net.name)))?;
        fsutil::write_atomic(&self.def_path(&net.name), &self.dir.join(format!(".{}.json.tmp", net.name)), &data)?;
        Ok(net)
    }

    fn def_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Loads a network by exact name (no lock taken here).
    fn load(&self, name: &str) -> Result<Option<Network>> {
        if validate_name(name).is_err() {
            return Ok(None);
        }
        let path = self.def_path(name);
        let Some(data) = fsutil::read_opt(&path)? else {
            return Ok(None);
        };
        let mut net: Network = serde_json::from_slice(&data).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        net.state_dir = self.dir.join(&net.id);
        Ok(Some(net))
    }

    /// Every network, by name (no lock taken here); an unreadable definition is skipped.
    fn load_all(&self) -> Result<Vec<Network>> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| Error::io("read dir", &self.dir, e))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("read dir", &self.dir, e))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) else {
                continue;
            };
            match self.load(name) {
                Ok(Some(n)) => out.push(n),
                Ok(None) => {}
                Err(e) => tracing::warn!("skipping network {name}: {e}"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A network by exact name, full id, or unique id prefix (Docker's lookup).
    pub fn get(&self, name_or_id: &str) -> Result<Network> {
        let _lock = self.lock(false)?;
        self.resolve(name_or_id)
    }

    fn resolve(&self, key: &str) -> Result<Network> {
        if let Some(n) = self.load(key)? {
            return Ok(n);
        }
        if key.is_empty() || !key.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::NotFound(key.to_string()));
        }
        let mut found: Vec<Network> = self.load_all()?.into_iter().filter(|n| n.id.starts_with(key)).collect();
        match found.len() {
            0 => Err(Error::NotFound(key.to_string())),
            1 => Ok(found.remove(0)),
            n => Err(Error::Invalid(format!("network {key} is ambiguous ({n} matches found based on ID prefix)"))),
        }
    }

    /// Every network, sorted by name.
    pub fn list(&self) -> Result<Vec<Network>> {
        let _lock = self.lock(false)?;
        self.load_all()
    }

    /// Removes a network's definition and state (the caller has checked no container uses
    /// it, and removes its bridge). The default network cannot be removed.
    pub fn remove(&self, name_or_id: &str) -> Result<Network> {
        if PREDEFINED.contains(&name_or_id) {
            return Err(Error::Invalid(format!("{name_or_id} is a pre-defined network and cannot be removed")));
        }
        let _lock = self.lock(true)?;
        let net = self.resolve(name_or_id)?;
        if net.is_default() {
            return Err(Error::Invalid(format!("{} is a pre-defined network and cannot be removed", net.name)));
        }
        let path = self.def_path(&net.name);
        std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        match std::fs::remove_dir_all(&net.state_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", &net.state_dir, e)),
            _ => Ok(net),
        }
    }
}

/// `skbr-` + the id's first 8 hex digits (13 bytes, inside IFNAMSIZ).
fn user_bridge(id: &str) -> String {
    format!("skbr-{}", &id[..8.min(id.len())])
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (and short enough for a file name).
pub fn validate_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let ok = bytes.next().is_some_and(|c| c.is_ascii_alphanumeric()) && bytes.all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c)) && name.len() <= 200;
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid network name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// The first address after the network address: the default gateway.
fn first_host(net: &IpNet) -> IpAddr {
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
fn parse_subnets(req: &CreateRequest) -> Result<Vec<Subnet>> {
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
fn check_free(net: &IpNet, existing: &[Network], host: &[HostRoute]) -> Result<()> {
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
fn free_pool(existing: &[Network], host: &[HostRoute]) -> Result<IpNet> {
    default_pools()
        .find(|p| check_free(p, existing, host).is_ok())
        .ok_or_else(|| Error::Invalid("all predefined address pools have been fully subnetted".into()))
}

#[cfg(test)]
mod tests;
