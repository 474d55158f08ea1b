//! Content arriving from a registry: layer blobs streamed once through sha256, decompression
//! and the unpacker (no second pass over the data), manifests and configs staged, then one
//! image added under the lock.
//!
//! A layer being downloaded is appended to `incoming/<hex>.part`, held under an exclusive
//! `flock` while in use. When the download stops short (the connection dropped, the process was
//! killed) the file stays, and the next pull sends only the rest (an HTTP range): its bytes are
//! read back through the same pipeline first. Content that proves wrong (digest, size, a refused
//! tar entry) is discarded, so a bad prefix is never resumed from.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use crate::blobs::{self, Staged};
use crate::compress;
use crate::digest::hex_of;
use crate::error::{Error, IoContext, Result};
use crate::index::ImageRecord;
use crate::layers;
use crate::lock::WorkDir;
use crate::store::Staging;
use crate::{Image, Layer, Store};

/// A layer as a manifest announces it, with the config's diff_id for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDesc {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
    pub media_type: String,
}

/// A layer blob's download file, locked for this process: its bytes are a prefix of the blob.
#[derive(Debug)]
pub struct Partial {
    file: Flock<File>,
    path: PathBuf,
    len: u64,
}

impl Partial {
    /// Bytes already there (what a resumed download skips).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Starts over (the server ignored the range request, or the prefix proved wrong).
    pub fn restart(&mut self) -> Result<()> {
        self.file.set_len(0).ctx("truncating", &self.path)?;
        self.len = 0;
        Ok(())
    }

    fn discard(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// How the layer stream ended, when it did not end well.
enum Failure {
    /// Reading the download (or appending to the partial file) failed: keep what arrived.
    Source(io::Error),
    /// More bytes than the descriptor announced.
    TooLong,
}

/// The blob's bytes: the partial file's, then the download's (appended to the file), all hashed.
struct Source<'a, R> {
    prefix: BufReader<&'a File>,
    prefix_left: u64,
    rest: R,
    file: &'a File,
    hasher: Sha256,
    total: u64,
    limit: u64,
    failure: Option<Failure>,
}

impl<R: Read> Source<'_, R> {
    fn fail(&mut self, f: Failure) -> io::Error {
        let e = match &f {
            Failure::Source(e) => io::Error::new(e.kind(), e.to_string()),
            Failure::TooLong => io::Error::other("more bytes than the manifest's size"),
        };
        self.failure.get_or_insert(f);
        e
    }

    /// Reads whatever is left (so the digest covers the whole blob).
    fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(drop)
    }
}

impl<R: Read> Read for Source<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.is_some() {
            return Err(io::Error::other("layer stream already failed"));
        }
        let n = if self.prefix_left > 0 {
            let want = buf.len().min(self.prefix_left as usize);
            let n = self.prefix.read(&mut buf[..want])?;
            if n == 0 {
                return Err(self.fail(Failure::Source(io::ErrorKind::UnexpectedEof.into())));
            }
            self.prefix_left -= n as u64;
            n
        } else {
            let n = match self.rest.read(buf) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(Failure::Source(e))),
            };
            let mut f = self.file;
            if let Err(e) = f.write_all(&buf[..n]) {
                return Err(self.fail(Failure::Source(e)));
            }
            n
        };
        self.total += n as u64;
        if self.total > self.limit {
            return Err(self.fail(Failure::TooLong));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// An image being pulled: what arrived so far, in a work dir of the store.
pub struct Incoming<'s> {
    store: &'s Store,
    work: WorkDir,
    staging: Mutex<Staging>,
}

