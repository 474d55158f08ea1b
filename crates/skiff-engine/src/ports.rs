//! `-p`/`--publish`, `--expose` and `-P` as Docker parses them, and their resolution to host
//! ports when a container starts.
//!
//! `-p` forms: `CPORT`, `HPORT:CPORT`, `IP:HPORT:CPORT`, `IP::CPORT`, `[V6]:HPORT:CPORT`, each
//! with an optional `/tcp` or `/udp`, and ranges of equal length (`8000-8001:80-81`). An empty
//! host port is picked by the kernel at start.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::record::PortBinding;

/// "80/tcp" -> (80, "tcp").
pub fn split_key(key: &str) -> Option<(u16, &str)> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    Some((p.parse().ok()?, proto))
}

fn bad(spec: &str, why: &str) -> Error {
    Error::Invalid(format!("invalid port specification: {spec:?}: {why}"))
}

/// `80` or `80-82` -> (80, 82).
fn range(spec: &str, s: &str) -> Result<(u16, u16)> {
    let one = |x: &str| -> Result<u16> {
        match x.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(spec, &format!("invalid port {x:?}"))),
            Ok(n) => Ok(n),
        }
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a {
                return Err(bad(spec, "invalid range"));
            }
            Ok((a, b))
        }
        None => one(s).map(|n| (n, n)),
    }
}

fn proto_of<'a>(spec: &str, s: &'a str) -> Result<(&'a str, &'static str)> {
    match s.rsplit_once('/') {
        Some((rest, "tcp")) => Ok((rest, "tcp")),
        Some((rest, "udp")) => Ok((rest, "udp")),
        Some((_, p)) => Err(bad(spec, &format!("invalid proto {p:?}"))),
        None => Ok((s, "tcp")),
    }
}

/// Parses one `-p` into "CPORT/PROTO" -> binding pairs.
pub fn parse_publish(spec: &str) -> Result<Vec<(String, PortBinding)>> {
    let (rest, proto) = proto_of(spec, spec)?;
    // An IPv6 host address is bracketed: `[::1]:8080:80`.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r.split_once(']').ok_or_else(|| bad(spec, "unterminated [address]"))?;
        (Some(ip), after.strip_prefix(':').ok_or_else(|| bad(spec, "no port after [address]"))?)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, "", *c),
        (None, [h, c]) => (None, *h, *c),
        (None, [i, h, c]) => (Some(*i), *h, *c),
        (Some(i), [h, c]) => (Some(i), *h, *c),
        _ => return Err(bad(spec, "too many colons")),
    };
    let host_ip = match ip {
        Some(i) if !i.is_empty() => {
            let a: IpAddr = i.parse().map_err(|_| bad(spec, &format!("invalid IP address {i:?}")))?;
            a.to_string()
        }
        _ => String::new(),
    };
    let (c0, c1) = range(spec, ctr)?;
    let hosts: Option<(u16, u16)> = if host.is_empty() { None } else { Some(range(spec, host)?) };
    if let Some((h0, h1)) = hosts {
        if h1 - h0 != c1 - c0 && h0 != h1 {
            return Err(bad(spec, "host and container port ranges differ in length"));
        }
    }
    let mut out = Vec::new();
    for (i, c) in (c0..=c1).enumerate() {
        let host_port = match hosts {
            None => String::new(),
            Some((h0, h1)) if h0 == h1 => h0.to_string(),
            Some((h0, _)) => (h0 + i as u16).to_string(),
        };
        out.push((
            format!("{c}/{proto}"),
            PortBinding {
                host_ip: host_ip.clone(),
                host_port,
            },
        ));
    }
    Ok(out)
}

/// Every `-p` into Docker's `PortBindings` map.
pub fn bindings(specs: &[String]) -> Result<BTreeMap<String, Vec<PortBinding>>> {
    let mut m: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for s in specs {
        for (k, b) in parse_publish(s)? {
            m.entry(k).or_default().push(b);
        }
    }
    Ok(m)
}

/// `--expose 80`, `--expose 80-82/udp` -> keys.
pub fn parse_expose(spec: &str) -> Result<Vec<String>> {
    let (rest, proto) = proto_of(spec, spec)?;
    let (a, b) = range(spec, rest)?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> (String, String, String) {
        let v = parse_publish(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        (v[0].0.clone(), v[0].1.host_ip.clone(), v[0].1.host_port.clone())
    }

    #[test]
    fn publish_forms() {
        assert_eq!(one("80"), ("80/tcp".into(), "".into(), "".into()));
        assert_eq!(one("8080:80"), ("80/tcp".into(), "".into(), "8080".into()));
        assert_eq!(one("127.0.0.1:8080:80/udp"), ("80/udp".into(), "127.0.0.1".into(), "8080".into()));
        assert_eq!(one("127.0.0.1::80"), ("80/tcp".into(), "127.0.0.1".into(), "".into()));
        assert_eq!(one("[::1]:8080:80"), ("80/tcp".into(), "::1".into(), "8080".into()));
        let r = parse_publish("8000-8001:80-81").unwrap();
        assert_eq!(r[1].0, "81/tcp");
        assert_eq!(r[1].1.host_port, "8001");
        for badspec in ["0", "80/sctp", "a:80", "1:2:3:4", "70000", "8000-8002:80-81", "300.1.1.1:80:80", "[::1:80"] {
            assert!(parse_publish(badspec).is_err(), "{badspec}");
        }
        assert_eq!(parse_expose("80-81/udp").unwrap(), vec!["80/udp".to_string(), "81/udp".to_string()]);
        assert_eq!(split_key("53/udp"), Some((53, "udp")));
    }
}
