//! `save`: images to a docker-archive (`docker load`, `podman load`) or an oci-archive
//! (`podman load`, `skopeo`). The content is pinned by hardlinks taken under the lock, then
//! written without it; every blob is checked while it is streamed.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;

use serde_json::json;

use crate::blobs::VerifiedBlob;
use crate::digest::{hex_of, HashReader};
use crate::error::{Error, IoContext, Result};
use crate::index::{self, ImageRecord};
use crate::layers::LayerMeta;
use crate::lock::WorkDir;
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
    h.set_entry_type(if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
    h.set_mtime(0);
    h.set_cksum();
    Ok(h)
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    b.append(&header(path, data.len() as u64, false)?, data).map_err(write_err)
}

/// Streams `r` as an entry of exactly `size` bytes; errors if it is shorter or longer.
fn append_stream<W: Write>(b: &mut tar::Builder<W>, path: &str, size: u64, r: &mut dyn Read) -> Result<()> {
    let n = {
        let mut limited = (&mut *r).take(size);
        let mut counted = Counted { r: &mut limited, n: 0 };
        b.append(&header(path, size, false)?, &mut counted).map_err(write_err)?;
        counted.n
    };
    let mut extra = [0u8; 1];
    let more = r.read(&mut extra).map_err(write_err)?;
    if n != size || more != 0 {
        return Err(Error::Other(format!("writing archive: {path}: content is not the {size} bytes recorded")));
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

/// Hardlinks to every blob a save needs, taken under the lock: the archive is then written
/// without holding it (a slow reader of the output blocks no writer), and a concurrent
/// `remove` cannot take the content away (the links keep it).
struct Snapshot {
    blobs: HashMap<String, PathBuf>,
    metas: HashMap<String, LayerMeta>,
}

impl Snapshot {
    fn blob(&self, digest: &str) -> Result<VerifiedBlob> {
        let p = self
            .blobs
            .get(digest)
            .ok_or_else(|| Error::Other(format!("save: blob {digest} not in snapshot")))?;
        VerifiedBlob::open_path(p, digest)
    }

    fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let mut b = self.blob(digest)?;
        let mut data = Vec::new();
        b.reader.read_to_end(&mut data).map_err(write_err)?;
        b.check()?;
        Ok(data)
    }
}

type Wanted = Vec<(ImageRecord, Vec<String>)>;

impl Store {
    /// Writes the images `names` (tags, ids, digests) as one archive. Names given by tag
    /// carry that tag; names given by id carry none (as `docker save`).
    pub fn save(&self, names: &[String], format: ArchiveFormat, w: impl Write) -> Result<()> {
        let work = self.work()?;
        let (list, snap) = self.snapshot(names, &work)?;
        let refs: Vec<&(ImageRecord, Vec<String>)> = list.iter().collect();
        let mut b = tar::Builder::new(w);
        match format {
            ArchiveFormat::DockerArchive => write_docker(&mut b, &refs, &snap)?,
            ArchiveFormat::OciArchive => write_oci(&mut b, &refs, &snap)?,
        }
        b.into_inner().map_err(write_err)?.flush().map_err(write_err)
    }

    fn snapshot(&self, names: &[String], work: &WorkDir) -> Result<(Wanted, Snapshot)> {
        let _lock = self.lock(false)?;
        let tags = index::read_tags(self.root())?;
        let mut list: Wanted = Vec::new();
        for n in names {
            let (rec, by) = self.find_how(n, &tags)?;
            let i = match list.iter().position(|(r, _)| r.id == rec.id) {
                Some(i) => i,
                None => {
                    list.push((rec, Vec::new()));
                    list.len() - 1
                }
            };
            if let Some(t) = by.filter(|t| !t.contains('@')) {
                if !list[i].1.contains(&t) {
                    list[i].1.push(t);
                }
            }
        }
        let mut snap = Snapshot {
            blobs: HashMap::new(),
            metas: HashMap::new(),
        };
        for (rec, _) in &list {
            for d in rec.blobs() {
                if !snap.blobs.contains_key(d) {
                    let link = work.child("snap");
                    let src = crate::blobs::path(self.root(), d)?;
                    std::fs::hard_link(&src, &link).ctx("linking", &src)?;
                    snap.blobs.insert(d.to_string(), link);
                }
            }
            for l in &rec.layers {
                if !snap.metas.contains_key(&l.diff_id) {
                    snap.metas.insert(l.diff_id.clone(), layers::read_meta(self.root(), &l.diff_id)?);
                }
            }
        }
        Ok((list, snap))
    }
}

fn write_docker<W: Write>(b: &mut tar::Builder<W>, images: &[&(ImageRecord, Vec<String>)], snap: &Snapshot) -> Result<()> {
    let mut written = HashSet::new();
    let mut manifest = Vec::new();
    for (rec, tags) in images {
        let config_name = format!("{}.json", hex_of(&rec.id)?);
        if written.insert(config_name.clone()) {
            append_bytes(b, &config_name, &snap.read(&rec.id)?)?;
        }
        let mut layer_names = Vec::new();
        for l in &rec.layers {
            let hex = hex_of(&l.diff_id)?;
            let name = format!("{hex}/layer.tar");
            if written.insert(name.clone()) {
                b.append(&header(&format!("{hex}/"), 0, true)?, io::empty()).map_err(write_err)?;
                let tar_size = snap.metas[&l.diff_id].tar_size;
                // The diff_id check below covers the content (compressed or not).
                let blob = snap.blob(&l.digest)?;
                let mut diff = HashReader::new(compress::decompress(BufReader::new(blob.reader)).map_err(write_err)?);
                append_stream(b, &name, tar_size, &mut diff)?;
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

fn write_oci<W: Write>(b: &mut tar::Builder<W>, images: &[&(ImageRecord, Vec<String>)], snap: &Snapshot) -> Result<()> {
    append_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    b.append(&header("blobs/", 0, true)?, io::empty()).map_err(write_err)?;
    b.append(&header("blobs/sha256/", 0, true)?, io::empty()).map_err(write_err)?;
    let mut written = HashSet::new();
    let mut descs = Vec::new();
    for (rec, tags) in images {
        let mut manifest_size = 0;
        for d in rec.blobs() {
            let mut blob = snap.blob(d)?;
            if d == rec.manifest_digest {
                manifest_size = blob.size;
            }
            if written.insert(d.to_string()) {
                let size = blob.size;
                let name = format!("blobs/sha256/{}", hex_of(d)?);
                append_stream(b, &name, size, &mut blob.reader)?;
                blob.check()?;
            }
        }
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
