//! Per-protocol, per-state connection timeouts with the kernel defaults, and the three knobs
//! ipvsadm exposes (`--set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP).

use super::sctp::{SCTP_STATES, SctpState};
use super::tcp::{TCP_STATES, TcpState};
use crate::error::ConfigError;

/// Longest timeout `--set` accepts (31 days), in seconds.
pub const MAX_SET_TIMEOUT_SECS: u32 = 2_678_400;
/// Default UDP timeout in seconds.
pub const DEFAULT_UDP_TIMEOUT_SECS: u32 = 300;

/// The timeout table, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    tcp: [u32; TCP_STATES],
    udp: u32,
    sctp: [u32; SCTP_STATES],
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: TcpState::ALL.map(TcpState::default_timeout_secs),
            udp: DEFAULT_UDP_TIMEOUT_SECS,
            sctp: SctpState::ALL.map(SctpState::default_timeout_secs),
        }
    }
}

impl Timeouts {
    /// `ipvsadm --set tcp tcpfin udp`: each 0..=2678400 seconds, 0 keeps the current value.
    /// Nothing changes unless all three are valid.
    pub fn set(&mut self, tcp: u64, tcpfin: u64, udp: u64) -> Result<(), ConfigError> {
        for v in [tcp, tcpfin, udp] {
            if v > u64::from(MAX_SET_TIMEOUT_SECS) {
                return Err(ConfigError::InvalidTimeout(v));
            }
        }
        if tcp != 0 {
            self.tcp[TcpState::Established as usize] = tcp as u32;
        }
        if tcpfin != 0 {
            self.tcp[TcpState::FinWait as usize] = tcpfin as u32;
        }
        if udp != 0 {
            self.udp = udp as u32;
        }
        Ok(())
    }

    /// What `ipvsadm -L --timeout` prints: (tcp, tcpfin, udp).
    pub fn get(&self) -> (u32, u32, u32) {
        (self.tcp[TcpState::Established as usize], self.tcp[TcpState::FinWait as usize], self.udp)
    }

    /// Timeout of a TCP state.
    pub fn tcp(&self, s: TcpState) -> u32 {
        self.tcp[s as usize]
    }

    /// Timeout of UDP "connections".
    pub fn udp(&self) -> u32 {
        self.udp
    }

    /// Timeout of an SCTP state.
    pub fn sctp(&self, s: SctpState) -> u32 {
        self.sctp[s as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_changes_the_three_knobs_and_zero_keeps() {
        let mut t = Timeouts::default();
        assert_eq!(t.get(), (900, 120, 300));
        t.set(0, 30, 0).unwrap();
        assert_eq!(t.get(), (900, 30, 300));
        assert_eq!(t.tcp(TcpState::FinWait), 30);
        assert_eq!(t.set(1, 1, u64::from(MAX_SET_TIMEOUT_SECS) + 1), Err(ConfigError::InvalidTimeout(2_678_401)));
        assert_eq!(t.get(), (900, 30, 300), "a refused --set changes nothing");
    }
}
