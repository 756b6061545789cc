//! Locality-based least connections with replication (`lblcr`, the kernel's
//! ip_vs_lblcr.c): each packet destination address (`req.vaddr`) is bound to a *set* of
//! real servers.
//!
//! A decision, as in the kernel: look the address up. If cached: pick the set's least
//! loaded member (overhead / weight, skipping quiescent, overloaded and unavailable ones,
//! the first of equals in set order); then, if the set has more than one member and has
//! not changed for the expiration time ([`LBLCR_EXPIRATION`], 24 h by default), drop its
//! most loaded member (weight > 0, no other check). If the pick exists and is not
//! "overloaded" in lblc's sense (more active connections than weight while some destination
//! has 2 * active < weight), use it; otherwise pick by WLC over all destinations and add
//! the pick to the set. If not cached: pick by WLC and cache a one-member set. New members
//! go to the front of the set (the kernel adds at the list head); adding or dropping a
//! member stamps the set's modification time.
//!
//! The table and its garbage collection are lblc's ([`LocalityTable`]: 1024 buckets,
//! kernel hash, 60 s timer, full sweep every 30th run with the expiration time, 6-minute
//! idle collection above 16 * 1024 entries). Members that are removed destinations are
//! dropped from every set at once (the kernel keeps them, never picked, until the entry
//! expires; so a set holding a removed destination can shrink differently here).
//!
//! Speed: WLC is an O(1) index read, the "2 * active < weight" test an O(1) count read;
//! looking at a set costs O(set size), which replication keeps small.

use std::collections::HashSet;
use std::time::Duration;

use super::index::{ArgBest, DestIndex, Sum, ratio_less};
use super::lblc::{LocalityTable, locality_overloaded, relief_leaf};
use super::wlc::OverheadPerWeight;
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;
use crate::time::Instant;

/// Default `lblcr_expiration` sysctl: a set unchanged this long loses its most loaded
/// member; the full sweep drops entries idle this long.
pub const LBLCR_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The servers bound to one destination address.
#[derive(Debug, Clone)]
pub struct DestSet {
    /// Members, most recently added first.
    pub members: Vec<DestId>,
    /// Last time a member was added or dropped.
    pub last_mod: Instant,
}

impl DestSet {
    /// The least loaded usable member (the kernel's `ip_vs_dest_set_min`).
    fn least_loaded(&self, dests: DestList<'_>) -> Option<DestId> {
        let mut least: Option<(DestId, u64, u32)> = None;
        for &id in &self.members {
            let Some(d) = dests.by_id(id) else { continue };
            if !d.is_schedulable() {
                continue;
            }
            if least.is_none_or(|(_, loh, lw)| ratio_less(d.overhead(), d.weight(), loh, lw)) {
                least = Some((id, d.overhead(), d.weight()));
            }
        }
        least.map(|(id, _, _)| id)
    }

    /// The most loaded member with weight > 0 (the kernel's `ip_vs_dest_set_max`).
    fn most_loaded(&self, dests: DestList<'_>) -> Option<DestId> {
        let mut most: Option<(DestId, u64, u32)> = None;
        for &id in &self.members {
            let Some(d) = dests.by_id(id) else { continue };
            if d.weight() == 0 {
                continue;
            }
            if most.is_none_or(|(_, moh, mw)| ratio_less(moh, mw, d.overhead(), d.weight())) {
                most = Some((id, d.overhead(), d.weight()));
            }
        }
        most.map(|(id, _, _)| id)
    }

    /// Adds `id` at the front unless already a member.
    fn insert(&mut self, id: DestId, now: Instant) {
        if !self.members.contains(&id) {
            self.members.insert(0, id);
            self.last_mod = now;
        }
    }

    /// Drops `id`.
    fn erase(&mut self, id: DestId, now: Instant) {
        if let Some(i) = self.members.iter().position(|&m| m == id) {
            self.members.remove(i);
            self.last_mod = now;
        }
    }
}

/// Locality-based least connections with replication.
#[derive(Debug)]
pub struct LocalityReplicated {
    wlc: ArgBest<OverheadPerWeight>,
    relief: DestIndex<Sum>,
    table: LocalityTable<DestSet>,
    expiration: Duration,
}

impl Default for LocalityReplicated {
    fn default() -> Self {
        LocalityReplicated::with_expiration(LBLCR_EXPIRATION)
    }
}

