//! Undoing a container's network: idempotent, and complete after any crash (what the record
//! names is freed whether or not it still exists).

use skiff_net::ipam;
use skiff_net::netlink::Netlink;
use skiff_net::nft::Nft;

use super::from_net;
use super::setup::dns_dir;
use crate::record::ContainerRecord;
use crate::Engine;

impl Engine {
    /// Frees one endpoint's address, DNS names and veth (idempotent).
    pub(crate) fn net_release_one(&self, rec: &mut ContainerRecord, name: &str) {
        let id = rec.id.clone();
        let has_veth = rec.network_settings.networks.get(name).is_some_and(|e| !e.host_interface.is_empty());
        // The veth goes with the container's namespace (the kernel deletes it once the last
        // process in it is gone, off our path: an explicit delete costs 10-30 ms), unless the
        // namespace lives on: a disconnect from a running container, or another container
        // joined it (--network container:).
        let ns_lives = has_veth && !self.rootless && ((rec.state.status.is_active() && self.init_alive(rec)) || self.has_joiners(&id));
        let Some(ep) = rec.network_settings.networks.get_mut(name) else { return };
        // Nothing taken (never started, or released already): nothing to free. An address a
        // crashed start took without recording it is recovered when the network runs out.
        if ep.ip_address.is_empty() && ep.global_ipv6_address.is_empty() && ep.host_interface.is_empty() {
            return;
        }
        if let Ok(net) = self.networks().and_then(|n| n.get(&ep.network_id).map_err(from_net)) {
            if !net.is_default() {
                if let Err(e) = skiff_dns::remove(&dns_dir(&net), &id) {
                    tracing::warn!("network {}: DNS: {e}", net.name);
                }
            }
            if let Err(e) = ipam::release(&net, &id) {
                tracing::warn!("network {}: {e}", net.name);
            }
        }
        if ns_lives {
            if let Ok(mut nl) = Netlink::open() {
                if nl.link_index(&ep.host_interface).ok().flatten().is_some() {
                    let _ = nl.delete_link(&ep.host_interface);
                    skiff_core::timing::mark("network: veth deleted");
                }
            }
        }
        let keep = crate::record::Endpoint {
            ipam_config: ep.ipam_config.take(),
            aliases: std::mem::take(&mut ep.aliases),
            network_id: std::mem::take(&mut ep.network_id),
            requested_mac: std::mem::take(&mut ep.requested_mac),
            interface: std::mem::take(&mut ep.interface),
            ..Default::default()
        };
        *ep = keep;
    }

    fn init_alive(&self, rec: &ContainerRecord) -> bool {
        Engine::alive(rec.state.pid, 0)
    }

    /// Whether a running container shares this one's network namespace.
    fn has_joiners(&self, id: &str) -> bool {
        let mode = format!("container:{id}");
        self.list()
            .unwrap_or_default()
            .iter()
            .any(|r| r.host_config.network_mode == mode && r.state.status.is_active())
    }

    /// Undoes a container's network (it has stopped, or its start failed): idempotent, and
    /// complete after any crash (what the record names is freed whether or not it still exists).
    pub(crate) fn net_teardown(&self, rec: &mut ContainerRecord) {
        let names: Vec<String> = rec.network_settings.networks.keys().cloned().collect();
        for n in names {
            self.net_release_one(rec, &n);
        }
        skiff_core::timing::mark("network: endpoints released");
        let published = rec.network_settings.ports.values().any(|v| v.as_ref().is_some_and(|b| !b.is_empty()));
        if published && !self.rootless {
            if let Err(e) = Nft::new().unpublish(&rec.id) {
                tracing::warn!("unpublish {}: {e}", rec.id);
            }
            skiff_core::timing::mark("network: ports unpublished");
        }
        if let Some(a) = rec.network_settings.rootless_net.take() {
            if let Err(e) = skiff_net::rootless::detach(&a) {
                tracing::warn!("rootless network of {}: {e}", rec.id);
            }
        }
        rec.network_settings.ports.clear();
        rec.network_settings.sandbox_key.clear();
    }
}
