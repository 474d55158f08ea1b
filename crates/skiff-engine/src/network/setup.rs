//! A container's network at start and stop: addresses, the bridge and its rules, published
//! ports and DNS names (in the engine, before the container exists: [`Engine::net_prepare`]),
//! the veth pairs (between the runtime's create and start: [`Engine::net_attach`]). Published
//! ports are in `publish.rs`, rootless networks in `rootless.rs`, the undoing of all of it in
//! `teardown.rs`.

use std::net::IpAddr;
use std::os::fd::AsFd;

use skiff_net::config::Network;
use skiff_net::ipam;
use skiff_net::netlink::{IfaceConfig, Netlink, VethSpec};
use skiff_net::nft::Nft;

use super::{etc, from_net, mode, Mode};
use crate::error::{Error, Result};
use crate::record::ContainerRecord;
use crate::Engine;

/// One veth to make once the container's namespace exists.
#[derive(Debug, Clone)]
pub struct Veth {
    host_if: String,
    ctr_if: String,
    bridge: String,
    addrs: Vec<(IpAddr, u8)>,
    gateways: Vec<IpAddr>,
    mac: [u8; 6],
}

/// What the container's start does once its namespaces exist, before its program runs.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub(crate) veths: Vec<Veth>,
    /// `container:OTHER`: the namespace to join.
    pub(crate) join: Option<String>,
    /// Rootless: the ports pasta/slirp4netns forward.
    pub(crate) rootless: Option<Vec<skiff_net::rootless::PortMap>>,
}

/// The host end of a container's veth: `sk` + 10 hex digits of its id + the interface number.
fn host_ifname(id: &str, iface: &str) -> String {
    format!("sk{}{}", &id[..10.min(id.len())], iface.trim_start_matches("eth"))
}

pub(super) fn dns_dir(net: &Network) -> std::path::PathBuf {
    net.state_dir().join("dns")
}

impl Engine {
    /// Before the container is created: its addresses, bridges, ports, DNS names, hosts and
    /// resolv.conf. On an error nothing stays taken (the caller's teardown frees the rest).
    pub(crate) fn net_prepare(&self, rec: &mut ContainerRecord) -> Result<Plan> {
        let dir = self.layout.container(&rec.id);
        match mode(&rec.host_config.network_mode) {
            Mode::None | Mode::Host => Ok(Plan::default()),
            Mode::Container(other) => {
                let other = other.to_string();
                let mut o = self
                    .load(&other)
                    .map_err(|_| Error::Invalid(format!("cannot join network of a non existent container: {other}")))?;
                self.live(&mut o);
                if o.state.status != crate::Status::Running {
                    return Err(Error::Conflict(format!("cannot join network of a non running container: {}", o.name)));
                }
                let od = self.layout.container(&o.id);
                for (from, to) in [(od.hosts(), dir.hosts()), (od.resolv(), dir.resolv()), (od.hostname(), dir.hostname())] {
                    std::fs::copy(&from, &to).map_err(|e| Error::io("copy", &from, e))?;
                }
                Ok(Plan {
                    join: Some(format!("/proc/{}/ns/net", o.state.pid)),
                    ..Default::default()
                })
            }
            Mode::Bridge if self.rootless => {
                let ports = self.resolve_ports(rec, None)?;
                let maps = ports
                    .iter()
                    .map(|p| skiff_net::rootless::PortMap {
                        host_ip: p.host_ip,
                        host_port: p.host_port,
                        container_port: p.container_port,
                        proto: p.proto,
                    })
                    .collect();
                Ok(Plan {
                    rootless: Some(maps),
                    ..Default::default()
                })
            }
            Mode::Bridge => {
                let mut names: Vec<(String, String)> = rec.network_settings.networks.iter().map(|(n, e)| (e.interface.clone(), n.clone())).collect();
                names.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
                let mut plan = Plan::default();
                for (_, name) in &names {
                    plan.veths.push(self.net_prepare_one(rec, name)?.veths.remove(0));
                }
                self.publish(rec)?;
                skiff_core::timing::mark("network: ports published");
                self.write_net_etc(rec)?;
                Ok(plan)
            }
        }
    }

