//! Director failover in the daemon: one thread per `[[vrrp]]` instance ([`instance`]) that owns
//! the instance's sockets and virtual addresses, plus connection sync ([`sync`]). The data
//! plane and the health checks keep running whatever the role (a backup's tables stay warm);
//! the role only decides who holds the addresses the router sends the traffic to.
//!
//! Instances run in units: a standalone instance, or all members of a sync group ([`machine`]),
//! which start and stop together. A reload ([`FailoverHandle::reload`]) stops the units that
//! are gone or changed (a master resigns and removes its addresses) and starts the new or
//! changed ones; unchanged units keep running untouched. Connection sync restarts when its
//! settings or the unit of the instance it follows changed.
//!
//! Modules: [`instance`] (the per-instance loop), [`machine`] (solo or sync group state
//! machine), [`link`] (sockets), [`sys`] (the few system calls socket2 does not wrap),
//! [`addrs`] (`ip` address changes), [`track`] (ping and script probes), [`notify`] (transition
//! commands), [`stats`] (counters for `Status`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;
use rvs_config::Config;
use rvs_config::failover::{ConnSync, VrrpInstance};
use rvs_core::engine::Engine;
use tracing::{error, info, warn};

use crate::control::lock;

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

/// Instances that start and stop together: one standalone instance or one sync group.
#[derive(Debug)]
struct Unit {
    configs: Vec<VrrpInstance>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Unit {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.configs.iter().map(|c| c.name.as_str())
    }

    /// Stops the threads: masters resign, addresses are removed.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                warn!("a failover thread panicked");
            }
        }
    }
}

/// The `[[vrrp]]` instances grouped into units, in file order (a group where its first member is).
fn units_of(vrrp: &[VrrpInstance]) -> Vec<Vec<VrrpInstance>> {
    let mut units: Vec<Vec<VrrpInstance>> = Vec::new();
    for v in vrrp {
        let joined = v
            .sync_group
            .as_ref()
            .and_then(|g| units.iter_mut().find(|u| u.first().and_then(|f| f.sync_group.as_ref()) == Some(g)));
        match joined {
            Some(u) => u.push(v.clone()),
            None => units.push(vec![v.clone()]),
        }
    }
    units
}

/// The instance `[conn_sync]` follows.
fn followed_name(config: &Config) -> Option<String> {
    config.conn_sync.as_ref().and_then(|sc| sc.follow.clone().or_else(|| config.vrrp.first().map(|v| v.name.clone())))
}

/// Running failover threads.
#[derive(Debug)]
pub struct FailoverHandle {
    engine: Arc<Mutex<Engine>>,
    clock: Clock,
    units: Vec<Unit>,
    stats: Arc<FailoverStats>,
    sync: Option<sync::SyncHandle>,
    sync_cfg: Option<ConnSync>,
    followed: Option<String>,
    gate: sync::PreemptionGate,
}

impl FailoverHandle {
    /// Starts one thread per `[[vrrp]]` instance of `config` (none without instances), and
    /// connection sync (`[conn_sync]`) on `engine`.
    pub fn start(config: &Config, engine: Arc<Mutex<Engine>>, clock: Clock) -> anyhow::Result<FailoverHandle> {
        let mut handle = FailoverHandle {
            engine,
            clock,
            units: Vec::new(),
            stats: Arc::new(FailoverStats::default()),
            sync: None,
            sync_cfg: None,
            followed: followed_name(config),
            gate: sync::PreemptionGate::default(),
        };
        for configs in units_of(&config.vrrp) {
            if let Err(e) = handle.start_unit(configs) {
                handle.stop_all();
                return Err(e);
            }
        }
        if let Err(e) = handle.start_sync(config.conn_sync.clone()) {
            handle.stop_all();
            return Err(e);
        }
        if !config.vrrp.is_empty() {
            info!(instances = config.vrrp.len(), "failover started");
        }
        Ok(handle)
    }

