//! ICMP echo check (IPv4 and IPv6). Uses a raw socket (needs root or CAP_NET_RAW); when that is
//! not allowed it falls back to an unprivileged ping socket (allowed by
//! `net.ipv4.ping_group_range`). The socket is connected to the real server, so the kernel only
//! delivers ICMP from that address; replies are matched by type, identifier and sequence.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{CheckOutcome, Target, net, same_family};
use crate::config::PingCheckConfig;

static SEQUENCE: AtomicU16 = AtomicU16::new(1);

/// A compiled ping check.
#[derive(Debug, Clone)]
pub struct PingCheck {
    bind: Option<IpAddr>,
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = match pair {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type (8 for IPv4, 128 for IPv6), identifier, sequence, payload. The IPv4
/// checksum is filled in; for IPv6 the kernel computes it.
pub fn echo_request(v6: bool, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    if !v6 {
        let c = checksum(&m).to_be_bytes();
        m[2] = c[0];
        m[3] = c[1];
    }
    m
}

/// Whether `msg` (an ICMP message without IP header) is the echo reply to (`ident`, `seq`);
/// `ident` is None for ping sockets, where the kernel picks it.
pub fn is_echo_reply(v6: bool, msg: &[u8], ident: Option<u16>, seq: u16) -> bool {
    let want_type = if v6 { 129 } else { 0 };
    let (Some(t), Some(id), Some(sq)) = (msg.first(), msg.get(4..6), msg.get(6..8)) else { return false };
    *t == want_type && ident.is_none_or(|i| id == i.to_be_bytes()) && sq == seq.to_be_bytes()
}

impl PingCheck {
    /// From configuration.
    pub fn new(c: &PingCheckConfig) -> Self {
        PingCheck { bind: c.bind }
    }

    /// Runs it.
    pub fn run(&self, target: &Target, deadline: Instant) -> CheckOutcome {
        match self.ping(target.real.ip(), deadline) {
            Ok(()) => CheckOutcome::PASS,
            Err(reason) => CheckOutcome::fail(reason),
        }
    }

    fn open(&self, dest: IpAddr) -> Result<(Socket, bool), String> {
        let v6 = dest.is_ipv6();
        let (domain, proto) = if v6 { (Domain::IPV6, Protocol::ICMPV6) } else { (Domain::IPV4, Protocol::ICMPV4) };
        match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => Ok((s, true)),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Socket::new(domain, Type::DGRAM, Some(proto))
                .map(|s| (s, false))
                .map_err(|e2| format!("no raw ICMP socket ({e}) and no ping socket ({e2})")),
            Err(e) => Err(format!("ICMP socket: {e}")),
        }
    }

    fn ping(&self, dest: IpAddr, deadline: Instant) -> Result<(), String> {
        if let Some(b) = self.bind
            && !same_family(b, dest)
        {
            return Err(format!("bind address {b} is not of the family of {dest}"));
        }
        let v6 = dest.is_ipv6();
        let (sock, raw) = self.open(dest)?;
        if let Some(b) = self.bind {
            sock.bind(&SockAddr::from(SocketAddr::new(b, 0))).map_err(|e| format!("bind {b}: {e}"))?;
        }
        sock.connect(&SockAddr::from(SocketAddr::new(dest, 0))).map_err(|e| format!("connect {dest}: {e}"))?;
        let ident = (std::process::id() as u16) ^ 0x5256;
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let request = echo_request(v6, ident, seq, b"rvs-health echo");
        (&sock).write_all(&request).map_err(|e| net::describe(&e, &format!("sending echo to {dest}")))?;
        let mut buf = [0u8; 2048];
        loop {
            let left = net::remaining(deadline, &format!("waiting for echo reply from {dest}"))?;
            sock.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            let n = match (&sock).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(net::describe(&e, &format!("waiting for echo reply from {dest}"))),
            };
            let packet = buf.get(..n).unwrap_or_default();
            // Raw IPv4 sockets deliver the IP header too; skip it (IHL × 4 bytes).
            let msg = if raw && !v6 {
                let ihl = usize::from(packet.first().map_or(5, |b| b & 0x0F)) * 4;
                packet.get(ihl..).unwrap_or_default()
            } else {
                packet
            };
            if is_echo_reply(v6, msg, raw.then_some(ident), seq) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_checksum() {
        // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to 0xddf2 (after carry), checksum = !0xddf2.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        // A message with its checksum filled in sums to zero.
        let m = echo_request(false, 0x1234, 7, b"abc");
        assert_eq!(checksum(&m), 0);
    }

    #[test]
    fn reply_matching() {
        let mut reply = echo_request(false, 0x1234, 7, b"x");
        reply[0] = 0;
        assert!(is_echo_reply(false, &reply, Some(0x1234), 7));
        assert!(!is_echo_reply(false, &reply, Some(0x1235), 7));
        assert!(!is_echo_reply(false, &reply, Some(0x1234), 8));
        assert!(is_echo_reply(false, &reply, None, 7), "ping sockets match by sequence");
        let request = echo_request(false, 0x1234, 7, b"x");
        assert!(!is_echo_reply(false, &request, Some(0x1234), 7), "own request is not a reply");
        assert!(!is_echo_reply(true, &[129, 0, 0], None, 7), "short");
    }
}
