//! The IP (and Ethernet) envelope of a VRRP advert: read the source, destination and TTL from a
//! received packet or frame, and wrap an encoded advert for sending (TOS/traffic class 0xc0,
//! TTL/hop limit 255, protocol 112), as keepalived does.

use std::net::IpAddr;

use crate::vrrp::packet::{VRRP_PROTOCOL, VRRP_TTL};
use crate::vrrp::rx::{DropReason, RxMeta};
use crate::wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, EthernetHeader, Ipv4Header, Ipv6Header, MacAddr};

/// The DSCP/ECN byte VRRP is sent with (precedence 6, internetwork control).
pub const VRRP_TOS: u8 = 0xc0;

/// Header fields the sender chooses and that the protocol does not fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpFields {
    /// IPv4 identification.
    pub ipv4_id: u16,
    /// IPv6 flow label (20 bits).
    pub ipv6_flow_label: u32,
}

/// Reads an IPv4 packet carrying VRRP.
pub fn parse_ipv4(packet: &[u8]) -> Result<(RxMeta, &[u8]), DropReason> {
    let (h, payload) = Ipv4Header::parse(packet)?;
    if h.protocol != VRRP_PROTOCOL {
        return Err(DropReason::BadIpHeader);
    }
    Ok((RxMeta { src: IpAddr::V4(h.src), dst: IpAddr::V4(h.dst), ttl: h.ttl, now_unix_us: None }, payload))
}

/// Reads an IPv6 packet carrying VRRP directly after the fixed header.
pub fn parse_ipv6(packet: &[u8]) -> Result<(RxMeta, &[u8]), DropReason> {
    let (h, payload) = Ipv6Header::parse(packet)?;
    if h.next_header != VRRP_PROTOCOL {
        return Err(DropReason::BadIpHeader);
    }
    Ok((RxMeta { src: IpAddr::V6(h.src), dst: IpAddr::V6(h.dst), ttl: h.hop_limit, now_unix_us: None }, payload))
}

/// Reads an Ethernet frame carrying a VRRP packet.
pub fn parse_ethernet(frame: &[u8]) -> Result<(EthernetHeader, RxMeta, &[u8]), DropReason> {
    let (eth, packet) = EthernetHeader::parse(frame)?;
    let (meta, payload) = match eth.ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(packet)?,
        ETHERTYPE_IPV6 => parse_ipv6(packet)?,
        _ => return Err(DropReason::BadIpHeader),
    };
    Ok((eth, meta, payload))
}

/// Wraps `vrrp` (an encoded advert, trailer included) in an IP header from `src` to `dst`.
/// Mixed families yield an IPv4 header with unspecified addresses replaced by the IPv4 ones given;
/// callers never mix them (the encoder refuses to).
pub fn ip_packet(vrrp: &[u8], src: IpAddr, dst: IpAddr, fields: IpFields) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + vrrp.len());
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => Ipv6Header {
            traffic_class: VRRP_TOS,
            flow_label: fields.ipv6_flow_label,
            next_header: VRRP_PROTOCOL,
            hop_limit: VRRP_TTL,
            src: s,
            dst: d,
        }
        .write(vrrp.len(), &mut out),
        (s, d) => Ipv4Header {
            tos: VRRP_TOS,
            id: fields.ipv4_id,
            dont_fragment: false,
            ttl: VRRP_TTL,
            protocol: VRRP_PROTOCOL,
            src: as_v4(s),
            dst: as_v4(d),
        }
        .write(vrrp.len(), &mut out),
    }
    out.extend_from_slice(vrrp);
    out
}

fn as_v4(a: IpAddr) -> std::net::Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
    }
}

/// The Ethernet destination for `dst`: its multicast mapping, or `unicast` for a unicast peer.
pub fn dst_mac(dst: IpAddr, unicast: MacAddr) -> MacAddr {
    match dst {
        IpAddr::V4(a) if a.is_multicast() => MacAddr::ipv4_multicast(a),
        IpAddr::V6(a) if a.is_multicast() => MacAddr::ipv6_multicast(a),
        _ => unicast,
    }
}

/// Wraps an IP packet in an Ethernet header.
pub fn ethernet_frame(src: MacAddr, dst: MacAddr, ip_packet: &[u8], ipv6: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + ip_packet.len());
    EthernetHeader { dst, src, ethertype: if ipv6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 } }.write(&mut out);
    out.extend_from_slice(ip_packet);
    out
}
