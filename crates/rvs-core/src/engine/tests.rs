//! Engine behaviour tests: what an operator relies on from IPVS, packet by packet.

use std::net::IpAddr;

use super::*;
use crate::conn::table::ConnFlags;
use crate::conn::{TcpFlags, TcpState};
use crate::random::SplitMix64;
use crate::sched::SchedulerKind;
use crate::service::{Netmask, Persistence, Protocol};

const VIP: &str = "198.18.0.10";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp_key(port: u16) -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip(VIP), port }
}

fn udp_key(port: u16) -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Udp, addr: ip(VIP), port }
}

struct Lab {
    e: Engine,
    rng: SplitMix64,
    now: Instant,
}

impl Lab {
    fn new(sched: SchedulerKind, method: ForwardMethod, n: usize) -> Lab {
        let mut e = Engine::new(1000, 7);
        let mut cfg = ServiceConfig::new(tcp_key(80));
        cfg.scheduler = sched;
        e.add_service(cfg).unwrap();
        for i in 0..n {
            let mut d = DestConfig::new(ip(&format!("198.18.1.{}", i + 1)), 8080);
            d.method = method;
            e.add_dest(&tcp_key(80), d).unwrap();
        }
        Lab { e, rng: SplitMix64::new(3), now: Instant::from_secs(1) }
    }

    fn pkt(&self, client: &str, cport: u16, flags: TcpFlags) -> Packet {
        Packet::new(Protocol::Tcp, ip(client), cport, ip(VIP), 80).with_tcp(flags)
    }

    fn send(&mut self, client: &str, cport: u16, flags: TcpFlags) -> InVerdict {
        let p = self.pkt(client, cport, flags);
        self.e.conn_in(&p, self.now, &mut self.rng)
    }

    fn syn(&mut self, client: &str, cport: u16) -> Forward {
        match self.send(client, cport, TcpFlags::SYN) {
            InVerdict::Forward(f) => f,
            other => panic!("SYN from {client}:{cport} not forwarded: {other:?}"),
        }
    }

    fn reply(&mut self, client: &str, cport: u16, rs: IpAddr, rport: u16, flags: TcpFlags) -> OutVerdict {
        let p = Packet::new(Protocol::Tcp, rs, rport, ip(client), cport).with_tcp(flags);
        self.e.conn_out(&p, self.now)
    }

    fn advance(&mut self, secs: u64) {
        self.now = self.now + std::time::Duration::from_secs(secs);
        self.e.expire(self.now);
    }

    fn dest(&self, addr: &str) -> &Destination {
        let sid = self.e.find_service(&tcp_key(80)).unwrap();
        let id = self.e.dests_of(sid).find(|(_, d)| d.config.addr == ip(addr)).unwrap().0;
        self.e.dest(id).unwrap()
    }
}

#[test]
fn dr_keeps_the_virtual_port_and_a_flow_sticks_to_its_server() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 3);
    let f = lab.syn("198.18.200.1", 40000);
    assert_eq!(f.method, ForwardMethod::DirectRoute);
    assert_eq!(f.dport, 80, "DR/TUN destinations use the virtual port, like ipvsadm");
    for _ in 0..5 {
        let InVerdict::Forward(g) = lab.send("198.18.200.1", 40000, TcpFlags::ACK) else { panic!() };
        assert_eq!(g.daddr, f.daddr);
        assert_eq!(g.conn, f.conn);
    }
    assert_eq!(lab.e.conns().len(), 1);
}

#[test]
fn packets_that_cannot_open_a_connection() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::Masquerade, 2);
    assert_eq!(lab.send("198.18.200.1", 40000, TcpFlags::ACK), InVerdict::NoConnection);
    assert_eq!(lab.send("198.18.200.1", 40000, TcpFlags::RST), InVerdict::NoConnection);
    let other = Packet::new(Protocol::Tcp, ip("198.18.200.1"), 1, ip(VIP), 443).with_tcp(TcpFlags::SYN);
    assert_eq!(lab.e.conn_in(&other, lab.now, &mut lab.rng), InVerdict::NotOurs);
    assert!(lab.e.conns().is_empty());
    lab.e.tunables.sloppy_tcp = true;
    assert!(matches!(lab.send("198.18.200.1", 40000, TcpFlags::ACK), InVerdict::Forward(_)));
}

