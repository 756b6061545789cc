//! The once-a-second work: `engine.tick(now, available pages, rng)` (connection expiry,
//! rate estimators, DoS defence levels, scheduler housekeeping), with defence level changes
//! logged.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rvs_core::SplitMix64;
use rvs_core::engine::Engine;
use tracing::{debug, warn};

use crate::clock::Clock;
use crate::control::{lock, log_defense};
use crate::meminfo;

/// Interval between ticks.
pub const TICK: Duration = Duration::from_secs(1);

/// A stop request other threads can wait on with a timeout.
#[derive(Debug, Default)]
pub struct StopFlag {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl StopFlag {
    /// Asks the waiters to stop.
    pub fn stop(&self) {
        *lock(&self.stopped) = true;
        self.changed.notify_all();
    }

    /// Waits up to `timeout`; true if a stop was asked.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut stopped = lock(&self.stopped);
        while !*stopped {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            stopped = match self.changed.wait_timeout(stopped, left) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

/// Starts the housekeeping thread; it runs until `stop` is set.
pub fn spawn(
    engine: Arc<Mutex<Engine>>,
    clock: Clock,
    seed: u64,
    stop: Arc<StopFlag>,
) -> anyhow::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rvsd-housekeeping".into())
        .spawn(move || run(&engine, clock, seed, &stop))
        .context("starting the housekeeping thread")
}

fn run(engine: &Mutex<Engine>, clock: Clock, seed: u64, stop: &StopFlag) {
    let mut rng = SplitMix64::new(seed);
    let mut warned_meminfo = false;
    let mut next = std::time::Instant::now() + TICK;
    loop {
        if stop.wait(next.saturating_duration_since(std::time::Instant::now())) {
            break;
        }
        next += TICK;
        let pages = meminfo::available_pages().unwrap_or_else(|| {
            if !warned_meminfo {
                warn!("cannot read MemAvailable from /proc/meminfo; DoS defences see memory as plentiful");
                warned_meminfo = true;
            }
            u64::MAX
        });
        let update = lock(engine).tick(clock.now(), pages, &mut rng);
        log_defense(&update);
        // After a long stall (suspend, overload) do not tick in a burst.
        let now = std::time::Instant::now();
        if next + TICK < now {
            next = now + TICK;
        }
    }
    debug!("housekeeping stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_wakes_a_waiter() {
        let flag = Arc::new(StopFlag::default());
        assert!(!flag.wait(Duration::ZERO));
        let f2 = flag.clone();
        let waiter = std::thread::spawn(move || f2.wait(Duration::from_secs(3600)));
        flag.stop();
        assert!(waiter.join().unwrap());
    }
}
