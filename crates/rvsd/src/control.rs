//! The control plane's shared state and what it does with requests: the engine (shared
//! with the data plane and the housekeeping thread), the running configuration, the sync
//! daemon settings, the counters; answering every admin-API [`Request`]; reloading the
//! configuration file.
//!
//! Lock order, everywhere: engine first, then the control state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rvs_api::convert::{conns_of, table_of};
use rvs_api::{ApiError, Command, Request, Response, ServiceId, StatusInfo, SyncDaemonSpec, TimeoutsInfo};
use rvs_config::{Config, Sysctl, TableSpec, diff_tables};
use rvs_core::ServiceKey;
use rvs_core::defense::{DefensePolicy, DefenseUpdate};
use rvs_core::engine::Engine;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::transaction;

/// The connection hash size listings report (`size=` in ipvsadm's banner): the kernel's
/// default table of 2^12 buckets, which is what operators expect to see.
pub const CONN_TAB_SIZE: u32 = 4096;

/// Locks a mutex, carrying on with the data if a thread panicked while holding it (the
/// engine's operations leave it consistent at every return).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the control plane owns besides the engine.
#[derive(Debug)]
struct ControlState {
    /// The configuration last loaded from the file.
    config: Config,
    /// Sync daemon settings (StartDaemon/StopDaemon); the sync itself comes later.
    daemons: Vec<rvs_api::SyncDaemonSpec>,
}

/// Counters shown by `Status`.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    bad_requests: AtomicU64,
    transactions: AtomicU64,
    transactions_refused: AtomicU64,
    reloads: AtomicU64,
    reloads_refused: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The running failover, shared by the daemon (which stops it) and reloads.
pub type SharedFailover = Arc<Mutex<Option<crate::failover::FailoverHandle>>>;

/// The daemon's shared state.
#[derive(Debug)]
pub struct Control {
    engine: Arc<Mutex<Engine>>,
    state: Mutex<ControlState>,
    config_path: PathBuf,
    clock: Clock,
    counters: Counters,
    dataplane_counters: Arc<Mutex<Vec<(String, u64)>>>,
    /// Failover counters, once failover started.
    failover: std::sync::OnceLock<Arc<crate::failover::stats::FailoverStats>>,
    /// Failover itself, once started: reloads apply `[[vrrp]]` and `[conn_sync]` changes.
    failover_handle: std::sync::OnceLock<SharedFailover>,
    /// Health checking, once started: reloads and drain requests go through it.
    health: std::sync::OnceLock<Arc<crate::health::HealthPlane>>,
}

/// Applies the sysctls of `new` that differ from `old` (all of them without `old`).
/// Defence modes are written only when they changed, so a reload does not reset an
/// automatic mode that is engaged.
pub fn apply_sysctl(engine: &mut Engine, old: Option<&Sysctl>, new: &Sysctl) {
    engine.tunables = new.tunables();
    let modes = [
        (DefensePolicy::DropEntry, new.drop_entry, old.map(|o| o.drop_entry)),
        (DefensePolicy::DropPacket, new.drop_packet, old.map(|o| o.drop_packet)),
        (DefensePolicy::SecureTcp, new.secure_tcp, old.map(|o| o.secure_tcp)),
    ];
    for (policy, value, before) in modes {
        // Unchanged, or at start the engine's default already.
        if before == Some(value) || (before.is_none() && value == 0) {
            continue;
        }
        match engine.defense_mut().set_mode(policy, i64::from(value)) {
            Ok(update) => {
                info!(policy = policy.sysctl_name(), mode = value, "defence mode set");
                log_defense(&update);
            }
            Err(e) => error!(error = %e, "defence mode refused"),
        }
    }
    if old.is_none_or(|o| o.amemthresh != new.amemthresh) {
        engine.defense_mut().set_amemthresh(new.amemthresh);
    }
    if old.is_none_or(|o| o.am_droprate != new.am_droprate) {
        engine.defense_mut().set_am_droprate(new.am_droprate);
    }
}

/// Logs what a defence update switched.
pub fn log_defense(update: &DefenseUpdate) {
    if !update.changed() {
        return;
    }
    if let Some(on) = update.drop_entry_switched() {
        warn!(policy = "drop_entry", engaged = on, "defence level changed");
    }
    if let Some(rate) = update.drop_rate_changed() {
        warn!(policy = "drop_packet", rate, "defence level changed (dropping 1 in `rate` new connections; 0 = off)");
    }
    if let Some(on) = update.secure_tcp_switched() {
        warn!(policy = "secure_tcp", engaged = on, "defence level changed");
    }
}

