//! network create, ls, inspect, rm, prune, connect, disconnect; and `port`.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use skiff_engine::network::ConnectRequest;
use skiff_engine::Engine;
use skiff_net::config::Network;

use crate::cli::{NetworkCmd, NetworkCreateArgs};
use crate::table;
use crate::{fail, Result};

fn err(x: impl std::fmt::Display) -> crate::Failure {
    fail(x.to_string())
}

/// Docker's `network inspect` document.
pub fn inspect_value(e: &Engine, n: &Network) -> Value {
    let mut containers = serde_json::Map::new();
    for r in e.list().unwrap_or_default() {
        if !r.state.status.is_active() {
            continue;
        }
        for ep in r
            .network_settings
            .networks
            .values()
            .filter(|ep| ep.network_id == n.id && !ep.ip_address.is_empty())
        {
            containers.insert(
                r.id.clone(),
                json!({
                    "Name": r.name,
                    "EndpointID": ep.endpoint_id,
                    "MacAddress": ep.mac_address,
                    "IPv4Address": format!("{}/{}", ep.ip_address, ep.ip_prefix_len),
                    "IPv6Address": if ep.global_ipv6_address.is_empty() { String::new() } else { format!("{}/{}", ep.global_ipv6_address, ep.global_ipv6_prefix_len) },
                }),
            );
        }
    }
    let config: Vec<Value> = n
        .subnets
        .iter()
        .map(|s| {
            let mut v = json!({"Subnet": s.subnet.to_string(), "Gateway": s.gateway.to_string()});
            if let Some(r) = &s.ip_range {
                v["IPRange"] = json!(r.to_string());
            }
            v
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.ipv6,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": n.bridge},
        "Labels": n.labels,
    })
}

/// `host` and `none`, which have no definition file.
fn builtin(name: &str) -> Value {
    json!({"Name": name, "Id": name, "Scope": "local", "Driver": name, "EnableIPv6": false, "Internal": false, "IPAM": {"Driver": "default", "Config": []}, "Containers": {}, "Labels": {}})
}

fn create(e: &Engine, a: NetworkCreateArgs) -> Result<i32> {
    if e.rootless {
        return Err(fail("network create: rootless containers use pasta/slirp4netns; user networks need root"));
    }
    let labels: BTreeMap<String, String> = a
        .labels
        .iter()
        .map(|l| l.split_once('=').map_or((l.clone(), String::new()), |(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let req = skiff_net::config::CreateRequest {
        name: a.name.clone(),
        driver: Some(a.driver),
        subnets: a.subnet,
        gateways: a.gateway,
        ip_ranges: a.ip_range,
        internal: a.internal,
        ipv6: a.ipv6,
        labels,
    };
    let n = e.networks()?.create(&req).map_err(err)?;
    println!("{}", n.id);
    Ok(0)
}

pub fn network(e: &Engine, cmd: NetworkCmd) -> Result<i32> {
    match cmd {
        NetworkCmd::Create(a) => return create(e, a),
        NetworkCmd::Ls { quiet, format, no_trunc } => {
            let nets = e.networks()?;
            if !e.rootless {
                nets.ensure_default().map_err(err)?;
            }
            let mut rows: Vec<Value> = nets
                .list()
                .map_err(err)?
                .iter()
                .map(|n| json!({"ID": if no_trunc { n.id.clone() } else { n.id[..12].to_string() }, "Name": n.name, "Driver": n.driver, "Scope": "local"}))
                .collect();
            for b in ["host", "none"] {
                rows.push(json!({"ID": b, "Name": b, "Driver": b, "Scope": "local"}));
            }
            rows.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
            if quiet {
                rows.iter().for_each(|r| println!("{}", r["ID"].as_str().unwrap_or_default()));
                return Ok(0);
            }
            table::emit(
                format.as_deref(),
                &rows,
                &["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                &["ID", "Name", "Driver", "Scope"],
            )
            .map_err(fail)?;
        }
        NetworkCmd::Inspect { names, format } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &names {
                if n == "host" || n == "none" {
                    out.push(builtin(n));
                    continue;
                }
                match e.network(n) {
                    Ok(net) => out.push(inspect_value(e, &net)),
                    Err(x) => {
                        eprintln!("Error: {x}");
                        code = 1;
                    }
                }
            }
            crate::cmd::system::print_inspect(&out, format.as_deref())?;
            return Ok(code);
        }
        NetworkCmd::Rm { force, names } => {
            let mut code = 0;
            for n in &names {
                match e.network_remove(n) {
                    Ok(_) => println!("{n}"),
                    Err(x) if force && x.to_string().contains("not found") => {}
                    Err(x) => {
                        eprintln!("Error response from daemon: {x}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        NetworkCmd::Prune { .. } => {
            let gone = e.network_prune()?;
            if !gone.is_empty() {
                println!("Deleted Networks:");
                gone.iter().for_each(|n| println!("{n}"));
            }
        }
        NetworkCmd::Connect {
            ip,
            ip6,
            alias,
            network,
            container,
        } => {
            let req = ConnectRequest {
                ip,
                ip6,
                aliases: alias,
                mac_address: None,
            };
            e.network_connect(&container, &network, &req).map_err(err)?;
        }
        NetworkCmd::Disconnect { network, container, .. } => {
            e.network_disconnect(&container, &network).map_err(err)?;
        }
    }
    Ok(0)
}

/// `port CONTAINER [PORT[/PROTO]]`: the published ports of a running container.
pub fn port(e: &Engine, container: &str, which: Option<&str>) -> Result<i32> {
    let id = e.resolve(container).map_err(err)?;
    let mut rec = e.load(&id).map_err(err)?;
    e.live(&mut rec);
    let ports = if rec.state.status.is_active() {
        rec.network_settings.ports.clone()
    } else {
        BTreeMap::new()
    };
    let want = which.map(|w| if w.contains('/') { w.to_string() } else { format!("{w}/tcp") });
    let mut found = false;
    for (key, binds) in &ports {
        let Some(binds) = binds else { continue };
        if want.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        for b in binds {
            found = true;
            let addr = if b.host_ip.contains(':') {
                format!("[{}]", b.host_ip)
            } else {
                b.host_ip.clone()
            };
            match &want {
                Some(_) => println!("{addr}:{}", b.host_port),
                None => println!("{key} -> {addr}:{}", b.host_port),
            }
        }
    }
    if let (Some(w), false) = (&want, found) {
        return Err(fail(format!("Error: No public port '{w}' published for {container}")));
    }
    Ok(0)
}