#[test]
fn nat_replies_are_recognised_and_drive_the_state_machine() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::Masquerade, 1);
    let f = lab.syn("198.18.200.1", 40000);
    assert_eq!((f.daddr, f.dport), (ip("198.18.1.1"), 8080), "NAT maps the port");
    let d = lab.dest("198.18.1.1");
    assert_eq!((d.active_conns, d.inactive_conns), (1, 0), "SYN_RECV counts as active");
    assert_eq!(
        lab.reply("198.18.200.1", 40000, ip("198.18.1.1"), 8080, TcpFlags::SYN_ACK),
        OutVerdict::Reply { conn: f.conn.unwrap(), vaddr: ip(VIP), vport: 80 }
    );
    assert_eq!(lab.reply("198.18.200.1", 40001, ip("198.18.1.1"), 8080, TcpFlags::ACK), OutVerdict::NotOurs);
    lab.send("198.18.200.1", 40000, TcpFlags::ACK);
    let c = *lab.e.conns().get(f.conn.unwrap()).unwrap();
    assert_eq!(TcpState::from_index(c.state), TcpState::Established);
    lab.send("198.18.200.1", 40000, TcpFlags::FIN_ACK);
    lab.reply("198.18.200.1", 40000, ip("198.18.1.1"), 8080, TcpFlags::FIN_ACK);
    let c = *lab.e.conns().get(f.conn.unwrap()).unwrap();
    assert_eq!(TcpState::from_index(c.state), TcpState::TimeWait);
    let d = lab.dest("198.18.1.1");
    assert_eq!((d.active_conns, d.inactive_conns), (0, 1));
    assert_eq!(d.stats.counters.conns, 1);
    assert_eq!(d.stats.counters.in_pkts, 3);
    assert_eq!(d.stats.counters.out_pkts, 2);
}

#[test]
fn timeouts_follow_the_state_and_set() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 1);
    lab.syn("198.18.200.1", 40000);
    lab.send("198.18.200.1", 40000, TcpFlags::ACK);
    lab.advance(899);
    assert_eq!(lab.e.conns().len(), 1, "ESTABLISHED lasts 900 s");
    lab.advance(2);
    assert_eq!(lab.e.conns().len(), 0);
    assert_eq!(lab.dest("198.18.1.1").active_conns, 0, "expiry unbinds");

    lab.e.timeouts.set(30, 0, 0).unwrap();
    lab.syn("198.18.200.1", 40001);
    lab.send("198.18.200.1", 40001, TcpFlags::ACK);
    lab.advance(29);
    assert_eq!(lab.e.conns().len(), 1);
    lab.advance(2);
    assert_eq!(lab.e.conns().len(), 0, "--set tcp 30 applies");

    // A half-open connection (SYN only) times out after SYN_RECV's 60 s.
    lab.syn("198.18.200.1", 40002);
    lab.advance(59);
    assert_eq!(lab.e.conns().len(), 1);
    lab.advance(2);
    assert_eq!(lab.e.conns().len(), 0);
}

#[test]
fn quiescent_server_keeps_its_connections_but_gets_no_new_ones() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 2);
    let first = lab.syn("198.18.200.1", 1);
    let mut cfg = lab.dest(&first.daddr.to_string()).config;
    cfg.weight = 0;
    lab.e.edit_dest(&tcp_key(80), cfg).unwrap();
    for port in 2..20 {
        assert_ne!(lab.syn("198.18.200.1", port).daddr, first.daddr);
    }
    let InVerdict::Forward(again) = lab.send("198.18.200.1", 1, TcpFlags::ACK) else { panic!() };
    assert_eq!(again.daddr, first.daddr, "existing connection still flows to the quiesced server");
}

#[test]
fn removed_server_with_connections_follows_expire_nodest_conn() {
    for expire in [false, true] {
        let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 2);
        lab.e.tunables.expire_nodest_conn = expire;
        let f = lab.syn("198.18.200.1", 1);
        lab.send("198.18.200.1", 1, TcpFlags::ACK);
        lab.e.delete_dest(&tcp_key(80), f.daddr, 80).unwrap();
        // The destination stays in the trash while the connection references it.
        assert!(lab.e.dest(f.dest).is_some_and(|d| !d.available));
        let v = lab.send("198.18.200.1", 1, TcpFlags::ACK);
        if expire {
            assert_eq!(v, InVerdict::NoConnection, "connection expired; a non-SYN cannot reopen it");
            assert!(lab.e.dest(f.dest).is_none(), "unused trashed destination is freed");
            let g = lab.syn("198.18.200.1", 1);
            assert_ne!(g.daddr, f.daddr);
        } else {
            assert_eq!(v, InVerdict::Drop(DropReason::DestUnavailable));
            assert_eq!(lab.e.drops().dest_unavailable, 1);
        }
    }
}

