//! Manifest kinds and parsing, as registries serve them: OCI image manifests and indexes,
//! Docker v2 schema 2 manifests and manifest lists (schema 1 is refused).

use oci_spec::image::{ImageIndex, ImageManifest};

use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// What `Accept` asks for.
pub const ACCEPT: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A fetched manifest, by kind.
pub enum Manifest {
    Image(Box<ImageManifest>, String),
    Index(Box<ImageIndex>),
}

/// The media type of a manifest body: its `mediaType`, else guessed from its fields (OCI
/// allows leaving it out).
pub fn kind_of(body: &[u8], what: &str) -> Result<String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| Error::bad(what, e))?;
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        return Err(Error::bad(
            what,
            "Docker image manifest schema 1 is not supported (the registry or image is too old)",
        ));
    }
    if let Some(mt) = v.get("mediaType").and_then(|m| m.as_str()) {
        return Ok(mt.to_string());
    }
    Ok(if v.get("manifests").is_some() { OCI_INDEX } else { OCI_MANIFEST }.to_string())
}

/// Parses a manifest body of either kind.
pub fn parse(body: &[u8], what: &str) -> Result<Manifest> {
    let mt = kind_of(body, what)?;
    match mt.as_str() {
        OCI_INDEX | DOCKER_LIST => Ok(Manifest::Index(Box::new(serde_json::from_slice(body).map_err(|e| Error::bad(what, e))?))),
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(Manifest::Image(Box::new(serde_json::from_slice(body).map_err(|e| Error::bad(what, e))?), mt)),
        other => Err(Error::bad(what, format!("unsupported manifest media type {other}"))),
    }
}

/// True for layer media types we can unpack.
pub fn is_layer(mt: &str) -> bool {
    matches!(mt, OCI_LAYER_GZIP | OCI_LAYER_ZSTD | OCI_LAYER_TAR | DOCKER_LAYER_GZIP | DOCKER_LAYER_TAR)
        || mt == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        || mt.starts_with("application/vnd.oci.image.layer.nondistributable.v1.tar")
}
