//! Published ports: `-p`/`-P` resolved to host ports (checked against the host's sockets and
//! our other containers' rules) and added as DNAT rules, under one lock.

use std::net::IpAddr;

use skiff_net::nft::{Nft, Proto, Published};

use super::from_net;
use crate::error::{Error, Result};
use crate::record::{ContainerRecord, PortBinding};
use crate::Engine;

fn proto(p: &str) -> Proto {
    if p == "udp" {
        Proto::Udp
    } else {
        Proto::Tcp
    }
}

impl Engine {
    /// Resolves `-p`/`-P` to host ports for a container reached at `ip` (None: rootless) and
    /// records them in `NetworkSettings.Ports`. A taken port fails with Docker's message.
    pub(crate) fn resolve_ports(&self, rec: &mut ContainerRecord, ip: Option<IpAddr>) -> Result<Vec<Published>> {
        let hc = &rec.host_config;
        let mut want = hc.port_bindings.clone();
        if hc.publish_all_ports {
            for k in rec.config.exposed_ports.keys() {
                want.entry(k.clone()).or_insert_with(|| vec![PortBinding::default()]);
            }
        }
        let mut ports: std::collections::BTreeMap<String, Option<Vec<PortBinding>>> = rec.config.exposed_ports.keys().map(|k| (k.clone(), None)).collect();
        let nft = (!self.rootless).then(Nft::new);
        let mut out = Vec::new();
        for (key, binds) in &want {
            let Some((cport, p)) = crate::ports::split_key(key) else { continue };
            let proto = proto(p);
            let mut got = Vec::new();
            for b in binds {
                let host_ip: Option<IpAddr> = b.host_ip.parse().ok();
                let host_port = if b.host_port.is_empty() {
                    self.pick_port(nft.as_ref(), host_ip, proto, &out)?
                } else {
                    let hp: u16 = b.host_port.parse().map_err(|_| Error::Invalid(format!("invalid host port {}", b.host_port)))?;
                    let taken_here = out.iter().any(|q: &Published| q.host_port == hp && q.proto == proto);
                    if taken_here {
                        return Err(Error::Conflict(format!(
                            "Bind for {}:{hp} failed: port is already allocated",
                            host_ip.map_or("0.0.0.0".into(), |a| a.to_string())
                        )));
                    }
                    match &nft {
                        Some(n) => n.check_port(host_ip, hp, proto).map_err(from_net)?,
                        None if !skiff_net::nft::port_is_free(host_ip, hp, proto) => {
                            return Err(Error::Conflict(format!(
                                "Bind for {}:{hp} failed: port is already allocated",
                                host_ip.map_or("0.0.0.0".into(), |a| a.to_string())
                            )))
                        }
                        None => {}
                    }
                    hp
                };
                out.push(Published {
                    host_ip: host_ip.filter(|a| !a.is_unspecified()),
                    host_port,
                    container_ip: ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
                    container_port: cport,
                    proto,
                });
                got.push(PortBinding {
                    host_ip: host_ip.map_or("0.0.0.0".into(), |a| a.to_string()),
                    host_port: host_port.to_string(),
                });
            }
            ports.insert(key.clone(), Some(got));
        }
        rec.network_settings.ports = ports;
        Ok(out)
    }

    /// A free host port: free on the host and not published by a container of ours.
    fn pick_port(&self, nft: Option<&Nft>, host_ip: Option<IpAddr>, proto: Proto, taken: &[Published]) -> Result<u16> {
        for _ in 0..64 {
            let p = skiff_net::nft::free_port(host_ip, proto).map_err(from_net)?;
            if taken.iter().any(|q| q.host_port == p && q.proto == proto) {
                continue;
            }
            if nft.is_none_or(|n| n.check_port(host_ip, p, proto).is_ok()) {
                return Ok(p);
            }
        }
        Err(Error::Conflict(format!("no free {} host port found", proto.as_str())))
    }

    /// Published ports' DNAT rules, to the first interface's IPv4 address. The check for taken
    /// ports and the adding of ours happen under one lock: two starts never get the same port.
    pub(crate) fn publish(&self, rec: &mut ContainerRecord) -> Result<()> {
        if rec.host_config.port_bindings.is_empty() && !rec.host_config.publish_all_ports {
            rec.network_settings.ports = rec.config.exposed_ports.keys().map(|k| (k.clone(), None)).collect();
            return Ok(());
        }
        let ip = rec
            .network_settings
            .networks
            .values()
            .min_by_key(|e| (e.interface.len(), e.interface.clone()))
            .and_then(|e| e.ip_address.parse::<IpAddr>().ok());
        let Some(ip) = ip else {
            return Err(Error::Invalid("published ports need an IPv4 address on the container's first network".into()));
        };
        let _l = crate::lock::exclusive(&self.layout.root.join("networks").join(".ports.lock"))?;
        let ports = self.resolve_ports(rec, Some(ip))?;
        Nft::new().publish(&rec.id, &ports).map_err(from_net)
    }
}
