//! Error types: why a frame was not parsed (each variant is a drop/pass-to-kernel
//! reason the pipeline counts), why a rewrite was refused, and why a packet could
//! not be built or encapsulated.

use thiserror::Error;

/// Why a frame or packet could not be parsed. Each variant is one counted reason;
/// [`ParseError::reason`] gives a stable name for counters and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum ParseError {
    /// The buffer ends before a header (or the length a header announces) does.
    #[error("truncated packet")]
    Truncated,
    /// An IP header whose version nibble is not the one its ethertype/protocol says.
    #[error("bad IP version")]
    BadVersion,
    /// IPv4 IHL below 5 or TCP data offset below 5.
    #[error("bad header length")]
    BadHeaderLength,
    /// IPv4 total length (or IPv6 payload length) inconsistent with the header or buffer.
    #[error("bad total length")]
    BadTotalLength,
    /// The IPv4 header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    BadIpv4Checksum,
    /// An IPv4/IPv6 fragment (other than an IPv6 atomic fragment); needs reassembly.
    #[error("fragment")]
    Fragment,
    /// More IPv6 extension headers than [`crate::ipv6::MAX_EXTENSION_HEADERS`].
    #[error("too many IPv6 extension headers")]
    TooManyExtHeaders,
    /// An ethertype other than IPv4, IPv6 or ARP (after VLAN tags).
    #[error("unsupported ethertype")]
    UnsupportedEtherType,
    /// More than two stacked VLAN tags.
    #[error("too many VLAN tags")]
    TooManyVlanTags,
    /// ARP for something other than Ethernet/IPv4, or an unknown ARP operation.
    #[error("unsupported ARP packet")]
    UnsupportedArp,
    /// A UDP length field below 8 or beyond the IP payload.
    #[error("bad UDP length")]
    BadUdpLength,
    /// An ICMP error whose quoted packet is unusable (too short, wrong version,
    /// quoted fragment without ports, or an ICMP error quoting an ICMP error).
    #[error("bad packet quoted in ICMP error")]
    BadIcmpQuote,
    /// Decapsulation of a packet that is not IPIP / IPv6-in-IP.
    #[error("not a tunnel packet")]
    NotTunnel,
    /// Decapsulation of an outer CE-marked packet whose inner packet is not
    /// ECN-capable: RFC 6040 says drop it.
    #[error("outer CE on a not-ECT inner packet")]
    EcnNotEct,
}

impl ParseError {
    /// A stable snake_case name for counters and logs.
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::BadVersion => "bad_version",
            Self::BadHeaderLength => "bad_header_length",
            Self::BadTotalLength => "bad_total_length",
            Self::BadIpv4Checksum => "bad_ipv4_checksum",
            Self::Fragment => "fragment",
            Self::TooManyExtHeaders => "too_many_ext_headers",
            Self::UnsupportedEtherType => "unsupported_ethertype",
            Self::TooManyVlanTags => "too_many_vlan_tags",
            Self::UnsupportedArp => "unsupported_arp",
            Self::BadUdpLength => "bad_udp_length",
            Self::BadIcmpQuote => "bad_icmp_quote",
            Self::NotTunnel => "not_tunnel",
            Self::EcnNotEct => "ecn_not_ect",
        }
    }

    /// Every variant, for registering counters.
    pub const ALL: [ParseError; 14] = [
        Self::Truncated,
        Self::BadVersion,
        Self::BadHeaderLength,
        Self::BadTotalLength,
        Self::BadIpv4Checksum,
        Self::Fragment,
        Self::TooManyExtHeaders,
        Self::UnsupportedEtherType,
        Self::TooManyVlanTags,
        Self::UnsupportedArp,
        Self::BadUdpLength,
        Self::BadIcmpQuote,
        Self::NotTunnel,
        Self::EcnNotEct,
    ];
}

/// Why an in-place rewrite was refused. The frame is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum RewriteError {
    /// The new address is of the other family than the packet.
    #[error("address family does not match the packet")]
    FamilyMismatch,
    /// Only TCP and UDP flows (and ICMP errors quoting them) are translated.
    #[error("protocol not translatable")]
    UnsupportedProtocol,
    /// The operation needs an ICMP error quoting a flow and the packet is not one
    /// (or the other way round).
    #[error("not an ICMP error")]
    NotIcmpError,
    /// The operation applies to IP packets and this frame is ARP.
    #[error("not an IP packet")]
    NotIp,
    /// TTL / hop limit is 0 or 1: the packet must not be forwarded.
    #[error("TTL or hop limit exceeded")]
    TtlExceeded,
    /// The summary does not describe this buffer (offsets beyond its end).
    #[error("summary does not match the buffer")]
    SummaryMismatch,
}

/// Why a packet could not be built or encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum BuildError {
    /// The output buffer (or its headroom) is too small.
    #[error("buffer too small")]
    BufferTooSmall,
    /// The result would exceed the MTU; the inner packet may be at most
    /// `inner_mtu` bytes. `dont_fragment` tells whether the inner packet forbids
    /// fragmentation (always true for IPv6 inner packets).
    #[error("packet too big: inner MTU {inner_mtu}")]
    TooBig {
        /// The largest inner packet that fits (MTU minus the outer headers).
        inner_mtu: usize,
        /// Whether the sender must be told (IPv4 DF set, or IPv6).
        dont_fragment: bool,
    },
    /// The input packet is not a usable IP packet.
    #[error("invalid input packet: {0}")]
    Invalid(ParseError),
    /// No ICMP error may be sent about this packet (it is an ICMP error, a
    /// non-first fragment, from an unspecified/multicast/broadcast source or to a
    /// multicast/broadcast destination, or an IPv4 packet without DF asked for a
    /// fragmentation-needed reply).
    #[error("an ICMP error must not be sent about this packet")]
    NotAllowed,
    /// The source and destination addresses given are of different families.
    #[error("address families do not match")]
    FamilyMismatch,
}

impl From<ParseError> for BuildError {
    fn from(e: ParseError) -> Self {
        Self::Invalid(e)
    }
}
