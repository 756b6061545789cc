//! Weighted overflow (`ovf`, the kernel's ip_vs_ovf.c): the highest-weight destination
//! whose active connections do not exceed its weight; when it fills up, connections
//! overflow to the next highest. Only active connections count. The first of equal
//! weights wins (the kernel replaces its pick only on a strictly higher weight).
//!
//! An [`ArgBest`] index keeps the answer at its root: O(1) per decision.

use super::index::{ArgBest, Candidate};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};

/// A destination's standing under `ovf`: its weight, while it has room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightWithRoom(pub u32);

impl Candidate for WeightWithRoom {
    fn of(d: &Destination) -> Option<Self> {
        (d.is_schedulable() && d.active_conns <= d.weight()).then(|| WeightWithRoom(d.weight()))
    }

    fn beats(&self, other: &Self) -> bool {
        self.0 > other.0
    }
}

/// Weighted overflow.
#[derive(Debug, Default)]
pub struct WeightedOverflow {
    index: ArgBest<WeightWithRoom>,
}

impl Scheduler for WeightedOverflow {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Ovf
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

    /// The kernel loop.
    fn naive(dests: DestList<'_>) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (pos, _, d) in dests.iter() {
            let w = d.weight();
            if d.overloaded || d.active_conns > w || w == 0 {
                continue;
            }
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((pos, w));
            }
        }
        best.map(|(p, _)| p)
    }

    #[test]
    fn fills_the_heaviest_up_to_its_weight_then_overflows() {
        // Weights 1,2. b (w2) is eligible while active <= 2: it takes connections 1..3
        // (active 0,1,2 before each bind); then active 3 > 2 and a (w1) takes 2 (active
        // 0,1); then nobody has room.
        let mut f = Fixture::new(SchedulerKind::Ovf, &[1, 2]);
        let picks: Vec<_> = (0..5).map(|_| f.pick_and_bind().unwrap()).collect();
        assert_eq!(picks, vec![1, 1, 1, 0, 0]);
        assert_eq!(f.pick(), None);
    }

    #[test]
    fn ties_go_to_the_earlier_and_inactive_connections_do_not_count() {
        let mut f = Fixture::new(SchedulerKind::Ovf, &[3, 3]);
        f.set_load(0, 3, 1000, false);
        assert_eq!(f.pick(), Some(0));
        f.set_load(0, 4, 0, false);
        assert_eq!(f.pick(), Some(1));
        f.set_load(1, 0, 0, true);
        assert_eq!(f.pick(), None);
        f.set_weight(0, 4);
        assert_eq!(f.pick(), Some(0));
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_loop(w in weights(), ops in ops()) {
            check_stateless(SchedulerKind::Ovf, &w, &ops, naive)?;
        }
    }
}
