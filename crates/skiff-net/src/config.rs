//! Network definitions, Docker's model: one JSON document per network in
//! `<root>/networks/<name>.json`, the network's state (IPAM) in `<root>/networks/<id>/`.
//! Writes are atomic (tmp + rename) under an exclusive `flock` of `<root>/networks/lock`; reads
//! take it shared. The default network `bridge` (Linux bridge `skiff0`, 172.17.0.0/16 unless a
//! host route is there) is made on first use.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
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

mod subnets;

pub use subnets::default_pools;
pub(crate) use subnets::is_reserved;
use subnets::{check_free, first_host, free_pool, parse_subnets};

#[cfg(test)]
mod tests;
