//! `remove` (docker rmi) and `prune` (docker image prune): untagging, deleting images, and
//! deleting the blobs and layers no remaining image uses.

use std::collections::HashSet;
use std::fmt;

use crate::error::{Error, Result};
use crate::index::{self, ImageRecord};
use crate::lock::WorkDir;
use crate::reference::{familiar, Reference};
use crate::{blobs, layers, Store};

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A reference removed, in familiar form (`busybox:latest`).
    Untagged(String),
    /// An image id (`sha256:...`) or a layer diff_id deleted.
    Deleted(String),
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removed::Untagged(s) => write!(f, "Untagged: {s}"),
            Removed::Deleted(s) => write!(f, "Deleted: {s}"),
        }
    }
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

fn in_use_by(c: &str) -> String {
    if c.is_empty() {
        "a container".to_string()
    } else {
        format!("container {c}")
    }
}

impl Store {
    /// `docker rmi NAME`. By tag: untags; the last tag also deletes the image. By id: an
    /// image tagged in several repositories needs `force`; all its tags go, then the image.
    /// An image in use (per `in_use`) is never deleted: without `force` that is an error,
    /// with `force` it is only untagged.
    pub fn remove(&self, name: &str, force: bool, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<Removed>> {
        self.remove_with(name, force, &|id| in_use(id).then(String::new))
    }

    /// [`Store::remove`] with a callback that names the container using the image (the
    /// error then names it).
    pub fn remove_with(&self, name: &str, force: bool, user: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Removed>> {
        let work = self.work()?;
        let _lock = self.lock(true)?;
        let mut tags = index::read_tags(&self.root_path())?;
        let (rec, by_ref) = self.find_how(name, &tags)?;
        let image_tags = tags.tags_of(&rec.id);
        let mut out = Vec::new();
        let user_of = user(&rec.id);

        let by_digest = by_ref.as_deref().is_some_and(|r| r.contains('@'));
        let to_untag: Vec<String> = match &by_ref {
            Some(full) if !by_digest => {
                if image_tags.len() > 1 {
                    tags.tags.remove(full);
                    index::write_tags(&self.root_path(), &work, &tags)?;
                    return Ok(vec![Removed::Untagged(familiar(full))]);
                }
                if let (Some(c), false) = (&user_of, force) {
                    return Err(Error::Conflict(format!(
                        "unable to remove repository reference \"{name}\" (must force) - {} is using its referenced image {}",
                        in_use_by(c),
                        short(&rec.id)
                    )));
                }
                vec![full.clone()]
            }
            _ => {
                let repos: HashSet<String> = image_tags.iter().filter_map(|t| Reference::parse(t).ok().map(|r| r.name())).collect();
                if repos.len() > 1 && !force {
                    return Err(Error::Conflict(format!(
                        "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        short(&rec.id)
                    )));
                }
                if let (Some(c), false) = (&user_of, force) {
                    return Err(Error::Conflict(format!(
                        "unable to delete {} (must be forced) - image is being used by {}",
                        short(&rec.id),
                        in_use_by(c)
                    )));
                }
                image_tags.clone()
            }
        };
        for t in &to_untag {
            tags.tags.remove(t);
            out.push(Removed::Untagged(familiar(t)));
        }
        if !to_untag.is_empty() {
            index::write_tags(&self.root_path(), &work, &tags)?;
        }
        if user_of.is_none() && tags.tags_of(&rec.id).is_empty() {
            out.extend(self.delete_image(&work, &rec)?);
        }
        Ok(out)
    }

    /// `docker image prune`: removes dangling (untagged) images; with `all`, every image not
    /// in use.
    pub fn prune(&self, all: bool, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<Removed>> {
        let work = self.work()?;
        let _lock = self.lock(true)?;
        let mut tags = index::read_tags(&self.root_path())?;
        let mut out = Vec::new();
        for rec in index::read_records(&self.root_path())?.into_values() {
            let image_tags = tags.tags_of(&rec.id);
            if (!all && !image_tags.is_empty()) || in_use(&rec.id) {
                continue;
            }
            if !image_tags.is_empty() {
                for t in &image_tags {
                    tags.tags.remove(t);
                    out.push(Removed::Untagged(familiar(t)));
                }
                index::write_tags(&self.root_path(), &work, &tags)?;
            }
            out.extend(self.delete_image(&work, &rec)?);
        }
        Ok(out)
    }

    fn root_path(&self) -> std::path::PathBuf {
        self.root().to_path_buf()
    }

    /// Deletes the record, then the blobs and layers no other image uses. Under the lock.
    fn delete_image(&self, work: &WorkDir, rec: &ImageRecord) -> Result<Vec<Removed>> {
        let root = self.root_path();
        let marker = root.join("gc-pending");
        std::fs::write(&marker, b"").map_err(|e| Error::Io {
            op: "writing",
            path: marker.clone(),
            source: e,
        })?;
        index::delete_record(&root, &rec.id)?;
        let others = index::read_records(&root)?;
        let blobs_used: HashSet<&str> = others.values().flat_map(|r| r.blobs()).collect();
        let layers_used: HashSet<&str> = others.values().flat_map(|r| r.layers.iter().map(|l| l.diff_id.as_str())).collect();
        let mut out = vec![Removed::Deleted(rec.id.clone())];
        for b in rec.blobs() {
            if !blobs_used.contains(b) {
                self.discard(&blobs::path(&root, b)?, work)?;
            }
        }
        let mut seen = HashSet::new();
        for l in &rec.layers {
            if !layers_used.contains(l.diff_id.as_str()) && seen.insert(l.diff_id.as_str()) {
                self.discard(&layers::dir(&root, &l.diff_id)?, work)?;
                out.push(Removed::Deleted(l.diff_id.clone()));
            }
        }
        std::fs::remove_file(&marker).map_err(|e| Error::Io {
            op: "removing",
            path: marker,
            source: e,
        })?;
        Ok(out)
    }
}