fn timeouts_of(engine: &Engine) -> TimeoutsInfo {
    let (tcp, tcpfin, udp) = engine.timeouts.get();
    TimeoutsInfo { tcp, tcpfin, udp }
}

impl Control {
    /// A control plane for `engine`, configured from `config` (loaded from `config_path`):
    /// applies the sysctls and the configuration's transaction.
    pub fn new(
        engine: Arc<Mutex<Engine>>,
        config: Config,
        config_path: PathBuf,
        clock: Clock,
    ) -> Result<Control, ApiError> {
        let mut daemons = Vec::new();
        {
            let mut e = lock(&engine);
            apply_sysctl(&mut e, None, &config.sysctl);
            transaction::run(&mut e, &mut daemons, &config.commands(), clock.now())?;
        }
        info!(
            path = %config_path.display(),
            services = config.services.len(),
            real_servers = config.services.iter().map(|s| s.reals.len()).sum::<usize>(),
            "configuration applied"
        );
        Ok(Control {
            engine,
            state: Mutex::new(ControlState { config, daemons }),
            config_path,
            clock,
            counters: Counters::default(),
            dataplane_counters: Arc::default(),
            failover: std::sync::OnceLock::new(),
            failover_handle: std::sync::OnceLock::new(),
            health: std::sync::OnceLock::new(),
        })
    }