#[test]
fn re_adding_a_trashed_server_brings_its_counters_back() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 1);
    let f = lab.syn("198.18.200.1", 1);
    lab.e.delete_dest(&tcp_key(80), f.daddr, 80).unwrap();
    let again = lab.e.add_dest(&tcp_key(80), DestConfig::new(f.daddr, 80)).unwrap();
    assert_eq!(again, f.dest);
    assert_eq!(lab.e.dest(again).unwrap().active_conns, 1);
    assert!(matches!(lab.send("198.18.200.1", 1, TcpFlags::ACK), InVerdict::Forward(_)));
}

#[test]
fn reused_client_port_after_close_is_rescheduled() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::Masquerade, 2);
    let f = lab.syn("198.18.200.1", 5);
    lab.reply("198.18.200.1", 5, f.daddr, 8080, TcpFlags::SYN_ACK);
    lab.send("198.18.200.1", 5, TcpFlags::ACK);
    lab.send("198.18.200.1", 5, TcpFlags::FIN_ACK);
    lab.reply("198.18.200.1", 5, f.daddr, 8080, TcpFlags::FIN_ACK);
    // TIME_WAIT now; a new SYN from the same port opens a new connection (rr: other server).
    let g = lab.syn("198.18.200.1", 5);
    assert_ne!(g.daddr, f.daddr, "a new connection, scheduled anew (rr: the other server)");
    assert_eq!(lab.e.conns().len(), 1);

    lab.e.tunables.conn_reuse_mode = 0;
    lab.send("198.18.200.1", 5, TcpFlags::ACK);
    lab.send("198.18.200.1", 5, TcpFlags::RST);
    let h = lab.syn("198.18.200.1", 5);
    assert_eq!((h.conn, h.daddr), (g.conn, g.daddr), "conn_reuse_mode 0 sends the new SYN down the old connection");
}

fn persistent(lab: &mut Lab, secs: u32, mask: &str) {
    let mut cfg = lab.e.service(lab.e.find_service(&tcp_key(80)).unwrap()).unwrap().config.clone();
    cfg.persistence = Some(Persistence { timeout_secs: secs, netmask: Netmask::V4(mask.parse().unwrap()) });
    lab.e.edit_service(cfg).unwrap();
}

#[test]
fn persistence_sends_a_client_network_to_one_server_and_templates_outlive_connections() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 3);
    persistent(&mut lab, 360, "255.255.255.0");
    let f = lab.syn("198.18.200.1", 1);
    for (client, port) in [("198.18.200.1", 2), ("198.18.200.77", 3), ("198.18.200.254", 4)] {
        assert_eq!(lab.syn(client, port).daddr, f.daddr, "same /24 -> same server");
    }
    assert_ne!(lab.syn("198.18.201.1", 1).daddr, f.daddr, "another /24 is scheduled");
    let templates: Vec<_> = lab.e.conns().iter().filter(|(_, c)| c.is_template()).map(|(_, c)| *c).collect();
    assert_eq!(templates.len(), 2);
    assert_eq!(templates[0].n_control(), 4);
    assert_eq!(templates[0].cport, 0);
    assert_eq!(lab.dest(&f.daddr.to_string()).persist_conns, 1);

    for client_port in [("198.18.200.1", 1), ("198.18.200.1", 2), ("198.18.200.77", 3), ("198.18.200.254", 4)] {
        lab.send(client_port.0, client_port.1, TcpFlags::ACK);
    }
    lab.send("198.18.201.1", 1, TcpFlags::ACK);
    // Connections established and kept alive past the template's timeout: the template stays.
    for _ in 0..5 {
        lab.advance(100);
        for port in 1..=4 {
            let client = ["198.18.200.1", "198.18.200.1", "198.18.200.77", "198.18.200.254"][port - 1];
            lab.send(client, port as u16, TcpFlags::ACK);
        }
        lab.send("198.18.201.1", 1, TcpFlags::ACK);
    }
    assert_eq!(lab.e.conns().iter().filter(|(_, c)| c.is_template()).count(), 2, "controlled templates live");
    // Once the connections are gone (RST -> CLOSE 10 s), the template goes within 60 s.
    for (client, port) in [("198.18.200.1", 1), ("198.18.200.1", 2), ("198.18.200.77", 3), ("198.18.200.254", 4)] {
        lab.send(client, port, TcpFlags::RST);
    }
    lab.send("198.18.201.1", 1, TcpFlags::RST);
    lab.advance(11);
    assert_eq!(lab.e.conns().iter().filter(|(_, c)| !c.is_template()).count(), 0);
    lab.advance(61);
    assert_eq!(lab.e.conns().len(), 0);
    assert_eq!(lab.dest(&f.daddr.to_string()).persist_conns, 0);
}

