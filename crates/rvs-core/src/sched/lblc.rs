//! Locality-based least connections (`lblc`, the kernel's ip_vs_lblc.c), for cache
//! clusters: each packet destination address (the VIP seen by the scheduler,
//! `req.vaddr`) is bound to one real server.
//!
//! A decision: look the address up; if it is cached and its destination is available, has
//! a weight > 0 and is not "overloaded" in lblc's sense (more active connections than its
//! weight while some destination has 2 * active < weight), use it. Otherwise pick by WLC
//! (overhead / weight, skipping quiescent and overloaded destinations) and cache the pick.
//! Like the kernel, the cached destination's threshold overload flag is not checked.
//!
//! The table ([`LocalityTable`], shared with lblcr) has the kernel's 1024 buckets and hash,
//! and its garbage collection ([`Scheduler::periodic`]) follows the kernel's timer: every
//! 60 s; every 30th run a full sweep drops entries unused for the expiration time (24 h
//! by default); otherwise, when there are more than 16 * 1024 entries, entries unused for
//! 6 minutes are dropped bucket by bucket from a rover until (entries - max) * 4 / 3
//! (at most max / 2) are gone. Entries pointing to a removed destination are dropped at
//! once (the kernel keeps them until they expire and re-schedules on use; dropping them
//! gives the same choices and lets destination ids be reused safely).
//!
//! Speed: WLC comes from an [`ArgBest`] index (O(1)), and "some destination has
//! 2 * active < weight" from a count kept in a sum index (O(1) to read, O(log n) to update).

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use super::index::{ArgBest, DestIndex, Sum};
use super::wlc::OverheadPerWeight;
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};
use crate::time::Instant;

/// Bits of the bucket index (the kernel's `CONFIG_IP_VS_LBLC_TAB_BITS`, also lblcr's).
pub const TABLE_BITS: u32 = 10;
/// Number of buckets.
pub const TABLE_SIZE: usize = 1 << TABLE_BITS;
const TABLE_MASK: usize = TABLE_SIZE - 1;
/// Entries above which the periodic check collects idle entries (16 per bucket).
pub const TABLE_MAX_ENTRIES: usize = TABLE_SIZE * 16;
/// Period of the garbage collector.
pub const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// Idle time after which an entry may be collected when the table is over-full.
pub const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// Every this many collector runs, a full sweep drops entries idle for the expiration time.
pub const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
/// Default `lblc_expiration` sysctl: idle time after which the full sweep drops an entry.
pub const LBLC_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The kernel's bucket for a destination address: `hash_32(ntohl(addr), 10)`, IPv6
/// addresses folded by XOR of their four 32-bit words.
pub fn locality_hash(addr: IpAddr) -> usize {
    let folded = match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            o.chunks_exact(4).fold(0u32, |acc, w| acc ^ u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        }
    };
    (folded.wrapping_mul(0x61C8_8647) >> (32 - TABLE_BITS)) as usize
}

/// One cached binding of a destination address.
#[derive(Debug, Clone)]
pub struct LocalityEntry<V> {
    /// The packet destination address.
    pub addr: IpAddr,
    /// What it is bound to (a destination for lblc, a set for lblcr).
    pub value: V,
    /// Last time a decision looked it up.
    pub last_use: Instant,
}

/// The lblc/lblcr table: hashed buckets plus the garbage collector's state.
#[derive(Debug, Clone)]
pub struct LocalityTable<V> {
    buckets: Vec<Vec<LocalityEntry<V>>>,
    entries: usize,
    /// Last bucket the collector looked at.
    rover: usize,
    /// Collector runs since the last full sweep (starts at 1, like the kernel).
    counter: u32,
    /// When the collector runs next (armed by the first `periodic` call).
    next_check: Option<Instant>,
}

