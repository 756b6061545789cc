//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by the
//! corpus replay test (`tests/fuzz_corpus.rs`), so every corpus file is checked by
//! plain `cargo test` on stable.
//!
//! Each function takes arbitrary bytes, runs one parser over them and, when it
//! accepts them, runs every rewrite on a copy and asserts the invariants the
//! pipeline relies on: offsets inside the buffer, checksums that verified before
//! a rewrite still verify after it, re-parsing sees the new addresses, and
//! encapsulation round-trips. A panic here is a bug found. This is test support:
//! unlike the rest of the crate it allocates and asserts.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::encap::{self, TunnelParams};
use crate::error::BuildError;
use crate::ethernet::{self, MacAddr};
use crate::icmp::{self, IcmpPacket};
use crate::ip::{Family, protocol};
use crate::ipv4::Ipv4Packet;
use crate::ipv6::{self, Ipv6Packet};
use crate::parse::{PacketSummary, Parsed, parse_frame, parse_ip};
use crate::rewrite;
use crate::tcp::TcpPacket;
use crate::udp::UdpPacket;
use crate::{arp, error::RewriteError};

const NEW_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 9);
const NEW_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0x7, 0x9);
const TUNNEL_V4: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 19, 0, 1));
const TUNNEL_V6: (Ipv6Addr, Ipv6Addr) =
    (Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1), Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1));

/// Target `frame`: [`parse_frame`] and, on success, every rewrite.
pub fn frame(data: &[u8]) {
    match parse_frame(data) {
        Ok(Parsed::Ip(summary)) => {
            check_summary(data, &summary);
            exercise_rewrites(data, &summary);
            exercise_tunnel(&data[summary.l3_offset..summary.end]);
        }
        Ok(Parsed::Arp { eth, arp: packet }) => {
            assert_eq!(eth.ethertype, ethernet::ethertype::ARP);
            let mut out = [0u8; 64];
            let n = arp::build_reply(&mut out, &packet, MacAddr([2, 0, 0, 0, 0, 1])).expect("64 bytes suffice");
            let Ok(Parsed::Arp { arp: reply, .. }) = parse_frame(&out[..n]) else { panic!("reply must parse") };
            assert_eq!(reply.sender_ip, packet.target_ip);
            assert_eq!(reply.target_mac, packet.sender_mac);
        }
        Err(_) => {}
    }
}

/// Target `ip`: [`parse_ip`] at offset 0 and, on success, every rewrite and the tunnels.
pub fn ip(data: &[u8]) {
    if let Ok(summary) = parse_ip(data, 0) {
        check_summary(data, &summary);
        exercise_rewrites(data, &summary);
        exercise_tunnel(&data[..summary.end]);
    }
}

