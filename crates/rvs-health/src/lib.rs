//! Real-server health checking for `rvsd`.
//!
//! Pieces, each usable alone:
//! - [`check`]: the check kinds (TCP connect, HTTP/HTTPS negotiate, send/expect, UDP, DNS, ICMP echo,
//!   external command, on/off). A [`check::Check`] is built from a [`config::CheckConfig`] and run
//!   against a [`check::Target`] with a deadline; it never blocks past that deadline by much.
//! - [`state`]: the pure per-(service, real server) state machine (fall, rise, reentry, alpha).
//! - [`timing`]: pure scheduling arithmetic (warm-up, spreading, jitter) with an injectable random source.
//! - [`monitor`]: a scheduler thread plus a bounded worker pool with hard per-check timeouts; it
//!   emits [`HealthEvent`]s on a channel.
//! - [`policy`]: turns health events of one service into `rvs_api::Command`s (quiesce or remove,
//!   sorry server, quorum with hysteresis) and notify-command invocations.
//! - [`passive`]: a pure tracker of data-path observations that flags suspect real servers early.
//! - [`config`]: the serde configuration types (documented in the crate README).

use std::net::SocketAddr;

use rvs_api::ServiceId;

pub mod check;
pub mod config;
pub mod monitor;
pub mod passive;
pub mod policy;
mod pool;
pub mod state;
pub mod timing;

pub use check::{Check, CheckOutcome, Target};
pub use config::{CheckConfig, ConfigError, HealthConfig, PolicyConfig};
pub use monitor::{Monitor, MonitorHandle, MonitorOptions, TargetSpec};
pub use passive::{Observation, PassiveConfig, PassiveTracker, Suspect};
pub use policy::{NotifyInvocation, Policy, PolicyOutput};
pub use state::{HealthState, Timing, Transition};

/// What changed about one real server of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEventKind {
    /// The real server became healthy.
    Up,
    /// The real server became unhealthy.
    Down,
    /// A dynamic check (external command with `dynamic = true`) asked for this weight.
    Weight(u32),
}

/// One health change, as the monitor reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    /// The virtual service.
    pub service: ServiceId,
    /// The real server (address and real port, not the check port).
    pub real: SocketAddr,
    /// What changed.
    pub kind: HealthEventKind,
    /// Why: the failing check's reason for `Down`, a short note otherwise.
    pub reason: String,
}
