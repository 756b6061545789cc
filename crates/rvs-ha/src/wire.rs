//! Minimal Ethernet, IPv4 and IPv6 framing for the HA protocols: parse the headers of a received
//! frame or packet and build the ones we send (VRRP adverts over raw sockets or AF_PACKET, GARPs).
//! Only what VRRP and neighbour announcements need: no options, no extension headers, no VLANs.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::internet_checksum;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Length of an Ethernet II header.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the IPv6 fixed header.
pub const IPV6_HEADER_LEN: usize = 40;

/// A 48-bit Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The Ethernet group address an IPv4 multicast group maps to (RFC 1112 §6.4: 01:00:5e + low 23 bits).
    pub fn ipv4_multicast(group: Ipv4Addr) -> MacAddr {
        let [_, b, c, d] = group.octets();
        MacAddr([0x01, 0x00, 0x5e, b & 0x7f, c, d])
    }

    /// The Ethernet group address an IPv6 multicast group maps to (RFC 2464 §7: 33:33 + low 32 bits).
    pub fn ipv6_multicast(group: Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    /// The VRRP virtual MAC of RFC 5798 §7.3: 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6).
    pub fn vrrp_virtual(vrid: u8, ipv6: bool) -> MacAddr {
        MacAddr([0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Why a frame or packet header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the header (or its stated length) needs.
    #[error("truncated header")]
    Truncated,
    /// The version nibble is not the one expected.
    #[error("wrong IP version")]
    WrongVersion,
    /// The IPv4 header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    BadHeaderChecksum,
    /// A fragment (more-fragments set or non-zero offset); VRRP is never fragmented.
    #[error("fragmented packet")]
    Fragment,
    /// The EtherType is not the one expected.
    #[error("unexpected ethertype {0:#06x}")]
    WrongEtherType(u16),
}

/// An Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// EtherType.
    pub ethertype: u16,
}

impl EthernetHeader {
    /// Splits a frame into its header and payload.
    pub fn parse(frame: &[u8]) -> Result<(EthernetHeader, &[u8]), WireError> {
        let (head, payload) = split(frame, ETHERNET_HEADER_LEN)?;
        let dst = MacAddr(array6(&head[0..6]));
        let src = MacAddr(array6(&head[6..12]));
        let ethertype = u16::from_be_bytes([head[12], head[13]]);
        Ok((EthernetHeader { dst, src, ethertype }, payload))
    }

    /// Appends the 14 header bytes to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dst.0);
        out.extend_from_slice(&self.src.0);
        out.extend_from_slice(&self.ethertype.to_be_bytes());
    }
}

/// The fields of an IPv4 header (without options) that the HA protocols read or set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Type of service / DSCP+ECN byte (VRRP uses 0xc0, internetwork control).
    pub tos: u8,
    /// Identification.
    pub id: u16,
    /// Don't-fragment flag.
    pub dont_fragment: bool,
    /// Time to live.
    pub ttl: u8,
    /// Upper-layer protocol (112 for VRRP).
    pub protocol: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
}

impl Ipv4Header {
    /// Parses an IPv4 packet: checks version, header length, total length, header checksum and
    /// fragmentation; returns the header and the payload cut to the total length (link padding dropped).
    /// Options, if present, are skipped.
    pub fn parse(packet: &[u8]) -> Result<(Ipv4Header, &[u8]), WireError> {
        let first = *packet.first().ok_or(WireError::Truncated)?;
        if first >> 4 != 4 {
            return Err(WireError::WrongVersion);
        }
        let header_len = usize::from(first & 0x0f) * 4;
        if header_len < IPV4_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header = packet.get(..header_len).ok_or(WireError::Truncated)?;
        let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if total_len < header_len {
            return Err(WireError::Truncated);
        }
        let whole = packet.get(..total_len).ok_or(WireError::Truncated)?;
        if internet_checksum(header) != 0 {
            return Err(WireError::BadHeaderChecksum);
        }
        let frag = u16::from_be_bytes([header[6], header[7]]);
        if frag & 0x2000 != 0 || frag & 0x1fff != 0 {
            return Err(WireError::Fragment);
        }
        let parsed = Ipv4Header {
            tos: header[1],
            id: u16::from_be_bytes([header[4], header[5]]),
            dont_fragment: frag & 0x4000 != 0,
            ttl: header[8],
            protocol: header[9],
            src: Ipv4Addr::new(header[12], header[13], header[14], header[15]),
            dst: Ipv4Addr::new(header[16], header[17], header[18], header[19]),
        };
        Ok((parsed, &whole[header_len..]))
    }

