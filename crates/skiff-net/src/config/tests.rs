use super::*;

fn store(routes: &[(&str, &str)]) -> (tempfile::TempDir, Networks) {
    let d = tempfile::tempdir().unwrap();
    let routes = routes
        .iter()
        .map(|(n, dev)| HostRoute {
            dest: n.parse().unwrap(),
            dev: dev.to_string(),
        })
        .collect();
    let n = Networks::open(d.path()).unwrap().with_host_routes(routes);
    (d, n)
}

fn req(name: &str) -> CreateRequest {
    CreateRequest {
        name: name.into(),
        ..Default::default()
    }
}

fn with_subnet(name: &str, subnet: &str) -> CreateRequest {
    CreateRequest {
        subnets: vec![subnet.into()],
        ..req(name)
    }
}

fn invalid(r: Result<Network>) -> String {
    match r {
        Err(Error::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn default_network() {
    let (_d, nets) = store(&[]);
    let def = nets.ensure_default().unwrap();
    assert_eq!(def.name, "bridge");
    assert_eq!(def.bridge, "skiff0");
    assert_eq!(def.driver, "bridge");
    assert_eq!(def.id.len(), 64);
    assert_eq!(
        def.subnets,
        vec![Subnet {
            subnet: net("172.17.0.0/16"),
            gateway: "172.17.0.1".parse().unwrap(),
            ip_range: None
        }]
    );
    assert!(def.state_dir().is_dir());
    assert!(def.is_default());
    // Made once: the same network again.
    assert_eq!(nets.ensure_default().unwrap(), def);
    assert_eq!(nets.get("bridge").unwrap(), def);
}

#[test]
fn default_network_avoids_host_routes() {
    let (_d, nets) = store(&[("172.16.0.0/15", "eth0"), ("172.19.0.0/24", "wlan0")]);
    let def = nets.ensure_default().unwrap();
    assert_eq!(def.subnets[0].subnet, net("172.18.0.0/16"));
    // The next network skips the default's pool and the route in 172.19.
    let n = nets.create(&req("n1")).unwrap();
    assert_eq!(n.subnets[0].subnet, net("172.20.0.0/16"));
    assert_eq!(n.subnets[0].gateway, "172.20.0.1".parse::<IpAddr>().unwrap());
}

#[test]
fn create_makes_default_first_and_picks_pools() {
    let (_d, nets) = store(&[]);
    let a = nets.create(&req("a")).unwrap();
    assert_eq!(a.subnets[0].subnet, net("172.18.0.0/16"));
    assert!(a.bridge.starts_with("skbr-") && a.bridge.len() == 13 && a.id.starts_with(&a.bridge[5..]));
    assert!(!a.internal && !a.ipv6);
    let names: Vec<String> = nets.list().unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["a", "bridge"]);
    // A user network in 172.19 pushes the next automatic one further.
    nets.create(&with_subnet("b", "172.19.0.0/16")).unwrap();
    assert_eq!(nets.create(&req("c")).unwrap().subnets[0].subnet, net("172.20.0.0/16"));
    // After the /16s, Docker's 192.168.x.0/20s.
    for i in 0..11 {
        nets.create(&req(&format!("fill{i}"))).unwrap();
    }
    assert_eq!(nets.create(&req("d")).unwrap().subnets[0].subnet, net("192.168.0.0/20"));
    assert_eq!(nets.create(&req("e")).unwrap().subnets[0].subnet, net("192.168.16.0/20"));
    let pools: Vec<IpNet> = default_pools().collect();
    assert_eq!(pools.len(), 31);
    assert_eq!(pools[30], net("192.168.240.0/20"));
}

#[test]
fn pools_run_out() {
    let (_d, nets) = store(&[("172.16.0.0/12", "eth0"), ("192.168.0.0/16", "eth1")]);
    let m = match nets.ensure_default() {
        Err(Error::Invalid(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(m, "all predefined address pools have been fully subnetted");
    assert!(nets.list().unwrap().is_empty());
}

#[test]
fn names() {
    let (_d, nets) = store(&[]);
    for bad in ["", "-a", ".a", "_a", "a b", "a/b", "a:b", "é"] {
        assert!(invalid(nets.create(&req(bad))).contains("invalid network name"), "{bad}");
    }
    assert!(validate_name(&"a".repeat(201)).is_err());
    for ok in ["a", "A.b_c-d", "9"] {
        nets.create(&req(ok)).unwrap();
    }
    for taken in ["bridge", "host", "none", "a"] {
        match nets.create(&req(taken)) {
            Err(Error::Conflict(m)) => assert_eq!(m, format!("network with name {taken} already exists")),
            other => panic!("{other:?}"),
        }
    }
    let r = CreateRequest {
        driver: Some("macvlan".into()),
        ..req("m")
    };
    assert_eq!(invalid(nets.create(&r)), "plugin \"macvlan\" not found");
    nets.create(&CreateRequest {
        driver: Some("bridge".into()),
        ..req("m")
    })
    .unwrap();
}

#[test]
fn subnet_gateway_range() {
    let (_d, nets) = store(&[]);
    let r = CreateRequest {
        subnets: vec!["10.5.0.0/16".into()],
        gateways: vec!["10.5.255.254".into()],
        ip_ranges: vec!["10.5.1.0/24".into()],
        ..req("n")
    };
    let n = nets.create(&r).unwrap();
    assert_eq!(
        n.subnets,
        vec![Subnet {
            subnet: net("10.5.0.0/16"),
            gateway: "10.5.255.254".parse().unwrap(),
            ip_range: Some(net("10.5.1.0/24"))
        }]
    );
    assert_eq!(nets.get("n").unwrap(), n);

    let e = |subnets: &[&str], gws: &[&str], ranges: &[&str]| {
        let r = CreateRequest {
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            gateways: gws.iter().map(|s| s.to_string()).collect(),
            ip_ranges: ranges.iter().map(|s| s.to_string()).collect(),
            ..req("x")
        };
        invalid(nets.create(&r))
    };
    assert_eq!(e(&["10.6.0.0"], &[], &[]), "invalid subnet 10.6.0.0: not a CIDR (like 10.1.0.0/16)");
    assert_eq!(e(&["foo"], &[], &[]), "invalid subnet foo: not a CIDR (like 10.1.0.0/16)");
    assert_eq!(e(&["10.6.0.0/33"], &[], &[]), "invalid subnet 10.6.0.0/33: not a CIDR (like 10.1.0.0/16)");
    assert_eq!(e(&["10.6.1.5/16"], &[], &[]), "invalid subnet 10.6.1.5/16: it should be 10.6.0.0/16");
    assert_eq!(e(&["10.6.0.0/31"], &[], &[]), "invalid subnet 10.6.0.0/31: too small (at most /30)");
    assert_eq!(
        e(&["10.6.0.0/16", "10.7.0.0/16"], &[], &[]),
        "subnet 10.7.0.0/16: one IPv4 and one IPv6 subnet per network are supported"
    );
    assert_eq!(e(&[], &["10.6.0.1"], &[]), "every ip-range or gateway must have a corresponding subnet");
    assert_eq!(e(&["10.6.0.0/16"], &["10.7.0.1"], &[]), "no matching subnet for gateway 10.7.0.1");
    assert_eq!(e(&["10.6.0.0/16"], &["bad"], &[]), "invalid gateway bad: not an IP address");
    assert_eq!(
        e(&["10.6.0.0/16"], &["10.6.0.0"], &[]),
        "invalid gateway 10.6.0.0: the network or broadcast address of subnet 10.6.0.0/16"
    );
    assert_eq!(
        e(&["10.6.0.0/16"], &["10.6.255.255"], &[]),
        "invalid gateway 10.6.255.255: the network or broadcast address of subnet 10.6.0.0/16"
    );
    assert_eq!(
        e(&["10.6.0.0/16"], &["10.6.0.1", "10.6.0.2"], &[]),
        "cannot configure multiple gateways (10.6.0.1 and 10.6.0.2) for subnet 10.6.0.0/16"
    );
    assert_eq!(e(&["10.6.0.0/16"], &[], &["10.7.0.0/24"]), "no matching subnet for range 10.7.0.0/24");
    assert_eq!(
        e(&["10.6.0.0/16"], &[], &["10.5.0.0/8"]),
        "invalid ip-range 10.5.0.0/8: it should be 10.0.0.0/8"
    );
    assert_eq!(
        e(&["10.6.0.0/16"], &[], &["10.6.0.0/24", "10.6.1.0/24"]),
        "cannot configure multiple ranges (10.6.0.0/24, 10.6.1.0/24) on the same subnet (10.6.0.0/16)"
    );
    // Nothing half-made.
    assert_eq!(nets.list().unwrap().len(), 2);
}

#[test]
fn overlaps() {
    let (_d, nets) = store(&[("10.0.0.0/8", "eth0"), ("192.0.2.0/24", "wlan0"), ("fd00::/64", "eth0")]);
    nets.create(&with_subnet("a", "172.30.0.0/16")).unwrap();
    assert_eq!(
        invalid(nets.create(&with_subnet("b", "10.1.0.0/16"))),
        "subnet 10.1.0.0/16 overlaps with 10.0.0.0/8 (route on eth0)"
    );
    assert_eq!(
        invalid(nets.create(&with_subnet("b", "192.0.0.0/16"))),
        "subnet 192.0.0.0/16 overlaps with 192.0.2.0/24 (route on wlan0)"
    );
    assert_eq!(
        invalid(nets.create(&with_subnet("b", "172.30.5.0/24"))),
        "subnet 172.30.5.0/24 overlaps with 172.30.0.0/16 (network a)"
    );
    assert_eq!(
        invalid(nets.create(&with_subnet("b", "172.16.0.0/12"))),
        "subnet 172.16.0.0/12 overlaps with 172.30.0.0/16 (network a)"
    );
    let v6 = CreateRequest {
        subnets: vec!["fd00::/48".into()],
        ipv6: true,
        ..req("b")
    };
    assert_eq!(invalid(nets.create(&v6)), "subnet fd00::/48 overlaps with fd00::/64 (route on eth0)");
    assert_eq!(nets.list().unwrap().len(), 2);
    nets.create(&with_subnet("b", "172.31.0.0/16")).unwrap();
}

#[test]
fn ipv6() {
    let (_d, nets) = store(&[]);
    let r = CreateRequest {
        subnets: vec!["fd12:3456::/64".into()],
        ipv6: true,
        ..req("six")
    };
    let n = nets.create(&r).unwrap();
    assert!(n.ipv6);
    assert_eq!(n.subnet_v4().unwrap().subnet, net("172.18.0.0/16"));
    let v6 = n.subnet_v6().unwrap();
    assert_eq!((v6.subnet, v6.gateway), (net("fd12:3456::/64"), "fd12:3456::1".parse().unwrap()));
    assert_eq!(n.subnets[0].subnet, net("172.18.0.0/16"));
    let r = CreateRequest { ipv6: true, ..req("x") };
    assert_eq!(invalid(nets.create(&r)), "--ipv6 needs an IPv6 subnet (--subnet with an IPv6 CIDR)");
    let r = CreateRequest {
        ipv6: true,
        subnets: vec!["10.9.0.0/16".into()],
        ..req("x")
    };
    assert!(invalid(nets.create(&r)).contains("--ipv6 needs"));
    assert_eq!(invalid(nets.create(&with_subnet("x", "fd99::/64"))), "an IPv6 subnet needs --ipv6");
    let r = CreateRequest {
        ipv6: true,
        subnets: vec!["fd12:3456::/80".into()],
        ..req("x")
    };
    assert!(invalid(nets.create(&r)).contains("overlaps with fd12:3456::/64 (network six)"));
    let r = CreateRequest {
        ipv6: true,
        subnets: vec!["fd99::/64".into(), "10.9.0.0/16".into()],
        gateways: vec!["fd99::fe".into()],
        ..req("dual")
    };
    let n = nets.create(&r).unwrap();
    assert_eq!(n.subnet_v6().unwrap().gateway, "fd99::fe".parse::<IpAddr>().unwrap());
    assert_eq!(n.subnet_v4().unwrap().gateway, "10.9.0.1".parse::<IpAddr>().unwrap());
}

#[test]
fn json_names() {
    let (_d, nets) = store(&[]);
    let mut labels = BTreeMap::new();
    labels.insert("k".to_string(), "v".to_string());
    let r = CreateRequest {
        internal: true,
        labels,
        ip_ranges: vec!["10.8.0.0/24".into()],
        ..with_subnet("j", "10.8.0.0/16")
    };
    let n = nets.create(&r).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(nets.dir().join("j.json")).unwrap()).unwrap();
    assert_eq!(v["Name"], "j");
    assert_eq!(v["Id"], n.id.as_str());
    assert_eq!(v["Driver"], "bridge");
    assert_eq!(v["Bridge"], n.bridge.as_str());
    assert_eq!(v["Internal"], true);
    assert_eq!(v["EnableIPv6"], false);
    assert_eq!(v["Labels"]["k"], "v");
    assert_eq!(v["Subnets"][0]["Subnet"], "10.8.0.0/16");
    assert_eq!(v["Subnets"][0]["Gateway"], "10.8.0.1");
    assert_eq!(v["Subnets"][0]["IPRange"], "10.8.0.0/24");
    assert!(v["Created"].as_str().unwrap().ends_with('Z'));
    assert!(v.get("state_dir").is_none());
}

#[test]
fn get_by_id_and_prefix() {
    let (_d, nets) = store(&[]);
    let a = nets.create(&req("na")).unwrap();
    assert_eq!(nets.get(&a.id).unwrap(), a);
    assert_eq!(nets.get(&a.id[..12]).unwrap(), a);
    assert!(matches!(nets.get("nope"), Err(Error::NotFound(n)) if n == "nope"));
    assert!(matches!(nets.get(""), Err(Error::NotFound(_))));
    assert!(matches!(nets.get("../a"), Err(Error::NotFound(_))));
    // The empty-looking hex prefix "" is refused above; a one-digit prefix may be ambiguous.
    let b = nets.get("bridge").unwrap();
    let common = a.id.chars().zip(b.id.chars()).take_while(|(x, y)| x == y).count();
    let p = &a.id[..common];
    if !p.is_empty() {
        assert!(invalid(nets.get(p)).contains("is ambiguous (2 matches found based on ID prefix)"));
    }
}

#[test]
fn remove() {
    let (_d, nets) = store(&[]);
    let a = nets.create(&req("na")).unwrap();
    std::fs::write(a.state_dir().join("ipam.json"), b"{}").unwrap();
    assert_eq!(nets.remove(&a.id[..10]).unwrap(), a);
    assert!(!a.state_dir().exists());
    assert!(matches!(nets.get("na"), Err(Error::NotFound(_))));
    assert!(matches!(nets.remove("na"), Err(Error::NotFound(_))));
    let def = nets.get("bridge").unwrap();
    for key in ["bridge", "host", "none", def.id.as_str()] {
        assert!(invalid(nets.remove(key)).ends_with("is a pre-defined network and cannot be removed"));
    }
    assert!(nets.get("bridge").is_ok());
    // The name is free again, and so is the subnet.
    assert_eq!(nets.create(&req("na")).unwrap().subnets[0].subnet, net("172.18.0.0/16"));
}

#[test]
fn corrupt_definition_is_skipped_in_list() {
    let (_d, nets) = store(&[]);
    nets.create(&req("a")).unwrap();
    std::fs::write(nets.dir().join("bad.json"), b"{not json").unwrap();
    std::fs::write(nets.dir().join(".a.json.tmp"), b"{half").unwrap();
    assert_eq!(nets.list().unwrap().len(), 2);
    assert!(matches!(nets.get("bad"), Err(Error::Invalid(_))));
}

#[test]
fn concurrent_creates() {
    let (_d, nets) = store(&[]);
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let nets = nets.clone();
            std::thread::spawn(move || nets.create(&req(&format!("n{}", i % 8))))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 8);
    assert!(results.iter().all(|r| r.is_ok() || matches!(r, Err(Error::Conflict(_)))));
    let list = nets.list().unwrap();
    assert_eq!(list.len(), 9);
    let mut subnets: Vec<IpNet> = list.iter().map(|n| n.subnets[0].subnet).collect();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 9);
}

#[test]
fn real_host_routes() {
    let d = tempfile::tempdir().unwrap();
    let nets = Networks::open(d.path()).unwrap();
    let def = nets.ensure_default().unwrap();
    let routes = routes::read_host_routes(Path::new("/proc/net")).unwrap();
    assert!(routes::overlapping(&def.subnets[0].subnet, &routes).is_none());
}

#[test]
fn concurrent_ensure_default() {
    let (_d, nets) = store(&[]);
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let nets = nets.clone();
            std::thread::spawn(move || nets.ensure_default().unwrap())
        })
        .collect();
    let ids: std::collections::BTreeSet<String> = handles.into_iter().map(|h| h.join().unwrap().id).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(nets.list().unwrap().len(), 1);
    assert_eq!(std::fs::read_dir(nets.dir()).unwrap().count(), 3, "bridge.json, its state dir, the lock");
}
