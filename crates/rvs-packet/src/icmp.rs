//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443): a typed view of the message, the flow
//! quoted inside an error (inner IP header + the first 8 bytes of L4), and
//! builders for the errors a director sends itself: destination unreachable /
//! fragmentation needed with the next-hop MTU (RFC 1191) and packet too big
//! (RFC 8201).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::error::{BuildError, ParseError};
use crate::field::{set_bytes, set_u8, set_u16, set_u32, slice, slice_mut, u8_at, u16_at, u32_at};
use crate::ip::{Family, protocol};
use crate::ipv4::{self, Ipv4Packet};
use crate::ipv6::{self, Ipv6Packet};

/// Length of the ICMP header (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 2;
/// Bytes of L4 header an error quotes at least (RFC 792).
pub const QUOTED_L4_LEN: usize = 8;
/// Largest ICMPv4 error this crate builds (RFC 1812 §4.3.2.3).
pub const MAX_ICMPV4_ERROR_LEN: usize = 576;

/// ICMPv4 message types.
pub mod v4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated, still translated like IPVS does).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
    /// Destination unreachable code: port unreachable.
    pub const CODE_PORT_UNREACHABLE: u8 = 3;
    /// Destination unreachable code: fragmentation needed and DF set.
    pub const CODE_FRAG_NEEDED: u8 = 4;
}

/// ICMPv6 message types.
pub mod v6 {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Destination unreachable code: port unreachable.
    pub const CODE_PORT_UNREACHABLE: u8 = 4;
}

/// Whether an ICMP message of this family and type is an error that quotes the
/// packet that caused it and is translated for a connection, as IPVS does
/// (ICMPv4 destination unreachable, source quench, time exceeded; ICMPv6
/// destination unreachable, packet too big, time exceeded).
#[must_use]
pub const fn is_translated_error(family: Family, msg_type: u8) -> bool {
    match family {
        Family::V4 => matches!(msg_type, v4::DEST_UNREACHABLE | v4::SOURCE_QUENCH | v4::TIME_EXCEEDED),
        Family::V6 => matches!(msg_type, v6::DEST_UNREACHABLE | v6::PACKET_TOO_BIG | v6::TIME_EXCEEDED),
    }
}

/// Whether an ICMP message of this family and type is any error message (one an
/// ICMP error must never be sent about).
#[must_use]
pub const fn is_error(family: Family, msg_type: u8) -> bool {
    match family {
        Family::V4 => matches!(msg_type, 3 | 4 | 5 | 11 | 12),
        Family::V6 => msg_type < 128,
    }
}

/// A view of an ICMP (v4 or v6) message in `buf`, starting at the ICMP header.
#[derive(Debug, Clone, Copy)]
pub struct IcmpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps `buf` without checks.
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Wraps `buf` after checking the 8-byte header fits.
    ///
    /// # Errors
    /// [`ParseError::Truncated`].
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(Self { buf })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        u8_at(self.bytes(), 0)
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        u8_at(self.bytes(), 1)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16_at(self.bytes(), CHECKSUM_OFFSET)
    }

    /// The four type-specific header bytes as a u32 (echo id/sequence, MTU ...).
    pub fn rest_of_header(&self) -> u32 {
        u32_at(self.bytes(), 4)
    }

    /// Next-hop MTU of an ICMPv4 fragmentation-needed message (RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        u16_at(self.bytes(), 6)
    }

    /// The message body after the 8-byte header (the quoted packet of an error).
    pub fn payload(&self) -> &[u8] {
        slice(self.bytes(), HEADER_LEN, self.bytes().len())
    }

    /// Whether an ICMPv4 checksum (no pseudo-header) verifies.
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::verify(self.bytes())
    }

    /// Whether an ICMPv6 checksum verifies against the pseudo-header sum `pseudo`.
    pub fn verify_checksum_v6(&self, pseudo: u64) -> bool {
        checksum::verify_with_pseudo_header(pseudo, self.bytes())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buf.as_mut(), CHECKSUM_OFFSET, value);
    }

    /// Recomputes an ICMPv4 checksum over the whole message.
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let sum = checksum::checksum(self.bytes());
        self.set_checksum(sum);
    }

    /// Recomputes an ICMPv6 checksum with the pseudo-header sum `pseudo`.
    pub fn fill_checksum_v6(&mut self, pseudo: u64) {
        self.set_checksum(0);
        let sum = checksum::with_pseudo_header(pseudo, self.bytes());
        self.set_checksum(sum);
    }
}

