//! `rvs bench`: packet rate, TCP connections, requests and latency through the director, for
//! rvs and for the baselines it must be compared with, in one run on this machine.
//!
//! Every configuration runs in rvs-lab namespaces (client, router, switch, director, three
//! nginx real servers): the kernel's own forwarding (the baseline of every ratio), nftables
//! DNAT and HAProxy in a kernel-forwarding lab, and rvsd in DR, NAT and TUN labs. A round
//! measures every configuration once; rounds are interleaved (the lab order rotates) and
//! each figure is the median over the rounds. The packet generator is an XDP program of our
//! own run on live frames ([`xdp`]); see docs/benchmarks.md for the method.
//!
//! Everything is removed again on success, error, panic and Ctrl-C: labs drop (rvsd stops,
//! namespaces go), child processes (wrk, HAProxy) are terminated, XDP programs are detached
//! with their links, and RPS/GRO settings die with the namespaces at the latest.

mod bpf_sys;
mod counters;
mod frame;
mod ha;
mod packets;
mod report;
mod systems;
mod tcp;
mod xdp;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use rvs_lab::Method;
use serde_json::json;

use packets::PacketPath;
use report::{Metric, Results, RunInfo};
use systems::{Cluster, Haproxy, NftDnat, System, real_server_v4};
use xdp::Generator;

/// Set by SIGINT/SIGTERM: every loop winds down and the run unwinds, cleaning up.
pub(crate) static STOP: AtomicBool = AtomicBool::new(false);

/// Whether the user asked to stop.
pub(crate) fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Durations of one run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    mode: &'static str,
    rounds: usize,
    warmup: Duration,
    window: Duration,
    wrk: Duration,
    ceiling: Duration,
    failover: ha::FailoverPlan,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            mode: "full",
            rounds: 3,
            warmup: Duration::from_millis(500),
            window: Duration::from_secs(4),
            wrk: Duration::from_secs(6),
            ceiling: Duration::from_secs(1),
            failover: ha::FailoverPlan { keepalived_1s: true, terminate: true },
        }
    }

    fn quick() -> Plan {
        Plan {
            mode: "quick",
            rounds: 1,
            warmup: Duration::from_millis(200),
            window: Duration::from_millis(800),
            wrk: Duration::from_secs(1),
            ceiling: Duration::from_millis(300),
            failover: ha::FailoverPlan { keepalived_1s: false, terminate: true },
        }
    }
}

const USAGE: &str = "usage: rvs bench [--quick] [--json] [--save FILE] [--rounds N]
  Measures packet rate, TCP connections/s, keep-alive requests/s and latency through the
  director for kernel forwarding (the baseline), nftables DNAT, HAProxy and rvs DR/NAT/TUN;
  director failover for rvs against keepalived; real-server ejection for rvs's active and
  passive health checks against keepalived's defaults (computed); all in network namespaces.
  Prints a table of medians, baselines and ratios (or JSON).
  --quick    one short round (a smoke test, ~35 s)
  --json     print JSON instead of the table
  --save F   also write the JSON to file F
  --rounds N rounds (default 3; 1 with --quick)
Needs root, 2 or more CPUs, nginx, wrk, haproxy, keepalived, nft, ethtool (scripts/install-deps.sh).";

/// `rvs bench ...`; returns the exit status.
pub fn main(args: &[String]) -> Result<i32> {
    let mut plan = Plan::full();
    let mut json_out = false;
    let mut save = None;
    let mut rounds = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => plan = Plan::quick(),
            "--json" => json_out = true,
            "--save" => save = Some(it.next().context("--save needs a file name")?.clone()),
            "--rounds" => rounds = Some(it.next().context("--rounds needs a number")?.parse().context("--rounds")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(0);
            }
            other => bail!("unknown option `{other}'\n{USAGE}"),
        }
    }
    if let Some(n) = rounds {
        if n == 0 {
            bail!("--rounds must be at least 1");
        }
        plan.rounds = n;
    }
    for tool in ["ip", "nft", "ethtool", "wrk", "curl", "haproxy", "keepalived"] {
        if !rvs_lab::cmd::tool_available(tool) {
            bail!("`{tool}` is not installed (run scripts/install-deps.sh)");
        }
    }
    rvs_lab::sweep_stale().context("removing leftovers of earlier labs")?;
    install_stop_handler()?;
    let info = run_info(&plan);
    let started = Instant::now();
    let results = run(&plan)?;
    eprintln!("rvs bench: finished in {:.0} s", started.elapsed().as_secs_f64());
    if stopped() {
        eprintln!("rvs bench: interrupted");
        return Ok(130);
    }
    let json = serde_json::to_string_pretty(&results.json(&info))?;
    if let Some(path) = save {
        std::fs::write(&path, format!("{json}\n")).with_context(|| format!("writing {path}"))?;
    }
    if json_out {
        println!("{json}");
    } else {
        print!("{}", results.table(&info));
    }
    Ok(if results.errors.is_empty() { 0 } else { 1 })
}

