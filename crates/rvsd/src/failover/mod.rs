//! Director failover in the daemon: one thread per `[[vrrp]]` instance ([`instance`]) that owns
//! the instance's sockets and virtual addresses, plus connection sync ([`sync`]). The data
//! plane and the health checks keep running whatever the role (a backup's tables stay warm);
//! the role only decides who holds the addresses the router sends the traffic to.
//!
//! Modules: [`instance`] (the per-instance loop), [`link`] (sockets), [`sys`] (the few
//! system calls socket2 does not wrap), [`addrs`] (`ip` address changes), [`track`] (ping
//! and script probes), [`notify`] (transition commands), [`stats`] (counters for `Status`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;
use rvs_config::Config;
use rvs_core::engine::Engine;
use tracing::{info, warn};

use crate::clock::Clock;

pub mod addrs;
pub mod instance;
pub mod link;
pub mod machine;
pub mod notify;
pub mod stats;
pub mod sync;
pub mod sys;
pub mod track;

use stats::{FailoverStats, InstanceStats};

/// Joins the instances that name one sync group into that group (in file order); they start
/// together.
fn form_sync_groups(runtimes: &mut [(String, instance::Runtime)], clock: Clock) {
    let mut names: Vec<String> = Vec::new();
    for (_, rt) in runtimes.iter() {
        if let Some(g) = rt.sync_group()
            && !names.iter().any(|n| n == g)
        {
            names.push(g.to_string());
        }
    }
    for name in names {
        let members: Vec<usize> = (0..runtimes.len())
            .filter(|i| runtimes.get(*i).is_some_and(|(_, rt)| rt.sync_group() == Some(name.as_str())))
            .collect();
        let instances: Vec<_> =
            members.iter().filter_map(|i| runtimes.get(*i).and_then(|(_, rt)| rt.solo_instance())).collect();
        if instances.len() != members.len() {
            continue;
        }
        let machines = machine::form_group(instances, clock.now());
        for (i, m) in members.iter().zip(machines) {
            if let Some((_, rt)) = runtimes.get_mut(*i) {
                rt.join(m);
            }
        }
        info!(group = %name, members = members.len(), "VRRP sync group formed");
    }
}

/// Running failover threads.
#[derive(Debug)]
pub struct FailoverHandle {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<FailoverStats>,
    sync: Option<sync::SyncHandle>,
}

impl FailoverHandle {
    /// Starts one thread per `[[vrrp]]` instance of `config` (none without instances), and
    /// connection sync (`[conn_sync]`) on `engine`.
    pub fn start(config: &Config, engine: Arc<Mutex<Engine>>, clock: Clock) -> anyhow::Result<FailoverHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut runtimes = Vec::new();
        let mut instances = Vec::new();
        // The instance connection sync follows holds preemption until sync opens the gate.
        let gate = sync::PreemptionGate::default();
        let followed_name = config
            .conn_sync
            .as_ref()
            .and_then(|sc| sc.follow.clone().or_else(|| config.vrrp.first().map(|v| v.name.clone())));
        for cfg in &config.vrrp {
            let st = Arc::new(InstanceStats::default());
            instances.push((cfg.name.clone(), st.clone()));
            let mut rt = instance::Runtime::open(cfg.clone(), clock, st)
                .with_context(|| format!("starting VRRP instance {}", cfg.name))?;
            if followed_name.as_deref() == Some(cfg.name.as_str()) {
                rt.hold_preemption_on(gate.clone());
            }
            runtimes.push((cfg.name.clone(), rt));
        }
        form_sync_groups(&mut runtimes, clock);
        let stats = Arc::new(FailoverStats { instances, ..FailoverStats::default() });
        let mut handle = FailoverHandle { stop: stop.clone(), threads: Vec::new(), stats: stats.clone(), sync: None };
        if let Some(sc) = &config.conn_sync {
            let followed = sc
                .follow
                .as_ref()
                .map_or(stats.instances.first(), |name| stats.instances.iter().find(|(n, _)| n == name));
            let role = followed.map(|(_, s)| s.clone()).context("conn_sync follows no instance")?;
            handle.sync =
                Some(sync::SyncHandle::start(sc.clone(), engine, clock, role, stats.sync.clone(), gate.clone())?);
        }
        for (name, rt) in runtimes {
            let stop = stop.clone();
            let spawned = std::thread::Builder::new().name(format!("rvsd-vrrp-{name}")).spawn(move || rt.run(&stop));
            match spawned {
                Ok(t) => handle.threads.push(t),
                Err(e) => {
                    handle.stop_threads();
                    return Err(e).context("spawning a VRRP thread");
                }
            }
        }
        if !config.vrrp.is_empty() {
            info!(instances = config.vrrp.len(), "failover started");
        }
        Ok(handle)
    }

    /// The counters.
    pub fn stats(&self) -> Arc<FailoverStats> {
        self.stats.clone()
    }

    fn stop_threads(&mut self) {
        if let Some(mut s) = self.sync.take() {
            s.stop();
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                warn!("a failover thread panicked");
            }
        }
    }

    /// Stops every instance: masters resign (priority 0), addresses are removed.
    pub fn stop(mut self) {
        self.stop_threads();
    }
}

impl Drop for FailoverHandle {
    fn drop(&mut self) {
        self.stop_threads();
    }
}
