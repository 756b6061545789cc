//! Golden-frame tests of tunnel encapsulation (4in4, 6in6, 4in6, 6in4), of the
//! ICMP replies owed when a packet would outgrow the MTU, of decapsulation with
//! RFC 6040 ECN handling, and of the ARP builders. Expected bytes are written out
//! here; checksums come from the test's plain full recomputation.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::frames::*;
use common::*;
use rvs_packet::encap::{self, Decapsulated, Encapsulated, TunnelParams};
use rvs_packet::{BuildError, Family, MacAddr, ParseError, arp};

const DIRECTOR4: [u8; 4] = [198, 18, 1, 1];
const DIRECTOR6: [u8; 16] = [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];

fn params4() -> TunnelParams {
    TunnelParams {
        src: IpAddr::V4(Ipv4Addr::from(DIRECTOR4)),
        dst: IpAddr::V4(Ipv4Addr::from(RIP4)),
        ttl: None,
        ident: 7,
        flow_label: 0,
        mtu: 1500,
    }
}

fn params6() -> TunnelParams {
    TunnelParams {
        src: IpAddr::V6(Ipv6Addr::from(DIRECTOR6)),
        dst: IpAddr::V6(Ipv6Addr::from(RIP6)),
        ttl: Some(32),
        ident: 0,
        flow_label: 0x12345,
        mtu: 1500,
    }
}

/// The IPv4 packet of `tcp4_syn` with TOS 0xbb: DSCP 46 (EF), ECN CE.
fn inner4_ce() -> Vec<u8> {
    let mut p = tcp4_syn()[14..58].to_vec();
    p[1] = 0xbb;
    fill_ipv4_header(&mut p, 0);
    p
}

/// The IPv6 packet of `tcp6_vlan` with traffic class 0xb9: DSCP 46, ECT(1).
fn inner6_ect1() -> Vec<u8> {
    let mut p = tcp6_vlan()[18..78].to_vec();
    p[0] = 0x6b; // version 6, traffic class high nibble 0xb
    p[1] = 0x90; // traffic class low nibble 0x9, flow label 0
    p
}

fn with_headroom(headroom: usize, inner: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; headroom];
    buf.extend_from_slice(inner);
    buf
}

#[test]
fn ipip_4in4() {
    let inner = inner4_ce();
    let mut buf = with_headroom(20, &inner);
    let e = encap::encapsulate(&mut buf, 20, inner.len(), &params4()).unwrap();
    assert_eq!(e, Encapsulated { start: 0, len: 64 });
    let mut want = vec![
        0x45, 0xba, 0x00, 0x40, // TOS: DSCP 46 copied, CE encapsulated as ECT(0); total 64
        0x00, 0x07, 0x40, 0x00, // id 7, DF copied from the inner packet
        0x40, 0x04, 0x00, 0x00, // TTL 64 copied, protocol 4 (IPIP), checksum
        198, 18, 1, 1, // director
        198, 19, 0, 2, // real server
    ];
    fill_ipv4_header(&mut want, 0);
    want.extend_from_slice(&inner);
    assert_frame_eq(&buf, &want);
}

#[test]
fn ip6ip6_6in6() {
    let inner = inner6_ect1();
    let mut buf = with_headroom(48, &inner); // more headroom than needed
    let e = encap::encapsulate(&mut buf, 48, inner.len(), &params6()).unwrap();
    assert_eq!(e, Encapsulated { start: 8, len: 100 });
    let mut want = vec![
        0x6b, 0x91, 0x23, 0x45, // version 6, traffic class 0xb9 copied (ECT(1) kept), flow label 0x12345
        0x00, 0x3c, 0x29, 0x20, // payload 60, next header 41 (IPv6), hop limit 32 as set
    ];
    want.extend_from_slice(&DIRECTOR6);
    want.extend_from_slice(&RIP6);
    want.extend_from_slice(&inner);
    assert_frame_eq(&buf[8..], &want);
}

