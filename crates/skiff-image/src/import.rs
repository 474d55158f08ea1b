//! `import`: a root filesystem tar (plain, gzip or zstd) becomes a one-layer image. The
//! decompressed stream is unpacked and, in the same pass, written as the layer blob
//! (uncompressed `application/vnd.oci.image.layer.v1.tar`, so its digest is the diff_id).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};

use oci_spec::image::{Config, HistoryBuilder, ImageConfiguration, RootFsBuilder};

use crate::blobs::Staged;
use crate::digest::TeeReader;
use crate::error::{json_err, Error, IoContext, Result};
use crate::layers;
use crate::manifest::{self, OCI_LAYER_TAR};
use crate::store::{tag_name, Staging};
use crate::{Image, Layer, Store};

/// Options of [`Store::import`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag for the new image (`busybox` means `busybox:latest`).
    pub reference: Option<String>,
    /// Dockerfile-style changes: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE,
    /// STOPSIGNAL, VOLUME.
    pub changes: Vec<String>,
    /// The history comment (default `Imported from -`, as Docker writes).
    pub message: Option<String>,
}

impl Store {
    /// Imports a root filesystem tar as a one-layer image.
    pub fn import(&self, r: impl Read, opts: &ImportOptions) -> Result<Image> {
        let tags = opts.reference.as_deref().map(tag_name).transpose()?;
        let mut cfg = Config::default();
        crate::changes::apply(&mut cfg, &opts.changes)?;

        let work = self.work()?;
        let blob_path = work.child("blob");
        let blob_file = File::create(&blob_path).ctx("creating", &blob_path)?;
        let input = crate::compress::decompress(BufReader::with_capacity(256 * 1024, r)).map_err(|e| Error::LayerRead {
            layer: "import".into(),
            source: e,
        })?;
        let mut tee = TeeReader::new(input, BufWriter::with_capacity(256 * 1024, blob_file));
        let staged = layers::stage(&work, "import", &mut tee, None, self.unpack_options())?;
        tee.into_writer().into_inner().map_err(|e| e.into_error()).ctx("writing", &blob_path)?;
        let meta = staged.meta.clone();

        let created = manifest::now();
        let history = HistoryBuilder::default()
            .created(created.clone())
            .comment(opts.message.clone().unwrap_or_else(|| "Imported from -".into()))
            .build()
            .map_err(|e| json_err("history", e))?;
        let rootfs = RootFsBuilder::default()
            .typ("layers")
            .diff_ids(vec![meta.diff_id.clone()])
            .build()
            .map_err(|e| json_err("rootfs", e))?;
        let mut config = ImageConfiguration::default();
        config.set_created(Some(created));
        config.set_architecture(manifest::host_arch());
        config.set_os(manifest::host_os());
        config.set_config(Some(cfg));
        config.set_rootfs(rootfs);
        config.set_history(Some(vec![history]));

        let layer = Layer {
            diff_id: meta.diff_id.clone(),
            digest: meta.diff_id.clone(),
            media_type: OCI_LAYER_TAR.to_string(),
            size: meta.tar_size,
            unpacked_size: meta.size,
        };
        let staging = Staging {
            blobs: vec![Staged {
                digest: meta.diff_id.clone(),
                size: meta.tar_size,
                path: blob_path,
            }],
            layers: vec![staged],
        };
        manifest::add_own_image(self, &work, &config, vec![layer], staging, tags.as_slice())
    }
}
