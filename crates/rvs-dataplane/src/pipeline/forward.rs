//! Forwarding a frame: direct routing (only the Ethernet header changes), NAT (destination
//! rewritten towards the real server, or source rewritten on the reply), and IP-in-IP
//! tunnels (outer header written into the headroom). Shared steps: the next hop, the MTU
//! check, the TTL, the new Ethernet header, and the move into the tx batch.

use std::net::IpAddr;

use rvs_core::ForwardMethod;
use rvs_core::TunnelType;
use rvs_core::engine::{Forward, OutVerdict, Packet};
use rvs_packet::encap::{self, TunnelParams};
use rvs_packet::ethernet::{self, ethertype};
use rvs_packet::{PacketSummary, RewriteError, rewrite};

use super::Ctx;
use super::counters::{Dropped, Forwarded, Outcome, Passed};
use crate::io::Frame;
use crate::nexthop::NextHop;

/// Length of the Ethernet header of every transmitted frame (no VLAN tag: the egress
/// interface of the next hop is the VLAN device itself).
pub(super) const ETH_LEN: usize = ethernet::HEADER_LEN;

/// Who sent the packet being forwarded; decides where ICMP errors about it come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sender {
    /// A client, towards a virtual address: errors come from that virtual address.
    Client,
    /// A real server, towards a client: errors come from the director's own address.
    RealServer,
}

/// The address rewrite a forwarded packet gets.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rewrite {
    /// None (direct routing).
    Keep,
    /// Destination address and port (NAT towards the real server).
    Dnat(IpAddr, u16),
    /// Source address and port (NAT reply towards the client).
    Snat(IpAddr, u16),
    /// ICMP error towards a NAT real server: outer destination and quoted source.
    DnatIcmp(IpAddr, u16),
    /// ICMP error from a NAT real server's side: outer source and quoted destination.
    SnatIcmp(IpAddr, u16),
}

/// How to send one frame on without a tunnel.
#[derive(Debug, Clone, Copy)]
pub(super) struct Route {
    /// The address whose next hop the frame goes to.
    pub to: IpAddr,
    /// The rewrite.
    pub rewrite: Rewrite,
    /// Decrement the TTL / hop limit.
    pub decrement_ttl: bool,
    /// Who sent it.
    pub sender: Sender,
    /// The packet is an ICMP error (never answered with another).
    pub icmp_error: bool,
    /// The counter when it leaves.
    pub done: Forwarded,
}

