//! Writing our own images (import, commit): config and OCI manifest blobs, the record.

use std::str::FromStr;

use oci_spec::image::{Arch, DescriptorBuilder, Digest, ImageConfiguration, ImageManifestBuilder, MediaType, Os};

use crate::blobs;
use crate::error::{json_err, Error, Result};
use crate::index::ImageRecord;
use crate::lock::WorkDir;
use crate::store::Staging;
use crate::{Image, Layer, Store};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The architecture name images use for this machine.
pub fn host_arch() -> Arch {
    match std::env::consts::ARCH {
        "x86_64" => Arch::Amd64,
        "aarch64" => Arch::ARM64,
        "x86" => Arch::i386,
        "arm" => Arch::ARM,
        "riscv64" => Arch::RISCV64,
        "powerpc64" => Arch::PowerPC64le,
        "s390x" => Arch::s390x,
        other => Arch::Other(other.to_string()),
    }
}

pub fn host_os() -> Os {
    Os::Linux
}

/// RFC 3339 with nanoseconds, UTC (what Docker writes in configs).
pub fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

fn digest(s: &str) -> Result<Digest> {
    Digest::from_str(s).map_err(|_| Error::InvalidDigest(s.to_string()))
}

/// An OCI image manifest for a config blob and layers.
pub fn oci_manifest(config_digest: &str, config_size: u64, layers: &[Layer]) -> Result<Vec<u8>> {
    let config = DescriptorBuilder::default()
        .media_type(MediaType::ImageConfig)
        .digest(digest(config_digest)?)
        .size(config_size)
        .build()
        .map_err(|e| json_err("manifest config descriptor", e))?;
    let layers = layers
        .iter()
        .map(|l| {
            DescriptorBuilder::default()
                .media_type(MediaType::from(l.media_type.as_str()))
                .digest(digest(&l.digest)?)
                .size(l.size)
                .build()
                .map_err(|e| json_err("manifest layer descriptor", e))
        })
        .collect::<Result<Vec<_>>>()?;
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .map_err(|e| json_err("manifest", e))?;
    serde_json::to_vec(&m).map_err(|e| json_err("manifest", e))
}

/// Stages the config and an OCI manifest for it, and adds the image with `tags`.
pub fn add_own_image(store: &Store, work: &WorkDir, config: &ImageConfiguration, layers: Vec<Layer>, mut staging: Staging, tags: &[String]) -> Result<Image> {
    let config_bytes = serde_json::to_vec(config).map_err(|e| json_err("image config", e))?;
    let cfg = blobs::stage_bytes(work, &config_bytes)?;
    let manifest = oci_manifest(&cfg.digest, cfg.size, &layers)?;
    let man = blobs::stage_bytes(work, &manifest)?;
    let rec = ImageRecord {
        repo_digests: Vec::new(),
        id: cfg.digest.clone(),
        manifest_digest: man.digest.clone(),
        manifest_media_type: OCI_MANIFEST.to_string(),
        size: layers.iter().map(|l| l.unpacked_size).sum(),
        layers,
    };
    staging.blobs.push(cfg);
    staging.blobs.push(man);
    store.add_image(work, rec, &staging, tags)
}
