//! ICMP errors that quote a connection's packet, handled like IPVS's `ip_vs_in_icmp` and
//! `ip_vs_out_icmp`:
//!
//! - an error about a packet the virtual address sent to a client (it arrives for the
//!   virtual address, quoting `VIP:vport -> client`) belongs to the connection
//!   `client -> VIP:vport`; it goes to that connection's real server: for NAT with the outer
//!   destination and the quoted source rewritten to the real server, for DR and TUN as any
//!   packet of the connection;
//! - an error about a packet a client sent to a NAT real server (it comes from the real
//!   server's side towards the client, quoting `client -> RIP:rport`) goes on to the client
//!   with the outer source and the quoted destination rewritten to the virtual address.
//!
//! Errors that quote no known connection are the kernel's.

use std::net::IpAddr;

use rvs_core::ForwardMethod;
use rvs_core::TunnelType;
use rvs_core::addr::Addr16;
use rvs_packet::PacketSummary;

use super::Ctx;
use super::classify::conn_families;
use super::counters::{Dropped, Forwarded, Outcome, Passed};
use super::forward::{Rewrite, Route, Sender};
use crate::io::Frame;

/// The connection an ICMP error is about, as far as forwarding needs it.
#[derive(Debug, Clone, Copy)]
enum Quoted {
    /// Error about the virtual address's packet: send to the real server.
    ToRealServer { method: ForwardMethod, daddr: IpAddr, dport: u16 },
    /// Error about a client's packet to a NAT real server: send to the client.
    ToClient { vaddr: IpAddr, vport: u16 },
}

impl Ctx<'_> {
    /// Translates and forwards an ICMP error quoting a connection, or leaves it to the kernel.
    pub(super) fn icmp_error(&mut self, frame: &mut Frame, s: &PacketSummary) -> Outcome {
        let Some(quoted) = self.quoted_connection(s) else { return Outcome::Passed(Passed::NotOurs) };
        let config = self.config;
        match quoted {
            Quoted::ToRealServer { method, daddr, dport } => {
                let route = |rewrite, decrement_ttl| Route {
                    to: daddr,
                    rewrite,
                    decrement_ttl,
                    sender: Sender::Client,
                    icmp_error: true,
                    done: Forwarded::IcmpToRealServer,
                };
                match method {
                    ForwardMethod::Local => Outcome::Passed(Passed::Local),
                    ForwardMethod::DirectRoute => {
                        self.route(frame, s, route(Rewrite::Keep, config.decrement_ttl_direct))
                    }
                    ForwardMethod::Masquerade => {
                        self.route(frame, s, route(Rewrite::DnatIcmp(daddr, dport), config.decrement_ttl_nat))
                    }
                    ForwardMethod::Tunnel(t) => match t.kind {
                        TunnelType::Ipip => self.tunnel(frame, s, daddr, true, Forwarded::IcmpToRealServer),
                        TunnelType::Gue { .. } | TunnelType::Gre => Outcome::Dropped(Dropped::UnsupportedTunnel),
                    },
                }
            }
            Quoted::ToClient { vaddr, vport } => {
                let route = Route {
                    to: s.dst,
                    rewrite: Rewrite::SnatIcmp(vaddr, vport),
                    decrement_ttl: config.decrement_ttl_nat,
                    sender: Sender::RealServer,
                    icmp_error: true,
                    done: Forwarded::IcmpToClient,
                };
                self.route(frame, s, route)
            }
        }
    }

    /// Finds the connection the error's quoted packet belongs to.
    fn quoted_connection(&self, s: &PacketSummary) -> Option<Quoted> {
        let q = s.quoted_flow()?;
        let conns = self.engine.conns();
        let (qsrc, qdst) = (Addr16::from_ip(q.src), Addr16::from_ip(q.dst));
        // Quoted VIP:vport -> client:cport: the connection client -> VIP.
        if let Some(c) = conns.find_in(q.protocol, &qdst, q.dst_port, &qsrc, q.src_port).and_then(|id| conns.get(id)) {
            let method = self.engine.dest(c.dest)?.config.method;
            let (_, dest_family) = conn_families(c.flags);
            return Some(Quoted::ToRealServer { method, daddr: c.daddr.to_ip(dest_family), dport: c.dport });
        }
        // Quoted client:cport -> RIP:rport of a NAT connection.
        let c = conns.find_out(q.protocol, &qsrc, q.src_port, &qdst, q.dst_port).and_then(|id| conns.get(id))?;
        if self.engine.dest(c.dest)?.config.method != ForwardMethod::Masquerade {
            return None;
        }
        let (family, _) = conn_families(c.flags);
        Some(Quoted::ToClient { vaddr: c.vaddr.to_ip(family), vport: c.vport })
    }
}
