//! ps, logs, stop, restart, kill, pause, unpause, rm, top, stats, wait, update, prune,
//! export, cp, diff.

use serde_json::{json, Value};
use skiff_engine::logs::LogOptions;
use skiff_engine::record::{ContainerRecord, Status};
use skiff_engine::{units, Engine};

use crate::cli::{CpArgs, ExportArgs, KillArgs, LogsArgs, PruneArgs, PsArgs, RmArgs, StatsArgs, StopArgs, TopArgs, UpdateArgs};
use crate::table;
use crate::{fail, Result};

/// Runs `f` on each named container; prints the name given on success, Docker's way.
pub fn each(e: &Engine, names: &[String], f: impl Fn(&Engine, &str) -> skiff_engine::Result<()>) -> Result<i32> {
    let mut code = 0;
    for n in names {
        match e.resolve(n).and_then(|id| f(e, &id)) {
            Ok(()) => println!("{n}"),
            Err(x) => {
                eprintln!("Error: {x}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `"sh -c 'echo…"` as Docker's ps shows a command (20 characters unless --no-trunc).
fn command(rec: &ContainerRecord, trunc: bool) -> String {
    let s = rec.argv().join(" ");
    let s = if trunc && s.chars().count() > 20 {
        format!("{}…", s.chars().take(19).collect::<String>())
    } else {
        s
    };
    // Go's strconv.Quote, as Docker prints it.
    serde_json::to_string(&s).unwrap_or_default()
}

/// "Up 5 seconds", "Exited (0) 3 seconds ago", "Created", ...
pub fn status_text(rec: &ContainerRecord) -> String {
    let s = &rec.state;
    match s.status {
        Status::Running => format!("Up {}", table::since(&s.started_at)),
        Status::Paused => format!("Up {} (Paused)", table::since(&s.started_at)),
        Status::Restarting => format!("Restarting ({}) {}", s.exit_code, table::ago(&s.finished_at)),
        Status::Exited => format!("Exited ({}) {}", s.exit_code, table::ago(&s.finished_at)),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn ps_value(rec: &ContainerRecord, trunc: bool) -> Value {
    json!({
        "ID": if trunc { rec.short_id().to_string() } else { rec.id.clone() },
        "Image": rec.image,
        "Command": command(rec, trunc),
        "CreatedAt": rec.created,
        "RunningFor": table::ago(&rec.created),
        "Status": status_text(rec),
        "State": rec.state.status.as_str(),
        "Names": rec.name,
        "Labels": rec.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Ports": ports_text(rec),
        "Mounts": rec.mounts.iter().map(|m| if m.name.is_empty() { m.source.clone() } else { m.name.clone() }).collect::<Vec<_>>().join(","),
        "Networks": if rec.network_settings.networks.is_empty() {
            rec.host_config.network_mode.clone()
        } else {
            rec.network_settings.networks.keys().cloned().collect::<Vec<_>>().join(",")
        },
    })
}

/// Docker's PORTS column: `0.0.0.0:8080->80/tcp, 443/tcp`.
fn ports_text(rec: &ContainerRecord) -> String {
    let mut out = Vec::new();
    for (key, binds) in &rec.network_settings.ports {
        match binds {
            Some(b) if !b.is_empty() => out.extend(b.iter().map(|b| format!("{}:{}->{key}", b.host_ip, b.host_port))),
            _ => out.push(key.clone()),
        }
    }
    out.join(", ")
}

fn matches(rec: &ContainerRecord, filter: &str) -> Result<bool> {
    let (k, v) = filter
        .split_once('=')
        .ok_or_else(|| fail(format!("Error: bad format of filter (expected name=value): {filter}")))?;
    Ok(match k {
        "status" => rec.state.status.as_str() == v,
        "name" => rec.name.contains(v.trim_start_matches('/')),
        "id" => rec.id.starts_with(v),
        "label" => match v.split_once('=') {
            Some((lk, lv)) => rec.config.labels.get(lk).is_some_and(|x| x == lv),
            None => rec.config.labels.contains_key(v),
        },
        "ancestor" => rec.image == v || rec.image_id.contains(v),
        "exited" => rec.state.status == Status::Exited && v.parse::<i32>().is_ok_and(|c| c == rec.state.exit_code),
        "volume" => rec.mounts.iter().any(|m| m.name == v || m.destination == v),
        _ => return Err(fail(format!("invalid filter '{k}'"))),
    })
}

pub fn ps(e: &Engine, a: PsArgs) -> Result<i32> {
    let mut recs = e.list()?;
    let show_all = a.all || a.latest || a.last.is_some() || a.filter.iter().any(|f| f.starts_with("status=") || f.starts_with("exited="));
    if !show_all {
        recs.retain(|r| r.state.status.is_active());
    }
    for f in &a.filter {
        let mut kept = Vec::new();
        for r in recs {
            if matches(&r, f)? {
                kept.push(r);
            }
        }
        recs = kept;
    }
    if a.latest {
        recs.truncate(1);
    }
    if let Some(n) = a.last {
        recs.truncate(n);
    }
    let trunc = !a.no_trunc;
    if a.quiet {
        for r in &recs {
            println!("{}", if trunc { r.short_id() } else { &r.id });
        }
        return Ok(0);
    }
    let values: Vec<Value> = recs.iter().map(|r| ps_value(r, trunc)).collect();
    table::emit(
        a.format.as_deref(),
        &values,
        &["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
        &["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"],
    )
    .map_err(fail)?;
    Ok(0)
}

pub fn logs(e: &Engine, a: LogsArgs) -> Result<i32> {
    let id = e.resolve(&a.container).map_err(|x| fail(x.to_string()))?;
    let tail = match a.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| fail(format!("invalid value for \"tail\": {n}")))?),
    };
    let since = match &a.since {
        Some(s) => Some(skiff_engine::logs::parse_since(s)?),
        None => None,
    };
    let opts = LogOptions {
        follow: a.follow,
        tail,
        timestamps: a.timestamps,
        since,
    };
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    e.logs(&id, &opts, &mut out, &mut err)?;
    Ok(0)
}

pub fn stop(e: &Engine, a: StopArgs, restart: bool) -> Result<i32> {
    each(e, &a.containers, |e, id| {
        e.stop(id, a.time)?;
        if restart {
            e.start(id, Default::default())?;
        }
        Ok(())
    })
}

pub fn kill(e: &Engine, a: KillArgs) -> Result<i32> {
    let sig = units::signal(&a.signal).map_err(|x| fail(x.to_string()))?;
    each(e, &a.containers, |e, id| e.kill(id, sig))
}

pub fn rm(e: &Engine, a: RmArgs) -> Result<i32> {
    each(e, &a.containers, |e, id| e.remove(id, a.force, a.volumes))
}

pub fn wait(e: &Engine, a: crate::cli::Ids) -> Result<i32> {
    let mut code = 0;
    for n in &a.containers {
        match e.resolve(n).and_then(|id| e.wait(&id)) {
            Ok(c) => println!("{c}"),
            Err(x) => {
                eprintln!("Error: {x}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn top(e: &Engine, a: TopArgs) -> Result<i32> {
    let id = e.resolve(&a.container).map_err(|x| fail(x.to_string()))?;
    let pids = e.top(&id).map_err(|x| fail(x.to_string()))?;
    let list = pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
    let mut cmd = std::process::Command::new("ps");
    if a.ps_args.is_empty() {
        cmd.args(["-o", "user,pid,ppid,c,stime,tty,time,cmd"]);
    } else {
        cmd.args(&a.ps_args);
    }
    let out = cmd.args(["-p", &list]).output().map_err(|x| fail(format!("ps: {x}")))?;
    // A `ps` that refuses the options (busybox's has no -p) is an error, as in Docker, not
    // an empty list.
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("ps: {}: {}", out.status, err.trim())));
    }
    print!("{}", String::from_utf8_lossy(&out.stdout).replace("USER ", "UID  "));
    Ok(0)
}

pub fn stats(e: &Engine, a: StatsArgs) -> Result<i32> {
    let ids: Vec<String> = if a.containers.is_empty() {
        e.list()?.into_iter().filter(|r| a.all || r.state.status.is_active()).map(|r| r.id).collect()
    } else {
        a.containers
            .iter()
            .map(|c| e.resolve(c))
            .collect::<skiff_engine::Result<_>>()
            .map_err(|x| fail(x.to_string()))?
    };
    loop {
        let rows = e.stats(&ids)?;
        let values: Vec<Value> = rows
            .iter()
            .map(|s| {
                json!({
                    "ID": s.id[..12].to_string(), "Container": s.id[..12].to_string(), "Name": s.name,
                    "CPUPerc": format!("{:.2}%", s.cpu_percent),
                    "MemUsage": format!("{} / {}", units::human_binary(s.mem_usage), units::human_binary(s.mem_limit)),
                    "MemPerc": format!("{:.2}%", if s.mem_limit > 0 { s.mem_usage as f64 * 100.0 / s.mem_limit as f64 } else { 0.0 }),
                    "NetIO": "0B / 0B",
                    "BlockIO": format!("{} / {}", units::human_size(s.blk_read), units::human_size(s.blk_write)),
                    "PIDs": s.pids.to_string(),
                })
            })
            .collect();
        table::emit(
            a.format.as_deref(),
            &values,
            &["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"],
            &["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"],
        )
        .map_err(fail)?;
        if a.no_stream {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

pub fn update(e: &Engine, a: UpdateArgs) -> Result<i32> {
    let req = skiff_engine::stats::UpdateRequest {
        resources: a.resources.request(),
        restart: a.restart.clone(),
    };
    each(e, &a.containers, |e, id| e.update(id, &req))
}

pub fn prune(e: &Engine, a: PruneArgs) -> Result<i32> {
    let _ = a;
    let removed = e.prune_containers()?;
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for id in &removed {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: 0B");
    Ok(0)
}

pub fn export(e: &Engine, a: ExportArgs) -> Result<i32> {
    let id = e.resolve(&a.container).map_err(|x| fail(x.to_string()))?;
    match &a.output {
        Some(p) => {
            let f = std::fs::File::create(p).map_err(|x| fail(format!("{p}: {x}")))?;
            e.export(&id, f)?;
        }
        None => {
            if crate::cmd::run_is_tty(1) {
                return Err(fail("cowardly refusing to save to a terminal. Use the -o flag or redirect"));
            }
            e.export(&id, std::io::stdout().lock())?;
        }
    }
    Ok(0)
}

pub fn cp(e: &Engine, a: CpArgs) -> Result<i32> {
    let split = |s: &str| -> Option<(String, String)> {
        let (c, p) = s.split_once(':')?;
        (!c.is_empty() && !c.contains('/')).then(|| (c.to_string(), p.to_string()))
    };
    match (split(&a.src), split(&a.dst)) {
        (Some((c, p)), None) => {
            let id = e.resolve(&c).map_err(|x| fail(x.to_string()))?;
            e.copy_out(&id, &p, &a.dst)?;
        }
        (None, Some((c, p))) => {
            let id = e.resolve(&c).map_err(|x| fail(x.to_string()))?;
            e.copy_in(&id, &a.src, &p)?;
        }
        _ => return Err(fail("must specify exactly one container path (CONTAINER:PATH) and one local path")),
    }
    Ok(0)
}

pub fn diff(e: &Engine, container: &str) -> Result<i32> {
    let id = e.resolve(container).map_err(|x| fail(x.to_string()))?;
    for (kind, path) in e.diff(&id)? {
        println!("{kind} {path}");
    }
    Ok(0)
}
