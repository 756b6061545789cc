//! IPv6 (RFC 8200): a typed view over the fixed header, and a bounded walk over
//! extension headers (hop-by-hop, routing, destination options, fragment, AH and
//! the other RFC 6564-format headers) to the upper-layer protocol; plus a writer
//! for fresh headers.

use core::net::Ipv6Addr;

use crate::error::ParseError;
use crate::field::{array_at, set_bytes, set_u8, set_u16, set_u32, slice, u8_at, u16_at, u32_at};
use crate::ip::protocol;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Most extension headers [`walk_extension_headers`] will step over.
pub const MAX_EXTENSION_HEADERS: usize = 8;
/// The IPv6 minimum link MTU (RFC 8200 §5).
pub const MIN_MTU: usize = 1280;
/// Default hop limit for packets this crate originates.
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// Mobility, HIP and Shim6 headers: they use the generic extension-header format.
const MOBILITY: u8 = 135;
const HIP: u8 = 139;
const SHIM6: u8 = 140;

/// What an IPv6 fragment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentInfo {
    /// Identification.
    pub ident: u32,
    /// Offset of this fragment's data in the original packet, in bytes.
    pub offset: u16,
    /// More-fragments flag.
    pub more_fragments: bool,
}

impl FragmentInfo {
    /// An atomic fragment (offset 0, M clear, RFC 6946) is a whole packet.
    #[must_use]
    pub const fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more_fragments
    }
}

/// Where the upper-layer header of an IPv6 packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The upper-layer protocol (the last next-header value).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, if one was passed.
    pub fragment: Option<FragmentInfo>,
}