/// The flow of the packet quoted in an ICMP error, as that packet was sent (so for
/// an error about a reply, `src` is the server side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotedFlow {
    /// Upper-layer protocol of the quoted packet.
    pub protocol: u8,
    /// Quoted source address.
    pub src: IpAddr,
    /// Quoted destination address.
    pub dst: IpAddr,
    /// Quoted source port (0 unless TCP/UDP/SCTP).
    pub src_port: u16,
    /// Quoted destination port (0 unless TCP/UDP/SCTP).
    pub dst_port: u16,
    /// Offset of the quoted IP header, relative to the start of the ICMP message.
    pub ip_offset: usize,
    /// Offset of the quoted L4 header, relative to the start of the ICMP message.
    pub l4_offset: usize,
}

/// Finds the flow quoted in the body of an ICMP error of `family` (`message` is
/// the whole ICMP message, header included).
///
/// # Errors
/// [`ParseError::BadIcmpQuote`] if the quote is not a whole IP header of the same
/// family followed by 8 bytes of TCP/UDP/SCTP, is a non-first fragment, or is
/// itself an ICMP error.
pub fn parse_quoted(message: &[u8], family: Family) -> Result<QuotedFlow, ParseError> {
    let quote = slice(message, HEADER_LEN, message.len());
    let (proto, src, dst, l4_rel, non_first_fragment) = match family {
        Family::V4 => {
            let ip = Ipv4Packet::new_header_checked(quote).map_err(|_| ParseError::BadIcmpQuote)?;
            (ip.protocol(), IpAddr::V4(ip.src()), IpAddr::V4(ip.dst()), ip.header_len(), ip.fragment_offset() != 0)
        }
        Family::V6 => {
            let ip = Ipv6Packet::new_header_checked(quote).map_err(|_| ParseError::BadIcmpQuote)?;
            let upper = ipv6::walk_extension_headers(quote).map_err(|_| ParseError::BadIcmpQuote)?;
            let non_first = upper.fragment.is_some_and(|f| f.offset != 0);
            (upper.protocol, IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()), upper.offset, non_first)
        }
    };
    if non_first_fragment {
        return Err(ParseError::BadIcmpQuote);
    }
    let l4 = slice(quote, l4_rel, quote.len());
    let (src_port, dst_port) = match proto {
        protocol::TCP | protocol::UDP | protocol::SCTP => {
            if l4.len() < QUOTED_L4_LEN {
                return Err(ParseError::BadIcmpQuote);
            }
            (u16_at(l4, 0), u16_at(l4, 2))
        }
        protocol::ICMP if family == Family::V4 && is_error(family, u8_at(l4, 0)) => {
            return Err(ParseError::BadIcmpQuote);
        }
        protocol::ICMPV6 if family == Family::V6 && is_error(family, u8_at(l4, 0)) => {
            return Err(ParseError::BadIcmpQuote);
        }
        _ => (0, 0),
    };
    Ok(QuotedFlow {
        protocol: proto,
        src,
        dst,
        src_port,
        dst_port,
        ip_offset: HEADER_LEN,
        l4_offset: HEADER_LEN + l4_rel,
    })
}

