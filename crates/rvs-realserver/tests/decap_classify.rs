//! The decapsulator's per-packet decision, without sockets: a tunnelled
//! packet for a VIP yields exactly the inner packet the director wrapped;
//! anything else is dropped with the reason that is counted.

mod common;

use common::{UDP, ip, tunnel, udp, v4, v6};
use rvs_packet::ParseError;
use rvs_realserver::{DropReason, classify};

const DIRECTOR: &str = "198.18.2.11";
const REAL_SERVER: &str = "198.18.2.21";
const CLIENT: &str = "198.18.1.2";
const VIP: &str = "198.18.100.1";
const DIRECTOR6: &str = "fd00:0:0:2::11";
const REAL_SERVER6: &str = "fd00:0:0:2::21";
const CLIENT6: &str = "fd00:0:0:1::2";
const VIP6: &str = "fd00:0:0:100::1";

fn vips() -> Vec<std::net::IpAddr> {
    vec![v4(VIP), v6(VIP6)]
}

/// Inner packet, outer packet, and what classify says about the outer one.
fn run(inner: &[u8], outer_src: &str, outer_dst: &str) -> (Vec<u8>, Result<Vec<u8>, DropReason>) {
    let parse = |text: &str| text.parse().unwrap();
    let mut outer = tunnel(inner, parse(outer_src), parse(outer_dst));
    let len = outer.len();
    let verdict = classify(&mut outer, len, &vips()).map(|range| outer[range].to_vec());
    (inner.to_vec(), verdict)
}

#[test]
fn ipip_for_a_vip_yields_the_inner_packet_unchanged() {
    let inner = ip(v4(CLIENT), v4(VIP), UDP, &udp(v4(CLIENT), v4(VIP), 40000, 53, b"query"));
    let (inner, verdict) = run(&inner, DIRECTOR, REAL_SERVER);
    assert_eq!(verdict, Ok(inner));
}

#[test]
fn ipv6_inner_packets_work_over_both_outer_families() {
    let inner = ip(v6(CLIENT6), v6(VIP6), UDP, &udp(v6(CLIENT6), v6(VIP6), 40000, 53, b"query"));
    let (expected, verdict) = run(&inner, DIRECTOR6, REAL_SERVER6);
    assert_eq!(verdict, Ok(expected.clone()), "6in6");
    let (_, verdict) = run(&inner, DIRECTOR, REAL_SERVER);
    assert_eq!(verdict, Ok(expected), "6in4 (outer protocol 41)");
    let inner4 = ip(v4(CLIENT), v4(VIP), UDP, &udp(v4(CLIENT), v4(VIP), 40000, 53, b"query"));
    let (expected4, verdict) = run(&inner4, DIRECTOR6, REAL_SERVER6);
    assert_eq!(verdict, Ok(expected4), "4in6 (next header 4)");
}

#[test]
fn an_inner_destination_that_is_not_a_vip_is_dropped() {
    // The tunnel must not relay to arbitrary addresses.
    let other = v4("198.18.100.99");
    let inner = ip(v4(CLIENT), other, UDP, &udp(v4(CLIENT), other, 40000, 53, b"query"));
    let (_, verdict) = run(&inner, DIRECTOR, REAL_SERVER);
    assert_eq!(verdict, Err(DropReason::NotVip(other)));
}

#[test]
fn packets_that_are_not_tunnels_are_malformed() {
    // A plain UDP packet (protocol 17) has no inner packet.
    let mut plain = ip(v4(CLIENT), v4(VIP), UDP, &udp(v4(CLIENT), v4(VIP), 40000, 53, b"query"));
    let len = plain.len();
    assert_eq!(classify(&mut plain, len, &vips()), Err(DropReason::Malformed(ParseError::NotTunnel)));
    // Random bytes and truncation never panic and are refused.
    let mut junk = vec![0x45u8, 0, 0, 10, 1, 2, 3];
    assert!(matches!(classify(&mut junk, 7, &vips()), Err(DropReason::Malformed(_))));
    let mut empty: [u8; 0] = [];
    assert!(matches!(classify(&mut empty, 0, &vips()), Err(DropReason::Malformed(_))));
    let inner = ip(v4(CLIENT), v4(VIP), UDP, &udp(v4(CLIENT), v4(VIP), 40000, 53, b"query"));
    let mut outer = tunnel(&inner, v4(DIRECTOR), v4(REAL_SERVER));
    let cut = outer.len() - 3;
    assert!(matches!(classify(&mut outer, cut, &vips()), Err(DropReason::Malformed(_))));
}