#[test]
fn cross_family_4in6_and_6in4() {
    // 4in6: outer next header 4, hop limit copied from the inner TTL.
    let inner = tcp4_syn()[14..58].to_vec();
    let mut buf = with_headroom(40, &inner);
    let p = TunnelParams { ttl: None, flow_label: 0, ..params6() };
    let e = encap::encapsulate(&mut buf, 40, inner.len(), &p).unwrap();
    assert_eq!(e, Encapsulated { start: 0, len: 84 });
    let mut want = vec![
        0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0
        0x00, 0x2c, 0x04, 0x40, // payload 44, next header 4 (IPv4), hop limit 64
    ];
    want.extend_from_slice(&DIRECTOR6);
    want.extend_from_slice(&RIP6);
    want.extend_from_slice(&inner);
    assert_frame_eq(&buf, &want);

    // 6in4: outer protocol 41, DF set (the IPv6 packet must not be fragmented).
    let inner = tcp6_vlan()[18..78].to_vec();
    let mut buf = with_headroom(20, &inner);
    let e = encap::encapsulate(&mut buf, 20, inner.len(), &params4()).unwrap();
    assert_eq!(e, Encapsulated { start: 0, len: 80 });
    let mut want = vec![
        0x45, 0x00, 0x00, 0x50, // TOS 0, total 80
        0x00, 0x07, 0x40, 0x00, // id 7, DF
        0x40, 0x29, 0x00, 0x00, // TTL 64 (inner hop limit), protocol 41, checksum
        198, 18, 1, 1, // director
        198, 19, 0, 2, // real server
    ];
    fill_ipv4_header(&mut want, 0);
    want.extend_from_slice(&inner);
    assert_frame_eq(&buf, &want);
}

#[test]
fn encapsulation_drops_ethernet_padding_and_needs_headroom() {
    let mut inner = tcp4_syn()[14..58].to_vec();
    inner.extend_from_slice(&[0; 2]); // padding after the 44-byte packet
    let mut buf = with_headroom(20, &inner);
    let e = encap::encapsulate(&mut buf, 20, inner.len(), &params4()).unwrap();
    assert_eq!(e.len, 64);
    let mut buf = with_headroom(19, &inner);
    assert_eq!(encap::encapsulate(&mut buf, 19, inner.len(), &params4()), Err(BuildError::BufferTooSmall));
    let mixed = TunnelParams { dst: IpAddr::V6(Ipv6Addr::from(RIP6)), ..params4() };
    assert_eq!(encap::encapsulate(&mut buf, 19, inner.len(), &mixed), Err(BuildError::FamilyMismatch));
}

#[test]
fn too_big_v4_with_df_gets_frag_needed() {
    let inner = tcp4_syn()[14..58].to_vec();
    let mut buf = with_headroom(20, &inner);
    let small = TunnelParams { mtu: 60, ..params4() };
    // 20 + 44 = 64 > 60: the client may send at most 60 - 20 = 40 bytes.
    assert_eq!(
        encap::encapsulate(&mut buf, 20, inner.len(), &small),
        Err(BuildError::TooBig { inner_mtu: 40, dont_fragment: true })
    );
    assert_eq!(&buf[20..], &inner[..], "a refused encapsulation leaves the packet alone");

    let mut out = [0u8; 600];
    let n = encap::build_too_big_reply(&mut out, &inner, 40).unwrap();
    let mut want = vec![
        0x45, 0xc0, 0x00, 0x48, // TOS internetwork control, total 20 + 8 + 44 = 72
        0x00, 0x00, 0x40, 0x00, // id 0, DF (atomic datagram)
        0x40, 0x01, 0x00, 0x00, // TTL 64, ICMP, checksum
        198, 18, 1, 100, // from the VIP the client addressed
        198, 18, 0, 10, // to the client
        0x03, 0x04, 0x00, 0x00, // destination unreachable, fragmentation needed, checksum
        0x00, 0x00, 0x00, 0x28, // unused, next-hop MTU 40
    ];
    want.extend_from_slice(&inner); // the whole offending packet fits in 576 bytes
    fill_ipv4_header(&mut want, 0);
    fill_l4_v4(&mut want, 0, 20, 72, false);
    assert_frame_eq(&out[..n], &want);
}

