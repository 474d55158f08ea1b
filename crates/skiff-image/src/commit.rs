//! `commit`: a container's overlay upper dir becomes a new layer on top of its image.
//!
//! The diff is written once, as an uncompressed tar (`application/vnd.oci.image.layer.v1.tar`:
//! no compression cost, and its digest is the diff_id), straight into the blob file while
//! hashed; the layer is then unpacked from that file (page-cache hot) into `layers/`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use oci_spec::image::{Config, HistoryBuilder, ImageConfiguration};

use crate::blobs::Staged;
use crate::digest::HashWriter;
use crate::error::{json_err, IoContext, Result};
use crate::manifest::{self, OCI_LAYER_TAR};
use crate::store::{tag_name, Staging};
use crate::{layers, Image, Layer, Store};

/// What to commit.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    /// The container's image (None: a commit from scratch).
    pub parent: Option<&'a Image>,
    /// The container's overlay upper dir (mounted with metacopy=off, redirect_dir=off).
    pub upper: &'a Path,
    pub reference: Option<String>,
    /// Dockerfile-style changes, applied over `container_config`.
    pub changes: Vec<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// The container's effective config; default: the parent's.
    pub container_config: Option<Config>,
}

impl Store {
    /// Commits an upper dir as a new image. An upper dir without changes adds no layer
    /// (only a history entry marked empty), as Docker does.
    pub fn commit(&self, c: &Commit<'_>) -> Result<Image> {
        let tags = c.reference.as_deref().map(tag_name).transpose()?;
        let mut config: ImageConfiguration = match c.parent {
            Some(p) => p.config.clone(),
            None => {
                let mut cfg = ImageConfiguration::default();
                cfg.set_architecture(manifest::host_arch());
                cfg.set_os(manifest::host_os());
                cfg
            }
        };
        let mut run_cfg = c.container_config.clone().or_else(|| config.config().clone()).unwrap_or_default();
        let created_by = c.container_config.as_ref().and_then(|cc| cc.cmd().clone()).unwrap_or_default().join(" ");
        crate::changes::apply(&mut run_cfg, &c.changes)?;

        let work = self.work()?;
        let blob_path = work.child("blob");
        let file = File::create(&blob_path).ctx("creating", &blob_path)?;
        let w = HashWriter::new(BufWriter::with_capacity(1 << 20, file));
        let (w, stats) = crate::diff::write_diff(c.upper, w)?;
        let (diff_id, tar_size, buf) = w.finish();
        buf.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|mut f| f.flush())
            .ctx("writing", &blob_path)?;
        let empty = stats.entries == 0;

        let mut staging = Staging::default();
        let mut layer_list: Vec<Layer> = c.parent.map(|p| p.layers.clone()).unwrap_or_default();
        if !empty {
            let f = File::open(&blob_path).ctx("opening", &blob_path)?;
            let label = format!("commit of {}", c.upper.display());
            let staged = layers::stage(&work, &label, BufReader::with_capacity(1 << 20, f), Some(&diff_id), self.unpack_options())?;
            layer_list.push(Layer {
                diff_id: diff_id.clone(),
                digest: diff_id.clone(),
                media_type: OCI_LAYER_TAR.to_string(),
                size: tar_size,
                unpacked_size: staged.meta.size,
            });
            staging.layers.push(staged);
            staging.blobs.push(Staged {
                digest: diff_id.clone(),
                size: tar_size,
                path: blob_path,
            });
            config.rootfs_mut().diff_ids_mut().push(diff_id);
        }

        let created = manifest::now();
        let mut h = HistoryBuilder::default().created(created.clone()).created_by(created_by);
        if let Some(cm) = &c.comment {
            h = h.comment(cm.clone());
        }
        if let Some(a) = &c.author {
            h = h.author(a.clone());
        }
        if empty {
            h = h.empty_layer(true);
        }
        let history = h.build().map_err(|e| json_err("history", e))?;
        config.history_mut().get_or_insert_with(Vec::new).push(history);
        config.set_created(Some(created));
        config.set_author(c.author.clone());
        config.set_config(Some(run_cfg));
        manifest::add_own_image(self, &work, &config, layer_list, staging, tags.as_slice())
    }
}
