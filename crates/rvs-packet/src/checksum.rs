//! The internet checksum (RFC 1071): full computation, the IPv4 and IPv6
//! pseudo-headers of TCP/UDP/ICMPv6, and the RFC 1624 incremental update used by
//! every in-place rewrite so that a NAT costs a few additions instead of a pass
//! over the payload.
//!
//! Sums are carried as `u64` "partial sums" (not yet folded) so that pieces can be
//! added together; [`fold`] reduces one to 16 bits. All data handed to
//! [`add_bytes`] must start at an even offset of the checksummed region; only the
//! last piece may have an odd length.

/// Adds `data`, read as big-endian 16-bit words (an odd last byte padded with a
/// zero byte), to the partial sum `sum`.
#[must_use]
pub fn add_bytes(sum: u64, data: &[u8]) -> u64 {
    let mut acc = sum;
    // 2^16 = 1 in ones-complement arithmetic modulo 0xFFFF, so a 32-bit big-endian
    // word adds the same as its two 16-bit halves.
    let mut quads = data.chunks_exact(4);
    for quad in &mut quads {
        if let [a, b, c, d] = *quad {
            acc += u64::from(u32::from_be_bytes([a, b, c, d]));
        }
    }
    match *quads.remainder() {
        [a, b, c] => acc + u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        [a, b] => acc + u64::from(u16::from_be_bytes([a, b])),
        [a] => acc + (u64::from(a) << 8),
        _ => acc,
    }
}

/// Folds a partial sum to 16 bits with end-around carry.
#[must_use]
pub fn fold(sum: u64) -> u16 {
    let mut s = sum;
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    // The loop leaves s <= 0xFFFF.
    u16::try_from(s).unwrap_or(0xFFFF)
}

/// The internet checksum of `data`: the ones-complement of its folded sum.
#[must_use]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(add_bytes(0, data))
}

/// Whether `data`, which contains its own checksum field, sums to all-ones.
#[must_use]
pub fn verify(data: &[u8]) -> bool {
    fold(add_bytes(0, data)) == 0xFFFF
}

/// Partial sum of the IPv4 pseudo-header (RFC 793/768): source, destination,
/// zero, protocol and upper-layer length.
#[must_use]
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, upper_len: u16) -> u64 {
    let sum = add_bytes(0, &src);
    let sum = add_bytes(sum, &dst);
    sum + u64::from(protocol) + u64::from(upper_len)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination,
/// 32-bit upper-layer length and next header.
#[must_use]
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, upper_len: u32) -> u64 {
    let sum = add_bytes(0, &src);
    let sum = add_bytes(sum, &dst);
    add_bytes(sum, &upper_len.to_be_bytes()) + u64::from(next_header)
}

/// The checksum of an upper-layer `segment` (its checksum field zeroed) with the
/// pseudo-header partial sum `pseudo`.
#[must_use]
pub fn with_pseudo_header(pseudo: u64, segment: &[u8]) -> u16 {
    !fold(add_bytes(pseudo, segment))
}

/// Whether `segment` (with its checksum field filled) verifies against `pseudo`.
#[must_use]
pub fn verify_with_pseudo_header(pseudo: u64, segment: &[u8]) -> bool {
    fold(add_bytes(pseudo, segment)) == 0xFFFF
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changed
/// from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
#[must_use]
pub fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!checksum) + u64::from(!old) + u64::from(new))
}

/// The checksum after a 32-bit word (two aligned 16-bit words, e.g. an IPv4
/// address or a TCP sequence number) changed from `old` to `new`.
#[must_use]
pub fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    let [o0, o1, o2, o3] = old.to_be_bytes();
    let [n0, n1, n2, n3] = new.to_be_bytes();
    update_bytes(checksum, &[o0, o1, o2, o3], &[n0, n1, n2, n3])
}

/// The checksum after an IPv6 address (eight aligned words) changed.
#[must_use]
pub fn update_ipv6_addr(checksum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    update_bytes(checksum, old, new)
}

/// The checksum after the aligned bytes `old` were replaced by `new` (same length;
/// extra bytes of the longer one are ignored; an odd length is padded as in
/// [`add_bytes`]).
#[must_use]
pub fn update_bytes(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    let len = old.len().min(new.len());
    let old = old.get(..len).unwrap_or(&[]);
    let new = new.get(..len).unwrap_or(&[]);
    // ~m summed word by word equals (words * 0xFFFF) - sum(m); use that identity
    // on the folded sum instead of complementing each word.
    let old_sum = fold(add_bytes(0, old));
    !fold(u64::from(!checksum) + u64::from(!old_sum) + add_bytes(0, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add_bytes(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(add_bytes(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: HC = 0xDD2F, m changes 0x5555 -> 0x3285, HC' = 0x0000.
        assert_eq!(update_u16(0xDD2F, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn update_bytes_matches_word_by_word() {
        let old = [0xc6, 0x12, 0x00, 0x01];
        let new = [0xc6, 0x13, 0x00, 0x63];
        let a = update_bytes(0x1234, &old, &new);
        let b = update_u16(update_u16(0x1234, 0xc612, 0xc613), 0x0001, 0x0063);
        assert_eq!(a, b);
    }
}
