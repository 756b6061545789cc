//! Weighted least connections (`wlc`, the kernel's ip_vs_wlc.c, the default scheduler): the
//! destination with the smallest overhead / weight, compared by cross-multiplication.
//!
//! The kernel replaces its pick only when strictly less loaded, so ties go to the earlier
//! destination. An [`ArgBest`] index keeps that answer at its root: O(1) per decision,
//! O(log n) per load change. lblc and lblcr reuse [`OverheadPerWeight`] for their fallback.

use super::index::{ArgBest, Candidate, ratio_less};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};

/// A destination's standing under `wlc`: overhead / weight (lower is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverheadPerWeight {
    /// active * 256 + inactive.
    pub overhead: u64,
    /// Weight (> 0).
    pub weight: u32,
}

impl Candidate for OverheadPerWeight {
    fn of(d: &Destination) -> Option<Self> {
        d.is_schedulable().then(|| OverheadPerWeight { overhead: d.overhead(), weight: d.weight() })
    }

    fn beats(&self, other: &Self) -> bool {
        ratio_less(self.overhead, self.weight, other.overhead, other.weight)
    }
}

/// Weighted least connections.
#[derive(Debug, Default)]
pub struct WeightedLeastConnection {
    index: ArgBest<OverheadPerWeight>,
}

impl Scheduler for WeightedLeastConnection {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Wlc
    }

    fn update_dests(&mut self, dests: DestList<'_>, change: DestChange) {
        self.index.update_dests(dests, change);
    }

    fn load_changed(&mut self, dests: DestList<'_>, pos: usize) {
        self.index.load_changed(dests, pos);
    }

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        self.index.best(dests)
    }
}

/// The kernel's WLC loop, scanning every destination (reference for tests).
#[cfg(test)]
pub(crate) fn naive_wlc(dests: DestList<'_>) -> Option<usize> {
    let mut it = dests.iter().skip_while(|(_, _, d)| d.overloaded || d.weight() == 0);
    let (mut least, _, first) = it.next()?;
    let (mut loh, mut lw) = (u128::from(first.overhead()), u128::from(first.weight()));
    for (pos, _, d) in it {
        if d.overloaded {
            continue;
        }
        let (doh, dw) = (u128::from(d.overhead()), u128::from(d.weight()));
        if loh * dw > doh * lw {
            (least, loh, lw) = (pos, doh, dw);
        }
    }
    Some(least)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::index::testing::{check_stateless, ops, weights};
    use super::super::testing::Fixture;
    use super::*;

    #[test]
    fn connections_follow_weights() {
        // Weights 3,1. Each pick binds one active connection (overhead +256).
        // loads (a,b) as overhead/weight: (0/3, 0/1) tie -> a; (256/3, 0) -> b;
        // (256/3, 256/1) -> a; (512/3, 256) -> a; (768/3=256, 256) tie -> a;
        // (1024/3, 256) -> b.
        let mut f = Fixture::new(SchedulerKind::Wlc, &[3, 1]);
        let picks: Vec<_> = (0..6).map(|_| f.pick_and_bind().unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn cross_multiplication_with_large_values_does_not_overflow() {
        // Same overhead 4e9 * 256 on weights 65534 (a) and 65535 (b): the products reach
        // ~2^56, and b, with the larger weight, is lighter.
        let mut f = Fixture::new(SchedulerKind::Wlc, &[65534, 65535]);
        f.set_load(0, 4_000_000_000, 0, false);
        f.set_load(1, 4_000_000_000, 0, false);
        assert_eq!(f.pick(), Some(1));
    }

    #[test]
    fn quiescent_and_overloaded_destinations_are_skipped() {
        let mut f = Fixture::new(SchedulerKind::Wlc, &[0, 1, 1]);
        f.set_load(1, 0, 0, true);
        f.set_load(2, 50, 0, false);
        assert_eq!(f.pick(), Some(2));
        f.set_load(2, 50, 0, true);
        assert_eq!(f.pick(), None);
        f.set_weight(0, 2);
        assert_eq!(f.pick(), Some(0));
    }

    #[test]
    fn edits_and_removals_update_the_choice() {
        // a: 2 active / w1 = 512, b: 2 active / w1 = 512 -> a (tie).
        let mut f = Fixture::new(SchedulerKind::Wlc, &[1, 1]);
        f.set_load(0, 2, 0, false);
        f.set_load(1, 2, 0, false);
        assert_eq!(f.pick(), Some(0));
        f.set_weight(1, 2); // b: 512/2 = 256 < 512
        assert_eq!(f.pick(), Some(1));
        f.remove(0);
        assert_eq!(f.pick(), Some(0));
        f.remove(0);
        assert_eq!(f.pick(), None);
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_loop(w in weights(), ops in ops()) {
            check_stateless(SchedulerKind::Wlc, &w, &ops, naive_wlc)?;
        }
    }
}
