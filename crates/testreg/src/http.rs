//! Just enough HTTP/1.1 for the token server and the proxy: heads, Content-Length and chunked bodies.

use std::io::{self, BufRead, Write};

/// A request or response head: the start line and the headers in order.
#[derive(Clone, Debug)]
pub struct Head {
    pub start: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// Read a head up to the blank line; Ok(None) on a clean EOF before any byte.
    pub fn read(r: &mut impl BufRead) -> io::Result<Option<Head>> {
        let mut start = String::new();
        if r.read_line(&mut start)? == 0 {
            return Ok(None);
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF inside HTTP head"));
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Ok(Some(Head {
            start: start.trim_end().to_string(),
            headers,
        }))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.remove(name);
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// Request line parts: (method, target).
    pub fn request_line(&self) -> (String, String) {
        let mut it = self.start.split_whitespace();
        (it.next().unwrap_or("").to_string(), it.next().unwrap_or("").to_string())
    }

    /// Status code of a response head.
    pub fn status(&self) -> u16 {
        self.start.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    pub fn content_length(&self) -> Option<u64> {
        self.get("content-length").and_then(|v| v.parse().ok())
    }

    pub fn is_chunked(&self) -> bool {
        self.get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let mut s = format!("{}\r\n", self.start);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        w.write_all(s.as_bytes())
    }
}

/// Read a whole chunked body (trailers skipped).
pub fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {line:?}")))?;
        if size == 0 {
            loop {
                let mut t = String::new();
                if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

/// Read a request body (Content-Length or chunked; none otherwise).
pub fn read_request_body(head: &Head, r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    if head.is_chunked() {
        return read_chunked(r);
    }
    let mut body = vec![0; head.content_length().unwrap_or(0) as usize];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Write a complete response with a body and `Connection: close`.
pub fn respond(w: &mut impl Write, status: u16, reason: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<()> {
    let mut h = Head {
        start: format!("HTTP/1.1 {status} {reason}"),
        headers: Vec::new(),
    };
    for (k, v) in headers {
        h.set(k, v);
    }
    h.set("Content-Length", &body.len().to_string());
    h.set("Connection", "close");
    h.write(w)?;
    w.write_all(body)?;
    w.flush()
}

/// Split "path?query" and decode the query into (key, value) pairs.
pub fn split_query(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path.to_string(), pairs)
}

/// Decode %XX escapes and '+' as space.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_chunks() {
        let (p, q) = split_query("/token?service=testreg&scope=repository%3Afoo%2Fbar%3Apull%2Cpush&scope=x");
        assert_eq!(p, "/token");
        assert_eq!(q[1], ("scope".into(), "repository:foo/bar:pull,push".into()));
        assert_eq!(q.len(), 3);
        assert_eq!(percent_decode("a%2"), "a%2");
        let mut r = io::BufReader::new(&b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"[..]);
        assert_eq!(read_chunked(&mut r).unwrap(), b"abcde");
    }
}
