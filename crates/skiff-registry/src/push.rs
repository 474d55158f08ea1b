//! `push`: the config and layer blobs the registry lacks (checked first; mounted from another
//! repository of the same registry when the image came from there), then the manifest.
//! Uncompressed layers (commits, imports) are gzip'd on the way, as Docker and podman do.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use bytes::Bytes;
use oci_client::RegistryOperation;
use oci_spec::image::ImageManifest;
use skiff_image::reference::Reference;
use skiff_image::{Image, Store};

use crate::connect::{runtime, RegistryOptions, Remote};
use crate::error::{Error, Result};
use crate::media;
use crate::progress::{short, Progress};

/// The manifest format to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFormat {
    Oci,
    /// Docker image manifest v2 schema 2.
    V2s2,
}

impl std::str::FromStr for PushFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<PushFormat> {
        match s {
            "oci" => Ok(PushFormat::Oci),
            "v2s2" | "docker" => Ok(PushFormat::V2s2),
            _ => Err(Error::Other(format!("unknown manifest format {s:?}: expected oci or v2s2"))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Default: the stored manifest's own format (so its digest is kept).
    pub format: Option<PushFormat>,
    pub registry: RegistryOptions,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub reference: String,
    pub digest: String,
    pub size: u64,
    /// Blobs sent; the rest were there already or mounted.
    pub uploaded: usize,
    pub mounted: usize,
}

/// A blob to push: where its bytes are, and what the manifest says of it.
struct Blob {
    digest: String,
    size: u64,
    media_type: String,
    path: PathBuf,
}

/// Pushes the local image `name` to `dest` (default: `name` itself, which must then be a
/// tag).
pub fn push(store: &Store, name: &str, dest: Option<&str>, opts: &PushOptions, progress: &dyn Progress) -> Result<Pushed> {
    let image = store.resolve(name)?;
    let target = dest.unwrap_or(name);
    let r = Reference::parse(target).map_err(|_| Error::Reference {
        reference: target.into(),
        reason: "push needs a name (host/repository[:tag]), not an image id".into(),
    })?;
    if r.digest.is_some() {
        return Err(Error::Reference {
            reference: target.into(),
            reason: "cannot push to a digest".into(),
        });
    }
    let r = r.with_default_tag();
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let stored_manifest = store.read_blob(&image.manifest_digest)?;
    let stored_type = media::kind_of(&stored_manifest, "stored manifest")?;
    let stored_fmt = if stored_type == media::DOCKER_MANIFEST {
        PushFormat::V2s2
    } else {
        PushFormat::Oci
    };
    let fmt = opts.format.unwrap_or(stored_fmt);

    let rt = runtime()?;
    let remote = rt.block_on(Remote::connect(&r, &opts.registry, RegistryOperation::Push))?;
    progress.message(&format!("The push refers to repository [{}]", r.name()));
    let work = tempfile::Builder::new()
        .prefix("skiff-push-")
        .tempdir_in(store.root())
        .map_err(|e| Error::io("creating", store.root(), e))?;

    // Layers as they will be pushed: compressed ones as stored, plain tars gzip'd.
    let mut blobs = Vec::new();
    let mut converted = fmt != stored_fmt;
    for l in &image.layers {
        let path = store.blob_path(&l.digest)?;
        let plain = matches!(l.media_type.as_str(), media::OCI_LAYER_TAR | media::DOCKER_LAYER_TAR);
        if plain {
            converted = true;
            progress.message(&format!("{}: Preparing (gzip)", short(&l.diff_id)));
            blobs.push(gzip_to(&path, &work.path().join(&l.diff_id[7..]), gzip_type(fmt))?);
        } else {
            let zstd = l.media_type == media::OCI_LAYER_ZSTD;
            if zstd && fmt == PushFormat::V2s2 {
                return Err(Error::Other(format!(
                    "layer {} is zstd-compressed: Docker v2s2 manifests cannot carry it; push with --format oci",
                    l.digest
                )));
            }
            let mt = if zstd {
                media::OCI_LAYER_ZSTD.to_string()
            } else {
                gzip_type(fmt).to_string()
            };
            converted |= mt != l.media_type;
            blobs.push(Blob {
                digest: l.digest.clone(),
                size: l.size,
                media_type: mt,
                path,
            });
        }
    }
    let config = Blob {
        digest: image.id.clone(),
        size: std::fs::metadata(store.blob_path(&image.id)?)
            .map_err(|e| Error::io("reading", store.root(), e))?
            .len(),
        media_type: if fmt == PushFormat::V2s2 { media::DOCKER_CONFIG } else { media::OCI_CONFIG }.to_string(),
        path: store.blob_path(&image.id)?,
    };
    let sources = mount_sources(&image, &r);
    let (mut uploaded, mut mounted) = (0, 0);
    for b in blobs.iter().chain(std::iter::once(&config)) {
        match rt.block_on(send_blob(&remote, b, &sources, progress))? {
            Sent::Exists => {}
            Sent::Mounted => mounted += 1,
            Sent::Uploaded => uploaded += 1,
        }
    }

    let (body, content_type) = if converted {
        (build_manifest(fmt, &config, &blobs)?, manifest_type(fmt))
    } else {
        (stored_manifest, stored_type.clone())
    };
    let digest = skiff_image::digest::sha256_of(&body);
    let size = body.len() as u64;
    let ct = reqwest::header::HeaderValue::from_str(&content_type).map_err(|e| Error::Other(e.to_string()))?;
    rt.block_on(remote.client.push_manifest_raw(&remote.at(&tag), body, ct))
        .map_err(|e| remote.err(e))?;
    progress.message(&format!("{tag}: digest: {digest} size: {size}"));
    store.add_repo_digest(&image.id, &format!("{}@{digest}", r.name()))?;
    Ok(Pushed {
        reference: r.to_string(),
        digest,
        size,
        uploaded,
        mounted,
    })
}

fn manifest_type(fmt: PushFormat) -> String {
    match fmt {
        PushFormat::Oci => media::OCI_MANIFEST,
        PushFormat::V2s2 => media::DOCKER_MANIFEST,
    }
    .to_string()
}

/// The gzip'd layer media type of a manifest format.
fn gzip_type(fmt: PushFormat) -> &'static str {
    match fmt {
        PushFormat::Oci => media::OCI_LAYER_GZIP,
        PushFormat::V2s2 => media::DOCKER_LAYER_GZIP,
    }
}

/// Repositories of the same registry the image was pulled from or pushed to: a registry
/// that has the blob there can link it into the target without an upload.
fn mount_sources(image: &Image, dest: &Reference) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in image.tags.iter().chain(image.digests.iter()) {
        if let Ok(r) = Reference::parse(n) {
            if r.registry == dest.registry && r.repository != dest.repository && !out.contains(&r.repository) {
                out.push(r.repository);
            }
        }
    }
    out
}

