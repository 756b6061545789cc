//! Traffic statistics: counters and the IPVS rate estimator.
//!
//! One type, [`Stats`], serves every level the kernel keeps statistics for: each virtual
//! service, each real server and the global totals (`/proc/net/ip_vs_stats`). The data path
//! bumps the counters ([`Stats::add_conn`], [`Stats::add_in`], [`Stats::add_out`]); a timer
//! calls [`Stats::estimate`] and listings read [`Stats::rates`].
//!
//! # The estimator (kernel `ip_vs_est.c`)
//!
//! Every 2 s the estimator takes the growth of each counter since the previous sample and
//! scales it: connections and packets by 2^9 (2^10 per second, over 2 s), bytes by 2^4 (2^5
//! per second, over 2 s). Each scaled rate feeds an exponentially weighted moving average
//! with weight 1/4, computed in signed integer arithmetic with an arithmetic shift:
//! `avg += (rate - avg) >> 2`, so a falling rate moves the average down by
//! `ceil((avg - rate) / 4)` and a rising one up by `floor((rate - avg) / 4)`. Listings show
//! `(avg + 0x1FF) >> 10` connections or packets per second and `(avg + 0xF) >> 5` bytes per
//! second, i.e. rounded to the nearest unit with an exact half rounding down.
//!
//! # Time
//!
//! The engine never reads a clock: [`Stats::estimate`] gets the current [`Instant`]. Samples
//! fall on a 2 s grid anchored when the estimator starts ([`Stats::new`], or the first
//! [`Stats::estimate`] call for a [`Stats::default`]). A call between grid points does
//! nothing; a call on or after one runs the samples that fell due.
//!
//! A caller that is late by several periods cannot know how the traffic was spread over
//! them. The estimator assumes it was spread evenly: the counter growth is divided among the
//! missed periods (the remainder going to the most recent ones) and one sample runs per
//! period, so a late caller sees the same rates as a punctual one for steady traffic. At most
//! [`MAX_CATCH_UP_SAMPLES`] samples run per call (the most recent periods); after a longer gap
//! the older periods are skipped, which changes the average by at most `(3/4)^16`, about 1 %,
//! of its old value. Either way the schedule stays on the original 2 s grid: the next sample
//! is due at the first grid point after `now`.

use std::time::Duration;

use crate::time::Instant;

/// The estimator's sampling period (the kernel's 2 s).
pub const ESTIMATOR_PERIOD: Duration = Duration::from_secs(2);

/// The most samples one [`Stats::estimate`] call runs for a late caller.
pub const MAX_CATCH_UP_SAMPLES: u64 = 16;

/// [`ESTIMATOR_PERIOD`] in the milliseconds of [`Instant`].
const PERIOD_MS: u64 = 2_000;

/// Monotonic traffic counters (`ipvsadm --stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets in (client -> real server).
    pub in_pkts: u64,
    /// Packets out (real server -> client, NAT only).
    pub out_pkts: u64,
    /// Bytes in.
    pub in_bytes: u64,
    /// Bytes out.
    pub out_bytes: u64,
}

impl Counters {
    /// The growth from `earlier` to `self`, counter by counter, modulo 2^64 like the kernel's
    /// unsigned subtraction.
    fn growth_since(&self, earlier: &Counters) -> Counters {
        Counters {
            conns: self.conns.wrapping_sub(earlier.conns),
            in_pkts: self.in_pkts.wrapping_sub(earlier.in_pkts),
            out_pkts: self.out_pkts.wrapping_sub(earlier.out_pkts),
            in_bytes: self.in_bytes.wrapping_sub(earlier.in_bytes),
            out_bytes: self.out_bytes.wrapping_sub(earlier.out_bytes),
        }
    }
}

/// Estimated rates (`ipvsadm --rate`), per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets in per second.
    pub in_pps: u64,
    /// Packets out per second.
    pub out_pps: u64,
    /// Bytes in per second.
    pub in_bps: u64,
    /// Bytes out per second.
    pub out_bps: u64,
}

/// The moving averages, scaled like the kernel's: cps/pps by 2^10, bps by 2^5.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ScaledAverages {
    cps: u64,
    in_pps: u64,
    out_pps: u64,
    in_bps: u64,
    out_bps: u64,
}

