//! Property tests: for random TCP/UDP packets (IPv4 and IPv6, random addresses,
//! ports, TTL, payload) and random NAT targets, the crate's incremental checksum
//! updates give exactly the bytes a full recomputation gives; and the RFC 1624
//! helpers agree with a full recomputation on random buffers.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use proptest::prelude::*;
use rvs_packet::checksum;
use rvs_packet::rewrite::{decrement_ttl, dnat, snat};
use rvs_packet::{Parsed, parse_frame};

/// An Ethernet frame with an IPv4 or IPv6 TCP/UDP packet, checksums filled by
/// the plain full computation. Returns the frame and (l3, l4, end).
fn build(
    v6: bool,
    tcp: bool,
    src: [u8; 16],
    dst: [u8; 16],
    ports: (u16, u16),
    ttl: u8,
    payload: &[u8],
) -> (Vec<u8>, usize, usize) {
    let l4_len = if tcp { 20 } else { 8 } + payload.len();
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    let proto = if tcp { 6 } else { 17 };
    if v6 {
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[proto, ttl]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
    } else {
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, ttl, proto, 0, 0]);
        f.extend_from_slice(&src[..4]);
        f.extend_from_slice(&dst[..4]);
    }
    let l4 = f.len();
    f.extend_from_slice(&ports.0.to_be_bytes());
    f.extend_from_slice(&ports.1.to_be_bytes());
    if tcp {
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0x10, 0x00, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    let end = f.len();
    refill(&mut f, v6, l4, end);
    (f, l4, end)
}

fn refill(f: &mut [u8], v6: bool, l4: usize, end: usize) {
    if v6 {
        let proto = f[20];
        fill_l4_v6(f, 14, l4, end, proto);
    } else {
        fill_ipv4_header(f, 14);
        fill_l4_v4(f, 14, l4, end, false);
    }
}

fn addr(v6: bool, bytes: [u8; 16]) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

proptest! {
    #[test]
    fn nat_incremental_equals_full_recompute(
        v6 in any::<bool>(),
        tcp in any::<bool>(),
        src in any::<[u8; 16]>(),
        dst in any::<[u8; 16]>(),
        ports in any::<(u16, u16)>(),
        ttl in 2u8..=255,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        new_addr in any::<[u8; 16]>(),
        new_port in any::<u16>(),
        source_side in any::<bool>(),
    ) {
        let (mut frame, l4, end) = build(v6, tcp, src, dst, ports, ttl, &payload);
        let Ok(Parsed::Ip(s)) = parse_frame(&frame) else { panic!("built frame must parse") };
        let target = addr(v6, new_addr);
        if source_side {
            snat(&mut frame, &s, target, new_port).unwrap();
        } else {
            dnat(&mut frame, &s, target, new_port).unwrap();
        }
        decrement_ttl(&mut frame, &s).unwrap();

        // Expected: patch the fields, recompute every checksum in full.
        let (mut want, _, _) = build(v6, tcp, src, dst, ports, ttl, &payload);
        let (addr_at, len) = match (v6, source_side) {
            (true, true) => (22, 16),
            (true, false) => (38, 16),
            (false, true) => (26, 4),
            (false, false) => (30, 4),
        };
        want[addr_at..addr_at + len].copy_from_slice(&new_addr[..len]);
        let port_at = l4 + if source_side { 0 } else { 2 };
        want[port_at..port_at + 2].copy_from_slice(&new_port.to_be_bytes());
        want[if v6 { 21 } else { 22 }] = ttl - 1;
        refill(&mut want, v6, l4, end);
        prop_assert_eq!(hex(&frame), hex(&want));
    }

    #[test]
    fn rfc1624_update_equals_full_recompute(
        mut data in proptest::collection::vec(any::<u8>(), 2..128),
        at in any::<prop::sample::Index>(),
        new in any::<[u8; 16]>(),
        width in prop::sample::select(vec![2usize, 4, 16]),
    ) {
        // Keep a non-zero word so the sum is never the all-zero edge case, where
        // 0x0000 and 0xFFFF are the same ones-complement value.
        data[0] = 0x45;
        let words = data.len() / 2;
        prop_assume!(words > width / 2);
        let at = 2 + 2 * at.index(words - width / 2).min(words - 1 - width / 2);
        prop_assume!(at + width <= data.len());
        let before = plain_checksum(&[&data]);
        let old = data[at..at + width].to_vec();
        data[at..at + width].copy_from_slice(&new[..width]);
        let full = plain_checksum(&[&data]);
        let incremental = match width {
            2 => checksum::update_u16(before, u16::from_be_bytes([old[0], old[1]]), u16::from_be_bytes([new[0], new[1]])),
            4 => checksum::update_u32(
                before,
                u32::from_be_bytes([old[0], old[1], old[2], old[3]]),
                u32::from_be_bytes([new[0], new[1], new[2], new[3]]),
            ),
            _ => checksum::update_ipv6_addr(before, &old.clone().try_into().unwrap(), &new),
        };
        prop_assert_eq!(incremental, full);
        prop_assert_eq!(checksum::checksum(&data), full);
    }
}
