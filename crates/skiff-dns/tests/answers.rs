//! What a running server answers. Every test runs in a network namespace of its own.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const SHORT_ID: &str = "0123456789ab";

fn web() -> skiff_dns::Entry {
    entry("0123456789abcdef", &["web", "www", SHORT_ID], &["192.0.2.10", "2001:db8::10"])
}

#[test]
fn names_aliases_domain_case_and_reverse() {
    in_netns(true, || {
        let net = Net::new();
        net.add(&web()).unwrap();
        net.add(&entry("dbdbdbdbdbdbdbdb", &["db"], &["192.0.2.11"])).unwrap();
        let s = server_v4();
        assert_answers(&query(s, "web", RecordType::A), &["192.0.2.10"]);
        assert_answers(&query(s, "web.", RecordType::AAAA), &["2001:db8::10"]);
        assert_answers(&query(s, "www", RecordType::A), &["192.0.2.10"]);
        assert_answers(&query(s, SHORT_ID, RecordType::A), &["192.0.2.10"]);
        assert_answers(&query(s, "WeB.Dns.Skiff.", RecordType::A), &["192.0.2.10"]);
        assert_answers(&query(s, "db.dns.skiff", RecordType::A), &["192.0.2.11"]);
        // Ours but no address of that type: NOERROR with no answer, not NXDOMAIN.
        let m = query(s, "db", RecordType::AAAA);
        assert_answers(&m, &[]);
        assert!(m.metadata.authoritative);
        // Over IPv6 and over TCP too.
        let s6: SocketAddr = "[::1]:53".parse().unwrap();
        assert_answers(&query(s6, "db", RecordType::A), &["192.0.2.11"]);
        assert_answers(&query_tcp(s, "web", RecordType::AAAA), &["2001:db8::10"]);
        assert_answers(&query_tcp(s6, "www.dns.skiff", RecordType::A), &["192.0.2.10"]);
        // Reverse lookups answer the first name.
        assert_answers(&query(s, "10.2.0.192.in-addr.arpa.", RecordType::PTR), &["web."]);
        assert_answers(&query(s, "11.2.0.192.in-addr.arpa.", RecordType::PTR), &["db."]);
        let v6 = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
        assert_answers(&query(s, v6, RecordType::PTR), &["web."]);
        // Records carry a small TTL.
        assert!(query(s, "web", RecordType::A).answers.iter().all(|r| r.ttl == 60));
    });
}

#[test]
fn unknown_names_forwarded_ours_never() {
    in_netns(true, || {
        let up = Upstream::start();
        let net = Net::new();
        net.add(&web()).unwrap();
        let s = server_v4();
        // The resolv.conf names 127.0.0.1 (the server itself: skipped) before the fake upstream,
        // so a quick answer also shows the server does not ask itself.
        let t = Instant::now();
        let m = query(s, "example.org", RecordType::A);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_answers(&m, &[UPSTREAM_ANSWER]);
        assert_eq!(up.queries.load(Ordering::Relaxed), 1);
        // A TCP client's query is forwarded too.
        assert_answers(&query_tcp(s, "example.net", RecordType::A), &[UPSTREAM_ANSWER]);
        assert_eq!(up.queries.load(Ordering::Relaxed), 2);
        // A PTR for an address that is not a container's goes upstream as well.
        query(s, "99.2.0.192.in-addr.arpa.", RecordType::PTR);
        assert_eq!(up.queries.load(Ordering::Relaxed), 3);
        // Unknown names under our domain: NXDOMAIN, not forwarded.
        let m = query(s, "nope.dns.skiff", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(m.answers.is_empty());
        assert_eq!(up.queries.load(Ordering::Relaxed), 3);
        // Our names are never forwarded.
        query(s, "web", RecordType::A);
        query(s, "web", RecordType::MX);
        assert_eq!(up.queries.load(Ordering::Relaxed), 3);
        // Upstream gone: SERVFAIL (after the per-upstream timeout), no hang.
        drop(up);
        let m = try_query(s, "example.com", RecordType::A, Duration::from_secs(4)).expect("an answer");
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    });
}

#[test]
fn busybox_nslookup() {
    in_netns(true, || {
        let net = Net::new();
        net.add(&web()).unwrap();
        let out = std::process::Command::new("/bin/busybox")
            .args(["nslookup", "web.dns.skiff", "127.0.0.1"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("Address: 192.0.2.10"), "{text}");
        assert!(text.contains("Address: 2001:db8::10"), "{text}");
        let out = std::process::Command::new("/bin/busybox")
            .args(["nslookup", "nope.dns.skiff", "127.0.0.1"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("NXDOMAIN"), "{text}");
    });
}
