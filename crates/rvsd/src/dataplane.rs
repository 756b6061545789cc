//! The data plane in the daemon: the packet worker thread and what it installs in the host.
//!
//! On start, for the `[director] interfaces` of the configuration:
//! 1. AF_PACKET rings on each interface ([`rvs_dataplane::afpacket::AfPacketIo`]);
//! 2. nftables netdev-ingress steering ([`rvs_dataplane::steer::Steering`]) so the director's
//!    own kernel drops exactly what rvs handles (VIP service traffic, NAT replies) while it keeps
//!    everything else (its own addresses, ARP, SSH, health-check replies);
//! 3. next hops read from the kernel's routes and neighbours
//!    ([`rvs_dataplane::kernel_nexthops::KernelNextHops`]);
//! 4. one worker thread: rx batch -> [`Pipeline::process`] (parse, classify, connection lookup or
//!    schedule in the shared engine, rewrite) -> tx batch. When the engine's service table
//!    changes (its generation moves) the worker re-derives and atomically replaces the steering
//!    rules.
//!
//! [`DataPlaneHandle::stop`] stops the worker and removes the steering table. A configuration
//! without interfaces starts no worker (the control plane alone, as in tests).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use anyhow::Context;
use rvs_core::ForwardMethod;
use rvs_core::engine::Engine;
use rvs_core::service::ServiceKey;
use rvs_dataplane::afpacket::AfPacketIo;
use rvs_dataplane::io::{Batch, PacketIo};
use rvs_dataplane::kernel_nexthops::KernelNextHops;
use rvs_dataplane::pipeline::{Pipeline, PipelineConfig};
use rvs_dataplane::steer::{SteeredRealServer, SteeredService, Steering, SteeringSpec};
use tracing::{info, warn};

use crate::clock::Clock;
use crate::control::lock;

/// Frames per receive batch.
const RX_BATCH: usize = 64;
/// How long one receive call waits for traffic (also how often the worker checks for stop
/// and for configuration changes when idle).
const RX_TIMEOUT: Duration = Duration::from_millis(20);

/// A running data plane.
#[derive(Debug)]
pub struct DataPlaneHandle {
    interfaces: Vec<String>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl DataPlaneHandle {
    /// The interfaces it forwards on.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }

    /// Stops the worker and removes what the data plane installed.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.worker.take()
            && w.join().is_err()
        {
            warn!("data-plane worker panicked");
        }
        info!(interfaces = ?self.interfaces, "data plane stopped");
    }
}

/// What the kernel must leave to rvs, derived from the engine's services.
fn steering_spec(engine: &Engine, interfaces: &[String], local: &[IpAddr]) -> SteeringSpec {
    let mut spec = SteeringSpec { interfaces: interfaces.to_vec(), local_addrs: local.to_vec(), ..Default::default() };
    for (id, svc) in engine.services() {
        match svc.config.key {
            ServiceKey::Addr { protocol, addr, port } => {
                spec.services.push(SteeredService { protocol, addr, port });
                for (_, d) in engine.dests_of(id) {
                    if d.config.method == ForwardMethod::Masquerade {
                        spec.nat_real_servers.push(SteeredRealServer {
                            protocol,
                            addr: d.config.addr,
                            port: d.config.port,
                        });
                    }
                }
            }
            ServiceKey::Fwmark { .. } => {}
        }
    }
    spec.services.sort();
    spec.services.dedup();
    spec.nat_real_servers.sort();
    spec.nat_real_servers.dedup();
    spec
}

