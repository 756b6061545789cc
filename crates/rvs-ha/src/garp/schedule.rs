//! When to send address announcements, as a pure planner over injected time. keepalived's
//! schedule: on becoming master send `repeat` rounds at once, then `repeat` more after `delay`
//! (`garp_master_delay`, `garp_master_repeat`; `vrrp_min_garp` = a single round only); every
//! `refresh` repeat `refresh_repeat` rounds (`garp_master_refresh`, 0 = off); after seeing a
//! lower-priority advert as master, the same pattern with the `lower_prio_*` values. Rounds of
//! one burst are spaced by `interval` (`vrrp_garp_interval`, 0 = back to back). A round is one
//! gratuitous ARP per IPv4 address and one unsolicited NA per IPv6 address.

use std::collections::VecDeque;
use std::time::Duration;

use rvs_core::Instant;

/// Bursts are capped at this many rounds whatever the configuration says.
pub const MAX_ROUNDS_PER_BURST: u32 = 255;
/// At most this many rounds are pending at once (a flood of lower-priority adverts cannot grow the plan).
pub const MAX_PENDING_ROUNDS: usize = 1024;

/// Announcement timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpConfig {
    /// Delay of the second burst after becoming master (keepalived default 5 s; 0 = none).
    pub delay: Duration,
    /// Rounds per burst after becoming master (default 5).
    pub repeat: u32,
    /// Delay of the second burst after a lower-priority advert (default = `delay`).
    pub lower_prio_delay: Duration,
    /// Rounds per burst after a lower-priority advert (default = `repeat`).
    pub lower_prio_repeat: u32,
    /// Period of refresh bursts while master (default 0 = off).
    pub refresh: Duration,
    /// Rounds per refresh burst (default 1).
    pub refresh_repeat: u32,
    /// Spacing between rounds of a burst (default 0).
    pub interval: Duration,
    /// Send a single round on becoming master and nothing after (keepalived `vrrp_min_garp`).
    pub min_garp: bool,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            delay: Duration::from_secs(5),
            repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
            refresh: Duration::ZERO,
            refresh_repeat: 1,
            interval: Duration::ZERO,
            min_garp: false,
        }
    }
}

/// Pending announcement rounds of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpPlanner {
    cfg: GarpConfig,
    /// Due instants of single rounds, sorted.
    due: VecDeque<Instant>,
    refresh_at: Option<Instant>,
}

impl GarpPlanner {
    /// A planner with nothing pending.
    pub fn new(cfg: GarpConfig) -> GarpPlanner {
        GarpPlanner { cfg, due: VecDeque::new(), refresh_at: None }
    }

    /// The instance became master at `now`.
    pub fn become_master(&mut self, now: Instant) {
        self.due.clear();
        if self.cfg.min_garp {
            self.burst(now, 1);
            self.refresh_at = None;
            return;
        }
        self.burst(now, self.cfg.repeat);
        if !self.cfg.delay.is_zero() {
            self.burst(now + self.cfg.delay, self.cfg.repeat);
        }
        self.refresh_at = (!self.cfg.refresh.is_zero()).then(|| now + self.cfg.refresh);
    }

    /// As master, a lower-priority advert arrived at `now`.
    pub fn lower_priority_seen(&mut self, now: Instant) {
        self.burst(now, self.cfg.lower_prio_repeat);
        if !self.cfg.lower_prio_delay.is_zero() {
            self.burst(now + self.cfg.lower_prio_delay, self.cfg.lower_prio_repeat);
        }
    }

    /// The instance stopped being master: nothing more is sent.
    pub fn leave_master(&mut self) {
        self.due.clear();
        self.refresh_at = None;
    }

    /// Number of rounds due at or before `now` (removed from the plan); schedules refreshes.
    pub fn poll(&mut self, now: Instant) -> u32 {
        // A late poll (or a clock jump) yields one refresh burst, not one per missed period.
        if self.refresh_at.is_some_and(|at| at <= now) {
            self.burst(now, self.cfg.refresh_repeat);
            self.refresh_at = Some(now + self.cfg.refresh);
        }
        let mut rounds = 0;
        while self.due.front().is_some_and(|at| *at <= now) {
            self.due.pop_front();
            rounds += 1;
        }
        rounds
    }

    /// When [`Self::poll`] next has something to do.
    pub fn next_due(&self) -> Option<Instant> {
        [self.due.front().copied(), self.refresh_at].into_iter().flatten().min()
    }

    fn burst(&mut self, start: Instant, rounds: u32) {
        let mut at = start;
        for _ in 0..rounds.min(MAX_ROUNDS_PER_BURST) {
            if self.due.len() >= MAX_PENDING_ROUNDS {
                break;
            }
            let pos = self.due.partition_point(|d| *d <= at);
            self.due.insert(pos, at);
            at = at + self.cfg.interval;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn keepalived_defaults_five_now_five_after_five_seconds() {
        let mut p = GarpPlanner::new(GarpConfig::default());
        p.become_master(ms(1000));
        assert_eq!(p.poll(ms(1000)), 5);
        assert_eq!(p.next_due(), Some(ms(6000)));
        assert_eq!(p.poll(ms(5999)), 0);
        assert_eq!(p.poll(ms(6000)), 5);
        assert_eq!(p.next_due(), None);
    }

    #[test]
    fn spacing_refresh_min_garp_and_leaving() {
        let cfg = GarpConfig {
            repeat: 3,
            delay: Duration::ZERO,
            interval: Duration::from_millis(10),
            refresh: Duration::from_secs(60),
            refresh_repeat: 2,
            ..GarpConfig::default()
        };
        let mut p = GarpPlanner::new(cfg);
        p.become_master(ms(0));
        assert_eq!((p.poll(ms(0)), p.poll(ms(19)), p.poll(ms(20))), (1, 1, 1));
        assert_eq!(p.next_due(), Some(ms(60_000)));
        assert_eq!(p.poll(ms(60_000)), 1); // refresh burst of 2, spaced 10 ms
        assert_eq!(p.poll(ms(60_010)), 1);
        assert_eq!(p.next_due(), Some(ms(120_000)));
        p.leave_master();
        assert_eq!(p.next_due(), None);
        let mut min = GarpPlanner::new(GarpConfig { min_garp: true, ..GarpConfig::default() });
        min.become_master(ms(0));
        assert_eq!(min.poll(ms(100_000)), 1);
        assert_eq!(min.next_due(), None);
    }

    #[test]
    fn lower_priority_bursts_use_their_own_values() {
        let cfg =
            GarpConfig { lower_prio_repeat: 2, lower_prio_delay: Duration::from_secs(1), ..GarpConfig::default() };
        let mut p = GarpPlanner::new(cfg);
        p.lower_priority_seen(ms(0));
        assert_eq!(p.poll(ms(0)), 2);
        assert_eq!(p.poll(ms(1000)), 2);
    }
}