    /// Where the data-plane worker publishes its counters (shown by `Status` as
    /// `dataplane_<name>`).
    pub fn dataplane_counters(&self) -> Arc<Mutex<Vec<(String, u64)>>> {
        self.dataplane_counters.clone()
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Mutex<Engine>> {
        &self.engine
    }

    /// The clock the engine runs on.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The configuration last loaded.
    pub fn running_config(&self) -> Config {
        let _engine = lock(&self.engine);
        lock(&self.state).config.clone()
    }

    /// Makes reloads apply `[[vrrp]]` and `[conn_sync]` changes to `handle`.
    pub fn set_failover(&self, handle: SharedFailover) {
        let _ = self.failover_handle.set(handle);
    }

    /// Makes `Status` include the failover counters.
    pub fn set_failover_stats(&self, stats: Arc<crate::failover::stats::FailoverStats>) {
        let _ = self.failover.set(stats);
    }

    /// Counts a request the server could not parse.
    pub fn count_bad_request(&self) {
        bump(&self.counters.bad_requests);
    }

    /// Applies `commands` as one transaction.
    pub fn apply(&self, commands: &[Command]) -> Result<(), ApiError> {
        let mut engine = lock(&self.engine);
        let mut state = lock(&self.state);
        let result = transaction::run(&mut engine, &mut state.daemons, commands, self.clock.now());
        match &result {
            Ok(()) => bump(&self.counters.transactions),
            Err(e) => {
                bump(&self.counters.transactions_refused);
                warn!(index = ?e.command_index, error = %e, "transaction refused; nothing changed");
            }
        }
        result
    }

    /// Re-reads the configuration file and applies the difference to the running state as
    /// one transaction. On any refusal the running state and configuration stay as they
    /// were. Returns the number of commands applied.
    pub fn reload(&self) -> Result<usize, ApiError> {
        let path = self.config_path.display().to_string();
        let new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                bump(&self.counters.reloads_refused);
                error!(%path, error = %e, "reload refused: invalid configuration; the running configuration is unchanged");
                return Err(ApiError::new("invalid", e.to_string()));
            }
        };
        let applied = match self.health.get() {
            // Health decides what the new configuration's real servers look like in the table.
            Some(health) => health.reload(&new, |target| self.install(new.clone(), target)),
            None => self.install(new.clone(), new.table()),
        };
        if applied.is_ok()
            && let Some(f) = self.failover_handle.get()
            && let Some(handle) = lock(f).as_mut()
            && let Err(e) = handle.reload(&new)
        {
            error!(%path, error = %format!("{e:#}"), "reload: failover changes only partly applied");
        }
        applied
    }

    /// Routes reloads and drain requests through health checking from now on.
    pub fn set_health(&self, health: Arc<crate::health::HealthPlane>) {
        let _ = self.health.set(health);
    }

    /// Applies the difference between the running table and `target` (what `new` should look
    /// like) as one transaction, then makes `new` the running configuration.
    fn install(&self, new: Config, target: TableSpec) -> Result<usize, ApiError> {
        let path = self.config_path.display().to_string();
        let mut engine = lock(&self.engine);
        let mut state = lock(&self.state);
        let current =
            TableSpec::from_listing(&table_of(&engine, CONN_TAB_SIZE), timeouts_of(&engine), state.daemons.clone());
        let commands = diff_tables(&current, &target);
        if let Err(e) = transaction::run(&mut engine, &mut state.daemons, &commands, self.clock.now()) {
            bump(&self.counters.reloads_refused);
            error!(%path, index = ?e.command_index, error = %e, "reload refused; the running configuration is unchanged");
            return Err(e);
        }
        apply_sysctl(&mut engine, Some(&state.config.sysctl), &new.sysctl);
        if new.director != state.config.director {
            warn!(%path, "[director] settings changed; they take effect at the next start");
        }
        state.config = new;
        bump(&self.counters.reloads);
        info!(%path, changes = commands.len(), "configuration reloaded");
        Ok(commands.len())
    }

    /// Answers one request.
    pub fn handle(&self, request: Request) -> Response {
        bump(&self.counters.requests);
        match request {
            Request::Apply { commands } => match self.apply(&commands) {
                Ok(()) => Response::Applied,
                Err(e) => Response::Error(e),
            },
            Request::List => Response::Table(table_of(&lock(&self.engine), CONN_TAB_SIZE)),
            Request::ListService { id } => self.list_service(id),
            Request::ListConns => {
                let now = self.clock.now();
                Response::Conns { conns: conns_of(&lock(&self.engine), now) }
            }
            Request::Timeouts => Response::Timeouts(timeouts_of(&lock(&self.engine))),
            Request::Daemons => {
                let _engine = lock(&self.engine);
                let daemons: Vec<SyncDaemonSpec> = lock(&self.state).daemons.clone();
                Response::Daemons { daemons }
            }
            Request::Reload => match self.reload() {
                Ok(_) => Response::Applied,
                Err(e) => Response::Error(e),
            },
            Request::Status => Response::Status(self.status()),
            Request::SetDrain { service, addr, port, drain } => match self.health.get() {
                Some(h) => match h.set_drain(self, service, addr, port, drain) {
                    Ok(()) => Response::Applied,
                    Err(e) => Response::Error(e),
                },
                None => Response::Error(ApiError::new("unsupported", "health checking is not running")),
            },
            Request::Health => Response::Health { reals: self.health.get().map(|h| h.list()).unwrap_or_default() },
        }
    }

    fn list_service(&self, id: ServiceId) -> Response {
        let engine = lock(&self.engine);
        let key = ServiceKey::from(id);
        if engine.find_service(&key).is_none() {
            return Response::Error(rvs_core::ConfigError::NoSuchService.into());
        }
        let mut table = table_of(&engine, CONN_TAB_SIZE);
        table.services.retain(|s| s.spec.id == id);
        Response::Table(table)
    }

    fn status(&self) -> StatusInfo {
        let engine = lock(&self.engine);
        let mut counters = BTreeMap::new();
        let c = &self.counters;
        for (name, v) in [
            ("requests", &c.requests),
            ("bad_requests", &c.bad_requests),
            ("transactions", &c.transactions),
            ("transactions_refused", &c.transactions_refused),
            ("reloads", &c.reloads),
            ("reloads_refused", &c.reloads_refused),
        ] {
            counters.insert(name.to_string(), v.load(Ordering::Relaxed));
        }
        let d = engine.drops();
        for (name, v) in [
            ("drop_dest_unavailable", d.dest_unavailable),
            ("drop_table_full", d.table_full),
            ("drop_defense", d.defense),
            ("drop_no_destination", d.no_destination),
            ("drop_unsupported_protocol", d.unsupported_protocol),
            ("defense_dropped_entries", d.defense_dropped_entries),
        ] {
            counters.insert(name.to_string(), v);
        }
        for policy in [DefensePolicy::DropEntry, DefensePolicy::DropPacket, DefensePolicy::SecureTcp] {
            counters.insert(format!("{}_mode", policy.sysctl_name()), u64::from(engine.defense().mode(policy).value()));
        }
        for (name, v) in lock(&self.dataplane_counters).iter() {
            counters.insert(format!("dataplane_{name}"), *v);
        }
        counters.insert("services".into(), engine.services().count() as u64);
        counters
            .insert("real_servers".into(), engine.services().map(|(id, _)| engine.dests_of(id).count() as u64).sum());
        counters.insert("uptime_seconds".into(), self.clock.now().as_millis() / 1000);
        if let Some(f) = self.failover.get() {
            counters.extend(f.counters());
        }
        StatusInfo {
            protocol_version: rvs_api::PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_string(),
            connections: engine.conns().len() as u64,
            counters,
        }
    }
}
