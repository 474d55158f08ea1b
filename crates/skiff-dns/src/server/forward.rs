//! Forwarding to the host's resolvers: the client's query as it came, over UDP (with a fresh
//! socket, so a random source port, per query), each upstream in turn with a timeout; over TCP
//! when a TCP client gets a truncated UDP answer.

use std::io::{self, BufRead};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The `nameserver`s of a resolv.conf, port 53, without the addresses in `skip` (our own: a
/// query forwarded to ourselves would loop).
pub fn upstreams(resolv_conf: &Path, skip: &[IpAddr]) -> io::Result<Vec<SocketAddr>> {
    let file = std::fs::File::open(resolv_conf)?;
    let mut out = Vec::new();
    for line in io::BufReader::new(file).lines() {
        let line = line?;
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next().and_then(parse_nameserver) else { continue };
        if !skip.contains(&addr.ip()) && !out.contains(&addr) {
            out.push(addr);
        }
    }
    Ok(out)
}

/// `1.2.3.4`, `::1`, or `fe80::1%eth0` (a link-local address with its interface).
fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    let (ip, scope) = s.split_once('%')?;
    let ip: Ipv6Addr = ip.parse().ok()?;
    let scope_id = match scope.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            let name = std::ffi::CString::new(scope).ok()?;
            // SAFETY: `name` is a NUL-terminated string that outlives the call.
            let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
            (idx != 0).then_some(idx)?
        }
    };
    Some(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, scope_id)))
}

/// The first answer of an upstream to `query` (a whole DNS message, its id kept), or None if
/// none answered in time.
pub async fn forward(upstreams: &[SocketAddr], query: &[u8], id: u16, tcp_client: bool) -> Option<Message> {
    for up in upstreams {
        match udp(*up, query, id).await {
            Ok(m) if m.metadata.truncation && tcp_client => match tcp(*up, query, id).await {
                Ok(m) => return Some(m),
                Err(_) => return Some(m),
            },
            Ok(m) => return Some(m),
            Err(_) => continue,
        }
    }
    None
}

fn check(data: &[u8], id: u16) -> io::Result<Message> {
    let m = Message::from_vec(data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not the answer to our query"));
    }
    Ok(m)
}

async fn udp(up: SocketAddr, query: &[u8], id: u16) -> io::Result<Message> {
    let local: IpAddr = if up.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let sock = UdpSocket::bind((local, 0)).await?;
    // Connected: the kernel drops datagrams from anyone but the upstream.
    sock.connect(up).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 4096];
    timeout(TIMEOUT, async {
        loop {
            let n = sock.recv(&mut buf).await?;
            // Skip stray datagrams (e.g. a late answer to another query): wait for ours.
            if let Ok(m) = check(&buf[..n], id) {
                return Ok(m);
            }
        }
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream timed out"))?
}

async fn tcp(up: SocketAddr, query: &[u8], id: u16) -> io::Result<Message> {
    let len = u16::try_from(query.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
    timeout(TIMEOUT, async {
        let mut s = TcpStream::connect(up).await?;
        let mut out = Vec::with_capacity(query.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(query);
        s.write_all(&out).await?;
        let n = s.read_u16().await?;
        let mut buf = vec![0u8; usize::from(n)];
        s.read_exact(&mut buf).await?;
        check(&buf, id)
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("resolv.conf");
        std::fs::write(
            &p,
            "# comment\nsearch example.com\nnameserver 10.0.0.1\nnameserver 192.0.2.53\nnameserver ::1\nnameserver fe80::1%1\nnameserver bogus\nnameserver 192.0.2.53\noptions ndots:2\n",
        )
        .unwrap();
        let got = upstreams(&p, &["10.0.0.1".parse().unwrap()]).unwrap();
        let want: Vec<SocketAddr> = vec!["192.0.2.53:53".parse().unwrap(), "[::1]:53".parse().unwrap(), "[fe80::1%1]:53".parse().unwrap()];
        assert_eq!(got, want);
        assert!(upstreams(&tmp.path().join("missing"), &[]).is_err());
    }
}
