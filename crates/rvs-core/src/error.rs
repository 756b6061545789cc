//! Typed configuration errors. Each variant has the meaning of one of ipvsadm's (or the
//! kernel's) refusals; the `Display` text is ipvsadm's message where ipvsadm has one, so a
//! front end can print it unchanged.

use thiserror::Error;

/// Why a service or destination change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A non-persistent, non-fwmark service with port 0.
    #[error("Zero port specified for non-persistent service")]
    ZeroPortNonPersistent,
    /// One-packet scheduling asked for a TCP or SCTP service.
    #[error("One-Packet Scheduling is only for UDP virtual services")]
    OnePacketNotUdp,
    /// A destination of another address family than its service, not tunnelled.
    #[error("Different address family is allowed only for tunneling servers")]
    FamilyMismatch,
    /// A fwmark of 0.
    #[error("illegal virtual server fwmark specified: 0")]
    ZeroFwmark,
    /// A weight outside 0..=65535.
    #[error("illegal weight specified")]
    IllegalWeight,
    /// An upper threshold outside 0..=i32::MAX.
    #[error("illegal u_threshold specified")]
    IllegalUpperThreshold,
    /// A lower threshold outside 0..=i32::MAX.
    #[error("illegal l_threshold specified")]
    IllegalLowerThreshold,
    /// Lower threshold above a non-zero upper threshold (the kernel answers ERANGE).
    #[error("lower threshold is higher than upper threshold")]
    ThresholdOrder,
    /// A persistence timeout outside 1..=2678400 seconds.
    #[error("invalid timeout value `{0}' specified")]
    InvalidPersistTimeout(u64),
    /// An IPv6 persistence prefix outside 1..=128, or an IPv4 mask on an IPv6 service.
    #[error("illegal virtual server netmask specified")]
    InvalidNetmask,
    /// A scheduler or persistence engine that does not exist.
    #[error("Scheduler or persistence engine not found")]
    UnknownScheduler(String),
    /// A scheduler flag name that does not exist.
    #[error("invalid scheduler flag `{0}'")]
    UnknownSchedFlag(String),
    /// A scheduler flag that does not belong to the chosen scheduler (sh-* without sh ...).
    #[error("incompatible scheduler flag `{0}'")]
    IncompatibleSchedFlag(String),
    /// Tunnel options given for a non-tunnel destination, or an impossible combination.
    #[error("Tunnel options conflict with forward method")]
    TunnelOptionConflict,
    /// A GUE tunnel without its UDP port.
    #[error("--tun-port is required for gue tunnels")]
    GuePortRequired,
    /// `--tun-remcsum` with a tunnel type other than GUE.
    #[error("--tun-remcsum is only for gue tunnels")]
    RemoteChecksumNotGue,
    /// Adding a service whose key already exists.
    #[error("Service already exists")]
    ServiceExists,
    /// Editing, deleting or adding to a service that does not exist.
    #[error("No such service")]
    NoSuchService,
    /// Adding a destination that already exists in the service.
    #[error("Destination already exists")]
    DestExists,
    /// Editing or deleting a destination that does not exist.
    #[error("No such destination")]
    NoSuchDest,
    /// A timeout in `--set` outside 0..=2678400.
    #[error("invalid timeout value `{0}' specified")]
    InvalidTimeout(u64),
}
