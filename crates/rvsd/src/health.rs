//! Health checking inside the daemon: one `rvs-health` monitor for the configured checks, one
//! `rvs-health` policy per service, and the glue that makes health actions, manual drains and
//! configuration reloads compose.
//!
//! The model: every real server of every configured service has a health (from its checks;
//! always healthy when unchecked) and a drain flag (by API, or by a file in the maintenance
//! directory). It is *in service* when healthy and not drained. Each service's [`Policy`] is
//! fed only in-service changes and decides the table (configured weight, weight 0 or absent,
//! sorry server). Policy output is applied through [`Control::apply`] as one transaction.
//!
//! Reloads: the table a reload installs is the new configuration *as the health policy would
//! have it* ([`HealthPlane::reload`] computes it from the carried health of the real servers
//! that stay), so a reload never puts a dead or drained server back, and the diff touches
//! only what the configuration changed. The monitor is then restarted with the carried state
//! (a down server stays down until it passes a check).
//!
//! Lock order: the health state, then the engine, then the control state (as in `control`).
//!
//! Threads: `rvsd-health-events` (applies monitor events), `rvsd-health-poll` (maintenance
//! directory and autoreload), one forwarder per monitor generation, and the monitor's own.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rvs_api::convert::table_of;
use rvs_api::{ApiError, Command, DestSpec, RealHealthInfo, ServiceId};
use rvs_config::health::maintenance_entry;
use rvs_config::{Config, HealthSettings, TableSpec, diff_tables};
use rvs_health::check::service_text;
use rvs_health::state::StartState;
use rvs_health::{
    HealthEvent, HealthEventKind, Monitor, MonitorHandle, MonitorOptions, Observation, PassiveConfig, PassiveTracker,
    Policy, Suspect, TargetSpec,
};
use tracing::{debug, error, info, warn};

use crate::control::{CONN_TAB_SIZE, Control, lock};
use crate::housekeeping::StopFlag;

/// A drain by hand: which real servers it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DrainRule {
    service: Option<ServiceId>,
    addr: IpAddr,
    port: Option<u16>,
}

impl DrainRule {
    fn covers(&self, service: &ServiceId, real: &SocketAddr) -> bool {
        self.service.is_none_or(|s| s == *service)
            && self.addr == real.ip()
            && self.port.is_none_or(|p| p == real.port())
    }
}

/// One real server's state.
#[derive(Debug, Clone)]
struct RealState {
    addr: SocketAddr,
    checked: bool,
    healthy: bool,
    drained: bool,
    reason: String,
    dynamic_weight: Option<u32>,
}

impl RealState {
    fn in_service(&self) -> bool {
        self.healthy && !self.drained
    }
}

/// One service: its policy and its real servers.
#[derive(Debug)]
struct ServicePlane {
    id: ServiceId,
    policy: Policy,
    reals: Vec<RealState>,
}

/// What the health state holds.
struct Inner {
    /// Events of older monitors are ignored.
    generation: u64,
    monitor: Option<MonitorHandle>,
    services: Vec<ServicePlane>,
    settings: HealthSettings,
    api_drains: Vec<DrainRule>,
    dir_drains: BTreeSet<(IpAddr, Option<u16>)>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("generation", &self.generation)
            .field("monitoring", &self.monitor.is_some())
            .field("services", &self.services)
            .field("api_drains", &self.api_drains)
            .field("dir_drains", &self.dir_drains)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn drained(&self, service: &ServiceId, real: &SocketAddr) -> bool {
        self.api_drains.iter().any(|r| r.covers(service, real))
            || self.dir_drains.contains(&(real.ip(), Some(real.port())))
            || self.dir_drains.contains(&(real.ip(), None))
    }
}

enum Msg {
    Event(u64, HealthEvent),
    /// A passive suspicion: run an active round for this real server now.
    Probe(ServiceId, SocketAddr, String),
    Stop,
}