impl Store {
    /// Starts receiving an image.
    pub fn incoming(&self) -> Result<Incoming<'_>> {
        Ok(Incoming {
            store: self,
            work: self.work()?,
            staging: Mutex::new(Staging::default()),
        })
    }

    /// True when the layer with this diff_id is unpacked here.
    pub fn has_layer(&self, diff_id: &str) -> bool {
        layers::exists(self.root(), diff_id)
    }

    /// True when the blob is stored here.
    pub fn has_blob(&self, digest: &str) -> bool {
        blobs::exists(self.root(), digest)
    }

    /// Unpacked bytes of a stored layer (0 when unknown).
    pub fn layer_size(&self, diff_id: &str) -> u64 {
        layers::read_meta(self.root(), diff_id).map_or(0, |m| m.size)
    }

    /// The file of a stored blob (for streaming it out, e.g. to a registry).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let p = blobs::path(self.root(), digest)?;
        fs::metadata(&p).ctx("finding blob", &p)?;
        Ok(p)
    }

    /// A stored blob, read whole and checked against its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        blobs::read(self.root(), digest)
    }

    /// Records that the image `id` is known as `name@sha256:...` (after a push).
    pub fn add_repo_digest(&self, id: &str, repo_digest: &str) -> Result<()> {
        let work = self.work()?;
        let _lock = self.lock(true)?;
        let Some(mut rec) = crate::index::read_record(self.root(), id)? else {
            return Err(Error::ImageNotFound(id.to_string()));
        };
        if !rec.repo_digests.iter().any(|d| d == repo_digest) {
            rec.repo_digests.push(repo_digest.to_string());
            crate::index::write_record(self.root(), &work, &rec)?;
        }
        Ok(())
    }

    fn incoming_dir(&self) -> PathBuf {
        self.root().join("incoming")
    }

    /// Removes download files no process holds (what `image prune` does with them).
    pub fn prune_partials(&self) -> Result<u64> {
        let dir = self.incoming_dir();
        let mut freed = 0;
        let entries = match fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            r => r.ctx("reading", &dir)?,
        };
        for e in entries {
            let p = e.ctx("reading", &dir)?.path();
            let Ok(f) = File::open(&p) else { continue };
            if let Ok(locked) = Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                freed += locked.metadata().map_or(0, |m| m.len());
                fs::remove_file(&p).ctx("removing", &p)?;
            }
        }
        Ok(freed)
    }
}

