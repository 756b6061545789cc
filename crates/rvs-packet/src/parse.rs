//! The parse entry points: one pass over a received frame that either returns a
//! summary of everything the pipeline needs (offsets, family, protocol, addresses,
//! ports, TCP flags, DF, ICMP error with its quoted flow) or names the reason the
//! frame cannot be handled (a [`ParseError`], counted by the caller).
//!
//! Parsing never reads past the buffer, never allocates and never verifies L4
//! checksums (NICs may hand over partial checksums); the IPv4 header checksum is
//! verified because nothing else will.

use core::net::IpAddr;

use crate::arp::{self, ArpPacket};
use crate::error::ParseError;
use crate::ethernet::{self, EthernetInfo, ethertype};
use crate::field::{slice, u16_at};
use crate::icmp::{self, IcmpPacket, QuotedFlow};
use crate::ip::{Family, protocol};
use crate::ipv4::Ipv4Packet;
use crate::ipv6::Ipv6Packet;
use crate::tcp::{TcpFlags, TcpPacket};
use crate::udp::UdpPacket;

/// Length of the SCTP common header (ports, verification tag, checksum).
const SCTP_HEADER_LEN: usize = 12;

/// A parsed frame: ARP or IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// An Ethernet/IPv4 ARP packet.
    Arp {
        /// The Ethernet header.
        eth: EthernetInfo,
        /// The ARP packet.
        arp: ArpPacket,
    },
    /// An IPv4 or IPv6 packet.
    Ip(PacketSummary),
}

/// ICMP type/code and, for errors that IPVS translates, the quoted flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpInfo {
    /// Message type.
    pub msg_type: u8,
    /// Message code.
    pub code: u8,
    /// The flow the error is about (offsets relative to the ICMP header); `None`
    /// for messages that are not translated errors (echo, redirect ...).
    pub quoted: Option<QuotedFlow>,
}

/// What the pipeline needs to know about an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketSummary {
    /// The Ethernet header (`None` when parsed from L3 with [`parse_ip`]).
    pub eth: Option<EthernetInfo>,
    /// Offset of the IP header in the buffer.
    pub l3_offset: usize,
    /// Offset of the upper-layer header (after IPv4 options / IPv6 extension headers).
    pub l4_offset: usize,
    /// Offset just past the IP packet (its total length; padding excluded).
    pub end: usize,
    /// IPv4 or IPv6.
    pub family: Family,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (TCP/UDP/SCTP; 0 otherwise).
    pub src_port: u16,
    /// Destination port (TCP/UDP/SCTP; 0 otherwise).
    pub dst_port: u16,
    /// TTL or hop limit.
    pub ttl: u8,
    /// TOS / traffic class byte.
    pub tos: u8,
    /// IPv4 DF flag; always true for IPv6, which routers never fragment.
    pub dont_fragment: bool,
    /// TCP flags, for TCP.
    pub tcp_flags: Option<TcpFlags>,
    /// ICMP / ICMPv6 details.
    pub icmp: Option<IcmpInfo>,
}

impl PacketSummary {
    /// Length of the IP packet.
    #[must_use]
    pub const fn ip_len(&self) -> usize {
        self.end.saturating_sub(self.l3_offset)
    }

    /// The flow quoted in an ICMP error that IPVS would translate.
    #[must_use]
    pub fn quoted_flow(&self) -> Option<&QuotedFlow> {
        self.icmp.as_ref().and_then(|i| i.quoted.as_ref())
    }

    /// Whether this is an ICMP error quoting a flow.
    #[must_use]
    pub fn is_icmp_error(&self) -> bool {
        self.quoted_flow().is_some()
    }
}

/// Parses an Ethernet frame (with up to two VLAN tags) carrying ARP, IPv4 or IPv6.
///
/// # Errors
/// The [`ParseError`] naming why the frame cannot be handled; the frame should be
/// passed to the kernel or dropped and counted under [`ParseError::reason`].
pub fn parse_frame(frame: &[u8]) -> Result<Parsed, ParseError> {
    let eth = ethernet::parse(frame)?;
    match eth.ethertype {
        ethertype::ARP => {
            let arp = arp::parse(slice(frame, eth.payload_offset, frame.len()))?;
            Ok(Parsed::Arp { eth, arp })
        }
        ethertype::IPV4 => parse_ipv4(frame, eth.payload_offset, Some(eth)).map(Parsed::Ip),
        ethertype::IPV6 => parse_ipv6(frame, eth.payload_offset, Some(eth)).map(Parsed::Ip),
        _ => Err(ParseError::UnsupportedEtherType),
    }
}