#[test]
fn persistence_to_a_quiesced_server_follows_expire_quiescent_template() {
    for expire in [false, true] {
        let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 2);
        lab.e.tunables.expire_quiescent_template = expire;
        persistent(&mut lab, 360, "255.255.255.255");
        let f = lab.syn("198.18.200.1", 1);
        let mut cfg = lab.dest(&f.daddr.to_string()).config;
        cfg.weight = 0;
        lab.e.edit_dest(&tcp_key(80), cfg).unwrap();
        let g = lab.syn("198.18.200.1", 2);
        if expire {
            assert_ne!(g.daddr, f.daddr, "template invalidated, client rescheduled");
        } else {
            assert_eq!(g.daddr, f.daddr, "template still sends the client to the quiesced server");
        }
    }
}

#[test]
fn fwmark_persistence_covers_every_port_of_the_mark() {
    let mut e = Engine::new(100, 1);
    let key = ServiceKey::Fwmark { family: Family::V4, mark: 7 };
    let mut cfg = ServiceConfig::new(key);
    cfg.scheduler = SchedulerKind::Rr;
    cfg.persistence = Some(Persistence::default_for(Family::V4));
    e.add_service(cfg).unwrap();
    for i in 1..=3 {
        e.add_dest(&key, DestConfig::new(ip(&format!("198.18.1.{i}")), 0)).unwrap();
    }
    let mut rng = SplitMix64::new(1);
    let mut seen = Vec::new();
    for port in [80u16, 443, 8443] {
        let p = Packet::new(Protocol::Tcp, ip("198.18.200.9"), 3000 + port, ip(VIP), port)
            .with_tcp(TcpFlags::SYN)
            .with_mark(7);
        let InVerdict::Forward(f) = e.conn_in(&p, Instant::ZERO, &mut rng) else { panic!() };
        assert_eq!(f.dport, port, "port-0 real server keeps the packet's port");
        seen.push(f.daddr);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "one server for all ports of the mark: {seen:?}");
    let unmarked = Packet::new(Protocol::Tcp, ip("198.18.200.9"), 1, ip(VIP), 80).with_tcp(TcpFlags::SYN);
    assert_eq!(e.conn_in(&unmarked, Instant::ZERO, &mut rng), InVerdict::NotOurs);
    let tpl = e.conns().iter().find(|(_, c)| c.is_template()).unwrap().1;
    assert!(tpl.flags.has(ConnFlags::FWMARK));
    assert_eq!(tpl.protocol, 0);
}

#[test]
fn one_packet_scheduling_keeps_no_connection() {
    let mut e = Engine::new(100, 1);
    let mut cfg = ServiceConfig::new(udp_key(53));
    cfg.scheduler = SchedulerKind::Rr;
    cfg.one_packet = true;
    e.add_service(cfg).unwrap();
    for i in 1..=2 {
        e.add_dest(&udp_key(53), DestConfig::new(ip(&format!("198.18.1.{i}")), 53)).unwrap();
    }
    let mut rng = SplitMix64::new(1);
    let p = Packet::new(Protocol::Udp, ip("198.18.200.9"), 5353, ip(VIP), 53);
    let mut got = Vec::new();
    for _ in 0..4 {
        let InVerdict::Forward(f) = e.conn_in(&p, Instant::ZERO, &mut rng) else { panic!() };
        assert_eq!(f.conn, None);
        got.push(f.daddr);
    }
    assert_ne!(got[0], got[1], "each datagram is scheduled on its own");
    assert!(e.conns().is_empty());
    assert_eq!(e.stats().counters.conns, 4);
}

