//! Pure scheduling arithmetic: when a target's first round runs (warm-up or an even spread over
//! the interval, so many servers are not checked at the same instant) and how long until the next
//! one (interval or retry interval, with random jitter). Randomness comes from a [`RandomSource`]
//! so tests can pin it.

use std::time::Duration;

use crate::state::Timing;

/// Longest duration the scheduler works with (about 11.5 days); longer ones are cut to it, so
/// instant arithmetic can never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000);

/// `d`, at most [`MAX_DURATION`].
pub fn clamp(d: Duration) -> Duration {
    d.min(MAX_DURATION)
}

/// A source of uniform random fractions in `[0, 1)`.
pub trait RandomSource {
    /// The next fraction.
    fn fraction(&mut self) -> f64;
}

/// A small seeded generator (SplitMix64); good enough for spreading timers, not for secrets.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// A generator seeded from the clock and the process id.
    pub fn from_entropy() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        SplitMix(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for SplitMix {
    fn fraction(&mut self) -> f64 {
        // 53 random bits → [0, 1).
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Delay before the first round of target number `index` out of `count`.
///
/// With warm-up: uniform random in `[0, interval]`. Without: targets are spread evenly over one
/// interval by their index (`interval * index / count`), so start-up is still not a burst.
pub fn first_delay(timing: &Timing, index: usize, count: usize, rng: &mut dyn RandomSource) -> Duration {
    if timing.warmup {
        clamp(timing.interval).mul_f64(rng.fraction().clamp(0.0, 1.0))
    } else if count == 0 {
        Duration::ZERO
    } else {
        clamp(timing.interval).mul_f64((index as f64 / count as f64).clamp(0.0, 1.0))
    }
}

/// Delay from the start of one round to the start of the next: `retry_interval` while the state is
/// in doubt, else `interval`, spread by ±`jitter` (clamped to [0, 0.5]).
pub fn next_delay(timing: &Timing, in_doubt: bool, rng: &mut dyn RandomSource) -> Duration {
    let base = clamp(if in_doubt { timing.retry_interval } else { timing.interval });
    let jitter = if timing.jitter.is_finite() { timing.jitter.clamp(0.0, 0.5) } else { 0.0 };
    // factor in [1 - jitter, 1 + jitter)
    let factor = 1.0 - jitter + 2.0 * jitter * rng.fraction().clamp(0.0, 1.0);
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64);
    impl RandomSource for Fixed {
        fn fraction(&mut self) -> f64 {
            self.0
        }
    }

    #[test]
    fn warmup_is_random_fraction_of_interval() {
        let t = Timing { interval: Duration::from_secs(10), warmup: true, ..Timing::default() };
        assert_eq!(first_delay(&t, 0, 1, &mut Fixed(0.25)), Duration::from_millis(2500));
        assert_eq!(first_delay(&t, 0, 1, &mut Fixed(0.0)), Duration::ZERO);
    }

    #[test]
    fn without_warmup_targets_spread_evenly() {
        let t = Timing { interval: Duration::from_secs(4), warmup: false, ..Timing::default() };
        let d: Vec<_> = (0..4).map(|i| first_delay(&t, i, 4, &mut Fixed(0.9))).collect();
        assert_eq!(d, [0, 1, 2, 3].map(Duration::from_secs));
    }

    #[test]
    fn next_delay_uses_retry_interval_in_doubt_and_jitter_bounds() {
        let t = Timing {
            interval: Duration::from_secs(10),
            retry_interval: Duration::from_secs(2),
            jitter: 0.1,
            ..Timing::default()
        };
        // fraction 0 → 1 - jitter, fraction 0.5 → exactly the base.
        assert_eq!(next_delay(&t, false, &mut Fixed(0.0)), Duration::from_secs(9));
        assert_eq!(next_delay(&t, false, &mut Fixed(0.5)), Duration::from_secs(10));
        assert_eq!(next_delay(&t, true, &mut Fixed(0.5)), Duration::from_secs(2));
    }

    #[test]
    fn splitmix_fractions_are_in_range_and_spread() {
        let mut r = SplitMix::new(42);
        let xs: Vec<f64> = (0..1000).map(|_| r.fraction()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        // Each tenth of [0,1) gets some of 1000 draws (expected 100 each).
        for k in 0..10 {
            let lo = k as f64 / 10.0;
            assert!(xs.iter().filter(|x| **x >= lo && **x < lo + 0.1).count() > 50);
        }
    }
}
