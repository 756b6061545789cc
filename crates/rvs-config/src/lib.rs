//! rvs-config: the TOML configuration of `rvsd`.
//!
//! One file describes the whole director: where it forwards (`[director]`), the virtual
//! services and their real servers (`[[service]]`, `[[service.real]]`), the
//! `net.ipv4.vs.*` switches (`[sysctl]`), the connection timeouts (`[timeouts]`) and the
//! connection-sync daemons (`[[sync_daemon]]`). `docs/config.md` documents every field.
//!
//! - [`Config::parse`] / [`Config::load`] read a file; every error is a [`ConfigError`] that
//!   names the file, line, column and field. Unknown keys are errors. Values are checked with
//!   ipvsadm's meaning, reusing `rvs-core`'s validation through `rvs-api`'s conversions.
//! - [`Config::commands`] is the admin-API transaction that builds the configuration on an
//!   empty director; [`diff`] (and [`diff_tables`]) the minimal transaction from one state to
//!   another, which edits what changed in place so a reload keeps existing connections.
//!
//! Modules: `raw` (the serde mirror of the file), `validate` (meaning and canonical form),
//! `diff` (transactions), `error` (the error type and locations).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rvs_api::{DestSpec, ServiceId, ServiceSpec, SyncDaemonSpec, TimeoutsInfo};
use rvs_core::engine::Tunables;

mod diff;
mod error;
pub mod failover;
pub mod health;
pub mod import;
mod raw;
mod validate;

pub use diff::{diff, diff_tables};
pub use error::{ConfigError, ErrorKind};
pub use health::{HealthPlan, HealthSettings, RealHealth, ServiceHealth};
pub use raw::LogLevel;
pub use validate::describe_service;

/// A validated configuration. Every spec in it is in canonical form (what the engine would
/// list back), so configurations and running tables compare field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[director]`.
    pub director: Director,
    /// `[[service]]`, in file order.
    pub services: Vec<ServiceEntry>,
    /// `[sysctl]`.
    pub sysctl: Sysctl,
    /// `[timeouts]`, with the kernel defaults for what the file leaves out.
    pub timeouts: TimeoutsInfo,
    /// `[[sync_daemon]]`, in file order.
    pub sync_daemons: Vec<SyncDaemonSpec>,
    /// `[health]`, `[service.health]` and `[[service.real.check]]`.
    pub health: HealthPlan,
    /// `[[vrrp]]` failover instances, in file order.
    pub vrrp: Vec<failover::VrrpInstance>,
    /// `[conn_sync]`: connection sync between the directors.
    pub conn_sync: Option<failover::ConnSync>,
}

/// `[director]`: the director itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Director {
    /// Interfaces the data plane forwards on.
    pub interfaces: Vec<String>,
    /// The director's own addresses: never balanced; the first of each family is the source
    /// of tunnelled packets.
    pub addresses: Vec<IpAddr>,
    /// Admin socket path.
    pub socket: PathBuf,
    /// Most connection entries kept.
    pub max_connections: usize,
    /// Log level.
    pub log_level: LogLevel,
}

impl Director {
    /// The first IPv4 address: source of IPv4 tunnel packets.
    pub fn source_v4(&self) -> Option<Ipv4Addr> {
        self.addresses.iter().find_map(|a| match a {
            IpAddr::V4(v) => Some(*v),
            IpAddr::V6(_) => None,
        })
    }

    /// The first IPv6 address: source of IPv6 tunnel packets.
    pub fn source_v6(&self) -> Option<Ipv6Addr> {
        self.addresses.iter().find_map(|a| match a {
            IpAddr::V6(v) => Some(*v),
            IpAddr::V4(_) => None,
        })
    }
}

impl Default for Director {
    fn default() -> Self {
        Director {
            interfaces: Vec::new(),
            addresses: Vec::new(),
            socket: PathBuf::from(rvs_api::DEFAULT_SOCKET),
            max_connections: rvs_core::engine::DEFAULT_MAX_CONNS,
            log_level: LogLevel::Info,
        }
    }
}

/// A virtual service with its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The service (`-A`).
    pub spec: ServiceSpec,
    /// Its real servers (`-a`), in order; ports are the effective ones (the virtual port for
    /// DR and TUN servers of address services, as ipvsadm forces it).
    pub reals: Vec<DestSpec>,
}