#[test]
fn udp_connections_are_inactive_and_last_the_udp_timeout() {
    let mut e = Engine::new(100, 1);
    e.add_service(ServiceConfig::new(udp_key(53))).unwrap();
    let did = e.add_dest(&udp_key(53), DestConfig::new(ip("198.18.1.1"), 53)).unwrap();
    let mut rng = SplitMix64::new(1);
    let p = Packet::new(Protocol::Udp, ip("198.18.200.9"), 5353, ip(VIP), 53);
    assert!(matches!(e.conn_in(&p, Instant::ZERO, &mut rng), InVerdict::Forward(_)));
    let d = e.dest(did).unwrap();
    assert_eq!((d.active_conns, d.inactive_conns), (0, 1));
    e.expire(Instant::from_secs(299));
    assert_eq!(e.conns().len(), 1);
    e.expire(Instant::from_secs(301));
    assert_eq!(e.conns().len(), 0);
}

#[test]
fn ipv6_service_and_tunnel_to_an_ipv4_server() {
    let mut e = Engine::new(100, 1);
    let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip("fd00::10"), port: 80 };
    e.add_service(ServiceConfig::new(key)).unwrap();
    let mut dr4 = DestConfig::new(ip("198.18.1.1"), 80);
    assert_eq!(e.add_dest(&key, dr4), Err(ConfigError::FamilyMismatch));
    dr4.method = ForwardMethod::Tunnel(crate::dest::TunnelConfig::IPIP);
    e.add_dest(&key, dr4).unwrap();
    let mut rng = SplitMix64::new(1);
    let p = Packet::new(Protocol::Tcp, ip("fd00::200:1"), 999, ip("fd00::10"), 80).with_tcp(TcpFlags::SYN);
    let InVerdict::Forward(f) = e.conn_in(&p, Instant::ZERO, &mut rng) else { panic!() };
    assert_eq!(f.daddr, ip("198.18.1.1"));
    let (_, c) = e.conns().iter().next().unwrap();
    assert!(c.flags.has(ConnFlags::V6) && !c.flags.has(ConnFlags::DEST_V6));
}

#[test]
fn no_available_server_means_unreachable_and_overloaded_servers_are_skipped() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 2);
    for a in ["198.18.1.1", "198.18.1.2"] {
        let mut c = lab.dest(a).config;
        c.upper_threshold = 1;
        lab.e.edit_dest(&tcp_key(80), c).unwrap();
    }
    let a = lab.syn("198.18.200.1", 1);
    let b = lab.syn("198.18.200.1", 2);
    assert_ne!(a.daddr, b.daddr);
    assert!(lab.dest("198.18.1.1").overloaded && lab.dest("198.18.1.2").overloaded);
    assert_eq!(lab.send("198.18.200.1", 3, TcpFlags::SYN), InVerdict::Unreachable);
    assert_eq!(lab.e.drops().no_destination, 1);
    // One connection is reset and expires (a RST in SYN_RECV keeps SYN_RECV's 60 s): below
    // 3/4 of the threshold, the server is back.
    lab.send("198.18.200.1", 1, TcpFlags::RST);
    lab.advance(61);
    assert!(!lab.dest(&a.daddr.to_string()).overloaded);
    assert_eq!(lab.syn("198.18.200.1", 4).daddr, a.daddr);
}

#[test]
fn full_table_refuses_new_connections_and_counts_them() {
    let mut e = Engine::new(3, 1);
    e.add_service(ServiceConfig::new(tcp_key(80))).unwrap();
    e.add_dest(&tcp_key(80), DestConfig::new(ip("198.18.1.1"), 80)).unwrap();
    let mut rng = SplitMix64::new(1);
    for port in 1..=5u16 {
        let p = Packet::new(Protocol::Tcp, ip("198.18.200.1"), port, ip(VIP), 80).with_tcp(TcpFlags::SYN);
        let v = e.conn_in(&p, Instant::ZERO, &mut rng);
        if port <= 3 {
            assert!(matches!(v, InVerdict::Forward(_)));
        } else {
            assert_eq!(v, InVerdict::Drop(DropReason::TableFull));
        }
    }
    assert_eq!(e.conns().len(), 3);
    assert_eq!(e.drops().table_full, 2);
    let (_, d) = e.dests_of(e.find_service(&tcp_key(80)).unwrap()).next().unwrap();
    assert_eq!(d.active_conns, 3, "refused connections are not counted");
}

