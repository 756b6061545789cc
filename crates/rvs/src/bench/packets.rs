//! One packet-rate measurement: the XDP generator offers 60-byte UDP frames to the
//! director's LAN interface; what the director sends towards the real servers is counted
//! (and dropped) as it arrives at the switch, and the director's CPU is read from /proc.
//!
//! CPU placement (2 vCPUs): the generator thread is pinned to [`GENERATOR_CPU`], where the
//! director's LAN veth also turns the generated frames into socket buffers (its NAPI poll
//! runs where the generator flushes, as a NIC's interrupt would run on a core of its own).
//! Receive Packet Steering hands every received packet to [`DIRECTOR_CPU`], and rvsd's threads
//! are pinned there, so the director's work proper (the kernel's forwarding or nftables path
//! in softirq, or rvsd and the softirq that feeds its AF_PACKET ring) runs on that CPU. What
//! the director transmits is steered back to the generator's CPU (RPS on the switch ports
//! facing the director) and counted there.
//!
//! - offered = packets the director's CPU took from its receive backlog plus those it
//!   dropped because the backlog was full (/proc/net/softnet_stat of DIRECTOR_CPU): what
//!   reached the director, whatever the generator side lost before;
//! - forwarded = packets the director sent towards the real servers correctly rewritten:
//!   an nftables netdev-ingress rule on each switch port facing the director counts and
//!   drops frames addressed to a real server's MAC and to the VIP or a real server's address
//!   (UDP to the benchmark port, or IP-in-IP, protocol 4, for TUN). Dropping them there keeps the bridge
//!   and the real servers' stacks (the same for every system) off both CPUs;
//! - director CPU per forwarded packet = (system + irq + softirq time of DIRECTOR_CPU, plus
//!   rvsd's user time) / forwarded. User time of other processes on that CPU is left out;
//!   rvsd's system time is already in the CPU's system time (it is pinned there).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rvs_lab::{LabDescription, MacAddr, Segment};

use super::counters::{self, CpuTimes, SoftnetCounters};
use super::frame::{self, FrameSpec};
use super::systems::{director, netns_sh};
use super::xdp::{Generator, XdpDrop};
use super::{STOP, stopped};

/// CPU of the generator (and of the counting sink).
pub const GENERATOR_CPU: usize = 0;
/// CPU of the director.
pub const DIRECTOR_CPU: usize = 1;
/// nftables table of the counting sink (in the switch namespace).
const SINK_TABLE: &str = "rvs_bench_sink";

/// Result of one measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacketResult {
    /// Packets per second that reached the director's CPU.
    pub offered_pps: f64,
    /// Packets per second the director forwarded to the real servers.
    pub forwarded_pps: f64,
    /// Share of the offered packets that were not forwarded, in percent.
    pub drop_percent: f64,
    /// Director CPU time per forwarded packet, in nanoseconds.
    pub director_cpu_ns: f64,
    /// Softirq part of it.
    pub softirq_ns: f64,
    /// rvsd's own time (user + system, all threads) per forwarded packet, if rvsd runs (its
    /// system time may include softirq work done while it was the running task).
    pub rvsd_ns: Option<f64>,
    /// Busy share of the director's CPU during the window, all processes (1.0 = saturated).
    pub director_cpu_busy: f64,
    /// Packets per second the director's CPU dropped because its backlog was full.
    pub backlog_drops_pps: f64,
    /// Frames per second the generator handed to the director's interface (some are lost
    /// on the generator's CPU before reaching the director when that CPU falls behind).
    pub generated_pps: f64,
    /// Busy share of the generator's CPU.
    pub generator_cpu_busy: f64,
    /// Backlog drops of the generator's CPU (the counting side), per second.
    pub generator_backlog_drops_pps: f64,
}

