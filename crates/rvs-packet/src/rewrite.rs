//! In-place rewrites of a parsed frame for the forwarding methods, each fixing
//! the checksums it touches incrementally (RFC 1624): MAC addresses (DR), DNAT
//! and SNAT of TCP/UDP flows (NAT), TTL/hop-limit decrement, and the translation
//! of an ICMP error that quotes a NATed connection (what IPVS's `ip_vs_nat_icmp`
//! does: the outer address and the quoted packet's address and port change, and
//! the quoted IPv4 header checksum, the quoted L4 checksum where it is quoted,
//! and the ICMP checksum are kept right).
//!
//! Every function takes the frame and the [`PacketSummary`] that [`crate::parse`]
//! returned for it; a refused rewrite leaves the frame unchanged.

use core::net::IpAddr;

use crate::checksum;
use crate::error::RewriteError;
use crate::ethernet::{self, MacAddr};
use crate::field::{set_bytes, slice, u16_at};
use crate::icmp::{self, QuotedFlow};
use crate::ip::{Family, protocol};
use crate::ipv4::Ipv4Packet;
use crate::ipv6::Ipv6Packet;
use crate::parse::PacketSummary;
use crate::{tcp, udp};

/// Sets the destination MAC (the real server's, for direct routing).
pub fn set_dst_mac(frame: &mut [u8], mac: MacAddr) {
    ethernet::set_dst_mac(frame, mac);
}

/// Sets the source MAC (the director's outgoing interface).
pub fn set_src_mac(frame: &mut [u8], mac: MacAddr) {
    ethernet::set_src_mac(frame, mac);
}

/// Which end of a flow a translation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Src,
    Dst,
}

impl End {
    const fn other(self) -> Self {
        match self {
            Self::Src => Self::Dst,
            Self::Dst => Self::Src,
        }
    }
}

/// An IP address as the bytes that appear on the wire.
#[derive(Debug, Clone, Copy)]
enum AddrBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl AddrBytes {
    fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => Self::V4(a.octets()),
            IpAddr::V6(a) => Self::V6(a.octets()),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Self::V4(b) => b,
            Self::V6(b) => b,
        }
    }

    const fn family(&self) -> Family {
        match self {
            Self::V4(_) => Family::V4,
            Self::V6(_) => Family::V6,
        }
    }
}

/// Offset of the source (or destination) address within an IP header.
const fn addr_offset(family: Family, end: End) -> usize {
    match (family, end) {
        (Family::V4, End::Src) => 12,
        (Family::V4, End::Dst) => 16,
        (Family::V6, End::Src) => 8,
        (Family::V6, End::Dst) => 24,
    }
}

/// Offset of the source (or destination) port within a TCP/UDP header.
const fn port_offset(end: End) -> usize {
    match end {
        End::Src => 0,
        End::Dst => 2,
    }
}

/// Changes the destination address and port of a TCP or UDP packet (NAT ingress:
/// VIP:vport -> RIP:rport), updating the IPv4 header checksum and the TCP/UDP
/// checksum incrementally. A zero ("not computed") UDP checksum stays zero.
///
/// # Errors
/// [`RewriteError::FamilyMismatch`], [`RewriteError::UnsupportedProtocol`] (not
/// TCP/UDP, including ICMP errors: see [`dnat_icmp_error`]), [`RewriteError::NotIp`],
/// [`RewriteError::SummaryMismatch`].
pub fn dnat(frame: &mut [u8], summary: &PacketSummary, addr: IpAddr, port: u16) -> Result<(), RewriteError> {
    translate_flow(frame, summary, End::Dst, addr, port)
}

/// Changes the source address and port of a TCP or UDP packet (NAT egress:
/// RIP:rport -> VIP:vport). See [`dnat`].
///
/// # Errors
/// As [`dnat`].
pub fn snat(frame: &mut [u8], summary: &PacketSummary, addr: IpAddr, port: u16) -> Result<(), RewriteError> {
    translate_flow(frame, summary, End::Src, addr, port)
}

