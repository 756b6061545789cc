//! SIGHUP in-process (this file is its own test process, so the signals reach only this
//! daemon): connections opened through the shared engine before a reload keep their real
//! servers after it, and SIGTERM stops the daemon and removes its socket.

mod common;

use std::net::IpAddr;

use common::{CONFIG, TempDir, list, wait_until};
use rvs_core::conn::TcpFlags;
use rvs_core::engine::{InVerdict, Packet};
use rvs_core::{Protocol, SplitMix64};
use rvsd::Rvsd;
use rvsd::server::ServerLimits;
use rvsd::signals::SignalWatcher;
use signal_hook::consts::{SIGHUP, SIGTERM};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn sighup_reload_keeps_existing_connections_and_sigterm_stops() {
    let dir = TempDir::new("sighup");
    let path = dir.write_config(CONFIG);
    let signals = SignalWatcher::register().unwrap();
    let rvsd = Rvsd::start_at(path, &dir.socket(), ServerLimits::default()).unwrap();
    let engine = rvsd.engine();
    let clock_now = {
        let start = rvsd.now();
        move || start
    };
    let socket = rvsd.socket_path().to_path_buf();

    // Eight clients open TCP connections to the web VIP (SYN through the shared engine).
    let vip = ip("198.18.100.1");
    let mut rng = SplitMix64::new(1);
    let clients: Vec<(IpAddr, u16)> = (1..=8).map(|i| (ip(&format!("198.18.50.{i}")), 40_000 + i)).collect();
    let mut chosen = Vec::new();
    {
        let mut e = engine.lock().unwrap();
        for &(c, port) in &clients {
            let syn = Packet::new(Protocol::Tcp, c, port, vip, 80).with_tcp(TcpFlags::SYN);
            match e.conn_in(&syn, clock_now(), &mut rng) {
                InVerdict::Forward(f) => chosen.push(f.daddr),
                other => panic!("SYN not forwarded: {other:?}"),
            }
        }
        assert_eq!(e.conns().len(), 8);
    }
    // wlc with equal weights spreads them over both real servers.
    assert!(chosen.contains(&ip("198.18.2.21")) && chosen.contains(&ip("198.18.2.22")));

    let daemon = std::thread::spawn(move || rvsd.run_until_signalled(signals));

    // The new file: another scheduler, another weight, one more real server. Both existing
    // real servers stay, so their connections must stay with them.
    let changed = CONFIG
        .replacen("scheduler = \"wlc\"", "scheduler = \"rr\"", 1)
        .replacen("address = \"198.18.2.22:80\"\nweight = 1", "address = \"198.18.2.22:80\"\nweight = 3", 1)
        .replacen(
            "\n[[service]]\nvip = \"198.18.100.2:53\"",
            "\n[[service.real]]\naddress = \"198.18.2.23:80\"\n\n[[service]]\nvip = \"198.18.100.2:53\"",
            1,
        );
    dir.write_config(&changed);
    signal_hook::low_level::raise(SIGHUP).unwrap();
    wait_until("the reload", || list(&socket).services[0].dests.len() == 3);

    let table = list(&socket);
    assert_eq!(table.services[0].spec.scheduler, "rr");
    assert_eq!(table.services[0].dests[1].spec.weight, 3);
    {
        let mut e = engine.lock().unwrap();
        assert_eq!(e.conns().len(), 8, "no connection was dropped by the reload");
        // The next packet of each connection goes where its SYN went.
        for (&(c, port), &before) in clients.iter().zip(&chosen) {
            let ack = Packet::new(Protocol::Tcp, c, port, vip, 80).with_tcp(TcpFlags::ACK);
            match e.conn_in(&ack, clock_now(), &mut rng) {
                InVerdict::Forward(f) => assert_eq!(f.daddr, before, "client {c} moved"),
                other => panic!("established packet not forwarded: {other:?}"),
            }
        }
        assert_eq!(e.conns().len(), 8);
    }
    // The per-server counters still count the connections (ActiveConn/InActConn).
    let table = list(&socket);
    let counted: u32 = table.services[0].dests.iter().map(|d| d.active_conns + d.inactive_conns).sum();
    assert_eq!(counted, 8);

    signal_hook::low_level::raise(SIGTERM).unwrap();
    daemon.join().unwrap();
    assert!(!socket.exists(), "SIGTERM removes the socket");
}
