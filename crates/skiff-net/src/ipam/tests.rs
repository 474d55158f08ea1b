use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::config::{CreateRequest, Networks};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn setup(subnet: &[&str], gateway: &[&str], range: &[&str]) -> (tempfile::TempDir, Network) {
    let d = tempfile::tempdir().unwrap();
    let net = make(d.path(), "n", subnet, gateway, range);
    (d, net)
}

fn make(root: &Path, name: &str, subnet: &[&str], gateway: &[&str], range: &[&str]) -> Network {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ipv6 = subnet.iter().any(|s| s.contains(':'));
    let req = CreateRequest {
        name: name.into(),
        subnets: v(subnet),
        gateways: v(gateway),
        ip_ranges: v(range),
        ipv6,
        ..Default::default()
    };
    Networks::open(root).unwrap().with_host_routes(vec![]).create(&req).unwrap()
}

#[test]
fn lowest_first_idempotent_release_reuse() {
    let (_d, net) = setup(&["10.1.0.0/24"], &[], &[]);
    assert_eq!(allocate(&net, "c1", None).unwrap(), ip("10.1.0.2"));
    assert_eq!(allocate(&net, "c2", None).unwrap(), ip("10.1.0.3"));
    assert_eq!(allocate(&net, "c3", None).unwrap(), ip("10.1.0.4"));
    // The same owner gets the same address back.
    assert_eq!(allocate(&net, "c2", None).unwrap(), ip("10.1.0.3"));
    assert_eq!(allocate(&net, "c2", Some(ip("10.1.0.3"))).unwrap(), ip("10.1.0.3"));
    assert!(matches!(allocate(&net, "c2", Some(ip("10.1.0.9"))), Err(Error::Conflict(m)) if m == "c2 already has address 10.1.0.3 on network n"));
    assert_eq!(release(&net, "c2").unwrap(), vec![ip("10.1.0.3")]);
    assert_eq!(release(&net, "c2").unwrap(), Vec::<IpAddr>::new());
    assert_eq!(owned(&net).unwrap().len(), 2);
    // The lowest free address is handed out again.
    assert_eq!(allocate(&net, "c4", None).unwrap(), ip("10.1.0.3"));
    assert_eq!(allocate(&net, "c5", None).unwrap(), ip("10.1.0.5"));
    assert!(matches!(allocate(&net, "", None), Err(Error::Invalid(_))));
    let o = owned(&net).unwrap();
    assert_eq!(o.get(&ip("10.1.0.3")).map(String::as_str), Some("c4"));
    assert_eq!(o.len(), 4);
}

#[test]
fn persisted_json() {
    let (_d, net) = setup(&["10.1.0.0/24"], &[], &[]);
    assert!(owned(&net).unwrap().is_empty());
    allocate(&net, "abc", None).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(net.state_dir().join("ipam.json")).unwrap()).unwrap();
    assert_eq!(v, serde_json::json!({"Gateways": ["10.1.0.1"], "Addresses": {"10.1.0.2": "abc"}}));
}

#[test]
fn gateway_elsewhere_and_exhaustion() {
    // /29: .0 network, .7 broadcast, .6 the gateway: five addresses.
    let (_d, net) = setup(&["10.2.0.0/29"], &["10.2.0.6"], &[]);
    let got: Vec<IpAddr> = (0..5).map(|i| allocate(&net, &format!("c{i}"), None).unwrap()).collect();
    assert_eq!(got, ["10.2.0.1", "10.2.0.2", "10.2.0.3", "10.2.0.4", "10.2.0.5"].map(ip));
    let e = allocate(&net, "c9", None).unwrap_err();
    assert!(matches!(e, Error::Exhausted(_)));
    assert_eq!(e.to_string(), "no available IPv4 addresses on network n");
}

