//! rvsd: the rvs director daemon, as a library so tests can drive it in-process
//! (`src/main.rs` is a thin wrapper).
//!
//! [`Rvsd::start`] builds the engine (`Arc<Mutex<rvs_core::engine::Engine>>`), applies the
//! configuration as one transaction, starts the data plane ([`dataplane`], a stub for now),
//! the housekeeping thread (one `engine.tick` per second) and the admin server on a Unix
//! socket (mode 0600). [`Rvsd::run_until_signalled`] then answers SIGHUP with a reload and
//! SIGTERM/SIGINT with a clean stop ([`Rvsd::stop`]: data plane shutdown hook, threads
//! joined, socket removed).
//!
//! Threads: the caller's (signals), `rvsd-admin` (accept), one `rvsd-client` per admin
//! connection, `rvsd-housekeeping`, and whatever the data plane starts.
//!
//! Modules: [`cli`] (arguments), [`clock`] (monotonic time for the engine), [`control`]
//! (shared state, request handling, reload), [`transaction`] (all-or-nothing commands),
//! [`server`] (admin socket), [`housekeeping`] (the tick), [`meminfo`] (available memory),
//! [`signals`], [`logging`], [`dataplane`].

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;
use rvs_api::{ApiError, Request, Response};
use rvs_config::Config;
use rvs_core::Instant;
use rvs_core::engine::Engine;
use tracing::{error, info};

pub mod cli;
pub mod clock;
pub mod control;
pub mod dataplane;
pub mod failover;
pub mod health;
pub mod housekeeping;
pub mod logging;
pub mod meminfo;
pub mod server;
pub mod signals;
pub mod transaction;

use crate::clock::Clock;
use crate::control::Control;
use crate::housekeeping::StopFlag;
use crate::server::{AdminSocket, Server, ServerLimits};
use crate::signals::{SignalAction, SignalWatcher};

/// A random 64-bit seed from the standard library's per-process hash keys.
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// A running daemon.
#[derive(Debug)]
pub struct Rvsd {
    control: Arc<Control>,
    server: Server,
    stop: Arc<StopFlag>,
    housekeeping: Option<JoinHandle<()>>,
    dataplane: Option<dataplane::DataPlaneHandle>,
    failover: control::SharedFailover,
    health: Option<health::HealthRunner>,
    socket_path: PathBuf,
}

impl Rvsd {
    /// Starts the daemon: engine, configuration (one transaction), data plane, housekeeping,
    /// admin server on `socket`. `config` was loaded from `config_path`, which reloads re-read.
    pub fn start(
        config_path: impl Into<PathBuf>,
        config: Config,
        socket: AdminSocket,
        limits: ServerLimits,
    ) -> anyhow::Result<Rvsd> {
        let socket_path = socket.path().to_path_buf();
        let started = Rvsd::start_inner(config_path.into(), config, socket, limits);
        if started.is_err() {
            // The socket was bound for this daemon: do not leave it behind.
            let _ = std::fs::remove_file(&socket_path);
        }
        started
    }

