//! Probes behind the trackers: ping targets and scripts, each on its own thread, run every
//! `interval` with a hard `timeout`; `fall` failures in a row report it down and `rise`
//! successes in a row report it up again. Reports go to the instance thread over a channel.
//! (Interfaces are tracked by the instance thread itself: a sysfs read.)

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rvs_config::failover::{ProbeKind, TrackProbe};
use rvs_ha::vrrp::track::TrackerId;
use tracing::{info, warn};

/// How often a waiting probe thread looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(10);

/// Rise/fall debouncing of raw probe results. Starts up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debounce {
    up: bool,
    streak: u32,
    rise: u32,
    fall: u32,
}

impl Debounce {
    /// Starts in the up state.
    pub fn new(rise: u32, fall: u32) -> Debounce {
        Debounce { up: true, streak: 0, rise: rise.max(1), fall: fall.max(1) }
    }

    /// Feeds one result; returns the new state when it changed.
    pub fn feed(&mut self, ok: bool) -> Option<bool> {
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak >= if ok { self.rise } else { self.fall } {
            self.up = ok;
            self.streak = 0;
            return Some(ok);
        }
        None
    }
}

/// Runs `program args` with a hard timeout; true if it exited with status 0 in time.
fn run_with_timeout(program: &str, args: &[String], timeout: Duration) -> bool {
    let child =
        Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let Ok(mut child) = child else { return false };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => return false,
        }
    }
}

/// One probe run.
fn probe_once(p: &TrackProbe) -> bool {
    match &p.kind {
        ProbeKind::Ping(target) => {
            let wait = format!("{:.3}", p.timeout.as_secs_f64().max(0.001));
            let args = ["-n", "-q", "-c", "1", "-W", &wait, &target.to_string()].map(String::from);
            run_with_timeout("ping", &args, p.timeout)
        }
        ProbeKind::Script(cmd) => run_with_timeout("sh", &["-c".to_string(), cmd.clone()], p.timeout),
    }
}

fn describe(p: &TrackProbe) -> String {
    match &p.kind {
        ProbeKind::Ping(t) => format!("ping {t}"),
        ProbeKind::Script(c) => format!("script `{c}'"),
    }
}

/// Running probe threads.
#[derive(Debug, Default)]
pub struct Probes {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Probes {
    /// Starts one thread per probe; each reports `(id, up)` changes on `tx`.
    pub fn start(instance: &str, probes: Vec<(TrackerId, TrackProbe)>, tx: &Sender<(TrackerId, bool)>) -> Probes {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (id, p) in probes {
            let (stop, tx, name) = (stop.clone(), tx.clone(), instance.to_string());
            let spawned = std::thread::Builder::new().name("rvsd-track".into()).spawn(move || {
                let mut state = Debounce::new(p.rise, p.fall);
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    if let Some(up) = state.feed(probe_once(&p)) {
                        info!(instance = %name, tracker = %describe(&p), up, "tracker changed");
                        if tx.send((id, up)).is_err() {
                            return;
                        }
                    }
                    let next = started + p.interval;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < next {
                        std::thread::sleep(STOP_POLL.min(next.saturating_duration_since(Instant::now())));
                    }
                }
            });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => warn!(instance, error = %e, "cannot start a tracker thread"),
            }
        }
        Probes { stop, threads }
    }

    /// Stops and joins the threads.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_and_rise_need_that_many_results_in_a_row() {
        let mut d = Debounce::new(2, 3);
        assert_eq!(d.feed(false), None);
        assert_eq!(d.feed(false), None);
        assert_eq!(d.feed(true), None, "a success resets the failure streak");
        assert_eq!(d.feed(false), None);
        assert_eq!(d.feed(false), None);
        assert_eq!(d.feed(false), Some(false), "third failure in a row");
        assert_eq!(d.feed(true), None);
        assert_eq!(d.feed(true), Some(true), "second success in a row");
    }
}
