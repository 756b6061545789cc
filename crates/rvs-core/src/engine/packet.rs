//! The per-packet decisions: what the kernel's `ip_vs_in` and `ip_vs_out` do, minus the
//! packet rewriting (which the data plane does with the answer).

use std::net::IpAddr;

use super::{Engine, ServiceId};
use crate::addr::{Addr16, Family};
use crate::conn::sctp::{self, SctpState};
use crate::conn::table::{Conn, ConnFlags, ConnId};
use crate::conn::tcp::{self, Direction, TcpFlags, TcpState};
use crate::dest::{DestId, ForwardMethod};
use crate::random::Random;
use crate::sched::SchedRequest;
use crate::service::{Protocol, ServiceKey};
use crate::time::Instant;

const FTP_PORT: u16 = 21;
/// Timeout of a template kept alive because it still controls connections (kernel: 60 s).
const CONTROLLING_TEMPLATE_RETRY_MS: u64 = 60_000;

/// What the engine needs to know about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Address family.
    pub family: Family,
    /// IP protocol number.
    pub protocol: u8,
    /// Source address.
    pub src: Addr16,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: Addr16,
    /// Destination port.
    pub dport: u16,
    /// Firewall mark (0 = none).
    pub fwmark: u32,
    /// TCP flags (TCP only).
    pub tcp_flags: TcpFlags,
    /// Effective first SCTP chunk type (SCTP only; see `conn::sctp::effective_chunk`).
    pub sctp_chunk: u8,
    /// Bytes on the wire (IP packet length).
    pub len: u32,
}

impl Packet {
    /// A packet from std addresses (tests, control paths).
    pub fn new(protocol: Protocol, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Packet {
        Packet {
            family: Family::of(&dst),
            protocol: protocol.number(),
            src: Addr16::from_ip(src),
            sport,
            dst: Addr16::from_ip(dst),
            dport,
            fwmark: 0,
            tcp_flags: TcpFlags::default(),
            sctp_chunk: sctp::chunk::DATA,
            len: 60,
        }
    }

    /// The same packet with TCP flags.
    pub fn with_tcp(mut self, flags: TcpFlags) -> Packet {
        self.tcp_flags = flags;
        self
    }

    /// The same packet with a firewall mark.
    pub fn with_mark(mut self, mark: u32) -> Packet {
        self.fwmark = mark;
        self
    }
}

/// How to forward a client packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The connection (None for one-packet scheduling: nothing is kept).
    pub conn: Option<ConnId>,
    /// The real server.
    pub dest: DestId,
    /// Forwarding method.
    pub method: ForwardMethod,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port (the new destination port for NAT).
    pub dport: u16,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Its connection's destination was removed (expire_nodest_conn off).
    DestUnavailable,
    /// The connection table is full.
    TableFull,
    /// The drop_packet DoS defence.
    Defense,
}

/// The engine's answer for a packet arriving from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InVerdict {
    /// Forward it.
    Forward(Forward),
    /// Not for any virtual service and no connection: the kernel's business.
    NotOurs,
    /// For a virtual service, but it cannot open a connection (a TCP segment other than SYN
    /// without a connection, a protocol IPVS does not balance): let the kernel answer (RST).
    NoConnection,
    /// No real server available: answer the client with ICMP port unreachable.
    Unreachable,
    /// Drop it.
    Drop(DropReason),
}

/// The engine's answer for a packet arriving from a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutVerdict {
    /// A NAT reply: rewrite the source to the virtual address and port.
    Reply {
        /// The connection.
        conn: ConnId,
        /// Virtual address to put as source.
        vaddr: IpAddr,
        /// Virtual port to put as source port.
        vport: u16,
    },
    /// Not a reply of a NAT connection.
    NotOurs,
}

/// What scheduling produced.
enum Scheduled {
    /// A new connection entry.
    Conn(ConnId),
    /// One-packet scheduling: forward this packet, keep nothing.
    OnePacket(Forward),
}

fn is_new_conn(p: &Packet) -> bool {
    match p.protocol {
        6 => p.tcp_flags.syn,
        132 => p.sctp_chunk == sctp::chunk::INIT,
        _ => false,
    }
}

