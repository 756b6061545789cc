//! The benchmark's results: every figure per system and round, reduced to the median, set
//! against its baseline (kernel forwarding) as a ratio, and printed as a table or JSON
//! together with the machine it ran on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::systems::System;

/// A measured figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Frames per second that reached the real servers, in millions.
    ForwardedMpps,
    /// Frames per second offered to the director, in millions.
    OfferedMpps,
    /// Offered frames that were not forwarded, percent.
    DropPercent,
    /// Busy time of the director's CPU per forwarded frame, nanoseconds.
    DirectorCpuNs,
    /// New TCP connections per second (one request each).
    NewConnPerSec,
    /// Median latency of a request on a new connection, ms.
    NewConnP50Ms,
    /// 99th percentile of it, ms.
    NewConnP99Ms,
    /// Keep-alive requests per second.
    KeepAliveReqPerSec,
    /// Median keep-alive request latency, ms.
    KeepAliveP50Ms,
    /// 99th percentile of it, ms.
    KeepAliveP99Ms,
    /// The director process's CPU per new connection, microseconds.
    ProcessUsPerConn,
    /// Longest time the VIP went unanswered when the master was killed (-9) and cut off, ms.
    FailoverKillMs,
    /// UDP probes lost then.
    LostProbesKill,
    /// Short TCP connections failed then.
    FailedTcpKill,
    /// The same when the master was stopped with SIGTERM, ms.
    FailoverTermMs,
    /// UDP probes lost then.
    LostProbesTerm,
    /// Short TCP connections failed then.
    FailedTcpTerm,
    /// Time from a real server's death until it is out of the table, ms.
    EjectionMs,
}

/// The measured sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Packet rate.
    Packets,
    /// TCP connections and requests.
    Tcp,
    /// Director failover.
    Failover,
    /// Real-server ejection.
    Ejection,
}

impl Metric {
    /// Every figure, in table order.
    pub const ALL: [Metric; 18] = [
        Metric::ForwardedMpps,
        Metric::OfferedMpps,
        Metric::DropPercent,
        Metric::DirectorCpuNs,
        Metric::NewConnPerSec,
        Metric::NewConnP50Ms,
        Metric::NewConnP99Ms,
        Metric::KeepAliveReqPerSec,
        Metric::KeepAliveP50Ms,
        Metric::KeepAliveP99Ms,
        Metric::ProcessUsPerConn,
        Metric::FailoverKillMs,
        Metric::LostProbesKill,
        Metric::FailedTcpKill,
        Metric::FailoverTermMs,
        Metric::LostProbesTerm,
        Metric::FailedTcpTerm,
        Metric::EjectionMs,
    ];

    /// Which section it belongs to.
    pub fn section(self) -> Section {
        match self {
            Metric::ForwardedMpps | Metric::OfferedMpps | Metric::DropPercent | Metric::DirectorCpuNs => {
                Section::Packets
            }
            Metric::FailoverKillMs
            | Metric::LostProbesKill
            | Metric::FailedTcpKill
            | Metric::FailoverTermMs
            | Metric::LostProbesTerm
            | Metric::FailedTcpTerm => Section::Failover,
            Metric::EjectionMs => Section::Ejection,
            _ => Section::Tcp,
        }
    }

