//! The admin API of `rvsd`, used by `rvsadm` (and later the web page).
//!
//! Wire format: one JSON object per line over a Unix stream socket (default
//! [`DEFAULT_SOCKET`], mode 0600, root only). The client writes a [`Request`], the daemon
//! answers with one [`Response`]. Every change is a transaction: [`Request::Apply`] carries a
//! list of [`Command`]s that are applied all or nothing.
//!
//! The types mirror `rvs-core`'s model in a serialisable, versioned form (conversions in
//! [`convert`]); the JSON schema is what `rvsadm --json` prints, documented on each type.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub mod client;
pub mod convert;

/// Default path of the admin socket.
pub const DEFAULT_SOCKET: &str = "/run/rvsd.sock";
/// Version of this protocol; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceId {
    /// (protocol, address, port).
    Addr {
        /// Protocol.
        protocol: Proto,
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port (0 = any, persistent services only).
        port: u16,
    },
    /// Firewall mark.
    Fwmark {
        /// The mark.
        mark: u32,
        /// IPv6 instead of IPv4.
        ipv6: bool,
    },
}

/// Persistence settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistenceSpec {
    /// Template timeout in seconds.
    pub timeout: u32,
    /// IPv4 dotted netmask (e.g. "255.255.255.0") or IPv6 prefix length ("64").
    pub netmask: NetmaskSpec,
}

/// A persistence netmask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NetmaskSpec {
    /// IPv4 mask.
    V4(std::net::Ipv4Addr),
    /// IPv6 prefix length.
    V6(u8),
}

/// Everything `-A`/`-E` sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The service.
    pub id: ServiceId,
    /// Scheduler name ("wlc").
    pub scheduler: String,
    /// Scheduler flag names ("sh-port" ...).
    #[serde(default)]
    pub sched_flags: Vec<String>,
    /// Persistence, if any.
    #[serde(default)]
    pub persistence: Option<PersistenceSpec>,
    /// One-packet scheduling.
    #[serde(default)]
    pub one_packet: bool,
    /// Persistence engine ("sip").
    #[serde(default)]
    pub pe: Option<String>,
}

/// Forwarding method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum MethodSpec {
    /// NAT ("Masq").
    Masq,
    /// Direct routing ("Route").
    Route,
    /// Local node ("Local").
    Local,
    /// Tunnel ("Tunnel").
    Tunnel {
        /// "ipip", "gue" or "gre".
        tun_type: String,
        /// GUE port.
        #[serde(default)]
        tun_port: u16,
        /// "nocsum", "csum" or "remcsum".
        #[serde(default = "nocsum")]
        tun_csum: String,
    },
}

fn nocsum() -> String {
    "nocsum".into()
}

/// Everything `-a`/`-e` sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestSpec {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub method: MethodSpec,
    /// Weight.
    pub weight: u32,
    /// Upper threshold (0 = none).
    #[serde(default)]
    pub u_threshold: u32,
    /// Lower threshold (0 = none).
    #[serde(default)]
    pub l_threshold: u32,
}

/// Sync daemon role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncRole {
    /// Sends connection state.
    Master,
    /// Receives connection state.
    Backup,
}

/// `--start-daemon` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemonSpec {
    /// Role.
    pub role: SyncRole,
    /// Multicast interface.
    pub mcast_interface: String,
    /// Sync id (0 = accept all).
    pub syncid: u8,
    /// Max message length.
    pub maxlen: u16,
    /// Multicast group.
    pub group: IpAddr,
    /// UDP port.
    pub port: u16,
    /// TTL.
    pub ttl: u8,
}

/// One change. Lists of commands are applied as a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// `-A`.
    AddService(ServiceSpec),
    /// `-E`.
    EditService(ServiceSpec),
    /// `-D`.
    DeleteService {
        /// The service.
        id: ServiceId,
    },
    /// `-C`.
    Clear,
    /// `-a`.
    AddDest {
        /// The service.
        service: ServiceId,
        /// The destination.
        dest: DestSpec,
    },
    /// `-e`.
    EditDest {
        /// The service.
        service: ServiceId,
        /// The destination.
        dest: DestSpec,
    },
    /// `-d`.
    DeleteDest {
        /// The service.
        service: ServiceId,
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
    },
    /// `-Z` (one service or all).
    Zero {
        /// The service, or all.
        service: Option<ServiceId>,
    },
    /// `--set tcp tcpfin udp` (0 = unchanged).
    SetTimeouts {
        /// ESTABLISHED timeout.
        tcp: u64,
        /// FIN_WAIT timeout.
        tcpfin: u64,
        /// UDP timeout.
        udp: u64,
    },
    /// `--start-daemon`.
    StartDaemon(SyncDaemonSpec),
    /// `--stop-daemon`.
    StopDaemon {
        /// Which role.
        role: SyncRole,
    },
}

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Apply commands as one transaction.
    Apply {
        /// The commands, in order.
        commands: Vec<Command>,
    },
    /// The whole table (services, destinations, counters, rates).
    List,
    /// One service.
    ListService {
        /// The service.
        id: ServiceId,
    },
    /// The connection table.
    ListConns,
    /// Timeouts.
    Timeouts,
    /// Running sync daemons.
    Daemons,
    /// Re-read the configuration file.
    Reload,
    /// Daemon status and counters.
    Status,
    /// Drain (`drain = true`) or undrain real servers by hand, like a file in ldirectord's
    /// maintenance directory: a drained server counts as down for its service's health policy
    /// (quiesced or removed). `service` None: every service; `port` None: every port.
    SetDrain {
        /// The service, or all.
        #[serde(default)]
        service: Option<ServiceId>,
        /// Real server address.
        addr: IpAddr,
        /// Real server port, or all.
        #[serde(default)]
        port: Option<u16>,
        /// Drain (true) or put back (false).
        drain: bool,
    },
    /// Health of every real server of every configured service.
    Health,
}