impl LocalityReplicated {
    /// An lblcr scheduler with the `lblcr_expiration` sysctl set to `expiration`.
    pub fn with_expiration(expiration: Duration) -> Self {
        LocalityReplicated {
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

impl Scheduler for LocalityReplicated {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblcr
    }

    fn update_dests(&mut self, dests: DestList<'_>, change: DestChange) {
        self.wlc.update_dests(dests, change);
        self.relief.update_dests(dests, change, relief_leaf);
        match change {
            DestChange::Removed { id, .. } => self.table.retain(|e| {
                e.value.members.retain(|&m| m != id);
                true
            }),
            DestChange::Reset => {
                let live: HashSet<DestId> = dests.ids().iter().copied().collect();
                self.table.retain(|e| {
                    e.value.members.retain(|m| live.contains(m));
                    true
                });
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
        let now = req.now;
        if let Some(entry) = self.table.get_mut(req.vaddr) {
            entry.last_use = now;
            let set = &mut entry.value;
            let least = set.least_loaded(dests);
            if set.members.len() > 1
                && now > set.last_mod.after(self.expiration)
                && let Some(most) = set.most_loaded(dests)
            {
                set.erase(most, now);
            }
            if let Some(id) = least
                && let Some(d) = dests.by_id(id)
                && !locality_overloaded(d, &self.relief)
            {
                return Some(id);
            }
            let id = self.wlc.best(dests)?;
            set.insert(id, now);
            return Some(id);
        }
        let id = self.wlc.best(dests)?;
        self.table.insert(req.vaddr, DestSet { members: vec![id], last_mod: now }, now);
        Some(id)
    }

    fn periodic(&mut self, now: Instant) {
        self.table.periodic(now, self.expiration);
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

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

    const DAY: u64 = 24 * 60 * 60;

    #[test]
    fn a_busy_member_makes_the_set_grow_and_the_least_loaded_member_is_used() {
        // vip 0 -> a (all idle), set {a}. a: 2 active > w1 while b, c idle (2*0 < 1):
        // WLC over all: a 512/1, b 0, c 0 -> b; set {b, a}.
        let mut f = Fixture::new(SchedulerKind::Lblcr, &[1, 1, 1]);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        f.set_load(0, 2, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1));
        // Members b (1 active) and a (2 active): least loaded is b; b has 1 active, not
        // above its weight, so b is used although c is idle.
        f.set_load(1, 1, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1));
        // Now a is the lighter member (0 active): a.
        f.set_load(0, 0, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
    }

    #[test]
    fn equal_members_are_taken_in_set_order_newest_first() {
        // Set {b, a} built as above; then both idle: the set's first member (b) wins,
        // although a is first in the service's list.
        let mut f = Fixture::new(SchedulerKind::Lblcr, &[1, 1]);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        f.set_load(0, 2, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1));
        f.set_load(0, 0, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1));
    }

    #[test]
    fn a_set_unchanged_for_a_day_drops_its_most_loaded_member() {
        // Set {b, a} modified at t = 0 (b added). a: 1 active, b idle.
        let mut f = Fixture::new(SchedulerKind::Lblcr, &[1, 1]);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        f.set_load(0, 2, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1));
        f.set_load(0, 1, 0, false);
        // At exactly 24 h nothing is dropped (the kernel needs now > lastmod + 24 h)...
        assert_eq!(pick_at(&mut f, vip(0), Instant::from_secs(DAY)), Some(1));
        // ... one second later a (most loaded: 256/1 vs 0/1) is dropped; b is used.
        assert_eq!(pick_at(&mut f, vip(0), Instant::from_secs(DAY + 1)), Some(1));
        // The set is {b} now: with a idle and b at 1 active (not above its weight), a
        // member a would have won; b is used.
        f.set_load(0, 0, 0, false);
        f.set_load(1, 1, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::from_secs(DAY + 2)), Some(1));
    }