/// The daemon's health state, shared by the control plane (reloads, drain requests) and the
/// health threads.
#[derive(Debug)]
pub struct HealthPlane {
    inner: Mutex<Inner>,
    events: Mutex<Sender<Msg>>,
    /// Data-path observations; its own lock, so the data path never waits for the health state.
    passive: Mutex<PassiveTracker<(ServiceId, SocketAddr)>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Event(g, e) => write!(f, "Event({g}, {e:?})"),
            Msg::Probe(s, r, why) => write!(f, "Probe({s:?}, {r}, {why})"),
            Msg::Stop => write!(f, "Stop"),
        }
    }
}

/// The running health threads; [`HealthRunner::stop`] ends them.
#[derive(Debug)]
pub struct HealthRunner {
    plane: Arc<HealthPlane>,
    stop: Arc<StopFlag>,
    threads: Vec<JoinHandle<()>>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn real_socket(d: &DestSpec) -> SocketAddr {
    SocketAddr::new(d.addr, d.port)
}

/// Builds the per-service state for `config`, carrying health over from `old` for the real
/// servers that stay. Returns the services and the monitor's targets.
fn build(
    config: &Config,
    old: Option<&Inner>,
    drained: impl Fn(&ServiceId, &SocketAddr) -> bool,
) -> Result<(Vec<ServicePlane>, Vec<TargetSpec>), ApiError> {
    let mut services = Vec::with_capacity(config.services.len());
    let mut targets = Vec::new();
    for entry in &config.services {
        let id = entry.spec.id;
        let health = config.health.service(&id);
        let previous = old.and_then(|o| o.services.iter().find(|p| p.id == id));
        let mut reals = Vec::with_capacity(entry.reals.len());
        for dest in &entry.reals {
            let addr = real_socket(dest);
            let rh = health.and_then(|h| h.reals.iter().find(|r| r.real == addr));
            let carried = previous.and_then(|p| p.reals.iter().find(|r| r.addr == addr));
            let (healthy, reason, dynamic_weight) = match (rh, carried) {
                (None, _) => (true, String::new(), None),
                (Some(_), Some(c)) if c.checked => (c.healthy, c.reason.clone(), c.dynamic_weight),
                (Some(r), _) => {
                    let up = r.config.start == StartState::Up;
                    (up, if up { String::new() } else { "not checked yet".into() }, None)
                }
            };
            if let Some(r) = rh {
                let mut spec = TargetSpec::from_config(id, addr, &r.config)
                    .map_err(|e| ApiError::new("invalid", format!("{}: {addr}: {e}", service_text(&id))))?;
                spec.timing.start = if healthy { StartState::Up } else { StartState::Down };
                targets.push(spec);
            }
            reals.push(RealState {
                addr,
                checked: rh.is_some(),
                healthy,
                drained: drained(&id, &addr),
                reason,
                dynamic_weight,
            });
        }
        let policy_config = health.map(|h| h.policy.clone()).unwrap_or_default();
        let mut policy = Policy::new(id, policy_config, entry.reals.clone(), true)
            .map_err(|e| ApiError::new("invalid", format!("{}: {e}", service_text(&id))))?;
        // Bring the policy to the carried state; nothing is installed or notified here.
        for r in &reals {
            if !r.in_service() {
                let _ = policy.apply(&event(id, r.addr, HealthEventKind::Down, &r.reason), 0);
            } else if let Some(w) = r.dynamic_weight {
                let _ = policy.apply(&event(id, r.addr, HealthEventKind::Weight(w), ""), 0);
            }
        }
        services.push(ServicePlane { id, policy, reals });
    }
    Ok((services, targets))
}

fn event(service: ServiceId, real: SocketAddr, kind: HealthEventKind, reason: &str) -> HealthEvent {
    HealthEvent { service, real, kind, reason: reason.to_string() }
}

/// `table` with each service's real servers replaced by what its policy wants.
fn overlay(mut table: TableSpec, services: &[ServicePlane]) -> TableSpec {
    for entry in &mut table.services {
        if let Some(p) = services.iter().find(|p| p.id == entry.spec.id) {
            entry.reals = p.policy.desired();
        }
    }
    table
}

/// What the table holds for `service` now (None: the service is not in the table).
fn installed(control: &Control, service: &ServiceId) -> Option<Vec<DestSpec>> {
    let table = table_of(&lock(control.engine()), CONN_TAB_SIZE);
    table.services.into_iter().find(|s| s.spec.id == *service).map(|s| s.dests.into_iter().map(|d| d.spec).collect())
}

impl HealthPlane {
    /// Reads the maintenance directory: the set of `(address, port)` entries it names.
    fn read_maintenance_dir(dir: &std::path::Path) -> BTreeSet<(IpAddr, Option<u16>)> {
        let Ok(entries) = std::fs::read_dir(dir) else { return BTreeSet::new() };
        entries.filter_map(Result::ok).filter_map(|e| e.file_name().to_str().and_then(maintenance_entry)).collect()
    }

