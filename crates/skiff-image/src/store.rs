//! The store: opening (directories, stale work dirs, interrupted placements), listing,
//! resolving names, tags, and the one critical section that adds an image.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use crate::blobs::{self, Staged};
use crate::error::{json_err, Error, IoContext, Result};
use crate::index::{self, ImageRecord, Repositories};
use crate::layers::{self, StagedLayer};
use crate::lock::{clean_stale, remove_tree, StoreLock, WorkDir};
use crate::reference::Reference;
use crate::unpack::UnpackOptions;

/// Present while blobs/layers are being placed; found at `open` only if that was interrupted.
const GC_MARKER: &str = "gc-pending";

/// Options of a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Not root: no device nodes in layers, no chown, `user.overlay.*` xattrs.
    pub rootless: bool,
}

/// A local image store rooted at a directory (e.g. `/var/lib/skiff/image`).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    opts: StoreOptions,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    /// `sha256:` of the blob as stored (compressed or not).
    pub digest: String,
    pub media_type: String,
    /// Bytes of the blob.
    pub size: u64,
    /// Bytes of regular file content once unpacked.
    #[serde(default)]
    pub unpacked_size: u64,
}

/// An image as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    /// Full references, e.g. `docker.io/library/busybox:latest`, sorted.
    pub tags: Vec<String>,
    /// `name@sha256:<manifest digest>` for each tagged repository (Docker's RepoDigests).
    pub digests: Vec<String>,
    pub manifest_digest: String,
    pub config: ImageConfiguration,
    /// Bottom first.
    pub layers: Vec<Layer>,
    /// Unpacked bytes of all layers.
    pub size: u64,
    pub created: Option<String>,
}

impl Image {
    /// The 12-digit short id docker prints.
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }
}

/// What an image addition brings along, staged in the operation's work dir.
#[derive(Debug, Default)]
pub(crate) struct Staging {
    pub blobs: Vec<Staged>,
    pub layers: Vec<StagedLayer>,
}

