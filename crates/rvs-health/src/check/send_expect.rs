//! Raw TCP send/expect check (piranha `send`/`expect`): connect, send a string with escapes,
//! and require the reply to start with the expected text (`*` = anything) or to match a regex.

use std::net::{IpAddr, Shutdown, TcpStream};
use std::time::Instant;

use super::pattern::{ReplyPattern, unescape};
use super::{CheckOutcome, Target, check_addr, net};
use crate::config::{ConfigError, SendExpectCheckConfig, invalid};

/// A compiled send/expect check.
#[derive(Debug, Clone)]
pub struct SendExpectCheck {
    port: Option<u16>,
    bind: Option<IpAddr>,
    send: Vec<u8>,
    expect: Option<ReplyPattern>,
    max_response: usize,
}

impl SendExpectCheck {
    /// From configuration.
    pub fn new(c: &SendExpectCheckConfig) -> Result<Self, ConfigError> {
        let send = unescape(&c.send).map_err(|e| invalid("send", e))?;
        let expect = match &c.expect {
            None => None,
            Some(e) if c.regex => Some(ReplyPattern::regex(e).map_err(|m| invalid("expect", m))?),
            Some(e) => Some(ReplyPattern::glob(e).map_err(|m| invalid("expect", m))?),
        };
        Ok(SendExpectCheck { port: c.port, bind: c.bind, send, expect, max_response: c.max_response.max(1) })
    }

    /// Runs it.
    pub fn run(&self, target: &Target, deadline: Instant) -> CheckOutcome {
        match self.exchange(target, deadline) {
            Ok(()) => CheckOutcome::PASS,
            Err(reason) => CheckOutcome::fail(reason),
        }
    }

    fn exchange(&self, target: &Target, deadline: Instant) -> Result<(), String> {
        let mut stream = net::connect_tcp(check_addr(target, self.port), self.bind, deadline)?;
        if !self.send.is_empty() {
            net::write_all_by(&mut stream, &self.send, "sending")?;
        }
        let Some(pattern) = &self.expect else {
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        };
        let mut reply = Vec::new();
        let read = net::read_capped(
            &mut stream,
            &mut reply,
            self.max_response,
            deadline,
            |s: &mut TcpStream, t| s.set_read_timeout(Some(t)),
            |data| pattern.matches(data),
        );
        let _ = stream.shutdown(Shutdown::Both);
        if pattern.matches(&reply) {
            return Ok(());
        }
        let got = net::snippet(&reply, 80);
        match read {
            Err(e) => Err(format!("{e}; reply so far \"{got}\" does not match")),
            Ok(_) => Err(format!("reply \"{got}\" does not match")),
        }
    }
}