/// Checks whether an ICMP error may be sent about `offending` (RFC 1122
/// §3.2.2 / RFC 4443 §2.4(e)) and returns its source, the error's destination.
fn error_destination(offending: &[u8]) -> Result<(IpAddr, usize, usize), BuildError> {
    match u8_at(offending, 0) >> 4 {
        4 => {
            let ip = Ipv4Packet::new_header_checked(offending)?;
            let src = ip.src();
            let dst = ip.dst();
            let l4 = slice(offending, ip.header_len(), offending.len());
            let about_icmp_error = ip.protocol() == protocol::ICMP && is_error(Family::V4, u8_at(l4, 0));
            if about_icmp_error
                || ip.fragment_offset() != 0
                || src.is_unspecified()
                || src.is_broadcast()
                || src.is_multicast()
                || dst.is_broadcast()
                || dst.is_multicast()
            {
                return Err(BuildError::NotAllowed);
            }
            let available = usize::from(ip.total_len()).min(offending.len());
            Ok((IpAddr::V4(src), available, ip.header_len()))
        }
        6 => {
            let ip = Ipv6Packet::new_header_checked(offending)?;
            let src = ip.src();
            let available = (ipv6::HEADER_LEN + usize::from(ip.payload_len())).min(offending.len());
            let upper = ipv6::walk_extension_headers(slice(offending, 0, available))?;
            let l4 = slice(offending, upper.offset, available);
            let about_icmp_error = upper.protocol == protocol::ICMPV6 && is_error(Family::V6, u8_at(l4, 0));
            if about_icmp_error || src.is_unspecified() || src.is_multicast() {
                return Err(BuildError::NotAllowed);
            }
            Ok((IpAddr::V6(src), available, upper.offset))
        }
        _ => Err(BuildError::Invalid(ParseError::BadVersion)),
    }
}

/// How many bytes of the offending packet to quote: as many as fit under `limit`
/// and in `room`, but at least its headers and 8 bytes of L4 (or all of it).
fn quote_len(available: usize, headers: usize, limit: usize, room: usize) -> Result<usize, BuildError> {
    let wanted = available.min(limit);
    let minimum = available.min(headers + QUOTED_L4_LEN);
    let len = wanted.min(room);
    if len < minimum {
        return Err(BuildError::BufferTooSmall);
    }
    Ok(len)
}

/// Writes an IPv4 packet carrying an ICMPv4 error about `offending` (an IPv4
/// packet, IP header first) from `src` to the offending packet's source, quoting
/// as much of it as keeps the error within 576 bytes. Returns the length written
/// at the start of `out`.
///
/// # Errors
/// [`BuildError::Invalid`] if `offending` is not IPv4, [`BuildError::NotAllowed`]
/// if no error may be sent about it, [`BuildError::BufferTooSmall`].
pub fn build_icmpv4_error(
    out: &mut [u8],
    src: Ipv4Addr,
    offending: &[u8],
    msg_type: u8,
    code: u8,
    rest_of_header: u32,
) -> Result<usize, BuildError> {
    if u8_at(offending, 0) >> 4 != 4 {
        return Err(BuildError::Invalid(ParseError::BadVersion));
    }
    let (IpAddr::V4(dst), available, headers) = error_destination(offending)? else {
        return Err(BuildError::Invalid(ParseError::BadVersion));
    };
    let overhead = ipv4::MIN_HEADER_LEN + HEADER_LEN;
    let room = out.len().checked_sub(overhead).ok_or(BuildError::BufferTooSmall)?;
    let quoted = quote_len(available, headers, MAX_ICMPV4_ERROR_LEN - overhead, room)?;
    let total = overhead + quoted;
    set_bytes(out, overhead, slice(offending, 0, quoted));
    let message = slice_mut(out, ipv4::MIN_HEADER_LEN, total);
    set_u8(message, 0, msg_type);
    set_u8(message, 1, code);
    set_u16(message, CHECKSUM_OFFSET, 0);
    set_u32(message, 4, rest_of_header);
    let sum = checksum::checksum(message);
    set_u16(message, CHECKSUM_OFFSET, sum);
    let fields = ipv4::Ipv4HeaderFields {
        src,
        dst,
        protocol: protocol::ICMP,
        ttl: ipv4::DEFAULT_TTL,
        // Precedence "internetwork control" (RFC 1812 §4.3.2.5).
        tos: 0xc0,
        // DF set and at most 576 bytes: an atomic datagram, whose identification
        // may be any value (RFC 6864 §4.1).
        ident: 0,
        dont_fragment: true,
        total_len: u16::try_from(total).unwrap_or(u16::MAX),
    };
    ipv4::write_header(out, &fields);
    Ok(total)
}

