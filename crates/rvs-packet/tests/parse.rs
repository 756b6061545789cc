//! The parse entry point on golden frames (summary fields) and on truncated,
//! malformed, fragmented and option-laden input (the named drop reason).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::frames::*;
use common::*;
use rvs_packet::ip::protocol;
use rvs_packet::{Family, PacketSummary, ParseError, Parsed, TcpFlags, parse_frame, parse_ip};

fn ip_summary(frame: &[u8]) -> PacketSummary {
    match parse_frame(frame) {
        Ok(Parsed::Ip(s)) => s,
        other => panic!("expected IP, got {other:?}"),
    }
}

#[test]
fn tcp_v4_summary() {
    let s = ip_summary(&tcp4_syn());
    assert_eq!((s.l3_offset, s.l4_offset, s.end, s.ip_len()), (14, 34, 58, 44));
    assert_eq!((s.family, s.protocol), (Family::V4, protocol::TCP));
    assert_eq!((s.src, s.dst), (IpAddr::V4(Ipv4Addr::from(CLIENT4)), IpAddr::V4(Ipv4Addr::from(VIP4))));
    assert_eq!((s.src_port, s.dst_port, s.ttl, s.dont_fragment), (40000, 80, 64, true));
    assert!(s.tcp_flags.unwrap().is_syn_only());
    assert!(s.icmp.is_none() && !s.is_icmp_error());
    assert_eq!(s.eth.unwrap().ethertype, 0x0800);
}

#[test]
fn ethernet_padding_is_excluded() {
    let mut f = udp4_dns(true);
    f.resize(60, 0); // minimum Ethernet frame
    let s = ip_summary(&f);
    assert_eq!(s.end, 46);
    assert_eq!((s.src_port, s.dst_port, s.dont_fragment), (5353, 53, false));
}

#[test]
fn v6_summaries_with_vlan_and_extension_header() {
    let s = ip_summary(&tcp6_vlan());
    assert_eq!((s.l3_offset, s.l4_offset, s.family), (18, 58, Family::V6));
    assert_eq!(s.eth.unwrap().vlans[0].unwrap().vid(), 100);
    assert_eq!((s.src_port, s.dst_port), (50000, 443));
    let s = ip_summary(&udp6_hbh());
    assert_eq!((s.l4_offset, s.protocol, s.dst), (62, protocol::UDP, IpAddr::V6(Ipv6Addr::from(VIP6))));
}

#[test]
fn icmp_errors_carry_the_quoted_flow() {
    let s = ip_summary(&icmp4_frag_needed());
    let info = s.icmp.unwrap();
    assert_eq!((info.msg_type, info.code), (3, 4));
    let q = info.quoted.unwrap();
    assert_eq!((q.protocol, q.src_port, q.dst_port, q.ip_offset, q.l4_offset), (protocol::TCP, 80, 40000, 8, 28));
    let s = ip_summary(&icmp6_too_big());
    let q = s.quoted_flow().unwrap();
    assert_eq!((q.src, q.dst), (IpAddr::V6(Ipv6Addr::from(VIP6)), IpAddr::V6(Ipv6Addr::from(CLIENT6))));
    assert_eq!((q.src_port, q.dst_port), (443, 50000));
}

#[test]
fn echo_is_icmp_but_not_an_error() {
    let mut f = icmp4_frag_needed();
    f[34] = 8; // echo request
    fill_l4_v4(&mut f, 14, 34, 70, false);
    let s = ip_summary(&f);
    assert_eq!(s.icmp.unwrap().msg_type, 8);
    assert!(!s.is_icmp_error());
}

#[test]
fn arp_frames() {
    match parse_frame(&arp_request()).unwrap() {
        Parsed::Arp { arp, .. } => assert_eq!(arp.target_ip, Ipv4Addr::from(VIP4)),
        other => panic!("{other:?}"),
    }
    let mut f = arp_request();
    f[15] = 2; // hardware type 2
    assert_eq!(parse_frame(&f), Err(ParseError::UnsupportedArp));
}

#[test]
fn every_truncation_is_reported_not_a_panic() {
    for frame in [tcp4_syn(), tcp6_vlan(), udp6_hbh(), icmp4_frag_needed(), icmp6_too_big(), arp_request()] {
        for len in 0..frame.len() {
            assert!(parse_frame(&frame[..len]).is_err(), "a {len}-byte prefix must not parse");
        }
    }
}

#[test]
fn ipv4_options_are_skipped() {
    // IHL 6 with a router-alert option (94 04 00 00) before the TCP header.
    let mut f = tcp4_syn();
    f[14] = 0x46;
    f[17] = 48; // total length 48
    f.splice(34..34, [0x94, 0x04, 0x00, 0x00]);
    fill_ipv4_header(&mut f, 14);
    let s = ip_summary(&f);
    assert_eq!((s.l4_offset, s.end, s.dst_port), (38, 62, 80));
}

