//! Weighted round robin (`wrr`, the kernel's ip_vs_wrr.c).
//!
//! State, as in the kernel: the last pick `cl` (a position or the list head), the current
//! weight `cw`, `di` = gcd of the positive weights (1 if none) and `mw` = max weight -
//! (di - 1). A decision walks the list after `cl` for the first non-overloaded destination
//! with weight >= `cw`; each time the walk passes the end of the list, `cw` drops by `di`,
//! and when it reaches 0 it restarts at `mw` (with the kernel's rules for giving up).
//! Weights 4,3,2 give a,a,b,a,b,c,a,b,c.
//!
//! On every add, edit or removal the kernel recomputes `di` and `mw`, moves `cl` to the
//! head and keeps `cw` (set to `mw` if above it or 0, otherwise rounded to
//! `(cw / di) * di + 1` when `di > 1`). [`DestChange::Reset`] re-initialises like the
//! kernel's `init_service` (`cw = mw`).
//!
//! Speed: a max-tree over positions (eligible weight, plus max weight and gcd of all
//! weights) answers "first position >= p with weight >= cw" in O(log n), and passes that
//! cannot succeed (the largest eligible weight is below `cw`) are skipped in one step, so
//! a decision costs a few tree descents however many destinations are quiescent.

use super::index::{DestIndex, Summary};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};

/// What the wrr index knows about a range of positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightSummary {
    /// Largest weight of a non-overloaded destination (0 if none).
    pub eligible_max: u32,
    /// Largest weight.
    pub weight_max: u32,
    /// Gcd of the positive weights (0 if none).
    pub weight_gcd: u32,
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Summary for WeightSummary {
    const EMPTY: Self = WeightSummary { eligible_max: 0, weight_max: 0, weight_gcd: 0 };
    fn combine(left: Self, right: Self) -> Self {
        WeightSummary {
            eligible_max: left.eligible_max.max(right.eligible_max),
            weight_max: left.weight_max.max(right.weight_max),
            weight_gcd: gcd(left.weight_gcd, right.weight_gcd),
        }
    }
}

fn weight_leaf(_pos: usize, d: &Destination) -> WeightSummary {
    let w = d.weight();
    WeightSummary { eligible_max: if d.available && !d.overloaded { w } else { 0 }, weight_max: w, weight_gcd: w }
}

/// Weighted round robin.
#[derive(Debug)]
pub struct WeightedRoundRobin {
    index: DestIndex<WeightSummary>,
    /// Last pick; `None` is the list head.
    cl: Option<usize>,
    /// Current weight.
    cw: i64,
    /// Max weight - (di - 1).
    mw: i64,
    /// Gcd of the positive weights (1 if none).
    di: i64,
}

impl Default for WeightedRoundRobin {
    fn default() -> Self {
        WeightedRoundRobin { index: DestIndex::default(), cl: None, cw: 0, mw: 0, di: 1 }
    }
}

impl WeightedRoundRobin {
    /// Recomputes `di` and `mw` from the index.
    fn refresh_weights(&mut self) {
        let root = self.index.tree().root();
        self.di = if root.weight_gcd == 0 { 1 } else { i64::from(root.weight_gcd) };
        self.mw = i64::from(root.weight_max) - (self.di - 1);
    }