fn family_bits(c: &Conn) -> (Family, Family) {
    let f = |bit| if c.flags.has(bit) { Family::V6 } else { Family::V4 };
    (f(ConnFlags::V6), f(ConnFlags::DEST_V6))
}

impl Engine {
    /// Handles a packet from a client (the kernel's `ip_vs_in`).
    pub fn conn_in(&mut self, p: &Packet, now: Instant, rng: &mut dyn Random) -> InVerdict {
        let proto = p.protocol;
        let mut cp = self.conns.find_in(proto, &p.src, p.sport, &p.dst, p.dport);

        // A new connection reusing the client port of an old one.
        if let Some(id) = cp
            && self.tunables.conn_reuse_mode != 0
            && is_new_conn(p)
            && self.should_reschedule(id)
        {
            self.expire_conn(id);
            cp = None;
        }

        // The connection's real server was removed.
        if let Some(id) = cp
            && let Some(c) = self.conns.get(id)
            && !self.dests.get(c.dest).is_some_and(|d| d.available)
        {
            if self.tunables.expire_nodest_conn {
                self.expire_conn(id);
                cp = None;
            } else {
                self.drops.dest_unavailable += 1;
                return InVerdict::Drop(DropReason::DestUnavailable);
            }
        }

        let id = match cp {
            Some(id) => id,
            None => match self.try_to_schedule(p, now, rng) {
                Ok(Scheduled::Conn(id)) => id,
                Ok(Scheduled::OnePacket(f)) => return InVerdict::Forward(f),
                Err(v) => return v,
            },
        };
        self.account_in(id, p, now);
        self.forward_of(id)
    }

    /// Handles a packet from a real server (the kernel's `ip_vs_out`): NAT replies only.
    pub fn conn_out(&mut self, p: &Packet, now: Instant) -> OutVerdict {
        let Some(id) = self.conns.find_out(p.protocol, &p.dst, p.dport, &p.src, p.sport) else {
            return OutVerdict::NotOurs;
        };
        let Some(c) = self.conns.get(id).copied() else { return OutVerdict::NotOurs };
        let Some(d) = self.dests.get(c.dest) else { return OutVerdict::NotOurs };
        if d.config.method != ForwardMethod::Masquerade {
            return OutVerdict::NotOurs;
        }
        let (fam, _) = family_bits(&c);
        let bytes = u64::from(p.len);
        if let Some(d) = self.dests.get_mut(c.dest) {
            d.stats.add_out(bytes);
            let sid = d.service;
            if let Some(Some(s)) = self.services.get_mut(sid as usize) {
                s.stats.add_out(bytes);
            }
        }
        self.stats.add_out(bytes);
        self.transition(id, Direction::Output, p, now);
        OutVerdict::Reply { conn: id, vaddr: c.vaddr.to_ip(fam), vport: c.vport }
    }

    /// conn_reuse_mode: may a new connection replace this one?
    fn should_reschedule(&self, id: ConnId) -> bool {
        let Some(c) = self.conns.get(id) else { return false };
        if self.tunables.expire_nodest_conn && self.dests.get(c.dest).is_some_and(|d| d.weight() == 0) {
            return true;
        }
        if c.control().is_some() {
            return false;
        }
        match c.protocol {
            6 => {
                let s = TcpState::from_index(c.state);
                s == TcpState::TimeWait
                    || s == TcpState::Close
                    || (self.tunables.conn_reuse_mode & 2 != 0
                        && s == TcpState::FinWait
                        && c.flags.has(ConnFlags::NO_OUTPUT))
            }
            132 => SctpState::from_index(c.state) == SctpState::Closed,
            _ => false,
        }
    }

