//! VRRP timer arithmetic: Skew_Time and Master_Down_Interval (RFC 3768 §6.1, RFC 5798 §6.1),
//! computed in microseconds and truncated to the millisecond clock the state machine runs on.

use std::time::Duration;

use crate::vrrp::packet::Version;

/// Microseconds in one centisecond.
pub const US_PER_CS: u64 = 10_000;

/// Skew_Time in µs. v2: `(256 − priority) / 256` s. v3: `(256 − priority) × interval / 256`.
pub fn skew_us(version: Version, priority: u8, master_adver_interval_cs: u16) -> u64 {
    let weight = 256 - u64::from(priority);
    match version {
        Version::V2 => weight * 1_000_000 / 256,
        Version::V3 => weight * u64::from(master_adver_interval_cs) * US_PER_CS / 256,
    }
}

/// Master_Down_Interval in µs: `adverts × interval + Skew_Time` (RFC: adverts = 3; keepalived's
/// `down_timer_adverts` makes it configurable).
pub fn master_down_us(version: Version, priority: u8, master_adver_interval_cs: u16, adverts: u8) -> u64 {
    u64::from(adverts) * u64::from(master_adver_interval_cs) * US_PER_CS
        + skew_us(version, priority, master_adver_interval_cs)
}

/// A µs count as a `Duration`.
pub fn micros(us: u64) -> Duration {
    Duration::from_micros(us)
}

/// Centiseconds as a `Duration`.
pub fn centis(cs: u16) -> Duration {
    Duration::from_micros(u64::from(cs) * US_PER_CS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_reference_3_61_s() {
        // Reference §4.2: advert 1 s, backup priority 100 -> 3 + 156/256 = 3.609375 s.
        assert_eq!(skew_us(Version::V2, 100, 100), 609_375);
        assert_eq!(master_down_us(Version::V2, 100, 100, 3), 3_609_375);
        assert_eq!(master_down_us(Version::V3, 100, 100, 3), 3_609_375);
    }

    #[test]
    fn v3_skew_scales_with_interval_v2_does_not() {
        // 10 cs interval, priority 100: v3 skew = 156 * 100_000 / 256 = 60_937 µs; v2 stays 609_375 µs.
        assert_eq!(skew_us(Version::V3, 100, 10), 60_937);
        assert_eq!(skew_us(Version::V2, 100, 10), 609_375);
        // Owner (255): 1/256 of the interval.
        assert_eq!(skew_us(Version::V3, 255, 100), 3_906);
        // Priority 1 waits longest: 255/256.
        assert_eq!(skew_us(Version::V3, 1, 100), 996_093);
        // down_timer_adverts = 5, 1 cs interval (10 ms), priority 200: 5*10_000 + 56*10_000/256.
        assert_eq!(master_down_us(Version::V3, 200, 1, 5), 50_000 + 2_187);
    }
}