/// Translates an ICMP error travelling towards a real server (it arrived for the
/// VIP and quotes a packet the VIP sent): the outer destination becomes `addr`,
/// and the quoted packet's source address and port become `addr` and `port`
/// (the real server's), like IPVS does for ICMP errors on the way in.
///
/// # Errors
/// [`RewriteError::NotIcmpError`], [`RewriteError::FamilyMismatch`],
/// [`RewriteError::UnsupportedProtocol`] (quoted flow not TCP/UDP),
/// [`RewriteError::SummaryMismatch`].
pub fn dnat_icmp_error(frame: &mut [u8], summary: &PacketSummary, addr: IpAddr, port: u16) -> Result<(), RewriteError> {
    translate_icmp_error(frame, summary, End::Dst, addr, port)
}

/// Translates an ICMP error from a real server towards a client (it quotes a
/// packet the client sent to the real server): the outer source becomes `addr`
/// and the quoted packet's destination address and port become `addr` and `port`
/// (the VIP's). See [`dnat_icmp_error`].
///
/// # Errors
/// As [`dnat_icmp_error`].
pub fn snat_icmp_error(frame: &mut [u8], summary: &PacketSummary, addr: IpAddr, port: u16) -> Result<(), RewriteError> {
    translate_icmp_error(frame, summary, End::Src, addr, port)
}

/// Decrements the IPv4 TTL (updating the header checksum) or the IPv6 hop limit
/// and returns the new value.
///
/// # Errors
/// [`RewriteError::TtlExceeded`] if it is 0 or 1 (the packet must not be
/// forwarded; an ICMP time-exceeded may be sent), [`RewriteError::SummaryMismatch`].
pub fn decrement_ttl(frame: &mut [u8], summary: &PacketSummary) -> Result<u8, RewriteError> {
    let ip = ip_slice(frame, summary)?;
    match summary.family {
        Family::V4 => {
            let mut packet = Ipv4Packet::new_unchecked(ip);
            let ttl = packet.ttl();
            if ttl <= 1 {
                return Err(RewriteError::TtlExceeded);
            }
            packet.set_ttl(ttl - 1);
            Ok(ttl - 1)
        }
        Family::V6 => {
            let mut packet = Ipv6Packet::new_unchecked(ip);
            let hops = packet.hop_limit();
            if hops <= 1 {
                return Err(RewriteError::TtlExceeded);
            }
            packet.set_hop_limit(hops - 1);
            Ok(hops - 1)
        }
    }
}

/// The IP packet of the frame, after checking the summary fits the buffer.
fn ip_slice<'a>(frame: &'a mut [u8], summary: &PacketSummary) -> Result<&'a mut [u8], RewriteError> {
    let fits = summary.l3_offset <= summary.l4_offset && summary.l4_offset <= summary.end;
    let header_len = match summary.family {
        Family::V4 => crate::ipv4::MIN_HEADER_LEN,
        Family::V6 => crate::ipv6::HEADER_LEN,
    };
    if !fits || summary.end > frame.len() || summary.l4_offset < summary.l3_offset.saturating_add(header_len) {
        return Err(RewriteError::SummaryMismatch);
    }
    frame.get_mut(summary.l3_offset..summary.end).ok_or(RewriteError::SummaryMismatch)
}

/// Offset of the L4 checksum for TCP/UDP, relative to the L4 header.
const fn l4_checksum_offset(proto: u8) -> Option<usize> {
    match proto {
        protocol::TCP => Some(tcp::CHECKSUM_OFFSET),
        protocol::UDP => Some(udp::CHECKSUM_OFFSET),
        _ => None,
    }
}