/// Where the measurement sends and counts.
#[derive(Debug, Clone)]
pub struct PacketPath {
    /// The frame template.
    pub frame: Vec<u8>,
    /// The switch namespace.
    pub switch_netns: String,
    /// The switch port whose veth peer is the director's LAN interface (the generator's
    /// transmit interface).
    pub inject_port: String,
    /// Switch ports facing the director (where forwarded packets are counted).
    pub director_ports: Vec<String>,
    /// The director's namespace and LAN interface.
    pub director: (String, String),
    /// MACs of the real servers.
    pub real_server_macs: Vec<MacAddr>,
    /// Addresses a forwarded packet may carry: the VIP and the real servers'.
    pub forwarded_addrs: Vec<Ipv4Addr>,
    /// UDP port of the frames.
    pub udp_port: u16,
}

impl PacketPath {
    /// The path for a lab: frames from the client's address to `dst` (a VIP or a real
    /// server), as the router would send them, injected at the director's LAN port.
    pub fn new(d: &LabDescription, dst: Ipv4Addr) -> Result<PacketPath> {
        let dir = director(d)?;
        let lan = dir.interface(Segment::Lan).context("director has no LAN interface")?;
        let router = d.router.interface(Segment::Lan).context("router has no LAN interface")?;
        let client = d.client.addr().context("client has no address")?;
        let frame = frame::build(&FrameSpec {
            dst_mac: lan.mac,
            src_mac: router.mac,
            src: client.v4,
            dst,
            dst_port: d.udp_port,
        });
        let mut macs = Vec::new();
        let mut addrs = vec![d.vip.v4];
        for rs in &d.real_servers {
            let iface = rs.interfaces.first().context("real server without interface")?;
            macs.push(iface.mac);
            addrs.push(iface.addr.v4);
        }
        Ok(PacketPath {
            frame,
            switch_netns: d.switch.netns.clone(),
            inject_port: lan.peer.clone(),
            director_ports: dir.interfaces.iter().map(|i| i.peer.clone()).collect(),
            director: (dir.netns.clone(), lan.name.clone()),
            real_server_macs: macs,
            forwarded_addrs: addrs,
            udp_port: d.udp_port,
        })
    }

    /// The counting sink's nftables table.
    fn sink_rules(&self) -> String {
        let join = |v: Vec<String>| v.join(", ");
        let macs = join(self.real_server_macs.iter().map(ToString::to_string).collect());
        let addrs = join(self.forwarded_addrs.iter().map(ToString::to_string).collect());
        let mut text = format!("table netdev {SINK_TABLE} {{\n");
        for (i, port) in self.director_ports.iter().enumerate() {
            text.push_str(&format!(
                " chain port{i} {{\n  type filter hook ingress device \"{port}\" priority -500; policy accept;\n  \
                 ether daddr {{ {macs} }} ip daddr {{ {addrs} }} udp dport {} counter drop\n  \
                 ether daddr {{ {macs} }} ip daddr {{ {addrs} }} ip protocol 4 counter drop\n }}\n",
                self.udp_port
            ));
        }
        text.push_str("}\n");
        text
    }
}

fn set_rps(netns: &str, interfaces: &[String], mask: &str) -> Result<()> {
    for iface in interfaces {
        netns_sh(netns, &format!("for q in /sys/class/net/{iface}/queues/rx-*; do echo {mask} > $q/rps_cpus; done"))?;
    }
    Ok(())
}

/// The CPU placement and the counting sink of a measurement; undone when dropped.
struct Setup<'a> {
    path: &'a PacketPath,
}

