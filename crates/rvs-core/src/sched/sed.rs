//! Shortest expected delay (`sed`, the kernel's ip_vs_sed.c): the destination with the
//! smallest (active + 1) / weight; inactive connections are ignored.
//!
//! Ties go to the earlier destination (the kernel replaces its pick only when strictly
//! better). An [`ArgBest`] index keeps the answer at its root: O(1) per decision.

use super::index::{ArgBest, Candidate, ratio_less};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};

/// A destination's standing under `sed`: (active + 1) / weight (lower is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedDelay {
    /// active + 1.
    pub queue: u64,
    /// Weight (> 0).
    pub weight: u32,
}

impl ExpectedDelay {
    /// The expected delay of `d` (whether or not it may be picked).
    pub fn from_dest(d: &Destination) -> ExpectedDelay {
        ExpectedDelay { queue: u64::from(d.active_conns) + 1, weight: d.weight() }
    }
}

impl Candidate for ExpectedDelay {
    fn of(d: &Destination) -> Option<Self> {
        d.is_schedulable().then(|| ExpectedDelay::from_dest(d))
    }

    fn beats(&self, other: &Self) -> bool {
        ratio_less(self.queue, self.weight, other.queue, other.weight)
    }
}

/// Shortest expected delay.
#[derive(Debug, Default)]
pub struct ShortestExpectedDelay {
    index: ArgBest<ExpectedDelay>,
}

impl Scheduler for ShortestExpectedDelay {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Sed
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

/// The kernel's SED loop, scanning every destination (reference for tests).
#[cfg(test)]
pub(crate) fn naive_sed(dests: DestList<'_>) -> Option<usize> {
    let mut it = dests.iter().skip_while(|(_, _, d)| d.overloaded || d.weight() == 0);
    let (mut least, _, first) = it.next()?;
    let (mut loh, mut lw) = (u128::from(first.active_conns) + 1, u128::from(first.weight()));
    for (pos, _, d) in it {
        if d.overloaded {
            continue;
        }
        let (doh, dw) = (u128::from(d.active_conns) + 1, u128::from(d.weight()));
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
    fn counts_the_incoming_connection() {
        // Weights 1,3; each pick binds an active connection. Delays (a+1)/1 vs (b+1)/3:
        // 1 vs 1/3 -> b; 1 vs 2/3 -> b; 1 vs 3/3 tie -> a; 2 vs 1 -> b; 2 vs 4/3 -> b;
        // 2 vs 5/3 -> b; 2 vs 6/3 tie -> a.
        let mut f = Fixture::new(SchedulerKind::Sed, &[1, 3]);
        let picks: Vec<_> = (0..7).map(|_| f.pick_and_bind().unwrap()).collect();
        assert_eq!(picks, vec![1, 1, 0, 1, 1, 1, 0]);
    }

    #[test]
    fn inactive_connections_are_ignored() {
        let mut f = Fixture::new(SchedulerKind::Sed, &[1, 1]);
        f.set_load(0, 0, 1000, false);
        f.set_load(1, 1, 0, false);
        assert_eq!(f.pick(), Some(0), "1/1 < 2/1 whatever the inactive count");
    }

    #[test]
    fn quiescent_and_overloaded_are_skipped_and_empty_gives_none() {
        let mut f = Fixture::new(SchedulerKind::Sed, &[0, 1, 1]);
        f.set_load(1, 0, 0, true);
        f.set_load(2, 7, 0, false);
        assert_eq!(f.pick(), Some(2));
        f.remove(2);
        assert_eq!(f.pick(), None);
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_loop(w in weights(), ops in ops()) {
            check_stateless(SchedulerKind::Sed, &w, &ops, naive_sed)?;
        }
    }
}
