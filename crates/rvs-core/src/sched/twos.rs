//! Power of two choices (`twos`, the kernel's ip_vs_twos.c): two destinations drawn at
//! random in proportion to their weights; the less loaded one (overhead / weight) wins.
//!
//! As in the kernel: `total` = sum of the schedulable weights + 1; `r1 = rand % total`,
//! `r2 = rand % total` (two draws, in that order, only when some destination is
//! schedulable); choice `i` is the first schedulable destination at which the running sum
//! of weights reaches `r_i` (the first schedulable one when `r_i` is 0); choice 2 replaces
//! choice 1 only if `w2 * overhead1 > w1 * overhead2`.
//!
//! A sum tree over positions finds each choice in O(log n) instead of walking the list.

use super::index::{DestIndex, Sum, dest_at};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};

/// Power of two choices.
#[derive(Debug, Default)]
pub struct PowerOfTwoChoices {
    /// Weight of each schedulable destination, 0 for the others.
    weights: DestIndex<Sum>,
}

fn weight_leaf(_pos: usize, d: &Destination) -> Sum {
    Sum(if d.is_schedulable() { u64::from(d.weight()) } else { 0 })
}

impl Scheduler for PowerOfTwoChoices {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Twos
    }

    fn update_dests(&mut self, dests: DestList<'_>, change: DestChange) {
        self.weights.update_dests(dests, change, weight_leaf);
    }

    fn load_changed(&mut self, dests: DestList<'_>, pos: usize) {
        self.weights.load_changed(dests, pos, weight_leaf);
    }

    fn schedule(&mut self, dests: DestList<'_>, req: &mut SchedRequest<'_>) -> Option<DestId> {
        self.weights.ensure_in_step(dests, weight_leaf);
        let tree = self.weights.tree();
        let sum = tree.root().0;
        if sum == 0 {
            return None;
        }
        let total = sum + 1;
        let r1 = u64::from(req.rng.next_u32()) % total;
        let r2 = u64::from(req.rng.next_u32()) % total;
        // "running sum reaches r" with r = 0 is the first schedulable destination, which is
        // also the first one whose running sum reaches 1.
        let p1 = tree.first_reaching(r1.max(1))?;
        let p2 = tree.first_reaching(r2.max(1))?;
        let (d1, d2) = (dest_at(&dests, p1)?, dest_at(&dests, p2)?);
        let second_is_lighter =
            u128::from(d2.weight()) * u128::from(d1.overhead()) > u128::from(d1.weight()) * u128::from(d2.overhead());
        let pos = if second_is_lighter { p2 } else { p1 };
        dests.ids().get(pos).copied()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::index::testing::{Op, apply, ops, weights};
    use super::super::testing::Fixture;
    use super::*;
    use crate::random::{Random, SplitMix64};
    use crate::service::Protocol;
    use crate::time::Instant;

    /// Random numbers given in advance.
    struct Scripted(Vec<u32>);

    impl Random for Scripted {
        fn next_u32(&mut self) -> u32 {
            self.0.remove(0)
        }
    }

    fn pick_with(f: &mut Fixture, rng: &mut dyn Random) -> Option<usize> {
        let mut req = SchedRequest {
            protocol: Protocol::Tcp,
            client: "198.18.200.1".parse().unwrap(),
            client_port: 40000,
            vaddr: "198.18.0.10".parse().unwrap(),
            vport: 80,
            flags: f.flags,
            now: Instant::ZERO,
            rng,
        };
        let id = f.sched.schedule(DestList::new(&f.order, &f.arena), &mut req)?;
        f.order.iter().position(|&x| x == id)
    }

    /// The kernel loop, drawing from `rng` exactly as the kernel does.
    fn naive(dests: DestList<'_>, rng: &mut dyn Random) -> Option<usize> {
        let ok = |d: &Destination| !d.overloaded && d.weight() > 0;
        let total: i64 = dests.iter().filter(|(_, _, d)| ok(d)).map(|(_, _, d)| i64::from(d.weight())).sum();
        if !dests.iter().any(|(_, _, d)| ok(d)) {
            return None;
        }
        let total = total + 1;
        let mut r1 = i64::from(rng.next_u32()) % total;
        let mut r2 = i64::from(rng.next_u32()) % total;
        let (mut c1, mut c2) = (None, None);
        for (pos, _, d) in dests.iter() {
            if !ok(d) {
                continue;
            }
            r1 -= i64::from(d.weight());
            r2 -= i64::from(d.weight());
            if r1 <= 0 && c1.is_none() {
                c1 = Some(pos);
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some(pos);
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        let (c1, c2) = (c1?, c2?);
        let (d1, d2) = (dests.get(c1), dests.get(c2));
        let lighter =
            u128::from(d2.weight()) * u128::from(d1.overhead()) > u128::from(d1.weight()) * u128::from(d2.overhead());
        Some(if lighter { c2 } else { c1 })
    }

    #[test]
    fn draws_map_to_destinations_by_cumulative_weight() {
        // Weights 2,0,3 (b quiescent): total = 5 + 1 = 6. Running sums: a 2, c 5.
        // r = 0,1,2 -> a; r = 3,4,5 -> c. All idle: the second choice never wins (0 > 0 is
        // false), so the pick is choice 1.
        let mut f = Fixture::new(SchedulerKind::Twos, &[2, 0, 3]);
        for (r, expected) in [(0, 0), (1, 0), (2, 0), (3, 2), (4, 2), (5, 2), (6, 0), (9, 2)] {
            // r is taken modulo 6: 6 -> 0 (a), 9 -> 3 (c).
            assert_eq!(pick_with(&mut f, &mut Scripted(vec![r, 0])), Some(expected), "r1 = {r}");
        }
    }

    #[test]
    fn the_second_choice_wins_only_when_strictly_less_loaded() {
        // Weights 1,1: total 3; r 1 -> a, r 2 -> b.
        let mut f = Fixture::new(SchedulerKind::Twos, &[1, 1]);
        f.set_load(0, 1, 0, false); // overhead 256
        assert_eq!(pick_with(&mut f, &mut Scripted(vec![1, 2])), Some(1), "1*256 > 1*0");
        f.set_load(1, 1, 0, false);
        assert_eq!(pick_with(&mut f, &mut Scripted(vec![1, 2])), Some(0), "tie keeps choice 1");
        f.set_weight(1, 3); // total 5; b now w3: 3*256 > 1*256
        assert_eq!(pick_with(&mut f, &mut Scripted(vec![1, 2])), Some(1));
    }

    #[test]
    fn overloaded_destinations_are_not_drawn_and_none_draws_nothing() {
        let mut f = Fixture::new(SchedulerKind::Twos, &[1, 1]);
        f.set_load(0, 0, 0, true);
        // total = 2: r 0 and 1 both land on b.
        assert_eq!(pick_with(&mut f, &mut Scripted(vec![0, 1])), Some(1));
        f.set_load(1, 0, 0, true);
        // No candidate: the kernel returns before drawing; the script would panic if drawn.
        assert_eq!(pick_with(&mut f, &mut Scripted(vec![])), None);
        f.remove(1);
        f.remove(0);
        assert_eq!(pick_with(&mut f, &mut Scripted(vec![])), None);
    }

    proptest! {
        #[test]
        fn same_choice_and_same_draws_as_the_kernel_loop(w in weights(), ops in ops(), seed in any::<u64>()) {
            let mut f = Fixture::new(SchedulerKind::Twos, &w);
            let mut ours = SplitMix64::new(seed);
            let mut theirs = SplitMix64::new(seed);
            for op in &ops {
                if let Op::Pick { .. } = op {
                    let expected = naive(f.list(), &mut theirs);
                    prop_assert_eq!(pick_with(&mut f, &mut ours), expected);
                } else {
                    apply(&mut f, op);
                }
            }
            prop_assert_eq!(ours.next_u32(), theirs.next_u32(), "same number of draws");
        }
    }
}
