//! Named volumes (`volumes/<name>/_data`, metadata in `volumes/<name>/volume.json`), Docker's
//! `local` driver.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: String,
    pub name: String,
    pub options: BTreeMap<String, String>,
    pub scope: String,
    /// Made for `-v /path` without a name: removed with its container by `rm -v` / `--rm`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
}

#[derive(Debug, Clone)]
pub struct Volumes {
    pub dir: PathBuf,
}

fn valid_name(n: &str) -> bool {
    n.len() >= 2 && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Volumes {
    fn meta(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("volume.json")
    }

    /// Creates a volume (returns the existing one if `name` is taken, as Docker does).
    pub fn create(&self, name: Option<&str>, labels: BTreeMap<String, String>) -> Result<Volume> {
        let (name, anonymous) = match name {
            Some(n) if !n.is_empty() => (n.to_string(), false),
            _ => (crate::engine::random_id(), true),
        };
        if !valid_name(&name) {
            return Err(Error::Invalid(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        if let Ok(v) = self.inspect(&name) {
            return Ok(v);
        }
        let tmp = self.dir.join(format!(".tmp-{}", crate::engine::random_id()));
        let data = tmp.join("_data");
        std::fs::create_dir_all(&data).map_err(|e| Error::io("mkdir", &data, e))?;
        let v = Volume {
            created_at: skiff_monitor::time::now(),
            driver: "local".into(),
            labels,
            mountpoint: self.dir.join(&name).join("_data").to_string_lossy().into_owned(),
            name: name.clone(),
            options: BTreeMap::new(),
            scope: "local".into(),
            anonymous,
        };
        let meta = tmp.join("volume.json");
        std::fs::write(&meta, serde_json::to_vec_pretty(&v).unwrap_or_default()).map_err(|e| Error::io("write", &meta, e))?;
        match std::fs::rename(&tmp, self.dir.join(&name)) {
            Ok(()) => Ok(v),
            Err(_) => {
                // Someone made it first.
                let _ = std::fs::remove_dir_all(&tmp);
                self.inspect(&name)
            }
        }
    }

    pub fn inspect(&self, name: &str) -> Result<Volume> {
        if !valid_name(name) {
            return Err(Error::NoSuchVolume(name.to_string()));
        }
        let bytes = std::fs::read(self.meta(name)).map_err(|_| Error::NoSuchVolume(name.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Other(format!("volume {name}: {e}")))
    }

    pub fn list(&self) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return Ok(out) };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".tmp-") {
                // Left by a create killed midway.
                let _ = std::fs::remove_dir_all(e.path());
                continue;
            }
            if let Ok(v) = self.inspect(&n) {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume; `in_use` names the containers using it.
    pub fn remove(&self, name: &str, in_use: &[String]) -> Result<()> {
        self.inspect(name)?;
        if !in_use.is_empty() {
            return Err(Error::Conflict(format!("remove {name}: volume is in use - [{}]", in_use.join(", "))));
        }
        let dir = self.dir.join(name);
        // Rename first: a crash mid-delete leaves a .tmp- dir that `list` clears, never a
        // half-deleted volume under its name.
        let gone = self.dir.join(format!(".tmp-{}", crate::engine::random_id()));
        std::fs::rename(&dir, &gone).map_err(|e| Error::io("remove volume", &dir, e))?;
        std::fs::remove_dir_all(&gone).map_err(|e| Error::io("remove volume", &gone, e))
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }
}

/// Size of a directory tree in bytes (for `system df`).
pub fn tree_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else { return 0 };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p).map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let vols = Volumes { dir: d.path().to_path_buf() };
        let v = vols.create(Some("data"), BTreeMap::new()).unwrap();
        assert!(Path::new(&v.mountpoint).is_dir());
        assert_eq!(vols.create(Some("data"), BTreeMap::new()).unwrap().created_at, v.created_at);
        let anon = vols.create(None, BTreeMap::new()).unwrap();
        assert!(anon.anonymous && anon.name.len() == 64);
        assert_eq!(vols.list().unwrap().len(), 2);
        assert!(vols
            .remove("data", &["web".into()])
            .unwrap_err()
            .to_string()
            .contains("volume is in use - [web]"));
        vols.remove("data", &[]).unwrap();
        assert!(matches!(vols.inspect("data"), Err(Error::NoSuchVolume(_))));
        assert!(vols.create(Some("bad/name"), BTreeMap::new()).is_err());
    }
}