#[test]
fn slash30_exhausts_after_one() {
    let (_d, net) = setup(&["10.3.0.0/30"], &[], &[]);
    assert_eq!(allocate(&net, "a", None).unwrap(), ip("10.3.0.2"));
    assert!(matches!(allocate(&net, "b", None), Err(Error::Exhausted(n)) if n == "n"));
    // A failed allocation writes nothing.
    assert_eq!(owned(&net).unwrap().len(), 1);
    release(&net, "a").unwrap();
    assert_eq!(allocate(&net, "b", None).unwrap(), ip("10.3.0.2"));
}

#[test]
fn ip_range() {
    let (_d, net) = setup(&["10.4.0.0/16"], &[], &["10.4.255.252/30"]);
    assert_eq!(allocate(&net, "a", None).unwrap(), ip("10.4.255.252"));
    assert_eq!(allocate(&net, "b", None).unwrap(), ip("10.4.255.253"));
    assert_eq!(allocate(&net, "c", None).unwrap(), ip("10.4.255.254"));
    // .255 is the subnet's broadcast address.
    assert!(matches!(allocate(&net, "d", None), Err(Error::Exhausted(_))));
    // A static address may lie outside the range, inside the subnet (Docker's rule).
    assert_eq!(allocate(&net, "d", Some(ip("10.4.0.9"))).unwrap(), ip("10.4.0.9"));
}