/// Target `ethernet`: the Ethernet/VLAN parser and the MAC writers.
pub fn ethernet(data: &[u8]) {
    if let Ok(info) = ethernet::parse(data) {
        assert!(info.payload_offset <= data.len());
        assert_eq!(info.payload_offset, ethernet::HEADER_LEN + ethernet::VLAN_TAG_LEN * info.vlan_count());
        let mut copy = data.to_vec();
        rewrite::set_dst_mac(&mut copy, MacAddr([2, 0, 0, 0, 0, 2]));
        rewrite::set_src_mac(&mut copy, MacAddr([2, 0, 0, 0, 0, 3]));
        let again = ethernet::parse(&copy).expect("MACs do not change the structure");
        assert_eq!(again.dst, MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!((again.ethertype, again.payload_offset), (info.ethertype, info.payload_offset));
        assert_eq!(copy[12..], data[12..]);
    }
}

/// Target `arp`: the ARP parser (input is the ARP packet, no Ethernet header).
pub fn arp(data: &[u8]) {
    if let Ok(packet) = arp::parse(data) {
        let mut out = [0u8; arp::PACKET_LEN];
        arp::write_packet(&mut out, &packet).expect("28 bytes suffice");
        assert_eq!(out[..], data[..arp::PACKET_LEN]);
    }
}

/// Target `ipv4`: the IPv4 view, its setters and checksum upkeep.
pub fn ipv4(data: &[u8]) {
    if let Ok(view) = Ipv4Packet::new_header_checked(data) {
        let verified = view.verify_checksum();
        assert!(view.header_len() <= data.len());
        assert!(view.payload().len() <= data.len());
        let mut copy = data.to_vec();
        let mut packet = Ipv4Packet::new_unchecked(&mut copy[..]);
        packet.set_src(NEW_V4);
        packet.set_dst(NEW_V4);
        packet.set_ttl(packet.ttl().wrapping_sub(1));
        packet.set_tos(0xb8);
        assert_eq!(packet.verify_checksum(), verified, "incremental update must keep the verdict");
        packet.fill_checksum();
        assert!(packet.verify_checksum());
    }
    ip(data);
}

/// Target `ipv6`: the IPv6 view and the extension-header walk.
pub fn ipv6(data: &[u8]) {
    if let Ok(view) = Ipv6Packet::new_header_checked(data) {
        let _ = view.payload();
        if let Ok(upper) = ipv6::walk_extension_headers(data) {
            assert!(upper.offset >= ipv6::HEADER_LEN && upper.offset <= data.len());
        }
        let mut copy = data.to_vec();
        let mut packet = Ipv6Packet::new_unchecked(&mut copy[..]);
        packet.set_traffic_class(0xb9);
        assert_eq!((packet.traffic_class(), packet.version(), packet.flow_label()), (0xb9, 6, view.flow_label()));
    }
    ip(data);
}

/// Target `tcp`: the TCP view over an L4 segment.
pub fn tcp(data: &[u8]) {
    if let Ok(view) = TcpPacket::new_checked(data) {
        assert!(view.header_len() <= data.len());
        assert_eq!(view.options().len() + view.payload().len() + 20, data.len());
        let pseudo = checksum::pseudo_header_v4(TUNNEL_V4.0.octets(), TUNNEL_V4.1.octets(), protocol::TCP, 0);
        let mut copy = data.to_vec();
        let mut packet = TcpPacket::new_unchecked(&mut copy[..]);
        packet.fill_checksum(pseudo);
        assert!(packet.verify_checksum(pseudo));
    }
    // Also as the payload of a minimal IPv4 packet.
    ip(&wrap_in_ipv4(protocol::TCP, data));
}

/// Target `udp`: the UDP view over an L4 datagram.
pub fn udp(data: &[u8]) {
    if let Ok(view) = UdpPacket::new_checked(data) {
        assert!(view.payload().len() + 8 <= data.len());
        let pseudo = checksum::pseudo_header_v6(TUNNEL_V6.0.octets(), TUNNEL_V6.1.octets(), protocol::UDP, 0);
        let mut copy = data.to_vec();
        let mut packet = UdpPacket::new_unchecked(&mut copy[..]);
        packet.fill_checksum(pseudo);
        assert_ne!(packet.checksum(), 0);
        assert!(packet.verify_checksum(pseudo, false));
    }
    ip(&wrap_in_ipv4(protocol::UDP, data));
}

/// Target `icmp`: the ICMP view, quoted-flow parsing for both families, and the
/// ICMP error builders.
pub fn icmp(data: &[u8]) {
    if IcmpPacket::new_checked(data).is_ok() {
        for family in [Family::V4, Family::V6] {
            if let Ok(flow) = icmp::parse_quoted(data, family) {
                assert!(flow.ip_offset <= flow.l4_offset && flow.l4_offset <= data.len());
            }
        }
        // The body as an offending packet for the builders.
        let body = &data[icmp::HEADER_LEN..];
        let mut out = [0u8; 1500];
        if let Ok(n) = icmp::build_frag_needed(&mut out, NEW_V4, body, 1400) {
            check_built_error(&out[..n], Family::V4);
        }
        if let Ok(n) = icmp::build_packet_too_big(&mut out, NEW_V6, body, 1280) {
            check_built_error(&out[..n], Family::V6);
        }
    }
    ip(&wrap_in_ipv4(protocol::ICMP, data));
}

/// Target `tunnel`: decapsulation of arbitrary bytes, and encapsulation of them if
/// they are an IP packet.
pub fn tunnel(data: &[u8]) {
    let mut copy = data.to_vec();
    if let Ok(d) = encap::decapsulate(&mut copy, 0, data.len()) {
        assert!(d.inner_start + d.inner_len <= data.len());
        parse_ip(&copy[..d.inner_start + d.inner_len], d.inner_start).ok();
    }
    if let Ok(summary) = parse_ip(data, 0) {
        exercise_tunnel(&data[..summary.end]);
    }
}

/// An ICMP error this crate built must be a valid IP packet with a valid ICMP
/// checksum; its quote may be unusable only if the offending packet's headers
/// did not fit in it.
fn check_built_error(packet: &[u8], family: Family) {
    let version = packet[0] >> 4;
    assert_eq!(version, if family == Family::V4 { 4 } else { 6 });
    match parse_ip(packet, 0) {
        Ok(summary) => {
            let info = summary.icmp.expect("is ICMP");
            assert!(icmp::is_error(family, info.msg_type));
            assert!(icmp_checksum_ok(packet, &summary));
        }
        Err(e) => assert_eq!(e, crate::ParseError::BadIcmpQuote),
    }
}

fn wrap_in_ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
    let len = (20 + l4.len()).min(usize::from(u16::MAX));
    let mut packet = vec![0u8; 20];
    crate::ipv4::write_header(
        &mut packet,
        &crate::ipv4::Ipv4HeaderFields {
            src: TUNNEL_V4.0,
            dst: TUNNEL_V4.1,
            protocol: proto,
            ttl: 64,
            tos: 0,
            ident: 1,
            dont_fragment: true,
            total_len: u16::try_from(len).unwrap_or(u16::MAX),
        },
    );
    packet.extend_from_slice(&l4[..len - 20]);
    packet
}

