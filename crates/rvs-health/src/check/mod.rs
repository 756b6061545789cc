//! Check kinds and their common frame: a [`Check`] is compiled once from a [`CheckConfig`]
//! (regexes compiled, payloads decoded, TLS set up) and then run any number of times against a
//! [`Target`] with a deadline. Every kind honours the deadline through socket timeouts or by
//! killing its child process, so a run returns close to the deadline at the latest; the
//! [`crate::monitor`] adds a hard limit on top for safety.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rvs_api::{Proto, ServiceId};

use crate::config::{CheckConfig, ConfigError, secs};

pub mod dns;
pub mod external;
pub mod http;
pub mod icmp;
pub mod net;
pub mod pattern;
pub mod send_expect;
pub mod tcp;
pub mod tls;
pub mod udp;

/// What a check is run against: the service (for `{vip}`/`{vport}` placeholders) and the real
/// server. Checks connect from the director to the real server's address, whatever the
/// forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// The virtual service.
    pub service: ServiceId,
    /// The real server's address and real port.
    pub real: SocketAddr,
}

impl Target {
    /// `{vip}`: the virtual address, or the fwmark number for fwmark services (as ldirectord).
    pub fn vip_text(&self) -> String {
        match self.service {
            ServiceId::Addr { addr, .. } => addr.to_string(),
            ServiceId::Fwmark { mark, .. } => mark.to_string(),
        }
    }

    /// `{vport}`: the virtual port (0 for fwmark services).
    pub fn vport(&self) -> u16 {
        match self.service {
            ServiceId::Addr { port, .. } => port,
            ServiceId::Fwmark { .. } => 0,
        }
    }

    /// The service as short text: `tcp:198.18.0.1:80`, `udp:[fd00::1]:53`, `fwmark:7`.
    pub fn service_text(&self) -> String {
        service_text(&self.service)
    }
}

/// The service as short text: `tcp:198.18.0.1:80`, `udp:[fd00::1]:53`, `fwmark:7`.
pub fn service_text(service: &ServiceId) -> String {
    match service {
        ServiceId::Addr { protocol, addr, port } => {
            let p = match protocol {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
                Proto::Sctp => "sctp",
            };
            format!("{p}:{}", SocketAddr::new(*addr, *port))
        }
        ServiceId::Fwmark { mark, ipv6 } => {
            if *ipv6 {
                format!("fwmark6:{mark}")
            } else {
                format!("fwmark:{mark}")
            }
        }
    }
}

/// The result of one check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The check passed; `weight` is set by dynamic external checks.
    Pass {
        /// Dynamic weight, if the check reports one.
        weight: Option<u32>,
    },
    /// The check failed.
    Fail {
        /// Why, for logs and the `Down` event.
        reason: String,
    },
}

impl CheckOutcome {
    /// A failure with this reason.
    pub fn fail(reason: impl Into<String>) -> Self {
        CheckOutcome::Fail { reason: reason.into() }
    }

    /// A pass without weight.
    pub const PASS: CheckOutcome = CheckOutcome::Pass { weight: None };

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        matches!(self, CheckOutcome::Pass { .. })
    }
}

#[derive(Debug)]
enum Kind {
    Tcp(tcp::TcpCheck),
    Http(Box<http::HttpCheck>),
    SendExpect(send_expect::SendExpectCheck),
    Udp(udp::UdpCheck),
    Dns(dns::DnsCheck),
    Ping(icmp::PingCheck),
    External(external::ExternalCheck),
    Fixed(bool),
}

/// A compiled check.
#[derive(Debug)]
pub struct Check {
    kind: Kind,
    timeout: Option<Duration>,
}

fn opt_secs(field: &'static str, v: Option<f64>) -> Result<Option<Duration>, ConfigError> {
    v.map(|s| secs(field, s)).transpose()
}

impl Check {
    /// Compiles a check from its configuration.
    pub fn from_config(config: &CheckConfig) -> Result<Check, ConfigError> {
        let (kind, timeout) = match config {
            CheckConfig::Tcp(c) => (Kind::Tcp(tcp::TcpCheck::new(c)), opt_secs("timeout", c.timeout)?),
            CheckConfig::Http(c) => {
                (Kind::Http(Box::new(http::HttpCheck::new(c, false)?)), opt_secs("timeout", c.timeout)?)
            }
            CheckConfig::Https(c) => {
                (Kind::Http(Box::new(http::HttpCheck::new(c, true)?)), opt_secs("timeout", c.timeout)?)
            }
            CheckConfig::SendExpect(c) => {
                (Kind::SendExpect(send_expect::SendExpectCheck::new(c)?), opt_secs("timeout", c.timeout)?)
            }
            CheckConfig::Udp(c) => (Kind::Udp(udp::UdpCheck::new(c)?), opt_secs("timeout", c.timeout)?),
            CheckConfig::Dns(c) => (Kind::Dns(dns::DnsCheck::new(c)?), opt_secs("timeout", c.timeout)?),
            CheckConfig::Ping(c) => (Kind::Ping(icmp::PingCheck::new(c)), opt_secs("timeout", c.timeout)?),
            CheckConfig::External(c) => {
                (Kind::External(external::ExternalCheck::new(c)?), opt_secs("timeout", c.timeout)?)
            }
            CheckConfig::On => (Kind::Fixed(true), None),
            CheckConfig::Off => (Kind::Fixed(false), None),
        };
        Ok(Check { kind, timeout })
    }

    /// The check's own timeout, if it overrides the target's.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Short name of the kind ("tcp", "http", ...), used in reasons.
    pub fn name(&self) -> &'static str {
        match &self.kind {
            Kind::Tcp(_) => "tcp",
            Kind::Http(h) => {
                if h.is_tls() {
                    "https"
                } else {
                    "http"
                }
            }
            Kind::SendExpect(_) => "send_expect",
            Kind::Udp(_) => "udp",
            Kind::Dns(_) => "dns",
            Kind::Ping(_) => "ping",
            Kind::External(_) => "external",
            Kind::Fixed(true) => "on",
            Kind::Fixed(false) => "off",
        }
    }

    /// Runs the check once; returns by `deadline` (plus scheduling slack) at the latest.
    pub fn run(&self, target: &Target, deadline: Instant) -> CheckOutcome {
        match &self.kind {
            Kind::Tcp(c) => c.run(target, deadline),
            Kind::Http(c) => c.run(target, deadline),
            Kind::SendExpect(c) => c.run(target, deadline),
            Kind::Udp(c) => c.run(target, deadline),
            Kind::Dns(c) => c.run(target, deadline),
            Kind::Ping(c) => c.run(target, deadline),
            Kind::External(c) => c.run(target, deadline),
            Kind::Fixed(true) => CheckOutcome::PASS,
            Kind::Fixed(false) => CheckOutcome::fail("check is off"),
        }
    }
}

/// The address a check connects to: the real server's address with the check port, or the real
/// port when none is configured.
pub(crate) fn check_addr(target: &Target, port: Option<u16>) -> SocketAddr {
    SocketAddr::new(target.real.ip(), port.unwrap_or(target.real.port()))
}

/// Whether a bind address has the same family as the destination.
pub(crate) fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}
