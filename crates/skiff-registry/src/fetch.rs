//! One layer's download, fed to the store's pipeline as a `Read`: blob bytes come from the
//! registry in an HTTP range from where the download file ends; a dropped connection is
//! resumed from the byte it stopped at, a stale token is renewed once.

use std::io::{self, Read};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use oci_client::client::BlobResponse;
use oci_client::errors::OciDistributionError;
use skiff_image::{Incoming, Layer, LayerDesc};
use tokio::runtime::Handle;

use crate::connect::{is_unauthorized, Remote};
use crate::error::{Error, Result};
use crate::progress::{short, Progress};

/// How often one layer's download is resumed before the pull gives up on it.
const ATTEMPTS: u32 = 5;

type Body = BoxStream<'static, io::Result<Bytes>>;

/// Opens the blob from `offset`; true when the response starts there (206), false when the
/// server sent the whole blob (200) instead.
async fn open(remote: &Remote, digest: &str, offset: u64) -> std::result::Result<(Body, bool), OciDistributionError> {
    let mut renewed = false;
    loop {
        match remote.client.pull_blob_stream_partial(&remote.repo, &digest, offset, None).await {
            Ok(BlobResponse::Partial(s)) => return Ok((s.stream, true)),
            Ok(BlobResponse::Full(s)) => return Ok((s.stream, offset == 0)),
            Err(e) if is_unauthorized(&e) && !renewed => {
                renewed = true;
                tracing::debug!("{digest}: token refused, renewing it");
                let _ = remote.client.auth(&remote.repo, &remote.auth, remote.op).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// True for failures worth another attempt: the network, a server error, a rate limit.
fn retryable(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 408 || *code == 429,
        _ => false,
    }
}

/// The blob as a byte stream, from `pos` on.
struct BlobReader<'a> {
    remote: &'a Remote,
    rt: &'a Handle,
    progress: &'a dyn Progress,
    id: &'a str,
    digest: &'a str,
    size: u64,
    body: Option<Body>,
    buf: Bytes,
    /// Bytes of the blob delivered so far (its absolute offset).
    pos: u64,
    /// Bytes to drop from the body (a server that ignored the range).
    skip: u64,
    attempts: u32,
    /// The body ended cleanly short of `size` once already.
    short_end: bool,
}

impl BlobReader<'_> {
    /// After a failure at `pos`: waits, and opens the blob again from there.
    fn resume(&mut self, mut why: String) -> io::Result<()> {
        self.body = None;
        loop {
            self.attempts += 1;
            if self.attempts > ATTEMPTS {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("downloading: {why} (gave up after {ATTEMPTS} attempts, at byte {} of {})", self.pos, self.size),
                ));
            }
            self.progress.layer_retry(self.id, self.attempts, &why);
            tracing::info!("layer {}: {why}; resuming at byte {} (attempt {})", self.id, self.pos, self.attempts);
            std::thread::sleep(Duration::from_millis(100 << self.attempts.min(5)));
            match self.rt.block_on(open(self.remote, self.digest, self.pos)) {
                Ok((body, ranged)) => {
                    self.skip = if ranged { 0 } else { self.pos };
                    self.body = Some(body);
                    return Ok(());
                }
                Err(e) if retryable(&e) => why = self.remote.err(e).to_string(),
                Err(e) => return Err(io::Error::other(format!("downloading: {}", self.remote.err(e)))),
            }
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.buf.is_empty() {
                let n = out.len().min(self.buf.len());
                out[..n].copy_from_slice(&self.buf.split_to(n));
                self.pos += n as u64;
                self.progress.layer_progress(self.id, self.pos);
                return Ok(n);
            }
            let Some(body) = self.body.as_mut() else { return Ok(0) };
            match self.rt.block_on(body.next()) {
                Some(Ok(mut chunk)) => {
                    let drop_n = (self.skip as usize).min(chunk.len());
                    self.skip -= drop_n as u64;
                    self.buf = chunk.split_off(drop_n);
                }
                Some(Err(e)) => self.resume(crate::connect::chain_text(&e))?,
                None if self.pos < self.size && !self.short_end => {
                    // A clean end short of the size: a proxy cut it, or the blob is short
                    // (then the range request fails and the store reports the size).
                    self.short_end = true;
                    if self.resume("connection closed before the end of the blob".into()).is_err() {
                        return Ok(0);
                    }
                }
                None => {
                    self.body = None;
                    return Ok(0);
                }
            }
        }
    }
}

/// Downloads and unpacks one layer into `inc`, resuming a download file a previous pull left.
pub(crate) fn fetch_layer(remote: &Remote, rt: &Handle, inc: &Incoming<'_>, desc: &LayerDesc, progress: &dyn Progress) -> Result<Layer> {
    let id = short(&desc.digest);
    for attempt in 0..2 {
        let mut partial = inc.open_partial(&desc.digest)?;
        if partial.len() > desc.size {
            partial.restart()?;
        }
        let resumed = partial.len();
        let body = if resumed == desc.size {
            None
        } else {
            let (body, ranged) = rt.block_on(open(remote, &desc.digest, resumed)).map_err(|e| layer_err(remote, desc, e))?;
            if !ranged {
                partial.restart()?;
            }
            Some(body)
        };
        let pos = partial.len();
        if pos > 0 {
            tracing::info!("layer {id}: resuming at byte {pos} of {}", desc.size);
        }
        progress.layer_progress(id, pos);
        let reader = BlobReader {
            remote,
            rt,
            progress,
            id,
            digest: &desc.digest,
            size: desc.size,
            body,
            buf: Bytes::new(),
            pos,
            skip: 0,
            attempts: 0,
            short_end: false,
        };
        match inc.stage_layer(desc, partial, reader) {
            // A resumed prefix that does not verify (another tool wrote it?): once from scratch.
            Err(skiff_image::Error::DigestMismatch { .. } | skiff_image::Error::SizeMismatch { .. }) if pos > 0 && attempt == 0 => {
                progress.layer_retry(id, 0, "the resumed download did not verify; starting over");
            }
            r => return r.map_err(Error::from),
        }
    }
    Err(Error::Other(format!("layer {}: no verified download after two attempts", desc.digest)))
}

fn layer_err(remote: &Remote, desc: &LayerDesc, e: OciDistributionError) -> Error {
    match remote.err(e) {
        Error::Registry { registry, message } => Error::Registry {
            registry,
            message: format!("layer {}: {message}", desc.digest),
        },
        other => other,
    }
}