fn check_summary(data: &[u8], s: &PacketSummary) {
    assert!(s.l3_offset < s.l4_offset && s.l4_offset <= s.end && s.end <= data.len());
    match s.protocol {
        protocol::TCP => assert!(s.tcp_flags.is_some() && s.end - s.l4_offset >= 20),
        protocol::UDP => assert!(s.end - s.l4_offset >= 8),
        _ => assert!(s.tcp_flags.is_none()),
    }
    if let Some(q) = s.quoted_flow() {
        assert!(s.l4_offset + q.l4_offset <= s.end);
    }
}

/// Full (non-incremental) verification of the L4 checksum of a TCP/UDP packet.
/// `None` when there is nothing to verify (other protocol, UDP/IPv4 zero checksum).
fn l4_checksum_ok(frame: &[u8], s: &PacketSummary) -> Option<bool> {
    let l4 = &frame[s.l4_offset..s.end];
    let pseudo = pseudo_header(s, u32::try_from(l4.len()).ok()?);
    match s.protocol {
        protocol::TCP => Some(checksum::verify_with_pseudo_header(pseudo, l4)),
        protocol::UDP => {
            let udp = UdpPacket::new_unchecked(l4);
            if udp.checksum() == 0 && s.family == Family::V4 {
                return None;
            }
            let udp_len = u32::from(udp.len_field());
            Some(udp.verify_checksum(pseudo_header(s, udp_len), false))
        }
        _ => None,
    }
}

fn pseudo_header(s: &PacketSummary, len: u32) -> u64 {
    match (s.src, s.dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            checksum::pseudo_header_v4(a.octets(), b.octets(), s.protocol, u16::try_from(len).unwrap_or(0))
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => checksum::pseudo_header_v6(a.octets(), b.octets(), s.protocol, len),
        _ => 0,
    }
}

fn icmp_checksum_ok(frame: &[u8], s: &PacketSummary) -> bool {
    let message = IcmpPacket::new_unchecked(&frame[s.l4_offset..s.end]);
    match s.family {
        Family::V4 => message.verify_checksum_v4(),
        Family::V6 => {
            let len = u32::try_from(s.end - s.l4_offset).unwrap_or(0);
            message.verify_checksum_v6(pseudo_header(s, len))
        }
    }
}

fn quoted_ipv4_checksum_ok(frame: &[u8], s: &PacketSummary) -> Option<bool> {
    let q = s.quoted_flow()?;
    if s.family != Family::V4 {
        return None;
    }
    let at = s.l4_offset + q.ip_offset;
    Some(Ipv4Packet::new_unchecked(&frame[at..s.end]).verify_checksum())
}

fn new_addr(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(NEW_V4),
        Family::V6 => IpAddr::V6(NEW_V6),
    }
}

type Rewrite = fn(&mut [u8], &PacketSummary, IpAddr, u16) -> Result<(), RewriteError>;