/// A view of an IPv6 packet in `buf` (starting at the fixed header).
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buf` without checks; getters then read zeros past the end.
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Wraps `buf` after checking the version and that the payload length fits in
    /// the buffer (which may be longer: Ethernet padding).
    ///
    /// # Errors
    /// [`ParseError::Truncated`] or [`ParseError::BadVersion`].
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let packet = Self::new_header_checked(buf)?;
        if HEADER_LEN + usize::from(packet.payload_len()) > packet.buf.as_ref().len() {
            return Err(ParseError::Truncated);
        }
        Ok(packet)
    }

    /// Like [`Self::new_checked`] but accepts a packet cut short after its fixed
    /// header, as quoted in an ICMPv6 error.
    ///
    /// # Errors
    /// [`ParseError::Truncated`] or [`ParseError::BadVersion`].
    pub fn new_header_checked(buf: T) -> Result<Self, ParseError> {
        let packet = Self { buf };
        if packet.buf.as_ref().len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        if packet.version() != 6 {
            return Err(ParseError::BadVersion);
        }
        Ok(packet)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Version nibble (6 for a valid packet).
    pub fn version(&self) -> u8 {
        u8_at(self.bytes(), 0) >> 4
    }

    /// Traffic class byte (DSCP << 2 | ECN).
    pub fn traffic_class(&self) -> u8 {
        let word = u16_at(self.bytes(), 0);
        ((word >> 4) & 0xff) as u8
    }

    /// Differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    /// ECN codepoint.
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0b11
    }

    /// 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        u32_at(self.bytes(), 0) & 0x000f_ffff
    }

    /// Payload length field (bytes after the fixed header).
    pub fn payload_len(&self) -> u16 {
        u16_at(self.bytes(), 4)
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        u8_at(self.bytes(), 6)
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        u8_at(self.bytes(), 7)
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(array_at::<16>(self.bytes(), 8))
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(array_at::<16>(self.bytes(), 24))
    }

    /// Bytes after the fixed header up to the payload length, or to the end of
    /// the buffer if that comes first.
    pub fn payload(&self) -> &[u8] {
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(self.bytes().len());
        slice(self.bytes(), HEADER_LEN, end)
    }

    /// Walks the extension headers to the upper layer, within the payload length
    /// (or the buffer, if shorter).
    ///
    /// # Errors
    /// See [`walk_extension_headers`].
    pub fn upper_layer(&self) -> Result<UpperLayer, ParseError> {
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(self.bytes().len());
        walk_extension_headers(slice(self.bytes(), 0, end))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the source address (IPv6 has no header checksum).
    pub fn set_src(&mut self, addr: Ipv6Addr) {
        set_bytes(self.buf.as_mut(), 8, &addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst(&mut self, addr: Ipv6Addr) {
        set_bytes(self.buf.as_mut(), 24, &addr.octets());
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        set_u8(self.buf.as_mut(), 7, hop_limit);
    }

    /// Sets the traffic class byte.
    pub fn set_traffic_class(&mut self, tc: u8) {
        let word = u16_at(self.bytes(), 0);
        let new = (word & 0xf00f) | (u16::from(tc) << 4);
        set_u16(self.buf.as_mut(), 0, new);
    }
}

/// Walks the extension headers of the IPv6 packet `packet` (fixed header first;
/// the slice should end where the packet ends) to its upper-layer header.
///
/// Stops at the first protocol that is not an extension header, and also right
/// after a fragment header of a non-first fragment (what follows it is data).
///
/// # Errors
/// [`ParseError::Truncated`] if a header runs past the end,
/// [`ParseError::TooManyExtHeaders`] past [`MAX_EXTENSION_HEADERS`].
pub fn walk_extension_headers(packet: &[u8]) -> Result<UpperLayer, ParseError> {
    if packet.len() < HEADER_LEN {
        return Err(ParseError::Truncated);
    }
    let mut next = u8_at(packet, 6);
    let mut offset = HEADER_LEN;
    let mut fragment = None;
    let mut seen = 0;
    loop {
        let header_len = match next {
            protocol::HOP_BY_HOP | protocol::ROUTING | protocol::DEST_OPTS | MOBILITY | HIP | SHIM6 => {
                (usize::from(u8_at(packet, offset + 1)) + 1) * 8
            }
            protocol::AH => (usize::from(u8_at(packet, offset + 1)) + 2) * 4,
            protocol::FRAGMENT => 8,
            _ => return Ok(UpperLayer { protocol: next, offset, fragment }),
        };
        if seen == MAX_EXTENSION_HEADERS {
            return Err(ParseError::TooManyExtHeaders);
        }
        seen += 1;
        // The two bytes read above (next header, length) must exist, and so must the
        // whole header.
        if offset + header_len > packet.len() || offset + 2 > packet.len() {
            return Err(ParseError::Truncated);
        }
        let this = next;
        next = u8_at(packet, offset);
        if this == protocol::FRAGMENT {
            let word = u16_at(packet, offset + 2);
            let info = FragmentInfo {
                ident: u32_at(packet, offset + 4),
                offset: word & 0xfff8,
                more_fragments: word & 1 == 1,
            };
            fragment = Some(info);
            offset += header_len;
            if info.offset != 0 {
                return Ok(UpperLayer { protocol: next, offset, fragment });
            }
        } else {
            offset += header_len;
        }
    }
}

/// The fields of a fresh IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6HeaderFields {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class (DSCP << 2 | ECN).
    pub traffic_class: u8,
    /// Flow label (low 20 bits used).
    pub flow_label: u32,
    /// Payload length.
    pub payload_len: u16,
}

/// Writes a 40-byte fixed header at the start of `buf`; returns 40, or 0 (writing
/// nothing) if `buf` is shorter than 40 bytes.
pub fn write_header(buf: &mut [u8], fields: &Ipv6HeaderFields) -> usize {
    let Some(header) = buf.get_mut(..HEADER_LEN) else {
        return 0;
    };
    let first = (6u32 << 28) | (u32::from(fields.traffic_class) << 20) | (fields.flow_label & 0x000f_ffff);
    set_u32(header, 0, first);
    set_u16(header, 4, fields.payload_len);
    set_u8(header, 6, fields.next_header);
    set_u8(header, 7, fields.hop_limit);
    set_bytes(header, 8, &fields.src.octets());
    set_bytes(header, 24, &fields.dst.octets());
    HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(next: u8, payload_len: u16) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        write_header(
            &mut p,
            &Ipv6HeaderFields {
                src: "fd00::1".parse().unwrap(),
                dst: "fd00::2".parse().unwrap(),
                next_header: next,
                hop_limit: 64,
                traffic_class: 0xb9,
                flow_label: 0x12345,
                payload_len,
            },
        );
        p
    }

    #[test]
    fn fixed_header_fields() {
        let p = fixed(protocol::TCP, 0);
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!((v.traffic_class(), v.dscp(), v.ecn(), v.flow_label()), (0xb9, 46, 1, 0x12345));
        assert_eq!(v.src(), "fd00::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v.upper_layer().unwrap(), UpperLayer { protocol: protocol::TCP, offset: 40, fragment: None });
    }

    #[test]
    fn walks_hop_by_hop_routing_and_atomic_fragment() {
        let mut p = fixed(protocol::HOP_BY_HOP, 8 + 24 + 8 + 8);
        p.extend_from_slice(&[protocol::ROUTING, 0, 1, 4, 0, 0, 0, 0]); // HBH, 8 bytes, PadN
        p.extend_from_slice(&[protocol::FRAGMENT, 2, 0, 0]); // routing, (2+1)*8 = 24 bytes
        p.extend_from_slice(&[0; 20]);
        p.extend_from_slice(&[protocol::UDP, 0, 0, 0, 0, 0, 0, 7]); // atomic fragment
        p.extend_from_slice(&[0; 8]);
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        let up = v.upper_layer().unwrap();
        assert_eq!((up.protocol, up.offset), (protocol::UDP, 40 + 8 + 24 + 8));
        assert!(up.fragment.unwrap().is_atomic());
        assert_eq!(up.fragment.unwrap().ident, 7);
    }

    #[test]
    fn non_first_fragment_stops_walk() {
        let mut p = fixed(protocol::FRAGMENT, 16);
        p.extend_from_slice(&[protocol::TCP, 0, 0x05, 0x01, 0, 0, 0, 9]); // offset 0x500 >> 3 units
        p.extend_from_slice(&[0; 8]);
        let up = walk_extension_headers(&p).unwrap();
        assert_eq!(up.protocol, protocol::TCP);
        assert_eq!(up.fragment, Some(FragmentInfo { ident: 9, offset: 0x500, more_fragments: true }));
    }

    #[test]
    fn bounded_and_truncated_walks() {
        let mut p = fixed(protocol::DEST_OPTS, 8 * 9);
        for _ in 0..9 {
            p.extend_from_slice(&[protocol::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(walk_extension_headers(&p), Err(ParseError::TooManyExtHeaders));
        assert_eq!(walk_extension_headers(&p[..44]), Err(ParseError::Truncated));
        assert_eq!(walk_extension_headers(&p[..40]), Err(ParseError::Truncated));
    }
}