    /// Appends a 20-byte header for a payload of `payload_len` bytes, with its checksum.
    /// A payload too large for the 16-bit total length field is clamped (callers keep payloads small).
    pub fn write(&self, payload_len: usize, out: &mut Vec<u8>) {
        let total = u16::try_from(IPV4_HEADER_LEN + payload_len).unwrap_or(u16::MAX);
        let start = out.len();
        out.extend_from_slice(&[0x45, self.tos]);
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&(if self.dont_fragment { 0x4000u16 } else { 0 }).to_be_bytes());
        out.extend_from_slice(&[self.ttl, self.protocol, 0, 0]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        let checksum = internet_checksum(&out[start..]);
        out[start + 10..start + 12].copy_from_slice(&checksum.to_be_bytes());
    }
}

/// The fields of the IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    /// Traffic class (VRRP uses 0xc0).
    pub traffic_class: u8,
    /// Flow label (20 bits; higher bits ignored when writing).
    pub flow_label: u32,
    /// Next header (112 for VRRP, 58 for ICMPv6).
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
}

impl Ipv6Header {
    /// Parses the fixed header; returns it and the payload cut to the payload length.
    /// Extension headers are not walked: `next_header` is whatever follows the fixed header.
    pub fn parse(packet: &[u8]) -> Result<(Ipv6Header, &[u8]), WireError> {
        let (head, rest) = split(packet, IPV6_HEADER_LEN)?;
        if head[0] >> 4 != 6 {
            return Err(WireError::WrongVersion);
        }
        let word = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let payload_len = usize::from(u16::from_be_bytes([head[4], head[5]]));
        let payload = rest.get(..payload_len).ok_or(WireError::Truncated)?;
        let parsed = Ipv6Header {
            traffic_class: ((word >> 20) & 0xff) as u8,
            flow_label: word & 0x000f_ffff,
            next_header: head[6],
            hop_limit: head[7],
            src: Ipv6Addr::from(array16(&head[8..24])),
            dst: Ipv6Addr::from(array16(&head[24..40])),
        };
        Ok((parsed, payload))
    }

    /// Appends the 40-byte fixed header for a payload of `payload_len` bytes.
    pub fn write(&self, payload_len: usize, out: &mut Vec<u8>) {
        let word = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff);
        out.extend_from_slice(&word.to_be_bytes());
        out.extend_from_slice(&u16::try_from(payload_len).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&[self.next_header, self.hop_limit]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
    }
}

/// Splits `bytes` at `n`, failing with `Truncated` if shorter.
pub(crate) fn split(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), WireError> {
    if bytes.len() < n { Err(WireError::Truncated) } else { Ok(bytes.split_at(n)) }
}

/// Copies 6 bytes (zero-filled if `bytes` is shorter; callers pass exact slices).
pub(crate) fn array6(bytes: &[u8]) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

/// Copies 16 bytes (zero-filled if `bytes` is shorter; callers pass exact slices).
pub(crate) fn array16(bytes: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_macs_follow_rfc_mappings() {
        // 224.0.0.18 -> 01:00:5e:00:00:12 ; ff02::12 -> 33:33:00:00:00:12 (as in the captures).
        assert_eq!(MacAddr::ipv4_multicast(Ipv4Addr::new(224, 0, 0, 18)).0, [1, 0, 0x5e, 0, 0, 0x12]);
        assert_eq!(
            MacAddr::ipv6_multicast("ff02::12".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)).0,
            [0x33, 0x33, 0, 0, 0, 0x12]
        );
        assert_eq!(MacAddr::vrrp_virtual(51, false).to_string(), "00:00:5e:00:01:33");
    }

    #[test]
    fn ipv4_round_trip_and_checks() {
        let h = Ipv4Header {
            tos: 0xc0,
            id: 7,
            dont_fragment: false,
            ttl: 255,
            protocol: 112,
            src: Ipv4Addr::new(198, 18, 0, 1),
            dst: Ipv4Addr::new(224, 0, 0, 18),
        };
        let mut p = Vec::new();
        h.write(3, &mut p);
        p.extend_from_slice(&[1, 2, 3, 0, 0]); // two bytes of link padding
        let (back, payload) = Ipv4Header::parse(&p).expect("valid");
        assert_eq!(back, h);
        assert_eq!(payload, &[1, 2, 3]);
        p[8] = 1; // change TTL without fixing the checksum
        assert_eq!(Ipv4Header::parse(&p), Err(WireError::BadHeaderChecksum));
        assert_eq!(Ipv4Header::parse(&p[..10]), Err(WireError::Truncated));
    }
}
