//! Checks of the layout itself. The expected paths follow from the design in
//! the module doc (DR/TUN: real servers on the LAN behind the router; NAT:
//! real servers behind dir1), checked by a small longest-prefix-match router
//! simulation over the planned addresses, routes, neighbours and sysctls.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::*;

fn run() -> RunId {
    RunId::parse("rvsabc123").unwrap()
}

fn plan_for(method: Method, directors: u8, mode: DirectorMode) -> Plan {
    let mut spec = TopologySpec::new(method);
    spec.directors = directors;
    spec.director_mode = mode;
    build(&spec, &run(), PathBuf::from("/tmp/x")).unwrap()
}

fn all_plans() -> Vec<Plan> {
    let mut plans = Vec::new();
    for method in [Method::Dr, Method::Nat, Method::Tun] {
        for directors in [1, 2] {
            plans.push(plan_for(method, directors, DirectorMode::KernelForward));
        }
    }
    plans
}

fn in_test_ranges(addr: IpAddr) -> bool {
    match addr {
        // 198.18.0.0/15
        IpAddr::V4(a) => a.octets()[0] == 198 && (a.octets()[1] & 0xfe) == 18,
        // fd00::/8
        IpAddr::V6(a) => a.octets()[0] == 0xfd,
    }
}

fn contains(net: IpAddr, prefix: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The namespace that owns `addr` as a local address (interface address,
/// floating address, or VIP on a real server's lo).
fn owner_of(plan: &Plan, addr: IpAddr) -> Vec<String> {
    let mut owners: Vec<String> = plan.addrs.iter().filter(|a| a.addr == addr).map(|a| a.netns.clone()).collect();
    for (netns, config) in &plan.real_servers {
        if config.vips.contains(&addr) {
            owners.push(netns.clone());
        }
    }
    owners
}

fn segment_of(plan: &Plan, netns: &str, dev: &str) -> Option<Segment> {
    plan.description
        .nodes()
        .filter(|node| node.netns == netns)
        .flat_map(|node| &node.interfaces)
        .find(|interface| interface.name == dev)
        .map(|interface| interface.segment)
}

fn forwards(plan: &Plan, netns: &str, addr: IpAddr) -> bool {
    let key = if addr.is_ipv4() { "net/ipv4/ip_forward" } else { "net/ipv6/conf/all/forwarding" };
    plan.sysctls
        .iter()
        .filter(|(ns, _)| ns == netns)
        .flat_map(|(_, settings)| settings)
        .any(|(k, v)| k == key && v == "1")
}

/// Follows the planned routing from `start` towards `dest`; returns the
/// namespaces visited (start first, owner last), or why it stopped.
fn route(plan: &Plan, start: &str, dest: IpAddr) -> Result<Vec<String>, String> {
    let mut path = vec![start.to_owned()];
    let mut here = start.to_owned();
    for _ in 0..8 {
        if owner_of(plan, dest).contains(&here) {
            return Ok(path);
        }
        if here != start && !forwards(plan, &here, dest) {
            return Err(format!("{here} does not forward {dest}: {path:?}"));
        }
        here = next_node(plan, &here, dest)?;
        path.push(here.clone());
    }
    Err(format!("routing loop: {path:?}"))
}

/// The namespace that `here` hands a packet for `dest` to: connected subnets
/// first, then the longest matching route; the next hop must be resolvable
/// (a permanent neighbour entry, or the floating NAT gateway via ARP/ND).
fn next_node(plan: &Plan, here: &str, dest: IpAddr) -> Result<String, String> {
    let connected = plan
        .addrs
        .iter()
        .filter(|a| a.netns == here && contains(a.addr, a.prefix, dest))
        .max_by_key(|a| a.prefix)
        .map(|a| (a.dev.clone(), dest));
    let (dev, next_hop) = match connected {
        Some(hop) => hop,
        None => {
            let best = plan
                .routes
                .iter()
                .filter(|r| r.netns == here && r.dest.is_none_or(|(net, prefix)| contains(net, prefix, dest)))
                .filter(|r| r.via.is_ipv4() == dest.is_ipv4())
                .max_by_key(|r| r.dest.map_or(0, |(_, prefix)| prefix))
                .ok_or_else(|| format!("{here} has no route to {dest}"))?;
            let dev = plan
                .addrs
                .iter()
                .find(|a| a.netns == here && contains(a.addr, a.prefix, best.via))
                .ok_or_else(|| format!("{here}: next hop {} not on a connected subnet", best.via))?
                .dev
                .clone();
            (dev, best.via)
        }
    };
    let segment = segment_of(plan, here, &dev).ok_or_else(|| format!("{here}: unknown device {dev}"))?;
    let floating = plan.description.nat_gateway.is_some_and(|g| g.both().contains(&next_hop));
    let static_entry = plan.neighbours.iter().any(|n| n.netns == here && n.dev == dev && n.addr == next_hop);
    if !floating && !static_entry {
        return Err(format!("{here}: no neighbour entry for {next_hop} on {dev}"));
    }
    plan.addrs
        .iter()
        .find(|a| a.addr == next_hop && a.netns != here && segment_of(plan, &a.netns, &a.dev) == Some(segment))
        .map(|a| a.netns.clone())
        .ok_or_else(|| format!("{here}: nobody holds {next_hop} on {segment:?}"))
}

#[test]
fn every_address_is_in_the_test_ranges() {
    for plan in all_plans() {
        for a in &plan.addrs {
            assert!(in_test_ranges(a.addr), "{a:?}");
        }
        for r in &plan.routes {
            assert!(in_test_ranges(r.via), "{r:?}");
            if let Some((net, _)) = r.dest {
                assert!(in_test_ranges(net), "{r:?}");
            }
        }
        for addr in plan.description.vip.both() {
            assert!(in_test_ranges(addr));
        }
    }
}

#[test]
fn names_carry_the_run_id_and_fit_ifnamsiz() {
    for plan in all_plans() {
        let lab = &plan.description;
        for netns in lab.namespaces() {
            assert_eq!(RunId::of_netns(&netns), Some(run()), "{netns}");
        }
        let mut names = HashSet::new();
        let ends = plan.veths.iter().flat_map(|v| [&v.a, &v.b]);
        for end in ends {
            assert!(end.name.len() <= 15, "{}", end.name);
            assert!(end.name.starts_with("rvsabc123-"), "{}", end.name);
            // Names are unique across the whole lab, not only per namespace.
            assert!(names.insert(end.name.clone()), "duplicate {}", end.name);
        }
        for (bridge, _) in &plan.bridges {
            assert!(bridge.len() <= 15 && names.insert(bridge.clone()), "{bridge}");
        }
    }
}

#[test]
fn macs_are_unique_and_locally_administered() {
    for plan in all_plans() {
        let mut seen = HashSet::new();
        let macs = plan.veths.iter().flat_map(|v| [v.a.mac, v.b.mac]).chain(plan.bridges.iter().map(|(_, m)| *m));
        for mac in macs {
            // Bit 1 of the first octet: locally administered; bit 0: unicast.
            assert_eq!(mac.0[0] & 0x03, 0x02, "{mac}");
            assert!(seen.insert(mac), "duplicate {mac}");
        }
    }
}

#[test]
fn description_matches_the_veths() {
    for plan in all_plans() {
        let by_name: HashMap<&str, &VethEnd> =
            plan.veths.iter().flat_map(|v| [(v.a.name.as_str(), &v.a), (v.b.name.as_str(), &v.b)]).collect();
        for node in plan.description.nodes() {
            for interface in &node.interfaces {
                let end = by_name.get(interface.name.as_str()).unwrap();
                assert_eq!(end.netns, node.netns);
                assert_eq!(end.mac, interface.mac);
                assert!(by_name.contains_key(interface.peer.as_str()));
            }
        }
    }
}

#[test]
fn neighbour_entries_carry_the_mac_of_the_address_owner() {
    for plan in all_plans() {
        let owners: HashMap<IpAddr, MacAddr> = plan
            .description
            .nodes()
            .flat_map(|node| &node.interfaces)
            .flat_map(|interface| interface.addr.both().map(|addr| (addr, interface.mac)))
            .collect();
        assert!(!plan.neighbours.is_empty());
        for entry in &plan.neighbours {
            assert_eq!(owners.get(&entry.addr), Some(&entry.mac), "{entry:?}");
        }
    }
}

#[test]
fn client_reaches_every_real_server_and_back() {
    for plan in all_plans() {
        let lab = &plan.description;
        let method = lab.spec.method;
        for rs in &lab.real_servers {
            let rip = rs.addr().unwrap();
            let client = lab.client.addr().unwrap();
            for (to_rs, to_client) in [(rip.v4.into(), client.v4.into()), (rip.v6.into(), client.v6.into())] {
                let forward = route(&plan, &lab.client.netns, to_rs).unwrap();
                let back = route(&plan, &rs.netns, to_client).unwrap();
                // DR/TUN: client -> router -> rs; NAT: client -> router -> dir1 -> rs.
                let mut expected = vec![lab.client.netns.clone(), lab.router.netns.clone()];
                if method == Method::Nat {
                    expected.push(lab.directors[0].netns.clone());
                }
                expected.push(rs.netns.clone());
                assert_eq!(forward, expected, "{method} to {to_rs}");
                expected.reverse();
                assert_eq!(back, expected, "{method} from {}", rs.name);
            }
        }
    }
}

#[test]
fn the_router_sends_the_vip_to_dir1() {
    for plan in all_plans() {
        let lab = &plan.description;
        assert_eq!(Some(lab.vip_next_hop), lab.directors[0].addr());
        for vip in lab.vip.both() {
            assert_eq!(next_node(&plan, &lab.client.netns, vip), Ok(lab.router.netns.clone()));
            assert_eq!(next_node(&plan, &lab.router.netns, vip), Ok(lab.directors[0].netns.clone()));
        }
    }
}

#[test]
fn real_servers_are_set_up_for_their_method() {
    for plan in all_plans() {
        let lab = &plan.description;
        assert_eq!(plan.real_servers.len(), lab.real_servers.len());
        for ((netns, config), node) in plan.real_servers.iter().zip(&lab.real_servers) {
            assert_eq!(netns, &node.netns);
            match lab.spec.method {
                Method::Dr | Method::Tun => {
                    assert_eq!(config.vips, lab.vip.both().to_vec());
                    assert_eq!(node.gateway, lab.router.interface(Segment::Lan).map(|i| i.addr));
                    assert_eq!(node.interfaces[0].segment, Segment::Lan);
                }
                Method::Nat => {
                    assert!(config.vips.is_empty());
                    assert_eq!(node.gateway, lab.nat_gateway);
                    assert_eq!(node.interfaces[0].segment, Segment::Private);
                    // The gateway starts on dir1.
                    for addr in lab.nat_gateway.unwrap().both() {
                        assert_eq!(owner_of(&plan, addr), vec![lab.directors[0].netns.clone()]);
                    }
                }
            }
        }
    }
}

#[test]
fn external_mode_directors_do_not_forward() {
    let plan = plan_for(Method::Nat, 1, DirectorMode::External);
    let lab = &plan.description;
    let rip = lab.real_servers[0].addr().unwrap();
    let err = route(&plan, &lab.client.netns, rip.v4.into()).unwrap_err();
    assert!(err.contains("does not forward"), "{err}");
}

#[test]
fn checksum_offload_is_off_on_traffic_endpoints() {
    let plan = plan_for(Method::Dr, 1, DirectorMode::KernelForward);
    let lab = &plan.description;
    let expected: Vec<(String, String)> = [&lab.client]
        .into_iter()
        .chain(&lab.real_servers)
        .map(|node| (node.netns.clone(), node.interfaces[0].name.clone()))
        .collect();
    assert_eq!(plan.tx_checksum_off, expected);
}

#[test]
fn ipv6_host_part_repeats_the_ipv4_digits() {
    assert_eq!(v6(2, 11).to_string(), "fd00:0:0:2::11");
    assert_eq!(v6(100, 1).to_string(), "fd00:0:0:100::1");
    assert_eq!(v4(2, 11).to_string(), "198.18.2.11");
}