    /// Opens a unit's instances (a sync group if it has a group name) and spawns their threads.
    fn start_unit(&mut self, configs: Vec<VrrpInstance>) -> anyhow::Result<()> {
        let mut runtimes = Vec::new();
        let mut new_stats = Vec::new();
        for cfg in &configs {
            let st = Arc::new(InstanceStats::default());
            new_stats.push((cfg.name.clone(), st.clone()));
            let mut rt = instance::Runtime::open(cfg.clone(), self.clock, st)
                .with_context(|| format!("starting VRRP instance {}", cfg.name))?;
            if self.followed.as_deref() == Some(cfg.name.as_str()) {
                rt.hold_preemption_on(self.gate.clone());
            }
            runtimes.push((cfg.name.clone(), rt));
        }
        form_sync_groups(&mut runtimes, self.clock);
        let mut unit = Unit { configs, stop: Arc::new(AtomicBool::new(false)), threads: Vec::new() };
        for (name, rt) in runtimes {
            let stop = unit.stop.clone();
            let spawned = std::thread::Builder::new().name(format!("rvsd-vrrp-{name}")).spawn(move || rt.run(&stop));
            match spawned {
                Ok(t) => unit.threads.push(t),
                Err(e) => {
                    unit.stop();
                    return Err(e).context("spawning a VRRP thread");
                }
            }
        }
        lock(&self.stats.instances).extend(new_stats);
        self.units.push(unit);
        Ok(())
    }

    /// Starts connection sync with `cfg` (if any), following its instance.
    fn start_sync(&mut self, cfg: Option<ConnSync>) -> anyhow::Result<()> {
        self.sync_cfg = cfg.clone();
        let Some(sc) = cfg else { return Ok(()) };
        let role = {
            let instances = lock(&self.stats.instances);
            let followed = self.followed.as_ref().and_then(|name| instances.iter().find(|(n, _)| n == name));
            followed.map(|(_, s)| s.clone()).context("conn_sync follows no instance")?
        };
        self.sync = Some(sync::SyncHandle::start(
            sc,
            self.engine.clone(),
            self.clock,
            role,
            self.stats.sync.clone(),
            self.gate.clone(),
        )?);
        Ok(())
    }

    fn stop_sync(&mut self) {
        if let Some(mut s) = self.sync.take() {
            s.stop();
        }
    }

    /// Applies a reloaded configuration: units that are gone or changed stop (a master resigns),
    /// new or changed ones start, unchanged ones keep running. Connection sync restarts if its
    /// settings or its followed instance's unit changed. Returns what could not be started.
    pub fn reload(&mut self, config: &Config) -> anyhow::Result<()> {
        let wanted = units_of(&config.vrrp);
        let followed = followed_name(config);
        let (keep, gone): (Vec<Unit>, Vec<Unit>) =
            std::mem::take(&mut self.units).into_iter().partition(|u| wanted.contains(&u.configs));
        self.units = keep;
        let sync_unit_changed =
            gone.iter().any(|u| u.names().any(|n| Some(n) == self.followed.as_deref())) || followed != self.followed;
        let restart_sync = sync_unit_changed || config.conn_sync != self.sync_cfg;
        if restart_sync {
            self.stop_sync();
        }
        for mut unit in gone {
            info!(instances = ?unit.names().collect::<Vec<_>>(), "reload: stopping VRRP instances");
            unit.stop();
            let names: Vec<String> = unit.names().map(String::from).collect();
            lock(&self.stats.instances).retain(|(n, _)| !names.contains(n));
        }
        self.followed = followed;
        let mut failed = Vec::new();
        for configs in wanted {
            if self.units.iter().any(|u| u.configs == configs) {
                continue;
            }
            let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
            info!(instances = ?names, "reload: starting VRRP instances");
            if let Err(e) = self.start_unit(configs) {
                error!(error = %format!("{e:#}"), "reload: a VRRP instance did not start");
                failed.push(format!("{e:#}"));
            }
        }
        if restart_sync && let Err(e) = self.start_sync(config.conn_sync.clone()) {
            error!(error = %format!("{e:#}"), "reload: connection sync did not start");
            failed.push(format!("{e:#}"));
        }
        if failed.is_empty() { Ok(()) } else { Err(anyhow::anyhow!(failed.join("; "))) }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<FailoverStats> {
        self.stats.clone()
    }

    fn stop_all(&mut self) {
        self.stop_sync();
        for mut u in self.units.drain(..) {
            u.stop();
        }
    }

    /// Stops every instance: masters resign (priority 0), addresses are removed.
    pub fn stop(mut self) {
        self.stop_all();
    }
}

impl Drop for FailoverHandle {
    fn drop(&mut self) {
        self.stop_all();
    }
}

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