    /// Label in the table.
    pub fn label(self) -> &'static str {
        match self {
            Metric::ForwardedMpps => "forwarded Mpps",
            Metric::OfferedMpps => "offered Mpps",
            Metric::DropPercent => "dropped % (lower=better)",
            Metric::DirectorCpuNs => "director CPU ns/pkt (lower=better)",
            Metric::NewConnPerSec => "new connections/s",
            Metric::NewConnP50Ms => "new conn p50 ms (lower=better)",
            Metric::NewConnP99Ms => "new conn p99 ms (lower=better)",
            Metric::KeepAliveReqPerSec => "keep-alive requests/s",
            Metric::KeepAliveP50Ms => "keep-alive p50 ms (lower=better)",
            Metric::KeepAliveP99Ms => "keep-alive p99 ms (lower=better)",
            Metric::ProcessUsPerConn => "director process CPU us/conn (lower=better)",
            Metric::FailoverKillMs => "failover ms, kill -9 & cut (lower=better)",
            Metric::LostProbesKill => "UDP probes lost, kill -9 (lower=better)",
            Metric::FailedTcpKill => "TCP conns failed, kill -9 (lower=better)",
            Metric::FailoverTermMs => "failover ms, SIGTERM (lower=better)",
            Metric::LostProbesTerm => "UDP probes lost, SIGTERM (lower=better)",
            Metric::FailedTcpTerm => "TCP conns failed, SIGTERM (lower=better)",
            Metric::EjectionMs => "real-server ejection ms (lower=better)",
        }
    }

    /// Key in the JSON output.
    pub fn key(self) -> &'static str {
        match self {
            Metric::ForwardedMpps => "forwarded_mpps",
            Metric::OfferedMpps => "offered_mpps",
            Metric::DropPercent => "dropped_percent",
            Metric::DirectorCpuNs => "director_cpu_ns_per_packet",
            Metric::NewConnPerSec => "new_connections_per_sec",
            Metric::NewConnP50Ms => "new_connection_p50_ms",
            Metric::NewConnP99Ms => "new_connection_p99_ms",
            Metric::KeepAliveReqPerSec => "keepalive_requests_per_sec",
            Metric::KeepAliveP50Ms => "keepalive_p50_ms",
            Metric::KeepAliveP99Ms => "keepalive_p99_ms",
            Metric::ProcessUsPerConn => "director_process_cpu_us_per_connection",
            Metric::FailoverKillMs => "failover_kill_ms",
            Metric::LostProbesKill => "failover_kill_udp_probes_lost",
            Metric::FailedTcpKill => "failover_kill_tcp_connections_failed",
            Metric::FailoverTermMs => "failover_sigterm_ms",
            Metric::LostProbesTerm => "failover_sigterm_udp_probes_lost",
            Metric::FailedTcpTerm => "failover_sigterm_tcp_connections_failed",
            Metric::EjectionMs => "real_server_ejection_ms",
        }
    }

    /// Whether more is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::ForwardedMpps | Metric::OfferedMpps | Metric::NewConnPerSec | Metric::KeepAliveReqPerSec)
    }

    fn decimals(self) -> usize {
        match self {
            Metric::ForwardedMpps | Metric::OfferedMpps => 3,
            Metric::NewConnPerSec | Metric::KeepAliveReqPerSec | Metric::DirectorCpuNs => 0,
            Metric::NewConnP50Ms
            | Metric::NewConnP99Ms
            | Metric::KeepAliveP50Ms
            | Metric::KeepAliveP99Ms
            | Metric::DropPercent
            | Metric::ProcessUsPerConn => 2,
            _ => 0,
        }
    }
}

impl Section {
    /// The systems of the section, baseline first.
    pub fn systems(self) -> &'static [System] {
        match self {
            Section::Packets => {
                &[System::KernelForward, System::NftDnat, System::RvsDr, System::RvsNat, System::RvsTun]
            }
            Section::Tcp => &[System::KernelForward, System::NftDnat, System::Haproxy, System::RvsNat, System::RvsDr],
            Section::Failover => &[System::Keepalived, System::RvsVrrp, System::Keepalived1s],
            Section::Ejection => &[System::KeepalivedDefaults, System::RvsActive, System::RvsPassive],
        }
    }

    /// The system the section's ratios are taken against (listed first).
    pub fn baseline(self) -> System {
        match self {
            Section::Packets | Section::Tcp => BASELINE,
            Section::Failover => System::Keepalived,
            Section::Ejection => System::KeepalivedDefaults,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Section::Packets => "packets",
            Section::Tcp => "tcp",
            Section::Failover => "failover",
            Section::Ejection => "ejection",
        }
    }
}

/// The baseline of the packet and TCP ratios.
pub const BASELINE: System = System::KernelForward;

/// The machine and run a report describes.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// UTC date and time of the start.
    pub date: String,
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// "full" or "quick".
    pub mode: &'static str,
    /// Rounds run.
    pub rounds: usize,
}

/// Everything measured.
#[derive(Debug, Default)]
pub struct Results {
    values: BTreeMap<(Metric, System), Vec<f64>>,
    /// Per-measurement details (JSON objects), for the JSON output.
    pub samples: Vec<Value>,
    /// Generator ceiling per round, Mpps.
    pub ceiling_mpps: Vec<f64>,
    /// Measurements that failed, with why.
    pub errors: Vec<String>,
}

/// The median of `values` (mean of the middle two for an even count); None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v.get(mid).copied() } else { Some((v.get(mid - 1)? + v.get(mid)?) / 2.0) }
}

impl Results {
    /// Records one round's value of a figure.
    pub fn add(&mut self, metric: Metric, system: System, value: f64) {
        self.values.entry((metric, system)).or_default().push(value);
    }

    /// The per-round values of a figure.
    pub fn rounds(&self, metric: Metric, system: System) -> &[f64] {
        self.values.get(&(metric, system)).map(Vec::as_slice).unwrap_or_default()
    }

