//! The kernel's hash functions shared by the hashing schedulers (dh, sh, mh):
//!
//! - [`hash_32`], the golden-ratio multiplicative hash of `include/linux/hash.h`
//!   (dh and sh bucket from it);
//! - [`hsiphash`], as a 64-bit kernel computes it: SipHash-1-3 over a 128-bit key (two
//!   64-bit words), its 64-bit result cut to the low 32 bits (mh draws its Maglev offsets,
//!   skips and lookups from it);
//! - [`addr_port_key`], the 32-bit value these schedulers hash: the folded address
//!   ([`crate::addr::fold`]) plus the port in host order.

use std::net::IpAddr;

use crate::addr::fold;

/// The multiplier of the kernel's `hash_32` (`GOLDEN_RATIO_32`, 2^32 / phi).
pub const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// The kernel's `hash_32(val, bits)`: `val * GOLDEN_RATIO_32` (mod 2^32), keeping the top
/// `bits` bits. `bits` is 1..=32 in every caller; 0 gives 0 and more than 32 keeps all bits.
pub fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(GOLDEN_RATIO_32).checked_shr(32u32.saturating_sub(bits)).unwrap_or(0)
}

/// The value dh, sh and mh feed their hash: `port + fold(addr)`, wrapping like the
/// kernel's `unsigned int` sum (`ntohs(port) + ntohl(addr_fold)`).
pub fn addr_port_key(addr: &IpAddr, port: u16) -> u32 {
    u32::from(port).wrapping_add(fold(addr))
}

/// An hsiphash key as a 64-bit kernel holds it (`hsiphash_key_t`: two `unsigned long`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HsipKey(pub [u64; 2]);

/// SipHash's four 64-bit state words.
struct SipState {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl SipState {
    /// The initial state: the constants "somepseudorandomlygeneratedbytes" xored with the key.
    fn new(key: &HsipKey) -> SipState {
        let [k0, k1] = key.0;
        SipState {
            v0: 0x736f_6d65_7073_6575 ^ k0,
            v1: 0x646f_7261_6e64_6f6d ^ k1,
            v2: 0x6c79_6765_6e65_7261 ^ k0,
            v3: 0x7465_6462_7974_6573 ^ k1,
        }
    }

    /// One SipRound.
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    /// Absorbs one message word with one compression round (the "1" of 1-3).
    fn absorb(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.v0 ^= m;
    }

    /// Absorbs the last word `b` (length byte and tail) and runs three finalization rounds
    /// (the "3" of 1-3).
    fn finish(mut self, b: u64) -> u64 {
        self.absorb(b);
        self.v2 ^= 0xff;
        self.round();
        self.round();
        self.round();
        self.v0 ^ self.v1 ^ self.v2 ^ self.v3
    }
}

/// The kernel's `hsiphash(data, len, key)` on a 64-bit kernel: SipHash-1-3, result truncated
/// to its low 32 bits.
pub fn hsiphash(data: &[u8], key: &HsipKey) -> u32 {
    let mut state = SipState::new(key);
    let mut words = data.chunks_exact(8);
    for word in words.by_ref() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        state.absorb(u64::from_le_bytes(bytes));
    }
    // The last word: the tail bytes little-endian, the length's low byte on top.
    let mut last = [0u8; 8];
    let tail = words.remainder();
    last[..tail.len()].copy_from_slice(tail);
    let b = u64::from_le_bytes(last) | ((data.len() as u64) << 56);
    state.finish(b) as u32
}

/// `hsiphash(&v, sizeof(v), key)` for a `u32` v, as IPVS calls it: the four bytes of `v` as a
/// little-endian machine (x86-64, arm64) stores them.
pub fn hsiphash_u32(value: u32, key: &HsipKey) -> u32 {
    hsiphash(&value.to_le_bytes(), key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 64-bit hsiphash test vectors of the kernel's lib/test_siphash.c
    /// (`test_vectors_hsiphash`, `BITS_PER_LONG == 64` branch): vector i is the hash of the
    /// i bytes 0, 1, ..., i-1 under the key bytes 00..0f.
    const KERNEL_HSIPHASH_VECTORS: [u32; 64] = [
        0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140, 0x8d299a8e,
        0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956, 0x7d908b66, 0x63dbd80c,
        0xb473e63e, 0x8d297d1c, 0xa6cce040, 0x2b45f844, 0xa320872e, 0xdae6c123, 0x67349c8c, 0x705b0979, 0xca9913a5,
        0x4ade3b35, 0xef6cd00d, 0x4ab1e1f4, 0x43c5e663, 0x8c21d1bc, 0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e, 0xbf186b91,
        0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392, 0x99e41531, 0x3f1ad944, 0xc8138825, 0xc28949a6, 0xfaf8876b,
        0x9f042196, 0x68b1d623, 0x8b5114fd, 0xdf074c46, 0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0,
        0x73f0bce6, 0x70a7e980, 0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148, 0xf7a644ee, 0x0f1837f2, 0x4b6694e0,
        0xb7bbb3a8,
    ];

    const KERNEL_TEST_KEY: HsipKey = HsipKey([0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);

    #[test]
    fn hsiphash_matches_kernel_test_vectors_for_every_length() {
        let input: Vec<u8> = (0u8..64).collect();
        for (len, &expected) in KERNEL_HSIPHASH_VECTORS.iter().enumerate() {
            assert_eq!(hsiphash(&input[..len], &KERNEL_TEST_KEY), expected, "length {len}");
        }
    }

    #[test]
    fn hsiphash_of_a_u32_is_the_four_byte_vector() {
        // test_siphash.c checks hsiphash_1u32(0x03020100) against vector 4 (bytes 00 01 02 03).
        assert_eq!(hsiphash_u32(0x0302_0100, &KERNEL_TEST_KEY), KERNEL_HSIPHASH_VECTORS[4]);
    }

    #[test]
    fn hash_32_is_the_top_bits_of_the_golden_ratio_product() {
        // By hand: 1 * 0x61C88647 = 0x61C88647, top byte 0x61.
        assert_eq!(hash_32(1, 8), 0x61);
        // 2 * 0x61C88647 = 0xC3910C8E, top byte 0xC3; top 4 bits 0xC.
        assert_eq!(hash_32(2, 8), 0xC3);
        assert_eq!(hash_32(2, 4), 0xC);
        // 3 * 0x61C88647 = 0x1_2559_92D5, mod 2^32 0x255992D5, top byte 0x25.
        assert_eq!(hash_32(3, 8), 0x25);
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 32), GOLDEN_RATIO_32);
        assert_eq!(hash_32(1, 0), 0);
    }

    #[test]
    fn addr_port_key_adds_port_to_the_folded_address_with_wraparound() {
        assert_eq!(addr_port_key(&"1.2.3.4".parse().unwrap(), 80), 0x0102_0304 + 80);
        assert_eq!(addr_port_key(&"255.255.255.255".parse().unwrap(), 2), 1);
        // fd00::1 folds to 0xfd000000 ^ 0x00000001.
        assert_eq!(addr_port_key(&"fd00::1".parse().unwrap(), 0), 0xfd00_0001);
    }
}
