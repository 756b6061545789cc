//! IP-in-IP tunnels for the TUN forwarding method: encapsulation of an IPv4 or
//! IPv6 packet in an outer IPv4 or IPv6 header (4in4 "IPIP", 6in6, 4in6, 6in4;
//! outer protocol 4 or 41), written into the headroom before the packet so
//! nothing is copied; the ICMP reply owed to the client when the result would
//! exceed the MTU (pmtu_disc); and decapsulation for the real-server side.
//!
//! Outer header rules, as IPVS tunnels do: TTL/hop limit copied from the inner
//! packet unless set, DSCP copied, ECN per RFC 6040 normal mode, DF copied from an
//! inner IPv4 packet (set for inner IPv6, which must not be fragmented on path).

use core::net::IpAddr;

use crate::error::{BuildError, ParseError};
use crate::field::{slice, slice_mut, u8_at};
use crate::icmp;
use crate::ip::{self, Family, protocol};
use crate::ipv4::{self, Ipv4Packet};
use crate::ipv6::{self, Ipv6Packet};

/// Where a tunnel goes and how its outer header is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelParams {
    /// Outer source (the director).
    pub src: IpAddr,
    /// Outer destination (the real server).
    pub dst: IpAddr,
    /// Outer TTL / hop limit; `None` copies the inner one.
    pub ttl: Option<u8>,
    /// Identification of an outer IPv4 header.
    pub ident: u16,
    /// Flow label of an outer IPv6 header (low 20 bits).
    pub flow_label: u32,
    /// Largest outer packet allowed (the path MTU to the real server).
    pub mtu: usize,
}

/// Where the encapsulated packet is in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encapsulated {
    /// Offset of the outer IP header.
    pub start: usize,
    /// Length of the outer packet.
    pub len: usize,
}

/// Bytes the outer header of a tunnel of this outer family adds.
#[must_use]
pub const fn overhead(outer: Family) -> usize {
    match outer {
        Family::V4 => ipv4::MIN_HEADER_LEN,
        Family::V6 => ipv6::HEADER_LEN,
    }
}

/// The fields of an inner packet the outer header depends on.
struct Inner {
    family: Family,
    len: usize,
    tos: u8,
    ttl: u8,
    dont_fragment: bool,
}

fn inspect_inner(packet: &[u8]) -> Result<Inner, ParseError> {
    match u8_at(packet, 0) >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet)?;
            Ok(Inner {
                family: Family::V4,
                len: usize::from(ip.total_len()),
                tos: ip.tos(),
                ttl: ip.ttl(),
                dont_fragment: ip.dont_fragment(),
            })
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet)?;
            Ok(Inner {
                family: Family::V6,
                len: ipv6::HEADER_LEN + usize::from(ip.payload_len()),
                tos: ip.traffic_class(),
                ttl: ip.hop_limit(),
                dont_fragment: true,
            })
        }
        _ => Err(ParseError::BadVersion),
    }
}

/// Encapsulates the IP packet at `buf[inner_start..inner_start + inner_len]` by
/// writing the outer header into the `inner_start` bytes of headroom before it.
/// Trailing bytes beyond the inner packet's own length (padding) are left out.
///
/// # Errors
/// [`BuildError::TooBig`] if the outer packet would exceed `params.mtu` (answer
/// with [`build_too_big_reply`] when `dont_fragment`), [`BuildError::BufferTooSmall`]
/// without enough headroom, [`BuildError::FamilyMismatch`] if the tunnel
/// endpoints differ in family, [`BuildError::Invalid`] for a bad inner packet.
pub fn encapsulate(
    buf: &mut [u8],
    inner_start: usize,
    inner_len: usize,
    params: &TunnelParams,
) -> Result<Encapsulated, BuildError> {
    let outer_family = match (params.src, params.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => Family::V4,
        (IpAddr::V6(_), IpAddr::V6(_)) => Family::V6,
        _ => return Err(BuildError::FamilyMismatch),
    };
    let inner_end = inner_start.checked_add(inner_len).ok_or(BuildError::BufferTooSmall)?;
    let inner = inspect_inner(slice(buf, inner_start, inner_end))?;
    let extra = overhead(outer_family);
    let outer_len = extra + inner.len;
    if outer_len > params.mtu {
        return Err(BuildError::TooBig {
            inner_mtu: params.mtu.saturating_sub(extra),
            dont_fragment: inner.dont_fragment,
        });
    }
    let start = inner_start.checked_sub(extra).ok_or(BuildError::BufferTooSmall)?;
    let inner_proto = match inner.family {
        Family::V4 => protocol::IPIP,
        Family::V6 => protocol::IPV6,
    };
    let tos = ip::encapsulated_tos(inner.tos);
    let ttl = params.ttl.unwrap_or(inner.ttl);
    let header = slice_mut(buf, start, inner_start);
    match (params.src, params.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let total_len = u16::try_from(outer_len).map_err(|_| too_big(65_535, extra, &inner))?;
            let fields = ipv4::Ipv4HeaderFields {
                src,
                dst,
                protocol: inner_proto,
                ttl,
                tos,
                ident: params.ident,
                dont_fragment: inner.dont_fragment,
                total_len,
            };
            ipv4::write_header(header, &fields);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let payload_len = u16::try_from(inner.len).map_err(|_| too_big(65_535 + extra, extra, &inner))?;
            let fields = ipv6::Ipv6HeaderFields {
                src,
                dst,
                next_header: inner_proto,
                hop_limit: ttl,
                traffic_class: tos,
                flow_label: params.flow_label,
                payload_len,
            };
            ipv6::write_header(header, &fields);
        }
        _ => return Err(BuildError::FamilyMismatch),
    }
    Ok(Encapsulated { start, len: outer_len })
}

