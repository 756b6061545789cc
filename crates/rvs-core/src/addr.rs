//! Address helpers shared by the engine: families, the kernel's address folding, and the
//! fixed 16-byte form used inside the connection table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family of a service, destination or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// The kernel's "address fold" used by the hashing schedulers (sh, dh, lblc, lblcr, mh):
/// the IPv4 address in host order, or the XOR of the four 32-bit words of an IPv6 address.
pub fn fold(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// An address in the connection table's fixed form: IPv4 stored as IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`), so one 16-byte field holds either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr16(pub [u8; 16]);

impl Addr16 {
    /// Converts from a std address.
    pub fn from_ip(ip: IpAddr) -> Addr16 {
        match ip {
            IpAddr::V4(a) => Addr16(a.to_ipv6_mapped().octets()),
            IpAddr::V6(a) => Addr16(a.octets()),
        }
    }

    /// Converts back, given the family recorded beside it.
    pub fn to_ip(self, family: Family) -> IpAddr {
        match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(self.0[12], self.0[13], self.0[14], self.0[15])),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(self.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_is_host_order_v4_and_xor_of_words_v6() {
        assert_eq!(fold(&"1.2.3.4".parse().unwrap()), 0x0102_0304);
        let v6: IpAddr = "0:1:0:2:0:4:0:8".parse().unwrap();
        assert_eq!(fold(&v6), 1 ^ 2 ^ 4 ^ 8);
    }

    #[test]
    fn addr16_round_trips_both_families() {
        for s in ["198.18.0.1", "fd00::1", "::ffff:1.2.3.4"] {
            let ip: IpAddr = s.parse().unwrap();
            let fam = Family::of(&ip);
            assert_eq!(Addr16::from_ip(ip).to_ip(fam), ip);
        }
    }
}
