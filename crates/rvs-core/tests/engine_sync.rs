//! Connection sync on the engine: what a master lists is what a backup installs, bound to the
//! same real server, without scheduling; after a takeover the backup forwards the connection's
//! packets to that server.

use std::net::IpAddr;

use rvs_core::conn::TcpFlags;
use rvs_core::engine::sync::{Installed, SyncInstallError};
use rvs_core::engine::{Engine, InVerdict, Packet};
use rvs_core::{
    DestConfig, ForwardMethod, Instant, Netmask, Persistence, Protocol, ServiceConfig, ServiceKey, SplitMix64,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key() -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip("198.18.100.1"), port: 80 }
}

/// A director with one service and three real servers (rr), optionally persistent.
fn director(persistent: bool) -> Engine {
    let mut e = Engine::new(1000, 1);
    let mut cfg = ServiceConfig::new(key());
    cfg.scheduler = rvs_core::SchedulerKind::Rr;
    if persistent {
        cfg.persistence =
            Some(Persistence { timeout_secs: 360, netmask: Netmask::V4("255.255.255.255".parse().unwrap()) });
    }
    e.add_service(cfg).unwrap();
    for i in 1..=3 {
        let mut d = DestConfig::new(ip(&format!("198.18.2.2{i}")), 80);
        d.method = ForwardMethod::Masquerade;
        e.add_dest(&key(), d).unwrap();
    }
    e
}

fn forward_to(e: &mut Engine, cport: u16, flags: TcpFlags, now: Instant) -> Option<IpAddr> {
    let p = Packet::new(Protocol::Tcp, ip("198.18.1.2"), cport, ip("198.18.100.1"), 80).with_tcp(flags);
    match e.conn_in(&p, now, &mut SplitMix64::new(9)) {
        InVerdict::Forward(f) => Some(f.daddr),
        _ => None,
    }
}

#[test]
fn a_backup_forwards_synced_connections_to_the_masters_choice() {
    let now = Instant::from_secs(10);
    let mut master = director(false);
    // Three connections; rr spreads them over the three servers.
    let chosen: Vec<IpAddr> = (0..3).map(|i| forward_to(&mut master, 40000 + i, TcpFlags::SYN, now).unwrap()).collect();
    let records = master.sync_records(now);
    assert_eq!(records.len(), 3);

    // The backup's rr would start again at the first server for every one of them; installed
    // entries must keep the master's choice instead.
    let mut backup = director(false);
    for r in &records {
        assert!(matches!(backup.install_synced(r, now), Ok(Installed::Created(_))));
    }
    assert_eq!(backup.conns().len(), 3);
    for (i, want) in chosen.iter().enumerate() {
        let got = forward_to(&mut backup, 40000 + i as u16, TcpFlags::ACK, now);
        assert_eq!(got, Some(*want), "connection {i} stays on its server after takeover");
    }
    // A second report refreshes instead of duplicating.
    assert!(matches!(backup.install_synced(&records[0], now), Ok(Installed::Refreshed(_))));
    assert_eq!(backup.conns().len(), 3);
    // Destination counters follow: three connections bound (SYN_RECV is active).
    let bound: u32 = backup
        .services()
        .flat_map(|(id, _)| backup.dests_of(id).map(|(_, d)| d.active_conns + d.inactive_conns).collect::<Vec<_>>())
        .sum();
    assert_eq!(bound, 3);
}

#[test]
fn templates_come_first_and_connections_link_to_them() {
    let now = Instant::from_secs(10);
    let mut master = director(true);
    let server = forward_to(&mut master, 40000, TcpFlags::SYN, now).unwrap();
    let records = master.sync_records(now);
    assert_eq!(records.len(), 2);
    assert!(records[0].template && !records[1].template, "template listed before its connection");
    let mut backup = director(true);
    for r in &records {
        backup.install_synced(r, now).unwrap();
    }
    let template = backup.conns().iter().map(|(_, c)| *c).find(|c| c.is_template()).unwrap();
    assert_eq!(template.n_control(), 1, "the synced connection is controlled by the synced template");
    // A new connection from the same client goes to the same server through the template.
    assert_eq!(forward_to(&mut backup, 40001, TcpFlags::SYN, now), Some(server));
}

#[test]
fn entries_for_unknown_services_or_servers_are_refused() {
    let now = Instant::from_secs(10);
    let mut master = director(false);
    forward_to(&mut master, 40000, TcpFlags::SYN, now).unwrap();
    let mut r = master.sync_records(now)[0];
    let mut backup = director(false);
    r.daddr = ip("198.18.2.99");
    assert_eq!(backup.install_synced(&r, now), Err(SyncInstallError::NoDestination));
    r.vport = 81;
    assert_eq!(backup.install_synced(&r, now), Err(SyncInstallError::NoService));
    assert_eq!(backup.conns().len(), 0);
}