/// Parses an IP packet starting at `l3_offset` of `buf` (no Ethernet header), the
/// version nibble choosing the family. Offsets in the summary are from the start
/// of `buf`.
///
/// # Errors
/// As [`parse_frame`]; [`ParseError::BadVersion`] for a version other than 4 or 6.
pub fn parse_ip(buf: &[u8], l3_offset: usize) -> Result<PacketSummary, ParseError> {
    let first = *buf.get(l3_offset).ok_or(ParseError::Truncated)?;
    match first >> 4 {
        4 => parse_ipv4(buf, l3_offset, None),
        6 => parse_ipv6(buf, l3_offset, None),
        _ => Err(ParseError::BadVersion),
    }
}

fn parse_ipv4(buf: &[u8], l3: usize, eth: Option<EthernetInfo>) -> Result<PacketSummary, ParseError> {
    let ip = Ipv4Packet::new_checked(slice(buf, l3, buf.len()))?;
    if !ip.verify_checksum() {
        return Err(ParseError::BadIpv4Checksum);
    }
    if ip.is_fragment() {
        return Err(ParseError::Fragment);
    }
    let mut summary = PacketSummary {
        eth,
        l3_offset: l3,
        l4_offset: l3 + ip.header_len(),
        end: l3 + usize::from(ip.total_len()),
        family: Family::V4,
        protocol: ip.protocol(),
        src: IpAddr::V4(ip.src()),
        dst: IpAddr::V4(ip.dst()),
        src_port: 0,
        dst_port: 0,
        ttl: ip.ttl(),
        tos: ip.tos(),
        dont_fragment: ip.dont_fragment(),
        tcp_flags: None,
        icmp: None,
    };
    parse_l4(buf, &mut summary)?;
    Ok(summary)
}

fn parse_ipv6(buf: &[u8], l3: usize, eth: Option<EthernetInfo>) -> Result<PacketSummary, ParseError> {
    let ip = Ipv6Packet::new_checked(slice(buf, l3, buf.len()))?;
    let upper = ip.upper_layer()?;
    if upper.fragment.is_some_and(|f| !f.is_atomic()) {
        return Err(ParseError::Fragment);
    }
    let mut summary = PacketSummary {
        eth,
        l3_offset: l3,
        l4_offset: l3 + upper.offset,
        end: l3 + crate::ipv6::HEADER_LEN + usize::from(ip.payload_len()),
        family: Family::V6,
        protocol: upper.protocol,
        src: IpAddr::V6(ip.src()),
        dst: IpAddr::V6(ip.dst()),
        src_port: 0,
        dst_port: 0,
        ttl: ip.hop_limit(),
        tos: ip.traffic_class(),
        dont_fragment: true,
        tcp_flags: None,
        icmp: None,
    };
    parse_l4(buf, &mut summary)?;
    Ok(summary)
}

/// Fills ports, TCP flags and ICMP details from the L4 header.
fn parse_l4(buf: &[u8], summary: &mut PacketSummary) -> Result<(), ParseError> {
    let l4 = slice(buf, summary.l4_offset, summary.end);
    match (summary.protocol, summary.family) {
        (protocol::TCP, _) => {
            let tcp = TcpPacket::new_checked(l4)?;
            summary.src_port = tcp.src_port();
            summary.dst_port = tcp.dst_port();
            summary.tcp_flags = Some(tcp.flags());
        }
        (protocol::UDP, _) => {
            let udp = UdpPacket::new_checked(l4)?;
            summary.src_port = udp.src_port();
            summary.dst_port = udp.dst_port();
        }
        (protocol::SCTP, _) => {
            if l4.len() < SCTP_HEADER_LEN {
                return Err(ParseError::Truncated);
            }
            summary.src_port = u16_at(l4, 0);
            summary.dst_port = u16_at(l4, 2);
        }
        (protocol::ICMP, Family::V4) | (protocol::ICMPV6, Family::V6) => {
            let message = IcmpPacket::new_checked(l4)?;
            let msg_type = message.msg_type();
            let quoted = if icmp::is_translated_error(summary.family, msg_type) {
                Some(icmp::parse_quoted(l4, summary.family)?)
            } else {
                None
            };
            summary.icmp = Some(IcmpInfo { msg_type, code: message.code(), quoted });
        }
        _ => {}
    }
    Ok(())
}
