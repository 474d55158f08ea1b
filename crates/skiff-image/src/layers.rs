//! Unpacked layers: `layers/<diffid-hex>/{diff/,meta.json}`, each unpacked once and shared.
//! A layer is unpacked in the operation's work dir and renamed into place whole, so a
//! half-unpacked layer is never visible.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{hex_of, HashReader};
use crate::error::{json_err, Error, IoContext, Result};
use crate::lock::WorkDir;
use crate::unpack::{unpack, UnpackOptions};

/// What is recorded beside an unpacked layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    pub diff_id: String,
    /// Bytes of the uncompressed tar (what `save` writes for a docker-archive).
    pub tar_size: u64,
    /// Bytes of regular file content.
    pub size: u64,
}

pub fn dir(root: &Path, diff_id: &str) -> Result<PathBuf> {
    Ok(root.join("layers").join(hex_of(diff_id)?))
}

pub fn diff_dir(root: &Path, diff_id: &str) -> Result<PathBuf> {
    Ok(dir(root, diff_id)?.join("diff"))
}

pub fn exists(root: &Path, diff_id: &str) -> bool {
    dir(root, diff_id).is_ok_and(|d| d.join("meta.json").exists())
}

pub fn read_meta(root: &Path, diff_id: &str) -> Result<LayerMeta> {
    let p = dir(root, diff_id)?.join("meta.json");
    let data = fs::read(&p).ctx("reading layer metadata", &p)?;
    serde_json::from_slice(&data).map_err(|e| json_err(format!("layer metadata {}", p.display()), e))
}

/// A layer unpacked in a work dir, waiting to be placed.
#[derive(Debug)]
pub struct StagedLayer {
    pub meta: LayerMeta,
    pub path: PathBuf,
}

/// Unpacks the uncompressed tar stream `r` into the work dir, hashing it; with
/// `expected_diff_id`, a different digest is an error. `label` names the layer in errors.
pub fn stage(work: &WorkDir, label: &str, r: impl Read, expected_diff_id: Option<&str>, opts: UnpackOptions) -> Result<StagedLayer> {
    let path = work.child("layer");
    let diff = path.join("diff");
    fs::create_dir_all(&diff).ctx("creating", &diff)?;
    let result = stage_into(&path, &diff, label, r, expected_diff_id, opts);
    if result.is_err() {
        let _ = crate::lock::remove_tree(&path);
    }
    result
}

fn stage_into(path: &Path, diff: &Path, label: &str, r: impl Read, expected: Option<&str>, opts: UnpackOptions) -> Result<StagedLayer> {
    let mut hr = HashReader::new(r);
    let stats = unpack(label, &mut hr, diff, opts)?;
    hr.drain().map_err(|e| Error::LayerRead {
        layer: label.to_string(),
        source: e,
    })?;
    let (diff_id, tar_size) = hr.finish();
    if let Some(exp) = expected {
        if exp != diff_id {
            return Err(Error::DigestMismatch {
                what: format!("diff_id of layer {label}"),
                expected: exp.to_string(),
                actual: diff_id,
            });
        }
    }
    let meta = LayerMeta {
        diff_id,
        tar_size,
        size: stats.size,
    };
    let json = serde_json::to_vec(&meta).map_err(|e| json_err("layer metadata", e))?;
    let mp = path.join("meta.json");
    fs::write(&mp, json).ctx("writing", &mp)?;
    Ok(StagedLayer {
        meta,
        path: path.to_path_buf(),
    })
}

/// Moves a staged layer into `layers/` unless it is already there. Call under the lock.
pub fn place(root: &Path, s: &StagedLayer) -> Result<()> {
    let dest = dir(root, &s.meta.diff_id)?;
    if dest.exists() {
        return Ok(());
    }
    fs::rename(&s.path, &dest).ctx("placing layer", &dest)
}
