//! What a backup needs to install one synced connection or persistence template, independent of
//! the message version that carried it, plus the IPVS connection flag bits the protocol uses.

use std::net::IpAddr;

/// Forwarding method bits.
pub const CONN_F_FWD_MASK: u32 = 0x0007;
/// Entry created by sync (set by the receiver).
pub const CONN_F_SYNC: u32 = 0x0020;
/// Hashed entry (never sent).
pub const CONN_F_HASHED: u32 = 0x0040;
/// No output packets seen.
pub const CONN_F_NOOUTPUT: u32 = 0x0080;
/// Not established.
pub const CONN_F_INACTIVE: u32 = 0x0100;
/// Output sequence adjust needed.
pub const CONN_F_OUT_SEQ: u32 = 0x0200;
/// Input sequence adjust needed.
pub const CONN_F_IN_SEQ: u32 = 0x0400;
/// Either sequence adjust.
pub const CONN_F_SEQ_MASK: u32 = 0x0600;
/// Client port not yet known (persistence with port 0).
pub const CONN_F_NO_CPORT: u32 = 0x0800;
/// A persistence template, not a connection.
pub const CONN_F_TEMPLATE: u32 = 0x1000;
/// One-packet scheduling (never synced).
pub const CONN_F_ONE_PACKET: u32 = 0x2000;
/// Flags a backup keeps from a received entry (the kernel's IP_VS_CONN_F_BACKUP_MASK).
pub const CONN_F_BACKUP_MASK: u32 =
    CONN_F_FWD_MASK | CONN_F_NOOUTPUT | CONN_F_INACTIVE | CONN_F_SEQ_MASK | CONN_F_NO_CPORT | CONN_F_TEMPLATE;

/// Longest persistence-engine data.
pub const PE_DATA_MAX: usize = 255;
/// Longest persistence-engine name.
pub const PE_NAME_MAX: usize = 16;

/// One direction's TCP sequence adjustment (NAT with payload rewriting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqAdjust {
    /// Sequence number where the delta starts applying.
    pub init_seq: u32,
    /// Current delta.
    pub delta: u32,
    /// Delta before `init_seq`.
    pub previous_delta: u32,
}

/// Both directions' sequence adjustments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqOptions {
    /// Client-to-server direction.
    pub in_seq: SeqAdjust,
    /// Server-to-client direction.
    pub out_seq: SeqAdjust,
}

/// A connection or template as synced.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyncEntry {
    /// IP protocol (6 TCP, 17 UDP, 132 SCTP; templates carry the service's).
    pub protocol: u8,
    /// Client address.
    pub caddr: IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Destination (real server) address.
    pub daddr: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// Firewall mark of the service (0 if none; always 0 from v0).
    pub fwmark: u32,
    /// Connection flags as sent (see `CONN_F_*`); mask with [`CONN_F_BACKUP_MASK`] before installing.
    pub flags: u32,
    /// Protocol state number.
    pub state: u16,
    /// Remaining timeout in seconds (0 = use the protocol's default for the state; always 0 from v0).
    pub timeout_s: u32,
    /// Sequence adjustments, if the connection has them.
    pub seq: Option<SeqOptions>,
    /// Persistence-engine data (e.g. SIP Call-ID), at most 255 bytes.
    pub pe_data: Option<Vec<u8>>,
    /// Persistence-engine name, at most 16 bytes (required when `pe_data` is present).
    pub pe_name: Option<Vec<u8>>,
}

impl SyncEntry {
    /// Whether this is a persistence template.
    pub fn is_template(&self) -> bool {
        self.flags & CONN_F_TEMPLATE != 0
    }

    /// Whether all three addresses are IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.caddr.is_ipv6()
    }

    /// Whether the three addresses share one family (required by the wire format).
    pub fn same_family(&self) -> bool {
        self.caddr.is_ipv6() == self.vaddr.is_ipv6() && self.vaddr.is_ipv6() == self.daddr.is_ipv6()
    }

    /// The flags a backup installs: masked to [`CONN_F_BACKUP_MASK`] and marked [`CONN_F_SYNC`].
    pub fn backup_flags(&self) -> u32 {
        (self.flags & CONN_F_BACKUP_MASK) | CONN_F_SYNC
    }
}