/// Writes an ICMPv4 "fragmentation needed and DF set" error (type 3 code 4) about
/// `offending` announcing `next_hop_mtu`. See [`build_icmpv4_error`].
///
/// # Errors
/// As [`build_icmpv4_error`].
pub fn build_frag_needed(
    out: &mut [u8],
    src: Ipv4Addr,
    offending: &[u8],
    next_hop_mtu: u16,
) -> Result<usize, BuildError> {
    build_icmpv4_error(out, src, offending, v4::DEST_UNREACHABLE, v4::CODE_FRAG_NEEDED, u32::from(next_hop_mtu))
}

/// Writes an IPv6 packet carrying an ICMPv6 error about `offending` (an IPv6
/// packet) from `src` to the offending packet's source, quoting as much of it as
/// keeps the error within the IPv6 minimum MTU. Returns the length written.
///
/// # Errors
/// As [`build_icmpv4_error`].
pub fn build_icmpv6_error(
    out: &mut [u8],
    src: Ipv6Addr,
    offending: &[u8],
    msg_type: u8,
    code: u8,
    rest_of_header: u32,
) -> Result<usize, BuildError> {
    if u8_at(offending, 0) >> 4 != 6 {
        return Err(BuildError::Invalid(ParseError::BadVersion));
    }
    let (IpAddr::V6(dst), available, headers) = error_destination(offending)? else {
        return Err(BuildError::Invalid(ParseError::BadVersion));
    };
    let overhead = ipv6::HEADER_LEN + HEADER_LEN;
    let room = out.len().checked_sub(overhead).ok_or(BuildError::BufferTooSmall)?;
    let quoted = quote_len(available, headers, ipv6::MIN_MTU - overhead, room)?;
    let message_len = HEADER_LEN + quoted;
    let total = ipv6::HEADER_LEN + message_len;
    set_bytes(out, overhead, slice(offending, 0, quoted));
    let message = slice_mut(out, ipv6::HEADER_LEN, total);
    set_u8(message, 0, msg_type);
    set_u8(message, 1, code);
    set_u16(message, CHECKSUM_OFFSET, 0);
    set_u32(message, 4, rest_of_header);
    let upper_len = u32::try_from(message_len).unwrap_or(u32::MAX);
    let pseudo = checksum::pseudo_header_v6(src.octets(), dst.octets(), protocol::ICMPV6, upper_len);
    let sum = checksum::with_pseudo_header(pseudo, message);
    set_u16(message, CHECKSUM_OFFSET, sum);
    let fields = ipv6::Ipv6HeaderFields {
        src,
        dst,
        next_header: protocol::ICMPV6,
        hop_limit: ipv6::DEFAULT_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
        payload_len: u16::try_from(message_len).unwrap_or(u16::MAX),
    };
    ipv6::write_header(out, &fields);
    Ok(total)
}

/// Writes an ICMPv6 "packet too big" error about `offending` announcing `mtu`
/// (raised to the IPv6 minimum of 1280 if below: a smaller value would be ignored
/// by the sender, RFC 8201 §4). See [`build_icmpv6_error`].
///
/// # Errors
/// As [`build_icmpv6_error`].
pub fn build_packet_too_big(out: &mut [u8], src: Ipv6Addr, offending: &[u8], mtu: u32) -> Result<usize, BuildError> {
    let min_mtu = u32::try_from(ipv6::MIN_MTU).unwrap_or(1280);
    build_icmpv6_error(out, src, offending, v6::PACKET_TOO_BIG, 0, mtu.max(min_mtu))
}
