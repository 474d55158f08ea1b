//! The names the server answers, built from the records file, and the file's watch.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::records::{normalize, parse};
use crate::Entry;

/// The domain the engine puts in containers' resolv.conf (`search dns.skiff`).
pub const DOMAIN: &str = "dns.skiff";
pub const TTL: u32 = 60;

/// What to do with a query.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// One of our names: these records (possibly none: NOERROR, no data).
    Ours(Vec<Record>),
    /// A name under our domain that we do not have.
    NxDomain,
    /// Not ours: ask the upstream resolvers.
    Forward,
}

#[derive(Default)]
pub struct Zone {
    names: HashMap<String, Vec<IpAddr>>,
    reverse: HashMap<IpAddr, Name>,
}

impl Zone {
    pub fn new(entries: &[Entry]) -> Zone {
        let mut zone = Zone::default();
        for e in entries {
            for name in &e.names {
                let ips = zone.names.entry(normalize(name)).or_default();
                for ip in &e.ips {
                    if !ips.contains(ip) {
                        ips.push(*ip);
                    }
                }
            }
            let Some(first) = e.names.first().and_then(|n| Name::from_ascii(format!("{}.", normalize(n))).ok()) else {
                continue;
            };
            for ip in &e.ips {
                zone.reverse.entry(*ip).or_insert_with(|| first.clone());
            }
        }
        zone
    }

    pub fn lookup(&self, name: &Name, qtype: RecordType, qclass: DNSClass) -> Answer {
        if qclass != DNSClass::IN {
            return Answer::Forward;
        }
        let lower = normalize(&name.to_ascii());
        let ips = match lower.strip_suffix(DOMAIN) {
            Some("") => return Answer::Ours(Vec::new()),
            Some(base) if base.ends_with('.') => match self.names.get(&base[..base.len() - 1]) {
                Some(ips) => ips,
                None => return Answer::NxDomain,
            },
            _ => match self.names.get(&lower) {
                Some(ips) => ips,
                None => return self.reverse(name, qtype),
            },
        };
        let records = ips
            .iter()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
                (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(*v6))),
                _ => None,
            })
            .map(|rdata| Record::from_rdata(name.clone(), TTL, rdata))
            .collect();
        Answer::Ours(records)
    }

    /// PTR for one of our addresses; anything else is forwarded.
    fn reverse(&self, name: &Name, qtype: RecordType) -> Answer {
        if qtype != RecordType::PTR {
            return Answer::Forward;
        }
        let Ok(net) = name.parse_arpa_name() else { return Answer::Forward };
        if net.prefix_len() != net.max_prefix_len() {
            return Answer::Forward;
        }
        match self.reverse.get(&net.addr()) {
            Some(target) => Answer::Ours(vec![Record::from_rdata(name.clone(), TTL, RData::PTR(PTR(target.clone())))]),
            None => Answer::Forward,
        }
    }
}

/// Notices replacements of the records file. Every change is a rename of a new file into place,
/// so a different inode means new content; holding the file we read open keeps its inode from
/// being reused by a later version, so the check is a single stat.
pub struct Watch {
    path: PathBuf,
    held: Option<(File, u64, u64)>,
}

impl Watch {
    pub fn new(path: PathBuf) -> Watch {
        Watch { path, held: None }
    }

    /// The new entries if the file changed since the last call (a missing file has none).
    pub fn refresh(&mut self) -> std::io::Result<Option<Vec<Entry>>> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(self.held.take().map(|_| Vec::new()));
            }
            Err(e) => return Err(e),
        };
        if self.held.as_ref().is_some_and(|(_, dev, ino)| (*dev, *ino) == (meta.dev(), meta.ino())) {
            return Ok(None);
        }
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(self.held.take().map(|_| Vec::new())),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        self.held = Some((file, meta.dev(), meta.ino()));
        parse(&data)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        Zone::new(&[
            Entry {
                container_id: "1".into(),
                names: vec!["Web".into(), "www".into()],
                ips: vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
            },
            Entry {
                container_id: "2".into(),
                names: vec!["db".into(), "www".into()],
                ips: vec!["10.0.0.3".parse().unwrap()],
            },
        ])
    }

    fn ask(z: &Zone, name: &str, t: RecordType) -> Answer {
        z.lookup(&Name::from_ascii(name).unwrap(), t, DNSClass::IN)
    }

    fn ips(a: Answer) -> Vec<String> {
        match a {
            Answer::Ours(r) => r.iter().map(|r| r.data.to_string()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_types_and_domain() {
        let z = zone();
        assert_eq!(ips(ask(&z, "web", RecordType::A)), ["10.0.0.2"]);
        assert_eq!(ips(ask(&z, "WEB.", RecordType::AAAA)), ["fd00::2"]);
        assert_eq!(ips(ask(&z, "web.DNS.skiff.", RecordType::A)), ["10.0.0.2"]);
        assert_eq!(ips(ask(&z, "www", RecordType::A)), ["10.0.0.2", "10.0.0.3"]);
        assert!(ips(ask(&z, "db", RecordType::AAAA)).is_empty());
        assert!(ips(ask(&z, "db", RecordType::MX)).is_empty());
        assert_eq!(ask(&z, "nope.dns.skiff", RecordType::A), Answer::NxDomain);
        assert_eq!(ask(&z, "nope", RecordType::A), Answer::Forward);
        assert_eq!(ask(&z, "web.example", RecordType::A), Answer::Forward);
        assert_eq!(ask(&z, "xdns.skiff", RecordType::A), Answer::Forward);
        assert_eq!(z.lookup(&Name::from_ascii("web").unwrap(), RecordType::A, DNSClass::CH), Answer::Forward);
    }

    #[test]
    fn reverse() {
        let z = zone();
        assert_eq!(ips(ask(&z, "2.0.0.10.in-addr.arpa.", RecordType::PTR)), ["web."]);
        assert_eq!(ips(ask(&z, "3.0.0.10.in-addr.arpa.", RecordType::PTR)), ["db."]);
        let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
        assert_eq!(ips(ask(&z, v6, RecordType::PTR)), ["web."]);
        assert_eq!(ask(&z, "9.0.0.10.in-addr.arpa.", RecordType::PTR), Answer::Forward);
        assert_eq!(ask(&z, "0.10.in-addr.arpa.", RecordType::PTR), Answer::Forward);
    }

    #[test]
    fn watch_sees_each_replacement() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = Watch::new(tmp.path().join("records.json"));
        assert!(w.refresh().unwrap().is_none());
        for n in 0..20 {
            // Same size every time: only the inode tells the versions apart.
            let e = Entry {
                container_id: format!("{n:02}"),
                names: vec![format!("c{n:02}")],
                ips: vec![],
            };
            crate::records::write(tmp.path(), vec![e.clone()]).unwrap();
            assert_eq!(w.refresh().unwrap(), Some(vec![e]));
            assert!(w.refresh().unwrap().is_none());
        }
        std::fs::remove_file(tmp.path().join("records.json")).unwrap();
        assert_eq!(w.refresh().unwrap(), Some(vec![]));
        assert!(w.refresh().unwrap().is_none());
    }
}
