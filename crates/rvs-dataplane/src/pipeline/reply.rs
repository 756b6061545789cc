//! ICMP errors the director sends itself, each in place of the frame it is about:
//! port unreachable (no real server), fragmentation needed / packet too big (over the MTU),
//! time exceeded (TTL ran out), and the `nat_icmp_send` answer to a NAT real server whose
//! packet has no connection. Each is built directly into a free tx frame and routed to the
//! offending packet's sender.

use std::net::IpAddr;

use rvs_core::ForwardMethod;
use rvs_core::conn::sctp::chunk;
use rvs_core::engine::{Engine, Packet};
use rvs_core::service::ServiceKey;
use rvs_packet::icmp::{self, v4, v6};
use rvs_packet::ip::protocol;
use rvs_packet::{BuildError, PacketSummary};

use super::Ctx;
use super::counters::{Dropped, Outcome, Passed, Reply};
use super::forward::{ETH_LEN, Sender, ethertype_of};
use crate::io::Frame;

/// An ICMP error message to build: type and code for each family, and the 4 bytes after the
/// checksum.
#[derive(Debug, Clone, Copy)]
struct Message {
    v4: (u8, u8),
    v6: (u8, u8),
    rest: u32,
}

const PORT_UNREACHABLE: Message = Message {
    v4: (v4::DEST_UNREACHABLE, v4::CODE_PORT_UNREACHABLE),
    v6: (v6::DEST_UNREACHABLE, v6::CODE_PORT_UNREACHABLE),
    rest: 0,
};

/// Code 0 of time exceeded: TTL (hop limit) exceeded in transit, for both families.
const TIME_EXCEEDED: Message = Message { v4: (v4::TIME_EXCEEDED, 0), v6: (v6::TIME_EXCEEDED, 0), rest: 0 };

