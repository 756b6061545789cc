//! TCP headers (RFC 9293): a typed view with ports, sequence numbers, flags, data
//! offset and checksum computation/verification over a pseudo-header.

use crate::checksum;
use crate::error::ParseError;
use crate::field::{set_u16, slice, u8_at, u16_at, u32_at};

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 16;

/// TCP flag bits (the low byte of the flags field; NS is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: Self = Self(0x01);
    /// SYN.
    pub const SYN: Self = Self(0x02);
    /// RST.
    pub const RST: Self = Self(0x04);
    /// PSH.
    pub const PSH: Self = Self(0x08);
    /// ACK.
    pub const ACK: Self = Self(0x10);
    /// URG.
    pub const URG: Self = Self(0x20);
    /// ECE.
    pub const ECE: Self = Self(0x40);
    /// CWR.
    pub const CWR: Self = Self(0x80);

    /// Whether every bit of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both flag sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// SYN set, ACK clear: the first packet of a connection.
    #[must_use]
    pub const fn is_syn_only(self) -> bool {
        self.contains(Self::SYN) && !self.contains(Self::ACK)
    }
}

/// A view of a TCP segment in `buf` (starting at the TCP header, ending where the
/// IP payload ends).
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buf` without checks.
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Wraps `buf` after checking that the header, with its options, fits.
    ///
    /// # Errors
    /// [`ParseError::Truncated`] or [`ParseError::BadHeaderLength`] (data offset < 5).
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let packet = Self { buf };
        let len = packet.buf.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        if packet.header_len() < MIN_HEADER_LEN {
            return Err(ParseError::BadHeaderLength);
        }
        if packet.header_len() > len {
            return Err(ParseError::Truncated);
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

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16_at(self.bytes(), 0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16_at(self.bytes(), 2)
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        u32_at(self.bytes(), 4)
    }

    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        u32_at(self.bytes(), 8)
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(u8_at(self.bytes(), 12) >> 4) * 4
    }

    /// Flags.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(u8_at(self.bytes(), 13))
    }

    /// Window.
    pub fn window(&self) -> u16 {
        u16_at(self.bytes(), 14)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16_at(self.bytes(), CHECKSUM_OFFSET)
    }

    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        u16_at(self.bytes(), 18)
    }

    /// Option bytes.
    pub fn options(&self) -> &[u8] {
        slice(self.bytes(), MIN_HEADER_LEN, self.header_len())
    }

    /// Payload bytes.
    pub fn payload(&self) -> &[u8] {
        slice(self.bytes(), self.header_len(), self.bytes().len())
    }

    /// Whether the checksum verifies against the pseudo-header partial sum `pseudo`
    /// (see [`checksum::pseudo_header_v4`] / [`checksum::pseudo_header_v6`]).
    pub fn verify_checksum(&self, pseudo: u64) -> bool {
        checksum::verify_with_pseudo_header(pseudo, self.bytes())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port (checksum not updated; see [`crate::rewrite`]).
    pub fn set_src_port(&mut self, port: u16) {
        set_u16(self.buf.as_mut(), 0, port);
    }

    /// Sets the destination port (checksum not updated).
    pub fn set_dst_port(&mut self, port: u16) {
        set_u16(self.buf.as_mut(), 2, port);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buf.as_mut(), CHECKSUM_OFFSET, value);
    }

    /// Recomputes the checksum over the whole segment with the pseudo-header sum.
    pub fn fill_checksum(&mut self, pseudo: u64) {
        self.set_checksum(0);
        let sum = checksum::with_pseudo_header(pseudo, self.bytes());
        self.set_checksum(sum);
    }
}
