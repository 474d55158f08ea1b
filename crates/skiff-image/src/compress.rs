//! Compression of layer and archive streams, detected from the first bytes.

use std::io::{self, BufRead, Read};

/// A stream's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Looks at the buffered head of `r` without consuming it.
pub fn detect<R: BufRead>(r: &mut R) -> io::Result<Compression> {
    let head = r.fill_buf()?;
    Ok(if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// A reader of the decompressed stream (gzip, zstd or plain, detected).
pub fn decompress<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match detect(&mut r)? {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::None => Box::new(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(data: &[u8], c: Compression) -> Vec<u8> {
        match c {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
        }
    }

    #[test]
    fn detects_and_decompresses() {
        let data = b"some layer bytes ".repeat(500);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let enc = roundtrip(&data, c);
            let mut r = io::BufReader::new(&enc[..]);
            assert_eq!(detect(&mut r).unwrap(), c);
            let mut out = Vec::new();
            decompress(r).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "{c:?}");
        }
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let enc = roundtrip(&b"x".repeat(100_000), Compression::Gzip);
        let cut = &enc[..enc.len() / 2];
        let mut out = Vec::new();
        let r = decompress(io::BufReader::new(cut)).unwrap().read_to_end(&mut out);
        assert!(r.is_err(), "truncated gzip read without error");
    }
}