/// One EWMA step: `avg += (rate - avg) >> 2` in two's-complement 64-bit arithmetic, as the
/// kernel computes it with `s64` casts. The shift is arithmetic, so it rounds toward minus
/// infinity; the average never goes below zero because the step down is at most `avg`.
fn ewma_step(avg: u64, rate: u64) -> u64 {
    // The casts reinterpret the bits, exactly the kernel's `(s64)` casts.
    let diff = (rate as i64).wrapping_sub(avg as i64);
    avg.wrapping_add_signed(diff >> 2)
}

/// A counter growth over 2 s as a rate scaled by 2^10 per second (bits shifted out of the
/// top are lost, as in the kernel).
fn scaled_unit_rate(growth: u64) -> u64 {
    growth << 9
}

/// A byte growth over 2 s as a rate scaled by 2^5 per second.
fn scaled_byte_rate(growth: u64) -> u64 {
    growth << 4
}

/// Period `index` (0 = oldest) of `periods`' share of `total` when it is spread evenly, the
/// remainder going one unit each to the most recent periods.
fn even_share(total: u64, periods: u64, index: u64) -> u64 {
    let base = total / periods;
    let remainder = total % periods;
    if index >= periods - remainder { base + 1 } else { base }
}

/// The rate estimator of one [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Estimator {
    /// The counters at the previous sample.
    last: Counters,
    /// The scaled moving averages.
    avg: ScaledAverages,
    /// When the next sample is due; `None` until the estimator is started.
    next_due: Option<Instant>,
}

impl Estimator {
    /// One 2 s sample with the given counter growth.
    fn sample(&mut self, growth: &Counters) {
        let avg = &mut self.avg;
        avg.cps = ewma_step(avg.cps, scaled_unit_rate(growth.conns));
        avg.in_pps = ewma_step(avg.in_pps, scaled_unit_rate(growth.in_pkts));
        avg.out_pps = ewma_step(avg.out_pps, scaled_unit_rate(growth.out_pkts));
        avg.in_bps = ewma_step(avg.in_bps, scaled_byte_rate(growth.in_bytes));
        avg.out_bps = ewma_step(avg.out_bps, scaled_byte_rate(growth.out_bytes));
    }

    /// Run the samples due at `now` against the current counters; returns how many ran.
    fn run(&mut self, counters: &Counters, now: Instant) -> u64 {
        let Some(due) = self.next_due else {
            self.next_due = Some(Instant::from_millis(now.as_millis().saturating_add(PERIOD_MS)));
            return 0;
        };
        if now < due {
            return 0;
        }
        let periods = (now.as_millis() - due.as_millis()) / PERIOD_MS + 1;
        let replayed = periods.min(MAX_CATCH_UP_SAMPLES);
        let growth = counters.growth_since(&self.last);
        for index in periods - replayed..periods {
            let share = |total: u64| even_share(total, periods, index);
            self.sample(&Counters {
                conns: share(growth.conns),
                in_pkts: share(growth.in_pkts),
                out_pkts: share(growth.out_pkts),
                in_bytes: share(growth.in_bytes),
                out_bytes: share(growth.out_bytes),
            });
        }
        self.last = *counters;
        self.next_due = Some(Instant::from_millis(due.as_millis().saturating_add(periods.saturating_mul(PERIOD_MS))));
        replayed
    }

    /// The averages as per-second rates, rounded like the kernel's `ip_vs_read_estimator`.
    fn rates(&self) -> Rates {
        let units = |avg: u64| avg.wrapping_add(0x1FF) >> 10;
        let bytes = |avg: u64| avg.wrapping_add(0xF) >> 5;
        Rates {
            cps: units(self.avg.cps),
            in_pps: units(self.avg.in_pps),
            out_pps: units(self.avg.out_pps),
            in_bps: bytes(self.avg.in_bps),
            out_bps: bytes(self.avg.out_bps),
        }
    }
}

/// Counters and their estimated rates, for a service, a destination or the global totals.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// The counters.
    pub counters: Counters,
    /// The rate estimator.
    estimator: Estimator,
}

impl Stats {
    /// Zero counters with the estimator started at `now` (first sample due at `now` + 2 s).
    pub fn new(now: Instant) -> Stats {
        let mut stats = Stats::default();
        stats.estimator.run(&Counters::default(), now);
        stats
    }

    /// One new connection.
    pub fn add_conn(&mut self) {
        self.counters.conns = self.counters.conns.wrapping_add(1);
    }

