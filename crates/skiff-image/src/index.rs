//! The index of images and tags: `images/<id-hex>.json` records and `repositories.json`
//! (full reference -> image id). Written atomically (work-dir file + rename) by callers that
//! hold the store's exclusive lock.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::hex_of;
use crate::error::{json_err, IoContext, Result};
use crate::lock::WorkDir;
use crate::Layer;

/// What the store records per image (the config itself is the blob named by `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    /// Bottom first.
    pub layers: Vec<Layer>,
    /// Unpacked bytes of all layers.
    pub size: u64,
    /// `name@sha256:...` it was pulled by (the digest may be an index's), besides the
    /// `name@manifest_digest` of each tagged repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
}

impl ImageRecord {
    /// Every blob the image needs: config, manifest, layer blobs.
    pub fn blobs(&self) -> Vec<&str> {
        let mut v = vec![self.id.as_str(), self.manifest_digest.as_str()];
        v.extend(self.layers.iter().map(|l| l.digest.as_str()));
        v
    }
}

/// Tags: full reference (`docker.io/library/busybox:latest`) -> image id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repositories {
    pub tags: BTreeMap<String, String>,
}

impl Repositories {
    pub fn tags_of(&self, id: &str) -> Vec<String> {
        self.tags.iter().filter(|(_, v)| v.as_str() == id).map(|(k, _)| k.clone()).collect()
    }
}

fn record_path(root: &Path, id: &str) -> Result<PathBuf> {
    Ok(root.join("images").join(format!("{}.json", hex_of(id)?)))
}

pub fn read_record(root: &Path, id: &str) -> Result<Option<ImageRecord>> {
    let p = record_path(root, id)?;
    match fs::read(&p) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| json_err(format!("image record {}", p.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx("reading image record", &p),
    }
}

/// All records, by id.
pub fn read_records(root: &Path) -> Result<BTreeMap<String, ImageRecord>> {
    let dir = root.join("images");
    let mut out = BTreeMap::new();
    for e in fs::read_dir(&dir).ctx("reading", &dir)? {
        let e = e.ctx("reading", &dir)?;
        let name = e.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        let id = format!("sha256:{hex}");
        if let Some(rec) = read_record(root, &id)? {
            out.insert(id, rec);
        }
    }
    Ok(out)
}

pub fn write_record(root: &Path, work: &WorkDir, rec: &ImageRecord) -> Result<()> {
    let data = serde_json::to_vec_pretty(rec).map_err(|e| json_err("image record", e))?;
    work.write_atomic(&record_path(root, &rec.id)?, &data)
}

pub fn delete_record(root: &Path, id: &str) -> Result<()> {
    let p = record_path(root, id)?;
    match fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).ctx("removing", &p),
        _ => Ok(()),
    }
}

pub fn read_tags(root: &Path) -> Result<Repositories> {
    let p = root.join("repositories.json");
    match fs::read(&p) {
        Ok(data) => serde_json::from_slice(&data).map_err(|e| json_err(format!("{}", p.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Repositories::default()),
        Err(e) => Err(e).ctx("reading", &p),
    }
}

pub fn write_tags(root: &Path, work: &WorkDir, r: &Repositories) -> Result<()> {
    let data = serde_json::to_vec_pretty(r).map_err(|e| json_err("repositories.json", e))?;
    work.write_atomic(&root.join("repositories.json"), &data)
}
