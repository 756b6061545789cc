//! End-to-end checks of each topology in real network namespaces (root):
//! with kernel-forwarding directors, the client reaches every real server
//! over IPv4 and IPv6 by HTTP and UDP and gets that server's name back; the
//! wiring matches the forwarding method; dropping the lab removes everything.

mod common;

use std::time::Instant;

use common::{assert_nothing_left, assert_real_servers_answer, namespaces_available, namespaces_of};
use rvs_lab::{
    DirectorMode, HttpServerChoice, HttpServerKind, Lab, Method, RealServerConfig, Segment, TopologySpec, cmd, netns,
};

fn up(spec: &TopologySpec) -> Lab {
    let started = Instant::now();
    let lab = Lab::up(spec).expect("lab comes up");
    eprintln!("{} lab {} up in {:?}", spec.method, lab.run_id(), started.elapsed());
    lab
}

fn down(lab: Lab) {
    let run = lab.run_id().clone();
    let started = Instant::now();
    lab.down().expect("clean teardown");
    eprintln!("lab {run} down in {:?}", started.elapsed());
    assert_nothing_left(&run);
}

/// The real-server host setup of DR/TUN is in place (VIP on lo, ARP
/// sysctls), as `RealServerConfig::check` reads it back from the namespace.
fn assert_real_server_setup(lab: &Lab) {
    let description = lab.description();
    for rs in &description.real_servers {
        let config = RealServerConfig {
            method: description.spec.method,
            vips: description.vip.both().to_vec(),
            uplinks: rs.interfaces.iter().map(|i| i.name.clone()).collect(),
        };
        assert_eq!(config.check(Some(&rs.netns)).unwrap(), Vec::<String>::new(), "{}", rs.name);
    }
}

#[test]
fn dr_lab_serves_every_real_server_and_cleans_up() {
    if !namespaces_available("dr_lab_serves_every_real_server_and_cleans_up") {
        return;
    }
    let lab = up(&TopologySpec::new(Method::Dr));
    let description = lab.description();
    let run = lab.run_id().clone();
    // 1 client + router + switch + 1 director + 3 real servers.
    assert_eq!(namespaces_of(&run).len(), 7);
    assert_eq!(description.real_servers.len(), 3);
    if cmd::tool_available("nginx") {
        assert_eq!(description.http_server, Some(HttpServerKind::Nginx));
    }
    // DR: real servers share the LAN with the director, gateway = router.
    let router_lan = description.router.interface(Segment::Lan).unwrap().addr;
    for rs in &description.real_servers {
        assert_eq!(rs.interfaces[0].segment, Segment::Lan);
        assert_eq!(rs.gateway, Some(router_lan));
    }
    assert_real_servers_answer(&lab);
    assert_real_server_setup(&lab);
    // The client's veth has tx checksum offload off (the veth checksum trap).
    let client = &description.client;
    let features = netns::exec_ok(&client.netns, "ethtool", &["-k", &client.interfaces[0].name]).unwrap();
    assert!(features.contains("tx-checksumming: off"), "{features}");
    // The router forwards; the client does not.
    assert_eq!(netns::read_sysctl(&description.router.netns, "net/ipv4/ip_forward").unwrap(), "1");
    assert_eq!(netns::read_sysctl(&client.netns, "net/ipv4/ip_forward").unwrap(), "0");
    down(lab);
}

#[test]
fn nat_lab_routes_through_the_director_and_cleans_up() {
    if !namespaces_available("nat_lab_routes_through_the_director_and_cleans_up") {
        return;
    }
    let mut spec = TopologySpec::new(Method::Nat);
    spec.directors = 2;
    let lab = up(&spec);
    let description = lab.description();
    assert_eq!(namespaces_of(lab.run_id()).len(), 8);
    let gateway = description.nat_gateway.expect("NAT has a gateway");
    for rs in &description.real_servers {
        assert_eq!(rs.interfaces[0].segment, Segment::Private);
        assert_eq!(rs.gateway, Some(gateway));
    }
    let dir1 = &description.directors[0];
    assert_eq!(netns::read_sysctl(&dir1.netns, "net/ipv4/ip_forward").unwrap(), "1");
    assert_eq!(netns::read_sysctl(&dir1.netns, "net/ipv6/conf/all/forwarding").unwrap(), "1");
    // The real servers are only reachable through dir1, so answers prove the
    // path client -> router -> dir1 -> real server and back.
    assert_real_servers_answer(&lab);
    // No VIP on NAT real servers.
    let lo =
        lab.exec(&description.real_servers[0].netns, "ip", &["-o", "addr", "show", "dev", "lo"], cmd::DEFAULT_TIMEOUT);
    assert!(!lo.unwrap().stdout.contains(&description.vip.v4.to_string()));
    // No kernel NAT: dir1 has no nftables rules at all.
    let rules = netns::exec_ok(&dir1.netns, "nft", &["list", "ruleset"]).unwrap_or_default();
    assert!(!rules.contains("nat"), "{rules}");
    down(lab);
}

#[test]
fn tun_lab_serves_every_real_server_with_rp_filter_off() {
    if !namespaces_available("tun_lab_serves_every_real_server_with_rp_filter_off") {
        return;
    }
    let lab = up(&TopologySpec::new(Method::Tun));
    assert_real_servers_answer(&lab);
    assert_real_server_setup(&lab);
    for rs in &lab.description().real_servers {
        assert_eq!(netns::read_sysctl(&rs.netns, "net/ipv4/conf/all/rp_filter").unwrap(), "0");
    }
    down(lab);
}

#[test]
fn builtin_http_server_and_external_directors() {
    if !namespaces_available("builtin_http_server_and_external_directors") {
        return;
    }
    let mut spec = TopologySpec::new(Method::Dr);
    spec.http_server = HttpServerChoice::Builtin;
    spec.director_mode = DirectorMode::External;
    spec.directors = 2;
    let lab = up(&spec);
    assert_eq!(lab.description().http_server, Some(HttpServerKind::Builtin));
    assert_real_servers_answer(&lab);
    // External mode leaves forwarding to the data plane.
    for director in &lab.description().directors {
        assert_eq!(netns::read_sysctl(&director.netns, "net/ipv4/ip_forward").unwrap(), "0");
    }
    down(lab);
}

#[test]
fn two_labs_in_parallel_do_not_collide() {
    if !namespaces_available("two_labs_in_parallel_do_not_collide") {
        return;
    }
    let (first, second) = std::thread::scope(|scope| {
        let a = scope.spawn(|| Lab::up(&TopologySpec::new(Method::Dr)).expect("first lab"));
        let b = scope.spawn(|| Lab::up(&TopologySpec::new(Method::Nat)).expect("second lab"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(first.run_id(), second.run_id());
    let names_first = namespaces_of(first.run_id());
    let names_second = namespaces_of(second.run_id());
    assert!(names_first.iter().all(|name| !names_second.contains(name)));
    // Same addresses, separate worlds: both answer.
    assert_real_servers_answer(&first);
    assert_real_servers_answer(&second);
    let second_run = second.run_id().clone();
    down(first);
    // Tearing one down leaves the other working.
    assert_eq!(namespaces_of(&second_run), names_second);
    assert_real_servers_answer(&second);
    down(second);
}
