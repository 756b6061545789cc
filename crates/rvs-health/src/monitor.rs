//! The monitor: one scheduler thread that starts check rounds when they are due, a bounded
//! pool of workers (`pool.rs`) that runs the checks, and hard timeouts so a hanging check never
//! holds up the others. Each round runs every check of one (service, real server) in parallel;
//! the round passes when all pass. Round outcomes feed the pure [`HealthState`]; its transitions
//! go out as [`HealthEvent`]s on an mpsc channel.
//!
//! Wiring in a daemon: build [`TargetSpec`]s from the configuration with
//! [`TargetSpec::from_config`], call [`Monitor::start`] with a `Sender<HealthEvent>`, and feed
//! the receiver to one [`crate::Policy`] per service. [`MonitorHandle::probe_now`] lets a
//! passive suspicion trigger an immediate round.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rvs_api::ServiceId;

use crate::check::{Check, CheckOutcome, Target};
use crate::config::{ConfigError, HealthConfig};
use crate::pool::Pool;
use crate::state::{HealthState, RoundOutcome, Timing, Transition};
use crate::timing::{self, SplitMix};
use crate::{HealthEvent, HealthEventKind};

/// What to monitor: one real server of one service, its timing and its checks.
#[derive(Debug)]
pub struct TargetSpec {
    /// Service and real server.
    pub target: Target,
    /// Timing.
    pub timing: Timing,
    /// The checks (all must pass). An empty list always passes.
    pub checks: Vec<Check>,
}

impl TargetSpec {
    /// Builds a spec from configuration.
    pub fn from_config(service: ServiceId, real: SocketAddr, config: &HealthConfig) -> Result<Self, ConfigError> {
        Ok(TargetSpec {
            target: Target { service, real },
            timing: config.timing()?,
            checks: config.checks.iter().map(Check::from_config).collect::<Result<_, _>>()?,
        })
    }
}

/// Monitor settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorOptions {
    /// Worker threads running checks. Default 8.
    pub workers: usize,
    /// Most threads in all, counting workers abandoned on hung checks. Default 32.
    pub max_threads: usize,
    /// Extra time after a check's timeout before the monitor gives up on it. Default 250 ms.
    pub hard_grace: Duration,
    /// Seed of the random spread (None: from the clock).
    pub seed: Option<u64>,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions { workers: 8, max_threads: 32, hard_grace: Duration::from_millis(250), seed: None }
    }
}

/// Health of one target, as [`MonitorHandle::status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    /// The target.
    pub target: Target,
    /// Whether it is up.
    pub up: bool,
    /// Last failure reason (empty if none).
    pub last_reason: String,
    /// Dynamic weight, if reported.
    pub dynamic_weight: Option<u32>,
}

enum Msg {
    Done { slot: usize, round: u64, index: usize, outcome: CheckOutcome },
    Probe { service: ServiceId, real: SocketAddr },
    Status(Sender<Vec<TargetStatus>>),
    Stop,
}

/// Starts monitors.
pub struct Monitor;

/// Controls a running monitor; dropping it stops the monitor.
pub struct MonitorHandle {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts the scheduler thread and worker pool for `targets`; events go to `events`.
    pub fn start(
        targets: Vec<TargetSpec>,
        options: MonitorOptions,
        events: Sender<HealthEvent>,
    ) -> std::io::Result<MonitorHandle> {
        let (tx, rx) = mpsc::channel();
        let worker_tx = tx.clone();
        let thread = thread::Builder::new().name("rvs-health-scheduler".into()).spawn(move || {
            let mut s = Scheduler::new(targets, options, worker_tx, events);
            s.run(&rx);
        })?;
        Ok(MonitorHandle { tx, thread: Some(thread) })
    }
}

impl MonitorHandle {
    /// Runs a round for this real server now (if none is running), e.g. on a passive suspicion.
    pub fn probe_now(&self, service: ServiceId, real: SocketAddr) {
        let _ = self.tx.send(Msg::Probe { service, real });
    }