    /// Looks up the service and schedules a new connection (`ip_vs_try_to_schedule`).
    fn try_to_schedule(&mut self, p: &Packet, now: Instant, rng: &mut dyn Random) -> Result<Scheduled, InVerdict> {
        let Some(sid) = self.classify(p.family, p.fwmark, p.protocol, &p.dst, p.dport) else {
            return Err(InVerdict::NotOurs);
        };
        let may_create = match p.protocol {
            6 => (p.tcp_flags.syn || self.tunables.sloppy_tcp) && !p.tcp_flags.rst,
            17 => true,
            132 => {
                (p.sctp_chunk == sctp::chunk::INIT || self.tunables.sloppy_sctp) && p.sctp_chunk != sctp::chunk::ABORT
            }
            _ => {
                self.drops.unsupported_protocol += 1;
                false
            }
        };
        if !may_create {
            return Err(InVerdict::NoConnection);
        }
        if self.defense.should_drop_packet() {
            self.drops.defense += 1;
            return Err(InVerdict::Drop(DropReason::Defense));
        }
        self.schedule(sid, p, now, rng)
    }

    fn pick(&mut self, sid: ServiceId, p: &Packet, now: Instant, rng: &mut dyn Random) -> Option<DestId> {
        let Engine { services, dests, .. } = self;
        let svc = services.get_mut(sid.0 as usize)?.as_mut()?;
        let protocol = Protocol::from_number(p.protocol)?;
        let mut req = SchedRequest {
            protocol,
            client: p.src.to_ip(p.family),
            client_port: p.sport,
            vaddr: p.dst.to_ip(p.family),
            vport: p.dport,
            flags: svc.config.sched_flags,
            now,
            rng,
        };
        svc.scheduler.schedule(crate::sched::DestList::new(&svc.dests, dests), &mut req)
    }

    /// `ip_vs_schedule` / `ip_vs_sched_persist`.
    fn schedule(
        &mut self,
        sid: ServiceId,
        p: &Packet,
        now: Instant,
        rng: &mut dyn Random,
    ) -> Result<Scheduled, InVerdict> {
        let svc_cfg = match self.service(sid) {
            Some(s) => s.config.clone(),
            None => return Err(InVerdict::NotOurs),
        };
        let svc_port = svc_cfg.key.port();
        let one_packet = svc_cfg.one_packet && p.protocol == 17;
        let mut template = None;

        let (did, dport) = if let Some(persist) = svc_cfg.persistence {
            // Template key: <proto, client & mask, 0, vaddr, vport> with FTP, port-zero and
            // fwmark variants.
            let masked = Addr16::from_ip(persist.netmask.apply(p.src.to_ip(p.family)));
            let (t_proto, t_vaddr, t_vport) = match svc_cfg.key {
                ServiceKey::Fwmark { mark, .. } => (0u8, mark_addr(mark), 0u16),
                _ if p.dport == svc_port && svc_port != FTP_PORT => (p.protocol, p.dst, p.dport),
                _ => (p.protocol, p.dst, 0),
            };
            let found =
                self.conns.find_template(t_proto, &masked, &t_vaddr, t_vport).filter(|&t| self.check_template(t));
            let tid = match found {
                Some(t) => t,
                None => {
                    let Some(did) = self.pick(sid, p, now, rng) else {
                        self.drops.no_destination += 1;
                        return Err(InVerdict::Unreachable);
                    };
                    let d = self.dests.get(did).ok_or(InVerdict::Unreachable)?;
                    let t_dport = if p.dport == svc_port && svc_port != FTP_PORT { d.config.port } else { 0 };
                    let mut flags = ConnFlags::new(ConnFlags::TEMPLATE);
                    flags.set(ConnFlags::V6, p.family == Family::V6);
                    flags.set(ConnFlags::DEST_V6, Family::of(&d.config.addr) == Family::V6);
                    flags.set(ConnFlags::FWMARK, t_proto == 0);
                    let c = Conn::new(
                        t_proto,
                        masked,
                        0,
                        t_vaddr,
                        t_vport,
                        Addr16::from_ip(d.config.addr),
                        t_dport,
                        did,
                        flags,
                    );
                    let tid = self.insert_conn(c, now, u64::from(persist.timeout_secs) * 1000)?;
                    if let Some(d) = self.dests.get_mut(did) {
                        d.bind(true, false);
                    }
                    tid
                }
            };
            // Every new connection under it restarts the template's timer.
            self.conns.refresh(tid, now.as_millis(), u64::from(persist.timeout_secs) * 1000);
            template = Some(tid);
            let did = self.conns.get(tid).map(|t| t.dest).ok_or(InVerdict::Unreachable)?;
            let d = self.dests.get(did).ok_or(InVerdict::Unreachable)?;
            let dport = if p.dport == svc_port && d.config.port != 0 { d.config.port } else { p.dport };
            (did, dport)
        } else {
            let Some(did) = self.pick(sid, p, now, rng) else {
                self.drops.no_destination += 1;
                return Err(InVerdict::Unreachable);
            };
            let d = self.dests.get(did).ok_or(InVerdict::Unreachable)?;
            (did, if d.config.port != 0 { d.config.port } else { p.dport })
        };

        let d = self.dests.get(did).ok_or(InVerdict::Unreachable)?;
        let method = d.config.method;
        let daddr = d.config.addr;

        // Counted as a scheduled connection on the destination, the service and globally.
        self.count_conn(did);

        if one_packet {
            self.account_one_packet(did, p);
            return Ok(Scheduled::OnePacket(Forward { conn: None, dest: did, method, daddr, dport }));
        }

        let mut flags = ConnFlags::new(ConnFlags::INACTIVE);
        flags.set(ConnFlags::V6, p.family == Family::V6);
        flags.set(ConnFlags::DEST_V6, Family::of(&daddr) == Family::V6);
        flags.set(ConnFlags::NO_OUTPUT, method != ForwardMethod::Masquerade);
        let mut c = Conn::new(p.protocol, p.src, p.sport, p.dst, p.dport, Addr16::from_ip(daddr), dport, did, flags);
        if let Some(t) = template {
            c.link = t.0;
        }
        let id = self.insert_conn(c, now, 3_000)?;
        if let Some(t) = template
            && let Some(tc) = self.conns.get_mut(t)
        {
            tc.link = tc.link.saturating_add(1);
        }
        if let Some(d) = self.dests.get_mut(did) {
            d.bind(false, true);
        }
        self.notify_load(did);
        if p.protocol == 6 && p.tcp_flags.syn {
            self.record(did, super::DestEvent::SynForwarded);
        }
        Ok(Scheduled::Conn(id))
    }

