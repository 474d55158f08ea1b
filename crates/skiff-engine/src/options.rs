//! What `skiff create`/`run` ask for, as the CLI collected it, and the parsing of its mount
//! flags (`-v`, `--mount`, `--tmpfs`) into mount points.

use std::path::Path;

use crate::error::{Error, Result};
use crate::record::MountPoint;

#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub image: String,
    pub cmd: Vec<String>,
    pub name: Option<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub read_only: bool,
    pub resources: Resources,
    pub ulimits: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    pub init: bool,
    pub restart: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub labels: Vec<String>,
    pub network: Option<String>,
    /// `--ip`, `--ip6`, `--network-alias`, `--mac-address` (for the `--network` given).
    pub ip: Option<String>,
    pub ip6: Option<String>,
    pub aliases: Vec<String>,
    pub mac_address: Option<String>,
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `-p` specs, `-P`, `--expose`.
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub expose: Vec<String>,
    pub auto_remove: bool,
    pub log_opts: Vec<String>,
}

/// Resource limits as `run` and `update` take them (Docker's flag values, parsed by
/// `engine::apply_resources`).
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<String>,
    pub cpu_shares: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
}

impl Resources {
    pub fn any(&self) -> bool {
        self.memory.is_some()
            || self.memory_swap.is_some()
            || self.cpus.is_some()
            || self.cpu_shares.is_some()
            || self.cpuset_cpus.is_some()
            || self.pids_limit.is_some()
    }
}

fn invalid_spec(spec: &str, why: &str) -> Error {
    Error::Invalid(format!("invalid spec: {spec}: {why}"))
}

fn check_destination(spec: &str, dest: &str) -> Result<()> {
    if !dest.starts_with('/') {
        return Err(Error::Invalid(format!("invalid mount config: mount path must be absolute: {spec}")));
    }
    if dest == "/" {
        return Err(Error::Invalid(format!("invalid mount config: destination can't be '/': {spec}")));
    }
    Ok(())
}

/// Applies `-v` options (`ro`, `rw`, propagation, `z`/`Z`, `nocopy`).
fn apply_opts(spec: &str, mp: &mut MountPoint, opts: &str) -> Result<()> {
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "readonly" => mp.rw = false,
            "rw" => mp.rw = true,
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => mp.propagation = o.to_string(),
            "z" | "Z" | "nocopy" | "delegated" | "cached" | "consistent" => {}
            _ => return Err(invalid_spec(spec, &format!("invalid mode: {o}"))),
        }
    }
    mp.mode = opts.to_string();
    Ok(())
}

/// `-v HOST:CTR[:OPTS]`, `-v NAME:CTR[:OPTS]`, `-v CTR`.
pub fn parse_volume(spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid_spec(spec, "empty section between colons"));
    }
    let (src, dst, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(invalid_spec(spec, "too many colons")),
    };
    check_destination(spec, dst)?;
    let mut mp = MountPoint {
        destination: clean(dst),
        rw: true,
        ..Default::default()
    };
    if src.starts_with('/') {
        mp.kind = "bind".into();
        mp.source = clean(src);
    } else if src.starts_with('.') {
        return Err(Error::Invalid(format!("invalid mount config: bind source path must be absolute: {src}")));
    } else {
        mp.kind = "volume".into();
        mp.name = src.to_string();
    }
    apply_opts(spec, &mut mp, opts)?;
    Ok(mp)
}

/// `--mount type=bind|volume|tmpfs,source=...,target=...,readonly,...`.
pub fn parse_mount(spec: &str) -> Result<MountPoint> {
    let mut mp = MountPoint {
        kind: "volume".into(),
        rw: true,
        ..Default::default()
    };
    let mut size = None;
    let mut mode = None;
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim()),
            None => (field.trim().to_ascii_lowercase(), ""),
        };
        match k.as_str() {
            "type" => mp.kind = v.to_string(),
            "source" | "src" => mp.source = v.to_string(),
            "target" | "destination" | "dst" => mp.destination = v.to_string(),
            "readonly" | "ro" => mp.rw = !matches!(v, "" | "1" | "true"),
            "bind-propagation" => mp.propagation = v.to_string(),
            "tmpfs-size" => size = Some(crate::units::ram_in_bytes(v)?),
            "tmpfs-mode" => mode = Some(u32::from_str_radix(v, 8).map_err(|_| Error::Invalid(format!("invalid tmpfs-mode: {v}")))?),
            "consistency" | "volume-nocopy" | "bind-nonrecursive" => {}
            _ => return Err(Error::Invalid(format!("invalid field '{k}' must be a key=value pair"))),
        }
    }
    if mp.destination.is_empty() {
        return Err(Error::Invalid("invalid argument for --mount: target is required".into()));
    }
    check_destination(spec, &mp.destination)?;
    mp.destination = clean(&mp.destination);
    match mp.kind.as_str() {
        "bind" => {
            if !mp.source.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute",
                    mp.source
                )));
            }
            mp.source = clean(&mp.source);
        }
        "volume" => {
            mp.name = std::mem::take(&mut mp.source);
        }
        "tmpfs" => {
            if !mp.source.is_empty() {
                return Err(Error::Invalid("invalid mount config for type \"tmpfs\": source must not be specified".into()));
            }
            mp.options = tmpfs_options(size, mode);
        }
        other => return Err(Error::Invalid(format!("invalid mount type: {other}"))),
    }
    Ok(mp)
}

