//! UDP send/expect check: send a datagram (text with escapes or hex) to the check port on a
//! connected socket. An ICMP port unreachable (seen as ECONNREFUSED) fails. With an expected
//! reply, a matching reply must arrive before the timeout; without one, silence until the
//! timeout counts as up (as keepalived's UDP_CHECK without `require_reply`).

use std::io;
use std::net::IpAddr;
use std::time::Instant;

use super::pattern::{ReplyPattern, parse_hex, unescape};
use super::{CheckOutcome, Target, check_addr, net};
use crate::config::{ConfigError, PayloadFormat, UdpCheckConfig, invalid};

/// A compiled UDP check.
#[derive(Debug, Clone)]
pub struct UdpCheck {
    port: Option<u16>,
    bind: Option<IpAddr>,
    payload: Vec<u8>,
    expect: Option<ReplyPattern>,
}

impl UdpCheck {
    /// From configuration.
    pub fn new(c: &UdpCheckConfig) -> Result<Self, ConfigError> {
        let (payload, expect) = match c.format {
            PayloadFormat::Text => (
                unescape(&c.payload).map_err(|e| invalid("payload", e))?,
                c.expect.as_deref().map(ReplyPattern::glob).transpose().map_err(|e| invalid("expect", e))?,
            ),
            PayloadFormat::Hex => (
                parse_hex(&c.payload).map_err(|e| invalid("payload", e))?,
                c.expect.as_deref().map(ReplyPattern::hex).transpose().map_err(|e| invalid("expect", e))?,
            ),
        };
        Ok(UdpCheck { port: c.port, bind: c.bind, payload, expect })
    }

    /// Runs it.
    pub fn run(&self, target: &Target, deadline: Instant) -> CheckOutcome {
        match self.exchange(target, deadline) {
            Ok(()) => CheckOutcome::PASS,
            Err(reason) => CheckOutcome::fail(reason),
        }
    }

    fn exchange(&self, target: &Target, deadline: Instant) -> Result<(), String> {
        let dest = check_addr(target, self.port);
        let sock = net::connect_udp(dest, self.bind)?;
        sock.send(&self.payload).map_err(|e| net::describe(&e, &format!("sending to {dest}")))?;
        let mut buf = vec![0u8; 65536];
        // A reply that did not match: kept for the reason, while waiting for a matching one.
        let mut mismatch: Option<String> = None;
        let no_reply = |mismatch: Option<String>| match mismatch {
            Some(got) => Err(format!("reply \"{got}\" does not match")),
            None => Err(format!("no reply from {dest}")),
        };
        loop {
            let Ok(left) = net::remaining(deadline, "waiting for a reply") else {
                // No reply and no ICMP error: up unless a reply is required.
                return if self.expect.is_some() { no_reply(mismatch) } else { Ok(()) };
            };
            sock.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let reply = buf.get(..n).unwrap_or_default();
                    match &self.expect {
                        None => return Ok(()),
                        Some(p) if p.matches(reply) => return Ok(()),
                        Some(_) => mismatch = Some(net::snippet(reply, 80)),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return Err(format!("port unreachable at {dest}"));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return if self.expect.is_some() { no_reply(mismatch) } else { Ok(()) };
                }
                Err(e) => return Err(net::describe(&e, &format!("waiting for a reply from {dest}"))),
            }
        }
    }
}
