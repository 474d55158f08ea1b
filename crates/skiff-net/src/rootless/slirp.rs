//! slirp4netns's command line (1.2.0) and its API socket (`add_hostfwd`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{Options, PortMap, IFNAME};

/// The MTU slirp4netns is given when the caller names none (podman's default, not 1500).
const DEFAULT_MTU: u32 = 65520;

/// fd 3 in slirp4netns: the container's network namespace; fd 4: the readiness pipe; fd 5: the
/// exit pipe (its write end is held by the keeper only).
pub(super) fn args(opts: &Options, api: &Path) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "slirp4netns".into(),
        "--configure".into(),
        format!("--mtu={}", opts.mtu.unwrap_or(DEFAULT_MTU)),
        "--enable-sandbox".into(),
        "--enable-seccomp".into(),
        "--ready-fd=4".into(),
        "--exit-fd=5".into(),
        format!("--api-socket={}", api.display()),
        "--netns-type=path".into(),
    ];
    if !opts.allow_host_loopback {
        a.push("--disable-host-loopback".into());
    }
    if opts.ipv6 {
        a.push("--enable-ipv6".into());
    }
    a.push("/proc/self/fd/3".into());
    a.push(IFNAME.into());
    a
}

/// The request adding one forward.
pub(super) fn hostfwd_request(p: &PortMap) -> serde_json::Value {
    let host_addr = p.host_ip.map_or_else(|| "0.0.0.0".to_string(), |ip| ip.to_string());
    serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": p.proto.as_str(),
            "host_addr": host_addr,
            "host_port": p.host_port,
            "guest_port": p.container_port,
        }
    })
}

/// Asks slirp4netns to forward `p`; `Err` carries its error text.
pub(super) fn add_hostfwd(api: &Path, p: &PortMap) -> std::result::Result<(), String> {
    let mut s = UnixStream::connect(api).map_err(|e| format!("connect to the API socket {}: {e}", api.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(hostfwd_request(p).to_string().as_bytes()).map_err(|e| e.to_string())?;
    s.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| format!("read the API's reply: {e}"))?;
    parse_reply(&reply)
}

fn parse_reply(reply: &str) -> std::result::Result<(), String> {
    let v: serde_json::Value = serde_json::from_str(reply.trim()).map_err(|e| format!("bad API reply {reply:?}: {e}"))?;
    if v.get("return").is_some() {
        return Ok(());
    }
    Err(v
        .pointer("/error/desc")
        .and_then(|d| d.as_str())
        .map_or_else(|| format!("unexpected API reply {reply}"), str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::Proto;

    #[test]
    fn command_line() {
        let a = args(&Options::default(), Path::new("/tmp/x/api.sock")).join(" ");
        assert!(a.starts_with("slirp4netns --configure --mtu=65520"), "{a}");
        assert!(a.ends_with("--disable-host-loopback /proc/self/fd/3 eth0"), "{a}");
        let b = args(
            &Options {
                allow_host_loopback: true,
                ipv6: true,
                mtu: Some(1500),
                ..Options::default()
            },
            Path::new("/a"),
        )
        .join(" ");
        assert!(b.contains("--mtu=1500") && b.contains("--enable-ipv6") && !b.contains("loopback"), "{b}");
    }

    #[test]
    fn requests_and_replies() {
        let p = PortMap {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            proto: Proto::Udp,
        };
        assert_eq!(
            hostfwd_request(&p).to_string(),
            r#"{"arguments":{"guest_port":80,"host_addr":"0.0.0.0","host_port":8080,"proto":"udp"},"execute":"add_hostfwd"}"#
        );
        assert_eq!(parse_reply(r#"{"return":{"id":1}}"#), Ok(()));
        assert_eq!(
            parse_reply(r#"{"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}}"#),
            Err("bad request: add_hostfwd: slirp_add_hostfwd failed".to_string())
        );
        assert!(parse_reply("garbage").is_err());
    }
}
