//! ARP for IPv4 over Ethernet (RFC 826): parsing requests/replies and building a
//! reply or a gratuitous ARP (used when a director takes over a VIP).

use core::net::Ipv4Addr;

use crate::error::{BuildError, ParseError};
use crate::ethernet::{self, MacAddr, ethertype};
use crate::field::{array_at, set_bytes, set_u16, u8_at, u16_at};

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Length of a full untagged ARP frame (Ethernet header + ARP packet, unpadded).
pub const FRAME_LEN: usize = ethernet::HEADER_LEN + PACKET_LEN;

/// ARP operation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOp {
    /// Who has `target_ip`? (1)
    Request,
    /// `sender_ip` is at `sender_mac`. (2)
    Reply,
}

impl ArpOp {
    const fn code(self) -> u16 {
        match self {
            Self::Request => 1,
            Self::Reply => 2,
        }
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpPacket {
    /// Request or reply.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// Whether this is a gratuitous ARP (sender and target IP equal).
    #[must_use]
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

/// Parses an ARP packet (the L3 payload of an ARP frame). Trailing Ethernet
/// padding is ignored.
///
/// # Errors
/// [`ParseError::Truncated`] below 28 bytes; [`ParseError::UnsupportedArp`] for
/// hardware/protocol types other than Ethernet/IPv4 or an unknown operation.
pub fn parse(packet: &[u8]) -> Result<ArpPacket, ParseError> {
    if packet.len() < PACKET_LEN {
        return Err(ParseError::Truncated);
    }
    let htype = u16_at(packet, 0);
    let ptype = u16_at(packet, 2);
    let (hlen, plen) = (u8_at(packet, 4), u8_at(packet, 5));
    if htype != 1 || ptype != ethertype::IPV4 || hlen != 6 || plen != 4 {
        return Err(ParseError::UnsupportedArp);
    }
    let op = match u16_at(packet, 6) {
        1 => ArpOp::Request,
        2 => ArpOp::Reply,
        _ => return Err(ParseError::UnsupportedArp),
    };
    Ok(ArpPacket {
        op,
        sender_mac: MacAddr(array_at(packet, 8)),
        sender_ip: Ipv4Addr::from(array_at::<4>(packet, 14)),
        target_mac: MacAddr(array_at(packet, 18)),
        target_ip: Ipv4Addr::from(array_at::<4>(packet, 24)),
    })
}

/// Writes a 28-byte ARP packet at the start of `buf`.
///
/// # Errors
/// [`BuildError::BufferTooSmall`] if `buf` is shorter than 28 bytes.
pub fn write_packet(buf: &mut [u8], arp: &ArpPacket) -> Result<usize, BuildError> {
    if buf.len() < PACKET_LEN {
        return Err(BuildError::BufferTooSmall);
    }
    set_u16(buf, 0, 1);
    set_u16(buf, 2, ethertype::IPV4);
    set_bytes(buf, 4, &[6, 4]);
    set_u16(buf, 6, arp.op.code());
    set_bytes(buf, 8, &arp.sender_mac.0);
    set_bytes(buf, 14, &arp.sender_ip.octets());
    set_bytes(buf, 18, &arp.target_mac.0);
    set_bytes(buf, 24, &arp.target_ip.octets());
    Ok(PACKET_LEN)
}

/// Writes an untagged Ethernet frame answering `request` with "`request.target_ip`
/// is at `our_mac`" and returns its length (42).
///
/// # Errors
/// [`BuildError::BufferTooSmall`] if `buf` is shorter than 42 bytes.
pub fn build_reply(buf: &mut [u8], request: &ArpPacket, our_mac: MacAddr) -> Result<usize, BuildError> {
    let reply = ArpPacket {
        op: ArpOp::Reply,
        sender_mac: our_mac,
        sender_ip: request.target_ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    };
    write_frame(buf, request.sender_mac, our_mac, &reply)
}

/// Writes an untagged broadcast gratuitous ARP request announcing `ip` at `mac`
/// (sender and target IP both `ip`, target MAC zero) and returns its length (42).
///
/// # Errors
/// [`BuildError::BufferTooSmall`] if `buf` is shorter than 42 bytes.
pub fn build_gratuitous(buf: &mut [u8], mac: MacAddr, ip: Ipv4Addr) -> Result<usize, BuildError> {
    let announce =
        ArpPacket { op: ArpOp::Request, sender_mac: mac, sender_ip: ip, target_mac: MacAddr::ZERO, target_ip: ip };
    write_frame(buf, MacAddr::BROADCAST, mac, &announce)
}

fn write_frame(buf: &mut [u8], dst: MacAddr, src: MacAddr, arp: &ArpPacket) -> Result<usize, BuildError> {
    if buf.len() < FRAME_LEN {
        return Err(BuildError::BufferTooSmall);
    }
    let l2 = ethernet::write_header(buf, dst, src, &[], ethertype::ARP)?;
    let l3 = write_packet(buf.get_mut(l2..).unwrap_or(&mut []), arp)?;
    Ok(l2 + l3)
}
