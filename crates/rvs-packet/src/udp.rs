//! UDP headers (RFC 768): a typed view with ports, length and checksum, including
//! the IPv4 "no checksum" zero value.

use crate::checksum;
use crate::error::ParseError;
use crate::field::{set_u16, slice, u16_at};

/// Length of the header.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 6;

/// A view of a UDP datagram in `buf` (starting at the UDP header, ending where
/// the IP payload ends).
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buf` without checks.
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Wraps `buf` after checking the header fits and the length field lies
    /// between 8 and the buffer length.
    ///
    /// # Errors
    /// [`ParseError::Truncated`] or [`ParseError::BadUdpLength`].
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let packet = Self { buf };
        let len = packet.buf.as_ref().len();
        if len < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let field = usize::from(packet.len_field());
        if field < HEADER_LEN || field > len {
            return Err(ParseError::BadUdpLength);
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

    /// Length field (header + payload).
    pub fn len_field(&self) -> u16 {
        u16_at(self.bytes(), 4)
    }

    /// Checksum field; 0 means "none" over IPv4.
    pub fn checksum(&self) -> u16 {
        u16_at(self.bytes(), CHECKSUM_OFFSET)
    }

    /// Payload bytes (up to the length field).
    pub fn payload(&self) -> &[u8] {
        let end = usize::from(self.len_field()).min(self.bytes().len());
        slice(self.bytes(), HEADER_LEN, end)
    }

    /// Whether the checksum verifies against the pseudo-header sum `pseudo`. A zero
    /// checksum is "none" and passes only when `zero_allowed` (IPv4).
    pub fn verify_checksum(&self, pseudo: u64, zero_allowed: bool) -> bool {
        if self.checksum() == 0 {
            return zero_allowed;
        }
        let end = usize::from(self.len_field()).min(self.bytes().len());
        checksum::verify_with_pseudo_header(pseudo, slice(self.bytes(), 0, end))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
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

    /// Recomputes the checksum with the pseudo-header sum; a computed 0 is sent as
    /// 0xFFFF (RFC 768), since 0 means "none".
    pub fn fill_checksum(&mut self, pseudo: u64) {
        self.set_checksum(0);
        let end = usize::from(self.len_field()).min(self.bytes().len());
        let sum = checksum::with_pseudo_header(pseudo, slice(self.bytes(), 0, end));
        self.set_checksum(if sum == 0 { 0xffff } else { sum });
    }
}
