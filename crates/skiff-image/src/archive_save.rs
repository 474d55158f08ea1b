//! `save`: images to a docker-archive (`docker load`, `podman load`) or an oci-archive
//! (`podman load`, `skopeo`). The store's shared lock is held for the whole write, so no
//! `remove` can take content away mid-way; every blob is checked while it is streamed.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufReader, Read, Write};

use serde_json::json;

use crate::blobs::VerifiedBlob;
use crate::digest::{hex_of, HashReader};
use crate::error::{Error, Result};
use crate::index::{self, ImageRecord};
use crate::reference::familiar;
use crate::{compress, layers, Store};

/// The archive formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `manifest.json` + `<config>.json` + `<diffid>/layer.tar` (uncompressed layers).
    DockerArchive,
    /// An OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/*` (blobs as stored).
    OciArchive,
}

fn write_err(e: io::Error) -> Error {
    Error::Other(format!("writing archive: {e}"))
}

fn header(path: &str, size: u64, dir: bool) -> Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).map_err(write_err)?;
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mtime(0);
    h.set_cksum();
    Ok(h)
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    b.append(&header(path, data.len() as u64, false)?, data)
        .map_err(write_err)
}

/// Streams `r` as an entry of exactly `size` bytes; errors if it is shorter or longer.
fn append_stream<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    r: &mut dyn Read,
) -> Result<()> {
    let n = {
        let mut limited = (&mut *r).take(size);
        let mut counted = Counted { r: &mut limited, n: 0 };
        b.append(&header(path, size, false)?, &mut counted)
            .map_err(write_err)?;
        counted.n
    };
    let mut extra = [0u8; 1];
    let more = r.read(&mut extra).map_err(write_err)?;
    if n != size || more != 0 {
        return Err(Error::Other(format!(
            "writing archive: {path}: content is not the {size} bytes recorded"
        )));
    }
    Ok(())
}

struct Counted<'a> {
    r: &'a mut dyn Read,
    n: u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

impl Store {
    /// Writes the images `names` (tags, ids, digests) as one archive. Names given by tag
    /// carry that tag; names given by id carry none (as `docker save`).
    pub fn save(&self, names: &[String], format: ArchiveFormat, w: impl Write) -> Result<()> {
        let _lock = self.lock(false)?;
        let tags = index::read_tags(self.root())?;
        let mut images: BTreeMap<String, (ImageRecord, Vec<String>)> = BTreeMap::new();
        let mut order = Vec::new();
        for n in names {
            let (rec, by) = self.find_how(n, &tags)?;
            let entry = images.entry(rec.id.clone()).or_insert_with(|| {
                order.push(rec.id.clone());
                (rec, Vec::new())
            });
            if let Some(t) = by.filter(|t| !t.contains('@')) {
                if !entry.1.contains(&t) {
                    entry.1.push(t);
                }
            }
        }
        let list: Vec<&(ImageRecord, Vec<String>)> = order.iter().map(|id| &images[id]).collect();
        let mut b = tar::Builder::new(w);
        match format {
            ArchiveFormat::DockerArchive => self.write_docker(&mut b, &list)?,
            ArchiveFormat::OciArchive => self.write_oci(&mut b, &list)?,
        }
        b.into_inner().map_err(write_err)?.flush().map_err(write_err)
    }

    fn write_docker<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        images: &[&(ImageRecord, Vec<String>)],
    ) -> Result<()> {
        let mut written = HashSet::new();
        let mut manifest = Vec::new();
        for (rec, tags) in images {
            let config_name = format!("{}.json", hex_of(&rec.id)?);
            if written.insert(config_name.clone()) {
                let data = crate::blobs::read(self.root(), &rec.id)?;
                append_bytes(b, &config_name, &data)?;
            }
            let mut layer_names = Vec::new();
            for l in &rec.layers {
                let hex = hex_of(&l.diff_id)?;
                let name = format!("{hex}/layer.tar");
                if written.insert(name.clone()) {
                    b.append(&header(&format!("{hex}/"), 0, true)?, io::empty())
                        .map_err(write_err)?;
                    let meta = layers::read_meta(self.root(), &l.diff_id)?;
                    // The diff_id check below covers the content (compressed or not).
                    let blob = VerifiedBlob::open(self.root(), &l.digest)?;
                    let mut diff = HashReader::new(
                        compress::decompress(BufReader::new(blob.reader)).map_err(write_err)?,
                    );
                    append_stream(b, &name, meta.tar_size, &mut diff)?;
                    let (diff_id, _) = diff.finish();
                    if diff_id != l.diff_id {
                        return Err(Error::DigestMismatch {
                            what: format!("layer {}", l.digest),
                            expected: l.diff_id.clone(),
                            actual: diff_id,
                        });
                    }
                }
                layer_names.push(name);
            }
            let repo_tags: Vec<String> = tags.iter().map(|t| familiar(t)).collect();
            manifest.push(json!({
                "Config": config_name,
                "RepoTags": if repo_tags.is_empty() { serde_json::Value::Null } else { json!(repo_tags) },
                "Layers": layer_names,
            }));
        }
        let data = serde_json::to_vec(&manifest).map_err(|e| Error::Other(e.to_string()))?;
        append_bytes(b, "manifest.json", &data)
    }

    fn write_oci<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        images: &[&(ImageRecord, Vec<String>)],
    ) -> Result<()> {
        append_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        b.append(&header("blobs/", 0, true)?, io::empty()).map_err(write_err)?;
        b.append(&header("blobs/sha256/", 0, true)?, io::empty()).map_err(write_err)?;
        let mut written = HashSet::new();
        let mut descs = Vec::new();
        for (rec, tags) in images {
            for d in rec.blobs() {
                if written.insert(d.to_string()) {
                    let mut blob = VerifiedBlob::open(self.root(), d)?;
                    let size = blob.size;
                    let name = format!("blobs/sha256/{}", hex_of(d)?);
                    append_stream(b, &name, size, &mut blob.reader)?;
                    blob.check()?;
                }
            }
            let manifest_size = std::fs::metadata(crate::blobs::path(self.root(), &rec.manifest_digest)?)
                .map(|m| m.len())
                .map_err(write_err)?;
            let desc = |ann: Option<serde_json::Value>| {
                let mut d = json!({
                    "mediaType": rec.manifest_media_type,
                    "digest": rec.manifest_digest,
                    "size": manifest_size,
                });
                if let Some(a) = ann {
                    d["annotations"] = a;
                }
                d
            };
            if tags.is_empty() {
                descs.push(desc(None));
            }
            for t in tags.iter() {
                descs.push(desc(Some(json!({
                    "org.opencontainers.image.ref.name": t,
                    "io.containerd.image.name": t,
                }))));
            }
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": descs,
        });
        let data = serde_json::to_vec(&index).map_err(|e| Error::Other(e.to_string()))?;
        append_bytes(b, "index.json", &data)
    }
}
