//! Packets per second through a director namespace: kernel IP forwarding vs. a trivial
//! AF_PACKET loop (receive, rewrite the MACs, send out of the other interface).
//!
//! gen --veth-- fwd --veth-- sink. The generator blasts prebuilt 60-byte UDP frames with
//! AfPacketIo (sendmmsg, qdisc bypass); the sink's veth rx counter says what came through.
//! Rounds are interleaved (kernel, afpacket, kernel, afpacket ...) because only ratios
//! from the same session mean anything on a noisy host. Needs root.
//!
//! `cargo run -p rvs-dataplane --release --example afpacket_forward [seconds] [rounds]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rvs_dataplane::afpacket::AfPacketIo;
use rvs_dataplane::io::{Batch, Frame, PacketIo};
use rvs_lab::{RunId, cmd, netns};

const GEN_MAC: [u8; 6] = [0x02, 0x72, 0x76, 0x80, 0x00, 0x02];
const FWD_IN_MAC: [u8; 6] = [0x02, 0x72, 0x76, 0x80, 0x00, 0x01];
const FWD_OUT_MAC: [u8; 6] = [0x02, 0x72, 0x76, 0x81, 0x00, 0x01];
const SINK_MAC: [u8; 6] = [0x02, 0x72, 0x76, 0x81, 0x00, 0x02];

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        netns::delete_all(&self.0);
    }
}

fn ip(args: &[&str]) -> Res<()> {
    cmd::run("ip", args)?;
    Ok(())
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// 60-byte UDP frame gen -> sink (198.18.80.2 -> 198.18.81.2:9), through fwd's MAC.
fn frame(sport: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&FWD_IN_MAC);
    f.extend_from_slice(&GEN_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ipv4 = vec![0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 80, 2, 198, 18, 81, 2];
    let csum = ipv4_checksum(&ipv4);
    ipv4[10..12].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(&ipv4);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&[0, 9, 0, 26, 0, 0]);
    f.resize(60, 0);
    f
}

fn rx_packets(ns: &str, dev: &str) -> Res<u64> {
    Ok(std::fs::read_to_string(format!("/proc/{}/net/dev", pid_in(ns)?))?
        .lines()
        .find_map(|line| {
            let (name, rest) = line.split_once(':')?;
            (name.trim() == dev).then(|| rest.split_whitespace().nth(1)?.parse().ok())?
        })
        .ok_or("no counter")?)
}

