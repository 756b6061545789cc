//! The file as written: serde structures that mirror the TOML tables one to one, with every
//! value that is checked later wrapped in [`Spanned`] so its error can point at it. Unknown
//! keys are refused here (`deny_unknown_fields`); meaning is checked in `validate`.

use rvs_api::{Proto, SyncRole};
use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub director: Option<Spanned<RawDirector>>,
    #[serde(default)]
    pub service: Vec<Spanned<RawService>>,
    #[serde(default)]
    pub sysctl: Option<RawSysctl>,
    #[serde(default)]
    pub timeouts: Option<RawTimeouts>,
    #[serde(default)]
    pub sync_daemon: Vec<Spanned<RawSyncDaemon>>,
    #[serde(default)]
    pub health: Option<Spanned<crate::health::RawHealthSettings>>,
    // Failover (crate::failover).
    #[serde(default)]
    pub vrrp: Vec<Spanned<crate::failover::RawVrrp>>,
    #[serde(default)]
    pub conn_sync: Option<Spanned<crate::failover::RawConnSync>>,
}

/// `[director]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDirector {
    #[serde(default)]
    pub interfaces: Vec<Spanned<String>>,
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    #[serde(default)]
    pub socket: Option<Spanned<String>>,
    #[serde(default)]
    pub max_connections: Option<Spanned<u64>>,
    #[serde(default)]
    pub log_level: Option<Spanned<LogLevel>>,
}

/// `log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// State changes (the default).
    #[default]
    Info,
    /// Details.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The name `tracing` filters use.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `persistent = 360` or `persistent = true` (ipvsadm's `-p` with its optional argument).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawPersistent {
    Switch(bool),
    Seconds(i64),
}

/// `netmask = "255.255.255.0"` (IPv4) or `netmask = 64` / `"64"` (IPv6 prefix).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawNetmask {
    Prefix(i64),
    Text(String),
}

/// `[[service]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    #[serde(default)]
    pub vip: Option<Spanned<String>>,
    #[serde(default)]
    pub protocol: Option<Spanned<Proto>>,
    #[serde(default)]
    pub fwmark: Option<Spanned<u32>>,
    #[serde(default)]
    pub ipv6: Option<Spanned<bool>>,
    #[serde(default)]
    pub scheduler: Option<Spanned<String>>,
    #[serde(default)]
    pub sched_flags: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub persistent: Option<Spanned<RawPersistent>>,
    #[serde(default)]
    pub netmask: Option<Spanned<RawNetmask>>,
    #[serde(default)]
    pub one_packet: Option<Spanned<bool>>,
    #[serde(default)]
    pub pe: Option<Spanned<String>>,
    #[serde(default)]
    pub real: Vec<Spanned<RawReal>>,
    #[serde(default)]
    pub health: Option<Spanned<crate::health::RawServiceHealth>>,
}

/// Forwarding method names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawMethod {
    #[serde(alias = "route", alias = "gatewaying")]
    Dr,
    #[serde(alias = "masq", alias = "masquerading")]
    Nat,
    #[serde(alias = "tunnel", alias = "ipip")]
    Tun,
}

/// `tun_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawTunType {
    Ipip,
    Gue,
    Gre,
}

/// `tun_csum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawTunCsum {
    Nocsum,
    Csum,
    Remcsum,
}

/// `[[service.real]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReal {
    pub address: Spanned<String>,
    #[serde(default)]
    pub method: Option<Spanned<RawMethod>>,
    #[serde(default)]
    pub weight: Option<Spanned<u32>>,
    #[serde(default)]
    pub u_threshold: Option<Spanned<u32>>,
    #[serde(default)]
    pub l_threshold: Option<Spanned<u32>>,
    #[serde(default)]
    pub tun_type: Option<Spanned<RawTunType>>,
    #[serde(default)]
    pub tun_port: Option<Spanned<u16>>,
    #[serde(default)]
    pub tun_csum: Option<Spanned<RawTunCsum>>,
    #[serde(default)]
    pub check: Vec<Spanned<rvs_health::CheckConfig>>,
}

/// A sysctl switch: `true`/`false` or `1`/`0`, as written to /proc/sys.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawSwitch {
    Bool(bool),
    Number(i64),
}

/// `[sysctl]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSysctl {
    #[serde(default)]
    pub expire_nodest_conn: Option<Spanned<RawSwitch>>,
    #[serde(default)]
    pub expire_quiescent_template: Option<Spanned<RawSwitch>>,
    #[serde(default)]
    pub conn_reuse_mode: Option<Spanned<i64>>,
    #[serde(default)]
    pub sloppy_tcp: Option<Spanned<RawSwitch>>,
    #[serde(default)]
    pub sloppy_sctp: Option<Spanned<RawSwitch>>,
    #[serde(default)]
    pub drop_entry: Option<Spanned<i64>>,
    #[serde(default)]
    pub drop_packet: Option<Spanned<i64>>,
    #[serde(default)]
    pub secure_tcp: Option<Spanned<i64>>,
    #[serde(default)]
    pub amemthresh: Option<Spanned<i64>>,
    #[serde(default)]
    pub am_droprate: Option<Spanned<i64>>,
}

/// `[timeouts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    #[serde(default)]
    pub tcp: Option<Spanned<i64>>,
    #[serde(default)]
    pub tcpfin: Option<Spanned<i64>>,
    #[serde(default)]
    pub udp: Option<Spanned<i64>>,
}

/// `[[sync_daemon]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSyncDaemon {
    pub role: Spanned<SyncRole>,
    #[serde(default)]
    pub interface: Option<Spanned<String>>,
    #[serde(default)]
    pub syncid: Option<Spanned<u8>>,
    #[serde(default)]
    pub maxlen: Option<Spanned<u16>>,
    #[serde(default)]
    pub group: Option<Spanned<String>>,
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    #[serde(default)]
    pub ttl: Option<Spanned<u8>>,
}