#[test]
fn malformed_headers_name_their_reason() {
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Mutation, ParseError)> = vec![
        (Box::new(|f| f[14] = 0x55), ParseError::BadVersion),
        (Box::new(|f| f[14] = 0x44), ParseError::BadHeaderLength),
        (Box::new(|f| f[17] = 19), ParseError::BadTotalLength),
        (Box::new(|f| f[17] = 200), ParseError::Truncated),
        (Box::new(|f| f[24] ^= 1), ParseError::BadIpv4Checksum),
        (Box::new(|f| f[12] = 0x88), ParseError::UnsupportedEtherType),
        (Box::new(|f| f[46] = 0x40), ParseError::BadHeaderLength), // TCP data offset 4
        (Box::new(|f| f[46] = 0xf0), ParseError::Truncated),       // TCP data offset 15 > segment
    ];
    for (mutate, want) in cases {
        let mut f = tcp4_syn();
        mutate(&mut f);
        if want != ParseError::BadIpv4Checksum && want != ParseError::UnsupportedEtherType {
            fill_ipv4_header(&mut f, 14);
        }
        assert_eq!(parse_frame(&f).unwrap_err(), want);
    }
    let mut f = udp4_dns(true);
    f[39] = 40; // UDP length beyond the datagram
    assert_eq!(parse_frame(&f), Err(ParseError::BadUdpLength));
    assert_eq!(ParseError::BadUdpLength.reason(), "bad_udp_length");
}

#[test]
fn fragments_are_reported() {
    for (flags_hi, flags_lo) in [(0x20, 0x00), (0x00, 0x10), (0x20, 0x01)] {
        let mut f = tcp4_syn();
        f[20] = flags_hi; // MF
        f[21] = flags_lo; // offset
        fill_ipv4_header(&mut f, 14);
        assert_eq!(parse_frame(&f), Err(ParseError::Fragment));
    }
    // IPv6 first fragment: fragment header (M set) before UDP.
    let mut f = udp6_hbh();
    f[54] = 44; // HBH next header: fragment
    f[19] = 19 + 8; // payload length grows by the fragment header
    f.splice(62..62, [17, 0, 0x00, 0x01, 0, 0, 0, 5]);
    assert_eq!(parse_frame(&f), Err(ParseError::Fragment));
    // The same as an atomic fragment (M clear, offset 0) is a whole packet.
    f[65] = 0;
    assert_eq!(ip_summary(&f).l4_offset, 70);
}

#[test]
fn too_many_vlan_tags_and_extension_headers() {
    let mut f = tcp6_vlan();
    f.splice(12..12, [0x88, 0xa8, 0x00, 0x01, 0x81, 0x00, 0x00, 0x02]);
    assert_eq!(parse_frame(&f), Err(ParseError::TooManyVlanTags));

    let mut f = udp6_hbh();
    f[20] = 60; // next header: destination options
    let mut chain = Vec::new();
    for _ in 0..9 {
        chain.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    f.splice(54..54, chain);
    f[19] += 72;
    assert_eq!(parse_frame(&f), Err(ParseError::TooManyExtHeaders));
}

#[test]
fn bad_icmp_quotes() {
    // The quote cut below 8 bytes of TCP.
    let mut f = icmp4_frag_needed();
    f.truncate(66);
    f[17] = 52;
    fill_ipv4_header(&mut f, 14);
    fill_l4_v4(&mut f, 14, 34, 66, false);
    assert_eq!(parse_frame(&f), Err(ParseError::BadIcmpQuote));
    // A quoted IPv6 packet inside ICMPv4.
    let mut f = icmp4_frag_needed();
    f[42] = 0x60;
    assert_eq!(parse_frame(&f), Err(ParseError::BadIcmpQuote));
    // Quoted non-first fragment: no ports to find the connection.
    let mut f = icmp4_frag_needed();
    f[49] = 0x10;
    assert_eq!(parse_frame(&f), Err(ParseError::BadIcmpQuote));
}

#[test]
fn parse_ip_without_ethernet() {
    let f = tcp4_syn();
    let s = parse_ip(&f[14..], 0).unwrap();
    assert_eq!((s.l3_offset, s.l4_offset, s.end, s.eth), (0, 20, 44, None));
    assert_eq!(parse_ip(&f, 0), Err(ParseError::BadVersion));
    assert_eq!(parse_ip(&f, 100), Err(ParseError::Truncated));
    assert!(TcpFlags::SYN.union(TcpFlags::ACK).contains(TcpFlags::ACK));
}
