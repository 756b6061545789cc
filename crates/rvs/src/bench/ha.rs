//! Failover and ejection figures of `rvs bench`: how long the VIP goes unserved when the
//! master director dies (kill -9 and its links cut) or stops (SIGTERM), for rvs and for
//! keepalived in the same two-director lab ([`crate::failover_lab`]); and how long a dead real
//! server keeps its place in the table under rvs's active and passive health checks, against
//! keepalived's defaults computed from its documented timing.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rvs_api::{Request, Response};
use rvs_lab::Method;

use super::report::{Metric, Results};
use super::systems::System;
use crate::failover_lab::{FLOAT_V4, FailoverLab, Failure, Takeover};
use crate::lab::{LabRun, real_server_address};

/// rvs's advert interval in the failover figures, seconds.
pub const RVS_ADVERT: &str = "0.01";

/// keepalived's defaults for a TCP_CHECK real server, from its documentation: a check every
/// `delay_loop` 60 s, `connect_timeout` 5 s, `retry` 1 with `delay_before_retry` 1 s.
pub mod keepalived_defaults {
    /// Seconds between checks of a real server.
    pub const DELAY_LOOP: f64 = 60.0;
    /// Seconds a check's connect may take.
    pub const CONNECT_TIMEOUT: f64 = 5.0;
    /// Retries after a failed check before the server is removed.
    pub const RETRY: f64 = 1.0;
    /// Seconds before a retry.
    pub const DELAY_BEFORE_RETRY: f64 = 1.0;

    /// Expected ejection time of a server that refuses connections (its process died, the
    /// host answers with RST): the next check comes after half a `delay_loop` on average
    /// (the death falls anywhere in the loop), fails at once, and each retry adds
    /// `delay_before_retry`. In ms.
    pub fn refused_mean_ms() -> f64 {
        (DELAY_LOOP / 2.0 + RETRY * DELAY_BEFORE_RETRY) * 1000.0
    }

    /// The worst case for a server that no longer answers at all: a whole `delay_loop`, then
    /// the check and each retry wait out `connect_timeout`, with `delay_before_retry` between.
    /// In ms.
    pub fn silent_worst_ms() -> f64 {
        (DELAY_LOOP + CONNECT_TIMEOUT + RETRY * (DELAY_BEFORE_RETRY + CONNECT_TIMEOUT)) * 1000.0
    }
}

/// Which failovers to measure.
#[derive(Debug, Clone, Copy)]
pub struct FailoverPlan {
    /// Also keepalived with its default 1 s adverts.
    pub keepalived_1s: bool,
    /// Also the SIGTERM case (the quick run skips it).
    pub terminate: bool,
}

fn record(results: &mut Results, system: System, failure: Failure, t: &Takeover) -> Result<()> {
    let ms = t.probes.interruption.context("the VIP was not served again after the failover")?.as_secs_f64() * 1e3;
    let (time, lost, failed) = match failure {
        Failure::KillAndCut => (Metric::FailoverKillMs, Metric::LostProbesKill, Metric::FailedTcpKill),
        Failure::Terminate => (Metric::FailoverTermMs, Metric::LostProbesTerm, Metric::FailedTcpTerm),
    };
    eprintln!(
        "  {:<32} {failure:?}: VIP unserved {ms:.0} ms, UDP probes lost {}, short TCP connections failed {}/{}",
        system.label(),
        t.probes.lost,
        t.connections.failed,
        t.connections.ok + t.connections.failed
    );
    results.add(time, system, ms);
    results.add(lost, system, t.probes.lost as f64);
    results.add(failed, system, t.connections.failed as f64);
    Ok(())
}

/// The longest a takeover may take for adverts every `advert` seconds: the master-down
/// interval (3 adverts and the skew) with room to spare.
fn observe_for(advert: f64) -> Duration {
    Duration::from_secs_f64(advert * 4.0 + 1.0)
}