    fn start_inner(
        config_path: PathBuf,
        config: Config,
        socket: AdminSocket,
        limits: ServerLimits,
    ) -> anyhow::Result<Rvsd> {
        let clock = Clock::new();
        let engine = Arc::new(Mutex::new(Engine::new(config.director.max_connections, random_seed())));
        let control = Control::new(engine.clone(), config.clone(), config_path.clone(), clock)
            .map_err(|e| anyhow::anyhow!("{}: the engine refused the configuration: {e}", config_path.display()))?;
        let control = Arc::new(control);
        // Filled in once health checking runs: the data plane reports what real servers do.
        let passive: dataplane::PassiveHook = Arc::default();
        let mut dataplane = Some(
            dataplane::start(engine.clone(), &config, clock, control.dataplane_counters(), passive.clone())
                .context("starting the data plane")?,
        );
        let stop = Arc::new(StopFlag::default());
        let socket_path = socket.path().to_path_buf();
        let engine_for_failover = engine.clone();
        let threads = housekeeping::spawn(engine, clock, random_seed(), stop.clone())
            .and_then(|h| Ok((h, Server::start(socket, control.clone(), limits)?)));
        let (housekeeping, mut server) = match threads {
            Ok(t) => t,
            Err(e) => {
                stop.stop();
                if let Some(dp) = dataplane.take() {
                    dp.stop();
                }
                return Err(e);
            }
        };
        let health = match health::start(&control, &config, config_path.clone()) {
            Ok(h) => h,
            Err(e) => {
                stop.stop();
                server.stop();
                if let Some(dp) = dataplane.take() {
                    dp.stop();
                }
                return Err(e.context("starting health checking"));
            }
        };
        if passive.set(health.plane().clone()).is_ok() {
            control::lock(control.engine()).set_observe_dests(true);
        }
        // Failover last: a director takes part in VRRP only once it can serve.
        let failover = match failover::FailoverHandle::start(&config, engine_for_failover, clock) {
            Ok(f) => f,
            Err(e) => {
                health.stop();
                stop.stop();
                server.stop();
                if let Some(dp) = dataplane.take() {
                    dp.stop();
                }
                return Err(e);
            }
        };
        control.set_failover_stats(failover.stats());
        let failover: control::SharedFailover = Arc::new(Mutex::new(Some(failover)));
        control.set_failover(failover.clone());
        info!(config = %config_path.display(), socket = %socket_path.display(), "rvsd started");
        Ok(Rvsd {
            control,
            server,
            stop,
            housekeeping: Some(housekeeping),
            dataplane,
            failover,
            health: Some(health),
            socket_path,
        })
    }

    /// Binds `socket` and starts: the usual way to start in tests.
    pub fn start_at(config_path: impl Into<PathBuf>, socket: &Path, limits: ServerLimits) -> anyhow::Result<Rvsd> {
        let config_path = config_path.into();
        let config = Config::load(&config_path)?;
        let socket = server::bind(socket)?;
        Rvsd::start(config_path, config, socket, limits)
    }

    /// The engine, shared with the data plane.
    pub fn engine(&self) -> Arc<Mutex<Engine>> {
        self.control.engine().clone()
    }

    /// The engine's current time.
    pub fn now(&self) -> Instant {
        self.control.clock().now()
    }

    /// Health checking (its passive hook: [`health::HealthPlane::observe`]).
    pub fn health(&self) -> Option<Arc<health::HealthPlane>> {
        self.health.as_ref().map(|h| h.plane().clone())
    }

    /// The admin socket's path.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The configuration last loaded.
    pub fn running_config(&self) -> Config {
        self.control.running_config()
    }

    /// Answers a request as the admin socket would.
    pub fn handle(&self, request: Request) -> Response {
        self.control.handle(request)
    }

    /// Re-reads the configuration file and applies the difference (what SIGHUP does).
    pub fn reload(&self) -> Result<usize, ApiError> {
        self.control.reload()
    }

    /// Serves until SIGTERM or SIGINT (reloading on SIGHUP), then stops cleanly. Also
    /// returns when the watcher's handle is closed.
    pub fn run_until_signalled(self, mut signals: SignalWatcher) {
        while let Some(action) = signals.wait() {
            match action {
                SignalAction::Reload => {
                    info!("SIGHUP: reloading the configuration");
                    // Errors are logged by reload; the running configuration stays.
                    let _ = self.reload();
                }
                SignalAction::Stop(signal) => {
                    info!(signal, "stopping");
                    break;
                }
            }
        }
        self.stop();
    }

    /// Stops cleanly: the data plane's shutdown hook, the housekeeping thread, the admin
    /// server (the socket file is removed).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // Failover first: a master resigns (priority 0) while it can still serve.
        let running = control::lock(&self.failover).take();
        if let Some(f) = running {
            f.stop();
        }
        if let Some(h) = self.health.take() {
            h.stop();
        }
        if let Some(dp) = self.dataplane.take() {
            dp.stop();
        }
        self.stop.stop();
        if let Some(h) = self.housekeeping.take()
            && h.join().is_err()
        {
            error!("the housekeeping thread panicked");
        }
        self.server.stop();
        info!("rvsd stopped");
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        if self.housekeeping.is_some() {
            self.shutdown();
        }
    }
}