    /// The health of every target (None if the monitor is gone).
    pub fn status(&self) -> Option<Vec<TargetStatus>> {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Msg::Status(tx)).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// Stops the monitor and waits for the scheduler thread (not for hung checks).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Pending {
    job: u64,
    submitted: Instant,
    timeout: Duration,
}

struct Round {
    id: u64,
    started: Instant,
    results: Vec<Option<CheckOutcome>>,
    pending: Vec<Option<Pending>>,
}

struct Slot {
    target: Target,
    checks: Vec<Arc<Check>>,
    state: HealthState,
    next_due: Instant,
    round: Option<Round>,
}

struct Scheduler {
    slots: Vec<Slot>,
    pool: Pool,
    options: MonitorOptions,
    tx: Sender<Msg>,
    events: Sender<HealthEvent>,
    rng: SplitMix,
    next_id: u64,
}

impl Scheduler {
    fn new(targets: Vec<TargetSpec>, options: MonitorOptions, tx: Sender<Msg>, events: Sender<HealthEvent>) -> Self {
        let mut rng = options.seed.map_or_else(SplitMix::from_entropy, SplitMix::new);
        let now = Instant::now();
        let count = targets.len();
        let slots = targets
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Slot {
                target: spec.target,
                checks: spec.checks.into_iter().map(Arc::new).collect(),
                state: HealthState::new(spec.timing),
                next_due: now + timing::first_delay(&spec.timing, i, count, &mut rng),
                round: None,
            })
            .collect();
        Scheduler { slots, pool: Pool::new(options.workers, options.max_threads), options, tx, events, rng, next_id: 1 }
    }

    /// Starts due rounds and expires overdue checks; returns when the next scan is needed.
    fn scan(&mut self, now: Instant) -> Instant {
        let mut wake = now + Duration::from_secs(3600);
        for i in 0..self.slots.len() {
            self.start_if_due(i, now);
            if let Some(t) = self.expire(i, now) {
                wake = wake.min(t);
            }
            if let Some(slot) = self.slots.get(i)
                && slot.round.is_none()
            {
                wake = wake.min(slot.next_due);
            }
        }
        wake
    }

    fn run(&mut self, rx: &mpsc::Receiver<Msg>) {
        // Full scans only when something is due; a message only touches its own slot.
        let mut wake = Instant::now();
        loop {
            if Instant::now() >= wake {
                wake = self.scan(Instant::now());
            }
            let msg = match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match msg {
                Msg::Done { slot, round, index, outcome } => {
                    if let Some(due) = self.record(slot, round, index, outcome) {
                        wake = wake.min(due);
                    }
                }
                Msg::Probe { service, real } => {
                    let now = Instant::now();
                    for s in &mut self.slots {
                        if s.target.service == service && s.target.real == real && s.round.is_none() {
                            s.next_due = now;
                            wake = now;
                        }
                    }
                }
                Msg::Status(reply) => {
                    let status = self
                        .slots
                        .iter()
                        .map(|s| TargetStatus {
                            target: s.target,
                            up: s.state.is_up(),
                            last_reason: s.state.last_reason().to_string(),
                            dynamic_weight: s.state.dynamic_weight(),
                        })
                        .collect();
                    let _ = reply.send(status);
                }
                Msg::Stop => return,
            }
        }
    }

    fn start_if_due(&mut self, i: usize, now: Instant) {
        let Some(slot) = self.slots.get_mut(i) else { return };
        if slot.round.is_some() || slot.next_due > now {
            return;
        }
        let round_id = self.next_id;
        self.next_id += 1;
        let mut pending = Vec::with_capacity(slot.checks.len());
        for (index, check) in slot.checks.iter().enumerate() {
            let job = self.next_id;
            self.next_id += 1;
            let timeout = timing::clamp(check.timeout().unwrap_or(slot.state.timing().timeout));
            let check = Arc::clone(check);
            let target = slot.target;
            let tx = self.tx.clone();
            self.pool.submit(
                job,
                Box::new(move || {
                    // The check's own deadline counts from when a worker picks it up.
                    let deadline = Instant::now() + timeout;
                    let outcome = catch_unwind(AssertUnwindSafe(|| check.run(&target, deadline)))
                        .unwrap_or_else(|_| CheckOutcome::fail("check panicked"));
                    let _ = tx.send(Msg::Done { slot: i, round: round_id, index, outcome });
                }),
            );
            pending.push(Some(Pending { job, submitted: now, timeout }));
        }
        slot.round = Some(Round { id: round_id, started: now, results: vec![None; slot.checks.len()], pending });
        if slot.checks.is_empty() {
            self.finish(i, now);
        }
    }

    /// Gives up on checks past their hard deadline; returns the earliest deadline still ahead.
    fn expire(&mut self, i: usize, now: Instant) -> Option<Instant> {
        let grace = timing::clamp(self.options.hard_grace);
        let slot = self.slots.get_mut(i)?;
        let round = slot.round.as_mut()?;
        let mut next: Option<Instant> = None;
        let mut expired = false;
        for (index, p) in round.pending.iter_mut().enumerate() {
            let Some(job) = p else { continue };
            // Running: timeout + grace from its start. Still queued (pool saturated by hung
            // checks): twice that from submission.
            let limit = job.timeout + grace;
            let (deadline, why, recheck) = match self.pool.started_at(job.job) {
                Some(started) => (started + limit, "check did not return within its hard time limit", started + limit),
                // If it starts now, its hard deadline is `now + limit` at the earliest.
                None => (job.submitted + limit * 2, "check not started: all workers busy", now + limit),
            };
            if deadline <= now {
                self.pool.give_up(job.job);
                if let Some(r) = round.results.get_mut(index) {
                    *r = Some(CheckOutcome::fail(why));
                }
                *p = None;
                expired = true;
            } else {
                let at = deadline.min(recheck);
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        if expired && round.pending.iter().all(Option::is_none) {
            self.finish(i, now);
            return None;
        }
        next
    }

    /// Records a check result; returns the slot's next due time if this completed its round.
    fn record(&mut self, i: usize, round_id: u64, index: usize, outcome: CheckOutcome) -> Option<Instant> {
        let slot = self.slots.get_mut(i)?;
        let round = slot.round.as_mut()?;
        if round.id != round_id || round.pending.get(index).is_none_or(Option::is_none) {
            return None; // late result of a round or check already given up on
        }
        if let Some(p) = round.pending.get_mut(index) {
            *p = None;
        }
        if let Some(r) = round.results.get_mut(index) {
            *r = Some(outcome);
        }
        if round.pending.iter().all(Option::is_none) {
            self.finish(i, Instant::now());
            return self.slots.get(i).map(|s| s.next_due);
        }
        None
    }

    fn finish(&mut self, i: usize, now: Instant) {
        let Some(slot) = self.slots.get_mut(i) else { return };
        let Some(round) = slot.round.take() else { return };
        let mut weight: Option<u32> = None;
        let mut failure: Option<String> = None;
        for (check, result) in slot.checks.iter().zip(&round.results) {
            match result {
                Some(CheckOutcome::Pass { weight: Some(w) }) => weight = Some(weight.map_or(*w, |x| x.min(*w))),
                Some(CheckOutcome::Pass { weight: None }) => {}
                Some(CheckOutcome::Fail { reason }) => {
                    failure.get_or_insert_with(|| format!("{}: {reason}", check.name()));
                }
                None => {
                    failure.get_or_insert_with(|| format!("{}: no result", check.name()));
                }
            }
        }
        let outcome = match failure {
            Some(reason) => RoundOutcome::Fail { reason },
            None => RoundOutcome::Pass { weight },
        };
        for t in slot.state.record(now, outcome) {
            let (kind, reason) = match t {
                Transition::Up => (HealthEventKind::Up, "checks pass".to_string()),
                Transition::Down(reason) => (HealthEventKind::Down, reason),
                Transition::Weight(w) => (HealthEventKind::Weight(w), format!("dynamic weight {w}")),
            };
            let _ =
                self.events.send(HealthEvent { service: slot.target.service, real: slot.target.real, kind, reason });
        }
        let delay = timing::next_delay(slot.state.timing(), slot.state.in_doubt(), &mut self.rng);
        slot.next_due = (round.started + delay).max(now);
    }
}
