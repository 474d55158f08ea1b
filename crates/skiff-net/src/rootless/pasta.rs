//! pasta's command line (passt 0.0~git20230309 and later) and what it prints.

use std::net::IpAddr;

use super::{Options, PortMap, DNS_FORWARD_PASTA, IFNAME};
use crate::nft::Proto;

/// fd 3 in pasta: the container's network namespace; fd 4: the readiness pipe (`-P`).
pub(super) fn args(opts: &Options, uid: u32, gid: u32) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "pasta".into(),
        // As root in the init user namespace pasta would switch to nobody, who may not open the
        // namespace; in a user namespace it keeps the caller's ids anyway.
        "--runas".into(),
        format!("{uid}:{gid}"),
        "--foreground".into(),
        "--config-net".into(),
        // The namespace is named by an fd we pass (pasta, having dropped CAP_SYS_PTRACE, may not
        // open /proc/PID/ns/net of a process with more capabilities than itself); inotify on
        // /proc would never fire: the keeper ends pasta instead.
        "--netns".into(),
        "/proc/self/fd/3".into(),
        "--no-netns-quit".into(),
        // Written once the tap is configured and the ports are bound.
        "--pid".into(),
        "/proc/self/fd/4".into(),
        "--ns-ifname".into(),
        IFNAME.into(),
        "--dns-forward".into(),
        DNS_FORWARD_PASTA.to_string(),
        // Nothing of the host's loopback is forwarded into the namespace (-T/-U default to auto).
        "--tcp-ns".into(),
        "none".into(),
        "--udp-ns".into(),
        "none".into(),
    ];
    if !opts.allow_host_loopback {
        a.push("--no-map-gw".into());
    }
    if !opts.ipv6 {
        a.push("--ipv4-only".into());
    }
    if let Some(mtu) = opts.mtu {
        a.push("--mtu".into());
        a.push(mtu.to_string());
    }
    for (flag, proto) in [("--tcp-ports", Proto::Tcp), ("--udp-ports", Proto::Udp)] {
        let specs: Vec<String> = opts.ports.iter().filter(|p| p.proto == proto).map(spec).collect();
        if specs.is_empty() {
            // Not "auto" (pasta's default), and no UDP twins of the TCP ports either.
            a.push(flag.into());
            a.push("none".into());
        }
        for s in specs {
            a.push(flag.into());
            a.push(s);
        }
    }
    a
}

/// `[ADDR/]HOST_PORT:CONTAINER_PORT`.
fn spec(p: &PortMap) -> String {
    match p.host_ip.filter(|ip| !ip.is_unspecified()) {
        Some(ip) => format!("{ip}/{}:{}", p.host_port, p.container_port),
        None => format!("{}:{}", p.host_port, p.container_port),
    }
}

/// The IPv4 address and gateway pasta gave the namespace, from its startup report:
/// `DHCP:\n    assign: A\n    mask: M\n    router: G`.
pub(super) fn parse_report(text: &str) -> (Option<IpAddr>, Option<IpAddr>) {
    let (mut addr, mut gw) = (None, None);
    let mut in_dhcp = false;
    // Its complaints that the system logger is unreachable come between the lines.
    for line in text.lines().filter(|l| !l.starts_with("Failed to send")) {
        if !line.starts_with(' ') {
            in_dhcp = line.trim_end() == "DHCP:";
            continue;
        }
        if !in_dhcp {
            continue;
        }
        let l = line.trim();
        if let Some(v) = l.strip_prefix("assign:") {
            addr = v.trim().parse().ok().or(addr);
        } else if let Some(v) = l.strip_prefix("router:") {
            gw = v.trim().parse().ok().or(gw);
        }
    }
    (addr, gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report() {
        let text = "Failed to send 47 bytes to syslog\nTemplate interface: eth0 (IPv4), eth0 (IPv6)\n\
                    Namespace interface: eth0\nMAC:\n    host: 02:fc:00:00:00:01\nDHCP:\nFailed to send 28 bytes to syslog\n    assign: 192.0.2.2\n    \
                    mask: 255.255.255.0\n    router: 192.0.2.1\nDNS:\n    10.255.255.53\nNDP/DHCPv6:\n    assign: fd00::2\n    \
                    router: fd00::1\n";
        assert_eq!(parse_report(text), (Some("192.0.2.2".parse().unwrap()), Some("192.0.2.1".parse().unwrap())));
        assert_eq!(parse_report("nothing"), (None, None));
    }

    #[test]
    fn command_line() {
        let opts = Options {
            ports: vec![
                PortMap {
                    host_ip: None,
                    host_port: 8080,
                    container_port: 80,
                    proto: Proto::Tcp,
                },
                PortMap {
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 5353,
                    container_port: 53,
                    proto: Proto::Udp,
                },
                PortMap {
                    host_ip: Some("::1".parse().unwrap()),
                    host_port: 8443,
                    container_port: 443,
                    proto: Proto::Tcp,
                },
            ],
            ..Options::default()
        };
        let a = args(&opts, 1000, 1000).join(" ");
        assert!(a.contains("--runas 1000:1000"), "{a}");
        assert!(a.contains("--tcp-ports 8080:80 --tcp-ports ::1/8443:443 --udp-ports 127.0.0.1/5353:53"), "{a}");
        assert!(
            a.contains("--no-map-gw") && a.contains("--ipv4-only") && a.contains("--tcp-ns none --udp-ns none"),
            "{a}"
        );
        let none = args(
            &Options {
                allow_host_loopback: true,
                ipv6: true,
                mtu: Some(1500),
                ..Options::default()
            },
            0,
            0,
        )
        .join(" ");
        assert!(none.contains("--tcp-ports none --udp-ports none") && none.contains("--mtu 1500"), "{none}");
        assert!(!none.contains("--no-map-gw") && !none.contains("--ipv4-only"), "{none}");
    }
}
