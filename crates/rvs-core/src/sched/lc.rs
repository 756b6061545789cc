//! Least connections (`lc`, the kernel's ip_vs_lc.c): the destination with the smallest
//! connection overhead (active * 256 + inactive); weights only matter as "0 = quiescent".
//!
//! The kernel scans the list and replaces its pick only on a strictly smaller overhead, so
//! ties go to the earlier destination. Here an [`ArgBest`] index keeps that answer at its
//! root: O(1) per decision, O(log n) per load change.

use super::index::{ArgBest, Candidate};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};

/// A destination's standing under `lc`: its overhead (lower is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeastOverhead(pub u64);

impl Candidate for LeastOverhead {
    fn of(d: &Destination) -> Option<Self> {
        d.is_schedulable().then(|| LeastOverhead(d.overhead()))
    }

    fn beats(&self, other: &Self) -> bool {
        self.0 < other.0
    }
}

/// Least connections.
#[derive(Debug, Default)]
pub struct LeastConnection {
    index: ArgBest<LeastOverhead>,
}

impl Scheduler for LeastConnection {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lc
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

    /// The kernel loop: first schedulable dest, replaced by any later one with a strictly
    /// smaller overhead.
    fn naive(dests: DestList<'_>) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (pos, _, d) in dests.iter() {
            if d.overloaded || d.weight() == 0 {
                continue;
            }
            if least.is_none_or(|(_, loh)| d.overhead() < loh) {
                least = Some((pos, d.overhead()));
            }
        }
        least.map(|(p, _)| p)
    }

    #[test]
    fn picks_least_overhead_and_ties_go_to_the_earlier_destination() {
        // All idle: overheads 0,0,0 -> the first wins; binding one active conn to it makes
        // its overhead 256, so the next pick is the second, then the third, then the first.
        let mut f = Fixture::new(SchedulerKind::Lc, &[1, 5, 1]);
        let picks: Vec<_> = (0..4).map(|_| f.pick_and_bind().unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0]);
    }

    #[test]
    fn inactive_connections_count_one_256th_of_active_ones() {
        // overhead(a) = 1*256 + 0 = 256, overhead(b) = 0*256 + 255 = 255 -> b.
        let mut f = Fixture::new(SchedulerKind::Lc, &[1, 1]);
        f.set_load(0, 1, 0, false);
        f.set_load(1, 0, 255, false);
        assert_eq!(f.pick(), Some(1));
        // b at 256 ties with a: the earlier one (a) wins.
        f.set_load(1, 0, 256, false);
        assert_eq!(f.pick(), Some(0));
    }

    #[test]
    fn quiescent_and_overloaded_destinations_are_skipped() {
        let mut f = Fixture::new(SchedulerKind::Lc, &[0, 1, 1]);
        f.set_load(1, 0, 0, true);
        f.set_load(2, 9, 0, false);
        assert_eq!(f.pick(), Some(2), "only the busy one is eligible");
        f.set_weight(2, 0);
        assert_eq!(f.pick(), None);
        f.set_load(1, 0, 0, false);
        assert_eq!(f.pick(), Some(1));
    }

    #[test]
    fn removal_and_addition_follow_list_positions() {
        let mut f = Fixture::new(SchedulerKind::Lc, &[1, 1, 1]);
        f.set_load(0, 2, 0, false);
        f.set_load(1, 1, 0, false);
        f.set_load(2, 1, 0, false);
        assert_eq!(f.pick(), Some(1));
        f.remove(1); // now [a(2), c(1)]
        assert_eq!(f.pick(), Some(1), "c moved to position 1");
        f.add("198.18.1.9".parse().unwrap(), 80, 1);
        assert_eq!(f.pick(), Some(2), "the new idle destination wins");
    }

    #[test]
    fn no_destination_gives_none() {
        let mut f = Fixture::new(SchedulerKind::Lc, &[]);
        assert_eq!(f.pick(), None);
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_loop(w in weights(), ops in ops()) {
            check_stateless(SchedulerKind::Lc, &w, &ops, naive)?;
        }
    }
}