/// One director pair as rvs or as keepalived (with rvsd as its data plane).
#[derive(Debug, Clone, Copy)]
enum Pair {
    Rvs,
    Keepalived(&'static str),
}

impl Pair {
    fn system(self) -> System {
        match self {
            Pair::Rvs => System::RvsVrrp,
            Pair::Keepalived("1") => System::Keepalived1s,
            Pair::Keepalived(_) => System::Keepalived,
        }
    }

    fn advert(self) -> f64 {
        match self {
            Pair::Rvs => RVS_ADVERT,
            Pair::Keepalived(a) => a,
        }
        .parse()
        .unwrap_or(1.0)
    }

    fn start(self, lab: &mut FailoverLab, i: usize) -> Result<()> {
        let priority = if i == 0 { 150 } else { 100 };
        match self {
            Pair::Rvs => {
                let vrrp = lab.rvs_vrrp(i, priority, RVS_ADVERT);
                lab.start_rvsd(i, "rr", &vrrp)
            }
            Pair::Keepalived(advert) => {
                lab.start_rvsd(i, "rr", "")?;
                let conf = lab.keepalived_vrrp(i, priority, advert);
                lab.start_keepalived(i, &conf)
            }
        }
    }

    /// Starts both directors, waits for director 0 to be master, fails it, brings it back
    /// (it preempts), and (if asked) stops it cleanly.
    fn measure(self, lab: &mut FailoverLab, plan: FailoverPlan, results: &mut Results) -> Result<()> {
        let float = IpAddr::V4(FLOAT_V4);
        let observe = observe_for(self.advert());
        let settle = Duration::from_secs_f64(self.advert() * 5.0 + 2.0);
        self.start(lab, 0)?;
        self.start(lab, 1)?;
        if !lab.wait_holder(0, float, settle) {
            bail!("{}: director 0 did not become master; log: {}", self.system().label(), lab.log(0));
        }
        // A moment of steady state, so the ARP caches and the backup's timers are settled.
        std::thread::sleep(Duration::from_millis(300));
        let t = lab.takeover(0, Failure::KillAndCut, observe)?;
        record(results, self.system(), Failure::KillAndCut, &t)?;
        if plan.terminate && !super::stopped() {
            lab.forget_floating(0);
            lab.set_links(0, true)?;
            self.start(lab, 0)?;
            if !lab.wait_holder(0, float, settle) {
                bail!("{}: director 0 did not take the VIP back; log: {}", self.system().label(), lab.log(0));
            }
            std::thread::sleep(Duration::from_millis(300));
            let t = lab.takeover(0, Failure::Terminate, observe)?;
            record(results, self.system(), Failure::Terminate, &t)?;
        }
        for i in 0..2 {
            lab.signal(i, "-TERM");
            lab.forget_floating(i);
            lab.set_links(i, true)?;
        }
        Ok(())
    }
}

/// Measures the failovers of one round in one DR failover lab: rvs first, then keepalived.
pub fn failover_round(plan: FailoverPlan, results: &mut Results, errors: &mut Vec<String>) -> Result<()> {
    let mut lab = FailoverLab::up(Method::Dr)?;
    let mut pairs = vec![Pair::Rvs, Pair::Keepalived("0.1")];
    if plan.keepalived_1s {
        pairs.push(Pair::Keepalived("1"));
    }
    for pair in pairs {
        if super::stopped() {
            break;
        }
        if let Err(e) = pair.measure(&mut lab, plan, results) {
            errors.push(format!("failover, {}: {e:#}", pair.system().label()));
            for i in 0..2 {
                lab.signal(i, "-TERM");
                lab.forget_floating(i);
                let _ = lab.set_links(i, true);
            }
        }
    }
    lab.stop()
}

/// The weight of real server `addr` in any service, None when absent.
fn weight_of(run: &LabRun, addr: IpAddr) -> Option<u32> {
    let Ok(Response::Table(t)) = run.call(&Request::List) else { return None };
    t.services.iter().flat_map(|s| s.dests.iter()).find(|d| d.spec.addr == addr).map(|d| d.spec.weight)
}

/// Health-check timing of the active figure.
const ACTIVE: &str = "interval = 0.2\ntimeout = 0.2\nfall = 2\nrise = 2\nwarmup = false";
/// The passive figure: active checks every 30 s, so only the passive signal can be fast.
const PASSIVE: &str = "interval = 30\ntimeout = 1\nfall = 1\nrise = 1\nwarmup = false";

/// Measures the ejection times of one round in one NAT lab: the IPv6 service checks actively
/// (TCP connect every 200 ms, fall 2), the IPv4 one passively (checks every 30 s; the data
/// path reports the RSTs a dead server sends to SYNs). nginx on rs1 stops while a client opens
/// connections to the IPv4 VIP; each figure is the time from the stop until rs1 is out of
/// that service (weight 0).
pub fn ejection_round(results: &mut Results) -> Result<()> {
    let run = LabRun::start_configured(Method::Nat, |d| {
        let mut text = String::new();
        for (v4, health) in [(true, PASSIVE), (false, ACTIVE)] {
            let vip = if v4 { d.vip.v4.to_string() } else { format!("[{}]", d.vip.v6) };
            text += &format!(
                "[[service]]\nvip = \"{vip}:{}\"\nscheduler = \"rr\"\n\n[service.health]\n{health}\n\n\
                 [[service.health.check]]\ntype = \"tcp\"\n\n",
                d.http_port
            );
            for i in 0..3 {
                let addr = real_server_address(d, i, v4)?;
                text += &format!("[[service.real]]\naddress = \"{addr}:{}\"\nmethod = \"nat\"\n\n", d.http_port);
            }
        }
        Ok(text)
    })?;
    let d = run.description().clone();
    let rs1_v4: IpAddr = real_server_address(&d, 0, true)?.parse()?;
    let rs1_v6: IpAddr = real_server_address(&d, 0, false)?.trim_matches(['[', ']']).parse()?;
    let vip = IpAddr::V4(d.vip.v4);
    // Every real server in both services, and serving.
    let deadline = Instant::now() + Duration::from_secs(5);
    while (weight_of(&run, rs1_v4) != Some(1) || weight_of(&run, rs1_v6) != Some(1)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let names = run.http(vip, 6)?;
    if names.len() != 6 {
        bail!("the lab does not serve: {names:?}; log: {}", run.log());
    }
    let stopped = Instant::now();
    run.lab().stop_http(0)?;
    let (mut active, mut passive) = (None, None);
    while stopped.elapsed() < Duration::from_secs(8) && (active.is_none() || passive.is_none()) && !super::stopped() {
        if passive.is_none() {
            // New connections to the IPv4 VIP: one in three meets rs1's RST.
            let _ = run.http(vip, 3);
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = |w: Option<u32>| matches!(w, Some(0) | None);
        if active.is_none() && out(weight_of(&run, rs1_v6)) {
            active = Some(stopped.elapsed());
        }
        if passive.is_none() && out(weight_of(&run, rs1_v4)) {
            passive = Some(stopped.elapsed());
        }
    }
    for (system, took) in [(System::RvsActive, active), (System::RvsPassive, passive)] {
        let took =
            took.with_context(|| format!("{}: rs1 not ejected within 8 s; log: {}", system.label(), run.log()))?;
        eprintln!("  {:<32} rs1 out {:.0} ms after its HTTP server stopped", system.label(), took.as_secs_f64() * 1e3);
        results.add(Metric::EjectionMs, system, took.as_secs_f64() * 1e3);
    }
    run.stop()
}

/// The computed keepalived row (not measured).
pub fn keepalived_computed(results: &mut Results) {
    results.add(Metric::EjectionMs, System::KeepalivedDefaults, keepalived_defaults::refused_mean_ms());
}

#[cfg(test)]
mod tests {
    use super::keepalived_defaults::*;

    #[test]
    fn keepalived_default_ejection_follows_its_documented_timing() {
        // A refused server: 30 s (half of delay_loop 60 s) + 1 retry after 1 s = 31 s.
        assert_eq!(refused_mean_ms(), 31_000.0);
        // A silent one, worst case: 60 s + 5 s connect timeout + (1 s + 5 s) for the retry.
        assert_eq!(silent_worst_ms(), 71_000.0);
    }
}
