//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers that VRRPv3 and ICMPv6 cover.

use std::net::IpAddr;

/// Running one's-complement sum of 16-bit big-endian words.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checksum {
    sum: u64,
    /// A byte left over from an odd-length `add`, waiting for its partner.
    pending: Option<u8>,
}

impl Checksum {
    /// An empty sum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `bytes` as if they followed everything added so far.
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        let mut rest = bytes;
        if let Some(high) = self.pending.take() {
            match rest.split_first() {
                Some((low, tail)) => {
                    self.sum += u64::from(u16::from_be_bytes([high, *low]));
                    rest = tail;
                }
                None => {
                    self.pending = Some(high);
                    return self;
                }
            }
        }
        let mut words = rest.chunks_exact(2);
        for word in &mut words {
            if let [a, b] = word {
                self.sum += u64::from(u16::from_be_bytes([*a, *b]));
            }
        }
        if let [last] = words.remainder() {
            self.pending = Some(*last);
        }
        self
    }

    /// Adds the pseudo-header of RFC 8200 §8.1 (IPv6) or RFC 768/RFC 5798 §5.2.8 (IPv4) for an
    /// upper-layer message of `len` bytes with protocol / next header `proto`. Mixed families
    /// contribute nothing for the mismatched address (callers never mix them).
    pub fn add_pseudo_header(&mut self, src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> &mut Self {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.add(&s.octets()).add(&d.octets()).add(&[0, proto]);
                // The IPv4 pseudo-header carries a 16-bit length.
                self.add(&(len as u16).to_be_bytes())
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                self.add(&s.octets()).add(&d.octets()).add(&len.to_be_bytes()).add(&[0, 0, 0, proto])
            }
            (s, d) => {
                self.add(&addr_bytes(s)).add(&addr_bytes(d));
                self.add(&[0, proto]).add(&(len as u16).to_be_bytes())
            }
        }
    }

    /// The checksum: the one's complement of the folded sum.
    pub fn finish(&self) -> u16 {
        let mut sum = self.sum;
        if let Some(high) = self.pending {
            sum += u64::from(u16::from_be_bytes([high, 0]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}

/// The checksum of `bytes` alone.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    Checksum::new().add(bytes).finish()
}

/// Network-order octets of an address, 4 or 16 bytes.
pub fn addr_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sums_to_ddf2() {
        // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum (folded) to 0xddf2; checksum = !0xddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&bytes), !0xddf2);
    }

    #[test]
    fn split_adds_equal_one_add() {
        let bytes: Vec<u8> = (0u8..=40).collect();
        let whole = internet_checksum(&bytes);
        let mut parts = Checksum::new();
        parts.add(&bytes[..3]).add(&bytes[3..4]).add(&bytes[4..17]).add(&bytes[17..]);
        assert_eq!(parts.finish(), whole);
    }

    #[test]
    fn data_with_its_checksum_verifies_to_zero() {
        let mut bytes = vec![0x45, 0x00, 0x12, 0x34, 0xab, 0xcd, 0x00, 0x00];
        let c = internet_checksum(&bytes);
        bytes[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(internet_checksum(&bytes), 0);
    }
}