fn too_big(limit: usize, extra: usize, inner: &Inner) -> BuildError {
    BuildError::TooBig { inner_mtu: limit.saturating_sub(extra), dont_fragment: inner.dont_fragment }
}

/// Writes at the start of `out` the ICMP error telling the sender of `inner`
/// (the client's packet, IP header first) that at most `inner_mtu` bytes fit:
/// ICMPv4 fragmentation-needed for IPv4 (only if DF is set), ICMPv6 packet-too-big
/// for IPv6. The error is sent from the packet's destination (the VIP). Returns
/// the IP packet length written.
///
/// # Errors
/// [`BuildError::NotAllowed`] for an IPv4 packet without DF (it may be fragmented
/// instead) or one no ICMP error may be sent about; [`BuildError::BufferTooSmall`];
/// [`BuildError::Invalid`].
pub fn build_too_big_reply(out: &mut [u8], inner: &[u8], inner_mtu: usize) -> Result<usize, BuildError> {
    match u8_at(inner, 0) >> 4 {
        4 => {
            let ip = Ipv4Packet::new_header_checked(inner)?;
            if !ip.dont_fragment() {
                return Err(BuildError::NotAllowed);
            }
            let mtu = u16::try_from(inner_mtu).unwrap_or(u16::MAX);
            icmp::build_frag_needed(out, ip.dst(), inner, mtu)
        }
        6 => {
            let ip = Ipv6Packet::new_header_checked(inner)?;
            let mtu = u32::try_from(inner_mtu).unwrap_or(u32::MAX);
            icmp::build_packet_too_big(out, ip.dst(), inner, mtu)
        }
        _ => Err(BuildError::Invalid(ParseError::BadVersion)),
    }
}

/// What [`decapsulate`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated {
    /// Outer source (the director).
    pub outer_src: IpAddr,
    /// Outer destination (this real server).
    pub outer_dst: IpAddr,
    /// Family of the inner packet.
    pub inner_family: Family,
    /// Offset of the inner IP header in the buffer.
    pub inner_start: usize,
    /// Length of the inner packet.
    pub inner_len: usize,
}

/// Decapsulates the tunnel packet at `buf[start..start + len]` (outer IP header
/// first) in place: checks the outer and inner headers and applies RFC 6040
/// decapsulation ECN rules to the inner header (outer CE is copied to an
/// ECN-capable inner packet, fixing its IPv4 checksum).
///
/// # Errors
/// [`ParseError::NotTunnel`] if the outer protocol is not 4/41 (or does not match
/// the inner version: [`ParseError::BadVersion`]), [`ParseError::EcnNotEct`] (drop),
/// the outer/inner header errors of [`crate::parse_ip`], including
/// [`ParseError::Fragment`] for a fragmented outer packet.
pub fn decapsulate(buf: &mut [u8], start: usize, len: usize) -> Result<Decapsulated, ParseError> {
    let end = start.checked_add(len).ok_or(ParseError::Truncated)?;
    let packet = buf.get_mut(start..end).ok_or(ParseError::Truncated)?;
    let (outer_src, outer_dst, outer_ecn, proto, inner_rel, outer_end) = match u8_at(packet, 0) >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(&*packet)?;
            if !ip.verify_checksum() {
                return Err(ParseError::BadIpv4Checksum);
            }
            if ip.is_fragment() {
                return Err(ParseError::Fragment);
            }
            let src = IpAddr::V4(ip.src());
            (src, IpAddr::V4(ip.dst()), ip.ecn(), ip.protocol(), ip.header_len(), usize::from(ip.total_len()))
        }
        6 => {
            let ip = Ipv6Packet::new_checked(&*packet)?;
            let upper = ip.upper_layer()?;
            if upper.fragment.is_some_and(|f| !f.is_atomic()) {
                return Err(ParseError::Fragment);
            }
            let outer_end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
            (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()), ip.ecn(), upper.protocol, upper.offset, outer_end)
        }
        _ => return Err(ParseError::BadVersion),
    };
    let inner_family = match proto {
        protocol::IPIP => Family::V4,
        protocol::IPV6 => Family::V6,
        _ => return Err(ParseError::NotTunnel),
    };
    let inner_buf = slice_mut(packet, inner_rel, outer_end);
    let inner_len = match inner_family {
        Family::V4 => {
            let mut ip = Ipv4Packet::new_checked(&mut *inner_buf)?;
            let ecn = ip::decapsulated_ecn(ip.ecn(), outer_ecn).ok_or(ParseError::EcnNotEct)?;
            if ecn != ip.ecn() {
                let tos = (ip.tos() & !ip::ecn::MASK) | ecn;
                ip.set_tos(tos);
            }
            usize::from(ip.total_len())
        }
        Family::V6 => {
            let mut ip = Ipv6Packet::new_checked(&mut *inner_buf)?;
            let ecn = ip::decapsulated_ecn(ip.ecn(), outer_ecn).ok_or(ParseError::EcnNotEct)?;
            if ecn != ip.ecn() {
                let tc = (ip.traffic_class() & !ip::ecn::MASK) | ecn;
                ip.set_traffic_class(tc);
            }
            ipv6::HEADER_LEN + usize::from(ip.payload_len())
        }
    };
    Ok(Decapsulated { outer_src, outer_dst, inner_family, inner_start: start + inner_rel, inner_len })
}