fn translate_flow(
    frame: &mut [u8],
    summary: &PacketSummary,
    end: End,
    addr: IpAddr,
    port: u16,
) -> Result<(), RewriteError> {
    let new_addr = AddrBytes::of(addr);
    if new_addr.family() != summary.family {
        return Err(RewriteError::FamilyMismatch);
    }
    let Some(csum_at) = l4_checksum_offset(summary.protocol) else {
        return Err(RewriteError::UnsupportedProtocol);
    };
    let ip = ip_slice(frame, summary)?;
    let l4 = summary.l4_offset - summary.l3_offset;
    let header_len = if summary.protocol == protocol::TCP { tcp::MIN_HEADER_LEN } else { udp::HEADER_LEN };
    if ip.len() < l4 + header_len {
        return Err(RewriteError::SummaryMismatch);
    }
    // The L4 checksum covers the pseudo-header address and the port.
    let addr_at = addr_offset(summary.family, end);
    let port_at = l4 + port_offset(end);
    let mut l4_sum = Patcher::new(u16_at(ip, l4 + csum_at), l4);
    // A zero UDP checksum means "not computed" (always allowed over IPv4, and for
    // some tunnels over IPv6, RFC 6936): keep it zero rather than invent one.
    let skip_l4_sum = summary.protocol == protocol::UDP && l4_sum.sum == 0;
    l4_sum.account(&FieldCopy::read(ip, addr_at, new_addr.as_slice().len()), new_addr.as_slice());
    l4_sum.replace(ip, port_at, &port.to_be_bytes());
    set_ip_addr(ip, summary.family, end, &new_addr);
    if !skip_l4_sum {
        let sum = l4_sum.result(summary.protocol);
        set_bytes(ip, l4 + csum_at, &sum.to_be_bytes());
    }
    Ok(())
}

/// Writes an address into the IP header at the start of `ip`, updating the IPv4
/// header checksum.
fn set_ip_addr(ip: &mut [u8], family: Family, end: End, addr: &AddrBytes) {
    match (family, addr) {
        (Family::V4, AddrBytes::V4(a)) => {
            let mut packet = Ipv4Packet::new_unchecked(ip);
            let a = core::net::Ipv4Addr::from(*a);
            match end {
                End::Src => packet.set_src(a),
                End::Dst => packet.set_dst(a),
            }
        }
        (Family::V6, AddrBytes::V6(a)) => {
            set_bytes(ip, addr_offset(Family::V6, end), a);
        }
        _ => {}
    }
}

fn translate_icmp_error(
    frame: &mut [u8],
    summary: &PacketSummary,
    end: End,
    addr: IpAddr,
    port: u16,
) -> Result<(), RewriteError> {
    let Some(quoted) = summary.quoted_flow().copied() else {
        return Err(RewriteError::NotIcmpError);
    };
    let new_addr = AddrBytes::of(addr);
    if new_addr.family() != summary.family {
        return Err(RewriteError::FamilyMismatch);
    }
    if !matches!(quoted.protocol, protocol::TCP | protocol::UDP) {
        return Err(RewriteError::UnsupportedProtocol);
    }
    let ip = ip_slice(frame, summary)?;
    let icmp_at = summary.l4_offset - summary.l3_offset;
    let quote_end = icmp_at.saturating_add(quoted.l4_offset).saturating_add(icmp::QUOTED_L4_LEN);
    if ip.len() < quote_end || quoted.ip_offset > quoted.l4_offset {
        return Err(RewriteError::SummaryMismatch);
    }
    let (outer_header, message) = ip.split_at_mut(icmp_at);
    let mut icmp_sum = Patcher::new(u16_at(message, icmp::CHECKSUM_OFFSET), 0);

    // The outer address; for ICMPv6 it is part of the pseudo-header.
    if summary.family == Family::V6 {
        let at = addr_offset(Family::V6, end);
        icmp_sum.account(&FieldCopy::read(outer_header, at, 16), new_addr.as_slice());
    }
    set_ip_addr(outer_header, summary.family, end, &new_addr);

    // The quoted packet travelled the other way: its other end is the one to change.
    translate_quoted(message, &quoted, end.other(), &new_addr, port, &mut icmp_sum);
    let sum = icmp_sum.result(protocol::ICMP);
    set_bytes(message, icmp::CHECKSUM_OFFSET, &sum.to_be_bytes());
    Ok(())
}