    /// One endpoint: the bridge, an address, the DNS names.
    pub(crate) fn net_prepare_one(&self, rec: &mut ContainerRecord, name: &str) -> Result<Plan> {
        let first = rec
            .network_settings
            .networks
            .values()
            .map(|e| e.interface.as_str())
            .min_by_key(|i| (i.len(), *i))
            .unwrap_or("eth0")
            .to_string();
        let id = rec.id.clone();
        let ep = rec
            .network_settings
            .networks
            .get_mut(name)
            .ok_or_else(|| Error::Other(format!("no endpoint for network {name}")))?;
        let net = self
            .networks()?
            .get(&ep.network_id)
            .map_err(|_| Error::Invalid(format!("network {name} not found")))?;
        self.ensure_bridge(&net)?;
        skiff_core::timing::mark("network: bridge checked");
        let mut want: Vec<IpAddr> = Vec::new();
        if let Some(c) = &ep.ipam_config {
            want.extend(c.ipv4.parse::<IpAddr>().ok());
            want.extend(c.ipv6.parse::<IpAddr>().ok());
        }
        let ips = match ipam::allocate_all(&net, &id, &want) {
            Err(skiff_net::Error::Exhausted(_) | skiff_net::Error::ExhaustedV6(_)) => {
                // Addresses of containers that crashed without their cleanup: freed, then again.
                let freed = ipam::recover(&net, &|owner| owner == id || self.owner_live(owner)).map_err(from_net)?;
                tracing::info!("network {}: recovered {} addresses", net.name, freed.len());
                ipam::allocate_all(&net, &id, &want)
            }
            other => other,
        }
        .map_err(from_net)?;
        let mut addrs = Vec::new();
        let mut gateways = Vec::new();
        for ip in &ips {
            let sub = net
                .subnets
                .iter()
                .find(|s| s.subnet.contains(ip))
                .ok_or_else(|| Error::Other(format!("{ip} in no subnet of {}", net.name)))?;
            addrs.push((*ip, sub.subnet.prefix_len()));
            if ip.is_ipv4() {
                ep.ip_address = ip.to_string();
                ep.ip_prefix_len = sub.subnet.prefix_len();
                ep.gateway = sub.gateway.to_string();
            } else {
                ep.global_ipv6_address = ip.to_string();
                ep.global_ipv6_prefix_len = sub.subnet.prefix_len();
                ep.ipv6_gateway = sub.gateway.to_string();
            }
            if ep.interface == first && !net.internal {
                gateways.push(sub.gateway);
            }
        }
        skiff_core::timing::mark("network: address allocated");
        let first_ip = *ips.first().ok_or_else(|| Error::Invalid(format!("network {} has no subnet", net.name)))?;
        let mac = match ep.requested_mac.as_str() {
            "" => ipam::mac_for(first_ip),
            m => super::parse_mac(m)?,
        };
        ep.mac_address = ipam::format_mac(&mac);
        ep.host_interface = host_ifname(&id, &ep.interface);
        ep.endpoint_id = crate::engine::random_id();
        let veth = Veth {
            host_if: ep.host_interface.clone(),
            ctr_if: ep.interface.clone(),
            bridge: net.bridge.clone(),
            addrs,
            gateways,
            mac,
        };
        if !net.is_default() {
            let mut names = vec![rec.name.clone(), id[..12].to_string()];
            names.extend(ep.aliases.iter().cloned());
            let entry = skiff_dns::Entry {
                container_id: id.clone(),
                names,
                ips: ips.clone(),
            };
            let listen: Vec<IpAddr> = net.subnets.iter().map(|s| s.gateway).collect();
            skiff_dns::add(&dns_dir(&net), &listen, &self.dns_server, &entry).map_err(|e| Error::Other(format!("network {}: DNS: {e}", net.name)))?;
        }
        Ok(Plan {
            veths: vec![veth],
            ..Default::default()
        })
    }

    /// The bridge up with its address, and its masquerade/forward rules: checked on every start
    /// (~0.3 ms), made when missing (the first container, or after a reboot or a flush).
    fn ensure_bridge(&self, net: &Network) -> Result<()> {
        let mut nl = Netlink::open().map_err(from_net)?;
        let nft = Nft::new();
        let up = nl.link(&net.bridge).map_err(from_net)?.is_some_and(|l| l.up);
        if up && nft.network_present(&net.bridge).map_err(from_net)? {
            return Ok(());
        }
        let _l = self.bridge_lock(net)?;
        let addrs: Vec<(IpAddr, u8)> = net.subnets.iter().map(|s| (s.gateway, s.subnet.prefix_len())).collect();
        nl.ensure_bridge(&net.bridge, &addrs, 1500).map_err(from_net)?;
        nft.ensure_base().map_err(from_net)?;
        let subnets: Vec<ipnet::IpNet> = net.subnets.iter().map(|s| s.subnet).collect();
        nft.add_network(&net.bridge, &subnets, net.internal).map_err(from_net)
    }