/// A process living in `ns`, to read its /proc/<pid>/net/dev.
fn pid_in(ns: &str) -> Res<u32> {
    let out = cmd::run("ip", &["netns", "pids", ns])?;
    Ok(out.split_whitespace().next().ok_or("no process in netns")?.parse()?)
}

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let rounds: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let run = RunId::random();
    let (gen_ns, fwd_ns, sink_ns) = (run.netns("gen"), run.netns("fwd"), run.netns("sink"));
    let mut namespaces = Namespaces(Vec::new());
    for ns in [&gen_ns, &fwd_ns, &sink_ns] {
        netns::create(ns)?;
        namespaces.0.push(ns.clone());
    }
    let (g, fi, fo, s) = (run.ifname("g")?, run.ifname("fi")?, run.ifname("fo")?, run.ifname("s")?);
    let mac = |m: [u8; 6]| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    for (ns_a, a, mac_a, ns_b, b, mac_b) in
        [(&gen_ns, &g, GEN_MAC, &fwd_ns, &fi, FWD_IN_MAC), (&fwd_ns, &fo, FWD_OUT_MAC, &sink_ns, &s, SINK_MAC)]
    {
        ip(&[
            "link",
            "add",
            a,
            "netns",
            ns_a,
            "address",
            &mac(mac_a),
            "type",
            "veth",
            "peer",
            "name",
            b,
            "netns",
            ns_b,
        ])?;
        ip(&["-n", ns_b, "link", "set", b, "address", &mac(mac_b)])?;
        for (ns, dev) in [(ns_a, a), (ns_b, b)] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            netns::exec_ok(ns, "ethtool", &["-L", dev, "rx", "1", "tx", "1"]).ok();
        }
    }
    ip(&["-n", &gen_ns, "addr", "add", "198.18.80.2/24", "dev", &g])?;
    ip(&["-n", &fwd_ns, "addr", "add", "198.18.80.1/24", "dev", &fi])?;
    ip(&["-n", &fwd_ns, "addr", "add", "198.18.81.1/24", "dev", &fo])?;
    ip(&["-n", &sink_ns, "addr", "add", "198.18.81.2/24", "dev", &s])?;
    ip(&["-n", &fwd_ns, "neigh", "replace", "198.18.81.2", "lladdr", &mac(SINK_MAC), "dev", &fo])?;
    // A process parked in the sink namespace so its /proc/<pid>/net/dev can be read.
    let mut parked = std::process::Command::new("ip").args(["netns", "exec", &sink_ns, "sleep", "3600"]).spawn()?;
    std::thread::sleep(Duration::from_millis(200));

    let mut results: Vec<(&str, f64)> = Vec::new();
    for round in 0..rounds {
        for mode in ["kernel", "afpacket"] {
            let forwarding = if mode == "kernel" { "1" } else { "0" };
            netns::write_sysctls(&fwd_ns, &[("net/ipv4/ip_forward".into(), forwarding.into())])?;
            let stop = Arc::new(AtomicBool::new(false));
            let forwarded = Arc::new(AtomicU64::new(0));
            let forwarder = (mode == "afpacket").then(|| {
                let (fwd_ns, fi, fo, stop, forwarded) =
                    (fwd_ns.clone(), fi.clone(), fo.clone(), stop.clone(), forwarded.clone());
                let (ready_tx, ready_rx) = std::sync::mpsc::channel();
                let handle = std::thread::spawn(move || -> Result<(), String> {
                    netns::enter(&fwd_ns).map_err(|e| e.to_string())?;
                    let mut io = AfPacketIo::open(&[&fi, &fo]).map_err(|e| e.to_string())?;
                    let (in_index, out_index) = (io.ifindex(&fi).unwrap_or(0), io.ifindex(&fo).unwrap_or(0));
                    let _ = ready_tx.send(());
                    let mut batch = Batch::new(256);
                    while !stop.load(Ordering::Relaxed) {
                        io.recv(&mut batch, Duration::from_millis(10)).map_err(|e| e.to_string())?;
                        let mut n = 0;
                        for f in batch.frames_mut() {
                            // The MAC rewrite of a DR director: only frames that came in.
                            if f.ifindex != in_index || f.len() < 14 {
                                continue;
                            }
                            f.data_mut()[..6].copy_from_slice(&SINK_MAC);
                            f.data_mut()[6..12].copy_from_slice(&FWD_OUT_MAC);
                            f.ifindex = out_index;
                            n += 1;
                        }
                        if n > 0 {
                            let sent = io.send(batch.frames()).map_err(|e| e.to_string())?;
                            forwarded.fetch_add(sent as u64, Ordering::Relaxed);
                        }
                    }
                    Ok(())
                });
                let _ = ready_rx.recv_timeout(Duration::from_secs(5));
                handle
            });
            let before = rx_packets(&sink_ns, &s)?;
            let (gen_ns2, g2, stop2) = (gen_ns.clone(), g.clone(), stop.clone());
            let generator = std::thread::spawn(move || -> Result<u64, String> {
                netns::enter(&gen_ns2).map_err(|e| e.to_string())?;
                let mut io = AfPacketIo::open(&[&g2]).map_err(|e| e.to_string())?;
                let index = io.ifindex(&g2).unwrap_or(0);
                let frames: Vec<Frame> = (0..64u16)
                    .map(|i| {
                        let mut f = Frame::new();
                        f.fill(&frame(10000 + i), index);
                        f
                    })
                    .collect();
                let mut sent = 0u64;
                while !stop2.load(Ordering::Relaxed) {
                    sent += io.send(&frames).map_err(|e| e.to_string())? as u64;
                }
                Ok(sent)
            });
            let start = Instant::now();
            std::thread::sleep(Duration::from_secs(seconds));
            let after = rx_packets(&sink_ns, &s)?;
            let elapsed = start.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            let generated = generator.join().map_err(|_| "generator panicked")??;
            if let Some(handle) = forwarder {
                handle.join().map_err(|_| "forwarder panicked")??;
            }
            let pps = (after - before) as f64 / elapsed;
            println!(
                "round {round} {mode:<8} forwarded {:>9.0} pps (generated {:>9.0} pps)",
                pps,
                generated as f64 / elapsed
            );
            results.push((mode, pps));
        }
    }
    let median = |mode: &str| {
        let mut v: Vec<f64> = results.iter().filter(|(m, _)| *m == mode).map(|(_, p)| *p).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (kernel, afpacket) = (median("kernel"), median("afpacket"));
    println!("median kernel {kernel:.0} pps, afpacket {afpacket:.0} pps, ratio {:.2}", afpacket / kernel.max(1.0));
    let _ = parked.kill();
    let _ = parked.wait();
    Ok(())
}
