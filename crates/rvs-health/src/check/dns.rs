//! DNS check: a hand-built query (one question, random id) sent over UDP to the real server's
//! check port. Success is NOERROR with at least one answer, or, when configured, a given rcode.

use std::io;
use std::net::IpAddr;
use std::time::Instant;

use super::{CheckOutcome, Target, check_addr, net};
use crate::config::{ConfigError, DnsCheckConfig, invalid};
use crate::timing::SplitMix;

/// A compiled DNS check.
#[derive(Debug, Clone)]
pub struct DnsCheck {
    port: Option<u16>,
    bind: Option<IpAddr>,
    qname: Vec<u8>,
    qtype: u16,
    expect_rcode: Option<u8>,
    recursion_desired: bool,
}

/// The numeric value of a query type name ("A", "AAAA", ...) or number.
pub fn query_type(text: &str) -> Option<u16> {
    let t = match text.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "ANY" => 255,
        other => other.parse().ok()?,
    };
    Some(t)
}

/// The numeric value of an rcode name ("NOERROR", "NXDOMAIN", ...) or number (0..=15).
pub fn rcode(text: &str) -> Option<u8> {
    let r = match text.to_ascii_uppercase().as_str() {
        "NOERROR" => 0,
        "FORMERR" => 1,
        "SERVFAIL" => 2,
        "NXDOMAIN" => 3,
        "NOTIMP" => 4,
        "REFUSED" => 5,
        other => other.parse().ok().filter(|v| *v <= 15)?,
    };
    Some(r)
}

/// Encodes a name as DNS labels ("." = root).
pub fn encode_name(name: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            let len = u8::try_from(label.len()).ok().filter(|l| (1..=63).contains(l));
            let Some(len) = len else { return Err(format!("bad label {label:?} in {name:?}")) };
            out.push(len);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() > 255 {
        return Err(format!("name too long: {name:?}"));
    }
    Ok(out)
}

/// Builds a query message.
pub fn build_query(id: u16, qname: &[u8], qtype: u16, recursion_desired: bool) -> Vec<u8> {
    let flags: u16 = if recursion_desired { 0x0100 } else { 0 };
    let mut q = Vec::with_capacity(12 + qname.len() + 4);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&flags.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // AN, NS, AR counts
    q.extend_from_slice(qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // class IN
    q
}

/// The fields of a reply header the check needs: (id, is a response, rcode, answer count).
pub fn parse_reply_header(reply: &[u8]) -> Option<(u16, bool, u8, u16)> {
    let b = |i: usize| reply.get(i).copied();
    let id = u16::from_be_bytes([b(0)?, b(1)?]);
    let flags = u16::from_be_bytes([b(2)?, b(3)?]);
    let ancount = u16::from_be_bytes([b(6)?, b(7)?]);
    Some((id, flags & 0x8000 != 0, (flags & 0x000F) as u8, ancount))
}

impl DnsCheck {
    /// From configuration.
    pub fn new(c: &DnsCheckConfig) -> Result<Self, ConfigError> {
        let qtype =
            query_type(&c.query_type).ok_or_else(|| invalid("qtype", format!("unknown type {:?}", c.query_type)))?;
        let expect_rcode = match &c.expect_rcode {
            Some(r) => Some(rcode(r).ok_or_else(|| invalid("expect_rcode", format!("unknown rcode {r:?}")))?),
            None => None,
        };
        Ok(DnsCheck {
            port: c.port,
            bind: c.bind,
            qname: encode_name(&c.name).map_err(|e| invalid("name", e))?,
            qtype,
            expect_rcode,
            recursion_desired: c.recursion_desired,
        })
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
        let id = (SplitMix::from_entropy().next_u64() & 0xFFFF) as u16;
        let query = build_query(id, &self.qname, self.qtype, self.recursion_desired);
        let sock = net::connect_udp(dest, self.bind)?;
        sock.send(&query).map_err(|e| net::describe(&e, &format!("sending the query to {dest}")))?;
        let mut buf = vec![0u8; 4096];
        loop {
            let left = net::remaining(deadline, &format!("waiting for the DNS reply from {dest}"))?;
            sock.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return Err(format!("port unreachable at {dest}"));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(net::describe(&e, &format!("waiting for the DNS reply from {dest}"))),
            };
            // Ignore anything that is not the reply to this query.
            let Some((rid, is_reply, code, answers)) = parse_reply_header(buf.get(..n).unwrap_or_default()) else {
                continue;
            };
            if rid != id || !is_reply {
                continue;
            }
            return match self.expect_rcode {
                Some(want) if code == want => Ok(()),
                Some(want) => Err(format!("rcode {code}, expected {want}")),
                None if code != 0 => Err(format!("rcode {code} (not NOERROR)")),
                None if answers == 0 => Err("NOERROR but no answer".into()),
                None => Ok(()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_as_labels() {
        assert_eq!(encode_name(".").unwrap(), [0]);
        assert_eq!(encode_name("").unwrap(), [0]);
        assert_eq!(encode_name("a.bc.").unwrap(), [1, b'a', 2, b'b', b'c', 0]);
        assert!(encode_name("a..b").is_err());
        assert!(encode_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn query_layout() {
        // RFC 1035 §4.1: header 12 bytes (id, flags with RD = 0x0100, qdcount 1), then question.
        let q = build_query(0xABCD, &[0], 6, true);
        assert_eq!(q, [0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1]);
    }

    #[test]
    fn type_and_rcode_names() {
        assert_eq!(query_type("aaaa"), Some(28));
        assert_eq!(query_type("65"), Some(65));
        assert_eq!(query_type("bogus"), None);
        assert_eq!(rcode("NXDOMAIN"), Some(3));
        assert_eq!(rcode("16"), None);
    }

    #[test]
    fn reply_header() {
        // flags 0x8183: QR set, RD, RA, rcode 3.
        assert_eq!(parse_reply_header(&[0, 7, 0x81, 0x83, 0, 1, 0, 2]), Some((7, true, 3, 2)));
        assert_eq!(parse_reply_header(&[0, 7, 0x81]), None);
    }
}
