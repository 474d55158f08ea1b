//! `load`: a docker-archive (`manifest.json`) or an oci-archive (`index.json`), possibly
//! gzip- or zstd-compressed, as `docker save`, `podman save` and `skopeo copy` write them.
//!
//! Every file of the archive is streamed once into the work dir while hashed (the archive's
//! own order does not matter: Docker writes `manifest.json` last); then manifests, configs and
//! layers are checked against the digests that name them, layers are unpacked (checking the
//! config's diff_ids), and each image is added under the lock.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::blobs::{self, Staged};
use crate::compress::{self, Compression};
use crate::digest::{hex_of, HashReader};
use crate::error::{json_err, Error, IoContext, Result};
use crate::index::ImageRecord;
use crate::layers;
use crate::lock::WorkDir;
use crate::manifest::{host_arch, oci_manifest, OCI_MANIFEST};
use crate::reference::Reference;
use crate::store::{tag_name, Staging};
use crate::{Image, Layer, Store};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The files of an extracted archive, by normalized path.
struct Archive {
    files: HashMap<String, Staged>,
    links: HashMap<String, String>,
}

fn arch_err(msg: impl Into<String>) -> Error {
    Error::Archive(msg.into())
}

/// `./a//b` -> `a/b`; `..` is resolved lexically (the names are only map keys).
fn norm(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

impl Archive {
    fn extract(work: &WorkDir, r: impl Read) -> Result<Archive> {
        let input = compress::decompress(BufReader::with_capacity(256 * 1024, r)).map_err(|e| arch_err(format!("reading: {e}")))?;
        let mut tar = tar::Archive::new(input);
        let mut a = Archive {
            files: HashMap::new(),
            links: HashMap::new(),
        };
        for entry in tar.entries().map_err(|e| arch_err(format!("reading: {e}")))? {
            let entry = entry.map_err(|e| arch_err(format!("reading: {e}")))?;
            let name = norm(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let what = format!("archive entry {name}");
                    let staged = blobs::stage(work, entry, None, &what)?;
                    a.files.insert(name, staged);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
                    let resolved = if entry.header().entry_type() == tar::EntryType::Link {
                        norm(&target)
                    } else {
                        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                        norm(&format!("{dir}/{target}"))
                    };
                    a.links.insert(name, resolved);
                }
                _ => {}
            }
        }
        Ok(a)
    }

    fn get(&self, name: &str) -> Result<&Staged> {
        let mut n = norm(name);
        for _ in 0..16 {
            if let Some(s) = self.files.get(&n) {
                return Ok(s);
            }
            match self.links.get(&n) {
                Some(t) => n = t.clone(),
                None => break,
            }
        }
        Err(arch_err(format!("missing entry {name}")))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let s = self.get(name)?;
        std::fs::read(&s.path).ctx("reading", &s.path)
    }

    /// The blob `blobs/<alg>/<hex>` of an OCI layout, checked against the descriptor.
    fn blob(&self, digest: &str, size: u64, what: &str) -> Result<&Staged> {
        let hex = hex_of(digest)?;
        let s = self.get(&format!("blobs/sha256/{hex}"))?;
        if s.digest != digest {
            return Err(Error::DigestMismatch {
                what: format!("{what} blobs/sha256/{hex}"),
                expected: digest.to_string(),
                actual: s.digest.clone(),
            });
        }
        if s.size != size {
            return Err(arch_err(format!("{what} {digest}: size {} but the descriptor says {size}", s.size)));
        }
        Ok(s)
    }
}

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// One image found in an archive, ready to be unpacked and added.
struct Found<'a> {
    config: &'a Staged,
    /// The manifest blob as found, or None to synthesize an OCI manifest.
    manifest: Option<(&'a Staged, String)>,
    layers: Vec<&'a Staged>,
    tags: Vec<String>,
}

impl Store {
    /// Loads every image of a docker-archive or oci-archive (format detected; the archive
    /// itself may be gzip'd or zstd'd).
    pub fn load(&self, r: impl Read) -> Result<Vec<Image>> {
        let work = self.work()?;
        let archive = Archive::extract(&work, r)?;
        let found = if archive.files.contains_key("manifest.json") {
            docker_images(&archive)?
        } else if archive.files.contains_key("index.json") {
            oci_images(&archive)?
        } else {
            return Err(arch_err("neither manifest.json (docker-archive) nor index.json (oci-archive) in it"));
        };
        let mut out = Vec::new();
        let mut unpacked: HashMap<String, layers::StagedLayer> = HashMap::new();
        for f in &found {
            out.push(self.add_found(&work, f, &mut unpacked)?);
        }
        Ok(out)
    }