/// Starts the packet worker on the configured interfaces, sharing `engine` with the control
/// plane.
pub fn start(engine: Arc<Mutex<Engine>>, config: &rvs_config::Config, clock: Clock) -> anyhow::Result<DataPlaneHandle> {
    let interfaces = config.director.interfaces.clone();
    let stop = Arc::new(AtomicBool::new(false));
    if interfaces.is_empty() {
        info!("no [director] interfaces: data plane not started (control plane only)");
        return Ok(DataPlaneHandle { interfaces, stop, worker: None });
    }
    let names: Vec<&str> = interfaces.iter().map(String::as_str).collect();
    let io = AfPacketIo::open(&names).with_context(|| format!("opening AF_PACKET rings on {interfaces:?}"))?;
    let nexthops = KernelNextHops::start().context("reading routes and neighbours")?;
    let local = config.director.addresses.clone();
    let (spec, generation) = {
        let e = lock(&engine);
        (steering_spec(&e, &interfaces, &local), e.generation())
    };
    if let Ok(stale) = rvs_dataplane::steer::remove_stale()
        && !stale.is_empty()
    {
        info!(tables = ?stale, "removed steering tables of dead rvsd processes");
    }
    let steering = Steering::install(spec.clone()).context("installing nftables steering")?;
    let pipeline_config = PipelineConfig {
        own_addrs: local.clone(),
        source_v4: local.iter().find_map(|a| match a {
            IpAddr::V4(v) => Some(*v),
            IpAddr::V6(_) => None,
        }),
        source_v6: local.iter().find_map(|a| match a {
            IpAddr::V6(v) => Some(*v),
            IpAddr::V4(_) => None,
        }),
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::new(engine.clone(), pipeline_config);
    info!(interfaces = ?interfaces, services = spec.services.len(), "data plane started");
    let worker_stop = stop.clone();
    let worker_ifs = interfaces.clone();
    let worker = std::thread::Builder::new()
        .name("rvsd-dataplane".into())
        .spawn(move || {
            let state = Worker { io, nexthops, pipeline, steering, spec, generation, engine, clock, local };
            state.run(&worker_stop, &worker_ifs);
        })
        .context("spawning the data-plane worker")?;
    Ok(DataPlaneHandle { interfaces, stop, worker: Some(worker) })
}

struct Worker {
    io: AfPacketIo,
    nexthops: KernelNextHops,
    pipeline: Pipeline,
    steering: Steering,
    spec: SteeringSpec,
    generation: u64,
    engine: Arc<Mutex<Engine>>,
    clock: Clock,
    local: Vec<IpAddr>,
}

impl Worker {
    fn run(mut self, stop: &AtomicBool, interfaces: &[String]) {
        let mut rx = Batch::new(RX_BATCH);
        let mut tx = Batch::new(RX_BATCH * 2);
        let mut last_check = StdInstant::now();
        while !stop.load(Ordering::Relaxed) {
            match self.io.recv(&mut rx, RX_TIMEOUT) {
                Ok(0) => {}
                Ok(_) => {
                    tx.clear();
                    self.pipeline.process(&mut rx, &mut tx, &mut self.nexthops, self.clock.now());
                    if !tx.is_empty()
                        && let Err(e) = self.io.send(tx.frames())
                    {
                        warn!(error = %e, "transmit failed");
                    }
                }
                Err(e) => {
                    warn!(error = %e, "receive failed");
                    std::thread::sleep(RX_TIMEOUT);
                }
            }
            if last_check.elapsed() >= Duration::from_millis(100) {
                last_check = StdInstant::now();
                self.follow_config(interfaces);
            }
        }
        if let Err(e) = self.steering.remove() {
            warn!(error = %e, "removing the steering table");
        }
    }

    /// Re-derives the steering rules when the service table changed.
    fn follow_config(&mut self, interfaces: &[String]) {
        let (generation, spec) = {
            let e = lock(&self.engine);
            if e.generation() == self.generation {
                return;
            }
            (e.generation(), steering_spec(&e, interfaces, &self.local))
        };
        self.generation = generation;
        if spec != self.spec {
            match self.steering.update(spec.clone()) {
                Ok(()) => {
                    info!(
                        services = spec.services.len(),
                        nat_real_servers = spec.nat_real_servers.len(),
                        "steering updated"
                    );
                    self.spec = spec;
                }
                Err(e) => warn!(error = %e, "updating the steering rules failed; keeping the old ones"),
            }
        }
    }
}
