//! run, create, start, attach, exec: the commands that start processes.

use std::os::fd::OwnedFd;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use skiff_engine::attach::{self, AttachOptions, Ended};
use skiff_engine::container::ExecRequest;
use skiff_engine::options::CreateRequest;
use skiff_engine::start::StartOptions;
use skiff_engine::{Engine, Error};

use crate::cli::{AttachArgs, ExecArgs, RunArgs, StartArgs};
use crate::{fail, Result};

fn request(a: &RunArgs) -> Result<CreateRequest> {
    if let Some(d) = &a.log_driver {
        if d != "json-file" {
            return Err(Error::Invalid(format!("log driver {d:?} is not supported (json-file only)")).into());
        }
    }
    if let Some(p) = &a.pull {
        if !matches!(p.as_str(), "always" | "missing" | "never") {
            return Err(Error::Invalid(format!("invalid pull option: '{p}': must be one of \"always\", \"missing\" or \"never\"")).into());
        }
    }
    let (image, cmd) = a
        .args
        .split_first()
        .ok_or_else(|| Error::Invalid("\"run\" requires at least 1 argument".into()))?;
    Ok(CreateRequest {
        image: image.clone(),
        cmd: cmd.to_vec(),
        name: a.name.clone(),
        entrypoint: a.entrypoint.clone(),
        env: a.env.clone(),
        env_files: a.env_file.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        interactive: a.interactive,
        tty: a.tty,
        volumes: a.volumes.clone(),
        mounts: a.mounts.clone(),
        tmpfs: a.tmpfs.clone(),
        read_only: a.read_only,
        resources: a.resources.request(),
        ulimits: a.ulimit.clone(),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        security_opt: a.security_opt.clone(),
        init: a.init,
        restart: a.restart.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        labels: a.labels.clone(),
        network: a.network.clone(),
        ip: a.ip.clone(),
        ip6: a.ip6.clone(),
        aliases: a.network_alias.clone(),
        mac_address: a.mac_address.clone(),
        add_hosts: a.add_host.clone(),
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_option.clone(),
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        expose: a.expose.clone(),
        auto_remove: a.rm,
        log_opts: a.log_opt.clone(),
    })
}

fn create_rec(e: &Engine, a: &RunArgs) -> Result<skiff_engine::ContainerRecord> {
    let req = request(a)?;
    if a.tty && !a.detach && !is_tty(0) && a.interactive {
        return Err(Error::Invalid("the input device is not a TTY".into()).into());
    }
    let policy = a.pull.as_deref().unwrap_or("missing");
    if policy == "always" {
        pull_for_run(e, &req.image)?;
    }
    let rec = match e.create(&req) {
        Err(Error::Image(ie)) if ie.to_string().starts_with("No such image") && policy == "missing" && super::registry::pullable(&req.image) => {
            eprintln!("Unable to find image '{}' locally", display_name(&req.image));
            pull_for_run(e, &req.image)?;
            e.create(&req)?
        }
        Err(Error::Image(ie)) if ie.to_string().starts_with("No such image") => {
            return Err(Error::Invalid(format!("Unable to find image '{}' locally: {ie}", req.image)).into());
        }
        r => r?,
    };
    if e.rootless && req.resources.any() {
        eprintln!("WARNING: resource limits are ignored: a rootless container has no cgroup of its own here (no delegated cgroup subtree)");
    }
    if let Some(f) = &a.cidfile {
        std::fs::write(f, &rec.id).map_err(|x| Error::Invalid(format!("write cidfile {f}: {x}")))?;
    }
    Ok(rec)
}

/// `busybox` -> `busybox:latest`, as Docker names what it is about to pull.
fn display_name(image: &str) -> String {
    skiff_image::reference::Reference::parse(image)
        .map(|r| r.with_default_tag().familiar())
        .unwrap_or_else(|_| image.to_string())
}

/// Pulls the image of a `run`/`create`, with progress on stderr (stdout is the container's).
fn pull_for_run(e: &Engine, image: &str) -> Result<()> {
    let opts = skiff_registry::PullOptions::default();
    super::registry::pull_image(e, image, &opts, false, super::progress::Out::Stderr).map_err(|x| crate::Failure { code: 125, msg: x.to_string() })?;
    Ok(())
}

fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty on a descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

fn detach_keys(k: &Option<String>) -> Result<Vec<u8>> {
    Ok(match k {
        Some(s) => attach::parse_detach_keys(s)?,
        None => attach::DEFAULT_DETACH_KEYS.to_vec(),
    })
}

fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).map_err(|x| Error::Other(format!("socketpair: {x}")).into())
}