#[test]
fn admin_errors_match_ipvsadm_and_change_nothing() {
    let mut e = Engine::new(10, 1);
    assert_eq!(e.add_service(ServiceConfig::new(tcp_key(0))), Err(ConfigError::ZeroPortNonPersistent));
    e.add_service(ServiceConfig::new(tcp_key(80))).unwrap();
    assert_eq!(e.add_service(ServiceConfig::new(tcp_key(80))), Err(ConfigError::ServiceExists));
    assert_eq!(e.edit_service(ServiceConfig::new(tcp_key(81))), Err(ConfigError::NoSuchService));
    let d = DestConfig::new(ip("198.18.1.1"), 80);
    e.add_dest(&tcp_key(80), d).unwrap();
    assert_eq!(e.add_dest(&tcp_key(80), d), Err(ConfigError::DestExists));
    let mut heavy = d;
    heavy.weight = 70000;
    assert_eq!(e.edit_dest(&tcp_key(80), heavy), Err(ConfigError::IllegalWeight));
    assert_eq!(e.delete_dest(&tcp_key(80), ip("198.18.1.9"), 80), Err(ConfigError::NoSuchDest));
    assert_eq!(e.dests_of(e.find_service(&tcp_key(80)).unwrap()).next().unwrap().1.weight(), 1);
    e.clear();
    assert_eq!(e.services().count(), 0);
    assert_eq!(e.delete_service(&tcp_key(80)), Err(ConfigError::NoSuchService));
}

#[test]
fn drop_packet_defence_drops_new_connections_only() {
    use crate::defense::DefensePolicy;
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 1);
    lab.syn("198.18.200.1", 1);
    lab.e.defense_mut().set_am_droprate(2);
    lab.e.defense_mut().set_mode(DefensePolicy::DropPacket, 3).unwrap();
    let mut dropped = 0;
    for port in 10..20 {
        if lab.send("198.18.200.1", port, TcpFlags::SYN) == InVerdict::Drop(DropReason::Defense) {
            dropped += 1;
        }
    }
    assert_eq!(dropped, 5, "am_droprate 2: one new connection in two is dropped");
    for _ in 0..10 {
        assert!(matches!(lab.send("198.18.200.1", 1, TcpFlags::ACK), InVerdict::Forward(_)));
    }
}

#[test]
fn drop_entry_defence_removes_half_open_connections() {
    use crate::defense::DefensePolicy;
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 1);
    for port in 0..64 {
        lab.syn("198.18.200.1", port);
    }
    lab.syn("198.18.200.2", 1);
    lab.e.defense_mut().set_mode(DefensePolicy::DropEntry, 3).unwrap();
    let mut rng = SplitMix64::new(9);
    // 30 s: well before SYN_RECV's 60 s timeout, so only the defence removes entries.
    // Two random probes a second (1/32 of 66 slots, at least one... 66 >> 5 = 2).
    for _ in 0..30 {
        lab.now = lab.now + std::time::Duration::from_secs(1);
        // An established connection with traffic is spared.
        lab.send("198.18.200.2", 1, TcpFlags::ACK);
        lab.e.tick(lab.now, 1 << 20, &mut rng);
    }
    let dropped = lab.e.drops().defense_dropped_entries;
    assert!(dropped > 20, "60 probes over 66 slots drop about 39 half-open entries, got {dropped}");
    assert_eq!(lab.e.conns().len() as u64, 65 - dropped);
    assert!(lab.e.conns().find_in(6, &Addr16::from_ip(ip("198.18.200.2")), 1, &Addr16::from_ip(ip(VIP)), 80).is_some());
}

