//! What a lab should look like: the forwarding method, how many directors and
//! real servers, how the directors forward until rvs's data plane exists, and
//! which HTTP server the real servers run.

use std::fmt;

use crate::error::{LabError, Result};

/// LVS forwarding method the topology is wired for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Direct routing: directors and real servers share the LAN; real servers
    /// hold the VIP on lo and answer the client directly through the router.
    Dr,
    /// NAT: real servers sit on a private segment behind the directors and use
    /// the director (a floating gateway address) as their default gateway.
    Nat,
    /// IP tunnelling: wired like DR (same LAN, VIP on the real servers' lo,
    /// reverse-path filter off). This kernel has no ipip module, so the
    /// decapsulation itself is left to a user-space or tc decapsulator.
    Tun,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Dr => "dr",
            Method::Nat => "nat",
            Method::Tun => "tun",
        })
    }
}

/// How the director namespaces treat traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DirectorMode {
    /// Baseline before rvs exists: the directors are plain IPv4/IPv6 routers
    /// (forwarding on, no NAT). For NAT this makes every real-server address
    /// reachable from the client through the director.
    #[default]
    KernelForward,
    /// Addresses, routes and neighbours only, kernel forwarding off: the
    /// director's data plane (rvsd) is expected to handle the VIP traffic.
    External,
}

/// Which HTTP server runs in each real-server namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpServerChoice {
    /// nginx if it is installed, else the built-in server.
    #[default]
    Auto,
    /// nginx (fails if it is not installed).
    Nginx,
    /// The small built-in HTTP/1.1 server of this crate.
    Builtin,
}

/// The shape of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopologySpec {
    /// Forwarding method the segments are wired for.
    pub method: Method,
    /// Number of directors: 1 or 2.
    pub directors: u8,
    /// Number of real servers: 1 to [`TopologySpec::MAX_REAL_SERVERS`] (3 in the demo).
    pub real_servers: u8,
    /// How the directors forward.
    pub director_mode: DirectorMode,
    /// HTTP server of the real servers.
    pub http_server: HttpServerChoice,
}

impl TopologySpec {
    /// Largest number of real servers a lab can hold.
    pub const MAX_REAL_SERVERS: u8 = 32;

    /// The demo shape for a method: 1 director, 3 real servers, kernel
    /// forwarding, nginx if available.
    pub fn new(method: Method) -> TopologySpec {
        TopologySpec {
            method,
            directors: 1,
            real_servers: 3,
            director_mode: DirectorMode::KernelForward,
            http_server: HttpServerChoice::Auto,
        }
    }

    /// Checks the counts.
    pub fn validate(&self) -> Result<()> {
        if !(1..=2).contains(&self.directors) {
            return Err(LabError::InvalidSpec(format!("directors must be 1 or 2, not {}", self.directors)));
        }
        if !(1..=Self::MAX_REAL_SERVERS).contains(&self.real_servers) {
            return Err(LabError::InvalidSpec(format!(
                "real_servers must be 1..={}, not {}",
                Self::MAX_REAL_SERVERS,
                self.real_servers
            )));
        }
        Ok(())
    }
}

impl Default for TopologySpec {
    fn default() -> Self {
        TopologySpec::new(Method::Dr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_validated() {
        assert!(TopologySpec::new(Method::Nat).validate().is_ok());
        let mut spec = TopologySpec::new(Method::Dr);
        spec.directors = 2;
        assert!(spec.validate().is_ok());
        spec.directors = 3;
        assert!(spec.validate().is_err());
        spec.directors = 0;
        assert!(spec.validate().is_err());
        spec.directors = 1;
        spec.real_servers = 0;
        assert!(spec.validate().is_err());
        spec.real_servers = TopologySpec::MAX_REAL_SERVERS + 1;
        assert!(spec.validate().is_err());
    }
}
