//! The hot path of published ports (a container's start and stop) straight over nftables
//! netlink: one batch of NEWRULE or DELRULE messages, a GETRULE dump for the listing. Same rules
//! as `nft` would write (`nft list` shows them, comment included): no process to start, no cache
//! to fetch, well under a millisecond instead of ~10 ms per `nft` call.

use std::net::IpAddr;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::{Proto, Published};

mod parse;
use crate::{Error, Result};
use parse::parse_rule;
pub(crate) use parse::Rule;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;
const BATCH_BEGIN: u16 = 16;
const BATCH_END: u16 = 17;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const F_REQUEST: u16 = 1;
const F_ACK: u16 = 4;
const F_DUMP: u16 = 0x300;
const F_CREATE: u16 = 0x400;
const F_APPEND: u16 = 0x800;
const NESTED: u16 = 0x8000;
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
// NFTA_RULE_*
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_HANDLE: u16 = 3;
const RULE_EXPRESSIONS: u16 = 4;
const RULE_USERDATA: u16 = 7;
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const DATA_VALUE: u16 = 1;
const REG_1: u32 = 1;
const REG_2: u32 = 2;
const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
const BASE_NETWORK: u32 = 1;
const BASE_TRANSPORT: u32 = 2;
/// NFTNL_UDATA_RULE_COMMENT: the TLV nft reads a rule's comment from.
const UDATA_COMMENT: u8 = 0;

/// An attribute list being written.
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn put(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }
    fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put(kind, &v.to_be_bytes())
    }
    fn str(&mut self, kind: u16, s: &str) -> &mut Self {
        self.put(kind, &[s.as_bytes(), &[0]].concat())
    }
    fn nest(&mut self, kind: u16, inner: &Attrs) -> &mut Self {
        self.put(kind | NESTED, &inner.0)
    }
    /// One expression of a rule: `name` with its data attributes.
    fn expr(&mut self, name: &str, data: &Attrs) -> &mut Self {
        let mut e = Attrs::default();
        e.str(EXPR_NAME, name).nest(EXPR_DATA, data);
        self.nest(LIST_ELEM, &e)
    }
}

fn data(value: &[u8]) -> Attrs {
    let mut d = Attrs::default();
    d.put(DATA_VALUE, value);
    d
}

/// `load` into register 1 and compare with `value` (meta key or payload base/offset/len).
fn load_cmp(exprs: &mut Attrs, load: (&str, Attrs), value: &[u8]) {
    exprs.expr(load.0, &load.1);
    let mut cmp = Attrs::default();
    cmp.u32(1, REG_1).u32(2, 0).nest(3, &data(value));
    exprs.expr("cmp", &cmp);
}

fn meta(key: u32) -> (&'static str, Attrs) {
    let mut a = Attrs::default();
    a.u32(2, key).u32(1, REG_1);
    ("meta", a)
}

fn payload(base: u32, offset: u32, len: u32) -> (&'static str, Attrs) {
    let mut a = Attrs::default();
    a.u32(1, REG_1).u32(2, base).u32(3, offset).u32(4, len);
    ("payload", a)
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// NEWRULE attributes of a DNAT rule, the same as `nft` makes of
/// `meta nfproto ipv4 [ip daddr H] tcp dport P dnat ip to C:CP comment "TAG"`.
fn dnat_rule(table: &str, chain: &str, comment: &str, p: &Published) -> Attrs {
    let v6 = p.container_ip.is_ipv6();
    let mut exprs = Attrs::default();
    load_cmp(&mut exprs, meta(META_NFPROTO), &[if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 }]);
    if let Some(h) = p.host_ip.filter(|ip| !ip.is_unspecified()) {
        let (off, len) = if v6 { (24, 16) } else { (16, 4) };
        load_cmp(&mut exprs, payload(BASE_NETWORK, off, len), &ip_bytes(h));
    }
    load_cmp(&mut exprs, meta(META_L4PROTO), &[if p.proto == Proto::Tcp { 6 } else { 17 }]);
    load_cmp(&mut exprs, payload(BASE_TRANSPORT, 2, 2), &p.host_port.to_be_bytes());
    let mut imm = Attrs::default();
    imm.u32(1, REG_1).nest(2, &data(&ip_bytes(p.container_ip)));
    exprs.expr("immediate", &imm);
    let mut imm = Attrs::default();
    imm.u32(1, REG_2).nest(2, &data(&p.container_port.to_be_bytes()));
    exprs.expr("immediate", &imm);
    let mut nat = Attrs::default();
    nat.u32(1, 1)
        .u32(2, u32::from(if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 }))
        .u32(3, REG_1)
        .u32(5, REG_2);
    exprs.expr("nat", &nat);
    let mut udata = vec![UDATA_COMMENT, u8::try_from(comment.len() + 1).unwrap_or(u8::MAX)];
    udata.extend_from_slice(comment.as_bytes());
    udata.push(0);
    let mut rule = Attrs::default();
    rule.str(RULE_TABLE, table)
        .str(RULE_CHAIN, chain)
        .nest(RULE_EXPRESSIONS, &exprs)
        .put(RULE_USERDATA, &udata);
    rule
}

/// A netlink message: header, nfgenmsg, attributes.
fn message(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &Attrs) {
    let len = u32::try_from(16 + 4 + attrs.0.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[family, 0]);
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(&attrs.0);
}

