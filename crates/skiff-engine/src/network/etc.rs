//! The container's `/etc/hosts` and `/etc/resolv.conf`, as Docker writes them.

use std::net::IpAddr;

/// A parsed resolv.conf: what we keep of it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Resolv {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl Resolv {
    pub fn parse(text: &str) -> Resolv {
        let mut r = Resolv::default();
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match w.next() {
                Some("nameserver") => r.nameservers.extend(w.next().map(str::to_string)),
                Some("search") | Some("domain") => r.search = w.map(str::to_string).collect(),
                Some("options") => r.options.extend(w.map(str::to_string)),
                _ => {}
            }
        }
        r
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.search.is_empty() {
            s.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        for n in &self.nameservers {
            s.push_str(&format!("nameserver {n}\n"));
        }
        if !self.options.is_empty() {
            s.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        s
    }
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// What the user asked for with `--dns`, `--dns-search`, `--dns-option`.
#[derive(Debug, Default, Clone)]
pub struct DnsFlags<'a> {
    pub servers: &'a [String],
    pub search: &'a [String],
    pub options: &'a [String],
}

/// The resolv.conf of a container on bridge networks. `ours`: our DNS servers (the gateways of
/// its user networks), listed first with `search dns.skiff`; the host's loopback resolvers are
/// unreachable from the container and dropped (on the default bridge, as Docker, falling back to
/// public resolvers when none is left).
pub fn resolv_conf(host: &str, ours: &[IpAddr], flags: &DnsFlags<'_>) -> String {
    let h = Resolv::parse(host);
    let mut r = Resolv {
        nameservers: ours.iter().map(|a| a.to_string()).collect(),
        search: h.search.clone(),
        options: h.options.clone(),
    };
    if !flags.servers.is_empty() {
        r.nameservers.extend(flags.servers.iter().cloned());
    } else if ours.is_empty() {
        r.nameservers.extend(h.nameservers.iter().filter(|n| !is_loopback(n)).cloned());
        if r.nameservers.is_empty() {
            r.nameservers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
        }
    }
    if !ours.is_empty() && !r.search.iter().any(|s| s == "dns.skiff") {
        r.search.insert(0, "dns.skiff".into());
    }
    if !flags.search.is_empty() {
        r.search = if flags.search == ["."] { vec![] } else { flags.search.to_vec() };
    }
    if !flags.options.is_empty() {
        r.options = flags.options.to_vec();
    }
    r.render()
}

/// `/etc/hosts`: localhost, the container's own addresses under its hostname, then
/// `--add-host` entries (already resolved to addresses).
pub fn hosts(hostname: &str, own: &[IpAddr], extra: &[(String, String)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    if own.is_empty() {
        s.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for a in own {
        s.push_str(&format!("{a}\t{hostname}\n"));
    }
    s
}

/// `--add-host NAME:IP` (also `NAME=IP`, and `[v6]`); `host-gateway` is kept for the caller
/// to replace with the gateway's address.
pub fn parse_add_host(spec: &str) -> Option<(String, String)> {
    let (name, ip) = spec.split_once('=').or_else(|| spec.split_once(':'))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    if ip != "host-gateway" && ip.parse::<IpAddr>().is_err() {
        return None;
    }
    Some((name.to_string(), ip.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# comment\nsearch example.com corp\nnameserver 127.0.0.53\nnameserver 10.1.2.3\noptions ndots:2 edns0\n";

    #[test]
    fn resolv_for_default_and_user_networks() {
        let d = resolv_conf(HOST, &[], &DnsFlags::default());
        assert_eq!(d, "search example.com corp\nnameserver 10.1.2.3\noptions ndots:2 edns0\n");
        let only_local = resolv_conf("nameserver 127.0.0.53\n", &[], &DnsFlags::default());
        assert_eq!(only_local, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let gw: IpAddr = "10.89.0.1".parse().unwrap();
        let u = resolv_conf(HOST, &[gw], &DnsFlags::default());
        assert_eq!(u, "search dns.skiff example.com corp\nnameserver 10.89.0.1\noptions ndots:2 edns0\n");
        let servers = vec!["1.1.1.1".to_string()];
        let search = vec![".".to_string()];
        let f = resolv_conf(
            HOST,
            &[],
            &DnsFlags {
                servers: &servers,
                search: &search,
                options: &[],
            },
        );
        assert_eq!(f, "nameserver 1.1.1.1\noptions ndots:2 edns0\n");
    }

    #[test]
    fn hosts_and_add_host() {
        let ip: IpAddr = "172.17.0.2".parse().unwrap();
        let h = hosts("abc", &[ip], &[("db".into(), "10.0.0.9".into())]);
        assert!(h.ends_with("10.0.0.9\tdb\n172.17.0.2\tabc\n"), "{h}");
        assert!(hosts("abc", &[], &[]).ends_with("127.0.1.1\tabc\n"));
        assert_eq!(parse_add_host("db:10.0.0.9"), Some(("db".into(), "10.0.0.9".into())));
        assert_eq!(parse_add_host("v6:[::1]"), Some(("v6".into(), "::1".into())));
        assert_eq!(parse_add_host("gw:host-gateway"), Some(("gw".into(), "host-gateway".into())));
        assert_eq!(parse_add_host("x:notanip"), None);
        assert_eq!(parse_add_host("noip"), None);
    }
}