impl Ctx<'_> {
    /// No real server for a new connection: ICMP port unreachable from the virtual address.
    pub(super) fn port_unreachable(&mut self, frame: &Frame, s: &PacketSummary) -> Outcome {
        if self.send_error(frame, s, s.dst, PORT_UNREACHABLE) {
            Outcome::Replied(Reply::PortUnreachable)
        } else {
            Outcome::Dropped(Dropped::Unreachable)
        }
    }

    /// The packet exceeds the next hop's MTU (`mtu` is what the sender's packet may be):
    /// answer an IPv6 packet or a DF IPv4 packet with packet-too-big / fragmentation-needed;
    /// an IPv4 packet without DF (or any IPv4 tunnel packet with pmtu_disc off) would need
    /// fragmenting, which rvs does not do.
    pub(super) fn too_big(
        &mut self,
        frame: &Frame,
        s: &PacketSummary,
        mtu: usize,
        sender: Sender,
        icmp_error: bool,
        tunnel: bool,
    ) -> Outcome {
        let v6 = matches!(s.dst, IpAddr::V6(_));
        if !v6 && (!s.dont_fragment || (tunnel && !self.config.pmtu_disc)) {
            return Outcome::Dropped(Dropped::NeedsFragmentation);
        }
        if icmp_error {
            return Outcome::Dropped(Dropped::TooBig);
        }
        let Some(src) = self.error_source(s, sender) else { return Outcome::Dropped(Dropped::TooBig) };
        let Some(offending) = frame.data().get(s.l3_offset..s.end) else {
            return Outcome::Dropped(Dropped::TooBig);
        };
        let sent = self.send_icmp(s.src, |out| match src {
            IpAddr::V4(src) => icmp::build_frag_needed(out, src, offending, u16::try_from(mtu).unwrap_or(u16::MAX)),
            IpAddr::V6(src) => icmp::build_packet_too_big(out, src, offending, u32::try_from(mtu).unwrap_or(u32::MAX)),
        });
        if sent { Outcome::Replied(Reply::TooBig) } else { Outcome::Dropped(Dropped::TooBig) }
    }

    /// The TTL / hop limit ran out: ICMP time exceeded (if enabled and allowed).
    pub(super) fn ttl_expired(
        &mut self,
        frame: &Frame,
        s: &PacketSummary,
        sender: Sender,
        icmp_error: bool,
    ) -> Outcome {
        if !self.config.send_time_exceeded || icmp_error {
            return Outcome::Dropped(Dropped::TtlExpired);
        }
        let Some(src) = self.error_source(s, sender) else { return Outcome::Dropped(Dropped::TtlExpired) };
        if self.send_error(frame, s, src, TIME_EXCEEDED) {
            Outcome::Replied(Reply::TimeExceeded)
        } else {
            Outcome::Dropped(Dropped::TtlExpired)
        }
    }

    /// nat_icmp_send: a packet with no connection from a NAT real server's address and port
    /// is dropped and answered with port unreachable, unless it is a TCP RST or an SCTP
    /// ABORT (those, like everything not from a NAT real server, are the kernel's).
    pub(super) fn nat_without_connection(&mut self, frame: &Frame, s: &PacketSummary, packet: &Packet) -> Outcome {
        let closing = match s.protocol {
            protocol::TCP => packet.tcp_flags.rst,
            protocol::UDP => false,
            protocol::SCTP => packet.sctp_chunk == chunk::ABORT,
            _ => return Outcome::Passed(Passed::NotOurs),
        };
        if closing || !is_nat_real_server(self.engine, s.protocol, s.src, s.src_port) {
            return Outcome::Passed(Passed::NotOurs);
        }
        let Some(src) = self.config.source_like(&s.src) else { return Outcome::Dropped(Dropped::NatNoConnection) };
        if self.send_error(frame, s, src, PORT_UNREACHABLE) {
            Outcome::Replied(Reply::NatUnreachable)
        } else {
            Outcome::Dropped(Dropped::NatNoConnection)
        }
    }

    /// Where an error about a packet of `sender` comes from: the virtual address the client
    /// sent to, or the director's own address (for real servers).
    fn error_source(&self, s: &PacketSummary, sender: Sender) -> Option<IpAddr> {
        match sender {
            Sender::Client => Some(s.dst),
            Sender::RealServer => self.config.source_like(&s.dst),
        }
    }

    /// Sends `message` about the frame's IP packet from `src` to its sender.
    fn send_error(&mut self, frame: &Frame, s: &PacketSummary, src: IpAddr, message: Message) -> bool {
        let Some(offending) = frame.data().get(s.l3_offset..s.end) else { return false };
        self.send_icmp(s.src, |out| match src {
            IpAddr::V4(src) => {
                let (t, c) = message.v4;
                icmp::build_icmpv4_error(out, src, offending, t, c, message.rest)
            }
            IpAddr::V6(src) => {
                let (t, c) = message.v6;
                icmp::build_icmpv6_error(out, src, offending, t, c, message.rest)
            }
        })
    }

    /// Builds an IP packet with `build` into a free tx frame behind an Ethernet header for
    /// the next hop of `to`. False (and nothing queued) if there is no next hop, no free tx
    /// frame, or the builder refuses.
    fn send_icmp(&mut self, to: IpAddr, build: impl FnOnce(&mut [u8]) -> Result<usize, BuildError>) -> bool {
        let Some(nh) = self.nexthops.lookup(to) else { return false };
        let Some(slot) = self.tx.push() else { return false };
        let area = slot.receive_area();
        let built = match area.get_mut(ETH_LEN..) {
            Some(out) => build(out).ok(),
            None => None,
        };
        let written = built.filter(|_| {
            rvs_packet::ethernet::write_header(area, nh.dst_mac, nh.src_mac, &[], ethertype_of(&to)).is_ok()
        });
        match written {
            Some(len) => {
                slot.set_received(ETH_LEN + len, nh.ifindex);
                true
            }
            None => {
                self.tx.pop();
                false
            }
        }
    }
}

/// Is `addr`:`port` a NAT real server of some service of this protocol (or of a fwmark
/// service)? Only asked for packets that match no connection, with nat_icmp_send on.
fn is_nat_real_server(engine: &Engine, proto: u8, addr: IpAddr, port: u16) -> bool {
    engine.services().any(|(id, svc)| {
        let protocol_matches = match svc.config.key {
            ServiceKey::Addr { protocol, .. } => protocol.number() == proto,
            ServiceKey::Fwmark { .. } => true,
        };
        protocol_matches
            && engine.dests_of(id).any(|(_, d)| {
                d.config.method == ForwardMethod::Masquerade && d.config.addr == addr && d.config.port == port
            })
    })
}
