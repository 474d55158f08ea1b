//! Reading back a GETRULE dump: handle, comment (nft's userdata TLV) and the DNAT mapping.

use std::net::IpAddr;

use super::super::{Proto, Published};
use super::{BASE_NETWORK, BASE_TRANSPORT, DATA_VALUE, EXPR_DATA, EXPR_NAME, META_L4PROTO, RULE_EXPRESSIONS, RULE_HANDLE, RULE_USERDATA, UDATA_COMMENT};

/// Iterates the attributes of `buf`: (type without flags, value).
pub(super) fn attrs(buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= buf.len() {
        let len = u16::from_ne_bytes([buf[at], buf[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([buf[at + 2], buf[at + 3]]) & 0x3fff;
        if len < 4 || at + len > buf.len() {
            break;
        }
        out.push((kind, &buf[at + 4..at + len]));
        at += len.next_multiple_of(4);
    }
    out
}

/// A listed rule: handle, comment, and its DNAT mapping if it is one of ours.
pub(crate) struct Rule {
    pub handle: u64,
    pub comment: Option<String>,
    pub port: Option<Published>,
}

pub(super) fn parse_rule(buf: &[u8]) -> Option<Rule> {
    let (mut handle, mut comment, mut port) = (None, None, None);
    for (kind, v) in attrs(buf) {
        match kind {
            RULE_HANDLE => handle = Some(u64::from_be_bytes(v.try_into().ok()?)),
            RULE_USERDATA => comment = parse_comment(v),
            RULE_EXPRESSIONS => port = parse_dnat(v),
            _ => {}
        }
    }
    Some(Rule {
        handle: handle?,
        comment,
        port,
    })
}

fn parse_comment(mut udata: &[u8]) -> Option<String> {
    while udata.len() >= 2 {
        let (kind, len) = (udata[0], udata[1] as usize);
        let value = udata.get(2..2 + len)?;
        if kind == UDATA_COMMENT {
            return Some(String::from_utf8_lossy(value.strip_suffix(&[0]).unwrap_or(value)).into_owned());
        }
        udata = &udata[2 + len..];
    }
    None
}

fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

fn ip_of(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
        _ => None,
    }
}

/// Reads back what `dnat_rule` (or `nft`, for the same rule) wrote.
fn parse_dnat(list: &[u8]) -> Option<Published> {
    let (mut loaded, mut host_ip, mut proto, mut host_port) = ((0, 0, 0), None, None, None);
    // Immediates by register, then the nat expression's address and port registers (nft itself
    // uses 32-bit registers, we use the legacy 128-bit ones: both are read back).
    let mut imm: Vec<(u32, &[u8])> = Vec::new();
    let mut nat: Option<(u32, u32)> = None;
    for (_, elem) in attrs(list) {
        let e = attrs(elem);
        let name = e.iter().find(|(k, _)| *k == EXPR_NAME).map(|(_, v)| *v)?;
        let d = attrs(e.iter().find(|(k, _)| *k == EXPR_DATA).map(|(_, v)| *v)?);
        let get = |k: u16| d.iter().find(|(t, _)| *t == k).map(|(_, v)| *v);
        let value = |k: u16| get(k).and_then(|n| attrs(n).into_iter().find(|(t, _)| *t == DATA_VALUE).map(|(_, v)| v));
        match name {
            b"meta\0" => loaded = (0, u32_of(get(2)?)?, 0),
            b"payload\0" => loaded = (u32_of(get(2)?)?, u32_of(get(3)?)?, u32_of(get(4)?)?),
            b"cmp\0" => match (loaded, value(3)?) {
                ((0, META_L4PROTO, _), [6]) => proto = Some(Proto::Tcp),
                ((0, META_L4PROTO, _), [17]) => proto = Some(Proto::Udp),
                ((BASE_NETWORK, 16 | 24, _), v) => host_ip = ip_of(v),
                ((BASE_TRANSPORT, 2, 2), v) => host_port = Some(u16::from_be_bytes(v.try_into().ok()?)),
                _ => {}
            },
            b"immediate\0" => imm.push((u32_of(get(1)?)?, value(2)?)),
            b"nat\0" => nat = Some((u32_of(get(3)?)?, u32_of(get(5)?)?)),
            _ => {}
        }
    }
    let (addr_reg, port_reg) = nat?;
    let reg = |r: u32| imm.iter().rev().find(|(k, _)| *k == r).map(|(_, v)| *v);
    let container_ip = ip_of(reg(addr_reg)?)?;
    let container_port = u16::from_be_bytes(reg(port_reg)?.try_into().ok()?);
    Some(Published {
        host_ip,
        host_port: host_port?,
        container_ip,
        container_port,
        proto: proto?,
    })
}