#[test]
fn requested_addresses() {
    let (_d, net) = setup(&["10.5.0.0/24"], &[], &[]);
    assert_eq!(allocate(&net, "a", Some(ip("10.5.0.50"))).unwrap(), ip("10.5.0.50"));
    let conflict = |r: Result<IpAddr>| matches!(r, Err(Error::Conflict(m)) if m.starts_with("Address already in use"));
    assert!(conflict(allocate(&net, "b", Some(ip("10.5.0.50")))));
    assert!(conflict(allocate(&net, "b", Some(ip("10.5.0.1")))));
    let invalid = |r: Result<IpAddr>| match r {
        Err(Error::Invalid(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        invalid(allocate(&net, "b", Some(ip("10.6.0.5")))),
        "no configured subnet or ip-range contain the IP address 10.6.0.5"
    );
    assert_eq!(
        invalid(allocate(&net, "b", Some(ip("10.5.0.0")))),
        "address 10.5.0.0 is the network or broadcast address of subnet 10.5.0.0/24"
    );
    assert!(invalid(allocate(&net, "b", Some(ip("10.5.0.255")))).contains("broadcast"));
    assert!(invalid(allocate(&net, "b", Some(ip("fd00::5")))).contains("fd00::5"));
    // The automatic ones go around the requested one.
    assert_eq!(allocate(&net, "b", None).unwrap(), ip("10.5.0.2"));
    assert_eq!(owned(&net).unwrap().len(), 2);
}

#[test]
fn ipv6_dual_stack() {
    let (_d, net) = setup(&["fd00:1::/64", "10.7.0.0/24"], &[], &[]);
    assert_eq!(allocate_all(&net, "a", &[]).unwrap(), vec![ip("10.7.0.2"), ip("fd00:1::2")]);
    assert_eq!(allocate_all(&net, "a", &[]).unwrap(), vec![ip("10.7.0.2"), ip("fd00:1::2")]);
    assert_eq!(allocate_all(&net, "b", &[ip("fd00:1::99")]).unwrap(), vec![ip("10.7.0.3"), ip("fd00:1::99")]);
    assert_eq!(allocate(&net, "c", None).unwrap(), ip("10.7.0.4"));
    assert_eq!(allocate(&net, "c", Some(ip("fd00:1::3"))).unwrap(), ip("fd00:1::3"));
    assert_eq!(allocate_all(&net, "d", &[]).unwrap(), vec![ip("10.7.0.5"), ip("fd00:1::4")]);
    // All or nothing: a taken v6 address leaves no v4 address behind.
    assert!(matches!(allocate_all(&net, "e", &[ip("fd00:1::2")]), Err(Error::Conflict(_))));
    assert!(!owned(&net).unwrap().values().any(|o| o == "e"));
    assert!(matches!(allocate_all(&net, "e", &[ip("10.7.0.9"), ip("10.7.0.10")]), Err(Error::Invalid(_))));
    assert_eq!(release(&net, "a").unwrap(), vec![ip("10.7.0.2"), ip("fd00:1::2")]);
    assert_eq!(allocate_all(&net, "e", &[]).unwrap(), vec![ip("10.7.0.2"), ip("fd00:1::2")]);
}

#[test]
fn ipv6_small_range_exhausts() {
    let (_d, net) = setup(&["fd00:2::/64"], &[], &["fd00:2::/126"]);
    // The range: ::0 (the subnet's own address), ::1 (gateway), ::2, ::3.
    let got = |o: &str| allocate_all(&net, o, &[]).map(|v| v[1]);
    assert_eq!(got("a").unwrap(), ip("fd00:2::2"));
    assert_eq!(got("b").unwrap(), ip("fd00:2::3"));
    let e = got("c").unwrap_err();
    assert!(matches!(e, Error::ExhaustedV6(_)), "{e:?}");
    assert_eq!(e.to_string(), "no available IPv6 addresses on network n");
}

#[test]
fn recover_frees_dead_owners() {
    let (_d, net) = setup(&["10.8.0.0/24"], &[], &[]);
    for o in ["live1", "dead1", "live2", "dead2"] {
        allocate(&net, o, None).unwrap();
    }
    let freed = recover(&net, &|o: &str| o.starts_with("live")).unwrap();
    assert_eq!(freed, vec![(ip("10.8.0.3"), "dead1".to_string()), (ip("10.8.0.5"), "dead2".to_string())]);
    assert_eq!(recover(&net, &|_: &str| true).unwrap(), vec![]);
    assert_eq!(owned(&net).unwrap().into_values().collect::<Vec<_>>(), ["live1", "live2"]);
    assert_eq!(allocate(&net, "new", None).unwrap(), ip("10.8.0.3"));
}

#[test]
fn removed_network() {
    let d = tempfile::tempdir().unwrap();
    let net = make(d.path(), "gone", &["10.9.0.0/24"], &[], &[]);
    allocate(&net, "a", None).unwrap();
    Networks::open(d.path()).unwrap().remove("gone").unwrap();
    assert!(matches!(allocate(&net, "b", None), Err(Error::NotFound(n)) if n == "gone"));
    assert_eq!(release(&net, "a").unwrap(), Vec::<IpAddr>::new());
    assert!(owned(&net).unwrap().is_empty());
    assert!(recover(&net, &|_: &str| false).unwrap().is_empty());
    assert!(!net.state_dir().exists());
}

#[test]
fn corrupt_file_is_an_error_not_a_reset() {
    let (_d, net) = setup(&["10.10.0.0/24"], &[], &[]);
    std::fs::write(net.state_dir().join("ipam.json"), b"{\"Addresses\": {\"10.10.0.2\": ").unwrap();
    assert!(matches!(allocate(&net, "a", None), Err(Error::Invalid(m)) if m.contains("ipam.json")));
    assert!(owned(&net).is_err());
}

#[test]
fn macs() {
    assert_eq!(format_mac(&mac_for(ip("172.17.0.2"))), "02:42:ac:11:00:02");
    assert_eq!(format_mac(&mac_for(ip("fd00::1:a0b:c0d"))), "02:42:0a:0b:0c:0d");
}

#[test]
fn fifty_threads() {
    let (_d, net) = setup(&["10.11.0.0/24"], &[], &[]);
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let net = net.clone();
            std::thread::spawn(move || {
                let a = allocate(&net, &format!("c{i}"), None).unwrap();
                // Idempotent under contention too.
                assert_eq!(allocate(&net, &format!("c{i}"), None).unwrap(), a);
                a
            })
        })
        .collect();
    let got: BTreeSet<IpAddr> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got.len(), 50);
    let o = owned(&net).unwrap();
    assert_eq!(o.keys().copied().collect::<BTreeSet<_>>(), got);
    // Lowest first: exactly .2 ..= .51.
    assert_eq!(got.iter().next(), Some(&ip("10.11.0.2")));
    assert_eq!(got.iter().next_back(), Some(&ip("10.11.0.51")));
}