impl Store {
    /// Opens (creating) a store: makes its directories, removes what killed processes left
    /// in `tmp/`, and finishes an interrupted placement by collecting unreferenced content.
    pub fn open(root: impl Into<PathBuf>, opts: StoreOptions) -> Result<Store> {
        let root = root.into();
        for d in ["blobs/sha256", "layers", "images", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).ctx("creating", &p)?;
        }
        let store = Store { root, opts };
        clean_stale(&store.tmp())?;
        if store.root.join(GC_MARKER).exists() {
            let _lock = store.lock(true)?;
            if store.root.join(GC_MARKER).exists() {
                store.collect_garbage()?;
                let m = store.root.join(GC_MARKER);
                fs::remove_file(&m).ctx("removing", &m)?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn options(&self) -> StoreOptions {
        self.opts
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn work(&self) -> Result<WorkDir> {
        WorkDir::new(&self.tmp())
    }

    pub(crate) fn lock(&self, exclusive: bool) -> Result<StoreLock> {
        StoreLock::acquire(&self.root, exclusive)
    }

    pub(crate) fn unpack_options(&self) -> UnpackOptions {
        UnpackOptions { rootless: self.opts.rootless }
    }

    /// Every image, sorted by id.
    pub fn list(&self) -> Result<Vec<Image>> {
        let _lock = self.lock(false)?;
        let tags = index::read_tags(&self.root)?;
        index::read_records(&self.root)?.values().map(|r| self.image_from(r, &tags)).collect()
    }

    /// Finds an image by name (`busybox`, `busybox:latest`, `host:5000/ns/app:v1`), by id
    /// (`sha256:<hex>`, `<hex>`, an unambiguous hex prefix) or by `name@sha256:<manifest>`.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let _lock = self.lock(false)?;
        let tags = index::read_tags(&self.root)?;
        let rec = self.find(name, &tags)?;
        self.image_from(&rec, &tags)
    }

    pub(crate) fn find(&self, name: &str, tags: &Repositories) -> Result<ImageRecord> {
        self.find_how(name, tags).map(|(r, _)| r)
    }

    /// The record for `name`, and the full reference it was found by (None: by id).
    pub(crate) fn find_how(&self, name: &str, tags: &Repositories) -> Result<(ImageRecord, Option<String>)> {
        let not_found = || Error::ImageNotFound(name.to_string());
        if let Some(hex) = name.strip_prefix("sha256:") {
            if crate::digest::is_hex64(hex) {
                let rec = index::read_record(&self.root, name)?.ok_or_else(not_found)?;
                return Ok((rec, None));
            }
            return self.find_prefix(name, hex).map(|r| (r, None));
        }
        if let Ok(r) = Reference::parse(name) {
            if let Some(d) = &r.digest {
                let repo = r.name();
                let exact = format!("{repo}@{d}");
                let found = index::read_records(&self.root)?.into_values().find(|rec| {
                    rec.repo_digests.contains(&exact)
                        || &rec.manifest_digest == d && tags.tags_of(&rec.id).iter().any(|t| Reference::parse(t).is_ok_and(|tr| tr.name() == repo))
                });
                return found.map(|rec| (rec, Some(r.to_string()))).ok_or_else(not_found);
            }
            let full = r.with_default_tag().to_string();
            if let Some(id) = tags.tags.get(&full) {
                if let Some(rec) = index::read_record(&self.root, id)? {
                    return Ok((rec, Some(full)));
                }
            }
        }
        self.find_prefix(name, name).map(|r| (r, None))
    }

    /// The one image whose id starts with the hex digits `prefix` (Docker's short ids).
    fn find_prefix(&self, name: &str, prefix: &str) -> Result<ImageRecord> {
        let not_found = || Error::ImageNotFound(name.to_string());
        let is_hex = !prefix.is_empty() && prefix.len() <= 64 && prefix.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_hex {
            return Err(not_found());
        }
        let prefix = format!("sha256:{prefix}");
        let mut hits = index::read_records(&self.root)?.into_values().filter(|rec| rec.id.starts_with(&prefix));
        let first = hits.next().ok_or_else(not_found)?;
        if hits.next().is_some() {
            return Err(Error::AmbiguousId(name.to_string()));
        }
        Ok(first)
    }

    /// Builds the public view of a record (reads and verifies the config blob).
    pub(crate) fn image_from(&self, rec: &ImageRecord, tags: &Repositories) -> Result<Image> {
        let config = self.config_of(&rec.id)?;
        let tag_list = tags.tags_of(&rec.id);
        let mut digests = BTreeSet::new();
        for t in &tag_list {
            if let Ok(r) = Reference::parse(t) {
                digests.insert(format!("{}@{}", r.name(), rec.manifest_digest));
            }
        }
        digests.extend(rec.repo_digests.iter().cloned());
        Ok(Image {
            id: rec.id.clone(),
            tags: tag_list,
            digests: digests.into_iter().collect(),
            manifest_digest: rec.manifest_digest.clone(),
            created: config.created().clone(),
            config,
            layers: rec.layers.clone(),
            size: rec.size,
        })
    }

    pub(crate) fn config_of(&self, id: &str) -> Result<ImageConfiguration> {
        let data = blobs::read(&self.root, id)?;
        serde_json::from_slice(&data).map_err(|e| json_err(format!("image config {id}"), e))
    }

    /// The unpacked directories of the image's layers, bottom first; each exists.
    pub fn layer_dirs(&self, img: &Image) -> Result<Vec<PathBuf>> {
        img.layers
            .iter()
            .map(|l| {
                let d = layers::diff_dir(&self.root, &l.diff_id)?;
                if !d.is_dir() {
                    return Err(Error::Io {
                        op: "finding unpacked layer",
                        path: d,
                        source: std::io::ErrorKind::NotFound.into(),
                    });
                }
                Ok(d)
            })
            .collect()
    }

    /// Adds the tag `target` (`busybox` means `busybox:latest`) to the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let full = tag_name(target)?;
        let work = self.work()?;
        let _lock = self.lock(true)?;
        let mut tags = index::read_tags(&self.root)?;
        let rec = self.find(source, &tags)?;
        tags.tags.insert(full, rec.id);
        index::write_tags(&self.root, &work, &tags)
    }

    /// Places what `staging` holds and records the image and its tags, under the lock. An
    /// image with the same id already present keeps its record (only the tags are added).
    /// Fails with [`Error::Vanished`] naming a layer or blob that is neither present nor staged
    /// (a concurrent `remove` took it away after the caller saw it: the caller retries).
    pub(crate) fn add_image(&self, work: &WorkDir, rec: ImageRecord, staging: &Staging, new_tags: &[String]) -> Result<Image> {
        let _lock = self.lock(true)?;
        let staged_blobs: HashSet<&str> = staging.blobs.iter().map(|b| b.digest.as_str()).collect();
        let staged_layers: HashSet<&str> = staging.layers.iter().map(|l| l.meta.diff_id.as_str()).collect();
        let existing = index::read_record(&self.root, &rec.id)?;
        let rec = match existing {
            Some(mut old) => {
                let before = old.repo_digests.len();
                for d in &rec.repo_digests {
                    if !old.repo_digests.contains(d) {
                        old.repo_digests.push(d.clone());
                    }
                }
                if old.repo_digests.len() != before {
                    index::write_record(&self.root, work, &old)?;
                }
                old
            }
            None => rec,
        };
        for b in rec.blobs() {
            if !staged_blobs.contains(b) && !blobs::exists(&self.root, b) {
                return Err(Error::Vanished(format!("blob {b}")));
            }
        }
        for l in &rec.layers {
            if !staged_layers.contains(l.diff_id.as_str()) && !layers::exists(&self.root, &l.diff_id) {
                return Err(Error::Vanished(format!("layer {}", l.diff_id)));
            }
        }
        let marker = self.root.join(GC_MARKER);
        fs::write(&marker, b"").ctx("writing", &marker)?;
        let needed: HashSet<&str> = rec.blobs().into_iter().collect();
        for b in &staging.blobs {
            if needed.contains(b.digest.as_str()) {
                blobs::place(&self.root, b)?;
            }
        }
        for l in &staging.layers {
            if rec.layers.iter().any(|x| x.diff_id == l.meta.diff_id) {
                layers::place(&self.root, l)?;
            }
        }
        index::write_record(&self.root, work, &rec)?;
        let mut tags = index::read_tags(&self.root)?;
        if !new_tags.is_empty() {
            for t in new_tags {
                tags.tags.insert(t.clone(), rec.id.clone());
            }
            index::write_tags(&self.root, work, &tags)?;
        }
        fs::remove_file(&marker).ctx("removing", &marker)?;
        self.image_from(&rec, &tags)
    }

    /// Removes blobs and layers no record references, records whose content is missing and
    /// tags of missing images. Call under the exclusive lock.
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        let work = self.work()?;
        let mut records = index::read_records(&self.root)?;
        records.retain(|id, rec| {
            let complete = rec.blobs().iter().all(|b| blobs::exists(&self.root, b)) && rec.layers.iter().all(|l| layers::exists(&self.root, &l.diff_id));
            if !complete {
                tracing::warn!("image {id} is incomplete: removing its record");
                let _ = index::delete_record(&self.root, id);
            }
            complete
        });
        let mut tags = index::read_tags(&self.root)?;
        let before = tags.tags.len();
        tags.tags.retain(|_, id| records.contains_key(id));
        if tags.tags.len() != before {
            index::write_tags(&self.root, &work, &tags)?;
        }
        let blobs_used: HashSet<String> = records.values().flat_map(|r| r.blobs().into_iter().map(str::to_string)).collect();
        let layers_used: HashSet<String> = records.values().flat_map(|r| r.layers.iter().map(|l| l.diff_id.clone())).collect();
        self.sweep("blobs/sha256", &work, |hex| blobs_used.contains(&format!("sha256:{hex}")))?;
        self.sweep("layers", &work, |hex| layers_used.contains(&format!("sha256:{hex}")))?;
        Ok(())
    }

    fn sweep(&self, dir: &str, work: &WorkDir, keep: impl Fn(&str) -> bool) -> Result<()> {
        let d = self.root.join(dir);
        for e in fs::read_dir(&d).ctx("reading", &d)? {
            let e = e.ctx("reading", &d)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep(&name) {
                self.discard(&e.path(), work)?;
            }
        }
        Ok(())
    }

    /// Moves `path` into the work dir (atomic) and deletes it there.
    pub(crate) fn discard(&self, path: &Path, work: &WorkDir) -> Result<()> {
        let dest = work.child("del");
        match fs::rename(path, &dest) {
            Ok(()) => remove_tree(&dest).or_else(|_| fs::remove_file(&dest).ctx("removing", &dest)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx("removing", path),
        }
    }
}

/// The full reference a tag name stands for; digests are refused.
pub(crate) fn tag_name(target: &str) -> Result<String> {
    let r = Reference::parse(target)?;
    if r.digest.is_some() {
        return Err(Error::InvalidReference {
            reference: target.to_string(),
            reason: "a tag cannot contain a digest".to_string(),
        });
    }
    Ok(r.with_default_tag().to_string())
}
