//! Rootless containers' network: pasta or slirp4netns for the container's namespace.

use std::net::IpAddr;

use super::{etc, from_net};
use crate::error::{Error, Result};
use crate::record::ContainerRecord;
use crate::Engine;

impl Engine {
    /// Rootless: pasta (or slirp4netns, or the one `SKIFF_ROOTLESS_NETWORK` names) for the
    /// container's namespace; what it gave is left in
    /// `<dir>/rootless-net.json` for the engine to record, and resolv.conf points at its DNS.
    pub(crate) fn rootless_attach(&self, rec: &ContainerRecord, pid: i32, ports: &[skiff_net::rootless::PortMap]) -> Result<()> {
        let dir = self.layout.container(&rec.id);
        // SKIFF_ROOTLESS_NETWORK=pasta|slirp4netns picks the helper; unset: pasta if found,
        // else slirp4netns.
        let backend = match std::env::var("SKIFF_ROOTLESS_NETWORK").unwrap_or_default().as_str() {
            "" => None,
            "pasta" => Some(skiff_net::rootless::Backend::Pasta),
            "slirp4netns" => Some(skiff_net::rootless::Backend::Slirp4netns),
            other => return Err(Error::Invalid(format!("SKIFF_ROOTLESS_NETWORK={other}: expected pasta or slirp4netns"))),
        };
        let opts = skiff_net::rootless::Options {
            backend,
            ports: ports.to_vec(),
            log_file: Some(dir.path().join("rootless-net.log")),
            ..Default::default()
        };
        let a = skiff_net::rootless::attach(pid, &opts).map_err(from_net)?;
        let path = dir.path().join("rootless-net.json");
        if let Err(e) = std::fs::write(&path, serde_json::to_vec(&a).unwrap_or_default()) {
            let _ = skiff_net::rootless::detach(&a);
            return Err(Error::io("write", &path, e));
        }
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let hc = &rec.host_config;
        let ours: Vec<IpAddr> = a.dns.into_iter().collect();
        let mut text = etc::resolv_conf(
            &host,
            &ours,
            &etc::DnsFlags {
                servers: &hc.dns,
                search: &hc.dns_search,
                options: &hc.dns_options,
            },
        );
        // pasta's/slirp4netns's resolver address is no DNS of ours: no `dns.skiff` search.
        text = text.replace("search dns.skiff\n", "").replace("search dns.skiff ", "search ");
        std::fs::write(dir.resolv(), text).map_err(|e| Error::io("write", dir.resolv(), e))?;
        let own: Vec<IpAddr> = a.container_ip.into_iter().collect();
        let text = etc::hosts(&rec.config.hostname, &own, &[]);
        std::fs::write(dir.hosts(), text).map_err(|e| Error::io("write", dir.hosts(), e))
    }
}
