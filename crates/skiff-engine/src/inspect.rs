//! `inspect`: a container in the JSON shape of `docker inspect` (the fields scripts read).

use serde_json::{json, Value};

use crate::record::{ContainerRecord, Status};
use crate::Engine;

impl Engine {
    pub fn inspect(&self, rec: &ContainerRecord) -> Value {
        let dir = self.layout.container(&rec.id);
        let s = &rec.state;
        let argv = rec.argv();
        let (path, args) = match argv.split_first() {
            Some((p, a)) => (p.clone(), a.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let lowers = self
            .images
            .resolve(&rec.image_id)
            .ok()
            .and_then(|img| self.images.layer_dirs(&img).ok())
            .unwrap_or_default();
        let lower = lowers.iter().rev().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>().join(":");
        let mut hc = serde_json::to_value(&rec.host_config).unwrap_or_default();
        if rec.host_config.restart_policy.name == "no" {
            hc["RestartPolicy"]["Name"] = json!("no");
        }
        json!({
            "Id": rec.id,
            "Created": rec.created,
            "Path": path,
            "Args": args,
            "State": {
                "Status": s.status.as_str(),
                "Running": matches!(s.status, Status::Running | Status::Paused),
                "Paused": s.status == Status::Paused,
                "Restarting": s.status == Status::Restarting,
                "OOMKilled": s.oom_killed,
                "Dead": s.status == Status::Dead,
                "Pid": if s.status.is_active() { s.pid } else { 0 },
                "ExitCode": s.exit_code,
                "Error": s.error,
                "StartedAt": s.started_at,
                "FinishedAt": s.finished_at,
            },
            "Image": rec.image_id,
            "ResolvConfPath": dir.resolv(),
            "HostnamePath": dir.hostname(),
            "HostsPath": dir.hosts(),
            "LogPath": dir.log(&rec.id),
            "Name": format!("/{}", rec.name),
            "RestartCount": rec.restart_count,
            "Driver": if rec.is_vfs() { "vfs" } else { "overlay2" },
            "Platform": "linux",
            "HostConfig": hc,
            "GraphDriver": {
                "Name": if rec.is_vfs() { "vfs" } else { "overlay2" },
                "Data": {
                    "LowerDir": lower,
                    "UpperDir": dir.upper(),
                    "WorkDir": dir.work(),
                    "MergedDir": dir.merged(),
                }
            },
            "Mounts": rec.mounts,
            "Config": rec.config,
            "NetworkSettings": network_settings(rec),
        })
    }
}

/// Docker's `NetworkSettings`, with the legacy top-level fields of the first network.
fn network_settings(rec: &ContainerRecord) -> serde_json::Value {
    let ns = &rec.network_settings;
    let mut v = serde_json::to_value(ns).unwrap_or_default();
    let first = ns.networks.values().min_by_key(|e| (e.interface.len(), e.interface.clone()));
    let get = |f: fn(&crate::record::Endpoint) -> String| first.map(f).unwrap_or_default();
    v["IPAddress"] = get(|e| e.ip_address.clone()).into();
    v["IPPrefixLen"] = first.map_or(0, |e| e.ip_prefix_len).into();
    v["Gateway"] = get(|e| e.gateway.clone()).into();
    v["MacAddress"] = get(|e| e.mac_address.clone()).into();
    v["GlobalIPv6Address"] = get(|e| e.global_ipv6_address.clone()).into();
    v["EndpointID"] = get(|e| e.endpoint_id.clone()).into();
    if ns.networks.is_empty() {
        let mode = rec.host_config.network_mode.clone();
        if !mode.starts_with("container:") {
            v["Networks"] = serde_json::json!({ mode: {} });
        }
    }
    v
}