impl<V> Default for LocalityTable<V> {
    fn default() -> Self {
        LocalityTable {
            buckets: (0..TABLE_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_check: None,
        }
    }
}

impl<V> LocalityTable<V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True if the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The entry for `addr`.
    pub fn get_mut(&mut self, addr: IpAddr) -> Option<&mut LocalityEntry<V>> {
        self.buckets.get_mut(locality_hash(addr))?.iter_mut().find(|e| e.addr == addr)
    }

    /// Adds an entry for `addr` (the caller has checked there is none).
    pub fn insert(&mut self, addr: IpAddr, value: V, now: Instant) {
        if let Some(bucket) = self.buckets.get_mut(locality_hash(addr)) {
            bucket.push(LocalityEntry { addr, value, last_use: now });
            self.entries += 1;
        }
    }

    /// Keeps the entries for which `keep` returns true (it may also edit them).
    pub fn retain(&mut self, mut keep: impl FnMut(&mut LocalityEntry<V>) -> bool) {
        let mut removed = 0;
        for bucket in &mut self.buckets {
            let before = bucket.len();
            bucket.retain_mut(&mut keep);
            removed += before - bucket.len();
        }
        self.entries -= removed;
    }

    /// Drops the entries of bucket `j` unused for `idle`; returns how many.
    fn expire_bucket(&mut self, j: usize, now: Instant, idle: Duration) -> usize {
        let Some(bucket) = self.buckets.get_mut(j) else { return 0 };
        let before = bucket.len();
        bucket.retain(|e| now < e.last_use.after(idle));
        let removed = before - bucket.len();
        self.entries -= removed;
        removed
    }

    /// The collector's timer: call often (about once a second); it runs every
    /// [`CHECK_EXPIRE_INTERVAL`], the first time one interval after the first call.
    pub fn periodic(&mut self, now: Instant, expiration: Duration) {
        match self.next_check {
            None => {
                self.next_check = Some(now.after(CHECK_EXPIRE_INTERVAL));
                return;
            }
            Some(due) if now < due => return,
            Some(_) => {}
        }
        self.check_expire(now, expiration);
        self.next_check = Some(now.after(CHECK_EXPIRE_INTERVAL));
    }

    /// One collector run (the kernel's `check_expire`).
    fn check_expire(&mut self, now: Instant, expiration: Duration) {
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            let mut j = self.rover;
            for _ in 0..TABLE_SIZE {
                j = (j + 1) & TABLE_MASK;
                self.expire_bucket(j, now, expiration);
            }
            self.rover = j;
            self.counter = 1;
            return;
        }
        if self.entries <= TABLE_MAX_ENTRIES {
            self.counter += 1;
            return;
        }
        let mut goal = ((self.entries - TABLE_MAX_ENTRIES) * 4 / 3).min(TABLE_MAX_ENTRIES / 2);
        let mut j = self.rover;
        for _ in 0..TABLE_SIZE {
            j = (j + 1) & TABLE_MASK;
            goal = goal.saturating_sub(self.expire_bucket(j, now, ENTRY_TIMEOUT));
            if goal == 0 {
                break;
            }
        }
        self.rover = j;
    }
}

/// 1 for a destination with 2 * active < weight (one that makes a busier cached
/// destination count as overloaded).
pub(crate) fn relief_leaf(_pos: usize, d: &Destination) -> Sum {
    Sum(u64::from(2 * u64::from(d.active_conns) < u64::from(d.weight())))
}

/// lblc's "overloaded": more active connections than weight while some destination of the
/// service (counted in `relief`) has 2 * active < weight.
pub(crate) fn locality_overloaded(d: &Destination, relief: &DestIndex<Sum>) -> bool {
    d.active_conns > d.weight() && relief.tree().root().0 > 0
}

/// Locality-based least connections.
#[derive(Debug)]
pub struct LocalityLeastConnection {
    wlc: ArgBest<OverheadPerWeight>,
    relief: DestIndex<Sum>,
    table: LocalityTable<DestId>,
    expiration: Duration,
}

