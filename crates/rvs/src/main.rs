//! `rvs`: the operator's command. `rvs demo` drives the real IPVS engine with simulated
//! clients and prints how each scheduler spreads connections; `rvs realserver` sets up and
//! checks a real server (VIP on lo, ARP sysctls, TUN decapsulator).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rvs_core::conn::TcpFlags;
use rvs_core::engine::{Engine, InVerdict, Packet};
use rvs_core::random::SplitMix64;
use rvs_core::service::{Netmask, Persistence, Protocol, ServiceConfig, ServiceKey};
use rvs_core::{DestConfig, ForwardMethod, Instant, SchedulerKind};

const VIP: &str = "198.18.0.10";
const WEIGHTS: [u32; 3] = [3, 2, 1];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(args.get(1).map(|s| s.parse()).transpose().context("connection count")?.unwrap_or(600)),
        Some("lab") => std::process::exit(rvs::lab::main(&args[1..])?),
        Some("bench") => std::process::exit(rvs::bench::main(&args[1..])?),
        Some("import") => std::process::exit(rvs::import::main(&args[1..])?),
        Some("realserver") => std::process::exit(rvs_realserver::main_args(&args[1..])?),
        Some("-h" | "--help") | None => {
            println!("usage: rvs lab up [dr|nat|tun] | status | down | demo  a cluster in network namespaces");
            println!("       rvs bench [--quick] [--json]                  packets, connections, latency vs baselines");
            println!("       rvs demo [CONNECTIONS]                      run the engine demo (no network)");
            println!("       rvs realserver setup|check|teardown|decap ...  configure a real server (--help)");
            println!(
                "       rvs import heartbeat|keepalived FILE...       failover ([[vrrp]]; keepalived also services)"
            );
            println!("       rvs import ldirectord|piranha FILE             services and checks as rvs TOML");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}' (try `rvs --help')"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

/// One service per scheduler with three real servers of weights 3, 2, 1; `n` clients open a
/// connection each (SYN, ACK), a third of them close again; print the spread.
fn demo(n: u32) -> Result<()> {
    println!("rvs engine demo: {n} TCP connections from distinct clients to {VIP}:80 per scheduler");
    println!("real servers rs1..rs3 with weights {WEIGHTS:?}; every third connection closes after its request\n");
    println!(
        "{:<6} {:>6} {:>6} {:>6} {:>8}   ActiveConn/InActConn at the end",
        "sched", "rs1", "rs2", "rs3", "refused"
    );
    let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip(VIP), port: 80 };
    for kind in SchedulerKind::ALL {
        let mut engine = Engine::new(1 << 16, 0x5eed);
        let mut cfg = ServiceConfig::new(key);
        cfg.scheduler = kind;
        engine.add_service(cfg)?;
        for (i, w) in WEIGHTS.iter().enumerate() {
            let mut d = DestConfig::new(ip(&format!("198.18.1.{}", i + 1)), 80);
            d.weight = *w;
            d.method = ForwardMethod::Masquerade;
            engine.add_dest(&key, d)?;
        }
        let counts = run_clients(&mut engine, n)?;
        let sid = engine.find_service(&key).context("service")?;
        let loads: Vec<String> =
            engine.dests_of(sid).map(|(_, d)| format!("{}/{}", d.active_conns, d.inactive_conns)).collect();
        println!(
            "{:<6} {:>6} {:>6} {:>6} {:>8}   {}",
            kind.name(),
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            loads.join(" ")
        );
    }

    // Persistence: 4 client networks, 50 connections each, -p 360 -M 255.255.255.0.
    println!("\npersistence (wlc, -p 360 -M 255.255.255.0): 4 client /24s, 50 connections each");
    let mut engine = Engine::new(1 << 16, 1);
    let mut cfg = ServiceConfig::new(key);
    cfg.persistence = Some(Persistence { timeout_secs: 360, netmask: Netmask::V4("255.255.255.0".parse()?) });
    engine.add_service(cfg)?;
    for i in 1..=3 {
        engine.add_dest(&key, DestConfig::new(ip(&format!("198.18.1.{i}")), 80))?;
    }
    let mut rng = SplitMix64::new(2);
    for net in 0..4 {
        let mut servers = std::collections::BTreeSet::new();
        for c in 0..50u16 {
            let client = ip(&format!("198.18.{}.{}", 100 + net, 1 + c % 200));
            let p = Packet::new(Protocol::Tcp, client, 10_000 + c, ip(VIP), 80).with_tcp(TcpFlags::SYN);
            if let InVerdict::Forward(f) = engine.conn_in(&p, Instant::ZERO, &mut rng) {
                servers.insert(f.daddr);
            }
        }
        let list: Vec<String> = servers.iter().map(ToString::to_string).collect();
        println!("  clients 198.18.{}.0/24 -> {}", 100 + net, list.join(", "));
    }
    let templates = engine.conns().iter().filter(|(_, c)| c.is_template()).count();
    println!("  {} connections, {templates} persistence templates", engine.conns().len() - templates);
    let later = Instant::ZERO + Duration::from_secs(3600);
    engine.expire(later);
    engine.expire(later + Duration::from_secs(3600));
    println!("  after two idle hours: {} entries left", engine.conns().len());
    println!("\nnotes: ovf refuses once every server holds `weight` active connections; dh and lblc hash the");
    println!("destination address (one VIP here), so they stick to one server until it is overloaded.");
    Ok(())
}

/// Returns connections per real server and, last, the refused ones (no server available).
fn run_clients(engine: &mut Engine, n: u32) -> Result<[u32; 4]> {
    let mut rng = SplitMix64::new(7);
    let mut counts = [0u32; 4];
    let mut now = Instant::ZERO;
    for i in 0..n {
        let client = IpAddr::V4(std::net::Ipv4Addr::from(0xC613_0000 + i));
        let syn = Packet::new(Protocol::Tcp, client, 40_000, ip(VIP), 80).with_tcp(TcpFlags::SYN);
        let f = match engine.conn_in(&syn, now, &mut rng) {
            InVerdict::Forward(f) => f,
            InVerdict::Unreachable => {
                counts[3] += 1;
                continue;
            }
            other => bail!("connection {i}: unexpected verdict {other:?}"),
        };
        let idx = WEIGHTS
            .len()
            .min((1..=3).position(|k| f.daddr == ip(&format!("198.18.1.{k}"))).context("unknown real server")?);
        counts[idx] += 1;
        let reply = Packet::new(Protocol::Tcp, f.daddr, f.dport, client, 40_000).with_tcp(TcpFlags::SYN_ACK);
        engine.conn_out(&reply, now);
        engine.conn_in(&syn.with_tcp(TcpFlags::ACK), now, &mut rng);
        if i % 3 == 0 {
            engine.conn_in(&syn.with_tcp(TcpFlags::FIN_ACK), now, &mut rng);
            let fin = Packet::new(Protocol::Tcp, f.daddr, f.dport, client, 40_000).with_tcp(TcpFlags::FIN_ACK);
            engine.conn_out(&fin, now);
        }
        now = now + Duration::from_millis(10);
    }
    Ok(counts)
}