/// gzip's the plain tar `src` into the file `path`, hashing the result.
fn gzip_to(src: &std::path::Path, path: &std::path::Path, media_type: &str) -> Result<Blob> {
    let path = path.to_path_buf();
    let mut input = File::open(src).map_err(|e| Error::io("opening", src, e))?;
    let out = File::create(&path).map_err(|e| Error::io("creating", &path, e))?;
    let hashing = skiff_image::digest::HashWriter::new(BufWriter::with_capacity(256 * 1024, out));
    let mut gz = flate2::GzBuilder::new().write(hashing, flate2::Compression::fast());
    std::io::copy(&mut input, &mut gz).map_err(|e| Error::io("compressing", src, e))?;
    let (digest, size, mut out) = gz.finish().map_err(|e| Error::io("compressing", src, e))?.finish();
    out.flush().map_err(|e| Error::io("writing", &path, e))?;
    Ok(Blob {
        digest,
        size,
        media_type: media_type.into(),
        path,
    })
}

enum Sent {
    Exists,
    Mounted,
    Uploaded,
}

async fn send_blob(remote: &Remote, b: &Blob, sources: &[String], progress: &dyn Progress) -> Result<Sent> {
    let id = short(&b.digest);
    if remote.client.blob_exists(&remote.repo, &b.digest).await.map_err(|e| remote.err(e))? {
        progress.layer_done(id, "Layer already exists");
        return Ok(Sent::Exists);
    }
    for src in sources {
        let from = oci_client::Reference::with_tag(remote.repo.registry().to_string(), src.clone(), "latest".into());
        if remote.client.mount_blob(&remote.repo, &from, &b.digest).await.is_ok() {
            progress.layer_done(id, &format!("Mounted from {src}"));
            return Ok(Sent::Mounted);
        }
    }
    progress.layer_pushing(id, b.size);
    let file = File::open(&b.path).map_err(|e| Error::io("opening", &b.path, e))?;
    let body = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(oci_client::errors::OciDistributionError::IoError(e)), f)),
        }
    });
    remote
        .client
        .push_blob_stream(&remote.repo, body, &b.digest, Some(b.size))
        .await
        .map_err(|e| remote.err(e))?;
    progress.layer_done(id, "Pushed");
    Ok(Sent::Uploaded)
}

/// A manifest of `fmt` for the config and layers.
fn build_manifest(fmt: PushFormat, config: &Blob, layers: &[Blob]) -> Result<Vec<u8>> {
    let desc = |b: &Blob| serde_json::json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size});
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_type(fmt),
        "config": desc(config),
        "layers": layers.iter().map(desc).collect::<Vec<_>>(),
    });
    // Check it is a manifest by the spec's types before sending it.
    let _: ImageManifest = serde_json::from_value(m.clone()).map_err(|e| Error::bad("manifest", e))?;
    serde_json::to_vec(&m).map_err(|e| Error::bad("manifest", e))
}
