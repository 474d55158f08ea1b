//! Port 53 sockets on the listen addresses. IP_FREEBIND / IPV6_FREEBIND: an IPv6 gateway address
//! still in duplicate address detection (or a bridge still down) does not fail the bind.

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

pub const PORT: u16 = 53;

pub struct Sockets {
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: Vec<std::net::TcpListener>,
}

/// Binds UDP and TCP port 53 on every address; the error names the socket that failed.
pub fn bind(listen: &[IpAddr], port: u16) -> Result<Sockets, String> {
    let mut s = Sockets {
        udp: Vec::new(),
        tcp: Vec::new(),
    };
    for ip in listen {
        let addr = SocketAddr::new(*ip, port);
        let udp = socket(addr, Type::DGRAM, Protocol::UDP).map_err(|e| format!("bind {addr}/udp: {e}"))?;
        s.udp.push(udp.into());
        let tcp = socket(addr, Type::STREAM, Protocol::TCP)
            .and_then(|t| t.listen(128).map(|()| t))
            .map_err(|e| format!("bind {addr}/tcp: {e}"))?;
        s.tcp.push(tcp.into());
    }
    Ok(s)
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    // socket2 creates its sockets with SOCK_CLOEXEC.
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
        s.set_freebind_v6(true)?;
    } else {
        s.set_freebind_v4(true)?;
    }
    if ty == Type::STREAM {
        // A restarted server can bind while connections of the last one are in TIME_WAIT.
        s.set_reuse_address(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}
