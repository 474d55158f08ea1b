//! `usage`: what `system df` shows about images.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::{blobs, index, layers, Store};

/// Disk use of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub images: usize,
    /// Unpacked bytes of all layers, each counted once.
    pub layers_size: u64,
    /// Bytes of all blobs (manifests, configs, layer blobs).
    pub blobs_size: u64,
    pub per_image: Vec<ImageUsage>,
    pub layers: Vec<LayerUsage>,
}

/// One image's share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageUsage {
    pub id: String,
    pub tags: Vec<String>,
    /// Unpacked bytes of all its layers.
    pub size: u64,
    /// Bytes of its layers that other images use too.
    pub shared_size: u64,
    /// Bytes of its layers no other image uses.
    pub unique_size: u64,
}

/// One unpacked layer and the images using it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerUsage {
    pub diff_id: String,
    pub size: u64,
    pub images: Vec<String>,
}

impl Usage {
    /// Bytes freed by removing every image `in_use` says no to (layers and their blobs).
    pub fn reclaimable(&self, in_use: &dyn Fn(&str) -> bool) -> u64 {
        self.layers.iter().filter(|l| !l.images.iter().any(|i| in_use(i))).map(|l| l.size).sum()
    }
}

impl Store {
    /// Counts and sizes for `system df`.
    pub fn usage(&self) -> Result<Usage> {
        let _lock = self.lock(false)?;
        let root = self.root();
        let records = index::read_records(root)?;
        let tags = index::read_tags(root)?;
        let mut users: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
        for rec in records.values() {
            for l in &rec.layers {
                let size = match layers::read_meta(root, &l.diff_id) {
                    Ok(m) => m.size,
                    Err(_) => l.unpacked_size,
                };
                let e = users.entry(l.diff_id.clone()).or_insert((size, Vec::new()));
                if !e.1.contains(&rec.id) {
                    e.1.push(rec.id.clone());
                }
            }
        }
        let mut blobs_size = 0;
        let mut seen = std::collections::HashSet::new();
        for rec in records.values() {
            for b in rec.blobs() {
                if seen.insert(b.to_string()) {
                    if let Ok(p) = blobs::path(root, b) {
                        blobs_size += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                    }
                }
            }
        }
        let per_image = records
            .values()
            .map(|rec| {
                let mut u = ImageUsage {
                    id: rec.id.clone(),
                    tags: tags.tags_of(&rec.id),
                    ..Default::default()
                };
                let mut seen = std::collections::HashSet::new();
                for l in rec.layers.iter().filter(|l| seen.insert(&l.diff_id)) {
                    let (size, imgs) = &users[&l.diff_id];
                    u.size += size;
                    if imgs.len() > 1 {
                        u.shared_size += size;
                    } else {
                        u.unique_size += size;
                    }
                }
                u
            })
            .collect();
        Ok(Usage {
            images: records.len(),
            layers_size: users.values().map(|(s, _)| s).sum(),
            blobs_size,
            per_image,
            layers: users
                .into_iter()
                .map(|(diff_id, (size, images))| LayerUsage { diff_id, size, images })
                .collect(),
        })
    }
}