    /// The container's `/etc/hosts` and `/etc/resolv.conf` for its networks (written in place:
    /// a running container sees the new content through its bind mounts).
    pub(crate) fn write_net_etc(&self, rec: &ContainerRecord) -> Result<()> {
        let dir = self.layout.container(&rec.id);
        let hc = &rec.host_config;
        let mut ours = Vec::new();
        let nets = self.networks()?;
        for e in rec.network_settings.networks.values() {
            if let Ok(n) = nets.get(&e.network_id) {
                if !n.is_default() {
                    ours.extend(n.subnets.iter().map(|s| s.gateway).filter(|g| g.is_ipv4()));
                }
            }
        }
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let flags = etc::DnsFlags {
            servers: &hc.dns,
            search: &hc.dns_search,
            options: &hc.dns_options,
        };
        let resolv = etc::resolv_conf(&host, &ours, &flags);
        std::fs::write(dir.resolv(), resolv).map_err(|e| Error::io("write", dir.resolv(), e))?;
        self.rewrite_hosts(rec)
    }

    /// `/etc/hosts` with the container's current addresses and `--add-host` entries.
    pub(crate) fn rewrite_hosts(&self, rec: &ContainerRecord) -> Result<()> {
        let dir = self.layout.container(&rec.id);
        let mut eps: Vec<&crate::record::Endpoint> = rec.network_settings.networks.values().collect();
        eps.sort_by_key(|e| (e.interface.len(), e.interface.clone()));
        let own: Vec<IpAddr> = eps
            .iter()
            .flat_map(|e| [e.ip_address.parse().ok(), e.global_ipv6_address.parse().ok()])
            .flatten()
            .collect();
        let gw = eps.first().map(|e| e.gateway.clone()).unwrap_or_default();
        let extra: Vec<(String, String)> = rec
            .host_config
            .extra_hosts
            .iter()
            .filter_map(|h| etc::parse_add_host(h))
            .map(|(n, ip)| if ip == "host-gateway" { (n, gw.clone()) } else { (n, ip) })
            .filter(|(_, ip)| !ip.is_empty())
            .collect();
        let text = etc::hosts(&rec.config.hostname, &own, &extra);
        std::fs::write(dir.hosts(), text).map_err(|e| Error::io("write", dir.hosts(), e))
    }

    /// In the container's start, once its namespaces exist (init `pid`), before its program
    /// runs: the veth pairs (or rootless: pasta/slirp4netns).
    pub(crate) fn net_attach(&self, plan: &Plan, rec: &ContainerRecord, pid: i32) -> Result<()> {
        if plan.veths.is_empty() && plan.rootless.is_none() {
            return Ok(());
        }
        let ns_path = format!("/proc/{pid}/ns/net");
        if let Some(ports) = &plan.rootless {
            return self.rootless_attach(rec, pid, ports);
        }
        let ns = std::fs::File::open(&ns_path).map_err(|e| Error::io("open", &ns_path, e))?;
        let mut nl = Netlink::open().map_err(from_net)?;
        for v in &plan.veths {
            // A veth of this container's previous run whose namespace the kernel has not torn
            // down yet (a quick restart): it goes now.
            if nl.link_index(&v.host_if).map_err(from_net)?.is_some() {
                nl.delete_link(&v.host_if).map_err(from_net)?;
            }
            let bridge = nl
                .link_index(&v.bridge)
                .map_err(from_net)?
                .ok_or_else(|| Error::Other(format!("bridge {} is gone", v.bridge)))?;
            let spec = VethSpec {
                host_name: &v.host_if,
                peer_name: &v.ctr_if,
                peer_netns: ns.as_fd(),
                mtu: 1500,
                bridge: Some(bridge),
                peer_mac: Some(v.mac),
            };
            let iface = IfaceConfig {
                name: &v.ctr_if,
                rename_to: None,
                mac: Some(v.mac),
                addrs: &v.addrs,
                gateways: &v.gateways,
            };
            nl.connect_container(&spec, &iface).map_err(from_net)?;
            nl.set_hairpin(&v.host_if).map_err(from_net)?;
        }
        Ok(())
    }

    /// After a start: what the rootless helper's attach recorded.
    pub(crate) fn net_started(&self, rec: &mut ContainerRecord) {
        let path = self.layout.container(&rec.id).path().join("rootless-net.json");
        if let Ok(b) = std::fs::read(&path) {
            rec.network_settings.rootless_net = serde_json::from_slice(&b).ok();
            let _ = std::fs::remove_file(&path);
            // What pasta/slirp4netns gave, where Docker's tools look for it.
            if let (Some(a), Some(ep)) = (&rec.network_settings.rootless_net, rec.network_settings.networks.values_mut().next()) {
                ep.ip_address = a.container_ip.map(|i| i.to_string()).unwrap_or_default();
                ep.gateway = a.gateway.map(|i| i.to_string()).unwrap_or_default();
            }
        }
        if rec.state.pid > 0 && mode(&rec.host_config.network_mode) != Mode::Host {
            rec.network_settings.sandbox_key = format!("/proc/{}/ns/net", rec.state.pid);
        }
    }
}