impl<'a> Setup<'a> {
    fn apply(path: &'a PacketPath) -> Result<Setup<'a>> {
        let setup = Setup { path };
        let (netns, lan) = &path.director;
        // XDP_TX into a veth needs NAPI on the receiving end: GRO on (UDP is not merged).
        netns_sh(netns, &format!("ethtool -K {lan} gro on >/dev/null"))?;
        set_rps(netns, std::slice::from_ref(lan), &format!("{:x}", 1u32 << DIRECTOR_CPU))?;
        set_rps(&path.switch_netns, &path.director_ports, &format!("{:x}", 1u32 << GENERATOR_CPU))?;
        let out = rvs_lab::cmd::run_raw(
            "ip",
            &["netns", "exec", &path.switch_netns, "nft", "-f", "-"],
            Some(&path.sink_rules()),
            Duration::from_secs(10),
        )
        .context("running nft")?;
        if !out.status.success() {
            bail!("nft refused the counting sink: {}", out.stderr.trim());
        }
        Ok(setup)
    }

    /// Packets counted (and dropped) by the sink so far.
    fn forwarded(&self) -> Result<u64> {
        let out = rvs_lab::netns::exec(
            &self.path.switch_netns,
            "nft",
            &["-j", "list", "table", "netdev", SINK_TABLE],
            Duration::from_secs(10),
        )
        .context("running nft")?;
        if !out.status.success() {
            bail!("nft list: {}", out.stderr.trim());
        }
        counters::parse_nft_counters(&out.stdout)
    }
}

impl Drop for Setup<'_> {
    fn drop(&mut self) {
        let (netns, lan) = &self.path.director;
        let _ = rvs_lab::netns::exec(
            &self.path.switch_netns,
            "nft",
            &["delete", "table", "netdev", SINK_TABLE],
            Duration::from_secs(10),
        );
        let _ = set_rps(netns, std::slice::from_ref(lan), "0");
        let _ = set_rps(&self.path.switch_netns, &self.path.director_ports, "0");
        let _ = netns_sh(netns, &format!("ethtool -K {lan} gro off >/dev/null"));
    }
}

/// Counters at one instant.
struct Snapshot {
    at: Instant,
    generated: u64,
    forwarded: u64,
    softnet: Vec<SoftnetCounters>,
    cpu: CpuTimes,
    generator_cpu: CpuTimes,
    rvsd_ticks: Option<counters::ProcessTicks>,
}

fn snapshot(setup: &Setup<'_>, rvsd: Option<u32>) -> Result<Snapshot> {
    let before = Instant::now();
    let softnet = counters::softnet()?;
    let cpu = counters::cpu_times(DIRECTOR_CPU)?;
    let generator_cpu = counters::cpu_times(GENERATOR_CPU)?;
    let rvsd_ticks = rvsd.map(counters::process_ticks).transpose()?;
    let forwarded = setup.forwarded()?;
    let (netns, lan) = &setup.path.director;
    let generated = counters::links(netns)?.get(lan).map(|c| c.rx_packets + c.rx_dropped).unwrap_or(0);
    // The samples span a few milliseconds; date them at the middle.
    let at = before + (Instant::now() - before) / 2;
    Ok(Snapshot { at, generated, forwarded, softnet, cpu, generator_cpu, rvsd_ticks })
}

/// Measures the director of the lab described by `path`: `warmup`, then `window`.
pub fn measure(path: &PacketPath, rvsd: Option<u32>, warmup: Duration, window: Duration) -> Result<PacketResult> {
    if std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) <= DIRECTOR_CPU {
        bail!("the packet benchmark needs at least {} CPUs", DIRECTOR_CPU + 1);
    }
    let generator = Generator::load(&path.frame)?;
    let setup = Setup::apply(path)?;
    if let Some(pid) = rvsd {
        counters::pin_process(pid, DIRECTOR_CPU)?;
    }
    let done = AtomicBool::new(false);
    let generous = warmup + window + Duration::from_secs(5);
    std::thread::scope(|scope| {
        // `done` is set once the window is measured, or at once on an interrupt (the
        // measuring side returns early then).
        let gen_thread = scope.spawn(|| {
            generator.run(&path.switch_netns, &path.inject_port, &path.frame, GENERATOR_CPU, generous, &done)
        });
        let measured = (|| {
            sleep_unless_stopped(warmup)?;
            let first = snapshot(&setup, rvsd)?;
            sleep_unless_stopped(window)?;
            let last = snapshot(&setup, rvsd)?;
            Ok::<_, anyhow::Error>((first, last))
        })();
        done.store(true, Ordering::Relaxed);
        let generated = gen_thread.join().unwrap_or_else(|_| bail!("generator thread panicked"))?;
        let (first, last) = measured?;
        if generated.frames == 0 {
            bail!("the generator sent nothing");
        }
        Ok(compute(&first, &last))
    })
}