/// Starts `id` attached to our stdio; returns the exit status as Docker's run does.
fn start_attached(e: &Engine, id: &str, tty: bool, stdin: bool, keys: Vec<u8>, sig_proxy: bool) -> Result<i32> {
    let (ours, theirs) = pair()?;
    let winsize = if tty { attach::terminal_size() } else { None };
    let rec = e.start(id, StartOptions { client: Some(theirs), winsize })?;
    // Without a restart policy we clean up after the exit ourselves, in-process: the monitor
    // then needs no exec of its exit command (it runs it if we die first).
    let cleanup = matches!(rec.host_config.restart_policy.name.as_str(), "" | "no");
    let opts = AttachOptions {
        stdin,
        tty: tty && is_tty(0),
        close_stdin: stdin && !tty,
        detach_keys: if tty { keys } else { Vec::new() },
        proxy_signals: sig_proxy && !tty,
        cleanup,
    };
    let ended = attach::session(&ours, &opts, &mut |sig| {
        let _ = e.kill(id, sig);
    })?;
    Ok(match ended {
        Ended::Exited(code) => {
            if cleanup && e.cleanup(id, &[], rec.state.monitor_pid).is_ok() {
                attach::cleaned(&ours);
            }
            code
        }
        Ended::Detached => {
            eprintln!();
            0
        }
        Ended::Lost => e.wait(id).unwrap_or(125),
    })
}

pub fn run(e: &Engine, a: RunArgs) -> Result<i32> {
    let rec = create_rec(e, &a)?;
    if a.detach {
        if let Err(err) = e.start(&rec.id, StartOptions::default()) {
            if a.rm {
                let _ = e.remove(&rec.id, true, true);
            }
            return Err(err.into());
        }
        println!("{}", rec.id);
        return Ok(0);
    }
    let keys = detach_keys(&a.detach_keys)?;
    match start_attached(e, &rec.id, a.tty, a.interactive, keys, a.sig_proxy) {
        Ok(code) => Ok(code),
        Err(f) => {
            if a.rm {
                let _ = e.remove(&rec.id, true, true);
            }
            Err(f)
        }
    }
}

pub fn create(e: &Engine, a: RunArgs) -> Result<i32> {
    let rec = create_rec(e, &a)?;
    println!("{}", rec.id);
    Ok(0)
}

pub fn start(e: &Engine, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(fail("you cannot start and attach multiple containers at once"));
        }
        let id = e.resolve(&a.containers[0])?;
        let rec = e.load(&id)?;
        let keys = detach_keys(&a.detach_keys)?;
        return start_attached(e, &id, rec.config.tty, a.interactive && rec.config.open_stdin, keys, true);
    }
    let mut failed = false;
    for c in &a.containers {
        match e.resolve(c).and_then(|id| e.start(&id, StartOptions::default())) {
            Ok(_) => println!("{c}"),
            Err(x) => {
                eprintln!("Error: {x}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(fail("failed to start containers"));
    }
    Ok(0)
}

pub fn attach(e: &Engine, a: AttachArgs) -> Result<i32> {
    let id = e.resolve(&a.container).map_err(|x| fail(x.to_string()))?;
    let rec = e.load(&id)?;
    if !rec.state.status.is_active() {
        return Err(fail("You cannot attach to a stopped container, start it first"));
    }
    let sock = attach::connect(e.layout.container(&id).path())?;
    let keys = detach_keys(&a.detach_keys)?;
    let stdin = !a.no_stdin && rec.config.open_stdin;
    let opts = AttachOptions {
        stdin,
        tty: rec.config.tty && is_tty(0),
        close_stdin: false,
        detach_keys: keys,
        proxy_signals: a.sig_proxy && !rec.config.tty,
        cleanup: false,
    };
    let ended = attach::session(&sock, &opts, &mut |sig| {
        let _ = e.kill(&id, sig);
    })?;
    Ok(match ended {
        Ended::Exited(code) => code,
        Ended::Detached => 0,
        Ended::Lost => e.wait(&id).unwrap_or(1),
    })
}

pub fn exec(e: &Engine, a: ExecArgs) -> Result<i32> {
    let (container, cmd) = a
        .args
        .split_first()
        .ok_or_else(|| Error::Invalid("\"exec\" requires at least 2 arguments".into()))?;
    if cmd.is_empty() {
        return Err(Error::Invalid("\"exec\" requires at least 2 arguments".into()).into());
    }
    if a.tty && a.interactive && !is_tty(0) {
        return Err(Error::Invalid("the input device is not a TTY".into()).into());
    }
    let id = e.resolve(container)?;
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(skiff_engine::options::read_env_file(f)?);
    }
    env.extend(a.env.iter().cloned());
    let req = ExecRequest {
        cmd: cmd.to_vec(),
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        env,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        privileged: a.privileged,
    };
    Ok(e.exec(&id, &req)?)
}
