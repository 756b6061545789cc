//! The pure health state machine of one (service, real server): it is fed the outcome of each
//! check round with the time it finished, and says when the server goes up, down or changes its
//! dynamic weight. No clock, no threads: tests drive it with made-up instants.
//!
//! Rules:
//! - Up → Down after `fall` consecutive failed rounds (a success resets the count).
//! - Down → Up after `rise` consecutive successful rounds *and* once the server has been healthy for
//!   at least `reentry` since the first success of that streak (a failure resets both).
//! - Alpha start ([`StartState::Down`]): the server starts down and goes up on its first success,
//!   without waiting for `rise` or `reentry` (keepalived's `alpha`).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where a server starts before its first check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartState {
    /// Start healthy (ldirectord, keepalived without `alpha`).
    #[default]
    Up,
    /// Start unhealthy until the first success (keepalived `alpha`).
    Down,
}

/// Timing of one (service, real server) monitor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Time between the starts of two check rounds.
    pub interval: Duration,
    /// Time between rounds while the state is in doubt (a failure while up, a success while down).
    pub retry_interval: Duration,
    /// Per-check timeout (a check may override it).
    pub timeout: Duration,
    /// Consecutive failed rounds before the server is declared down (≥ 1).
    pub fall: u32,
    /// Consecutive successful rounds before the server is declared up again (≥ 1).
    pub rise: u32,
    /// Minimum time a down server must stay healthy before it re-enters.
    pub reentry: Duration,
    /// Delay the first round by a random time in `[0, interval]`.
    pub warmup: bool,
    /// Initial state.
    pub start: StartState,
    /// Random spread of each interval, as a fraction in `[0, 0.5]` (0.1 = ±10 %).
    pub jitter: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            interval: Duration::from_secs(2),
            retry_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            fall: 2,
            rise: 2,
            reentry: Duration::ZERO,
            warmup: true,
            start: StartState::Up,
            jitter: 0.1,
        }
    }
}

/// The outcome of one round (all checks of the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundOutcome {
    /// Every check passed; `weight` is the dynamic weight asked for, if any check is dynamic.
    Pass {
        /// Dynamic weight (lowest of the dynamic checks).
        weight: Option<u32>,
    },
    /// At least one check failed.
    Fail {
        /// The first failing check's reason.
        reason: String,
    },
}

/// A change the state machine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The server is now up.
    Up,
    /// The server is now down, with the reason of the failure that tipped it.
    Down(String),
    /// The dynamic weight changed (only reported while up).
    Weight(u32),
}

/// The health state of one (service, real server).
#[derive(Debug, Clone)]
pub struct HealthState {
    timing: Timing,
    up: bool,
    /// True until the first success when started down (alpha).
    initial: bool,
    fail_streak: u32,
    ok_streak: u32,
    healthy_since: Option<Instant>,
    weight: Option<u32>,
    last_reason: String,
}

impl HealthState {
    /// A new state with the given timing.
    pub fn new(timing: Timing) -> Self {
        let up = timing.start == StartState::Up;
        HealthState {
            timing,
            up,
            initial: !up,
            fail_streak: 0,
            ok_streak: 0,
            healthy_since: None,
            weight: None,
            last_reason: if up { String::new() } else { "not checked yet".into() },
        }
    }

    /// Whether the server is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The last dynamic weight reported while up, if any.
    pub fn dynamic_weight(&self) -> Option<u32> {
        self.weight
    }

    /// The reason of the last failure (empty if none yet).
    pub fn last_reason(&self) -> &str {
        &self.last_reason
    }

    /// The timing in force.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// Whether the state is in doubt (a streak that may flip it is running), so the next round
    /// should come after `retry_interval` rather than `interval`.
    pub fn in_doubt(&self) -> bool {
        if self.up { self.fail_streak > 0 } else { self.ok_streak > 0 }
    }

    /// Feeds the outcome of a round that finished at `now`; returns the changes, in order.
    pub fn record(&mut self, now: Instant, outcome: RoundOutcome) -> Vec<Transition> {
        let mut changes = Vec::new();
        match outcome {
            RoundOutcome::Fail { reason } => {
                self.ok_streak = 0;
                self.healthy_since = None;
                self.last_reason = reason.clone();
                if self.up {
                    self.fail_streak = self.fail_streak.saturating_add(1);
                    if self.fail_streak >= self.timing.fall.max(1) {
                        self.up = false;
                        self.fail_streak = 0;
                        self.weight = None;
                        changes.push(Transition::Down(reason));
                    }
                }
            }
            RoundOutcome::Pass { weight } => {
                self.fail_streak = 0;
                if self.up {
                    self.push_weight(weight, &mut changes);
                    return changes;
                }
                self.ok_streak = self.ok_streak.saturating_add(1);
                let since = *self.healthy_since.get_or_insert(now);
                let long_enough = now.saturating_duration_since(since) >= self.timing.reentry;
                if self.initial || (self.ok_streak >= self.timing.rise.max(1) && long_enough) {
                    self.up = true;
                    self.initial = false;
                    self.ok_streak = 0;
                    self.healthy_since = None;
                    changes.push(Transition::Up);
                    self.push_weight(weight, &mut changes);
                }
            }
        }
        changes
    }