mod invariants {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Syn(u8, u16),
        Ack(u8, u16),
        Fin(u8, u16),
        Rst(u8, u16),
        Reply(u8, u16, u8),
        AddDest(u8),
        DelDest(u8),
        Weight(u8, u16),
        Advance(u16),
        Persist(bool),
        Sched(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..6, 0u16..20).prop_map(|(c, p)| Op::Syn(c, p)),
            3 => (0u8..6, 0u16..20).prop_map(|(c, p)| Op::Ack(c, p)),
            1 => (0u8..6, 0u16..20).prop_map(|(c, p)| Op::Fin(c, p)),
            1 => (0u8..6, 0u16..20).prop_map(|(c, p)| Op::Rst(c, p)),
            2 => (0u8..6, 0u16..20, 0u8..5).prop_map(|(c, p, d)| Op::Reply(c, p, d)),
            1 => (0u8..5).prop_map(Op::AddDest),
            1 => (0u8..5).prop_map(Op::DelDest),
            1 => (0u8..5, 0u16..4).prop_map(|(d, w)| Op::Weight(d, w)),
            2 => (0u16..400).prop_map(Op::Advance),
            1 => any::<bool>().prop_map(Op::Persist),
            1 => (0u8..14).prop_map(Op::Sched),
        ]
    }

    fn check(e: &Engine) -> Result<(), TestCaseError> {
        // Per destination: counters equal what the table holds.
        let mut counts: std::collections::HashMap<DestId, (u32, u32, u32)> = Default::default();
        let mut controlled: std::collections::HashMap<u32, u32> = Default::default();
        for (id, c) in e.conns().iter() {
            let d = e.dest(c.dest);
            prop_assert!(d.is_some(), "conn {id:?} points to a freed destination");
            let entry = counts.entry(c.dest).or_default();
            if c.is_template() {
                entry.2 += 1;
            } else if c.flags.has(ConnFlags::INACTIVE) {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
            if let Some(t) = c.control() {
                let tpl = e.conns().get(t);
                prop_assert!(tpl.is_some_and(|t| t.is_template()), "controlled conn without its template");
                *controlled.entry(t.0).or_default() += 1;
            }
        }
        for (id, d) in e.dests.iter() {
            let (a, i, p) = counts.get(&id).copied().unwrap_or_default();
            prop_assert_eq!((d.active_conns, d.inactive_conns, d.persist_conns), (a, i, p), "dest {:?}", id);
            prop_assert!(d.available || d.refs() > 0, "unused trashed destination kept");
            let upper = u64::from(d.config.upper_threshold);
            if d.overloaded {
                prop_assert!(upper != 0);
            }
        }
        for (id, c) in e.conns().iter().filter(|(_, c)| c.is_template()) {
            prop_assert_eq!(c.n_control(), controlled.get(&id.0).copied().unwrap_or(0));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn counters_templates_and_destinations_stay_consistent(ops in proptest::collection::vec(op(), 1..120)) {
            let mut lab = Lab::new(SchedulerKind::Wlc, ForwardMethod::Masquerade, 3);
            lab.e.tunables.expire_nodest_conn = true;
            for op in ops {
                let client = |c: u8| format!("198.18.200.{}", c + 1);
                match op {
                    Op::Syn(c, p) => { lab.send(&client(c), p, TcpFlags::SYN); }
                    Op::Ack(c, p) => { lab.send(&client(c), p, TcpFlags::ACK); }
                    Op::Fin(c, p) => { lab.send(&client(c), p, TcpFlags::FIN_ACK); }
                    Op::Rst(c, p) => { lab.send(&client(c), p, TcpFlags::RST); }
                    Op::Reply(c, p, d) => {
                        lab.reply(&client(c), p, ip(&format!("198.18.1.{}", d + 1)), 8080, TcpFlags::ACK);
                    }
                    Op::AddDest(d) => {
                        let mut cfg = DestConfig::new(ip(&format!("198.18.1.{}", d + 1)), 8080);
                        cfg.method = ForwardMethod::Masquerade;
                        cfg.upper_threshold = u32::from(d % 2) * 3;
                        let _ = lab.e.add_dest(&tcp_key(80), cfg);
                    }
                    Op::DelDest(d) => { let _ = lab.e.delete_dest(&tcp_key(80), ip(&format!("198.18.1.{}", d + 1)), 8080); }
                    Op::Weight(d, w) => {
                        let sid = lab.e.find_service(&tcp_key(80)).unwrap();
                        if let Some(id) = lab.e.find_dest(sid, ip(&format!("198.18.1.{}", d + 1)), 8080) {
                            let mut cfg = lab.e.dest(id).unwrap().config;
                            cfg.weight = u32::from(w);
                            lab.e.edit_dest(&tcp_key(80), cfg).unwrap();
                        }
                    }
                    Op::Advance(s) => lab.advance(u64::from(s)),
                    Op::Persist(on) => {
                        let sid = lab.e.find_service(&tcp_key(80)).unwrap();
                        let mut cfg = lab.e.service(sid).unwrap().config.clone();
                        cfg.persistence = on.then(|| Persistence { timeout_secs: 120, netmask: Netmask::V4("255.255.255.0".parse().unwrap()) });
                        lab.e.edit_service(cfg).unwrap();
                    }
                    Op::Sched(k) => {
                        let sid = lab.e.find_service(&tcp_key(80)).unwrap();
                        let mut cfg = lab.e.service(sid).unwrap().config.clone();
                        cfg.scheduler = SchedulerKind::ALL[usize::from(k)];
                        lab.e.edit_service(cfg).unwrap();
                    }
                }
                check(&lab.e)?;
            }
            // Everything expires eventually and leaves no trace.
            lab.advance(100_000);
            lab.advance(100_000);
            prop_assert_eq!(lab.e.conns().len(), 0);
            check(&lab.e)?;
        }
    }
}

#[test]
fn secure_tcp_defence_switches_the_state_table() {
    use crate::defense::DefensePolicy;
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::Masquerade, 1);
    lab.e.defense_mut().set_mode(DefensePolicy::SecureTcp, 3).unwrap();
    assert!(lab.e.defense().secure_tcp_active());
    let f = lab.syn("198.18.200.1", 1);
    // A client ACK without the server's SYN-ACK does not establish the NAT connection.
    lab.send("198.18.200.1", 1, TcpFlags::ACK);
    let state = |lab: &Lab| TcpState::from_index(lab.e.conns().get(f.conn.unwrap()).unwrap().state);
    assert_eq!(state(&lab), TcpState::SynRecv);
    lab.reply("198.18.200.1", 1, f.daddr, 8080, TcpFlags::SYN_ACK);
    assert_eq!(state(&lab), TcpState::SynAck);
    lab.reply("198.18.200.1", 1, f.daddr, 8080, TcpFlags::ACK);
    assert_eq!(state(&lab), TcpState::Established);
}

