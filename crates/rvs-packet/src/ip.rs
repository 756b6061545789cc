//! Things shared by IPv4 and IPv6: protocol numbers, the address family, and the
//! DSCP/ECN split of the traffic-class byte (with RFC 6040 tunnel ECN rules).

/// IP protocol / IPv6 next-header numbers this crate knows.
pub mod protocol {
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulated (IPIP, 4in4 / 4in6).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated (6in4 / 6in6).
    pub const IPV6: u8 = 41;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const NO_NEXT_HEADER: u8 = 59;
    /// IPv6 destination options.
    pub const DEST_OPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// ECN codepoints (RFC 3168), the low two bits of the traffic-class byte.
pub mod ecn {
    /// Not ECN-capable transport.
    pub const NOT_ECT: u8 = 0b00;
    /// ECN-capable, ECT(1).
    pub const ECT1: u8 = 0b01;
    /// ECN-capable, ECT(0).
    pub const ECT0: u8 = 0b10;
    /// Congestion experienced.
    pub const CE: u8 = 0b11;
    /// Mask of the ECN bits in the traffic-class byte.
    pub const MASK: u8 = 0b11;
}

/// The outer traffic-class byte of a tunnel packet (RFC 6040 §4.1, normal mode):
/// DSCP copied from the inner packet, ECN copied except that CE becomes ECT(0).
#[must_use]
pub const fn encapsulated_tos(inner_tos: u8) -> u8 {
    let inner_ecn = inner_tos & ecn::MASK;
    let outer_ecn = if inner_ecn == ecn::CE { ecn::ECT0 } else { inner_ecn };
    (inner_tos & !ecn::MASK) | outer_ecn
}

/// The inner ECN field after decapsulation (RFC 6040 §4.2), or `None` when the
/// combination requires the packet to be dropped (outer CE on a not-ECT inner).
#[must_use]
pub const fn decapsulated_ecn(inner_ecn: u8, outer_ecn: u8) -> Option<u8> {
    let inner = inner_ecn & ecn::MASK;
    let outer = outer_ecn & ecn::MASK;
    match (inner, outer) {
        (ecn::NOT_ECT, ecn::CE) => None,
        (ecn::NOT_ECT, _) => Some(ecn::NOT_ECT),
        (_, ecn::CE) => Some(ecn::CE),
        (ecn::ECT0, ecn::ECT1) => Some(ecn::ECT1),
        _ => Some(inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6040_encapsulation_table() {
        // DSCP 46 (EF) = 0xb8; each inner ECN and the outer ECN it must give.
        assert_eq!(encapsulated_tos(0xb8 | ecn::NOT_ECT), 0xb8 | ecn::NOT_ECT);
        assert_eq!(encapsulated_tos(0xb8 | ecn::ECT0), 0xb8 | ecn::ECT0);
        assert_eq!(encapsulated_tos(0xb8 | ecn::ECT1), 0xb8 | ecn::ECT1);
        assert_eq!(encapsulated_tos(0xb8 | ecn::CE), 0xb8 | ecn::ECT0);
    }

    #[test]
    fn rfc6040_decapsulation_table() {
        // Figure 4 of RFC 6040: rows inner, columns outer Not-ECT, ECT(0), ECT(1), CE.
        use ecn::*;
        let rows = [
            (NOT_ECT, [Some(NOT_ECT), Some(NOT_ECT), Some(NOT_ECT), None]),
            (ECT0, [Some(ECT0), Some(ECT0), Some(ECT1), Some(CE)]),
            (ECT1, [Some(ECT1), Some(ECT1), Some(ECT1), Some(CE)]),
            (CE, [Some(CE), Some(CE), Some(CE), Some(CE)]),
        ];
        for (inner, expected) in rows {
            for (outer, want) in [NOT_ECT, ECT0, ECT1, CE].into_iter().zip(expected) {
                assert_eq!(decapsulated_ecn(inner, outer), want, "inner {inner} outer {outer}");
            }
        }
    }
}
