//! The daemon's clock: the host's monotonic clock mapped to `rvs_core::Instant`
//! (milliseconds since the clock was created, i.e. since the daemon started).

use rvs_core::Instant;

/// A monotonic clock whose epoch is its creation.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        Clock { origin: std::time::Instant::now() }
    }

    /// The current instant for the engine.
    pub fn now(&self) -> Instant {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        Instant::from_millis(ms)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