    /// Starts a monitor for `targets` whose events reach the event thread tagged `generation`.
    fn start_monitor(
        &self,
        targets: Vec<TargetSpec>,
        settings: &HealthSettings,
        generation: u64,
    ) -> Result<Option<MonitorHandle>, ApiError> {
        if targets.is_empty() {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel::<HealthEvent>();
        let forward = lock(&self.events).clone();
        std::thread::Builder::new()
            .name("rvsd-health-fwd".into())
            .spawn(move || {
                // Ends when the monitor is stopped (its sender dropped) or the event thread is gone.
                for e in rx {
                    if forward.send(Msg::Event(generation, e)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| ApiError::new("internal", format!("starting the health forwarder: {e}")))?;
        let options = MonitorOptions {
            workers: settings.workers,
            max_threads: settings.max_threads,
            ..MonitorOptions::default()
        };
        Monitor::start(targets, options, tx)
            .map(Some)
            .map_err(|e| ApiError::new("internal", format!("starting the health monitor: {e}")))
    }

    /// The reload path: computes the table the new configuration should have given the
    /// current health, lets `install` apply it (the control plane diffs it against the
    /// running table), and on success restarts monitoring with the carried state.
    pub fn reload(
        &self,
        new: &Config,
        install: impl FnOnce(TableSpec) -> Result<usize, ApiError>,
    ) -> Result<usize, ApiError> {
        let mut inner = lock(&self.inner);
        let dir_drains = match &new.health.settings.maintenance_dir {
            Some(d) => Self::read_maintenance_dir(d),
            None => BTreeSet::new(),
        };
        let drained = |s: &ServiceId, r: &SocketAddr| {
            inner.api_drains.iter().any(|d| d.covers(s, r))
                || dir_drains.contains(&(r.ip(), Some(r.port())))
                || dir_drains.contains(&(r.ip(), None))
        };
        let (mut services, targets) = build(new, Some(&inner), drained)?;
        let target = overlay(new.table(), &services);
        let changes = install(target)?;
        for s in &mut services {
            let desired = s.policy.desired();
            s.policy.set_installed(desired);
        }
        inner.monitor = None; // stops the old monitor; its late events carry an old generation
        inner.generation += 1;
        inner.services = services;
        inner.settings = new.health.settings.clone();
        inner.dir_drains = dir_drains;
        let checked = targets.len();
        match self.start_monitor(targets, &new.health.settings, inner.generation) {
            Ok(m) => inner.monitor = m,
            Err(e) => error!(error = %e, "health monitoring not restarted after the reload"),
        }
        info!(real_servers_checked = checked, "health monitoring restarted with the carried state");
        Ok(changes)
    }

    /// Applies one event of the monitor (ignored if from an older generation).
    fn on_event(&self, control: &Control, generation: u64, e: &HealthEvent) {
        let mut inner = lock(&self.inner);
        if generation != inner.generation {
            debug!(?e, "event of a stopped monitor ignored");
            return;
        }
        let Some(plane) = inner.services.iter_mut().find(|p| p.id == e.service) else { return };
        let Some(real) = plane.reals.iter_mut().find(|r| r.addr == e.real) else { return };
        let service = service_text(&e.service);
        let before = real.in_service();
        match &e.kind {
            HealthEventKind::Up => {
                real.healthy = true;
                real.reason.clear();
                info!(%service, real = %e.real, "real server up: {}", e.reason);
            }
            HealthEventKind::Down => {
                real.healthy = false;
                real.dynamic_weight = None;
                real.reason.clone_from(&e.reason);
                warn!(%service, real = %e.real, reason = %e.reason, "real server down: {}", e.reason);
            }
            HealthEventKind::Weight(w) => {
                real.dynamic_weight = Some(*w);
                info!(%service, real = %e.real, weight = w, "dynamic weight");
            }
        }
        let after = real.in_service();
        let kind = match (&e.kind, before, after) {
            (HealthEventKind::Weight(w), _, true) => HealthEventKind::Weight(*w),
            (_, false, true) => HealthEventKind::Up,
            (_, true, false) => HealthEventKind::Down,
            _ => return, // e.g. a drained server whose checks recover: nothing to change yet
        };
        let ev = HealthEvent { kind, ..e.clone() };
        apply_policy(control, plane, &[ev]);
    }

    /// Recomputes every real server's drain flag; feeds the changes to the policies.
    fn redrain(&self, control: &Control, inner: &mut Inner) {
        let flags: Vec<Vec<bool>> =
            inner.services.iter().map(|p| p.reals.iter().map(|r| inner.drained(&p.id, &r.addr)).collect()).collect();
        for (plane, flags) in inner.services.iter_mut().zip(flags) {
            let mut events = Vec::new();
            for (real, drained) in plane.reals.iter_mut().zip(flags) {
                if real.drained == drained {
                    continue;
                }
                let before = real.in_service();
                real.drained = drained;
                let service = service_text(&plane.id);
                if drained {
                    info!(%service, real = %real.addr, "real server drained by hand");
                } else {
                    info!(%service, real = %real.addr, "real server drain lifted");
                }
                let reason = if drained { "drained by hand" } else { "drain lifted" };
                match (before, real.in_service()) {
                    (true, false) => events.push(event(plane.id, real.addr, HealthEventKind::Down, reason)),
                    (false, true) => events.push(event(plane.id, real.addr, HealthEventKind::Up, reason)),
                    _ => {}
                }
            }
            if !events.is_empty() {
                apply_policy(control, plane, &events);
            }
        }
    }

    /// Drains or undrains real servers by hand. Errors if the rule matches no real server.
    pub fn set_drain(
        &self,
        control: &Control,
        service: Option<ServiceId>,
        addr: IpAddr,
        port: Option<u16>,
        drain: bool,
    ) -> Result<(), ApiError> {
        let mut inner = lock(&self.inner);
        let rule = DrainRule { service, addr, port };
        let matches = inner.services.iter().any(|p| p.reals.iter().any(|r| rule.covers(&p.id, &r.addr)));
        if !matches {
            return Err(ApiError::new("no_such_destination", "No such destination"));
        }
        if drain {
            if !inner.api_drains.contains(&rule) {
                inner.api_drains.push(rule);
            }
        } else {
            // Undrain lifts every hand drain the rule covers (a file in the maintenance
            // directory still drains).
            inner.api_drains.retain(|d| {
                let covered = rule.service.is_none_or(|s| d.service == Some(s))
                    && d.addr == rule.addr
                    && rule.port.is_none_or(|p| d.port == Some(p));
                !covered
            });
        }
        self.redrain(control, &mut inner);
        Ok(())
    }

    /// The health of every real server.
    pub fn list(&self) -> Vec<RealHealthInfo> {
        let inner = lock(&self.inner);
        inner
            .services
            .iter()
            .flat_map(|p| {
                p.reals.iter().map(|r| RealHealthInfo {
                    service: p.id,
                    addr: r.addr.ip(),
                    port: r.addr.port(),
                    checked: r.checked,
                    healthy: r.healthy,
                    drained: r.drained,
                    reason: r.reason.clone(),
                    dynamic_weight: r.dynamic_weight,
                })
            })
            .collect()
    }

    /// The passive hook: what the data path saw for a real server (a SYN forwarded, the
    /// connection established, a RST in answer to a SYN, a UDP request with or without reply).
    /// When failures pile up (3 within 5 s with no success) the server becomes suspect and its
    /// checks run at once instead of at the next interval; repeated suspicions back off from 1 s
    /// to 30 s. Cheap and never blocks on the health state or the engine, so the data path may
    /// call it while holding the engine lock.
    pub fn observe(&self, service: ServiceId, real: SocketAddr, observation: Observation) {
        let suspect = lock(&self.passive).observe(&(service, real), observation, std::time::Instant::now());
        if let Some(s) = suspect {
            self.suspect(&s);
        }
    }

    fn suspect(&self, s: &Suspect<(ServiceId, SocketAddr)>) {
        let (service, real) = s.key;
        let _ = lock(&self.events).send(Msg::Probe(service, real, s.reason.clone()));
    }

    /// Ages unanswered SYNs (a SYN with no answer within 1 s is a failure).
    fn poll_passive(&self) {
        let suspects = lock(&self.passive).poll(std::time::Instant::now());
        for s in &suspects {
            self.suspect(s);
        }
    }

    /// Runs an active round for a suspect real server now.
    fn probe(&self, service: ServiceId, real: SocketAddr, why: &str) {
        let inner = lock(&self.inner);
        if let Some(m) = &inner.monitor {
            info!(service = %service_text(&service), %real, reason = why, "passive suspicion: checking now");
            m.probe_now(service, real);
        }
    }

    /// Looks at the maintenance directory; feeds changes to the policies.
    fn poll_maintenance(&self, control: &Control) {
        let mut inner = lock(&self.inner);
        let Some(dir) = inner.settings.maintenance_dir.clone() else { return };
        let now = Self::read_maintenance_dir(&dir);
        if now != inner.dir_drains {
            inner.dir_drains = now;
            self.redrain(control, &mut inner);
        }
    }
}

/// Feeds `events` (in-service changes) to the service's policy and applies its commands as one
/// transaction; runs the notify commands.
fn apply_policy(control: &Control, plane: &mut ServicePlane, events: &[HealthEvent]) {
    let Some(dests) = installed(control, &plane.id) else {
        warn!(service = %service_text(&plane.id), "service not in the table; health change not applied");
        return;
    };
    plane.policy.set_installed(dests);
    let now = unix_now();
    let mut commands: Vec<Command> = Vec::new();
    for e in events {
        let out = plane.policy.apply(e, now);
        commands.extend(out.commands);
        for n in out.notify {
            if let Err(err) = n.spawn() {
                warn!(error = %err, "notify command not started");
            }
        }
    }
    if commands.is_empty() {
        return;
    }
    if let Err(e) = control.apply(&commands) {
        // The table moved under us (e.g. an edit by hand): start from what it holds now.
        warn!(error = %e, "health transaction refused; converging from the current table");
        if let Some(dests) = installed(control, &plane.id) {
            plane.policy.set_installed(dests);
            let retry = plane.policy.sync();
            if let Err(e) = control.apply(&retry) {
                error!(error = %e, service = %service_text(&plane.id), "health transaction refused again");
            }
        }
    } else {
        info!(service = %service_text(&plane.id), changes = commands.len(), "health transaction applied");
    }
}

/// Config file identity for autoreload: modification time and size.
fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Starts health checking for the configuration `control` runs: converges the table to the
/// initial health (alpha, maintenance files), starts the monitor, the event thread and the
/// poll thread, and makes `control` route reloads and drain requests through it.
pub fn start(control: &Arc<Control>, config: &Config, config_path: PathBuf) -> anyhow::Result<HealthRunner> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let dir_drains = config.health.settings.maintenance_dir.as_deref().map(HealthPlane::read_maintenance_dir);
    let dir_drains = dir_drains.unwrap_or_default();
    let drained = |_: &ServiceId, r: &SocketAddr| {
        dir_drains.contains(&(r.ip(), Some(r.port()))) || dir_drains.contains(&(r.ip(), None))
    };
    let (mut services, targets) = build(config, None, drained).map_err(|e| anyhow::anyhow!("{e}"))?;
    let target = overlay(config.table(), &services);
    let commands = diff_tables(&config.table(), &target);
    if !commands.is_empty() {
        control.apply(&commands).map_err(|e| anyhow::anyhow!("applying the initial health state: {e}"))?;
    }
    for s in &mut services {
        let desired = s.policy.desired();
        s.policy.set_installed(desired);
    }
    let plane = Arc::new(HealthPlane {
        inner: Mutex::new(Inner {
            generation: 1,
            monitor: None,
            services,
            settings: config.health.settings.clone(),
            api_drains: Vec::new(),
            dir_drains,
        }),
        events: Mutex::new(tx),
        passive: Mutex::new(PassiveTracker::new(PassiveConfig::default())),
    });
    let checked = targets.len();
    let monitor =
        plane.start_monitor(targets, &config.health.settings, 1).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    lock(&plane.inner).monitor = monitor;
    if checked > 0 {
        info!(real_servers_checked = checked, "health monitoring started");
    }
    let stop = Arc::new(StopFlag::default());
    let mut threads = Vec::new();
    {
        let (plane, control) = (plane.clone(), control.clone());
        threads.push(
            std::thread::Builder::new()
                .name("rvsd-health-events".into())
                .spawn(move || event_loop(&plane, &control, &rx))
                .context("starting the health event thread")?,
        );
    }
    let spawned = {
        let (plane, control, stop) = (plane.clone(), control.clone(), stop.clone());
        std::thread::Builder::new()
            .name("rvsd-health-poll".into())
            .spawn(move || poll_loop(&plane, &control, &config_path, &stop))
    };
    match spawned {
        Ok(t) => threads.push(t),
        Err(e) => {
            HealthRunner { plane, stop, threads }.stop();
            return Err(e).context("starting the health poll thread");
        }
    }
    control.set_health(plane.clone());
    Ok(HealthRunner { plane, stop, threads })
}

fn event_loop(plane: &HealthPlane, control: &Control, rx: &Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Event(generation, e) => plane.on_event(control, generation, &e),
            Msg::Probe(service, real, why) => plane.probe(service, real, &why),
            Msg::Stop => break,
        }
    }
    debug!("health event thread stopped");
}

/// Granularity of the poll thread.
const POLL_TICK: Duration = Duration::from_millis(50);

fn poll_loop(plane: &HealthPlane, control: &Control, config_path: &std::path::Path, stop: &StopFlag) {
    let mut stamp = file_stamp(config_path);
    let start = std::time::Instant::now();
    let (mut next_maintenance, mut next_reload) = (start, start);
    while !stop.wait(POLL_TICK) {
        let now = std::time::Instant::now();
        let settings = lock(&plane.inner).settings.clone();
        plane.poll_passive();
        if settings.maintenance_dir.is_some() && now >= next_maintenance {
            next_maintenance = now + settings.maintenance_interval;
            plane.poll_maintenance(control);
        }
        if now >= next_reload {
            next_reload = now + settings.autoreload_interval;
            let current = file_stamp(config_path);
            if current != stamp {
                stamp = current;
                if settings.autoreload {
                    info!(path = %config_path.display(), "configuration file changed: reloading (autoreload)");
                    // Errors are logged by the reload; the running configuration stays.
                    let _ = control.reload();
                }
            }
        }
    }
    debug!("health poll thread stopped");
}

impl HealthRunner {
    /// The shared health state.
    pub fn plane(&self) -> &Arc<HealthPlane> {
        &self.plane
    }

    /// Stops monitoring and the health threads.
    pub fn stop(mut self) {
        self.stop.stop();
        lock(&self.plane.inner).monitor = None;
        let _ = lock(&self.plane.events).send(Msg::Stop);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                error!("a health thread panicked");
            }
        }
    }
}
