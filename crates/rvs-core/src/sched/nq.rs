//! Never queue (`nq`, the kernel's ip_vs_nq.c): the first idle destination (no active
//! connection) in list order; if none is idle, the shortest expected delay
//! ((active + 1) / weight, ties to the earlier destination).
//!
//! Both rules fold into one order ("idle beats busy; among busy, lower delay wins; else
//! the earlier one stays"), so an [`ArgBest`] index keeps the answer at its root.

use super::index::{ArgBest, Candidate};
use super::sed::ExpectedDelay;
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};

/// A destination's standing under `nq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeverQueueLoad {
    /// No active connection.
    pub idle: bool,
    /// Expected delay, used when no destination is idle.
    pub delay: ExpectedDelay,
}

impl Candidate for NeverQueueLoad {
    fn of(d: &Destination) -> Option<Self> {
        d.is_schedulable().then(|| NeverQueueLoad { idle: d.active_conns == 0, delay: ExpectedDelay::from_dest(d) })
    }

    fn beats(&self, other: &Self) -> bool {
        match (self.idle, other.idle) {
            (true, false) => true,
            (false, false) => self.delay.beats(&other.delay),
            _ => false,
        }
    }
}

/// Never queue.
#[derive(Debug, Default)]
pub struct NeverQueue {
    index: ArgBest<NeverQueueLoad>,
}

impl Scheduler for NeverQueue {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Nq
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

    /// The kernel loop: return the first idle schedulable dest at once, else SED.
    fn naive(dests: DestList<'_>) -> Option<usize> {
        let mut least: Option<(usize, u128, u128)> = None;
        for (pos, _, d) in dests.iter() {
            if d.overloaded || d.weight() == 0 {
                continue;
            }
            let (doh, dw) = (u128::from(d.active_conns) + 1, u128::from(d.weight()));
            if d.active_conns == 0 {
                return Some(pos);
            }
            if least.is_none_or(|(_, loh, lw)| loh * dw > doh * lw) {
                least = Some((pos, doh, dw));
            }
        }
        least.map(|(p, _, _)| p)
    }

    #[test]
    fn idle_destinations_first_then_shortest_expected_delay() {
        // Weights 1,3, each pick binds an active connection.
        // a,b idle -> a (first idle); b idle -> b; none idle: delays 2/1 vs 2/3 -> b;
        // 2 vs 3/3 -> b; 2 vs 4/3 -> b; 2 vs 5/3 -> b; 2 vs 6/3 tie -> a.
        let mut f = Fixture::new(SchedulerKind::Nq, &[1, 3]);
        let picks: Vec<_> = (0..7).map(|_| f.pick_and_bind().unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn an_idle_destination_wins_over_a_faster_busy_one() {
        // b: (1+1)/100 is a shorter delay than c's (0+1)/1, but c is idle.
        let mut f = Fixture::new(SchedulerKind::Nq, &[1, 100, 1]);
        f.set_load(0, 5, 0, false);
        f.set_load(1, 1, 0, false);
        assert_eq!(f.pick(), Some(2));
    }

    #[test]
    fn quiescent_and_overloaded_idle_destinations_are_skipped() {
        let mut f = Fixture::new(SchedulerKind::Nq, &[0, 1, 1]);
        f.set_load(1, 0, 0, true);
        f.set_load(2, 3, 0, false);
        assert_eq!(f.pick(), Some(2));
        f.set_load(2, 3, 0, true);
        assert_eq!(f.pick(), None);
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_loop(w in weights(), ops in ops()) {
            check_stateless(SchedulerKind::Nq, &w, &ops, naive)?;
        }
    }
}