impl Incoming<'_> {
    /// Opens (creating) the download file of a layer blob and locks it, waiting while another
    /// process downloads the same blob.
    pub fn open_partial(&self, digest: &str) -> Result<Partial> {
        let dir = self.store.incoming_dir();
        fs::create_dir_all(&dir).ctx("creating", &dir)?;
        let path = dir.join(format!("{}.part", hex_of(digest)?));
        loop {
            let f = OpenOptions::new().create(true).read(true).append(true).open(&path).ctx("opening", &path)?;
            let file = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| e).ctx("locking", &path)?;
            // The previous holder may have finished and moved the file away meanwhile.
            let same = fs::metadata(&path).ok().zip(file.metadata().ok());
            if same.is_some_and(|(a, b)| std::os::unix::fs::MetadataExt::ino(&a) == std::os::unix::fs::MetadataExt::ino(&b)) {
                let len = file.metadata().ctx("stat", &path)?.len();
                return Ok(Partial { file, path, len });
            }
        }
    }

    /// Stages a manifest or config fetched whole, checking its digest.
    pub fn stage_blob(&self, data: &[u8], digest: &str, what: &str) -> Result<()> {
        crate::digest::verify(what, data, digest)?;
        let staged = blobs::stage_bytes(&self.work, data)?;
        self.staging().blobs.push(staged);
        Ok(())
    }

    fn staging(&self) -> std::sync::MutexGuard<'_, Staging> {
        self.staging.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Receives one layer blob: the partial file's bytes, then `rest` (the download from
    /// offset `partial.len()`), hashed, decompressed (gzip, zstd or none, detected) and
    /// unpacked, checked against the descriptor's digest and size and the diff_id.
    ///
    /// When `rest` fails, the bytes received stay in the partial file for a resumed pull and
    /// the error is [`Error::LayerRead`]; any other failure discards them.
    pub fn stage_layer(&self, desc: &LayerDesc, mut partial: Partial, rest: impl Read) -> Result<Layer> {
        let label = format!("{} (diff_id {})", desc.digest, desc.diff_id);
        partial.file.rewind().ctx("seeking", &partial.path)?;
        let file: &File = &partial.file;
        let file: &File = file;
        let mut src = Source {
            prefix: BufReader::with_capacity(64 * 1024, file),
            prefix_left: partial.len,
            rest,
            file,
            hasher: Sha256::new(),
            total: 0,
            limit: desc.size,
            failure: None,
        };
        let unpacked = {
            let decoded = compress::decompress(BufReader::with_capacity(64 * 1024, &mut src));
            match decoded {
                Ok(r) => layers::stage(&self.work, &label, r, Some(&desc.diff_id), self.store.unpack_options()),
                Err(e) => Err(Error::LayerRead {
                    layer: label.clone(),
                    source: e,
                }),
            }
        };
        // Whatever the unpacker made of it, read the blob to its end: only the digest tells a
        // corrupt download (discard) from a bad layer, and a failed download (keep) from both.
        let drained = if src.failure.is_none() { src.drain() } else { Ok(()) };
        let failure = src.failure.take();
        let (total, actual) = (src.total, format!("sha256:{}", hex::encode(src.hasher.finalize_reset())));
        drop(src);
        let discard = |staged: &Result<layers::StagedLayer>, partial: Partial| {
            if let Ok(s) = staged {
                let _ = crate::lock::remove_tree(&s.path);
            }
            partial.discard();
        };
        match failure {
            Some(Failure::Source(e)) => {
                if let Ok(s) = &unpacked {
                    let _ = crate::lock::remove_tree(&s.path);
                }
                let _ = partial.file.sync_data();
                return Err(Error::LayerRead { layer: label, source: e });
            }
            Some(Failure::TooLong) => {
                discard(&unpacked, partial);
                return Err(Error::SizeMismatch {
                    what: format!("layer {label}"),
                    expected: desc.size,
                    actual: None,
                });
            }
            None => {}
        }
        if let Err(e) = drained {
            discard(&unpacked, partial);
            return Err(Error::LayerRead { layer: label, source: e });
        }
        if total != desc.size {
            discard(&unpacked, partial);
            return Err(Error::SizeMismatch {
                what: format!("layer {label}"),
                expected: desc.size,
                actual: Some(total),
            });
        }
        if actual != desc.digest {
            discard(&unpacked, partial);
            return Err(Error::DigestMismatch {
                what: format!("layer {label}"),
                expected: desc.digest.clone(),
                actual,
            });
        }
        let staged = match unpacked {
            Ok(s) => s,
            Err(e) => {
                partial.discard();
                return Err(e);
            }
        };
        // The complete, verified download is the blob: move it into the work dir.
        let blob_path = self.work.child("blob");
        fs::rename(&partial.path, &blob_path).ctx("moving downloaded blob", &blob_path)?;
        drop(partial);
        let layer = Layer {
            diff_id: desc.diff_id.clone(),
            digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
            size: desc.size,
            unpacked_size: staged.meta.size,
        };
        let mut st = self.staging();
        st.blobs.push(Staged {
            digest: desc.digest.clone(),
            size: desc.size,
            path: blob_path,
        });
        st.layers.push(staged);
        Ok(layer)
    }

    /// Adds the image: its config (staged or present), manifest and layers (each staged here or
    /// already in the store), tagged `tags` (full references) and known by `repo_digests`
    /// (`name@sha256:...`).
    pub fn finish(self, config_digest: &str, manifest: (&str, &str), layers: Vec<Layer>, tags: &[String], repo_digests: &[String]) -> Result<Image> {
        let (manifest_digest, manifest_media_type) = manifest;
        let rec = ImageRecord {
            repo_digests: repo_digests.to_vec(),
            id: config_digest.to_string(),
            manifest_digest: manifest_digest.to_string(),
            manifest_media_type: manifest_media_type.to_string(),
            size: layers.iter().map(|l| l.unpacked_size).sum(),
            layers,
        };
        let staging = self.staging.into_inner().unwrap_or_else(|p| p.into_inner());
        self.store.add_image(&self.work, rec, &staging, tags)
    }
}
