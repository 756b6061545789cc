//! Direct routing through the pipeline: only the MACs change, the egress is the real
//! server's interface; scheduling and persistence decide which real server; everything that
//! is not virtual-service traffic is left to the kernel.

mod pipeline_support;

use std::net::IpAddr;

use pipeline_support::*;
use rvs_core::service::Protocol;
use rvs_core::{ForwardMethod, SchedulerKind};

fn dr_lab(n: u8, sched: SchedulerKind, persistent: bool) -> Lab {
    let lab = Lab::new(config());
    let key = lab.service(Protocol::Tcp, VIP4.into(), 80, sched, persistent);
    for i in 1..=n {
        lab.dest(&key, rs4(i).into(), 80, ForwardMethod::DirectRoute);
    }
    lab
}

#[test]
fn dr_v4_changes_only_the_macs() {
    let mut lab = dr_lab(1, SchedulerKind::Rr, false);
    let syn = from_router(&tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", IpOpts::default()));
    let (ifindex, out) = lab.one(syn.clone());
    assert_eq!(ifindex, IF_SERVERS);
    assert_eq!(out, with_macs(&syn, mac_rs(1), MAC_DIRECTOR_OUT), "IP packet untouched, TTL kept");
    // The next packet of the flow goes the same way.
    let ack = from_router(&tcp(sa(CLIENT4, 40000), sa(VIP4, 80), ACK, b"GET /", IpOpts::default()));
    let (_, out) = lab.one(ack.clone());
    assert_eq!(out, with_macs(&ack, mac_rs(1), MAC_DIRECTOR_OUT));
    assert_eq!(lab.pipeline.counters().forwarded.direct_route, 2);
    lab.assert_accounted();
}

#[test]
fn dr_v6_changes_only_the_macs() {
    let mut lab = Lab::new(config());
    let key = lab.service(Protocol::Tcp, VIP6.into(), 443, SchedulerKind::Wlc, false);
    lab.dest(&key, rs6(2).into(), 443, ForwardMethod::DirectRoute);
    let syn = from_router(&tcp(sa(CLIENT6, 50000), sa(VIP6, 443), SYN, b"", IpOpts::default()));
    let (ifindex, out) = lab.one(syn.clone());
    assert_eq!(ifindex, IF_SERVERS);
    assert_eq!(out, with_macs(&syn, mac_rs(2), MAC_DIRECTOR_OUT));
}

#[test]
fn dr_strips_ethernet_padding_and_vlan_tags() {
    let mut lab = dr_lab(1, SchedulerKind::Rr, false);
    let ip = tcp(sa(CLIENT4, 40001), sa(VIP4, 80), SYN, b"", IpOpts::default());
    // 802.1Q tag, VID 10, and 6 bytes of padding (a 54-byte frame padded to 60).
    let mut tagged = MAC_DIRECTOR_IN.to_vec();
    tagged.extend(MAC_ROUTER);
    tagged.extend([0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
    tagged.extend(&ip);
    tagged.extend([0u8; 6]);
    let (_, out) = lab.one(tagged);
    assert_eq!(out, eth(mac_rs(1), MAC_DIRECTOR_OUT, &ip));
}

/// Kernel rr: each new connection goes to the next server in list order, wrapping.
#[test]
fn round_robin_spreads_connections_and_flows_stick() {
    let mut lab = dr_lab(3, SchedulerKind::Rr, false);
    let syns: Vec<Vec<u8>> =
        (0..6).map(|i| from_router(&tcp(sa(CLIENT4, 1000 + i), sa(VIP4, 80), SYN, b"", IpOpts::default()))).collect();
    let out = lab.run(&syns);
    let chosen: Vec<[u8; 6]> = out.iter().map(|(_, f)| f[..6].try_into().unwrap()).collect();
    assert_eq!(chosen.len(), 6);
    let mut first_three = chosen[..3].to_vec();
    first_three.sort();
    assert_eq!(first_three, vec![mac_rs(1), mac_rs(2), mac_rs(3)], "three connections, three servers");
    assert_eq!(chosen[3..], chosen[..3], "the cycle repeats");
    // Every later packet of connection i goes to the server its SYN went to.
    for i in 0..6u16 {
        let ack = from_router(&tcp(sa(CLIENT4, 1000 + i), sa(VIP4, 80), ACK, b"x", IpOpts::default()));
        let (_, f) = lab.one(ack);
        assert_eq!(f[..6], chosen[usize::from(i)], "connection {i} sticks");
    }
}

/// Persistence: a template per client sends all its connections to one server; another
/// client is scheduled anew (rr moves on).
#[test]
fn persistence_keeps_a_client_on_one_server() {
    let mut lab = dr_lab(3, SchedulerKind::Rr, true);
    let syns: Vec<Vec<u8>> =
        (0..5).map(|i| from_router(&tcp(sa(CLIENT4, 2000 + i), sa(VIP4, 80), SYN, b"", IpOpts::default()))).collect();
    let out = lab.run(&syns);
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|(_, f)| f[..6] == out[0].1[..6]), "one client, one server");
    let (_, other) = lab.one(from_router(&tcp(sa(CLIENT4_B, 2000), sa(VIP4, 80), SYN, b"", IpOpts::default())));
    assert_ne!(other[..6], out[0].1[..6], "rr gives the next client the next server");
}

#[test]
fn non_service_traffic_is_left_to_the_kernel() {
    let mut config = config();
    config.own_addrs = vec![IpAddr::V4(DIRECTOR4)];
    let mut lab = Lab::new(config);
    let key = lab.service(Protocol::Tcp, VIP4.into(), 80, SchedulerKind::Rr, false);
    lab.dest(&key, rs4(1).into(), 80, ForwardMethod::DirectRoute);
    // A service on the director's own address is still not taken.
    let own = lab.service(Protocol::Tcp, DIRECTOR4.into(), 22, SchedulerKind::Rr, false);
    lab.dest(&own, rs4(1).into(), 22, ForwardMethod::DirectRoute);

    let arp = {
        let mut f = vec![0xff; 6];
        f.extend(MAC_ROUTER);
        f.extend([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend(MAC_ROUTER);
        f.extend(ROUTER4.octets());
        f.extend([0; 6]);
        f.extend(VIP4.octets());
        f
    };
    let frames = vec![
        arp,
        // Another address, another port of the VIP, a non-SYN without connection.
        from_router(&tcp(sa(CLIENT4, 3000), sa(OTHER4, 80), SYN, b"", IpOpts::default())),
        from_router(&tcp(sa(CLIENT4, 3000), sa(VIP4, 81), SYN, b"", IpOpts::default())),
        from_router(&tcp(sa(CLIENT4, 3000), sa(VIP4, 80), ACK, b"", IpOpts::default())),
        from_router(&tcp(sa(CLIENT4, 3000), sa(DIRECTOR4, 22), SYN, b"", IpOpts::default())),
        // ICMP echo to the VIP.
        from_router(&ip_packet(CLIENT4.into(), VIP4.into(), 1, IpOpts::default(), &[8, 0, 0xf7, 0xff, 0, 0, 0, 0])),
    ];
    assert!(lab.run(&frames).is_empty());
    let c = lab.pipeline.counters();
    assert_eq!(c.passed.arp, 1);
    assert_eq!(c.passed.not_ours, 3);
    assert_eq!(c.passed.no_connection, 1);
    assert_eq!(c.passed.own_address, 1);
    assert_eq!(c.passed.total(), 6);
    lab.assert_accounted();
}

#[test]
fn local_method_is_passed_and_missing_next_hop_dropped() {
    let mut lab = Lab::new(config());
    let key = lab.service(Protocol::Tcp, VIP4.into(), 80, SchedulerKind::Rr, false);
    lab.dest(&key, DIRECTOR4.into(), 80, ForwardMethod::Local);
    let udp_key = lab.service(Protocol::Udp, VIP4.into(), 53, SchedulerKind::Rr, false);
    // 198.19.9.9 has no next hop once the defaults are gone.
    lab.dest(&udp_key, "198.19.9.9".parse().unwrap(), 53, ForwardMethod::DirectRoute);
    lab.nexthops.default_v4 = None;
    let frames = vec![
        from_router(&tcp(sa(CLIENT4, 4000), sa(VIP4, 80), SYN, b"", IpOpts::default())),
        from_router(&udp(sa(CLIENT4, 4000), sa(VIP4, 53), b"query", IpOpts::default())),
    ];
    assert!(lab.run(&frames).is_empty());
    assert_eq!(lab.pipeline.counters().passed.local, 1);
    assert_eq!(lab.pipeline.counters().drops.no_next_hop, 1);
}

#[test]
fn a_full_tx_batch_drops_and_counts() {
    let mut lab = dr_lab(1, SchedulerKind::Rr, false);
    lab.tx = rvs_dataplane::io::Batch::new(1);
    let syns: Vec<Vec<u8>> =
        (0..3).map(|i| from_router(&tcp(sa(CLIENT4, 5000 + i), sa(VIP4, 80), SYN, b"", IpOpts::default()))).collect();
    assert_eq!(lab.run(&syns).len(), 1);
    assert_eq!(lab.pipeline.counters().drops.tx_full, 2);
    lab.assert_accounted();
}
