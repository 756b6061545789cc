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
//! Firewall-mark services: AF_PACKET sees frames before nftables marks them, so while the
//! configuration has fwmark services the worker also binds NFQUEUE [`FWMARK_QUEUE`]
//! ([`rvs_dataplane::nfqueue::NfQueue`]) and the steering queues each service's marked packets
//! there (after the operator's marking at prerouting/mangle). The same worker serves both
//! sources: it waits on the rings and the queue together, runs AF_PACKET frames, then drains
//! the queue through the same pipeline and gives each queued packet its verdict (drop what rvs
//! forwarded, answered or dropped; accept what it passed). The queue is opened and closed as
//! fwmark services come and go.
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
use rvs_core::engine::{DestEvent, Engine};
use rvs_core::service::{Protocol, ServiceKey};
use rvs_dataplane::afpacket::AfPacketIo;
use rvs_dataplane::io::{Batch, PacketIo};
use rvs_dataplane::kernel_nexthops::KernelNextHops;
use rvs_dataplane::nfqueue::NfQueue;
use rvs_dataplane::pipeline::{Fate, Pipeline, PipelineConfig};
use rvs_dataplane::steer::{SteeredMark, SteeredRealServer, SteeredService, Steering, SteeringSpec};
use rvs_health::passive::Observation;
use std::net::SocketAddr;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::control::lock;

/// Where the worker reports what real servers do (passive health checking), once health
/// checking has started.
pub type PassiveHook = Arc<std::sync::OnceLock<Arc<crate::health::HealthPlane>>>;

/// Frames per receive batch.
const RX_BATCH: usize = 64;
/// How long one receive call waits for traffic (also how often the worker checks for stop
/// and for configuration changes when idle).
const RX_TIMEOUT: Duration = Duration::from_millis(20);
/// The NFQUEUE number rvsd binds for firewall-mark services (one rvsd per network namespace;
/// another program bound to it makes the fwmark services fail to start, logged).
pub const FWMARK_QUEUE: u16 = 7100;
/// Queue batches handled per turn of the worker, so AF_PACKET traffic is not starved.
const QUEUE_ROUNDS: usize = 4;

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
    let mut spec = SteeringSpec {
        interfaces: interfaces.to_vec(),
        local_addrs: local.to_vec(),
        queue: FWMARK_QUEUE,
        ..Default::default()
    };
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
            ServiceKey::Fwmark { family, mark } => {
                spec.marks.push(SteeredMark { family, mark });
                // A fwmark service covers every protocol: NAT replies of each are rvs's.
                for (_, d) in engine.dests_of(id) {
                    if d.config.method == ForwardMethod::Masquerade {
                        for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
                            spec.nat_real_servers.push(SteeredRealServer {
                                protocol,
                                addr: d.config.addr,
                                port: d.config.port,
                            });
                        }
                    }
                }
            }
        }
    }
    spec.marks.sort();
    spec.marks.dedup();
    spec.services.sort();
    spec.services.dedup();
    spec.nat_real_servers.sort();
    spec.nat_real_servers.dedup();
    spec
}

/// Starts the packet worker on the configured interfaces, sharing `engine` with the control
/// plane.
pub fn start(
    engine: Arc<Mutex<Engine>>,
    config: &rvs_config::Config,
    clock: Clock,
    published: Arc<Mutex<Vec<(String, u64)>>>,
    passive: PassiveHook,
) -> anyhow::Result<DataPlaneHandle> {
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
    let queue = if spec.marks.is_empty() {
        None
    } else {
        Some(NfQueue::open(FWMARK_QUEUE).context("binding the NFQUEUE of the firewall-mark services")?)
    };
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
    info!(interfaces = ?interfaces, services = spec.services.len(), marks = spec.marks.len(), "data plane started");
    let worker_stop = stop.clone();
    let worker_ifs = interfaces.clone();
    let worker = std::thread::Builder::new()
        .name("rvsd-dataplane".into())
        .spawn(move || {
            let mut state = Worker {
                io,
                queue: None,
                nexthops,
                pipeline,
                steering,
                spec,
                generation,
                engine,
                clock,
                local,
                published,
                passive,
                events: Vec::new(),
            };
            state.set_queue(queue);
            state.run(&worker_stop, &worker_ifs);
        })
        .context("spawning the data-plane worker")?;
    Ok(DataPlaneHandle { interfaces, stop, worker: Some(worker) })
}

struct Worker {
    io: AfPacketIo,
    /// The NFQUEUE source, while there are fwmark services.
    queue: Option<NfQueue>,
    nexthops: KernelNextHops,
    pipeline: Pipeline,
    steering: Steering,
    spec: SteeringSpec,
    generation: u64,
    engine: Arc<Mutex<Engine>>,
    clock: Clock,
    local: Vec<IpAddr>,
    /// Where the pipeline's counters are published for `Status`.
    published: Arc<Mutex<Vec<(String, u64)>>>,
    /// Passive health checking, once it runs.
    passive: PassiveHook,
    /// Scratch for the engine's real-server events.
    events: Vec<(rvs_core::DestId, DestEvent)>,
}

