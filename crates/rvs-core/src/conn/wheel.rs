//! Connection expiry: a lazy timing wheel.
//!
//! Each connection stores its deadline (in 10 ms ticks) and the tick of the wheel bucket it
//! is filed under. Refreshing a connection on every packet only writes its deadline; the
//! wheel is touched when a deadline moves *earlier* than its bucket (a state change to a
//! shorter timeout), which files it again (the old entry goes stale and is skipped). When a
//! bucket comes due, each live entry either expires or is filed again at its real deadline.
//! Work is proportional to what expires plus one refiling per connection per timeout, never
//! to the table size.

/// Milliseconds per tick.
pub const TICK_MS: u64 = 10;
/// Buckets in the wheel (one per tick): a horizon of 655 s. Deadlines further away are
/// filed at the horizon and refiled when it comes.
pub const WHEEL_SLOTS: usize = 1 << 16;
const MASK: usize = WHEEL_SLOTS - 1;

/// Tick count for a time in milliseconds (wrapping; compare ticks with [`tick_before_eq`]).
pub fn tick_of(ms: u64) -> u32 {
    (ms / TICK_MS) as u32
}

/// `a <= b` on wrapping ticks (valid while they are less than 2^31 ticks, 248 days, apart).
pub fn tick_before_eq(a: u32, b: u32) -> bool {
    b.wrapping_sub(a) as i32 >= 0
}

/// The wheel: bucket `i` holds slots filed at ticks `t` with `t % WHEEL_SLOTS == i`.
#[derive(Debug)]
pub struct TimerWheel {
    buckets: Vec<Vec<u32>>,
    /// Next tick to process.
    next: u32,
    started: bool,
}

impl TimerWheel {
    /// An empty wheel.
    pub fn new() -> TimerWheel {
        TimerWheel { buckets: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(), next: 0, started: false }
    }

    /// The tick a deadline is filed at, seen from `now`: the deadline itself, not earlier
    /// than the next tick to process, not beyond the horizon.
    pub fn file_tick(&mut self, now: u32, deadline: u32) -> u32 {
        if !self.started {
            self.started = true;
            self.next = now.wrapping_add(1);
        }
        let base = if tick_before_eq(now, self.next) { self.next } else { now.wrapping_add(1) };
        if tick_before_eq(deadline, base) {
            base
        } else if deadline.wrapping_sub(base) as usize >= WHEEL_SLOTS - 1 {
            base.wrapping_add((WHEEL_SLOTS - 1) as u32)
        } else {
            deadline
        }
    }

    /// The tick a bucket stands for now: the first tick at or after the next one to process
    /// that maps to it.
    pub fn tick_of_bucket(&self, bucket: u16) -> u32 {
        let b = u32::from(bucket);
        self.next.wrapping_add(b.wrapping_sub(self.next) & MASK as u32)
    }

    /// Files `slot` at `tick` (from [`TimerWheel::file_tick`]).
    pub fn file(&mut self, slot: u32, tick: u32) {
        self.buckets[tick as usize & MASK].push(slot);
    }

    /// Moves every entry of the buckets due up to and including `now` (at most one full
    /// turn) into `due` as (slot, bucket index). The caller checks whether each entry is live
    /// (the slot's filed tick maps to that bucket) and expires or refiles it.
    pub fn take_due(&mut self, now: u32, due: &mut Vec<(u32, u32)>) {
        if !self.started {
            self.next = now.wrapping_add(1);
            self.started = true;
            return;
        }
        if !tick_before_eq(self.next, now) {
            return;
        }
        let span = (now.wrapping_sub(self.next) as usize + 1).min(WHEEL_SLOTS);
        let first = self.next;
        self.next = now.wrapping_add(1);
        for k in 0..span {
            let idx = first.wrapping_add(k as u32) as usize & MASK;
            due.extend(self.buckets[idx].drain(..).map(|slot| (slot, idx as u32)));
        }
    }

    /// Drops every filed entry.
    pub fn clear(&mut self) {
        for b in &mut self.buckets {
            b.clear();
        }
    }

    /// Bytes held by the buckets.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.iter().map(|b| b.capacity() * 4).sum::<usize>() + self.buckets.capacity() * 24
    }
}

impl Default for TimerWheel {
    fn default() -> Self {
        TimerWheel::new()
    }
}

/// Index of the bucket a tick is filed in.
pub fn bucket_of(tick: u32) -> usize {
    tick as usize & MASK
}