    fn push_weight(&mut self, weight: Option<u32>, changes: &mut Vec<Transition>) {
        if let Some(w) = weight
            && self.weight != Some(w)
        {
            self.weight = Some(w);
            changes.push(Transition::Weight(w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(fall: u32, rise: u32, reentry_s: u64) -> Timing {
        Timing { fall, rise, reentry: Duration::from_secs(reentry_s), ..Timing::default() }
    }
    fn fail() -> RoundOutcome {
        RoundOutcome::Fail { reason: "refused".into() }
    }
    fn pass() -> RoundOutcome {
        RoundOutcome::Pass { weight: None }
    }

    #[test]
    fn falls_after_fall_consecutive_failures_and_success_resets() {
        let t0 = Instant::now();
        let mut s = HealthState::new(timing(3, 1, 0));
        // F F S F F: never three in a row, stays up.
        for (i, o) in [fail(), fail(), pass(), fail(), fail()].into_iter().enumerate() {
            assert!(s.record(t0 + Duration::from_secs(i as u64), o).is_empty());
        }
        assert!(s.is_up());
        // Third consecutive failure tips it, with the failure's reason.
        assert_eq!(s.record(t0 + Duration::from_secs(5), fail()), vec![Transition::Down("refused".into())]);
        assert!(!s.is_up());
        // Further failures report nothing.
        assert!(s.record(t0 + Duration::from_secs(6), fail()).is_empty());
    }

    #[test]
    fn rises_after_rise_consecutive_successes() {
        let t0 = Instant::now();
        let mut s = HealthState::new(timing(1, 3, 0));
        assert_eq!(s.record(t0, fail()), vec![Transition::Down("refused".into())]);
        // S S F S S S: the failure restarts the count, up on the 3rd success after it.
        let seq = [pass(), pass(), fail(), pass(), pass()];
        for (i, o) in seq.into_iter().enumerate() {
            assert!(s.record(t0 + Duration::from_secs(1 + i as u64), o).is_empty());
        }
        assert_eq!(s.record(t0 + Duration::from_secs(6), pass()), vec![Transition::Up]);
    }

    #[test]
    fn reentry_requires_staying_healthy_long_enough() {
        let t0 = Instant::now();
        let mut s = HealthState::new(timing(1, 1, 10));
        s.record(t0, fail());
        // First success at t=1 starts the healthy period; up only at ≥ t=11.
        assert!(s.record(t0 + Duration::from_secs(1), pass()).is_empty());
        assert!(s.record(t0 + Duration::from_secs(6), pass()).is_empty());
        // A failure restarts the period.
        assert!(s.record(t0 + Duration::from_secs(7), fail()).is_empty());
        assert!(s.record(t0 + Duration::from_secs(8), pass()).is_empty());
        assert!(s.record(t0 + Duration::from_secs(17), pass()).is_empty());
        assert_eq!(s.record(t0 + Duration::from_secs(18), pass()), vec![Transition::Up]);
    }

    #[test]
    fn alpha_starts_down_and_rises_on_first_success() {
        let t0 = Instant::now();
        let mut s = HealthState::new(Timing { start: StartState::Down, ..timing(2, 5, 100) });
        assert!(!s.is_up());
        assert!(s.record(t0, fail()).is_empty());
        assert_eq!(s.record(t0 + Duration::from_secs(1), pass()), vec![Transition::Up]);
        // From then on the normal rules hold: it takes rise = 5 and reentry = 100 s to come back.
        s.record(t0 + Duration::from_secs(2), fail());
        assert_eq!(s.record(t0 + Duration::from_secs(3), fail()), vec![Transition::Down("refused".into())]);
        assert!(s.record(t0 + Duration::from_secs(4), pass()).is_empty());
    }

    #[test]
    fn dynamic_weight_reported_on_change_and_after_up() {
        let t0 = Instant::now();
        let mut s = HealthState::new(timing(1, 1, 0));
        let w = |w| RoundOutcome::Pass { weight: Some(w) };
        assert_eq!(s.record(t0, w(5)), vec![Transition::Weight(5)]);
        assert!(s.record(t0, w(5)).is_empty());
        assert_eq!(s.record(t0, w(0)), vec![Transition::Weight(0)]);
        s.record(t0, fail());
        assert_eq!(s.record(t0, w(0)), vec![Transition::Up, Transition::Weight(0)]);
    }

    #[test]
    fn doubt_follows_running_streaks() {
        let t0 = Instant::now();
        let mut s = HealthState::new(timing(2, 2, 0));
        assert!(!s.in_doubt());
        s.record(t0, fail());
        assert!(s.in_doubt());
        s.record(t0, fail());
        assert!(!s.in_doubt(), "down and no success yet");
        s.record(t0, pass());
        assert!(s.in_doubt());
    }
}