#[test]
fn too_big_v4_without_df_is_not_answered() {
    let inner = udp4_dns(true)[14..46].to_vec();
    let mut buf = with_headroom(20, &inner);
    let small = TunnelParams { mtu: 40, ..params4() };
    assert_eq!(
        encap::encapsulate(&mut buf, 20, inner.len(), &small),
        Err(BuildError::TooBig { inner_mtu: 20, dont_fragment: false })
    );
    let mut out = [0u8; 600];
    assert_eq!(encap::build_too_big_reply(&mut out, &inner, 20), Err(BuildError::NotAllowed));
}

#[test]
fn too_big_v6_gets_packet_too_big_at_least_1280() {
    let inner = tcp6_vlan()[18..78].to_vec();
    let mut buf = with_headroom(40, &inner);
    let small = TunnelParams { mtu: 90, ..params6() };
    assert_eq!(
        encap::encapsulate(&mut buf, 40, inner.len(), &small),
        Err(BuildError::TooBig { inner_mtu: 50, dont_fragment: true })
    );
    let mut out = [0u8; 1280];
    let n = encap::build_too_big_reply(&mut out, &inner, 50).unwrap();
    let mut want = vec![
        0x60, 0x00, 0x00, 0x00, // version 6
        0x00, 0x44, 0x3a, 0x40, // payload 8 + 60 = 68, ICMPv6, hop limit 64
    ];
    want.extend_from_slice(&VIP6); // from the VIP
    want.extend_from_slice(&CLIENT6); // to the client
    want.extend_from_slice(&[
        0x02, 0x00, 0x00, 0x00, // packet too big, checksum
        0x00, 0x00, 0x05, 0x00, // MTU 1280: 50 is below the IPv6 minimum
    ]);
    want.extend_from_slice(&inner);
    fill_l4_v6(&mut want, 0, 40, 108, 58);
    assert_frame_eq(&out[..n], &want);
}

#[test]
fn icmpv4_error_quote_is_capped_at_576_bytes() {
    // A 1000-byte DF packet: the error quotes 576 - 28 = 548 bytes of it.
    let mut inner = tcp4_syn()[14..58].to_vec();
    inner.resize(1000, 0x55);
    inner[2..4].copy_from_slice(&1000u16.to_be_bytes());
    fill_ipv4_header(&mut inner, 0);
    let mut out = [0u8; 1500];
    let n = encap::build_too_big_reply(&mut out, &inner, 980).unwrap();
    assert_eq!(n, 576);
    assert_eq!(&out[28..576], &inner[..548]);
    assert!(verify_ipv4_header(&out, 0) && verify_l4_v4(&out, 0, 20, 576));
    // No room for even the headers and 8 bytes of L4.
    assert_eq!(encap::build_too_big_reply(&mut out[..40], &inner, 980), Err(BuildError::BufferTooSmall));
}

