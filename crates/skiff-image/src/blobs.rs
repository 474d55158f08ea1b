//! The content-addressed blob store: `blobs/sha256/<hex>`. Blobs are streamed into the
//! operation's work dir while hashed, checked against the expected digest, and renamed into
//! place (under the store lock) only when complete and correct.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{hex_of, HashReader, HashWriter};
use crate::error::{Error, IoContext, Result};
use crate::lock::WorkDir;

/// `<root>/blobs/sha256/<hex>` of a digest (validated, so it cannot name another path).
pub fn path(root: &Path, digest: &str) -> Result<PathBuf> {
    Ok(root.join("blobs/sha256").join(hex_of(digest)?))
}

pub fn exists(root: &Path, digest: &str) -> bool {
    path(root, digest).is_ok_and(|p| p.exists())
}

/// Reads a whole blob and checks its digest.
pub fn read(root: &Path, digest: &str) -> Result<Vec<u8>> {
    let p = path(root, digest)?;
    let data = fs::read(&p).ctx("reading blob", &p)?;
    crate::digest::verify(&format!("blob {digest}"), &data, digest)?;
    Ok(data)
}

/// A blob opened for streaming; call [`VerifiedBlob::check`] after reading it to the end.
pub struct VerifiedBlob {
    pub reader: HashReader<std::io::BufReader<File>>,
    pub digest: String,
    pub size: u64,
}

impl VerifiedBlob {
    /// Opens the blob `digest` at `p` (e.g. a hardlink to it in a work dir).
    pub fn open_path(p: &Path, digest: &str) -> Result<VerifiedBlob> {
        let f = File::open(p).ctx("opening blob", p)?;
        let size = f.metadata().ctx("stat", p)?.len();
        Ok(VerifiedBlob {
            reader: HashReader::new(std::io::BufReader::with_capacity(256 * 1024, f)),
            digest: digest.to_string(),
            size,
        })
    }

    /// Errors when what was read is not the whole blob with its digest.
    pub fn check(self) -> Result<()> {
        let (actual, _) = self.reader.finish();
        if actual != self.digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", self.digest),
                expected: self.digest,
                actual,
            });
        }
        Ok(())
    }
}

/// A complete blob in a work dir, waiting to be placed.
#[derive(Debug, Clone)]
pub struct Staged {
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
}

/// Streams `r` into a new file of the work dir; with `expected`, a different digest is an
/// error (the file is removed). `what` names the content in errors.
pub fn stage(work: &WorkDir, r: impl Read, expected: Option<&str>, what: &str) -> Result<Staged> {
    let path = work.child("blob");
    let f = File::create(&path).ctx("creating", &path)?;
    let mut w = HashWriter::new(BufWriter::with_capacity(256 * 1024, f));
    let mut r = r;
    let copied = std::io::copy(&mut r, &mut w);
    let (digest, size, buf) = w.finish();
    let flushed = buf.into_inner().map_err(|e| e.into_error());
    if let Err(e) = copied.and(flushed.map(drop)) {
        let _ = fs::remove_file(&path);
        return Err(Error::Io {
            op: "reading",
            path: PathBuf::from(what),
            source: e,
        });
    }
    if let Some(exp) = expected {
        if exp != digest {
            let _ = fs::remove_file(&path);
            return Err(Error::DigestMismatch {
                what: what.to_string(),
                expected: exp.to_string(),
                actual: digest,
            });
        }
    }
    Ok(Staged { digest, size, path })
}

/// Stages bytes already in memory.
pub fn stage_bytes(work: &WorkDir, data: &[u8]) -> Result<Staged> {
    let path = work.child("blob");
    let mut f = File::create(&path).ctx("creating", &path)?;
    f.write_all(data).ctx("writing", &path)?;
    Ok(Staged {
        digest: crate::digest::sha256_of(data),
        size: data.len() as u64,
        path,
    })
}

/// Links a staged blob into the store unless the store already has it (the staged file
/// stays usable until the work dir goes). Call under the lock.
pub fn place(root: &Path, s: &Staged) -> Result<()> {
    let dest = path(root, &s.digest)?;
    match fs::hard_link(&s.path, &dest) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e).ctx("placing blob", &dest),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_blobs_are_checked_placed_and_verified_on_read() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        fs::create_dir_all(root.join("tmp")).unwrap();
        let work = WorkDir::new(&root.join("tmp")).unwrap();
        let data = b"blob content".repeat(100);
        let d = crate::digest::sha256_of(&data);

        let wrong = crate::digest::sha256_of(b"other");
        let err = stage(&work, &data[..], Some(&wrong), "layer x").unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("layer x"));
        assert_eq!(fs::read_dir(work.path()).unwrap().count(), 0, "tmp file left");

        let s = stage(&work, &data[..], Some(&d), "layer x").unwrap();
        assert_eq!((s.digest.as_str(), s.size), (d.as_str(), data.len() as u64));
        place(root, &s).unwrap();
        assert_eq!(read(root, &d).unwrap(), data);

        // Corruption on disk is caught on read, whole or streamed.
        fs::write(path(root, &d).unwrap(), b"tampered").unwrap();
        assert!(matches!(read(root, &d), Err(Error::DigestMismatch { .. })));
        let mut v = VerifiedBlob::open_path(&path(root, &d).unwrap(), &d).unwrap();
        std::io::copy(&mut v.reader, &mut std::io::sink()).unwrap();
        assert!(v.check().is_err());
        assert!(path(root, "sha256:../../etc/passwd").is_err());
    }
}