impl Worker {
    fn run(mut self, stop: &AtomicBool, interfaces: &[String]) {
        let mut rx = Batch::new(RX_BATCH);
        let mut tx = Batch::new(RX_BATCH * 2);
        let mut fates = Vec::with_capacity(RX_BATCH);
        let mut last_check = StdInstant::now();
        while !stop.load(Ordering::Relaxed) {
            let seen = self.pipeline.counters().rx;
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
            self.drain_queue(&mut rx, &mut tx, &mut fates);
            // Real-server events only come from processed frames: idle turns skip the lock.
            if self.pipeline.counters().rx != seen {
                self.report_passive();
            }
            if last_check.elapsed() >= Duration::from_millis(100) {
                last_check = StdInstant::now();
                self.follow_config(interfaces);
                *lock(&self.published) = self.pipeline.counters().named();
            }
        }
        // Rules first (with `bypass`, a queue nobody listens to lets packets through), then
        // the queue.
        self.io.set_wake_fd(None);
        let Worker { steering, queue, .. } = self;
        if let Err(e) = steering.remove() {
            warn!(error = %e, "removing the steering table");
        }
        drop(queue);
    }

    /// Runs what waits in the NFQUEUE (at most [`QUEUE_ROUNDS`] batches) through the
    /// pipeline, transmits, and gives every queued packet its verdict.
    fn drain_queue(&mut self, rx: &mut Batch, tx: &mut Batch, fates: &mut Vec<Fate>) {
        let Some(queue) = self.queue.as_mut() else { return };
        for _ in 0..QUEUE_ROUNDS {
            let received = match queue.recv(rx, Duration::ZERO) {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "NFQUEUE receive failed");
                    0
                }
            };
            if received == 0 && queue.unanswered() == 0 {
                return;
            }
            fates.clear();
            if received > 0 {
                tx.clear();
                self.pipeline.process_with_fates(rx, tx, &mut self.nexthops, self.clock.now(), fates);
                if !tx.is_empty()
                    && let Err(e) = self.io.send(tx.frames())
                {
                    warn!(error = %e, "transmit failed");
                }
            }
            if let Err(e) = queue.send_verdicts(fates) {
                warn!(error = %e, "NFQUEUE verdicts failed");
            }
            if received == 0 {
                return;
            }
        }
    }

    /// Replaces the NFQUEUE source (`None` closes it); AF_PACKET's wait also wakes for it.
    fn set_queue(&mut self, queue: Option<NfQueue>) {
        // The wake descriptor goes before the socket it names is closed.
        self.io.set_wake_fd(None);
        self.queue = queue;
        if let Some(q) = &self.queue {
            self.io.set_wake_fd(Some(q.fd()));
        }
    }

    /// Hands what the engine saw real servers do to passive health checking.
    fn report_passive(&mut self) {
        let Some(plane) = self.passive.get() else { return };
        let mut resolved = Vec::new();
        {
            let mut e = lock(&self.engine);
            e.drain_dest_events(&mut self.events);
            for (dest, event) in self.events.drain(..) {
                let Some(d) = e.dest(dest) else { continue };
                let Some(svc) = e.service(rvs_core::engine::ServiceId(d.service)).map(|s| s.config.key) else {
                    continue;
                };
                let observation = match event {
                    DestEvent::SynForwarded => Observation::SynForwarded,
                    DestEvent::Established => Observation::Established,
                    DestEvent::RstToSyn => Observation::RstToSyn,
                    DestEvent::UdpReply => Observation::UdpReply,
                };
                resolved.push((
                    rvs_api::ServiceId::from(svc),
                    SocketAddr::new(d.config.addr, d.config.port),
                    observation,
                ));
            }
        }
        for (service, real, observation) in resolved {
            plane.observe(service, real, observation);
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
        if !spec.marks.is_empty() && self.queue.is_none() {
            // Bound before the rules queue to it (with `bypass`, unbound means the kernel's).
            match NfQueue::open(FWMARK_QUEUE) {
                Ok(q) => {
                    info!(queue = FWMARK_QUEUE, "NFQUEUE bound for firewall-mark services");
                    self.set_queue(Some(q));
                }
                Err(e) => warn!(error = %e, "binding the NFQUEUE failed; firewall-mark services get no traffic"),
            }
        }
        if spec != self.spec {
            match self.steering.update(spec.clone()) {
                Ok(()) => {
                    info!(
                        services = spec.services.len(),
                        nat_real_servers = spec.nat_real_servers.len(),
                        marks = spec.marks.len(),
                        "steering updated"
                    );
                    self.spec = spec;
                }
                Err(e) => warn!(error = %e, "updating the steering rules failed; keeping the old ones"),
            }
        }
        if self.spec.marks.is_empty() && self.queue.is_some() {
            self.set_queue(None);
            info!("NFQUEUE released: no firewall-mark service left");
        }
    }
}
