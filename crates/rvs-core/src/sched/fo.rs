//! Weighted failover (`fo`, the kernel's ip_vs_fo.c): the non-overloaded destination with
//! the highest weight; load is not considered. The kernel replaces its pick only on a
//! strictly higher weight, so the first of equal weights wins.
//!
//! An [`ArgBest`] index keeps the answer at its root: O(1) per decision.

use super::index::{ArgBest, Candidate};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};

/// A destination's standing under `fo`: its weight (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighestWeight(pub u32);

impl Candidate for HighestWeight {
    fn of(d: &Destination) -> Option<Self> {
        d.is_schedulable().then(|| HighestWeight(d.weight()))
    }

    fn beats(&self, other: &Self) -> bool {
        self.0 > other.0
    }
}

/// Weighted failover.
#[derive(Debug, Default)]
pub struct WeightedFailover {
    index: ArgBest<HighestWeight>,
}

impl Scheduler for WeightedFailover {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Fo
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::index::testing::{check_stateless, ops, weights};
    use super::super::testing::Fixture;
    use super::*;

    /// The kernel loop: highest weight above 0 among non-overloaded, strict `>`.
    fn naive(dests: DestList<'_>) -> Option<usize> {
        let (mut best, mut hw) = (None, 0);
        for (pos, _, d) in dests.iter() {
            if !d.overloaded && d.weight() > hw {
                (best, hw) = (Some(pos), d.weight());
            }
        }
        best
    }

    #[test]
    fn highest_weight_takes_everything_whatever_its_load() {
        let mut f = Fixture::new(SchedulerKind::Fo, &[2, 5, 5, 1]);
        for _ in 0..5 {
            assert_eq!(f.pick_and_bind(), Some(1), "first of the two weight-5 destinations");
        }
    }

    #[test]
    fn fails_over_when_overloaded_or_quiesced_and_back() {
        let mut f = Fixture::new(SchedulerKind::Fo, &[2, 5, 3]);
        f.set_load(1, 0, 0, true);
        assert_eq!(f.pick(), Some(2));
        f.set_weight(2, 0);
        assert_eq!(f.pick(), Some(0));
        f.set_load(1, 0, 0, false);
        assert_eq!(f.pick(), Some(1));
        f.remove(1);
        assert_eq!(f.pick(), Some(0));
        f.set_weight(0, 0);
        assert_eq!(f.pick(), None);
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_loop(w in weights(), ops in ops()) {
            check_stateless(SchedulerKind::Fo, &w, &ops, naive)?;
        }
    }
}