impl Default for LocalityLeastConnection {
    fn default() -> Self {
        LocalityLeastConnection::with_expiration(LBLC_EXPIRATION)
    }
}

impl LocalityLeastConnection {
    /// An lblc scheduler whose full sweep drops entries idle for `expiration` (the
    /// `lblc_expiration` sysctl).
    pub fn with_expiration(expiration: Duration) -> Self {
        LocalityLeastConnection {
            wlc: ArgBest::default(),
            relief: DestIndex::default(),
            table: LocalityTable::default(),
            expiration,
        }
    }

    /// Number of cached destination addresses.
    pub fn entries(&self) -> usize {
        self.table.len()
    }
}

impl Scheduler for LocalityLeastConnection {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblc
    }

    fn update_dests(&mut self, dests: DestList<'_>, change: DestChange) {
        self.wlc.update_dests(dests, change);
        self.relief.update_dests(dests, change, relief_leaf);
        match change {
            DestChange::Removed { id, .. } => self.table.retain(|e| e.value != id),
            DestChange::Reset => {
                let live: HashSet<DestId> = dests.ids().iter().copied().collect();
                self.table.retain(|e| live.contains(&e.value));
            }
            DestChange::Added { .. } | DestChange::Edited { .. } => {}
        }
    }

    fn load_changed(&mut self, dests: DestList<'_>, pos: usize) {
        self.wlc.load_changed(dests, pos);
        self.relief.load_changed(dests, pos, relief_leaf);
    }

    fn schedule(&mut self, dests: DestList<'_>, req: &mut SchedRequest<'_>) -> Option<DestId> {
        self.relief.ensure_in_step(dests, relief_leaf);
        if let Some(entry) = self.table.get_mut(req.vaddr) {
            entry.last_use = req.now;
            let id = entry.value;
            if let Some(d) = dests.by_id(id)
                && d.available
                && d.weight() > 0
                && !locality_overloaded(d, &self.relief)
            {
                return Some(id);
            }
            let id = self.wlc.best(dests)?;
            entry.value = id;
            return Some(id);
        }
        let id = self.wlc.best(dests)?;
        self.table.insert(req.vaddr, id, req.now);
        Some(id)
    }

    fn periodic(&mut self, now: Instant) {
        self.table.periodic(now, self.expiration);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::index::testing::{Op, apply, ops, pick_at, weights};
    use super::super::testing::Fixture;
    use super::super::wlc::naive_wlc;
    use super::*;
    use crate::random::SplitMix64;
    use crate::service::Protocol;

    fn vip(i: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, 10 + i])
    }

    /// A concrete lblc driven over a fixture's list (to look at its table).
    fn schedule(s: &mut LocalityLeastConnection, f: &Fixture, vaddr: IpAddr, now: Instant) -> Option<usize> {
        let mut rng = SplitMix64::new(1);
        let mut req = SchedRequest {
            protocol: Protocol::Tcp,
            client: "198.18.200.1".parse().unwrap(),
            client_port: 40000,
            vaddr,
            vport: 80,
            flags: f.flags,
            now,
            rng: &mut rng,
        };
        let id = s.schedule(f.list(), &mut req)?;
        f.order.iter().position(|&x| x == id)
    }

    #[test]
    fn hash_is_the_kernels_hash_32_of_the_folded_address() {
        // 198.18.0.10 = 0xC612000A; (0xC612000A * 0x61C88647 mod 2^32) >> 22, computed
        // independently (Python), is 179. fd00::1:2 folds to 0xFD000000 ^ 0x00010002 =
        // 0xFD010002, which hashes to 467.
        assert_eq!(locality_hash("198.18.0.10".parse().unwrap()), 179);
        assert_eq!(locality_hash("fd00::1:2".parse().unwrap()), 467);
    }

    #[test]
    fn an_address_sticks_to_its_destination() {
        // All idle: WLC picks a for vip 0. Load a so that WLC would now pick b: vip 0 stays
        // on a (a has 1 active <= weight 2, not overloaded), a new vip 1 goes to b.
        let mut f = Fixture::new(SchedulerKind::Lblc, &[2, 2]);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        f.set_load(0, 1, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        assert_eq!(pick_at(&mut f, vip(1), Instant::ZERO), Some(1));
        assert_eq!(pick_at(&mut f, vip(1), Instant::ZERO), Some(1));
    }

    #[test]
    fn a_busy_cached_destination_is_replaced_only_if_another_is_under_half_load() {
        // a (w2) cached for vip 0. a: 3 active > 2. b (w4): 2 active, 2*2 < 4 is false:
        // nobody is under half load, so a stays.
        let mut f = Fixture::new(SchedulerKind::Lblc, &[2, 4]);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        f.set_load(0, 3, 0, false);
        f.set_load(1, 2, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        // b at 1 active: 2 < 4, so a counts as overloaded; WLC: a 768/2 vs b 256/4 -> b,
        // and the cache now says b.
        f.set_load(1, 1, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1));
        // b at 4 active (not above its weight 4) stays cached although WLC now prefers a.
        f.set_load(1, 4, 0, false);
        f.set_load(0, 0, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1), "b is cached now");
        // b at 5 active > 4 while a (0 active, w2) is under half load: back to a.
        f.set_load(1, 5, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
    }

    #[test]
    fn a_quiesced_cached_destination_is_replaced_but_the_overload_flag_is_not_checked() {
        let mut f = Fixture::new(SchedulerKind::Lblc, &[1, 1]);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        // The kernel only checks AVAILABLE, weight and its own "overloaded" test.
        f.set_load(0, 0, 0, true);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        // A new address does not get the overloaded one (WLC skips it).
        assert_eq!(pick_at(&mut f, vip(1), Instant::ZERO), Some(1));
        f.set_weight(0, 0);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1));
        f.set_weight(1, 0);
        assert_eq!(pick_at(&mut f, vip(2), Instant::ZERO), None);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), None);
    }

    #[test]
    fn removing_a_destination_drops_its_entries() {
        let mut f = Fixture::new(SchedulerKind::Lblc, &[1, 1]);
        let mut s = LocalityLeastConnection::default();
        s.update_dests(f.list(), DestChange::Reset);
        // vip 0 -> a; load a; vip 1 -> b; vip 2 -> b? a 256/1, b 0/1 -> b.
        assert_eq!(schedule(&mut s, &f, vip(0), Instant::ZERO), Some(0));
        f.set_load(0, 1, 0, false);
        s.load_changed(f.list(), 0);
        assert_eq!(schedule(&mut s, &f, vip(1), Instant::ZERO), Some(1));
        assert_eq!(schedule(&mut s, &f, vip(2), Instant::ZERO), Some(1));
        assert_eq!(s.entries(), 3);
        let id = f.order[1];
        f.order.remove(1);
        s.update_dests(f.list(), DestChange::Removed { pos: 1, id });
        assert_eq!(s.entries(), 1);
        assert_eq!(schedule(&mut s, &f, vip(1), Instant::ZERO), Some(0));
    }

    #[test]
    fn full_sweep_every_30_minutes_drops_entries_idle_for_a_day() {
        let f = Fixture::new(SchedulerKind::Lblc, &[1]);
        let mut s = LocalityLeastConnection::default();
        s.update_dests(f.list(), DestChange::Reset);
        schedule(&mut s, &f, vip(0), Instant::ZERO);
        schedule(&mut s, &f, vip(1), Instant::ZERO);
        // The first call arms the timer (runs at 60 s, 120 s, ...); runs 1..29 only count,
        // run 30 (1800 s) sweeps, then every 30th run: 3600 s, ..., 86400 s.
        let mut t = 0;
        while t < 86_400 {
            s.periodic(Instant::from_secs(t));
            if t == 43_200 {
                // vip 1 used at 12 h: it expires at 36 h, i.e. at the sweep of 37 h.
                schedule(&mut s, &f, vip(1), Instant::from_secs(t));
            }
            t += 1;
        }
        assert_eq!(s.entries(), 2, "the sweep at 84600 s keeps both");
        s.periodic(Instant::from_secs(86_400));
        assert_eq!(s.entries(), 1, "vip 0 idle for exactly 24 h at the sweep of 86400 s");
    }

    #[test]
    fn over_full_table_drops_idle_entries_bucket_by_bucket_from_the_rover() {
        let f = Fixture::new(SchedulerKind::Lblc, &[1]);
        let mut s = LocalityLeastConnection::default();
        s.update_dests(f.list(), DestChange::Reset);
        let n = TABLE_MAX_ENTRIES + 100;
        let addr = |i: usize| IpAddr::from([198, 19, (i / 256) as u8, (i % 256) as u8]);
        for i in 0..n {
            schedule(&mut s, &f, addr(i), Instant::ZERO);
        }
        assert_eq!(s.entries(), n);
        // Runs at 60..300 s find nothing idle for 6 min (the rover goes all the way round);
        // the run at 360 s has goal (100 * 4 / 3) = 133 and removes whole buckets 1, 2, ...
        // until at least 133 entries are gone.
        let mut sizes = vec![0usize; TABLE_SIZE];
        for i in 0..n {
            sizes[locality_hash(addr(i))] += 1;
        }
        let mut removed = 0;
        for size in sizes.iter().cycle().skip(1) {
            removed += size;
            if removed >= 133 {
                break;
            }
        }
        for t in (0..=300).step_by(60) {
            s.periodic(Instant::from_secs(t));
        }
        assert_eq!(s.entries(), n);
        s.periodic(Instant::from_secs(360));
        assert_eq!(s.entries(), n - removed);
    }

    /// The kernel's lblc with a plain list as table and full scans.
    #[derive(Default)]
    struct NaiveLblc {
        table: Vec<(IpAddr, DestId)>,
    }

    impl NaiveLblc {
        fn follow(&mut self, dests: DestList<'_>, change: DestChange) {
            match change {
                DestChange::Removed { id, .. } => self.table.retain(|&(_, d)| d != id),
                DestChange::Reset => self.table.retain(|(_, d)| dests.ids().contains(d)),
                _ => {}
            }
        }

        fn schedule(&mut self, dests: DestList<'_>, vaddr: IpAddr) -> Option<usize> {
            let entry = self.table.iter().position(|&(a, _)| a == vaddr);
            if let Some(e) = entry {
                let id = self.table[e].1;
                let d = dests.by_id(id).unwrap();
                let busy = d.active_conns > d.weight()
                    && dests.iter().any(|(_, _, m)| u64::from(m.active_conns) * 2 < u64::from(m.weight()));
                if d.available && d.weight() > 0 && !busy {
                    return dests.ids().iter().position(|&x| x == id);
                }
            }
            let pos = naive_wlc(dests)?;
            match entry {
                Some(e) => self.table[e].1 = dests.id(pos),
                None => self.table.push((vaddr, dests.id(pos))),
            }
            Some(pos)
        }
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_loop(w in weights(), ops in ops()) {
            let mut f = Fixture::new(SchedulerKind::Lblc, &w);
            let mut naive = NaiveLblc::default();
            let mut now = Instant::ZERO;
            for op in &ops {
                if let Op::Pick { vaddr, advance } = *op {
                    now = now.after(Duration::from_secs(advance.into()));
                    let expected = naive.schedule(f.list(), vip(vaddr));
                    prop_assert_eq!(pick_at(&mut f, vip(vaddr), now), expected);
                } else if let Some(change) = apply(&mut f, op) {
                    naive.follow(f.list(), change);
                }
            }
        }
    }
}
