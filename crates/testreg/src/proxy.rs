//! A fault-injecting HTTP/1.1 proxy in front of a plain-HTTP registry. Every request is forwarded
//! (one per connection, `Connection: close`) and logged; blob GET bodies can be cut, slowed,
//! corrupted, shortened or lengthened, blob GETs redirected to a second listener ("blob storage"),
//! and manifests of chosen tags hidden.

use crate::http::{read_chunked, read_request_body, respond, Head};
use std::collections::HashMap;
use std::io::{BufReader, Cursor, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to do to requests; change at run time with [`FaultProxy::set_faults`] or `update_faults`.
/// The body faults (drop, throttle, flip, truncate, extra) and the redirect act on blob GETs
/// (`GET /v2/<name>/blobs/sha256:<hex>`) answered 200 or 206.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Only blobs with this digest ("sha256:...") are touched; None: every blob.
    pub only_digest: Option<String>,
    /// Close the connection after this many body bytes...
    pub drop_after_bytes: Option<u64>,
    /// ...for the first this-many such responses (None: always).
    pub drop_times: Option<u32>,
    /// Send blob bodies at this many bytes per second.
    pub throttle_bytes_per_sec: Option<u64>,
    /// Flip (xor 0xff) the byte at this offset of the blob (offset in the whole blob, ranges included).
    pub flip_byte_at: Option<u64>,
    /// Send only this many body bytes while Content-Length claims the full size, then close.
    pub truncate_to: Option<u64>,
    /// Append this many bytes ('X') to the body, Content-Length counting them: a blob longer than its descriptor.
    pub extra_bytes: Option<u64>,
    /// Answer blob GETs with 307 to the blob-storage listener, which serves them without auth.
    pub redirect_blobs: bool,
    /// Manifest GET/HEAD of these tags answer 404 MANIFEST_UNKNOWN.
    pub missing_tags: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The proxy's own address, in front of the registry.
    Main,
    /// The blob-storage listener that redirected blob GETs land on.
    Storage,
}

/// One request the proxy answered.
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub listener: Listener,
    pub method: String,
    /// The request target, query included.
    pub path: String,
    pub range: Option<String>,
    pub authorization: bool,
    pub status: u16,
    /// Body bytes sent to the client.
    pub bytes_sent: u64,
    /// The fault applied, if any: "drop", "truncate", "flip", "extra", "throttle", "redirect", "missing-tag".
    pub faults: Vec<&'static str>,
}

#[derive(Default)]
struct State {
    faults: Faults,
    drops_done: u32,
    log: Vec<ProxyRequest>,
    /// Redirect id → (upstream target, the Authorization the first hop carried).
    redirects: HashMap<u64, (String, Option<String>)>,
    next_id: u64,
}

struct Shared {
    upstream: String,
    storage_addr: SocketAddr,
    state: Mutex<State>,
    stop: AtomicBool,
}

pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl FaultProxy {
    /// Start a proxy to `upstream_host` ("127.0.0.1:PORT", plain HTTP).
    pub fn start(upstream_host: &str, faults: Faults) -> FaultProxy {
        let main = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let storage = TcpListener::bind("127.0.0.1:0").expect("bind proxy blob storage");
        let addr = main.local_addr().expect("proxy addr");
        let shared = Arc::new(Shared {
            upstream: upstream_host.to_string(),
            storage_addr: storage.local_addr().expect("storage addr"),
            state: Mutex::new(State { faults, ..State::default() }),
            stop: AtomicBool::new(false),
        });
        let threads = [(main, Listener::Main), (storage, Listener::Storage)]
            .into_iter()
            .map(|(l, kind)| {
                let sh = shared.clone();
                std::thread::spawn(move || {
                    for conn in l.incoming() {
                        if sh.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let sh = sh.clone();
                        std::thread::spawn(move || {
                            let _ = handle(&sh, conn, kind);
                        });
                    }
                })
            })
            .collect();
        FaultProxy { addr, shared, threads }
    }

    /// "127.0.0.1:PORT" of the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// "127.0.0.1:PORT" of the blob-storage listener.
    pub fn storage_host(&self) -> String {
        self.shared.storage_addr.to_string()
    }

    /// Replace the faults; the drop counter starts again from zero.
    pub fn set_faults(&self, faults: Faults) {
        let mut st = self.shared.state.lock().expect("proxy state");
        st.faults = faults;
        st.drops_done = 0;
    }

    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.shared.state.lock().expect("proxy state").faults);
    }

    /// How many responses were cut by `drop_after_bytes` since the faults were last set.
    pub fn drops_done(&self) -> u32 {
        self.shared.state.lock().expect("proxy state").drops_done
    }

    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.shared.state.lock().expect("proxy state").log.clone()
    }

    pub fn clear_log(&self) {
        self.shared.state.lock().expect("proxy state").log.clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        let _ = TcpStream::connect(self.shared.storage_addr);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The digest of `GET /v2/<name>/blobs/sha256:<hex>`, if the path is one.
pub fn blob_digest(path: &str) -> Option<&str> {
    let path = path.split('?').next()?;
    let rest = path.strip_prefix("/v2/")?;
    let (_, digest) = rest.rsplit_once("/blobs/")?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digest)
}

