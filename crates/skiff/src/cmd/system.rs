//! inspect (containers, images, volumes), info, version, system df, system prune.

use serde_json::{json, Value};
use skiff_engine::{units, Engine};

use crate::cli::{FormatArg, InspectArgs, SystemCmd};
use crate::table;
use crate::{fail, Result};

/// Prints inspect results: a JSON array, or the template per object.
pub fn print_inspect(values: &[Value], format: Option<&str>) -> Result<()> {
    match format {
        None | Some("") | Some("json") => println!("{}", serde_json::to_string_pretty(&Value::Array(values.to_vec())).unwrap_or_default()),
        Some(f) => {
            let t = crate::template::Template::new(f).map_err(fail)?;
            for v in values {
                println!("{}", t.render(v).map_err(fail)?);
            }
        }
    }
    Ok(())
}

pub fn image_value(img: &skiff_image::Image) -> Value {
    let cfg = serde_json::to_value(&img.config).unwrap_or_default();
    json!({
        "Id": img.id,
        "RepoTags": img.tags.iter().map(|t| skiff_image::reference::familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": img.digests,
        "Created": img.created,
        "Author": cfg.get("author").cloned().unwrap_or(Value::Null),
        "Config": cfg.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": cfg.get("architecture").cloned().unwrap_or(Value::Null),
        "Os": cfg.get("os").cloned().unwrap_or(Value::Null),
        "Size": img.size,
        "VirtualSize": img.size,
        "GraphDriver": {"Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": img.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

pub fn inspect(e: &Engine, a: InspectArgs, only: Option<&str>) -> Result<i32> {
    let kind = a.kind.as_deref().or(only);
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.names {
        let found = match kind {
            Some("container") => e.resolve(n).and_then(|id| e.load(&id)).map(|r| e.inspect(&r)).map_err(|x| x.to_string()),
            Some("image") => e.images.resolve(n).map(|i| image_value(&i)).map_err(|x| x.to_string()),
            Some("volume") => e
                .volumes
                .inspect(n)
                .map(|v| serde_json::to_value(v).unwrap_or_default())
                .map_err(|x| x.to_string()),
            Some("network") => e.network(n).map(|net| super::network::inspect_value(e, &net)).map_err(|x| x.to_string()),
            Some(other) => return Err(fail(format!("\"{other}\" is not a valid value for --type"))),
            None => e
                .resolve(n)
                .and_then(|id| e.load(&id))
                .map(|r| e.inspect(&r))
                .or_else(|_| e.images.resolve(n).map(|i| image_value(&i)))
                .or_else(|_| e.volumes.inspect(n).map(|v| serde_json::to_value(v).unwrap_or_default()))
                .or_else(|_| {
                    e.networks()
                        .and_then(|nets| nets.get(n).map_err(skiff_engine::network::from_net))
                        .map(|net| super::network::inspect_value(e, &net))
                })
                .map_err(|_| format!("No such object: {n}")),
        };
        match found {
            Ok(v) => out.push(v),
            Err(msg) => {
                eprintln!("Error: {msg}");
                code = 1;
            }
        }
    }
    print_inspect(&out, a.format.as_deref())?;
    Ok(code)
}

fn info_value(e: &Engine) -> Result<Value> {
    let recs = e.list()?;
    let count = |s: skiff_engine::Status| recs.iter().filter(|r| r.state.status == s).count();
    let cg = skiff_core::cgroups::Cgroups::detect().map(|c| format!("{c:?}")).unwrap_or_default();
    let version = if cg.contains("Unified") { "2" } else { "1" };
    let uts = nix::sys::utsname::uname().ok();
    Ok(json!({
        "Containers": recs.len(),
        "ContainersRunning": count(skiff_engine::Status::Running),
        "ContainersPaused": count(skiff_engine::Status::Paused),
        "ContainersStopped": recs.len() - count(skiff_engine::Status::Running) - count(skiff_engine::Status::Paused),
        "Images": e.images.list()?.len(),
        "Driver": "overlay2",
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": version,
        "KernelVersion": uts.as_ref().map(|u| u.release().to_string_lossy().into_owned()),
        "OperatingSystem": std::fs::read_to_string("/etc/os-release").ok().and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|s| s.trim_matches('"').to_string()))),
        "OSType": "linux",
        "Architecture": uts.as_ref().map(|u| u.machine().to_string_lossy().into_owned()),
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "DockerRootDir": e.layout.root,
        "Rootless": e.rootless,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "DefaultRuntime": "skiff (in-process)",
        "SecurityOptions": ["name=seccomp,profile=default"],
    }))
}

pub fn info(e: &Engine, f: FormatArg) -> Result<i32> {
    let v = info_value(e)?;
    match f.format.as_deref() {
        Some("json") => println!("{v}"),
        Some(t) => println!("{}", crate::template::Template::new(t).map_err(fail)?.render(&v).map_err(fail)?),
        None => {
            for k in [
                "Containers",
                "ContainersRunning",
                "ContainersPaused",
                "ContainersStopped",
                "Images",
                "ServerVersion",
                "Driver",
                "LoggingDriver",
                "CgroupDriver",
                "CgroupVersion",
                "KernelVersion",
                "OperatingSystem",
                "OSType",
                "Architecture",
                "NCPU",
                "DockerRootDir",
                "Rootless",
            ] {
                println!(" {k}: {}", crate::template::go_string(&v[k]));
            }
        }
    }
    Ok(0)
}

pub fn version(f: FormatArg) -> Result<i32> {
    let v = json!({
        "Client": {"Version": env!("CARGO_PKG_VERSION"), "Os": "linux", "Arch": std::env::consts::ARCH},
        "Server": {"Version": env!("CARGO_PKG_VERSION"), "Components": [{"Name": "skiff-core", "Version": env!("CARGO_PKG_VERSION")}]},
    });
    match f.format.as_deref() {
        Some("json") => println!("{v}"),
        Some(t) => println!("{}", crate::template::Template::new(t).map_err(fail)?.render(&v).map_err(fail)?),
        None => {
            println!(
                "Client:\n Version:    {}\n OS/Arch:    linux/{}\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH
            );
            println!("Server: skiff (daemonless)\n Engine:\n  Version:   {}", env!("CARGO_PKG_VERSION"));
        }
    }
    Ok(0)
}

pub fn system(e: &Engine, cmd: SystemCmd) -> Result<i32> {
    match cmd {
        SystemCmd::Info(f) => info(e, f),
        SystemCmd::Df(f) => {
            let recs = e.list()?;
            let used: std::collections::HashSet<String> = recs.iter().map(|r| r.image_id.clone()).collect();
            let usage = e.images.usage()?;
            let ctr_size: u64 = recs.iter().map(|r| skiff_engine::volumes::tree_size(&e.layout.container(&r.id).upper())).sum();
            let vols = e.volumes.list()?;
            let vol_size: u64 = vols.iter().map(|v| skiff_engine::volumes::tree_size(std::path::Path::new(&v.mountpoint))).sum();
            let values = vec![
                json!({"Type": "Images", "TotalCount": usage.images, "Active": used.len(), "Size": units::human_size(usage.layers_size), "Reclaimable": units::human_size(usage.reclaimable(&|id| used.contains(id)))}),
                json!({"Type": "Containers", "TotalCount": recs.len(), "Active": recs.iter().filter(|r| r.state.status.is_active()).count(), "Size": units::human_size(ctr_size), "Reclaimable": units::human_size(recs.iter().filter(|r| !r.state.status.is_active()).map(|r| skiff_engine::volumes::tree_size(&e.layout.container(&r.id).upper())).sum())}),
                json!({"Type": "Local Volumes", "TotalCount": vols.len(), "Active": vols.iter().filter(|v| e.volume_users(&v.name).is_ok_and(|u| !u.is_empty())).count(), "Size": units::human_size(vol_size), "Reclaimable": "0B"}),
            ];
            table::emit(
                f.format.as_deref(),
                &values,
                &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                &["Type", "TotalCount", "Active", "Size", "Reclaimable"],
            )
            .map_err(fail)?;
            Ok(0)
        }
        SystemCmd::Prune { all, force: _, volumes } => {
            let removed = e.prune_containers()?;
            if !removed.is_empty() {
                println!("Deleted Containers:");
                removed.iter().for_each(|id| println!("{id}"));
                println!();
            }
            let nets = e.network_prune()?;
            if !nets.is_empty() {
                println!("Deleted Networks:");
                nets.iter().for_each(|n| println!("{n}"));
                println!();
            }
            let used: std::collections::HashSet<String> = e.list()?.into_iter().map(|r| r.image_id).collect();
            let imgs = e.images.prune(all, &|id| used.contains(id))?;
            if !imgs.is_empty() {
                println!("Deleted Images:");
                imgs.iter().for_each(|l| println!("{}", super::images::lower_first(&l.to_string())));
                println!();
            }
            if volumes {
                for v in e.volumes.list()? {
                    if e.volume_users(&v.name)?.is_empty() && e.volumes.remove(&v.name, &[]).is_ok() {
                        println!("Deleted Volume: {}", v.name);
                    }
                }
            }
            println!("Total reclaimed space: 0B");
            Ok(0)
        }
    }
}