/// Health of one real server, as [`Request::Health`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealHealthInfo {
    /// The service.
    pub service: ServiceId,
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Whether health checks run for it.
    pub checked: bool,
    /// Whether its checks pass (true when unchecked).
    pub healthy: bool,
    /// Drained by hand (API) or by a maintenance file.
    pub drained: bool,
    /// Why it is down (last failure), empty when up.
    pub reason: String,
    /// Weight asked for by a dynamic check, if any.
    pub dynamic_weight: Option<u32>,
}

/// Counters and rates of a service, destination or the whole director.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatsInfo {
    /// Connections.
    pub conns: u64,
    /// Packets in.
    pub inpkts: u64,
    /// Packets out.
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
    /// Connections per second.
    pub cps: u64,
    /// Packets in per second.
    pub inpps: u64,
    /// Packets out per second.
    pub outpps: u64,
    /// Bytes in per second.
    pub inbps: u64,
    /// Bytes out per second.
    pub outbps: u64,
}

/// A destination as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestInfo {
    /// Its settings.
    #[serde(flatten)]
    pub spec: DestSpec,
    /// ActiveConn.
    pub active_conns: u32,
    /// InActConn.
    pub inactive_conns: u32,
    /// PersistConn.
    pub persist_conns: u32,
    /// Counters.
    pub stats: StatsInfo,
}

/// A service as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Its settings.
    #[serde(flatten)]
    pub spec: ServiceSpec,
    /// Counters.
    pub stats: StatsInfo,
    /// Destinations in list order.
    pub dests: Vec<DestInfo>,
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Connection table size reported in the banner (`size=`).
    pub conn_tab_size: u32,
    /// Services (daemon order; listings sort as ipvsadm does).
    pub services: Vec<ServiceInfo>,
    /// Global counters.
    pub stats: StatsInfo,
}

/// A connection as `-Lnc` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnInfo {
    /// Protocol ("TCP", "UDP", "SCTP", or "IP" for fwmark templates).
    pub protocol: String,
    /// Seconds until expiry.
    pub expires: u64,
    /// State name ("ESTABLISHED", "NONE" ...).
    pub state: String,
    /// Client address.
    pub caddr: IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address (for fwmark templates: the mark as an IPv4 address).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// Persistence template.
    pub template: bool,
    /// Persistence engine name, if any.
    #[serde(default)]
    pub pe_name: Option<String>,
    /// Persistence engine data, if any.
    #[serde(default)]
    pub pe_data: Option<String>,
}

/// Connection timeouts (`--timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutsInfo {
    /// ESTABLISHED.
    pub tcp: u32,
    /// FIN_WAIT.
    pub tcpfin: u32,
    /// UDP.
    pub udp: u32,
}

/// Why a request failed. `kind` maps onto ipvsadm's messages and exit codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// Machine-readable kind: "service_exists", "no_such_service", "dest_exists",
    /// "no_such_dest", "invalid", "daemon_running", "no_daemon", "internal", "bad_request".
    pub kind: String,
    /// Human-readable message (ipvsadm's text where it has one).
    pub message: String,
    /// For a failed transaction: index of the command that failed.
    #[serde(default)]
    pub command_index: Option<usize>,
}

/// Daemon status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// Protocol version.
    pub protocol_version: u32,
    /// Daemon version.
    pub version: String,
    /// Connections in the table.
    pub connections: u64,
    /// Named counters (drops by reason, packets handled ...).
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// A response from the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// The transaction was applied.
    Applied,
    /// The table.
    Table(Table),
    /// The connections.
    Conns {
        /// Entries.
        conns: Vec<ConnInfo>,
    },
    /// Timeouts.
    Timeouts(TimeoutsInfo),
    /// Running sync daemons.
    Daemons {
        /// Daemons.
        daemons: Vec<SyncDaemonSpec>,
    },
    /// Status.
    Status(StatusInfo),
    /// Health of the real servers.
    Health {
        /// One entry per real server of every configured service.
        reals: Vec<RealHealthInfo>,
    },
    /// Failure.
    Error(ApiError),
}