const ENV_ROOT: &str = "SKIFF_NET_IPAM_TEST_ROOT";
const ENV_MODE: &str = "SKIFF_NET_IPAM_TEST_MODE";

/// Runs in a child process (see [`twenty_processes`], [`killed_mid_write`]); a no-op otherwise.
#[test]
#[ignore]
fn child_process() {
    let (Ok(root), Ok(mode)) = (std::env::var(ENV_ROOT), std::env::var(ENV_MODE)) else {
        return;
    };
    let net = Networks::open(Path::new(&root)).unwrap().get("multi").unwrap();
    if let Some(me) = mode.strip_prefix("alloc:") {
        for j in 0..5 {
            let a = allocate(&net, &format!("{me}-{j}"), None).unwrap();
            println!("GOT {me}-{j} {a}");
        }
    } else {
        for j in 0.. {
            let owner = format!("loop-{}", j % 7);
            allocate(&net, &owner, None).unwrap();
            if j % 2 == 0 {
                release(&net, &owner).unwrap();
            }
        }
    }
}

fn child(root: &Path, mode: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "ipam::tests::child_process", "--ignored", "--nocapture", "--test-threads=1"])
        .env(ENV_ROOT, root)
        .env(ENV_MODE, mode);
    c
}

#[test]
fn twenty_processes() {
    let d = tempfile::tempdir().unwrap();
    let net = make(d.path(), "multi", &["10.12.0.0/24"], &[], &[]);
    let children: Vec<_> = (0..20)
        .map(|i| child(d.path(), &format!("alloc:p{i}")).stdout(std::process::Stdio::piped()).spawn().unwrap())
        .collect();
    let mut got = BTreeMap::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        for line in text.lines().filter_map(|l| l.split_once("GOT ").map(|(_, rest)| rest)) {
            let (owner, a) = line.split_once(' ').unwrap();
            assert!(got.insert(ip(a), owner.to_string()).is_none(), "{a} handed out twice");
        }
    }
    assert_eq!(got.len(), 100);
    assert_eq!(owned(&net).unwrap(), got);
    assert_eq!(got.keys().next_back(), Some(&ip("10.12.0.101")));
}

#[test]
fn killed_mid_write() {
    let d = tempfile::tempdir().unwrap();
    let net = make(d.path(), "multi", &["10.13.0.0/24"], &[], &[]);
    allocate(&net, "keep", None).unwrap();
    for round in 0..5 {
        let mut c = child(d.path(), "loop").stdout(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30 + 20 * round));
        c.kill().unwrap();
        c.wait().unwrap();
        // Whatever moment the SIGKILL hit, the file parses and the lock is free again.
        let o = owned(&net).unwrap();
        assert_eq!(o.get(&ip("10.13.0.2")).map(String::as_str), Some("keep"));
        assert!(o.len() <= 8 + round as usize, "{o:?}");
        let data = std::fs::read(net.state_dir().join("ipam.json")).unwrap();
        serde_json::from_slice::<serde_json::Value>(&data).unwrap();
        let a = allocate(&net, &format!("after{round}"), None).unwrap();
        assert_eq!(o.len() + 1, owned(&net).unwrap().len());
        assert!(!o.contains_key(&a));
    }
    assert!(owned(&net).unwrap().values().any(|o| o.starts_with("loop-")), "the children ran");
    recover(&net, &|o: &str| !o.starts_with("loop-")).unwrap();
    assert_eq!(owned(&net).unwrap().len(), 6);
}

#[test]
fn allocation_cost() {
    let (_d, net) = setup(&["10.14.0.0/16"], &[], &[]);
    let t = std::time::Instant::now();
    for i in 0..200 {
        allocate(&net, &format!("c{i}"), None).unwrap();
    }
    let per = t.elapsed() / 200;
    eprintln!("allocate with 0..200 addresses in use: {per:?} each");
    assert!(per < std::time::Duration::from_millis(50), "{per:?}");
}