    fn add_found(&self, work: &WorkDir, f: &Found<'_>, unpacked: &mut HashMap<String, layers::StagedLayer>) -> Result<Image> {
        let config_bytes = std::fs::read(&f.config.path).ctx("reading", &f.config.path)?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| json_err(format!("image config {}", f.config.digest), e))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != f.layers.len() {
            return Err(arch_err(format!(
                "image {}: {} layers but the config lists {} diff_ids",
                f.config.digest,
                f.layers.len(),
                diff_ids.len()
            )));
        }
        // A second attempt (after a concurrent remove took a layer we meant to share)
        // unpacks everything itself.
        for force in [false, true] {
            let mut staging = Staging::default();
            let mut layer_list = Vec::new();
            for (blob, diff_id) in f.layers.iter().zip(diff_ids) {
                let comp = detect(blob)?;
                let label = format!("{} (diff_id {diff_id})", blob.digest);
                let have = !force && layers::exists(self.root(), diff_id);
                if !have && !unpacked.contains_key(diff_id) {
                    let file = File::open(&blob.path).ctx("opening", &blob.path)?;
                    let r = compress::decompress(BufReader::with_capacity(256 * 1024, file)).map_err(|e| Error::LayerRead {
                        layer: label.clone(),
                        source: e,
                    })?;
                    let staged = layers::stage(work, &label, r, Some(diff_id), self.unpack_options())?;
                    unpacked.insert(diff_id.clone(), staged);
                } else if have && comp != Compression::None {
                    verify_diff_id(blob, diff_id, &label)?;
                } else if have && blob.digest != *diff_id {
                    return Err(Error::DigestMismatch {
                        what: format!("layer {label}"),
                        expected: diff_id.clone(),
                        actual: blob.digest.clone(),
                    });
                }
                let unpacked_size = match unpacked.get(diff_id) {
                    Some(s) => s.meta.size,
                    None => layers::read_meta(self.root(), diff_id).map(|m| m.size).unwrap_or(0),
                };
                layer_list.push(Layer {
                    diff_id: diff_id.clone(),
                    digest: blob.digest.clone(),
                    media_type: media_type(comp).to_string(),
                    size: blob.size,
                    unpacked_size,
                });
                staging.blobs.push((*blob).clone());
            }
            staging.blobs.push(f.config.clone());
            let (manifest_digest, manifest_media_type) = match &f.manifest {
                Some((m, mt)) => {
                    staging.blobs.push((*m).clone());
                    (m.digest.clone(), mt.clone())
                }
                None => {
                    let bytes = oci_manifest(&f.config.digest, f.config.size, &layer_list)?;
                    let m = blobs::stage_bytes(work, &bytes)?;
                    let d = m.digest.clone();
                    staging.blobs.push(m);
                    (d, OCI_MANIFEST.to_string())
                }
            };
            let rec = ImageRecord {
                repo_digests: Vec::new(),
                id: f.config.digest.clone(),
                manifest_digest,
                manifest_media_type,
                size: dedup_size(&layer_list),
                layers: layer_list,
            };
            // Hand the layers this image needs to add_image; keep them for later images.
            let mut mine = Vec::new();
            for l in &rec.layers {
                if let Some(s) = unpacked.remove(&l.diff_id) {
                    mine.push(s);
                }
            }
            staging.layers = mine;
            match self.add_image(work, rec, &staging, &f.tags) {
                Err(Error::Vanished(what)) if !force => {
                    tracing::info!("{what} was removed concurrently: unpacking it again");
                }
                other => return other,
            }
        }
        Err(Error::Other("load: content removed concurrently twice".into()))
    }
}

fn dedup_size(layers: &[Layer]) -> u64 {
    layers.iter().map(|l| l.unpacked_size).sum()
}

fn detect(blob: &Staged) -> Result<Compression> {
    let f = File::open(&blob.path).ctx("opening", &blob.path)?;
    compress::detect(&mut BufReader::new(f)).ctx("reading", &blob.path)
}