/// The reference of `/v2/<name>/manifests/<ref>`.
fn manifest_ref(path: &str) -> Option<&str> {
    path.split('?').next()?.strip_prefix("/v2/")?.rsplit_once("/manifests/").map(|(_, r)| r)
}

fn handle(sh: &Shared, client: TcpStream, kind: Listener) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(mut head) = Head::read(&mut reader)? else { return Ok(()) };
    let body = read_request_body(&head, &mut reader)?;
    let (method, mut target) = head.request_line();
    let mut rec = ProxyRequest {
        listener: kind,
        method: method.clone(),
        path: target.clone(),
        range: head.get("range").map(str::to_string),
        authorization: head.get("authorization").is_some(),
        status: 0,
        bytes_sent: 0,
        faults: Vec::new(),
    };
    let faults = sh.state.lock().expect("proxy state").faults.clone();
    let mut w = client;
    if kind == Listener::Storage {
        let id = target.strip_prefix("/blob/").and_then(|i| i.parse::<u64>().ok());
        let entry = id.and_then(|i| sh.state.lock().expect("proxy state").redirects.get(&i).cloned());
        let Some((up_target, auth)) = entry else {
            respond(&mut w, 404, "Not Found", &[], b"no such blob redirect\n")?;
            rec.status = 404;
            return log(sh, rec);
        };
        target = up_target;
        head.remove("authorization");
        if let Some(a) = auth {
            head.set("Authorization", &a);
        }
    }
    let digest = blob_digest(&target).map(str::to_string);
    let blob_get = method == "GET" && digest.is_some() && faults.only_digest.as_ref().is_none_or(|d| Some(d) == digest.as_ref());
    if kind == Listener::Main && matches!(method.as_str(), "GET" | "HEAD") && manifest_ref(&target).is_some_and(|r| faults.missing_tags.iter().any(|t| t == r))
    {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"hidden by testreg FaultProxy"}]}"#;
        respond(
            &mut w,
            404,
            "Not Found",
            &[("Content-Type", "application/json")],
            if method == "HEAD" { b"" } else { body },
        )?;
        rec.status = 404;
        rec.faults.push("missing-tag");
        return log(sh, rec);
    }
    if kind == Listener::Main && blob_get && faults.redirect_blobs {
        let id = {
            let mut st = sh.state.lock().expect("proxy state");
            st.next_id += 1;
            let id = st.next_id;
            st.redirects.insert(id, (target.clone(), head.get("authorization").map(str::to_string)));
            id
        };
        let loc = format!("http://{}/blob/{id}", sh.storage_addr);
        respond(&mut w, 307, "Temporary Redirect", &[("Location", &loc)], b"")?;
        rec.status = 307;
        rec.faults.push("redirect");
        return log(sh, rec);
    }

    // Forward.
    let mut up = TcpStream::connect(&sh.upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(30)))?;
    head.start = format!("{method} {target} HTTP/1.1");
    // The body is already read: no Expect: 100-continue towards the registry.
    for h in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "expect"] {
        head.remove(h);
    }
    if !body.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        head.set("Content-Length", &body.len().to_string());
    }
    head.set("Connection", "close");
    head.write(&mut up)?;
    up.write_all(&body)?;
    let mut upr = BufReader::new(up);
    let Some(mut resp) = Head::read(&mut upr)? else {
        rec.status = 502;
        respond(&mut w, 502, "Bad Gateway", &[], b"upstream closed\n")?;
        return log(sh, rec);
    };
    rec.status = resp.status();
    let no_body = method == "HEAD" || rec.status < 200 || rec.status == 204 || rec.status == 304;
    let (mut src, len): (Box<dyn Read>, u64) = if no_body {
        (Box::new(std::io::empty()), 0)
    } else if resp.is_chunked() {
        let b = read_chunked(&mut upr)?;
        let n = b.len() as u64;
        (Box::new(Cursor::new(b)), n)
    } else if let Some(n) = resp.content_length() {
        (Box::new(upr.take(n)), n)
    } else {
        let mut b = Vec::new();
        upr.read_to_end(&mut b)?;
        let n = b.len() as u64;
        (Box::new(Cursor::new(b)), n)
    };
    let faulty = blob_get && (rec.status == 200 || rec.status == 206);
    // Offset of the body in the blob, for flip_byte_at: "Content-Range: bytes S-E/T".
    let start = resp
        .get("content-range")
        .and_then(|v| v.trim_start_matches("bytes ").split('-').next()?.parse::<u64>().ok())
        .unwrap_or(0);
    let mut limit = len;
    let (mut extra, mut throttle, mut flip) = (0, None, None);
    if faulty {
        let mut st = sh.state.lock().expect("proxy state");
        if let Some(n) = faults.drop_after_bytes.filter(|_| faults.drop_times.is_none_or(|k| st.drops_done < k)) {
            st.drops_done += 1;
            limit = limit.min(n);
            rec.faults.push("drop");
        }
        drop(st);
        if let Some(n) = faults.truncate_to {
            limit = limit.min(n);
            rec.faults.push("truncate");
        }
        if let Some(n) = faults.extra_bytes {
            extra = n;
            rec.faults.push("extra");
        }
        throttle = faults.throttle_bytes_per_sec.filter(|&b| b > 0);
        if throttle.is_some() {
            rec.faults.push("throttle");
        }
        flip = faults.flip_byte_at.filter(|&o| o >= start && o < start + len).map(|o| o - start);
        if flip.is_some() {
            rec.faults.push("flip");
        }
    }
    resp.remove("transfer-encoding");
    if !no_body || resp.content_length().is_some() {
        resp.set(
            "Content-Length",
            &(resp.content_length().filter(|_| no_body).unwrap_or(len) + extra).to_string(),
        );
    }
    resp.set("Connection", "close");
    resp.write(&mut w)?;
    let chunk = throttle.map_or(64 * 1024, |b| (b / 20).clamp(1, 16 * 1024)) as usize;
    let mut buf = vec![0u8; chunk];
    let mut sent = 0u64;
    while sent < limit && !sh.stop.load(Ordering::SeqCst) {
        let want = (limit - sent).min(chunk as u64) as usize;
        let n = src.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if let Some(f) = flip.filter(|&f| f >= sent && f < sent + n as u64) {
            buf[(f - sent) as usize] ^= 0xff;
        }
        if let Err(e) = w.write_all(&buf[..n]) {
            rec.bytes_sent = sent;
            log(sh, rec)?;
            return Err(e);
        }
        sent += n as u64;
        if let Some(b) = throttle {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / b as f64));
        }
    }
    if sent == len && extra > 0 {
        w.write_all(&vec![b'X'; extra as usize])?;
        sent += extra;
    }
    rec.bytes_sent = sent;
    w.flush()?;
    let _ = w.shutdown(Shutdown::Both);
    log(sh, rec)
}

fn log(sh: &Shared, rec: ProxyRequest) -> std::io::Result<()> {
    sh.state.lock().expect("proxy state").log.push(rec);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(blob_digest(&format!("/v2/lib/x/blobs/{d}")), Some(d.as_str()));
        assert_eq!(blob_digest("/v2/x/blobs/uploads/"), None);
        assert_eq!(blob_digest("/v2/x/blobs/sha256:abc"), None);
        assert_eq!(manifest_ref("/v2/a/b/manifests/latest"), Some("latest"));
    }
}