fn install_stop_handler() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("rvs-bench-signals".into())
        .spawn(move || {
            for (count, signal) in signals.forever().enumerate() {
                if count > 0 {
                    // A second signal: give up on a clean teardown (`rvs lab down` sweeps).
                    std::process::exit(128 + signal);
                }
                eprintln!("rvs bench: signal {signal}: stopping and cleaning up (again to exit at once)");
                STOP.store(true, Ordering::Relaxed);
                systems::terminate_children();
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

fn run_info(plan: &Plan) -> RunInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    RunInfo {
        date: report::utc_date(secs),
        cpu,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        mode: plan.mode,
        rounds: plan.rounds,
    }
}

/// The labs of a round.
#[derive(Debug, Clone, Copy)]
enum LabKind {
    Kernel,
    Rvs(Method),
    /// Two directors: rvs and keepalived failovers.
    Failover,
    /// Health checks: real-server ejection.
    Ejection,
}

fn run(plan: &Plan) -> Result<Results> {
    Generator::available()?;
    let mut results = Results::default();
    ha::keepalived_computed(&mut results);
    let labs = [
        LabKind::Kernel,
        LabKind::Rvs(Method::Dr),
        LabKind::Rvs(Method::Nat),
        LabKind::Rvs(Method::Tun),
        LabKind::Failover,
        LabKind::Ejection,
    ];
    for round in 0..plan.rounds {
        for i in 0..labs.len() {
            if stopped() {
                return Ok(results);
            }
            let Some(kind) = labs.get((i + round) % labs.len()) else { continue };
            eprintln!("rvs bench: round {}/{}: {kind:?} lab", round + 1, plan.rounds);
            let mut round_ctx = Round { plan, results: &mut results, round };
            if let Err(e) = round_ctx.lab(*kind) {
                if stopped() {
                    return Ok(results);
                }
                results.errors.push(format!("round {}, {kind:?} lab: {e:#}", round + 1));
            }
        }
    }
    Ok(results)
}

struct Round<'a> {
    plan: &'a Plan,
    results: &'a mut Results,
    round: usize,
}

impl Round<'_> {
    fn lab(&mut self, kind: LabKind) -> Result<()> {
        match kind {
            LabKind::Failover => {
                let mut errors = Vec::new();
                let outcome = ha::failover_round(self.plan.failover, self.results, &mut errors);
                for e in errors {
                    self.results.errors.push(format!("round {}, {e}", self.round + 1));
                }
                outcome?;
            }
            LabKind::Ejection => ha::ejection_round(self.results)?,
            LabKind::Kernel => {
                let cluster = Cluster::kernel()?;
                let d = cluster.description();
                let rs1 = real_server_v4(d, 0)?;
                let to_rs1 = PacketPath::new(d, rs1)?;
                let to_vip = PacketPath::new(d, d.vip.v4)?;
                self.guard("generator ceiling", |r| {
                    let c = packets::generator_ceiling(&to_rs1, r.plan.ceiling)?;
                    r.results.ceiling_mpps.push(c / 1e6);
                    Ok(())
                });
                self.guard("kernel forwarding packets", |r| r.packets(System::KernelForward, &to_rs1, None));
                self.guard("nftables DNAT packets", |r| {
                    let _nft = NftDnat::install(d)?;
                    r.packets(System::NftDnat, &to_vip, None)
                });
                let http = |addr: std::net::Ipv4Addr| format!("http://{addr}:{}/", d.http_port);
                let client = d.client.netns.clone();
                self.guard("kernel forwarding TCP", |r| r.tcp(System::KernelForward, &client, &http(rs1), None));
                self.guard("nftables DNAT TCP", |r| {
                    let _nft = NftDnat::install(d)?;
                    r.tcp(System::NftDnat, &client, &http(d.vip.v4), None)
                });
                self.guard("HAProxy TCP", |r| {
                    let haproxy = Haproxy::start(d)?;
                    r.tcp(System::Haproxy, &client, &http(d.vip.v4), Some(haproxy.pid()))
                });
                drop(cluster);
            }
            LabKind::Rvs(method) => {
                let cluster = Cluster::rvs(method)?;
                let d = cluster.description();
                let pid = cluster.rvsd_pid().context("rvsd's pid not found")?;
                let system = match method {
                    Method::Dr => System::RvsDr,
                    Method::Nat => System::RvsNat,
                    Method::Tun => System::RvsTun,
                };
                let to_vip = PacketPath::new(d, d.vip.v4)?;
                self.guard(&format!("{} packets", system.label()), |r| r.packets(system, &to_vip, Some(pid)));
                if method != Method::Tun {
                    let url = format!("http://{}:{}/", d.vip.v4, d.http_port);
                    let client = d.client.netns.clone();
                    self.guard(&format!("{} TCP", system.label()), |r| r.tcp(system, &client, &url, Some(pid)));
                }
                drop(cluster);
            }
        }
        Ok(())
    }

    /// Runs one measurement; a failure is recorded and the round goes on.
    fn guard(&mut self, what: &str, work: impl FnOnce(&mut Self) -> Result<()>) {
        if stopped() {
            return;
        }
        if let Err(e) = work(self)
            && !stopped()
        {
            self.results.errors.push(format!("round {}, {what}: {e:#}", self.round + 1));
        }
    }

    fn packets(&mut self, system: System, path: &PacketPath, rvsd: Option<u32>) -> Result<()> {
        let p = packets::measure(path, rvsd, self.plan.warmup, self.plan.window)?;
        eprintln!(
            "  {:<19} packets: offered {:.3} Mpps, forwarded {:.3} Mpps, director CPU busy {:.0} % \
             (backlog drops {:.3} Mpps); generated {:.3} Mpps, generator CPU busy {:.0} % (backlog drops {:.3})",
            system.label(),
            p.offered_pps / 1e6,
            p.forwarded_pps / 1e6,
            p.director_cpu_busy * 100.0,
            p.backlog_drops_pps / 1e6,
            p.generated_pps / 1e6,
            p.generator_cpu_busy * 100.0,
            p.generator_backlog_drops_pps / 1e6,
        );
        let r = &mut self.results;
        r.add(Metric::ForwardedMpps, system, p.forwarded_pps / 1e6);
        r.add(Metric::OfferedMpps, system, p.offered_pps / 1e6);
        r.add(Metric::DropPercent, system, p.drop_percent);
        r.add(Metric::DirectorCpuNs, system, p.director_cpu_ns);
        r.samples.push(json!({
            "round": self.round + 1,
            "system": system.key(),
            "kind": "packets",
            "offered_pps": p.offered_pps,
            "forwarded_pps": p.forwarded_pps,
            "dropped_percent": p.drop_percent,
            "director_cpu_ns_per_packet": p.director_cpu_ns,
            "director_softirq_ns_per_packet": p.softirq_ns,
            "rvsd_process_ns_per_packet": p.rvsd_ns,
            "director_cpu_busy": p.director_cpu_busy,
            "director_backlog_drops_pps": p.backlog_drops_pps,
            "generated_pps": p.generated_pps,
            "generator_cpu_busy": p.generator_cpu_busy,
            "generator_backlog_drops_pps": p.generator_backlog_drops_pps,
        }));
        Ok(())
    }

    fn tcp(&mut self, system: System, client: &str, url: &str, pid: Option<u32>) -> Result<()> {
        for close in [true, false] {
            let t = tcp::run(client, url, close, self.plan.wrk, pid)?;
            let w = t.wrk;
            eprintln!(
                "  {:<19} {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                system.label(),
                if close { "new connections" } else { "keep-alive" },
                w.requests_per_sec,
                w.p50_ms,
                w.p99_ms,
                w.errors
            );
            if w.requests == 0 {
                bail!("no request completed");
            }
            let r = &mut self.results;
            if close {
                r.add(Metric::NewConnPerSec, system, w.requests_per_sec);
                r.add(Metric::NewConnP50Ms, system, w.p50_ms);
                r.add(Metric::NewConnP99Ms, system, w.p99_ms);
                if let Some(us) = t.process_us_per_request {
                    r.add(Metric::ProcessUsPerConn, system, us);
                }
            } else {
                r.add(Metric::KeepAliveReqPerSec, system, w.requests_per_sec);
                r.add(Metric::KeepAliveP50Ms, system, w.p50_ms);
                r.add(Metric::KeepAliveP99Ms, system, w.p99_ms);
            }
            r.samples.push(json!({
                "round": self.round + 1,
                "system": system.key(),
                "kind": if close { "tcp_new_connections" } else { "tcp_keepalive" },
                "requests_per_sec": w.requests_per_sec,
                "requests": w.requests,
                "errors": w.errors,
                "p50_ms": w.p50_ms,
                "p99_ms": w.p99_ms,
                "director_process_cpu_us_per_request": t.process_us_per_request,
            }));
        }
        Ok(())
    }
}
