//! Golden-frame tests of every in-place rewrite: the crate's incremental result
//! must equal the hand-written expected frame whose checksums are recomputed in
//! full by the test's own plain checksum.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::frames::*;
use common::*;
use rvs_packet::rewrite::{self, *};
use rvs_packet::{MacAddr, PacketSummary, Parsed, RewriteError, parse_frame};

fn summary(frame: &[u8]) -> PacketSummary {
    match parse_frame(frame).expect("golden frame parses") {
        Parsed::Ip(s) => s,
        Parsed::Arp { .. } => panic!("not IP"),
    }
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

#[test]
fn dr_sets_macs_only() {
    let mut frame = tcp4_syn();
    let s = summary(&frame);
    set_dst_mac(&mut frame, MacAddr(MAC_RS));
    set_src_mac(&mut frame, MacAddr(MAC_DIRECTOR));
    let mut want = tcp4_syn();
    want[0..6].copy_from_slice(&MAC_RS); // dst: real server
    want[6..12].copy_from_slice(&MAC_DIRECTOR); // src: director
    assert_frame_eq(&frame, &want);
    assert_eq!(s.dst, v4(VIP4), "DR leaves the IP header alone");
}

#[test]
fn nat_dnat_tcp_v4_with_ttl_decrement() {
    let mut frame = tcp4_syn();
    let s = summary(&frame);
    dnat(&mut frame, &s, v4(RIP4), 8080).unwrap();
    assert_eq!(decrement_ttl(&mut frame, &s), Ok(63));
    let mut want = tcp4_syn();
    want[22] = 63; // TTL
    want[30..34].copy_from_slice(&RIP4); // dst: real server
    want[36..38].copy_from_slice(&8080u16.to_be_bytes()); // dport
    fill_ipv4_header(&mut want, 14);
    fill_l4_v4(&mut want, 14, 34, 58, false);
    assert_frame_eq(&frame, &want);
    assert!(verify_ipv4_header(&frame, 14) && verify_l4_v4(&frame, 14, 34, 58));
}

#[test]
fn nat_snat_tcp_v4_odd_payload() {
    let mut frame = tcp4_reply();
    let s = summary(&frame);
    snat(&mut frame, &s, v4(VIP4), 80).unwrap();
    let mut want = tcp4_reply();
    want[26..30].copy_from_slice(&VIP4); // src: VIP
    want[34..36].copy_from_slice(&80u16.to_be_bytes()); // sport
    fill_ipv4_header(&mut want, 14);
    fill_l4_v4(&mut want, 14, 34, 59, false);
    assert_frame_eq(&frame, &want);
}

#[test]
fn nat_dnat_udp_v4_and_zero_checksum_stays_zero() {
    for with_checksum in [true, false] {
        let mut frame = udp4_dns(with_checksum);
        let s = summary(&frame);
        dnat(&mut frame, &s, v4(RIP4), 5300).unwrap();
        let mut want = udp4_dns(with_checksum);
        want[30..34].copy_from_slice(&RIP4);
        want[36..38].copy_from_slice(&5300u16.to_be_bytes());
        fill_ipv4_header(&mut want, 14);
        fill_l4_v4(&mut want, 14, 34, 46, true);
        assert_frame_eq(&frame, &want);
        if !with_checksum {
            assert_eq!(&frame[40..42], &[0, 0], "UDP/IPv4 'no checksum' must stay 0");
        }
    }
}

#[test]
fn nat_tcp_v6_behind_vlan_tag() {
    let mut frame = tcp6_vlan();
    let s = summary(&frame);
    assert_eq!((s.l3_offset, s.l4_offset), (18, 58));
    dnat(&mut frame, &s, v6(RIP6), 8443).unwrap();
    assert_eq!(decrement_ttl(&mut frame, &s), Ok(63));
    let mut want = tcp6_vlan();
    want[25] = 63; // hop limit
    want[42..58].copy_from_slice(&RIP6); // dst
    want[60..62].copy_from_slice(&8443u16.to_be_bytes()); // dport
    fill_l4_v6(&mut want, 18, 58, 78, 6);
    assert_frame_eq(&frame, &want);

    // and back: SNAT of the reply direction on the same bytes.
    let s = summary(&frame);
    snat(&mut frame, &s, v6(ROUTER6), 1).unwrap();
    want[26..42].copy_from_slice(&ROUTER6);
    want[58..60].copy_from_slice(&1u16.to_be_bytes());
    fill_l4_v6(&mut want, 18, 58, 78, 6);
    assert_frame_eq(&frame, &want);
}

#[test]
fn nat_udp_v6_after_hop_by_hop_header() {
    let mut frame = udp6_hbh();
    let s = summary(&frame);
    assert_eq!(s.l4_offset, 62);
    dnat(&mut frame, &s, v6(RIP6), 5353).unwrap();
    let mut want = udp6_hbh();
    want[38..54].copy_from_slice(&RIP6);
    want[64..66].copy_from_slice(&5353u16.to_be_bytes());
    fill_l4_v6(&mut want, 14, 62, 73, 17);
    assert_frame_eq(&frame, &want);
}

#[test]
fn icmp_error_in_towards_real_server_v4() {
    // Like IPVS on the way in: outer dst VIP -> RIP, quoted src VIP:80 -> RIP:8080.
    let mut frame = icmp4_frag_needed();
    let s = summary(&frame);
    let q = s.quoted_flow().copied().expect("quotes a flow");
    assert_eq!((q.src, q.src_port, q.dst, q.dst_port), (v4(VIP4), 80, v4(CLIENT4), 40000));
    dnat_icmp_error(&mut frame, &s, v4(RIP4), 8080).unwrap();
    let mut want = icmp4_frag_needed();
    want[30..34].copy_from_slice(&RIP4); // outer dst
    want[54..58].copy_from_slice(&RIP4); // quoted src
    want[62..64].copy_from_slice(&8080u16.to_be_bytes()); // quoted sport
    fill_ipv4_header(&mut want, 42); // quoted header checksum
    fill_ipv4_header(&mut want, 14);
    fill_l4_v4(&mut want, 14, 34, 70, false); // ICMP checksum
    assert_frame_eq(&frame, &want);
}

#[test]
fn icmp_error_out_from_real_server_v4_fixes_quoted_udp_checksum() {
    // Like IPVS on the way out: outer src RIP -> VIP, quoted dst RIP:5300 -> VIP:53.
    let mut frame = icmp4_port_unreachable();
    let s = summary(&frame);
    snat_icmp_error(&mut frame, &s, v4(VIP4), 53).unwrap();

    // The quoted UDP checksum must be that of the whole original datagram as if it
    // had been sent to VIP:53: translate the full datagram and recompute.
    let mut original = udp4_to_rs();
    original[16..20].copy_from_slice(&VIP4);
    original[22..24].copy_from_slice(&53u16.to_be_bytes());
    fill_ipv4_header(&mut original, 0);
    fill_l4_v4(&mut original, 0, 20, 32, false);

    let mut want = icmp4_port_unreachable();
    want[26..30].copy_from_slice(&VIP4); // outer src
    want[42..70].copy_from_slice(&original[..28]); // the translated quote
    fill_ipv4_header(&mut want, 14);
    fill_l4_v4(&mut want, 14, 34, 70, false);
    assert_frame_eq(&frame, &want);
}

#[test]
fn icmpv6_packet_too_big_in_towards_real_server() {
    let mut frame = icmp6_too_big();
    let s = summary(&frame);
    dnat_icmp_error(&mut frame, &s, v6(RIP6), 8443).unwrap();
    let mut quoted = tcp6_from_vip();
    quoted[8..24].copy_from_slice(&RIP6); // quoted src
    quoted[40..42].copy_from_slice(&8443u16.to_be_bytes()); // quoted sport
    fill_l4_v6(&mut quoted, 0, 40, 60, 6); // quoted TCP checksum, fully quoted
    let mut want = icmp6_too_big();
    want[38..54].copy_from_slice(&RIP6); // outer dst (in the ICMPv6 pseudo-header)
    want[62..122].copy_from_slice(&quoted);
    fill_l4_v6(&mut want, 14, 54, 122, 58);
    assert_frame_eq(&frame, &want);
}

#[test]
fn refused_rewrites_leave_frame_alone() {
    let mut frame = tcp4_syn();
    let s = summary(&frame);
    assert_eq!(dnat(&mut frame, &s, v6(RIP6), 1), Err(RewriteError::FamilyMismatch));
    assert_eq!(dnat_icmp_error(&mut frame, &s, v4(RIP4), 1), Err(RewriteError::NotIcmpError));
    let mut icmp = icmp4_frag_needed();
    let si = summary(&icmp);
    assert_eq!(rewrite::dnat(&mut icmp, &si, v4(RIP4), 1), Err(RewriteError::UnsupportedProtocol));
    assert_eq!(dnat(&mut frame[..40], &s, v4(RIP4), 1), Err(RewriteError::SummaryMismatch));
    assert_eq!(frame, tcp4_syn());
    assert_eq!(icmp, icmp4_frag_needed());
}

#[test]
fn ttl_one_is_not_forwarded() {
    let mut frame = tcp4_syn();
    frame[22] = 1;
    fill_ipv4_header(&mut frame, 14);
    let s = summary(&frame);
    assert_eq!(decrement_ttl(&mut frame, &s), Err(RewriteError::TtlExceeded));
    let mut frame = tcp6_vlan();
    frame[25] = 0;
    let s = summary(&frame);
    assert_eq!(decrement_ttl(&mut frame, &s), Err(RewriteError::TtlExceeded));
}

#[test]
fn zero_udp_checksum_over_ipv6_stays_zero() {
    // Zero means "not computed" (RFC 6936 tunnels); NAT must not invent a value.
    let mut frame = udp6_hbh();
    frame[68..70].copy_from_slice(&[0, 0]);
    let s = summary(&frame);
    dnat(&mut frame, &s, v6(RIP6), 5353).unwrap();
    let mut want = udp6_hbh();
    want[38..54].copy_from_slice(&RIP6);
    want[64..66].copy_from_slice(&5353u16.to_be_bytes());
    want[68..70].copy_from_slice(&[0, 0]);
    assert_frame_eq(&frame, &want);
}