impl Ctx<'_> {
    /// A client packet the engine said to forward.
    pub(super) fn forward_in(&mut self, frame: &mut Frame, s: &PacketSummary, f: &Forward) -> Outcome {
        let config = self.config;
        let route = |rewrite, decrement_ttl, done| Route {
            to: f.daddr,
            rewrite,
            decrement_ttl,
            sender: Sender::Client,
            icmp_error: false,
            done,
        };
        match f.method {
            ForwardMethod::Local => Outcome::Passed(Passed::Local),
            ForwardMethod::DirectRoute => {
                self.route(frame, s, route(Rewrite::Keep, config.decrement_ttl_direct, Forwarded::DirectRoute))
            }
            ForwardMethod::Masquerade => self.route(
                frame,
                s,
                route(Rewrite::Dnat(f.daddr, f.dport), config.decrement_ttl_nat, Forwarded::Masquerade),
            ),
            ForwardMethod::Tunnel(t) => match t.kind {
                TunnelType::Ipip => self.tunnel(frame, s, f.daddr, false, Forwarded::Tunnel),
                TunnelType::Gue { .. } | TunnelType::Gre => Outcome::Dropped(Dropped::UnsupportedTunnel),
            },
        }
    }

    /// A packet for no virtual service: a NAT reply, or the kernel's (or, with
    /// nat_icmp_send, refused).
    pub(super) fn reply_or_pass(&mut self, frame: &mut Frame, s: &PacketSummary, packet: &Packet) -> Outcome {
        match self.engine.conn_out(packet, self.now) {
            OutVerdict::Reply { vaddr, vport, .. } => {
                let route = Route {
                    to: s.dst,
                    rewrite: Rewrite::Snat(vaddr, vport),
                    decrement_ttl: self.config.decrement_ttl_nat,
                    sender: Sender::RealServer,
                    icmp_error: false,
                    done: Forwarded::NatReply,
                };
                self.route(frame, s, route)
            }
            OutVerdict::NotOurs if self.config.nat_icmp_send => self.nat_without_connection(frame, s, packet),
            OutVerdict::NotOurs => Outcome::Passed(Passed::NotOurs),
        }
    }

    /// Sends a frame on, same family, with an optional address rewrite.
    pub(super) fn route(&mut self, frame: &mut Frame, s: &PacketSummary, r: Route) -> Outcome {
        let Some(nh) = self.nexthops.lookup(r.to) else { return Outcome::Dropped(Dropped::NoNextHop) };
        let mtu = usize::from(nh.mtu);
        if s.ip_len() > mtu {
            return self.too_big(frame, s, mtu, r.sender, r.icmp_error, false);
        }
        if r.decrement_ttl {
            match rewrite::decrement_ttl(frame.data_mut(), s) {
                Ok(_) => {}
                Err(RewriteError::TtlExceeded) => return self.ttl_expired(frame, s, r.sender, r.icmp_error),
                Err(_) => return Outcome::Dropped(Dropped::RewriteFailed),
            }
        }
        let data = frame.data_mut();
        let rewritten = match r.rewrite {
            Rewrite::Keep => Ok(()),
            Rewrite::Dnat(addr, port) => rewrite::dnat(data, s, addr, port),
            Rewrite::Snat(addr, port) => rewrite::snat(data, s, addr, port),
            Rewrite::DnatIcmp(addr, port) => rewrite::dnat_icmp_error(data, s, addr, port),
            Rewrite::SnatIcmp(addr, port) => rewrite::snat_icmp_error(data, s, addr, port),
        };
        if rewritten.is_err() {
            return Outcome::Dropped(Dropped::RewriteFailed);
        }
        if !reposition(frame, s.l3_offset, ETH_LEN, s.ip_len()) {
            return Outcome::Dropped(Dropped::NoHeadroom);
        }
        self.emit(frame, &nh, ethertype_of(&s.dst), r.done)
    }

    /// Encapsulates a frame's IP packet to the real server `daddr` (IPIP, IPv6-in-IPv6, or
    /// across families) and sends it on.
    pub(super) fn tunnel(
        &mut self,
        frame: &mut Frame,
        s: &PacketSummary,
        daddr: IpAddr,
        icmp_error: bool,
        done: Forwarded,
    ) -> Outcome {
        let Some(src) = self.config.source_like(&daddr) else { return Outcome::Dropped(Dropped::NoTunnelSource) };
        let Some(nh) = self.nexthops.lookup(daddr) else { return Outcome::Dropped(Dropped::NoNextHop) };
        let outer = match daddr {
            IpAddr::V4(_) => rvs_packet::Family::V4,
            IpAddr::V6(_) => rvs_packet::Family::V6,
        };
        let extra = encap::overhead(outer);
        let mtu = usize::from(nh.mtu);
        let ip_len = s.ip_len();
        if ip_len + extra > mtu {
            return self.too_big(frame, s, mtu.saturating_sub(extra), Sender::Client, icmp_error, true);
        }
        if self.config.decrement_ttl_direct {
            match rewrite::decrement_ttl(frame.data_mut(), s) {
                Ok(_) => {}
                Err(RewriteError::TtlExceeded) => return self.ttl_expired(frame, s, Sender::Client, icmp_error),
                Err(_) => return Outcome::Dropped(Dropped::RewriteFailed),
            }
        }
        // The inner packet stays where it is in the buffer; the frame grows in front of it.
        let inner_at = ETH_LEN + extra;
        if !reposition(frame, s.l3_offset, inner_at, ip_len) {
            return Outcome::Dropped(Dropped::NoHeadroom);
        }
        *self.ident = self.ident.wrapping_add(1);
        let params = TunnelParams {
            src,
            dst: daddr,
            ttl: self.config.tunnel_ttl,
            ident: *self.ident,
            flow_label: flow_label(s),
            mtu,
        };
        match encap::encapsulate(frame.data_mut(), inner_at, ip_len, &params) {
            Ok(e) if e.start == ETH_LEN => {
                frame.set_len(ETH_LEN + e.len);
                self.emit(frame, &nh, ethertype_of(&daddr), done)
            }
            Ok(_) | Err(_) => Outcome::Dropped(Dropped::RewriteFailed),
        }
    }

    /// Writes the Ethernet header for `nh` (the frame holds `ETH_LEN` bytes before its IP
    /// packet) and moves the frame into the tx batch.
    fn emit(&mut self, frame: &mut Frame, nh: &NextHop, ethertype: u16, done: Forwarded) -> Outcome {
        if ethernet::write_header(frame.data_mut(), nh.dst_mac, nh.src_mac, &[], ethertype).is_err() {
            return Outcome::Dropped(Dropped::RewriteFailed);
        }
        frame.ifindex = nh.ifindex;
        let Some(slot) = self.tx.push() else { return Outcome::Dropped(Dropped::TxFull) };
        std::mem::swap(slot, frame);
        Outcome::Forwarded(done)
    }
}

/// Moves the start of `frame` so that what is at offset `from` ends up at offset `to`, and
/// cuts it `len` bytes after that (dropping Ethernet padding). False without headroom.
pub(super) fn reposition(frame: &mut Frame, from: usize, to: usize, len: usize) -> bool {
    let moved = if from >= to { frame.pull_front(from - to) } else { frame.push_front(to - from) };
    if moved {
        frame.set_len(to + len);
    }
    moved
}

/// The ethertype of an IP packet to `addr`.
pub(super) fn ethertype_of(addr: &IpAddr) -> u16 {
    match addr {
        IpAddr::V4(_) => ethertype::IPV4,
        IpAddr::V6(_) => ethertype::IPV6,
    }
}

/// A 20-bit flow label for an outer IPv6 header, the same for every packet of a flow, so
/// ECMP paths keep a flow together (RFC 6438).
fn flow_label(s: &PacketSummary) -> u32 {
    let addrs = (u64::from(rvs_core::addr::fold(&s.src)) << 32) | u64::from(rvs_core::addr::fold(&s.dst));
    let ports = (u64::from(s.src_port) << 16 | u64::from(s.dst_port)) << 8 | u64::from(s.protocol);
    let h = (addrs ^ ports.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 44) as u32
}
