//! pull, push, login, logout.

use std::io::{BufRead, Write};

use skiff_engine::Engine;
use skiff_image::reference;
use skiff_registry::auth::Credentials;
use skiff_registry::{Platform, PullOptions, PushOptions, RegistryOptions};

use super::progress::{reporter, Out};
use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs, RegistryArgs};
use crate::{fail, Result};

fn options(r: &RegistryArgs, creds: Option<&str>) -> Result<RegistryOptions> {
    Ok(RegistryOptions {
        tls_verify: r.tls_verify,
        cert_dir: r.cert_dir.clone(),
        creds: creds.map(Credentials::parse).transpose().map_err(|e| fail(e.to_string()))?,
        auth_file: r.authfile.clone(),
    })
}

/// Pulls `name` with progress to `out` (used by `run` and `create` too).
pub fn pull_image(e: &Engine, name: &str, opts: &PullOptions, quiet: bool, out: Out) -> std::result::Result<skiff_registry::Pulled, skiff_registry::Error> {
    let progress = reporter(quiet, out);
    skiff_registry::pull(&e.images, name, opts, progress.as_ref())
}

pub fn pull(e: &Engine, a: PullArgs) -> Result<i32> {
    let opts = PullOptions {
        platform: a.platform.as_deref().map(Platform::parse).transpose().map_err(|x| fail(x.to_string()))?,
        registry: options(&a.registry, a.creds.as_deref())?,
        ..Default::default()
    };
    if a.all_tags {
        let progress = reporter(a.quiet, Out::Stdout);
        let pulled = skiff_registry::pull_all_tags(&e.images, &a.name, &opts, progress.as_ref()).map_err(|x| fail(x.to_string()))?;
        drop(progress);
        for p in pulled {
            println!("{}", p.reference);
        }
        return Ok(0);
    }
    let pulled = pull_image(e, &a.name, &opts, a.quiet, Out::Stdout).map_err(|x| fail(x.to_string()))?;
    println!("{}", pulled.reference);
    Ok(0)
}

pub fn push(e: &Engine, a: PushArgs) -> Result<i32> {
    let opts = PushOptions {
        format: a
            .format
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|x: skiff_registry::Error| fail(x.to_string()))?,
        registry: options(&a.registry, a.creds.as_deref())?,
    };
    let progress = reporter(a.quiet, Out::Stdout);
    let pushed = skiff_registry::push(&e.images, &a.image, a.destination.as_deref(), &opts, progress.as_ref()).map_err(|x| fail(x.to_string()))?;
    drop(progress);
    if a.quiet {
        println!("{}", pushed.digest);
    }
    Ok(0)
}

fn prompt(label: &str, echo: bool) -> Result<String> {
    eprint!("{label}: ");
    let _ = std::io::stderr().flush();
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|x| fail(format!("cannot prompt for the {label}: {x}; use -u and --password-stdin")))?;
    let restore = if echo { None } else { no_echo(&tty) };
    let mut line = String::new();
    let r = std::io::BufReader::new(&tty).read_line(&mut line);
    if let Some(t) = restore {
        let _ = nix::sys::termios::tcsetattr(&tty, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    r.map_err(|x| fail(format!("reading the {label}: {x}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns echo off on the terminal; returns the settings to restore.
fn no_echo(tty: &std::fs::File) -> Option<nix::sys::termios::Termios> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let old = tcgetattr(tty).ok()?;
    let mut t = old.clone();
    t.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(tty, SetArg::TCSANOW, &t).ok()?;
    Some(old)
}

pub fn login(a: LoginArgs) -> Result<i32> {
    if a.password.is_some() && a.password_stdin {
        return Err(fail("--password and --password-stdin are mutually exclusive"));
    }
    let username = match a.username {
        Some(u) => u,
        None if a.password_stdin => return Err(fail("Must provide --username with --password-stdin")),
        None => prompt("Username", true)?,
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_line(&mut s)
            .map_err(|x| fail(format!("reading the password from stdin: {x}")))?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        prompt("Password", false)?
    };
    if username.is_empty() || password.is_empty() {
        return Err(fail("username and password are required"));
    }
    let opts = options(&a.registry, None)?;
    let server = a.server.as_deref().unwrap_or("docker.io");
    let creds = Credentials { username, password };
    skiff_registry::login(server, &creds, &opts).map_err(|x| fail(format!("login to {server} failed: {x}")))?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(a: LogoutArgs) -> Result<i32> {
    let server = a.server.as_deref().unwrap_or("docker.io");
    let host = skiff_registry::auth::normalize(server);
    if skiff_registry::logout(server, a.authfile.as_deref()).map_err(|x| fail(x.to_string()))? {
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(0)
}

/// Whether `name` is something a registry could have (not an image id).
pub fn pullable(name: &str) -> bool {
    reference::Reference::parse(name).is_ok() && !name.starts_with("sha256:")
}
