//! TCP connect check: up when a connection to the check port completes before the timeout.

use std::net::{IpAddr, Shutdown};
use std::time::Instant;

use super::{CheckOutcome, Target, check_addr, net};
use crate::config::TcpCheckConfig;

/// A compiled TCP connect check.
#[derive(Debug, Clone)]
pub struct TcpCheck {
    port: Option<u16>,
    bind: Option<IpAddr>,
}

impl TcpCheck {
    /// From configuration.
    pub fn new(c: &TcpCheckConfig) -> Self {
        TcpCheck { port: c.port, bind: c.bind }
    }

    /// Runs it.
    pub fn run(&self, target: &Target, deadline: Instant) -> CheckOutcome {
        match net::connect_tcp(check_addr(target, self.port), self.bind, deadline) {
            Ok(stream) => {
                let _ = stream.shutdown(Shutdown::Both);
                CheckOutcome::PASS
            }
            Err(reason) => CheckOutcome::fail(reason),
        }
    }
}
