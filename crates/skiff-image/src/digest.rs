//! sha256 digests: parsing, and readers/writers that hash what passes through them.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Returns the 64-digit hex of a `sha256:<hex>` digest, refusing anything else.
pub fn hex_of(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(h) if is_hex64(h) => Ok(h),
        _ => Err(Error::InvalidDigest(digest.to_string())),
    }
}

/// True for exactly 64 lower-case hex digits.
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `sha256:<hex>` of a byte slice.
pub fn sha256_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Checks that `data` has the digest `expected`; `what` names the content in the error.
pub fn verify(what: &str, data: &[u8], expected: &str) -> Result<()> {
    let actual = sha256_of(data);
    if actual != expected {
        return Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// A reader that hashes and counts every byte read through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream (so the digest covers all of it).
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }

    /// `sha256:<hex>` of what was read, and how many bytes.
    pub fn finish(self) -> (String, u64) {
        (format!("sha256:{}", hex::encode(self.hasher.finalize())), self.count)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader that copies everything read through it into a writer.
pub struct TeeReader<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> TeeReader<R, W> {
    pub fn new(inner: R, out: W) -> Self {
        TeeReader { inner, out }
    }

    pub fn into_writer(self) -> W {
        self.out
    }
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A writer that hashes and counts every byte written through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (String, u64, W) {
        (format!("sha256:{}", hex::encode(self.hasher.finalize())), self.count, self.inner)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_of_refuses_malformed_digests() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(hex_of(&good).unwrap(), "a".repeat(64));
        for bad in [
            "sha256:abc",
            "md5:aaaa",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}/..", "a".repeat(61)),
            &"a".repeat(64),
        ] {
            assert!(hex_of(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn readers_and_writers_hash_the_stream() {
        let data = b"hello world".repeat(1000);
        let want = sha256_of(&data);
        let mut r = HashReader::new(&data[..]);
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        r.drain().unwrap();
        assert_eq!(r.finish(), (want.clone(), data.len() as u64));

        let mut copy = Vec::new();
        let mut t = TeeReader::new(&data[..], &mut copy);
        io::copy(&mut t, &mut io::sink()).unwrap();
        assert_eq!(copy, data);

        let mut w = HashWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let (d, n, out) = w.finish();
        assert_eq!((d, n), (want, data.len() as u64));
        assert_eq!(out, data);
        assert!(verify("x", b"other", &sha256_of(&data)).is_err());
    }
}