#[test]
fn counters_rates_and_zeroing() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::DirectRoute, 1);
    let mut rng = SplitMix64::new(4);
    // 10 new connections of 2 packets each every 2 s, for 20 s.
    for round in 0..10u16 {
        for i in 0..10u16 {
            let port = round * 10 + i;
            lab.syn("198.18.200.1", port);
            lab.send("198.18.200.1", port, TcpFlags::ACK);
        }
        lab.now = lab.now + std::time::Duration::from_secs(2);
        lab.e.tick(lab.now, 1 << 20, &mut rng);
    }
    let sid = lab.e.find_service(&tcp_key(80)).unwrap();
    let svc = lab.e.service(sid).unwrap();
    assert_eq!(svc.stats.counters.conns, 100);
    assert_eq!(svc.stats.counters.in_pkts, 200);
    assert_eq!(svc.stats.counters.in_bytes, 200 * 60);
    assert_eq!(lab.e.stats().counters.conns, 100);
    // 10 connections per 2 s: the EWMA converges towards 5 conn/s, 10 pkt/s.
    let r = svc.stats.rates();
    assert!((4..=5).contains(&r.cps), "cps {}", r.cps);
    assert!((8..=10).contains(&r.in_pps), "pps {}", r.in_pps);
    lab.e.zero_stats(None, lab.now);
    let svc = lab.e.service(sid).unwrap();
    assert_eq!(svc.stats.counters.conns, 0);
    assert_eq!(svc.stats.rates().cps, 0);
    assert_eq!(lab.e.dests_of(sid).next().unwrap().1.stats.counters.in_pkts, 0);
    assert_eq!(lab.e.conns().len(), 100, "zeroing counters keeps connections");
}

#[test]
fn the_data_path_reports_what_real_servers_do_when_asked() {
    let mut lab = Lab::new(SchedulerKind::Rr, ForwardMethod::Masquerade, 1);
    let rs = ip("198.18.1.1");
    let mut events = Vec::new();
    lab.syn("198.18.200.1", 1);
    lab.e.drain_dest_events(&mut events);
    assert!(events.is_empty(), "off by default");

    lab.e.set_observe_dests(true);
    let f = lab.syn("198.18.200.1", 2);
    lab.reply("198.18.200.1", 2, rs, 8080, TcpFlags::SYN_ACK);
    lab.send("198.18.200.1", 2, TcpFlags::ACK);
    lab.syn("198.18.200.1", 3);
    lab.reply("198.18.200.1", 3, rs, 8080, TcpFlags::RST);
    lab.e.drain_dest_events(&mut events);
    use super::DestEvent::*;
    let kinds: Vec<_> = events.iter().map(|&(d, e)| (d == f.dest, e)).collect();
    assert_eq!(kinds, vec![(true, SynForwarded), (true, Established), (true, SynForwarded), (true, RstToSyn)]);
    events.clear();
    lab.e.drain_dest_events(&mut events);
    assert!(events.is_empty(), "drained");

    // A flood nobody drains is bounded.
    for _ in 0..super::observe::MAX_PENDING_EVENTS + 5 {
        lab.e.record(f.dest, SynForwarded);
    }
    assert_eq!(lab.e.lost_dest_events(), 5);
}