fn socket() -> Result<Socket> {
    let err = |op: &str, e: std::io::Error| Error::Netlink {
        op: format!("nftables {op}"),
        source: e,
    };
    let mut s = Socket::new(NETLINK_NETFILTER).map_err(|e| err("socket", e))?;
    s.bind_auto().map_err(|e| err("bind", e))?;
    s.connect(&SocketAddr::new(0, 0)).map_err(|e| err("connect", e))?;
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(5, 0)).map_err(|e| err("timeout", e.into()))?;
    Ok(s)
}

/// The messages of one reply datagram: (type, seq, payload after the header).
fn split(buf: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        if len < 16 || at + len > buf.len() {
            break;
        }
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        let seq = u32::from_ne_bytes([buf[at + 8], buf[at + 9], buf[at + 10], buf[at + 11]]);
        out.push((kind, seq, &buf[at + 16..at + len]));
        at += len.next_multiple_of(4);
    }
    out
}

/// The errno of an NLMSG_ERROR payload (0: an ack).
fn errno(payload: &[u8]) -> i32 {
    payload.get(..4).map_or(-libc::EIO, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Sends one transaction of `msgs` (kind, attributes) in family inet and waits for every ack.
fn batch(msgs: &[(u16, u16, Attrs)]) -> Result<()> {
    let s = socket()?;
    let mut out = Vec::new();
    let n = u32::try_from(msgs.len()).unwrap_or(u32::MAX);
    message(&mut out, BATCH_BEGIN, F_REQUEST, 0, 0, NFNL_SUBSYS_NFTABLES, &Attrs::default());
    for (seq, (kind, flags, attrs)) in (1..).zip(msgs) {
        message(
            &mut out,
            NFNL_SUBSYS_NFTABLES << 8 | kind,
            F_REQUEST | F_ACK | flags,
            seq,
            NFPROTO_INET,
            0,
            attrs,
        );
    }
    message(&mut out, BATCH_END, F_REQUEST, n + 1, 0, NFNL_SUBSYS_NFTABLES, &Attrs::default());
    s.send(&out, 0).map_err(|e| Error::Netlink {
        op: "nftables batch send".into(),
        source: e,
    })?;
    let (mut acked, mut first_err) = (0, 0);
    while acked < n {
        let (buf, _) = s.recv_from_full().map_err(|e| Error::Netlink {
            op: "nftables batch reply".into(),
            source: e,
        })?;
        for (kind, seq, payload) in split(&buf) {
            if kind == NLMSG_ERROR {
                let e = errno(payload);
                if e != 0 && first_err == 0 {
                    first_err = e;
                }
                if seq == 0 || seq > n {
                    acked = n; // an error about the batch itself: no more replies
                } else {
                    acked += 1;
                }
            }
        }
    }
    if first_err != 0 {
        let source = std::io::Error::from_raw_os_error(-first_err);
        return Err(Error::Netlink {
            op: "nftables transaction".into(),
            source,
        });
    }
    Ok(())
}

/// Adds `ports` as DNAT rules of `table`/`chain` (family inet), one transaction.
pub(crate) fn add_dnat(table: &str, chain: &str, comment: &str, ports: &[Published]) -> Result<()> {
    let msgs: Vec<_> = ports
        .iter()
        .map(|p| (NFT_MSG_NEWRULE, F_CREATE | F_APPEND, dnat_rule(table, chain, comment, p)))
        .collect();
    batch(&msgs)
}

/// Deletes rules by handle, one transaction.
pub(crate) fn delete(table: &str, chain: &str, handles: &[u64]) -> Result<()> {
    let msgs: Vec<_> = handles
        .iter()
        .map(|h| {
            let mut a = Attrs::default();
            a.str(RULE_TABLE, table).str(RULE_CHAIN, chain).put(RULE_HANDLE, &h.to_be_bytes());
            (NFT_MSG_DELRULE, 0, a)
        })
        .collect();
    batch(&msgs)
}

/// The rules of `table`/`chain` (family inet); none if the chain does not exist.
pub(crate) fn list(table: &str, chain: &str) -> Result<Vec<Rule>> {
    let s = socket()?;
    let mut a = Attrs::default();
    a.str(RULE_TABLE, table).str(RULE_CHAIN, chain);
    let mut out = Vec::new();
    message(
        &mut out,
        NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETRULE,
        F_REQUEST | F_DUMP,
        1,
        NFPROTO_INET,
        0,
        &a,
    );
    s.send(&out, 0).map_err(|e| Error::Netlink {
        op: "nftables list send".into(),
        source: e,
    })?;
    let mut rules = Vec::new();
    loop {
        let (buf, _) = s.recv_from_full().map_err(|e| Error::Netlink {
            op: "nftables list".into(),
            source: e,
        })?;
        for (kind, _, payload) in split(&buf) {
            match kind {
                NLMSG_DONE => return Ok(rules),
                NLMSG_ERROR if errno(payload) == -libc::ENOENT => return Ok(Vec::new()),
                NLMSG_ERROR => {
                    let source = std::io::Error::from_raw_os_error(-errno(payload));
                    return Err(Error::Netlink {
                        op: format!("nftables list {table} {chain}"),
                        source,
                    });
                }
                _ => rules.extend(parse_rule(payload.get(4..).unwrap_or_default())),
            }
        }
    }
}
