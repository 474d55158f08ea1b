//! Registry credentials: skiff's own file (`$REGISTRY_AUTH_FILE`, else
//! `$XDG_CONFIG_HOME/skiff/auth.json`, else `~/.config/skiff/auth.json`), written mode 0600 in
//! Docker's `config.json` format, and Docker's own `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`), read as well. Credential helpers (`credsStore`) are not run.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.username)
    }
}

impl Credentials {
    /// Parses `USER:PASS` (`--creds`); the password may contain `:`.
    pub fn parse(s: &str) -> Result<Credentials> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                username: u.into(),
                password: p.into(),
            }),
            _ => Err(Error::Other("credentials must be USERNAME:PASSWORD".into())),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// Everything else of a Docker config, kept as it was.
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    auth: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "identitytoken")]
    identity_token: Option<String>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// Where `login` writes.
pub fn default_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")))?;
    Some(config.join("skiff/auth.json"))
}

/// Docker's client config, read for credentials.
pub fn docker_file() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
        Some(d) => Some(PathBuf::from(d).join("config.json")),
        None => home().map(|h| h.join(".docker/config.json")),
    }
}

/// The key a registry is filed under: `host[:port]`, Docker Hub as `docker.io`.
pub fn normalize(registry: &str) -> String {
    let s = registry.trim_start_matches("https://").trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".into(),
        h => h.to_string(),
    }
}

fn read(path: &Path) -> Result<ConfigFile> {
    match fs::read(path) {
        Ok(data) if data.iter().all(u8::is_ascii_whitespace) => Ok(ConfigFile::default()),
        Ok(data) => serde_json::from_slice(&data).map_err(|e| Error::bad(format!("credentials file {}", path.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

fn decode(entry: &AuthEntry) -> Option<Credentials> {
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        });
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(entry.auth.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some(Credentials {
        username: u.into(),
        password: p.into(),
    })
}

fn find(cfg: &ConfigFile, registry: &str) -> Option<Credentials> {
    let want = normalize(registry);
    cfg.auths.iter().find(|(k, _)| normalize(k) == want).and_then(|(_, e)| decode(e))
}

/// The credentials for `registry` (`host[:port]`): `file` (default: skiff's) first, then
/// Docker's config. A file that cannot be parsed is an error naming it.
pub fn lookup(file: Option<&Path>, registry: &str) -> Result<Option<Credentials>> {
    let ours = file.map(Path::to_path_buf).or_else(default_file);
    for p in ours.iter().chain(docker_file().iter()) {
        if let Some(c) = find(&read(p)?, registry) {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Writes `cfg` to `path` atomically, readable only by the user (dir 0700, file 0600).
fn write(path: &Path, cfg: &ConfigFile) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("creating", dir, e))?;
    }
    let data = serde_json::to_vec_pretty(cfg).map_err(|e| Error::bad("credentials", e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("creating", &tmp, e))?;
    f.write_all(&data).and_then(|_| f.sync_all()).map_err(|e| Error::io("writing", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io("writing", path, e))
}

/// Records credentials for `registry` in `file` (default: skiff's).
pub fn store(file: Option<&Path>, registry: &str, creds: &Credentials) -> Result<PathBuf> {
    let path = file
        .map(Path::to_path_buf)
        .or_else(default_file)
        .ok_or_else(|| Error::Other("no HOME: pass --authfile".into()))?;
    let mut cfg = read(&path)?;
    let key = normalize(registry);
    cfg.auths.retain(|k, _| normalize(k) != key);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.username, creds.password));
    cfg.auths.insert(key, AuthEntry { auth, ..Default::default() });
    write(&path, &cfg)?;
    Ok(path)
}

/// Forgets the credentials for `registry` in `file` (default: skiff's); false when there
/// were none.
pub fn remove(file: Option<&Path>, registry: &str) -> Result<bool> {
    let Some(path) = file.map(Path::to_path_buf).or_else(default_file) else {
        return Ok(false);
    };
    let mut cfg = read(&path)?;
    let key = normalize(registry);
    let before = cfg.auths.len();
    cfg.auths.retain(|k, _| normalize(k) != key);
    if cfg.auths.len() == before {
        return Ok(false);
    }
    write(&path, &cfg)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn store_lookup_remove_and_docker_fallback() {
        let t = tempfile::tempdir().unwrap();
        let ours = t.path().join("cfg/skiff/auth.json");
        let c = Credentials {
            username: "alice".into(),
            password: "s3:cret".into(),
        };
        store(Some(&ours), "127.0.0.1:5000", &c).unwrap();
        assert_eq!(fs::metadata(&ours).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(ours.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(lookup(Some(&ours), "https://127.0.0.1:5000/v2/").unwrap(), Some(c.clone()));
        assert!(lookup(Some(&ours), "127.0.0.1:5001").unwrap().is_none() || docker_file().is_some_and(|d| d.exists()));
        assert!(remove(Some(&ours), "127.0.0.1:5000").unwrap());
        assert!(!remove(Some(&ours), "127.0.0.1:5000").unwrap());
        let text = fs::read_to_string(&ours).unwrap();
        assert!(!text.contains("5000"), "{text}");

        // Docker's format: the Hub under its legacy URL, other keys kept.
        let docker = t.path().join("docker.json");
        fs::write(&docker, r#"{"auths":{"https://index.docker.io/v1/":{"auth":"Ym9iOnB3"}},"credsStore":"x"}"#).unwrap();
        assert_eq!(find(&read(&docker).unwrap(), "docker.io").unwrap().username, "bob");
        store(Some(&docker), "docker.io", &c).unwrap();
        let back = fs::read_to_string(&docker).unwrap();
        assert!(back.contains("credsStore") && !back.contains("index.docker.io"), "{back}");

        fs::write(&docker, "{not json").unwrap();
        let err = lookup(Some(&docker), "x").unwrap_err().to_string();
        assert!(err.contains("docker.json"), "{err}");
        assert!(Credentials::parse("u:p:q").unwrap().password == "p:q" && Credentials::parse(":p").is_err());
    }
}