    fn insert_conn(&mut self, c: Conn, now: Instant, timeout_ms: u64) -> Result<ConnId, InVerdict> {
        self.conns.insert(c, now.as_millis(), timeout_ms).map_err(|_| {
            self.drops.table_full += 1;
            InVerdict::Drop(DropReason::TableFull)
        })
    }

    fn count_conn(&mut self, did: DestId) {
        self.stats.add_conn();
        if let Some(d) = self.dests.get_mut(did) {
            d.stats.add_conn();
            let sid = d.service;
            if let Some(Some(s)) = self.services.get_mut(sid as usize) {
                s.stats.add_conn();
            }
        }
    }

    fn account_one_packet(&mut self, did: DestId, p: &Packet) {
        let bytes = u64::from(p.len);
        self.stats.add_in(bytes);
        if let Some(d) = self.dests.get_mut(did) {
            d.stats.add_in(bytes);
            let sid = d.service;
            if let Some(Some(s)) = self.services.get_mut(sid as usize) {
                s.stats.add_in(bytes);
            }
        }
    }

    /// `ip_vs_check_template`: is the template's destination still usable? If not, the
    /// template is invalidated (never found again) and left to expire.
    fn check_template(&mut self, t: ConnId) -> bool {
        let Some(tc) = self.conns.get(t) else { return false };
        let ok = self
            .dests
            .get(tc.dest)
            .is_some_and(|d| d.available && !(self.tunables.expire_quiescent_template && d.weight() == 0));
        if !ok && let Some(tc) = self.conns.get_mut(t) {
            tc.flags.set(ConnFlags::INVALID, true);
        }
        ok
    }

    /// Counters, state transition and timer for an inbound packet of a connection.
    fn account_in(&mut self, id: ConnId, p: &Packet, now: Instant) {
        let bytes = u64::from(p.len);
        let Some(c) = self.conns.get_mut(id) else { return };
        c.in_pkts = c.in_pkts.saturating_add(1);
        let did = c.dest;
        self.stats.add_in(bytes);
        if let Some(d) = self.dests.get_mut(did) {
            d.stats.add_in(bytes);
            let sid = d.service;
            if let Some(Some(s)) = self.services.get_mut(sid as usize) {
                s.stats.add_in(bytes);
            }
        }
        self.transition(id, Direction::Input, p, now);
    }

