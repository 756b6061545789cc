//! Bounds-checked reads and writes of big-endian fields in byte buffers.
//!
//! Every typed view in this crate checks the buffer length once when it is built
//! and then reads its fields through these helpers. They never panic: a read past
//! the end yields zero and a write past the end is ignored, which cannot happen
//! for a view that passed its length check.

/// Reads the byte at `offset`, or 0 if the buffer is too short.
#[inline]
pub(crate) fn u8_at(buf: &[u8], offset: usize) -> u8 {
    buf.get(offset).copied().unwrap_or(0)
}

/// Reads a big-endian u16 at `offset`, or 0 if the buffer is too short.
#[inline]
pub(crate) fn u16_at(buf: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes(array_at(buf, offset))
}

/// Reads a big-endian u32 at `offset`, or 0 if the buffer is too short.
#[inline]
pub(crate) fn u32_at(buf: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(array_at(buf, offset))
}

/// Copies `N` bytes starting at `offset`, or zeros if the buffer is too short.
#[inline]
pub(crate) fn array_at<const N: usize>(buf: &[u8], offset: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = offset.checked_add(N).and_then(|end| buf.get(offset..end)) {
        out.copy_from_slice(src);
    }
    out
}

/// Writes a byte at `offset` if it is inside the buffer.
#[inline]
pub(crate) fn set_u8(buf: &mut [u8], offset: usize, value: u8) {
    if let Some(b) = buf.get_mut(offset) {
        *b = value;
    }
}

/// Writes a big-endian u16 at `offset` if it fits in the buffer.
#[inline]
pub(crate) fn set_u16(buf: &mut [u8], offset: usize, value: u16) {
    set_bytes(buf, offset, &value.to_be_bytes());
}

/// Writes a big-endian u32 at `offset` if it fits in the buffer.
#[inline]
pub(crate) fn set_u32(buf: &mut [u8], offset: usize, value: u32) {
    set_bytes(buf, offset, &value.to_be_bytes());
}

/// Copies `bytes` to `offset` if they fit in the buffer.
#[inline]
pub(crate) fn set_bytes(buf: &mut [u8], offset: usize, bytes: &[u8]) {
    if let Some(dst) = offset.checked_add(bytes.len()).and_then(|end| buf.get_mut(offset..end)) {
        dst.copy_from_slice(bytes);
    }
}

/// The sub-slice `start..end`, or an empty slice if the range is not inside the buffer.
#[inline]
pub(crate) fn slice(buf: &[u8], start: usize, end: usize) -> &[u8] {
    buf.get(start..end).unwrap_or(&[])
}

/// The mutable sub-slice `start..end`, or an empty slice if the range is not inside the buffer.
#[inline]
pub(crate) fn slice_mut(buf: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    buf.get_mut(start..end).unwrap_or(&mut [])
}