    #[test]
    fn the_least_loaded_member_is_used_even_when_it_is_the_one_dropped() {
        // Set {b, a}, both 1 active on weight 1: least = b (first), most = b (first of
        // equals). After a day b is dropped from the set but still used for this decision;
        // next time the set is {a}.
        let mut f = Fixture::new(SchedulerKind::Lblcr, &[1, 1]);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        f.set_load(0, 2, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1));
        f.set_load(0, 1, 0, false);
        f.set_load(1, 1, 0, false);
        assert_eq!(pick_at(&mut f, vip(0), Instant::from_secs(DAY + 1)), Some(1));
        assert_eq!(pick_at(&mut f, vip(0), Instant::from_secs(DAY + 2)), Some(0));
    }

    #[test]
    fn no_usable_member_falls_back_to_wlc_and_none_when_nothing_is_left() {
        let mut f = Fixture::new(SchedulerKind::Lblcr, &[1, 1]);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(0));
        f.set_load(0, 0, 0, true); // the only member is overloaded: WLC -> b
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), Some(1));
        f.set_weight(1, 0);
        assert_eq!(pick_at(&mut f, vip(0), Instant::ZERO), None);
        assert_eq!(pick_at(&mut f, vip(1), Instant::ZERO), None);
    }

    #[test]
    fn removed_destinations_leave_every_set() {
        let mut f = Fixture::new(SchedulerKind::Lblcr, &[1, 1]);
        let mut s = LocalityReplicated::default();
        s.update_dests(f.list(), DestChange::Reset);
        let mut rng = SplitMix64::new(1);
        let mut pick = |s: &mut LocalityReplicated, f: &Fixture, v: IpAddr| {
            let mut req = SchedRequest {
                protocol: Protocol::Tcp,
                client: "198.18.200.1".parse().unwrap(),
                client_port: 40000,
                vaddr: v,
                vport: 80,
                flags: f.flags,
                now: Instant::ZERO,
                rng: &mut rng,
            };
            s.schedule(f.list(), &mut req).and_then(|id| f.order.iter().position(|&x| x == id))
        };
        assert_eq!(pick(&mut s, &f, vip(0)), Some(0));
        let id = f.order[0];
        f.order.remove(0);
        s.update_dests(f.list(), DestChange::Removed { pos: 0, id });
        assert_eq!(s.entries(), 1, "the entry stays, with an empty set");
        assert_eq!(pick(&mut s, &f, vip(0)), Some(0), "empty set: WLC picks the remaining b");
    }

    #[test]
    fn full_sweep_drops_entries_idle_for_the_expiration_time() {
        // With a 1 h expiration the sweep at 1800 s keeps the entry (idle 1800 s) and the
        // sweep at 3600 s drops it.
        let f = Fixture::new(SchedulerKind::Lblcr, &[1]);
        let mut s = LocalityReplicated::with_expiration(Duration::from_secs(3600));
        s.update_dests(f.list(), DestChange::Reset);
        let mut rng = SplitMix64::new(1);
        let mut req = SchedRequest {
            protocol: Protocol::Tcp,
            client: "198.18.200.1".parse().unwrap(),
            client_port: 40000,
            vaddr: vip(0),
            vport: 80,
            flags: f.flags,
            now: Instant::ZERO,
            rng: &mut rng,
        };
        assert!(s.schedule(f.list(), &mut req).is_some());
        for t in (0..3600).step_by(60) {
            s.periodic(Instant::from_secs(t));
        }
        assert_eq!(s.entries(), 1);
        s.periodic(Instant::from_secs(3600));
        assert_eq!(s.entries(), 0);
    }

    /// The kernel's lblcr with a plain list as table and full scans.
    #[derive(Default)]
    struct NaiveLblcr {
        /// (address, members newest first, lastmod)
        table: Vec<(IpAddr, Vec<DestId>, Instant)>,
    }

    impl NaiveLblcr {
        fn follow(&mut self, dests: DestList<'_>, change: DestChange) {
            for (_, members, _) in &mut self.table {
                match change {
                    DestChange::Removed { id, .. } => members.retain(|&m| m != id),
                    DestChange::Reset => members.retain(|m| dests.ids().contains(m)),
                    _ => {}
                }
            }
        }

        fn schedule(&mut self, dests: DestList<'_>, vaddr: IpAddr, now: Instant) -> Option<usize> {
            let pos_of = |id: DestId| dests.ids().iter().position(|&x| x == id);
            let Some(e) = self.table.iter().position(|(a, _, _)| *a == vaddr) else {
                let pos = naive_wlc(dests)?;
                self.table.push((vaddr, vec![dests.id(pos)], now));
                return Some(pos);
            };
            let (_, members, lastmod) = &mut self.table[e];
            // set_min: first usable member, replaced when strictly lighter.
            let mut least: Option<DestId> = None;
            for &m in members.iter() {
                let d = dests.by_id(m).unwrap();
                if d.overloaded || !(d.weight() > 0 && d.available) {
                    continue;
                }
                let better = least.is_none_or(|l| {
                    let l = dests.by_id(l).unwrap();
                    u128::from(l.overhead()) * u128::from(d.weight())
                        > u128::from(d.overhead()) * u128::from(l.weight())
                });
                if better {
                    least = Some(m);
                }
            }
            if members.len() > 1 && now > lastmod.after(LBLCR_EXPIRATION) {
                let mut most: Option<DestId> = None;
                for &m in members.iter() {
                    let d = dests.by_id(m).unwrap();
                    if d.weight() == 0 {
                        continue;
                    }
                    let worse = most.is_none_or(|x| {
                        let x = dests.by_id(x).unwrap();
                        u128::from(x.overhead()) * u128::from(d.weight())
                            < u128::from(d.overhead()) * u128::from(x.weight())
                    });
                    if worse {
                        most = Some(m);
                    }
                }
                if let Some(m) = most {
                    members.retain(|&x| x != m);
                    *lastmod = now;
                }
            }
            if let Some(l) = least {
                let d = dests.by_id(l).unwrap();
                let busy = d.active_conns > d.weight()
                    && dests.iter().any(|(_, _, m)| u64::from(m.active_conns) * 2 < u64::from(m.weight()));
                if !busy {
                    return pos_of(l);
                }
            }
            let pos = naive_wlc(dests)?;
            let id = dests.id(pos);
            if !members.contains(&id) {
                members.insert(0, id);
                *lastmod = now;
            }
            Some(pos)
        }
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_loop(w in weights(), ops in ops()) {
            let mut f = Fixture::new(SchedulerKind::Lblcr, &w);
            let mut naive = NaiveLblcr::default();
            let mut now = Instant::ZERO;
            for op in &ops {
                if let Op::Pick { vaddr, advance } = *op {
                    now = now.after(Duration::from_secs(advance.into()));
                    let expected = naive.schedule(f.list(), vip(vaddr), now);
                    prop_assert_eq!(pick_at(&mut f, vip(vaddr), now), expected);
                } else if let Some(change) = apply(&mut f, op) {
                    naive.follow(f.list(), change);
                }
            }
        }
    }
}