    /// One inbound packet of `bytes`.
    pub fn add_in(&mut self, bytes: u64) {
        self.counters.in_pkts = self.counters.in_pkts.wrapping_add(1);
        self.counters.in_bytes = self.counters.in_bytes.wrapping_add(bytes);
    }

    /// One outbound packet of `bytes`.
    pub fn add_out(&mut self, bytes: u64) {
        self.counters.out_pkts = self.counters.out_pkts.wrapping_add(1);
        self.counters.out_bytes = self.counters.out_bytes.wrapping_add(bytes);
    }

    /// Run the estimator samples due at `now` (see the module documentation for late
    /// callers); returns how many samples ran. The first call on a [`Stats::default`] starts
    /// the estimator and runs none; traffic counted before it goes into the first sample.
    pub fn estimate(&mut self, now: Instant) -> u64 {
        self.estimator.run(&self.counters, now)
    }

    /// When the next sample is due, or `None` if the estimator has not started.
    pub fn next_sample_due(&self) -> Option<Instant> {
        self.estimator.next_due
    }

    /// The estimated rates.
    pub fn rates(&self) -> Rates {
        self.estimator.rates()
    }

    /// `ipvsadm -Z`: counters and rates read 0, and estimation starts afresh at `now`, the
    /// first sample covering the 2 s after it.
    pub fn zero(&mut self, now: Instant) {
        *self = Stats::new(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    fn add_conns(stats: &mut Stats, n: u64) {
        for _ in 0..n {
            stats.add_conn();
        }
    }

    /// The first sample after 100 connections in 2 s: rate = 100 << 9 = 51200,
    /// avg = 0 + (51200 - 0) >> 2 = 12800, cps = (12800 + 511) >> 10 = 13311 >> 10 = 12.
    #[test]
    fn first_sample_is_a_quarter_of_the_rate() {
        let mut stats = Stats::new(at(0));
        add_conns(&mut stats, 100);
        assert_eq!(stats.estimate(at(2)), 1);
        assert_eq!(stats.estimator.avg.cps, 12800);
        assert_eq!(stats.rates().cps, 12);
    }

    /// 100 connections every 2 s (50/s). The distance d = 51200 - avg follows
    /// d' = d - floor(d / 4): 51200, 38400, 28800, 21600, 16200, 12150, 9113, 6835, 5127,
    /// 3846, 2885, 2164, 1623, 1218, 914, 686, 515, 387, ... and stops at 3 (floor(3/4) = 0).
    /// cps = (51200 - d + 511) >> 10 is 50 once d <= 511: not after 16 samples (d = 515,
    /// 49), first after 17 (d = 387). Early values: avg 12800 -> 12, 22400 -> 22, 29600 -> 29.
    #[test]
    fn constant_traffic_converges_to_its_rate() {
        let mut stats = Stats::new(at(0));
        let mut seen = Vec::new();
        for period in 1..=60 {
            add_conns(&mut stats, 100);
            assert_eq!(stats.estimate(at(2 * period)), 1);
            seen.push(stats.rates().cps);
        }
        assert_eq!(seen[..3], [12, 22, 29]);
        assert_eq!(seen[15], 49, "after 16 samples d = 515");
        assert_eq!(seen[16], 50, "after 17 samples d = 387");
        assert!(seen[16..].iter().all(|&cps| cps == 50));
        assert_eq!(stats.estimator.avg.cps, 51200 - 3, "the EWMA stalls 3 below the rate");
    }

    /// After one sample of 100 connections (avg 12800) the traffic stops. Falling, the
    /// arithmetic shift rounds toward minus infinity: avg' = avg - ceil(avg / 4):
    /// 12800, 9600, 7200, 5400, 4050, 3037 (4050 - 1013; unsigned `(avg - rate) >> 2` would
    /// give 3038). cps: 12, 9, 7, 5, 4, 3. The average reaches exactly 0 (3 -> 2 -> 1 -> 0).
    #[test]
    fn falling_rate_uses_signed_arithmetic_and_reaches_zero() {
        let mut stats = Stats::new(at(0));
        add_conns(&mut stats, 100);
        stats.estimate(at(2));
        let mut avgs = vec![stats.estimator.avg.cps];
        let mut cps = vec![stats.rates().cps];
        for period in 2..=6 {
            stats.estimate(at(2 * period));
            avgs.push(stats.estimator.avg.cps);
            cps.push(stats.rates().cps);
        }
        assert_eq!(avgs, [12800, 9600, 7200, 5400, 4050, 3037]);
        assert_eq!(cps, [12, 9, 7, 5, 4, 3]);
        for period in 7..=60 {
            stats.estimate(at(2 * period));
        }
        assert_eq!(stats.estimator.avg, ScaledAverages::default());
        assert_eq!(stats.rates(), Rates::default());
    }

    /// One sample of n connections: avg = (n << 9) >> 2 = 128 n; cps = (128 n + 511) >> 10.
    /// n = 4: 1023 >> 10 = 0 (exactly half a connection per second rounds down);
    /// n = 5: 1151 >> 10 = 1; n = 12: 2047 >> 10 = 1; n = 13: 2175 >> 10 = 2.
    #[test]
    fn reported_rates_round_to_nearest_with_half_down() {
        for (n, expected) in [(0, 0), (1, 0), (4, 0), (5, 1), (12, 1), (13, 2)] {
            let mut stats = Stats::new(at(0));
            add_conns(&mut stats, n);
            stats.estimate(at(2));
            assert_eq!(stats.rates().cps, expected, "{n} connections");
        }
    }

    /// Bytes are scaled by 2^5: 1000 bytes in 2 s give rate 1000 << 4 = 16000, avg 4000,
    /// bps = (4000 + 15) >> 5 = 125. Steady, avg stalls at 16000 - 3 (same recurrence as for
    /// connections): (15997 + 15) >> 5 = 500 bytes/s. Packets go to pps the way
    /// connections go to cps: 10 packets -> avg 1280 -> (1280 + 511) >> 10 = 1.
    #[test]
    fn byte_and_packet_rates() {
        let mut stats = Stats::new(at(0));
        for _ in 0..10 {
            stats.add_in(100);
        }
        for _ in 0..4 {
            stats.add_out(250);
        }
        stats.estimate(at(2));
        let first = stats.rates();
        assert_eq!((first.in_bps, first.out_bps), (125, 125));
        assert_eq!((first.in_pps, first.out_pps), (1, 0), "4 packets out -> avg 512 -> 0");
        for period in 2..=60 {
            for _ in 0..10 {
                stats.add_in(100);
            }
            stats.estimate(at(2 * period));
        }
        assert_eq!(stats.estimator.avg.in_bps, 16000 - 3);
        assert_eq!(stats.rates().in_bps, 500);
        assert_eq!(stats.rates().in_pps, 5);
    }

    /// 10^9 bytes per 2 s (500 MB/s) does not overflow: the rate is 1.6e10 scaled, and the
    /// first sample gives avg 4e9, bps = (4e9 + 15) >> 5 = 125_000_000.
    #[test]
    fn large_byte_rates() {
        let mut stats = Stats::new(at(0));
        stats.add_in(1_000_000_000);
        stats.estimate(at(2));
        assert_eq!(stats.rates().in_bps, 125_000_000);
    }

    #[test]
    fn no_sample_before_the_period_ends() {
        let mut stats = Stats::new(at(10));
        add_conns(&mut stats, 100);
        assert_eq!(stats.estimate(Instant::from_millis(11_999)), 0);
        assert_eq!(stats.rates().cps, 0);
        assert_eq!(stats.next_sample_due(), Some(at(12)));
        assert_eq!(stats.estimate(at(12)), 1);
        assert_eq!(stats.next_sample_due(), Some(at(14)));
    }

    /// A default Stats starts at its first `estimate` call; what was counted before goes into
    /// the first sample.
    #[test]
    fn default_stats_start_at_the_first_call() {
        let mut stats = Stats::default();
        assert_eq!(stats.next_sample_due(), None);
        add_conns(&mut stats, 100);
        assert_eq!(stats.estimate(at(5)), 0);
        assert_eq!(stats.next_sample_due(), Some(at(7)));
        assert_eq!(stats.estimate(at(7)), 1);
        assert_eq!(stats.rates().cps, 12);
    }

    /// Steady traffic read by a caller that comes every 6 s (3 periods) instead of every 2 s
    /// gives exactly the same averages: each call spreads 300 connections over 3 samples.
    #[test]
    fn late_caller_matches_punctual_caller_for_steady_traffic() {
        let mut punctual = Stats::new(at(0));
        let mut late = Stats::new(at(0));
        for period in 1..=30 {
            add_conns(&mut punctual, 100);
            add_conns(&mut late, 100);
            punctual.estimate(at(2 * period));
            if period % 3 == 0 {
                // 1 s late on top: still 3 periods due, the next at 2 * period + 2.
                assert_eq!(late.estimate(at(2 * period + 1)), 3);
                assert_eq!(late.next_sample_due(), Some(at(2 * period + 2)));
                assert_eq!(late.estimator.avg, punctual.estimator.avg);
            }
        }
    }

    /// 7 connections over 3 periods: shares 2, 2, 3 (the remainder to the most recent).
    /// avg: 0 -> (2<<9)>>2 = 256 -> 256 + (1024-256)>>2 = 448 -> 448 + (1536-448)>>2 = 720.
    #[test]
    fn late_caller_spreads_uneven_growth() {
        let mut stats = Stats::new(at(0));
        add_conns(&mut stats, 7);
        assert_eq!(stats.estimate(at(6)), 3);
        assert_eq!(stats.estimator.avg.cps, 720);
    }

    /// A gap of 1000 periods runs only 16 samples (the most recent), then the schedule
    /// continues on the original grid. 16 000 connections over 1000 periods = 16 per period;
    /// from avg 0, 16 samples of rate 16 << 9 = 8192 leave d = 8192 - avg following
    /// d' = d - floor(d / 4): 8192, 6144, 4608, 3456, 2592, 1944, 1458, 1094, 821, 616, 462,
    /// 347, 261, 196, 147, 111, 84 -> avg 8108, cps (8108 + 511) >> 10 = 8.
    #[test]
    fn very_late_caller_is_bounded_and_resynchronised() {
        let mut stats = Stats::new(at(0));
        add_conns(&mut stats, 16_000);
        assert_eq!(stats.estimate(Instant::from_millis(2_000_000 + 500)), MAX_CATCH_UP_SAMPLES);
        assert_eq!(stats.estimator.avg.cps, 8108);
        assert_eq!(stats.rates().cps, 8);
        assert_eq!(stats.next_sample_due(), Some(Instant::from_millis(2_002_000)));
        assert_eq!(stats.estimate(Instant::from_millis(2_001_999)), 0);
        assert_eq!(stats.estimate(Instant::from_millis(2_002_000)), 1);
    }

    #[test]
    fn time_going_backwards_runs_nothing() {
        let mut stats = Stats::new(at(100));
        add_conns(&mut stats, 100);
        assert_eq!(stats.estimate(at(50)), 0);
        assert_eq!(stats.rates(), Rates::default());
    }

    /// After `zero`, counters and rates read 0 and the next sample covers only the 2 s after
    /// the zeroing: 100 connections then give the first-sample value 12 again.
    #[test]
    fn zero_clears_counters_and_restarts_estimation() {
        let mut stats = Stats::new(at(0));
        for period in 1..=10 {
            add_conns(&mut stats, 100);
            stats.add_in(60);
            stats.estimate(at(2 * period));
        }
        add_conns(&mut stats, 500);
        stats.zero(Instant::from_millis(21_000));
        assert_eq!(stats.counters, Counters::default());
        assert_eq!(stats.rates(), Rates::default());
        assert_eq!(stats.estimate(at(22)), 0, "the old grid point is not due any more");
        add_conns(&mut stats, 100);
        assert_eq!(stats.estimate(Instant::from_millis(23_000)), 1);
        assert_eq!(stats.rates().cps, 12);
        assert_eq!(stats.counters.conns, 100);
    }

    /// Counters wrap modulo 2^64 and the estimator's deltas follow: 5 connections across the
    /// wrap count as 5, giving avg (5 << 9) >> 2 = 640 and cps (640 + 511) >> 10 = 1.
    #[test]
    fn counter_wrap_gives_the_true_growth() {
        let mut stats = Stats::new(at(0));
        stats.counters.conns = u64::MAX - 2;
        stats.estimator.last.conns = u64::MAX - 2;
        add_conns(&mut stats, 5);
        assert_eq!(stats.counters.conns, 2);
        stats.estimate(at(2));
        assert_eq!(stats.estimator.avg.cps, 640);
        assert_eq!(stats.rates().cps, 1);
    }
}