fn media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// Decompresses and hashes a layer blob without unpacking it.
fn verify_diff_id(blob: &Staged, diff_id: &str, label: &str) -> Result<()> {
    let f = File::open(&blob.path).ctx("opening", &blob.path)?;
    let read_err = |e| Error::LayerRead {
        layer: label.to_string(),
        source: e,
    };
    let mut r = HashReader::new(compress::decompress(BufReader::new(f)).map_err(read_err)?);
    r.drain().map_err(|e| Error::LayerRead {
        layer: label.to_string(),
        source: e,
    })?;
    let (actual, _) = r.finish();
    if actual != diff_id {
        return Err(Error::DigestMismatch {
            what: format!("diff_id of layer {label}"),
            expected: diff_id.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Checks a name of the form `<hex>.json` / `blobs/sha256/<hex>` against the content.
fn check_named(s: &Staged, name: &str, what: &str) -> Result<()> {
    let n = norm(name);
    let hex = n
        .strip_prefix("blobs/sha256/")
        .or_else(|| n.strip_suffix(".json"))
        .filter(|h| crate::digest::is_hex64(h));
    if let Some(h) = hex {
        let expected = format!("sha256:{h}");
        if expected != s.digest {
            return Err(Error::DigestMismatch {
                what: format!("{what} {name}"),
                expected,
                actual: s.digest.clone(),
            });
        }
    }
    Ok(())
}

fn docker_images(a: &Archive) -> Result<Vec<Found<'_>>> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(&a.read("manifest.json")?).map_err(|e| json_err("archive manifest.json", e))?;
    let mut out = Vec::new();
    for e in entries {
        let config = a.get(&e.config)?;
        check_named(config, &e.config, "config")?;
        let layers = e
            .layers
            .iter()
            .map(|l| {
                let s = a.get(l)?;
                check_named(s, l, "layer")?;
                Ok(s)
            })
            .collect::<Result<Vec<_>>>()?;
        let tags = e.repo_tags.unwrap_or_default().iter().map(|t| tag_name(t)).collect::<Result<Vec<_>>>()?;
        out.push(Found {
            config,
            manifest: None,
            layers,
            tags,
        });
    }
    Ok(out)
}

fn oci_images(a: &Archive) -> Result<Vec<Found<'_>>> {
    let index: ImageIndex = serde_json::from_slice(&a.read("index.json")?).map_err(|e| json_err("archive index.json", e))?;
    let mut out = Vec::new();
    for desc in index.manifests() {
        let tags = oci_names(desc.annotations().as_ref());
        let (m, mt) = resolve_manifest(a, desc, 0)?;
        let manifest: ImageManifest =
            serde_json::from_slice(&std::fs::read(&m.path).ctx("reading", &m.path)?).map_err(|e| json_err(format!("manifest {}", m.digest), e))?;
        let c = manifest.config();
        let config = a.blob(c.digest().as_ref(), c.size(), "config")?;
        let layers = manifest
            .layers()
            .iter()
            .map(|l| a.blob(l.digest().as_ref(), l.size(), "layer"))
            .collect::<Result<Vec<_>>>()?;
        // Several index entries may name one manifest: merge their tags.
        if let Some(prev) = out
            .iter_mut()
            .find(|f: &&mut Found<'_>| f.manifest.as_ref().is_some_and(|(pm, _)| pm.digest == m.digest))
        {
            prev.tags.extend(tags);
            continue;
        }
        out.push(Found {
            config,
            manifest: Some((m, mt)),
            layers,
            tags,
        });
    }
    Ok(out)
}

/// Follows index / manifest-list descriptors down to this platform's image manifest.
fn resolve_manifest<'a>(a: &'a Archive, desc: &oci_spec::image::Descriptor, depth: usize) -> Result<(&'a Staged, String)> {
    if depth > 4 {
        return Err(arch_err("indexes nested too deeply"));
    }
    let mt = desc.media_type().to_string();
    let blob = a.blob(desc.digest().as_ref(), desc.size(), "manifest")?;
    let is_index = mt.ends_with("image.index.v1+json") || mt.ends_with("manifest.list.v2+json");
    if !is_index {
        return Ok((blob, mt));
    }
    let idx: ImageIndex =
        serde_json::from_slice(&std::fs::read(&blob.path).ctx("reading", &blob.path)?).map_err(|e| json_err(format!("index {}", blob.digest), e))?;
    let arch = host_arch();
    let pick = idx
        .manifests()
        .iter()
        .find(|d| d.platform().as_ref().is_none_or(|p| p.architecture() == &arch && p.os().to_string() == "linux"))
        .ok_or_else(|| arch_err(format!("index {} has no manifest for linux/{arch}", blob.digest)))?;
    resolve_manifest(a, pick, depth + 1)
}

/// Tags from an index entry's annotations. `org.opencontainers.image.ref.name` may be a
/// bare tag (`latest`) in OCI layouts: that names no repository and is ignored.
fn oci_names(ann: Option<&HashMap<String, String>>) -> Vec<String> {
    let Some(ann) = ann else { return Vec::new() };
    let mut out = Vec::new();
    for key in [CONTAINERD_NAME, REF_NAME] {
        let Some(v) = ann.get(key) else { continue };
        if !v.contains(['/', ':', '@']) {
            continue;
        }
        match Reference::parse(v) {
            Ok(r) if r.digest.is_none() => {
                let full = r.with_default_tag().to_string();
                if !out.contains(&full) {
                    out.push(full);
                }
            }
            _ => tracing::warn!("ignoring image name {v:?} ({key})"),
        }
    }
    out
}
