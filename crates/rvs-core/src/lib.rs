//! rvs-core: the IPVS engine of rvs, with no I/O.
//!
//! Everything the kernel's `ip_vs` module decides lives here, as plain data and functions:
//!
//! | module | owns | kernel counterpart |
//! |---|---|---|
//! | [`service`] | virtual services: key, scheduler, persistence, flags | `ip_vs_service` |
//! | [`dest`] | real servers: forwarding method, weight, thresholds, counters | `ip_vs_dest` |
//! | [`sched`] | the schedulers, one file each (`sched/wlc.rs` ...) | `ip_vs_*.c` |
//! | [`conn`] | the connection table, state machines, timeouts, templates | `ip_vs_conn.c`, `ip_vs_proto_*.c` |
//! | [`engine`] | services + destinations + connections: the per-packet decisions | `ip_vs_core.c`, `ip_vs_ctl.c` |
//! | [`defense`] | DoS defences (drop_entry, drop_packet, secure_tcp) | `defense_work` in `ip_vs_ctl.c` |
//! | [`stats`] | counters and the rate estimator | `ip_vs_est.c` |
//!
//! Time ([`time::Instant`]) and randomness ([`random::Random`]) are passed in, so every
//! behaviour is testable without sleeping.

pub mod addr;
pub mod conn;
pub mod defense;
pub mod dest;
pub mod engine;
pub mod error;
pub mod random;
pub mod sched;
pub mod service;
pub mod stats;
pub mod time;

pub use dest::{DestConfig, DestId, Destination, ForwardMethod, TunnelChecksum, TunnelConfig, TunnelType};
pub use error::ConfigError;
pub use random::{Random, SplitMix64};
pub use sched::{SchedFlags, Scheduler, SchedulerKind};
pub use service::{Netmask, Persistence, Protocol, ServiceConfig, ServiceKey};
pub use time::Instant;