/// `[sysctl]`: the `net.ipv4.vs.*` switches, with the kernel's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sysctl {
    /// `expire_nodest_conn`.
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template`.
    pub expire_quiescent_template: bool,
    /// `conn_reuse_mode` (0..=3).
    pub conn_reuse_mode: u8,
    /// `sloppy_tcp`.
    pub sloppy_tcp: bool,
    /// `sloppy_sctp`.
    pub sloppy_sctp: bool,
    /// `drop_entry` mode (0..=3).
    pub drop_entry: u8,
    /// `drop_packet` mode (0..=3).
    pub drop_packet: u8,
    /// `secure_tcp` mode (0..=3).
    pub secure_tcp: u8,
    /// `amemthresh`, pages.
    pub amemthresh: u64,
    /// `am_droprate`.
    pub am_droprate: u32,
}

impl Default for Sysctl {
    fn default() -> Self {
        let t = Tunables::default();
        Sysctl {
            expire_nodest_conn: t.expire_nodest_conn,
            expire_quiescent_template: t.expire_quiescent_template,
            conn_reuse_mode: t.conn_reuse_mode,
            sloppy_tcp: t.sloppy_tcp,
            sloppy_sctp: t.sloppy_sctp,
            drop_entry: 0,
            drop_packet: 0,
            secure_tcp: 0,
            amemthresh: rvs_core::defense::DEFAULT_AMEMTHRESH,
            am_droprate: rvs_core::defense::DEFAULT_AM_DROPRATE,
        }
    }
}

impl Sysctl {
    /// The engine switches.
    pub fn tunables(&self) -> Tunables {
        Tunables {
            expire_nodest_conn: self.expire_nodest_conn,
            expire_quiescent_template: self.expire_quiescent_template,
            conn_reuse_mode: self.conn_reuse_mode,
            sloppy_tcp: self.sloppy_tcp,
            sloppy_sctp: self.sloppy_sctp,
        }
    }
}

/// The kernel's default timeouts (tcp 900, tcpfin 120, udp 300).
pub fn default_timeouts() -> TimeoutsInfo {
    let (tcp, tcpfin, udp) = rvs_core::conn::Timeouts::default().get();
    TimeoutsInfo { tcp, tcpfin, udp }
}

/// The state a transaction works on: services with real servers, timeouts, sync daemons.
/// Built from a [`Config`] or from a running director's listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Services in order.
    pub services: Vec<ServiceEntry>,
    /// Timeouts.
    pub timeouts: TimeoutsInfo,
    /// Sync daemons.
    pub sync_daemons: Vec<SyncDaemonSpec>,
}

impl TableSpec {
    /// An empty director: no services, default timeouts, no daemons.
    pub fn empty() -> TableSpec {
        TableSpec { services: Vec::new(), timeouts: default_timeouts(), sync_daemons: Vec::new() }
    }

    /// The state of a running director from its listings.
    pub fn from_listing(
        table: &rvs_api::Table,
        timeouts: TimeoutsInfo,
        sync_daemons: Vec<SyncDaemonSpec>,
    ) -> TableSpec {
        let services = table
            .services
            .iter()
            .map(|s| ServiceEntry { spec: s.spec.clone(), reals: s.dests.iter().map(|d| d.spec.clone()).collect() })
            .collect();
        TableSpec { services, timeouts, sync_daemons }
    }

    /// The service with this id.
    pub fn service(&self, id: &ServiceId) -> Option<&ServiceEntry> {
        self.services.iter().find(|s| s.spec.id == *id)
    }
}

impl Config {
    /// Parses and validates `source`; `file` names it in errors.
    pub fn parse(source: &str, file: &str) -> Result<Config, ConfigError> {
        validate::parse(source, file)
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| ConfigError {
            kind: ErrorKind::Io,
            file: file.clone(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&source, &file)
    }

    /// Like [`Config::load`], and also checks that the `[director] interfaces` exist on this
    /// host (in this network namespace), with the line of an unknown one.
    pub fn load_for_host(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let config = Config::load(path)?;
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path).unwrap_or_default();
        validate::check_interfaces(&source, &file, |name| Path::new("/sys/class/net").join(name).exists())?;
        Ok(config)
    }

    /// [`Config::load_for_host`]'s interface check on a source text, with `exists` telling
    /// which interface names exist.
    pub fn check_interfaces(source: &str, file: &str, exists: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        validate::check_interfaces(source, file, exists)
    }

    /// The state this configuration describes.
    pub fn table(&self) -> TableSpec {
        TableSpec { services: self.services.clone(), timeouts: self.timeouts, sync_daemons: self.sync_daemons.clone() }
    }

    /// The transaction that builds this configuration on an empty director: every service
    /// followed by its real servers, the timeouts if they are not the defaults, the sync
    /// daemons.
    pub fn commands(&self) -> Vec<rvs_api::Command> {
        diff_tables(&TableSpec::empty(), &self.table())
    }
}