    /// Median of a figure.
    pub fn median(&self, metric: Metric, system: System) -> Option<f64> {
        median(self.rounds(metric, system))
    }

    /// `(value, baseline, ratio)` of a figure.
    pub fn figure(&self, metric: Metric, system: System) -> (Option<f64>, Option<f64>, Option<f64>) {
        let value = self.median(metric, system);
        let baseline = self.median(metric, metric.section().baseline());
        let ratio = match (value, baseline) {
            (Some(v), Some(b)) if b > 0.0 => Some(v / b),
            _ => None,
        };
        (value, baseline, ratio)
    }

    /// Whether the generator did not clearly outrun `system` (offered within 5 % of
    /// forwarded): its packet rate is then a lower bound.
    pub fn generator_bound(&self, system: System) -> bool {
        match (self.median(Metric::OfferedMpps, system), self.median(Metric::ForwardedMpps, system)) {
            (Some(offered), Some(forwarded)) => offered <= forwarded * 1.05,
            _ => false,
        }
    }

    /// The text table.
    pub fn table(&self, info: &RunInfo) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "rvs bench ({} run): {}", info.mode, info.date);
        let _ = writeln!(t, "machine: {}, {} cores, Linux {}", info.cpu, info.cores, info.kernel);
        let _ = writeln!(
            t,
            "each value is the median of {} interleaved round(s); ratio = value / baseline, baseline = {} \
             (failover: keepalived, ejection: keepalived's defaults)",
            info.rounds,
            BASELINE.label()
        );
        let ceiling = median(&self.ceiling_mpps).map_or("n/a".to_owned(), |c| format!("{c:.2} Mpps"));
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "PACKET RATE: 60-byte UDP frames (64 on the wire), 16384 flows, from an XDP live-frame generator \
             (ceiling {ceiling}) on cpu0 into the director, whose work is steered to cpu1;\n\
             offered = packets that reached the director's CPU, forwarded = packets it sent on correctly rewritten"
        );
        self.section_table(&mut t, Section::Packets);
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "TCP: wrk, 1 thread, {} connections, through the director to 3 nginx real servers \
             (kernel forwarding: to one of them)",
            super::tcp::CONNECTIONS
        );
        self.section_table(&mut t, Section::Tcp);
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "FAILOVER: two directors (DR), director 0 master; the client sends a UDP query to the VIP every 5 ms \
             and opens a short TCP connection every 20 ms;\nfailover = longest time without an answered query once \
             the master is killed (-9, links cut) or stopped (SIGTERM); baseline = keepalived (rvsd as its data plane)"
        );
        self.section_table(&mut t, Section::Failover);
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "EJECTION: nginx on a real server stops; time until it is out of the table. rvs active: TCP check every \
             200 ms, fall 2; rvs passive: NAT, active checks every 30 s,\nthe data path reports RSTs to SYNs. \
             Baseline = keepalived's defaults COMPUTED, not measured: delay_loop 60 s / 2 on average + retry 1 x \
             delay_before_retry 1 s = {:.0} s\n(worst case for a silent server: {:.0} s)",
            super::ha::keepalived_defaults::refused_mean_ms() / 1e3,
            super::ha::keepalived_defaults::silent_worst_ms() / 1e3,
        );
        self.section_table(&mut t, Section::Ejection);
        let bound: Vec<&str> =
            Section::Packets.systems().iter().filter(|s| self.generator_bound(**s)).map(|s| s.label()).collect();
        if !bound.is_empty() {
            let _ = writeln!(
                t,
                "\n* generator-bound: offered ~= forwarded for {}; the director may be faster than shown",
                bound.join(", ")
            );
        }
        for e in &self.errors {
            let _ = writeln!(t, "FAILED: {e}");
        }
        t
    }

    fn section_table(&self, t: &mut String, section: Section) {
        let _ = writeln!(t, "{:<44} {:<26} {:>10} {:>10} {:>7}", "figure", "system", "value", "baseline", "ratio");
        for metric in Metric::ALL.iter().filter(|m| m.section() == section) {
            for (i, system) in section.systems().iter().enumerate() {
                let (value, baseline, ratio) = self.figure(*metric, *system);
                let d = metric.decimals();
                let mut v = value.map_or("n/a".to_owned(), |v| format!("{v:.d$}"));
                if section == Section::Packets && value.is_some() && self.generator_bound(*system) {
                    v.push('*');
                }
                let b = baseline.map_or("n/a".to_owned(), |b| format!("{b:.d$}"));
                let r = ratio.map_or("n/a".to_owned(), |r| format!("{r:.2}"));
                let label = if i == 0 { metric.label() } else { "" };
                let _ = writeln!(t, "{label:<44} {:<26} {v:>10} {b:>10} {r:>7}", system.label());
            }
        }
    }

    /// The JSON document.
    pub fn json(&self, info: &RunInfo) -> Value {
        let mut figures = Vec::new();
        for metric in Metric::ALL {
            let section = metric.section();
            for system in section.systems() {
                let (value, baseline, ratio) = self.figure(metric, *system);
                figures.push(json!({
                    "section": section.key(),
                    "figure": metric.key(),
                    "label": metric.label(),
                    "system": system.key(),
                    "value": value,
                    "rounds": self.rounds(metric, *system),
                    "baseline_system": section.baseline().key(),
                    "computed": *system == System::KeepalivedDefaults,
                    "baseline": baseline,
                    "ratio": ratio,
                    "higher_is_better": metric.higher_is_better(),
                    "generator_bound": section == Section::Packets && self.generator_bound(*system),
                }));
            }
        }
        json!({
            "date": info.date,
            "mode": info.mode,
            "rounds": info.rounds,
            "machine": { "cpu": info.cpu, "cores": info.cores, "kernel": info.kernel },
            "generator": {
                "kind": "XDP program run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, XDP_TX into the director's LAN veth",
                "frame_bytes": 60,
                "flows": 16384,
                "ceiling_mpps": self.ceiling_mpps,
            },
            "figures": figures,
            "samples": self.samples,
            "errors": self.errors,
        })
    }
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the Unix epoch.
pub fn utc_date(epoch_secs: u64) -> String {
    let days = i64::try_from(epoch_secs / 86_400).unwrap_or(0);
    let rem = epoch_secs % 86_400;
    // Civil date from a day count (the proleptic Gregorian calendar, eras of 400 years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn ratio_is_median_over_baseline_median() {
        let mut r = Results::default();
        for v in [1.0, 2.0, 3.0] {
            r.add(Metric::ForwardedMpps, System::KernelForward, v);
        }
        for v in [3.0, 1.0, 1.5] {
            r.add(Metric::ForwardedMpps, System::RvsDr, v);
        }
        // medians 2.0 and 1.5.
        assert_eq!(r.figure(Metric::ForwardedMpps, System::RvsDr), (Some(1.5), Some(2.0), Some(0.75)));
        assert_eq!(r.figure(Metric::ForwardedMpps, System::RvsTun), (None, Some(2.0), None));
        // Failover figures are set against keepalived, not kernel forwarding.
        r.add(Metric::FailoverKillMs, System::Keepalived, 400.0);
        r.add(Metric::FailoverKillMs, System::RvsVrrp, 100.0);
        assert_eq!(r.figure(Metric::FailoverKillMs, System::RvsVrrp), (Some(100.0), Some(400.0), Some(0.25)));
    }

    #[test]
    fn offered_close_to_forwarded_is_flagged_generator_bound() {
        let mut r = Results::default();
        r.add(Metric::OfferedMpps, System::RvsNat, 1.0);
        r.add(Metric::ForwardedMpps, System::RvsNat, 0.99);
        r.add(Metric::OfferedMpps, System::RvsDr, 2.0);
        r.add(Metric::ForwardedMpps, System::RvsDr, 1.0);
        assert!(r.generator_bound(System::RvsNat));
        assert!(!r.generator_bound(System::RvsDr));
    }

    #[test]
    fn table_has_every_row_and_a_ratio_column() {
        let r = Results::default();
        let info =
            RunInfo { date: "d".into(), cpu: "c".into(), cores: 2, kernel: "k".into(), mode: "quick", rounds: 1 };
        let t = r.table(&info);
        assert!(t.contains("ratio"));
        for m in Metric::ALL {
            assert!(t.contains(m.label()), "{}", m.label());
        }
        for s in [
            System::KernelForward,
            System::NftDnat,
            System::Haproxy,
            System::RvsDr,
            System::RvsNat,
            System::RvsTun,
            System::Keepalived,
            System::RvsVrrp,
            System::KeepalivedDefaults,
            System::RvsActive,
            System::RvsPassive,
        ] {
            assert!(t.contains(s.label()));
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 is day 11016 after the epoch (30 years incl. 7 leap days = 10957 days to
        // 2000-01-01, plus 31 + 28).
        assert_eq!(utc_date(11_016 * 86_400 + 3_661), "2000-02-29 01:01 UTC");
    }
}