fn sleep_unless_stopped(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stopped() {
            bail!("interrupted");
        }
        std::thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
    }
    Ok(())
}

fn compute(first: &Snapshot, last: &Snapshot) -> PacketResult {
    let secs = (last.at - first.at).as_secs_f64().max(1e-3);
    let softnet = |s: &Snapshot, cpu: usize| s.softnet.get(cpu).copied().unwrap_or_default();
    let (d0, d1) = (softnet(first, DIRECTOR_CPU), softnet(last, DIRECTOR_CPU));
    let (g0, g1) = (softnet(first, GENERATOR_CPU), softnet(last, GENERATOR_CPU));
    let backlog_drops = d1.dropped.saturating_sub(d0.dropped) as f64;
    let offered = d1.processed.saturating_sub(d0.processed) as f64 + backlog_drops;
    let forwarded = last.forwarded.saturating_sub(first.forwarded) as f64;
    let cpu = last.cpu.since(&first.cpu);
    let tick_ns = 1e9 / counters::USER_HZ;
    let per_packet = |ticks: u64| if forwarded > 0.0 { ticks as f64 * tick_ns / forwarded } else { f64::NAN };
    let (rvsd_user, rvsd_total) = match (first.rvsd_ticks, last.rvsd_ticks) {
        (Some(a), Some(b)) => (b.user.saturating_sub(a.user), Some(b.total().saturating_sub(a.total()))),
        _ => (0, None),
    };
    let director_ticks = cpu.system + cpu.irq + cpu.softirq + rvsd_user;
    let share = |t: &CpuTimes| t.busy() as f64 / (t.busy() + t.idle).max(1) as f64;
    PacketResult {
        offered_pps: offered / secs,
        forwarded_pps: forwarded / secs,
        drop_percent: if offered > 0.0 { (offered - forwarded).max(0.0) * 100.0 / offered } else { 0.0 },
        director_cpu_ns: per_packet(director_ticks),
        softirq_ns: per_packet(cpu.softirq),
        rvsd_ns: rvsd_total.map(per_packet),
        director_cpu_busy: share(&cpu),
        backlog_drops_pps: backlog_drops / secs,
        generated_pps: last.generated.saturating_sub(first.generated) as f64 / secs,
        generator_cpu_busy: share(&last.generator_cpu.since(&first.generator_cpu)),
        generator_backlog_drops_pps: g1.dropped.saturating_sub(g0.dropped) as f64 / secs,
    }
}

/// The generator alone: frames per second it hands to the director's LAN interface when
/// an XDP program there drops them at once (nothing behind it limits the rate).
pub fn generator_ceiling(path: &PacketPath, window: Duration) -> Result<f64> {
    let generator = Generator::load(&path.frame)?;
    let (netns, lan) = &path.director;
    let _drop = XdpDrop::attach(netns, lan)?;
    let run = generator.run(&path.switch_netns, &path.inject_port, &path.frame, GENERATOR_CPU, window, &STOP)?;
    Ok(run.frames as f64 / run.elapsed.as_secs_f64().max(1e-3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_counts_only_rewritten_frames_on_every_director_port() {
        let path = PacketPath {
            frame: Vec::new(),
            switch_netns: "sw".into(),
            inject_port: "sd1".into(),
            director_ports: vec!["sd1".into(), "sp1".into()],
            director: ("dir".into(), "d1l".into()),
            real_server_macs: vec![MacAddr([2, 0, 0, 0, 0, 1])],
            forwarded_addrs: vec![Ipv4Addr::new(198, 18, 100, 1), Ipv4Addr::new(198, 18, 3, 21)],
            udp_port: 53,
        };
        let rules = path.sink_rules();
        assert!(rules.contains("ingress device \"sd1\""));
        assert!(rules.contains("ingress device \"sp1\""));
        assert_eq!(rules.matches("counter drop").count(), 4);
        assert!(
            rules.contains("ether daddr { 02:00:00:00:00:01 } ip daddr { 198.18.100.1, 198.18.3.21 } udp dport 53")
        );
    }
}