fn tmpfs_options(size: Option<i64>, mode: Option<u32>) -> Vec<String> {
    let mut o = Vec::new();
    if let Some(s) = size {
        o.push(format!("size={s}"));
    }
    if let Some(m) = mode {
        o.push(format!("mode={m:o}"));
    }
    o
}

/// `--tmpfs /path[:opts]` (opts as for mount: `size=64m,mode=1777,ro,...`).
pub fn parse_tmpfs(spec: &str) -> Result<MountPoint> {
    let (dest, opts) = spec.split_once(':').unwrap_or((spec, ""));
    check_destination(spec, dest)?;
    let mut mp = MountPoint {
        kind: "tmpfs".into(),
        destination: clean(dest),
        rw: true,
        ..Default::default()
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => mp.rw = false,
            "rw" => mp.rw = true,
            _ => mp.options.push(o.to_string()),
        }
    }
    mp.mode = opts.to_string();
    Ok(mp)
}

/// Lexically cleans an absolute path (`//a/./b/` → `/a/b`); `..` stays relative to `/`.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// Checks that a bind source exists (podman's behaviour; Docker's `-v` would create it).
pub fn check_bind_source(mp: &MountPoint) -> Result<()> {
    if mp.kind == "bind" && !Path::new(&mp.source).exists() {
        return Err(Error::Invalid(format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            mp.source
        )));
    }
    Ok(())
}

/// `KEY=VALUE` lines of an env file (`#` comments and blank lines skipped; a bare `KEY`
/// takes the value from our own environment, as Docker does).
pub fn read_env_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Invalid(format!("open {path}: {e}")))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some((k, _)) = l.split_once('=') {
            if k.is_empty() || k.contains(char::is_whitespace) {
                return Err(Error::Invalid(format!("{path}:{}: variable '{k}' contains whitespaces", n + 1)));
            }
            out.push(l.to_string());
        } else if let Ok(v) = std::env::var(l.trim()) {
            out.push(format!("{}={v}", l.trim()));
        }
    }
    Ok(out)
}

/// `-e KEY` (no `=`) takes the value from our environment, or is dropped.
pub fn expand_env(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse() {
        let b = parse_volume("/src:/dst:ro").unwrap();
        assert_eq!(
            (b.kind.as_str(), b.source.as_str(), b.destination.as_str(), b.rw),
            ("bind", "/src", "/dst", false)
        );
        let v = parse_volume("data:/var/lib/x").unwrap();
        assert_eq!((v.kind.as_str(), v.name.as_str()), ("volume", "data"));
        let a = parse_volume("/anon").unwrap();
        assert_eq!((a.kind.as_str(), a.name.as_str()), ("volume", ""));
        assert_eq!(parse_volume(":/x").unwrap_err().to_string(), "invalid spec: :/x: empty section between colons");
        assert!(parse_volume("/a:rel").is_err());
        assert!(parse_volume("/a:/b:bogus").is_err());
        assert!(parse_volume("./a:/b").is_err());
        assert!(parse_volume("/a:/").is_err());
    }

    #[test]
    fn mounts_and_tmpfs_parse() {
        let m = parse_mount("type=bind,source=/s,target=/t,readonly").unwrap();
        assert_eq!((m.kind.as_str(), m.source.as_str(), m.destination.as_str(), m.rw), ("bind", "/s", "/t", false));
        let t = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(t.options, vec!["size=1048576".to_string(), "mode=1770".to_string()]);
        assert!(parse_mount("type=bind,source=rel,target=/t").is_err());
        assert!(parse_mount("type=nfs,target=/t").is_err());
        assert!(parse_mount("source=/x").is_err());
        let f = parse_tmpfs("/run:size=1m,ro").unwrap();
        assert_eq!((f.rw, f.options.clone()), (false, vec!["size=1m".to_string()]));
        assert_eq!(clean("//a/./b/../c/"), "/a/c");
    }

    #[test]
    fn bind_source_must_exist() {
        let mp = parse_volume("/definitely/not/here:/x").unwrap();
        assert!(check_bind_source(&mp)
            .unwrap_err()
            .to_string()
            .contains("bind source path does not exist: /definitely/not/here"));
    }
}