fn exercise_rewrites(data: &[u8], s: &PacketSummary) {
    // Direct routing: only the MACs change.
    if s.eth.is_some() {
        let mut copy = data.to_vec();
        rewrite::set_dst_mac(&mut copy, MacAddr([2, 0, 0, 0, 0, 9]));
        rewrite::set_src_mac(&mut copy, MacAddr([2, 0, 0, 0, 0, 8]));
        assert_eq!(copy[12..], data[12..]);
    }

    // TTL / hop limit.
    let mut copy = data.to_vec();
    match rewrite::decrement_ttl(&mut copy, s) {
        Ok(ttl) => {
            assert_eq!(ttl, s.ttl - 1);
            let again = parse_ip(&copy, s.l3_offset).expect("TTL decrement keeps the packet valid");
            assert_eq!(again.ttl, ttl);
        }
        Err(e) => assert!(s.ttl <= 1 && e == RewriteError::TtlExceeded),
    }

    let addr = new_addr(s.family);
    let nat: [(Rewrite, bool); 2] = [(rewrite::dnat, true), (rewrite::snat, false)];
    for (op, is_dnat) in nat {
        let mut copy = data.to_vec();
        let before = l4_checksum_ok(data, s);
        match op(&mut copy, s, addr, 4242) {
            Ok(()) => {
                let again = parse_ip(&copy, s.l3_offset).expect("NAT keeps the packet valid");
                if is_dnat {
                    assert_eq!((again.dst, again.dst_port, again.src, again.src_port), (addr, 4242, s.src, s.src_port));
                } else {
                    assert_eq!((again.src, again.src_port, again.dst, again.dst_port), (addr, 4242, s.dst, s.dst_port));
                }
                assert_eq!(l4_checksum_ok(&copy, &again), before, "NAT must keep the checksum verdict");
            }
            Err(e) => {
                assert!(!matches!(s.protocol, protocol::TCP | protocol::UDP), "TCP/UDP NAT refused: {e}");
                assert_eq!(copy, data, "a refused rewrite leaves the frame alone");
            }
        }
    }

    let icmp_ops: [(Rewrite, bool); 2] = [(rewrite::dnat_icmp_error, true), (rewrite::snat_icmp_error, false)];
    for (op, is_dnat) in icmp_ops {
        let mut copy = data.to_vec();
        let icmp_before = s.icmp.is_some().then(|| icmp_checksum_ok(data, s));
        let quoted_before = quoted_ipv4_checksum_ok(data, s);
        match op(&mut copy, s, addr, 4242) {
            Ok(()) => {
                let again = parse_ip(&copy, s.l3_offset).expect("ICMP translation keeps the packet valid");
                let q = again.quoted_flow().expect("still an ICMP error");
                if is_dnat {
                    assert_eq!((again.dst, q.src, q.src_port), (addr, addr, 4242));
                } else {
                    assert_eq!((again.src, q.dst, q.dst_port), (addr, addr, 4242));
                }
                assert_eq!(Some(icmp_checksum_ok(&copy, &again)), icmp_before, "ICMP checksum verdict kept");
                assert_eq!(quoted_ipv4_checksum_ok(&copy, &again), quoted_before, "quoted header verdict kept");
            }
            Err(_) => assert_eq!(copy, data, "a refused rewrite leaves the frame alone"),
        }
    }
}

/// Encapsulates `packet` (a whole IP packet) every way, checks the outer header,
/// decapsulates and compares; then asks for a too-small MTU and checks the reply.
fn exercise_tunnel(packet: &[u8]) {
    const HEADROOM: usize = 40;
    let ends = [(IpAddr::V4(TUNNEL_V4.0), IpAddr::V4(TUNNEL_V4.1)), (IpAddr::V6(TUNNEL_V6.0), IpAddr::V6(TUNNEL_V6.1))];
    for (src, dst) in ends {
        let mut buf = vec![0u8; HEADROOM];
        buf.extend_from_slice(packet);
        let params = TunnelParams { src, dst, ttl: None, ident: 7, flow_label: 0, mtu: usize::MAX };
        let Ok(e) = encap::encapsulate(&mut buf, HEADROOM, packet.len(), &params) else {
            // Only an inner packet too large for a 16-bit length can fail here.
            assert!(packet.len() + 40 > 65_535);
            continue;
        };
        assert_eq!(e.start + e.len, buf.len());
        let outer = parse_ip(&buf, e.start).expect("outer header parses");
        assert!(matches!(outer.protocol, protocol::IPIP | protocol::IPV6));
        let d = encap::decapsulate(&mut buf, e.start, e.len).expect("own tunnel packets decapsulate");
        assert_eq!(&buf[d.inner_start..d.inner_start + d.inner_len], packet);

        // Too small an MTU: the client must be told.
        let mut buf = vec![0u8; HEADROOM];
        buf.extend_from_slice(packet);
        let small = TunnelParams { mtu: packet.len(), ..params };
        match encap::encapsulate(&mut buf, HEADROOM, packet.len(), &small) {
            Err(BuildError::TooBig { inner_mtu, dont_fragment }) => {
                assert_eq!(inner_mtu, packet.len().saturating_sub(encap::overhead(outer.family)));
                let mut reply = [0u8; 1500];
                match encap::build_too_big_reply(&mut reply, packet, inner_mtu) {
                    Ok(n) => check_built_error(&reply[..n], if packet[0] >> 4 == 4 { Family::V4 } else { Family::V6 }),
                    Err(BuildError::NotAllowed) => {}
                    Err(other) => panic!("no too-big reply (DF {dont_fragment}): {other}"),
                }
            }
            other => panic!("expected TooBig, got {other:?}"),
        }
    }
}