#[test]
fn decapsulation_round_trip_and_ecn() {
    // Outer CE over an ECT(0) inner packet: the inner packet leaves with CE.
    let mut inner = tcp4_syn()[14..58].to_vec();
    inner[1] = 0x02; // ECT(0)
    fill_ipv4_header(&mut inner, 0);
    let mut buf = vec![
        0x45, 0x03, 0x00, 0x40, // TOS CE, total 64
        0x00, 0x01, 0x40, 0x00, // id 1, DF
        0x40, 0x04, 0x00, 0x00, // TTL 64, IPIP
        198, 18, 1, 1, // director
        198, 19, 0, 2, // real server
    ];
    fill_ipv4_header(&mut buf, 0);
    buf.extend_from_slice(&inner);
    let d = encap::decapsulate(&mut buf, 0, 64).unwrap();
    assert_eq!(
        d,
        Decapsulated {
            outer_src: IpAddr::V4(Ipv4Addr::from(DIRECTOR4)),
            outer_dst: IpAddr::V4(Ipv4Addr::from(RIP4)),
            inner_family: Family::V4,
            inner_start: 20,
            inner_len: 44,
        }
    );
    let mut want = inner.clone();
    want[1] = 0x03; // CE propagated
    fill_ipv4_header(&mut want, 0);
    assert_frame_eq(&buf[20..], &want);

    // Outer CE over a not-ECT inner packet: drop.
    let mut not_ect = buf.clone();
    not_ect[21] = 0x00;
    fill_ipv4_header(&mut not_ect, 20);
    assert_eq!(encap::decapsulate(&mut not_ect, 0, 64), Err(ParseError::EcnNotEct));

    // Encapsulate then decapsulate 6in4 gives the inner packet back unchanged.
    let inner6 = inner6_ect1();
    let mut buf = with_headroom(20, &inner6);
    let e = encap::encapsulate(&mut buf, 20, inner6.len(), &params4()).unwrap();
    let d = encap::decapsulate(&mut buf, e.start, e.len).unwrap();
    assert_eq!((d.inner_family, d.inner_start, d.inner_len), (Family::V6, 20, 60));
    assert_frame_eq(&buf[20..], &inner6);
}

#[test]
fn decapsulation_rejects_non_tunnels() {
    let mut plain = tcp4_syn()[14..58].to_vec();
    assert_eq!(encap::decapsulate(&mut plain, 0, 44), Err(ParseError::NotTunnel));
    // Protocol 4 announcing an IPv6 inner packet.
    let inner6 = inner6_ect1();
    let mut buf = with_headroom(20, &inner6);
    let e = encap::encapsulate(&mut buf, 20, inner6.len(), &params4()).unwrap();
    buf[9] = 4;
    fill_ipv4_header(&mut buf, 0);
    assert_eq!(encap::decapsulate(&mut buf, e.start, e.len), Err(ParseError::BadVersion));
    assert_eq!(encap::decapsulate(&mut buf, 0, 500), Err(ParseError::Truncated));
}

#[test]
fn arp_reply_and_gratuitous() {
    let request = arp::parse(&arp_request()[14..]).unwrap();
    let mut out = [0u8; 60];
    let n = arp::build_reply(&mut out, &request, MacAddr(MAC_DIRECTOR)).unwrap();
    let mut want = MAC_ROUTER.to_vec(); // to the asker
    want.extend_from_slice(&MAC_DIRECTOR);
    want.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02]); // ARP reply
    want.extend_from_slice(&MAC_DIRECTOR); // sender: us
    want.extend_from_slice(&VIP4); // ... at the VIP
    want.extend_from_slice(&MAC_ROUTER); // target: the asker
    want.extend_from_slice(&ROUTER4);
    assert_frame_eq(&out[..n], &want);

    let n = arp::build_gratuitous(&mut out, MacAddr(MAC_DIRECTOR), Ipv4Addr::from(VIP4)).unwrap();
    let mut want = vec![0xff; 6]; // broadcast
    want.extend_from_slice(&MAC_DIRECTOR);
    want.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01]); // request
    want.extend_from_slice(&MAC_DIRECTOR);
    want.extend_from_slice(&VIP4);
    want.extend_from_slice(&[0; 6]);
    want.extend_from_slice(&VIP4); // target IP = sender IP
    assert_frame_eq(&out[..n], &want);
    assert!(arp::parse(&out[14..n]).unwrap().is_gratuitous());
    assert_eq!(
        arp::build_gratuitous(&mut out[..41], MacAddr(MAC_DIRECTOR), Ipv4Addr::from(VIP4)),
        Err(BuildError::BufferTooSmall)
    );
}
