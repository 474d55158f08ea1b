//! The engine: opening a store, finding containers, creating and removing them, and the
//! state each is in right now.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::lock;
use crate::names;
use crate::options::{self, CreateRequest};
use crate::record::{Config, ContainerRecord, ExitRecord, HostConfig, LogConfig, MonitorFile, Status};
use crate::rootfs;
use crate::units;
use crate::volumes::Volumes;

#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub root: Option<PathBuf>,
    pub rootless: bool,
    /// The `skiff-monitor` binary (default: beside the running executable).
    pub monitor: Option<PathBuf>,
    /// The `skiff` binary the monitor runs as its exit command (default: the running one).
    pub exe: Option<PathBuf>,
    /// "overlay2" (default) or "vfs" (copies; for filesystems overlayfs cannot use).
    pub storage_driver: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Engine {
    pub layout: Layout,
    pub images: skiff_image::Store,
    pub runtime: skiff_core::Runtime,
    pub volumes: Volumes,
    pub rootless: bool,
    pub monitor: PathBuf,
    pub exe: PathBuf,
    pub driver: String,
    /// The `skiff-dns` binary (default: beside the running executable; `$SKIFF_DNS`).
    pub dns_server: PathBuf,
}

/// 64 random hex digits (Docker's id form).
pub fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// `/var/lib/skiff` for root, `$XDG_DATA_HOME/skiff` (or `~/.local/share/skiff`) otherwise.
pub fn default_root(rootless: bool) -> PathBuf {
    if !rootless {
        return PathBuf::from("/var/lib/skiff");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("skiff");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/share/skiff")
}

impl Engine {
    pub fn open(opts: EngineOptions) -> Result<Engine> {
        let root = opts.root.clone().unwrap_or_else(|| default_root(opts.rootless));
        let layout = Layout { root: root.clone() };
        for d in [layout.containers(), layout.names(), layout.volumes(), layout.runtime()] {
            std::fs::create_dir_all(&d).map_err(|e| Error::io("create", &d, e))?;
        }
        let images = skiff_image::Store::open(layout.image(), skiff_image::StoreOptions { rootless: opts.rootless })?;
        let mut runtime = skiff_core::Runtime::new(layout.runtime());
        runtime.rootless = opts.rootless;
        let exe = opts
            .exe
            .clone()
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("skiff"));
        let monitor = opts
            .monitor
            .clone()
            .or_else(|| std::env::var_os("SKIFF_MONITOR").map(PathBuf::from))
            .unwrap_or_else(|| exe.parent().unwrap_or(Path::new("/")).join("skiff-monitor"));
        let dns_server = std::env::var_os("SKIFF_DNS")
            .map(PathBuf::from)
            .unwrap_or_else(|| exe.parent().unwrap_or(Path::new("/")).join("skiff-dns"));
        let env_driver = std::env::var("SKIFF_STORAGE_DRIVER").ok();
        let driver = match opts.storage_driver.as_deref().or(env_driver.as_deref()) {
            None | Some("") | Some("overlay") | Some("overlay2") => crate::record::DRIVER_OVERLAY.to_string(),
            Some("vfs") => crate::record::DRIVER_VFS.to_string(),
            Some(other) => return Err(Error::Invalid(format!("unknown storage driver {other:?}: overlay2 or vfs"))),
        };
        Ok(Engine {
            volumes: Volumes { dir: layout.volumes() },
            layout,
            images,
            runtime,
            rootless: opts.rootless,
            monitor,
            exe,
            driver,
            dns_server,
        })
    }

    /// Resolves a container name, full id or unique id prefix to its id.
    pub fn resolve(&self, name: &str) -> Result<String> {
        let name = name.strip_prefix('/').unwrap_or(name);
        if name.is_empty() {
            return Err(Error::NoSuchContainer(name.to_string()));
        }
        if self.layout.container(name).record().exists() {
            return Ok(name.to_string());
        }
        if let Some(id) = names::lookup(&self.layout.names(), name) {
            if self.layout.container(&id).record().exists() {
                return Ok(id);
            }
        }
        if name.chars().all(|c| c.is_ascii_hexdigit()) {
            let matches: Vec<String> = self.ids()?.into_iter().filter(|id| id.starts_with(name)).collect();
            match matches.len() {
                1 => return Ok(matches[0].clone()),
                n if n > 1 => return Err(Error::Invalid(format!("multiple IDs found with provided prefix: {name}"))),
                _ => {}
            }
        }
        Err(Error::NoSuchContainer(name.to_string()))
    }

    fn ids(&self) -> Result<Vec<String>> {
        let dir = self.layout.containers();
        let rd = std::fs::read_dir(&dir).map_err(|e| Error::io("read", &dir, e))?;
        Ok(rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 64)
            .collect())
    }

    /// The record with its live status (see [`Engine::live`]).
    pub fn load(&self, id: &str) -> Result<ContainerRecord> {
        let mut rec = ContainerRecord::load(&self.layout.container(id).record()).map_err(|_| Error::NoSuchContainer(id.to_string()))?;
        self.live(&mut rec);
        Ok(rec)
    }

    /// Every container (newest first), with live status.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        for id in self.ids()? {
            if let Ok(r) = self.load(&id) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Whether the process `pid`, started at `start` (clock ticks), is still alive.
    pub fn alive(pid: i32, start: u64) -> bool {
        pid > 0 && skiff_core::state::proc_stat(pid).is_some_and(|(st, t)| st != 'Z' && (start == 0 || t == start))
    }

    /// Derives the status from what is running now: the record says what was last written,
    /// the runtime state and the monitor's exit record say what happened since.
    pub fn live(&self, rec: &mut ContainerRecord) {
        if rec.state.status == Status::Created {
            // A start whose caller died before recording it: the monitor left its pid.
            match MonitorFile::load(&self.layout.container(&rec.id).monitor_file()) {
                Some(m) if self.runtime.load(&rec.id).is_ok() => {
                    rec.state.status = Status::Running;
                    rec.state.pid = m.init;
                    rec.state.monitor_pid = m.pid;
                    rec.state.monitor_start = m.start;
                    rec.state.started_at = m.started_at;
                }
                _ => return,
            }
        }
        if !rec.state.status.is_active() {
            return;
        }
        let rt = self.runtime.load(&rec.id).ok().map(|c| c.status());
        use skiff_core::Status as S;
        match rt {
            Some(S::Running | S::Created | S::Creating) => rec.state.status = Status::Running,
            Some(S::Paused) => rec.state.status = Status::Paused,
            None if rec.state.status == Status::Restarting && Self::alive(rec.state.monitor_pid, rec.state.monitor_start) => {}
            // The init is gone but its monitor is still draining its output: the container
            // has exited once the monitor says so (its exit record), not before.
            _ if !self.layout.container(&rec.id).exit().exists() && Self::alive(rec.state.monitor_pid, rec.state.monitor_start) => {}
            _ => {
                self.mark_exited(rec);
                // The monitor's cleanup has yet to run: if the policy restarts, say so now.
                if Self::alive(rec.state.monitor_pid, rec.state.monitor_start) && crate::container::should_restart(rec) {
                    rec.state.status = Status::Restarting;
                }
            }
        }
    }

    fn mark_exited(&self, rec: &mut ContainerRecord) {
        rec.state.status = Status::Exited;
        rec.state.pid = 0;
        match ExitRecord::load(&self.layout.container(&rec.id).exit()) {
            Some(x) => {
                rec.state.exit_code = x.exit_code;
                rec.state.finished_at = x.finished_at;
            }
            None => {
                // The monitor died before it could record the exit.
                rec.state.exit_code = 255;
                if rec.state.error.is_empty() {
                    rec.state.error = "container monitor exited unexpectedly".into();
                }
                if rec.state.finished_at.is_empty() || rec.state.finished_at == crate::record::ZERO_TIME {
                    rec.state.finished_at = skiff_monitor::time::now();
                }
            }
        }
    }

    /// Where the container's root filesystem is seen from the host (mounted or not).
    pub fn rootfs_path(&self, rec: &ContainerRecord) -> PathBuf {
        let dir = self.layout.container(&rec.id);
        if rec.is_vfs() {
            dir.rootfs_copy()
        } else {
            dir.merged()
        }
    }

    /// Takes the container's lock and loads its record.
    pub fn lock(&self, id: &str) -> Result<(lock::Lock, ContainerRecord)> {
        let dir = self.layout.container(id);
        if !dir.path().is_dir() {
            return Err(Error::NoSuchContainer(id.to_string()));
        }
        let l = lock::exclusive(&dir.lock())?;
        let rec = self.load(id)?;
        Ok((l, rec))
    }

    /// Brings the record in line with reality (under the container's lock): a container whose
    /// init is gone has its runtime state deleted, its rootfs unmounted and its exit recorded.
    /// Safe to run more than once and after any crash.
    pub fn reconcile(&self, rec: &mut ContainerRecord) -> Result<()> {
        let dir = self.layout.container(&rec.id);
        if rec.state.status.is_active() {
            return Ok(());
        }
        if let Ok(c) = self.runtime.load(&rec.id) {
            c.delete(true)?;
        }
        self.net_teardown(rec);
        rootfs::unmount(&dir)?;
        rec.save(&dir.record())
    }

    pub fn create(&self, req: &CreateRequest) -> Result<ContainerRecord> {
        let image = self.images.resolve(&req.image)?;
        let mut rec = self.record_for(req, &image)?;
        let dir = self.layout.container(&rec.id);
        let made = (|| {
            std::fs::create_dir_all(dir.path()).map_err(|e| Error::io("create", dir.path(), e))?;
            // Held until the record exists: `sweep` leaves a locked, record-less dir alone.
            let _creating = lock::exclusive(&dir.lock())?;
            self.resolve_volumes(&mut rec)?;
            if let Some(p) = seccomp_file(&rec.host_config) {
                let text = std::fs::read(p).map_err(|e| Error::Invalid(format!("opening seccomp profile ({p}) failed: {e}")))?;
                let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error::Invalid(format!("decoding seccomp profile failed: {e}")))?;
                crate::spec::docker_profile(&v, &crate::spec::capabilities(&rec)?)?;
                let out = dir.path().join("seccomp.json");
                std::fs::write(&out, text).map_err(|e| Error::io("write", &out, e))?;
            }
            crate::spec::capabilities(&rec)?;
            rootfs::write_etc_files(&dir, &rec.config.hostname, rec.host_config.network_mode == "host")?;
            rec.save(&dir.record())?;
            names::reserve(&self.layout.names(), &rec.name, &rec.id)
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(dir.path());
            for m in &rec.mounts {
                if m.kind == "volume" && self.volumes.inspect(&m.name).is_ok_and(|v| v.anonymous) {
                    let _ = self.volumes.remove(&m.name, &[]);
                }
            }
            return Err(e);
        }
        Ok(rec)
    }

    /// The record `create` will write: the image's config, overridden by the request.
    fn record_for(&self, req: &CreateRequest, image: &skiff_image::Image) -> Result<ContainerRecord> {
        let id = random_id();
        let name = match &req.name {
            Some(n) => names::validate(n)?,
            None => loop {
                let n = names::generate();
                if names::lookup(&self.layout.names(), &n).is_none() {
                    break n;
                }
            },
        };
        let ic = image.config.config().clone().unwrap_or_default();
        let mut env: Vec<String> = Vec::new();
        for f in &req.env_files {
            env.extend(options::read_env_file(f)?);
        }
        env.extend(req.env.iter().filter_map(|e| options::expand_env(e)));
        let (entrypoint, cmd) = match &req.entrypoint {
            Some(ep) => (if ep.is_empty() { vec![] } else { vec![ep.clone()] }, req.cmd.clone()),
            None => (
                ic.entrypoint().clone().unwrap_or_default(),
                if req.cmd.is_empty() {
                    ic.cmd().clone().unwrap_or_default()
                } else {
                    req.cmd.clone()
                },
            ),
        };
        let mut labels: BTreeMap<String, String> = ic.labels().clone().unwrap_or_default().into_iter().collect();
        for l in &req.labels {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            labels.insert(k.to_string(), v.to_string());
        }
        let mut hc = host_config(req)?;
        let asked_net = req.network.clone().unwrap_or_else(crate::network::default_network);
        let hostname = match &req.hostname {
            Some(h) => h.clone(),
            None if asked_net == "host" => nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            None => id[..12].to_string(),
        };
        let config = Config {
            hostname,
            user: req.user.clone().unwrap_or_else(|| ic.user().clone().unwrap_or_default()),
            attach_stdin: req.interactive,
            attach_stdout: true,
            attach_stderr: true,
            tty: req.tty,
            open_stdin: req.interactive,
            stdin_once: req.interactive,
            env,
            cmd,
            image: req.image.clone(),
            working_dir: req.workdir.clone().unwrap_or_else(|| ic.working_dir().clone().unwrap_or_default()),
            entrypoint,
            labels,
            stop_signal: req.stop_signal.clone().or_else(|| ic.stop_signal().clone()),
            stop_timeout: req.stop_timeout,
            ..Default::default()
        };
        if let Some(s) = &config.stop_signal {
            units::signal(s)?;
        }
        let mut config = config;
        let image_ports: Vec<String> = ic.exposed_ports().clone().unwrap_or_default();
        for p in image_ports
            .iter()
            .cloned()
            .chain(req.expose.iter().flat_map(|e| crate::ports::parse_expose(e).unwrap_or_default()))
        {
            let key = if p.contains('/') { p } else { format!("{p}/tcp") };
            config.exposed_ports.insert(key, serde_json::json!({}));
        }
        for e in &req.expose {
            crate::ports::parse_expose(e)?;
        }
        for k in hc.port_bindings.keys() {
            config.exposed_ports.insert(k.clone(), serde_json::json!({}));
        }
        hc.publish_all_ports = req.publish_all;
        if config.entrypoint.is_empty() && config.cmd.is_empty() {
            return Err(Error::Invalid("No command specified".into()));
        }
        let mut mounts = Vec::new();
        for v in &req.volumes {
            mounts.push(options::parse_volume(v)?);
        }
        for m in &req.mounts {
            mounts.push(options::parse_mount(m)?);
        }
        for t in &req.tmpfs {
            mounts.push(options::parse_tmpfs(t)?);
        }
        for (i, m) in mounts.iter().enumerate() {
            options::check_bind_source(m)?;
            if mounts[..i].iter().any(|o| o.destination == m.destination) {
                return Err(Error::Invalid(format!("Duplicate mount point: {}", m.destination)));
            }
        }
        let mut rec = ContainerRecord {
            id,
            name,
            created: skiff_monitor::time::now(),
            image: req.image.clone(),
            image_id: image.id.clone(),
            config,
            host_config: hc,
            mounts,
            state: crate::record::State {
                status: Status::Created,
                started_at: crate::record::ZERO_TIME.into(),
                finished_at: crate::record::ZERO_TIME.into(),
                ..Default::default()
            },
            restart_count: 0,
            manually_stopped: false,
            driver: self.driver.clone(),
            network_settings: Default::default(),
        };
        self.resolve_network(req, &mut rec)?;
        if let crate::network::Mode::Container(other) = crate::network::mode(&rec.host_config.network_mode) {
            rec.config.hostname = self.load(other)?.config.hostname;
        }
        if rec.host_config.network_mode == "host" && !rec.host_config.port_bindings.is_empty() {
            eprintln!("WARNING: Published ports are discarded when using host network mode");
            rec.host_config.port_bindings.clear();
        }
        Ok(rec)
    }

    /// Named and anonymous volumes are created (Docker creates a named volume on first use).
    fn resolve_volumes(&self, rec: &mut ContainerRecord) -> Result<()> {
        for m in rec.mounts.iter_mut().filter(|m| m.kind == "volume") {
            let v = self.volumes.create(if m.name.is_empty() { None } else { Some(&m.name) }, BTreeMap::new())?;
            m.name = v.name;
            m.source = v.mountpoint;
            m.propagation.clear();
        }
        Ok(())
    }

    /// Containers (names) whose mounts use volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|r| r.mounts.iter().any(|m| m.kind == "volume" && m.name == name))
            .map(|r| r.name)
            .collect())
    }

    /// Removes a container: a running one only with `force` (killed first); with `volumes`,
    /// its anonymous volumes too.
    pub fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let (_l, mut rec) = self.lock(id)?;
        if rec.state.status.is_active() {
            if !force {
                let what = if rec.state.status == Status::Paused { "paused" } else { "running" };
                return Err(Error::Conflict(format!(
                    "You cannot remove a {what} container {}. Stop the container before attempting removal or force remove",
                    rec.id
                )));
            }
            rec.manually_stopped = true;
            if let Ok(c) = self.runtime.load(&rec.id) {
                c.delete(true)?;
            }
            self.mark_exited(&mut rec);
        }
        self.reconcile(&mut rec)?;
        let dir = self.layout.container(&rec.id);
        names::release(&self.layout.names(), &rec.name, &rec.id);
        // Rename out of the way first: a crash mid-delete leaves no half-container under its id.
        let gone = self.layout.containers().join(format!(".removing-{}", rec.id));
        std::fs::rename(dir.path(), &gone).map_err(|e| Error::io("remove", dir.path(), e))?;
        std::fs::remove_dir_all(&gone).map_err(|e| Error::io("remove", &gone, e))?;
        if volumes || rec.host_config.auto_remove {
            for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
                if self.volumes.inspect(&m.name).is_ok_and(|v| v.anonymous) && self.volume_users(&m.name)?.is_empty() {
                    self.volumes.remove(&m.name, &[])?;
                }
            }
        }
        Ok(())
    }

    /// Deletes what commands killed midway left behind: removals (`containers/.removing-*`)
    /// and creations that never wrote their record (no lock held on them).
    pub fn sweep(&self) {
        let Ok(rd) = std::fs::read_dir(self.layout.containers()) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = crate::layout::ContainerDir(e.path());
            let stale = if name.starts_with(".removing-") {
                true
            } else {
                !dir.record().exists() && matches!(lock::try_exclusive(&dir.lock()), Ok(Some(_)))
            };
            if stale {
                let _ = rootfs::unmount(&dir);
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        // Names whose container is gone.
        if let Ok(rd) = std::fs::read_dir(self.layout.names()) {
            for e in rd.flatten() {
                if let Ok(id) = std::fs::read_link(e.path()) {
                    if !self.layout.container(&id.to_string_lossy()).path().exists() {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
    }
}

fn seccomp_file(hc: &HostConfig) -> Option<&str> {
    hc.security_opt
        .iter()
        .find_map(|o| o.strip_prefix("seccomp=").or_else(|| o.strip_prefix("seccomp:")))
        .filter(|p| *p != "unconfined")
}

fn host_config(req: &CreateRequest) -> Result<HostConfig> {
    let mut hc = HostConfig {
        port_bindings: crate::ports::bindings(&req.publish)?,
        dns: req.dns.clone(),
        dns_search: req.dns_search.clone(),
        dns_options: req.dns_options.clone(),
        extra_hosts: req.add_hosts.clone(),
        ..Default::default()
    };
    for d in &hc.dns {
        d.parse::<std::net::IpAddr>().map_err(|_| Error::Invalid(format!("{d} is not an ip address")))?;
    }
    for h in &hc.extra_hosts {
        if crate::network::etc::parse_add_host(h).is_none() {
            return Err(Error::Invalid(format!(
                "invalid argument \"{h}\" for \"--add-host\" flag: invalid IP address in add-host"
            )));
        }
    }
    apply_resources(&mut hc, &req.resources)?;
    hc.ulimits = req.ulimits.iter().map(|u| units::ulimit(u)).collect::<Result<_>>()?;
    hc.cap_add = req.cap_add.clone();
    hc.cap_drop = req.cap_drop.clone();
    hc.privileged = req.privileged;
    hc.security_opt = req.security_opt.clone();
    for o in &hc.security_opt {
        let ok =
            o.starts_with("seccomp=") || o.starts_with("seccomp:") || o.starts_with("no-new-privileges") || o.starts_with("label") || o.starts_with("apparmor");
        if !ok {
            return Err(Error::Invalid(format!("Invalid --security-opt: {o:?}")));
        }
    }
    hc.init = req.init.then_some(true);
    hc.read_only_rootfs = req.read_only;
    hc.restart_policy = units::restart_policy(req.restart.as_deref().unwrap_or("no"))?;
    hc.auto_remove = req.auto_remove;
    if hc.auto_remove && hc.restart_policy.name != "no" {
        return Err(Error::Invalid("Conflicting options: --restart and --rm".into()));
    }
    hc.log_config = LogConfig {
        kind: "json-file".into(),
        config: BTreeMap::new(),
    };
    for o in &req.log_opts {
        let (k, v) = o.split_once('=').ok_or_else(|| Error::Invalid(format!("invalid log opt: {o}")))?;
        match k {
            "max-size" => {
                units::ram_in_bytes(v)?;
            }
            "max-file" => {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| Error::Invalid(format!("invalid value for max-file: {v}")))?;
            }
            _ => return Err(Error::Invalid(format!("unknown log opt '{k}' for json-file log driver"))),
        }
        hc.log_config.config.insert(k.to_string(), v.to_string());
    }
    hc.binds = req.volumes.clone();
    Ok(hc)
}

/// Parses and checks resource flags into `hc` (create and `update`): Docker's rules for sizes,
/// CPUs, swap against memory, cpusets.
pub fn apply_resources(hc: &mut HostConfig, r: &crate::options::Resources) -> Result<()> {
    if let Some(m) = &r.memory {
        hc.memory = units::ram_in_bytes(m)?;
        if hc.memory > 0 && hc.memory < 6 << 20 {
            return Err(Error::Invalid("Minimum memory limit allowed is 6MB".into()));
        }
    }
    if let Some(s) = &r.memory_swap {
        hc.memory_swap = if s == "-1" { -1 } else { units::ram_in_bytes(s)? };
        if hc.memory == 0 {
            return Err(Error::Invalid(
                "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
            ));
        }
        if hc.memory_swap > 0 && hc.memory_swap < hc.memory {
            return Err(Error::Invalid("Minimum memoryswap limit should be larger than memory limit, see usage".into()));
        }
    }
    if let Some(c) = &r.cpus {
        hc.nano_cpus = units::nano_cpus(c)?;
    }
    if let Some(s) = r.cpu_shares {
        hc.cpu_shares = s;
    }
    if hc.cpu_shares < 0 {
        return Err(Error::Invalid(format!("invalid CPU shares: {}", hc.cpu_shares)));
    }
    if let Some(c) = &r.cpuset_cpus {
        hc.cpuset_cpus = c.clone();
    }
    if !hc.cpuset_cpus.is_empty() && !hc.cpuset_cpus.split(',').all(|range| range.split('-').all(|n| n.parse::<u32>().is_ok())) {
        return Err(Error::Invalid(format!("invalid value {} for cpuset cpus", hc.cpuset_cpus)));
    }
    if r.pids_limit.is_some() {
        hc.pids_limit = r.pids_limit;
    }
    Ok(())
}