    /// Runs the protocol state machine for a packet and restarts the timer.
    fn transition(&mut self, id: ConnId, dir: Direction, p: &Packet, now: Instant) {
        let secure = self.defense.secure_tcp_active();
        let Some(c) = self.conns.get_mut(id) else { return };
        let mut dir = dir;
        if c.flags.has(ConnFlags::NO_OUTPUT) {
            if dir == Direction::Output {
                c.flags.set(ConnFlags::NO_OUTPUT, false);
            } else {
                dir = Direction::InputOnly;
            }
        }
        let mut event = None;
        let (new_state, active, timeout_s) = match c.protocol {
            6 => {
                let old = TcpState::from_index(c.state);
                let s = tcp::next_state(old, dir, p.tcp_flags, secure);
                if s == TcpState::Established && old != TcpState::Established {
                    event = Some(super::DestEvent::Established);
                } else if dir == Direction::Output
                    && p.tcp_flags.rst
                    && matches!(old, TcpState::SynRecv | TcpState::SynAck)
                {
                    event = Some(super::DestEvent::RstToSyn);
                }
                (s as u8, s.is_active(), self.timeouts.tcp(s))
            }
            132 => {
                let s = sctp::next_state(SctpState::from_index(c.state), dir, p.sctp_chunk);
                (s as u8, s.is_active(), self.timeouts.sctp(s))
            }
            _ => {
                if dir == Direction::Output {
                    event = Some(super::DestEvent::UdpReply);
                }
                (0, false, self.timeouts.udp())
            }
        };
        let dest = c.dest;
        let mut moved = None;
        if new_state != c.state {
            let inactive = c.flags.has(ConnFlags::INACTIVE);
            if c.protocol != 17 && inactive == active {
                c.flags.set(ConnFlags::INACTIVE, !active);
                moved = Some((c.dest, !active));
            }
            c.state = new_state;
        }
        self.conns.refresh(id, now.as_millis(), u64::from(timeout_s) * 1000);
        if let Some((did, now_inactive)) = moved {
            if let Some(d) = self.dests.get_mut(did) {
                d.move_conn(now_inactive);
            }
            self.notify_load(did);
        }
        if let Some(e) = event {
            self.record(dest, e);
        }
    }

    fn forward_of(&self, id: ConnId) -> InVerdict {
        let Some(c) = self.conns.get(id) else { return InVerdict::NoConnection };
        let Some(d) = self.dests.get(c.dest) else { return InVerdict::NoConnection };
        let (_, dfam) = family_bits(c);
        InVerdict::Forward(Forward {
            conn: Some(id),
            dest: c.dest,
            method: d.config.method,
            daddr: c.daddr.to_ip(dfam),
            dport: c.dport,
        })
    }

    /// Removes a connection now: unbinds it from its destination and its template.
    pub(crate) fn expire_conn(&mut self, id: ConnId) {
        let Some(c) = self.conns.remove(id) else { return };
        if let Some(t) = c.control()
            && let Some(tc) = self.conns.get_mut(t)
        {
            tc.link = tc.link.saturating_sub(1);
        }
        let template = c.is_template();
        if let Some(d) = self.dests.get_mut(c.dest) {
            d.unbind(template, c.flags.has(ConnFlags::INACTIVE));
        }
        if !template {
            self.notify_load(c.dest);
        }
        self.free_dest_if_unused(c.dest);
    }

    /// Re-arms a template that still controls connections instead of removing it.
    pub(crate) fn expire_or_rearm(&mut self, id: ConnId, now: Instant) {
        match self.conns.get(id) {
            Some(c) if c.is_template() && c.n_control() > 0 => {
                self.conns.refresh(id, now.as_millis(), CONTROLLING_TEMPLATE_RETRY_MS);
            }
            Some(_) => self.expire_conn(id),
            None => {}
        }
    }
}

/// The virtual-address field of a fwmark template: the mark, big-endian, as an IPv4-mapped
/// address.
fn mark_addr(mark: u32) -> Addr16 {
    Addr16::from_ip(IpAddr::V4(mark.into()))
}
