//! IPv4 headers (RFC 791): a typed view over a byte buffer with length checks,
//! options, fragment fields, TTL, DSCP/ECN, and header-checksum verify/update;
//! plus a writer for fresh headers (tunnels, ICMP replies).

use core::net::Ipv4Addr;

use crate::checksum;
use crate::error::ParseError;
use crate::field::{array_at, set_bytes, set_u8, set_u16, slice, u8_at, u16_at};

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Default TTL for packets this crate originates (ICMP replies).
pub const DEFAULT_TTL: u8 = 64;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// Fragmentation fields of an IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentInfo {
    /// Identification.
    pub ident: u16,
    /// Offset of this fragment's data in the original datagram, in bytes.
    pub offset: u16,
    /// More-fragments flag.
    pub more_fragments: bool,
}

/// A view of an IPv4 packet in `buf` (starting at the IP header).
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buf` without checks; getters then read zeros past the end.
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Wraps `buf` after checking version, IHL and total length against the buffer.
    /// The buffer may be longer than the total length (Ethernet padding).
    ///
    /// # Errors
    /// [`ParseError::Truncated`], [`ParseError::BadVersion`],
    /// [`ParseError::BadHeaderLength`] or [`ParseError::BadTotalLength`].
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let packet = Self::new_header_checked(buf)?;
        if usize::from(packet.total_len()) > packet.buf.as_ref().len() {
            return Err(ParseError::Truncated);
        }
        Ok(packet)
    }

    /// Like [`Self::new_checked`] but lets the packet end before its total length,
    /// as a packet quoted in an ICMP error does. The header itself must be whole.
    ///
    /// # Errors
    /// As [`Self::new_checked`], except that a short payload is accepted.
    pub fn new_header_checked(buf: T) -> Result<Self, ParseError> {
        let packet = Self { buf };
        let len = packet.buf.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        if packet.version() != 4 {
            return Err(ParseError::BadVersion);
        }
        let header_len = packet.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(ParseError::BadHeaderLength);
        }
        if header_len > len {
            return Err(ParseError::Truncated);
        }
        if usize::from(packet.total_len()) < header_len {
            return Err(ParseError::BadTotalLength);
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

    /// Version nibble (4 for a valid packet).
    pub fn version(&self) -> u8 {
        u8_at(self.bytes(), 0) >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(u8_at(self.bytes(), 0) & 0x0f) * 4
    }

    /// The type-of-service / traffic-class byte (DSCP << 2 | ECN).
    pub fn tos(&self) -> u8 {
        u8_at(self.bytes(), 1)
    }

    /// Differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// ECN codepoint.
    pub fn ecn(&self) -> u8 {
        self.tos() & 0b11
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        u16_at(self.bytes(), 2)
    }

    /// Identification field.
    pub fn ident(&self) -> u16 {
        u16_at(self.bytes(), 4)
    }

    /// Don't-fragment flag.
    pub fn dont_fragment(&self) -> bool {
        u16_at(self.bytes(), 6) & FLAG_DF != 0
    }

    /// More-fragments flag.
    pub fn more_fragments(&self) -> bool {
        u16_at(self.bytes(), 6) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn fragment_offset(&self) -> u16 {
        (u16_at(self.bytes(), 6) & OFFSET_MASK) << 3
    }

    /// Whether this packet is a fragment (MF set or non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.fragment_offset() != 0
    }

    /// The fragmentation fields.
    pub fn fragment_info(&self) -> FragmentInfo {
        FragmentInfo { ident: self.ident(), offset: self.fragment_offset(), more_fragments: self.more_fragments() }
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        u8_at(self.bytes(), 8)
    }

    /// Upper-layer protocol.
    pub fn protocol(&self) -> u8 {
        u8_at(self.bytes(), 9)
    }

    /// Header checksum field.
    pub fn header_checksum(&self) -> u16 {
        u16_at(self.bytes(), 10)
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(array_at::<4>(self.bytes(), 12))
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(array_at::<4>(self.bytes(), 16))
    }

    /// The options bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        slice(self.bytes(), MIN_HEADER_LEN, self.header_len())
    }

    /// The header bytes.
    pub fn header(&self) -> &[u8] {
        slice(self.bytes(), 0, self.header_len())
    }

    /// The payload: from the end of the header to the total length, or to the end
    /// of the buffer if that comes first.
    pub fn payload(&self) -> &[u8] {
        let end = usize::from(self.total_len()).min(self.bytes().len());
        slice(self.bytes(), self.header_len(), end)
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.header())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// Sets the source address, updating the header checksum incrementally.
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        self.replace_word32(12, addr.octets());
    }

    /// Sets the destination address, updating the header checksum incrementally.
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        self.replace_word32(16, addr.octets());
    }

    /// Sets the TTL, updating the header checksum incrementally.
    pub fn set_ttl(&mut self, ttl: u8) {
        // TTL shares a 16-bit word with the protocol.
        let old = u16_at(self.bytes(), 8);
        let new = (u16::from(ttl) << 8) | (old & 0x00ff);
        self.replace_word16(8, new);
    }

    /// Sets the TOS byte (DSCP and ECN), updating the header checksum incrementally.
    pub fn set_tos(&mut self, tos: u8) {
        let old = u16_at(self.bytes(), 0);
        let new = (old & 0xff00) | u16::from(tos);
        self.replace_word16(0, new);
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        let header_len = self.header_len();
        set_u16(self.bytes_mut(), 10, 0);
        let sum = checksum::checksum(slice(self.bytes(), 0, header_len));
        set_u16(self.bytes_mut(), 10, sum);
    }

    fn replace_word16(&mut self, offset: usize, new: u16) {
        let old = u16_at(self.bytes(), offset);
        let sum = checksum::update_u16(self.header_checksum(), old, new);
        set_u16(self.bytes_mut(), offset, new);
        set_u16(self.bytes_mut(), 10, sum);
    }

    fn replace_word32(&mut self, offset: usize, new: [u8; 4]) {
        let old: [u8; 4] = array_at(self.bytes(), offset);
        let sum = checksum::update_bytes(self.header_checksum(), &old, &new);
        set_bytes(self.bytes_mut(), offset, &new);
        set_u16(self.bytes_mut(), 10, sum);
    }
}

/// The fields of a fresh option-less IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4HeaderFields {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// TTL.
    pub ttl: u8,
    /// TOS byte (DSCP << 2 | ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub dont_fragment: bool,
    /// Total length (header + payload).
    pub total_len: u16,
}

/// Writes a 20-byte header with a correct checksum at the start of `buf`; returns
/// 20, or 0 (writing nothing) if `buf` is shorter than 20 bytes.
pub fn write_header(buf: &mut [u8], fields: &Ipv4HeaderFields) -> usize {
    let Some(header) = buf.get_mut(..MIN_HEADER_LEN) else {
        return 0;
    };
    set_u8(header, 0, 0x45);
    set_u8(header, 1, fields.tos);
    set_u16(header, 2, fields.total_len);
    set_u16(header, 4, fields.ident);
    set_u16(header, 6, if fields.dont_fragment { FLAG_DF } else { 0 });
    set_u8(header, 8, fields.ttl);
    set_u8(header, 9, fields.protocol);
    set_u16(header, 10, 0);
    set_bytes(header, 12, &fields.src.octets());
    set_bytes(header, 16, &fields.dst.octets());
    let sum = checksum::checksum(header);
    set_u16(header, 10, sum);
    MIN_HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    // 20-byte header: total 40, id 0x1c46, DF, TTL 64, TCP, 198.18.0.1 -> 198.18.0.2,
    // checksum left zero and filled by the test.
    fn header() -> Vec<u8> {
        let mut h =
            vec![0x45, 0x00, 0x00, 0x28, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2];
        h.resize(40, 0);
        h
    }

    #[test]
    fn checks_reject_bad_headers() {
        let mut h = header();
        h[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&h[..]).unwrap_err(), ParseError::BadVersion);
        h[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&h[..]).unwrap_err(), ParseError::BadHeaderLength);
        h[0] = 0x4f; // 60-byte header in a 40-byte buffer
        assert_eq!(Ipv4Packet::new_checked(&h[..]).unwrap_err(), ParseError::Truncated);
        h[0] = 0x46;
        h[3] = 20; // total length below header length
        assert_eq!(Ipv4Packet::new_checked(&h[..]).unwrap_err(), ParseError::BadTotalLength);
        let h = header();
        assert_eq!(Ipv4Packet::new_checked(&h[..39]).unwrap_err(), ParseError::Truncated);
        assert!(Ipv4Packet::new_header_checked(&h[..39]).is_ok());
    }

    #[test]
    fn fields_and_incremental_updates() {
        let mut h = header();
        let mut p = Ipv4Packet::new_checked(&mut h[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert!(p.dont_fragment() && !p.is_fragment());
        assert_eq!((p.ttl(), p.protocol(), p.total_len()), (64, 6, 40));
        p.set_dst(Ipv4Addr::new(198, 19, 1, 1));
        p.set_ttl(63);
        p.set_tos(0xb9);
        assert!(p.verify_checksum());
        assert_eq!((p.dst(), p.ttl(), p.dscp(), p.ecn()), (Ipv4Addr::new(198, 19, 1, 1), 63, 46, 1));
    }

    #[test]
    fn fragment_fields() {
        let mut h = header();
        h[6] = 0x20; // MF, offset 0
        let p = Ipv4Packet::new_checked(&h[..]).unwrap();
        assert!(p.is_fragment() && p.more_fragments() && p.fragment_offset() == 0);
        h[6] = 0x00;
        h[7] = 0x03; // offset 3 * 8 = 24 bytes
        let p = Ipv4Packet::new_checked(&h[..]).unwrap();
        assert_eq!(p.fragment_info(), FragmentInfo { ident: 0x1c46, offset: 24, more_fragments: false });
    }
}