/// Rewrites address and port at `end` of the packet quoted in `message` (an ICMP
/// message), keeping the quoted IPv4 header checksum and, when quoted, the quoted
/// TCP/UDP checksum right, and accounting every change in `icmp_sum`.
fn translate_quoted(
    message: &mut [u8],
    quoted: &QuotedFlow,
    end: End,
    new_addr: &AddrBytes,
    port: u16,
    icmp_sum: &mut Patcher,
) {
    let family = new_addr.family();
    let ip_at = quoted.ip_offset;
    let l4_at = quoted.l4_offset;
    let addr_at = ip_at + addr_offset(family, end);
    let old_addr = FieldCopy::read(message, addr_at, new_addr.as_slice().len());

    // Quoted L4 checksum: pseudo-header address + port, if the field is quoted.
    let csum_at = l4_checksum_offset(quoted.protocol).map(|o| l4_at + o).filter(|&at| at + 2 <= message.len());
    let mut inner_l4 = csum_at.map(|at| Patcher::new(u16_at(message, at), 0));
    let keep_zero = quoted.protocol == protocol::UDP;
    if let Some(p) = inner_l4.as_mut() {
        p.account(&old_addr, new_addr.as_slice());
        p.account(&u16_at(message, l4_at + port_offset(end)).to_be_bytes(), &port.to_be_bytes());
    }

    // Quoted IPv4 header checksum.
    if family == Family::V4 {
        let mut header_sum = Patcher::new(u16_at(message, ip_at + 10), 0);
        header_sum.account(&old_addr, new_addr.as_slice());
        icmp_sum.replace(message, ip_at + 10, &header_sum.sum.to_be_bytes());
    }
    icmp_sum.replace(message, addr_at, new_addr.as_slice());
    icmp_sum.replace(message, l4_at + port_offset(end), &port.to_be_bytes());
    if let (Some(at), Some(p)) = (csum_at, inner_l4) {
        let old = u16_at(message, at);
        if !(keep_zero && old == 0) {
            icmp_sum.replace(message, at, &p.result(quoted.protocol).to_be_bytes());
        }
    }
}

/// Accumulates RFC 1624 updates of one checksum while bytes it covers change.
#[derive(Debug, Clone, Copy)]
struct Patcher {
    sum: u16,
    /// Offset (in the buffers given to `replace`) where the checksummed region starts.
    base: usize,
}

impl Patcher {
    const fn new(sum: u16, base: usize) -> Self {
        Self { sum, base }
    }

    /// Accounts for `old` (at an even offset of the covered region) becoming `new`.
    fn account(&mut self, old: &[u8], new: &[u8]) {
        self.sum = checksum::update_bytes(self.sum, old, new);
    }

    /// Writes `new` at `at` in `buf` and accounts for it. A field at an odd offset
    /// from `base` is handled by padding with a leading zero byte.
    fn replace(&mut self, buf: &mut [u8], at: usize, new: &[u8]) {
        let old = FieldCopy::read(buf, at, new.len());
        if old.len() != new.len() {
            return;
        }
        let old: &[u8] = &old;
        if at.saturating_sub(self.base).is_multiple_of(2) {
            self.account(old, new);
        } else {
            let mut old_padded = [0u8; 18];
            let mut new_padded = [0u8; 18];
            let len = new.len().min(16);
            if let (Some(o), Some(n), Some(os), Some(ns)) =
                (old_padded.get_mut(1..=len), new_padded.get_mut(1..=len), old.get(..len), new.get(..len))
            {
                o.copy_from_slice(os);
                n.copy_from_slice(ns);
            }
            let padded = (len + 2) & !1;
            self.account(slice(&old_padded, 0, padded), slice(&new_padded, 0, padded));
        }
        set_bytes(buf, at, new);
    }

    /// The final checksum; UDP sends a computed zero as 0xFFFF (RFC 768).
    fn result(&self, proto: u8) -> u16 {
        if proto == protocol::UDP && self.sum == 0 { 0xffff } else { self.sum }
    }
}

/// Up to 16 bytes copied out of a buffer, so a field can be read before it is
/// overwritten without holding a borrow of the buffer.
#[derive(Debug, Clone, Copy)]
struct FieldCopy {
    bytes: [u8; 16],
    len: usize,
}

impl FieldCopy {
    /// Copies `buf[at..at + len]` (`len` at most 16); shorter if the buffer ends first.
    fn read(buf: &[u8], at: usize, len: usize) -> Self {
        let mut bytes = [0u8; 16];
        let src = slice(buf, at, at.saturating_add(len.min(16)));
        for (dst, byte) in bytes.iter_mut().zip(src) {
            *dst = *byte;
        }
        Self { bytes, len: src.len() }
    }
}

impl core::ops::Deref for FieldCopy {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}