    /// The kernel's `dest_changed` (add, edit, delete).
    fn dest_changed(&mut self) {
        self.cl = None;
        self.refresh_weights();
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    /// The kernel's `init_service`.
    fn init(&mut self) {
        self.cl = None;
        self.refresh_weights();
        self.cw = self.mw;
    }

    /// The kernel's walk; returns the chosen position and leaves `cl`/`cw` where the kernel
    /// leaves them.
    fn walk(&mut self) -> Option<usize> {
        if self.mw == 0 {
            return None;
        }
        let tree = self.index.tree();
        let eligible_max = i64::from(tree.root().eligible_max);
        let last = self.cl;
        let mut after = self.cl;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            let from = after.map_or(0, |p| p + 1);
            if from == 0 && stop.is_none() && eligible_max < self.cw {
                // A whole-list pass at this cw finds nothing. Skip the passes that would
                // also fail, as long as their decrement neither restarts (cw <= 0) nor, after
                // a restart, reaches the last pass (cw <= di, where `stop` gets set).
                let floor = if restarted { self.di + 1 } else { 1 };
                let failing = (self.cw - eligible_max + self.di - 1) / self.di;
                let plain = if self.cw >= floor { (self.cw - floor) / self.di } else { 0 };
                let skip = failing.min(plain);
                if skip > 0 {
                    self.cw -= skip * self.di;
                    last_pass = self.cw <= self.di;
                }
            }
            let cw = self.cw;
            let hit = tree.first_from(from, |s| i64::from(s.eligible_max) >= cw);
            match (hit, stop) {
                (Some(p), Some(s)) if p <= s => {
                    self.cl = Some(p);
                    return Some(p);
                }
                (Some(p), None) => {
                    self.cl = Some(p);
                    return Some(p);
                }
                (_, Some(s)) => {
                    // Checked every destination up to `stop` on the last pass.
                    self.cl = Some(s);
                    return None;
                }
                (None, None) => {}
            }
            // Passed the end of the list.
            after = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}

impl Scheduler for WeightedRoundRobin {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Wrr
    }

    fn update_dests(&mut self, dests: DestList<'_>, change: DestChange) {
        self.index.update_dests(dests, change, weight_leaf);
        match change {
            DestChange::Reset => self.init(),
            _ => self.dest_changed(),
        }
    }

    fn load_changed(&mut self, dests: DestList<'_>, pos: usize) {
        self.index.load_changed(dests, pos, weight_leaf);
    }

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        if self.index.tree().len() != dests.len() {
            self.index.rebuild(dests, weight_leaf);
            self.dest_changed();
        }
        let pos = self.walk()?;
        dests.ids().get(pos).copied()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::index::testing::{Op, apply, ops, weights};
    use super::super::testing::Fixture;
    use super::*;

    /// A literal port of the kernel's wrr: gcd/max by scanning, and the walk entry by entry
    /// (position `None` is the list head).
    struct NaiveWrr {
        cl: Option<usize>,
        cw: i64,
        mw: i64,
        di: i64,
    }

    impl NaiveWrr {
        fn new() -> Self {
            NaiveWrr { cl: None, cw: 0, mw: 0, di: 1 }
        }

        fn weights(&mut self, dests: DestList<'_>) {
            let mut g = 0u32;
            for (_, _, d) in dests.iter() {
                if d.weight() > 0 {
                    g = if g > 0 { gcd(d.weight(), g) } else { d.weight() };
                }
            }
            self.di = if g > 0 { i64::from(g) } else { 1 };
            let max = dests.iter().map(|(_, _, d)| d.weight()).max().unwrap_or(0);
            self.mw = i64::from(max) - (self.di - 1);
        }

        fn follow(&mut self, dests: DestList<'_>, change: DestChange) {
            self.cl = None;
            self.weights(dests);
            // init_service on a reset, dest_changed otherwise.
            if change == DestChange::Reset || self.cw > self.mw || self.cw == 0 {
                self.cw = self.mw;
            } else if self.di > 1 {
                self.cw = (self.cw / self.di) * self.di + 1;
            }
        }

        fn schedule(&mut self, dests: DestList<'_>) -> Option<usize> {
            let n = dests.len();
            let mut dest = self.cl;
            if self.mw == 0 {
                return None;
            }
            let last = dest;
            let mut stop = None;
            let (mut last_pass, mut restarted) = (false, false);
            for _ in 0..1_000_000 {
                for p in dest.map_or(0, |p| p + 1)..n {
                    let d = dests.get(p);
                    if !d.overloaded && i64::from(d.weight()) >= self.cw {
                        self.cl = Some(p);
                        return Some(p);
                    }
                    if stop == Some(p) {
                        self.cl = Some(p);
                        return None;
                    }
                }
                dest = None;
                self.cw -= self.di;
                if self.cw <= 0 {
                    self.cw = self.mw;
                    if last_pass || last.is_none() {
                        self.cl = None;
                        return None;
                    }
                    restarted = true;
                }
                last_pass = self.cw <= self.di;
                if last_pass && restarted && last.is_some() {
                    stop = last;
                }
            }
            panic!("naive wrr did not stop");
        }
    }

    fn reset(f: &mut Fixture) {
        apply(f, &Op::Reset);
    }

    fn picks(f: &mut Fixture, n: usize) -> String {
        (0..n).map(|_| f.pick().map_or('-', |p| (b'a' + p as u8) as char)).collect()
    }

    #[test]
    fn weights_4_3_2_interleave() {
        // After a reset (init_service): di = 1, mw = cw = 4. Walk (cw, pick):
        // (4,a) (4: b,c fail -> 3, a) (3,b) (3: c fails -> 2, a) (2,b) (2,c)
        // (end -> 1, a) (1,b) (1,c) (end -> 0 -> restart at 4, a) ...
        let mut f = Fixture::new(SchedulerKind::Wrr, &[4, 3, 2]);
        reset(&mut f);
        assert_eq!(picks(&mut f, 18), "aababcabcaababcabc");
    }

    #[test]
    fn destinations_added_one_by_one_start_from_cw_left_by_the_first_add() {
        // ipvsadm -A then -a x3: adding a(4) alone gives di = 4, mw = 1, cw = 0 -> 1; adding
        // b(3), c(2) gives di = 1, mw = 4 and keeps cw = 1. So the first round is a,b,c at
        // cw 1, then the walk restarts at cw = 4 and cycles as usual.
        let mut f = Fixture::new(SchedulerKind::Wrr, &[4, 3, 2]);
        assert_eq!(picks(&mut f, 12), "abcaababcabc");
    }

    #[test]
    fn common_divisor_is_used_as_the_step() {
        // Weights 4,2 after reset: di = 2, mw = 4 - 1 = 3, cw = 3: (3,a) (3: b fails -> 1, a)
        // (1,b) (end -> -1 -> restart 3, a) ...: a,a,b repeating.
        let mut f = Fixture::new(SchedulerKind::Wrr, &[4, 2]);
        reset(&mut f);
        assert_eq!(picks(&mut f, 6), "aabaab");
    }

    #[test]
    fn quiescent_and_overloaded_are_skipped_and_all_overloaded_gives_none() {
        // Weights 2,0,1; b is quiescent. With c overloaded only a is left.
        let mut f = Fixture::new(SchedulerKind::Wrr, &[2, 0, 1]);
        reset(&mut f);
        // di = 1, mw = cw = 2: (2,a); from after a, b(0) and c(1) fail at 2, cw -> 1 and
        // the walk restarts at the head: a; (1,c); end -> cw 0 -> restart at 2: a; ...
        // Then c overloaded: a every time. Then a overloaded too: every pass fails.
        assert_eq!(picks(&mut f, 6), "aacaac");
        f.set_load(2, 0, 0, true);
        assert_eq!(picks(&mut f, 3), "aaa");
        f.set_load(0, 0, 0, true);
        assert_eq!(picks(&mut f, 2), "--");
    }

    #[test]
    fn all_weights_zero_gives_none_and_an_edit_recovers() {
        let mut f = Fixture::new(SchedulerKind::Wrr, &[0, 0]);
        assert_eq!(f.pick(), None);
        // Edit b to 3: di = 3, mw = 1, cw (0) -> 1.
        f.set_weight(1, 3);
        assert_eq!(picks(&mut f, 3), "bbb");
    }

    #[test]
    fn edit_moves_the_walk_back_to_the_head_and_rounds_cw() {
        // Reset with weights 4,3,2: cw = 4. Picks a,a (cw 4 then 3). Editing c to 2 (same
        // weight) still resets cl to the head; di = 1 keeps cw = 3: next a (4 >= 3), b.
        let mut f = Fixture::new(SchedulerKind::Wrr, &[4, 3, 2]);
        reset(&mut f);
        assert_eq!(picks(&mut f, 2), "aa");
        f.set_weight(2, 2);
        assert_eq!(picks(&mut f, 2), "ab");
        // Now weights 4,2,2 via editing b: di = 2, mw = 3, cw = 3 -> (3/2)*2+1 = 3; cl head.
        f.set_weight(1, 2);
        // (3,a) (3: fail -> 1, a) (1,b) (1,c) (end -> -1 -> restart 3, a)
        assert_eq!(picks(&mut f, 5), "aabca");
    }

    #[test]
    fn removal_resets_the_walk() {
        let mut f = Fixture::new(SchedulerKind::Wrr, &[1, 1, 1]);
        reset(&mut f);
        assert_eq!(picks(&mut f, 2), "ab");
        f.remove(0); // b,c; cl -> head, cw stays 1
        assert_eq!(picks(&mut f, 3), "aba");
        f.remove(0);
        f.remove(0);
        assert_eq!(f.pick(), None);
    }

    fn small(w: u32) -> u32 {
        // Keep the naive walk fast: it takes up to 2 * max weight passes.
        if w < 6 { w } else { w % 200 }
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_walk(w in weights(), ops in ops()) {
            let w: Vec<u32> = w.into_iter().map(small).collect();
            let mut f = Fixture::new(SchedulerKind::Wrr, &[]);
            let mut naive = NaiveWrr::new();
            for &x in &w {
                let change = apply(&mut f, &Op::Add { weight: x }).unwrap();
                naive.follow(f.list(), change);
            }
            for op in &ops {
                let op = match *op {
                    Op::Weight { pos, weight } => Op::Weight { pos, weight: small(weight) },
                    Op::Add { weight } => Op::Add { weight: small(weight) },
                    ref other => other.clone(),
                };
                if let Op::Pick { .. } = op {
                    let expected = naive.schedule(f.list());
                    prop_assert_eq!(f.pick(), expected, "list {:?}", f.list());
                } else if let Some(change) = apply(&mut f, &op) {
                    naive.follow(f.list(), change);
                }
            }
        }
    }
}
