//! Round robin (`rr`, the kernel's ip_vs_rr.c): a cursor walks the list; each decision takes
//! the next schedulable destination after the cursor (wrapping, the cursor's own
//! destination last), and moves the cursor there.
//!
//! The cursor is a list position or the list head (before the first destination). When the
//! cursor's destination is removed, the cursor moves to the previous entry, as the kernel's
//! `del_dest` does. A count index over positions finds "the next schedulable position >= p"
//! in O(log n), so long runs of quiescent or overloaded destinations cost nothing.

use super::index::{DestIndex, Sum};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::{DestId, Destination};

/// Round robin.
#[derive(Debug, Default)]
pub struct RoundRobin {
    /// 1 per schedulable destination.
    eligible: DestIndex<Sum>,
    /// Position of the last pick; `None` is the list head.
    cursor: Option<usize>,
}

fn eligible_leaf(_pos: usize, d: &Destination) -> Sum {
    Sum(u64::from(d.is_schedulable()))
}

impl Scheduler for RoundRobin {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Rr
    }

    fn update_dests(&mut self, dests: DestList<'_>, change: DestChange) {
        match change {
            DestChange::Removed { pos, .. } => {
                self.cursor = match self.cursor {
                    // The cursor's destination went away: step back to the previous entry.
                    Some(c) if c == pos => c.checked_sub(1),
                    Some(c) if c > pos => Some(c - 1),
                    other => other,
                };
            }
            DestChange::Reset => self.cursor = None,
            DestChange::Added { .. } | DestChange::Edited { .. } => {}
        }
        if self.cursor.is_some_and(|c| c >= dests.len()) {
            self.cursor = None;
        }
        self.eligible.update_dests(dests, change, eligible_leaf);
    }

    fn load_changed(&mut self, dests: DestList<'_>, pos: usize) {
        self.eligible.load_changed(dests, pos, eligible_leaf);
    }

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        self.eligible.ensure_in_step(dests, eligible_leaf);
        let tree = self.eligible.tree();
        let any = |s: &Sum| s.0 > 0;
        let pos = match self.cursor {
            None => tree.first_from(0, any),
            // After the cursor to the end, then from the start up to the cursor itself.
            Some(c) => tree.first_from(c + 1, any).or_else(|| tree.first_from(0, any).filter(|&p| p <= c)),
        }?;
        self.cursor = Some(pos);
        dests.ids().get(pos).copied()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::index::testing::{Op, apply, ops, weights};
    use super::super::testing::Fixture;
    use super::*;

    /// The kernel's rr as a linked-list walk, with its own cursor.
    #[derive(Default)]
    struct NaiveRr {
        cursor: Option<usize>,
    }

    impl NaiveRr {
        fn follow(&mut self, change: DestChange) {
            match change {
                DestChange::Removed { pos, .. } => {
                    if let Some(c) = self.cursor {
                        self.cursor = if c == pos {
                            if c == 0 { None } else { Some(c - 1) }
                        } else if c > pos {
                            Some(c - 1)
                        } else {
                            Some(c)
                        };
                    }
                }
                DestChange::Reset => self.cursor = None,
                _ => {}
            }
        }

        fn schedule(&mut self, dests: DestList<'_>) -> Option<usize> {
            let n = dests.len();
            let ok = |p: usize| {
                let d = dests.get(p);
                !d.overloaded && d.weight() > 0
            };
            // Visit the entries after the cursor, wrapping over the head, ending with the
            // cursor's own entry (or, from the head, every entry once).
            let order: Vec<usize> = match self.cursor {
                None => (0..n).collect(),
                Some(c) => (c + 1..n).chain(0..=c).collect(),
            };
            let hit = order.into_iter().find(|&p| ok(p))?;
            self.cursor = Some(hit);
            Some(hit)
        }
    }

    #[test]
    fn cycles_in_list_order_skipping_quiescent_and_overloaded() {
        let mut f = Fixture::new(SchedulerKind::Rr, &[1, 0, 3, 1]);
        f.set_load(3, 0, 0, true);
        // Eligible: a (0) and c (2). Weights other than 0 do not matter.
        let picks: Vec<_> = (0..5).map(|_| f.pick().unwrap()).collect();
        assert_eq!(picks, vec![0, 2, 0, 2, 0]);
        f.set_load(3, 0, 0, false);
        // Cursor at a: next are c, d, a.
        let picks: Vec<_> = (0..3).map(|_| f.pick().unwrap()).collect();
        assert_eq!(picks, vec![2, 3, 0]);
    }

    #[test]
    fn only_the_cursor_destination_left_is_picked_again() {
        let mut f = Fixture::new(SchedulerKind::Rr, &[1, 1]);
        assert_eq!(f.pick(), Some(0));
        f.set_weight(1, 0);
        assert_eq!(f.pick(), Some(0), "after the cursor nothing, then the cursor itself");
        f.set_weight(0, 0);
        assert_eq!(f.pick(), None);
    }

    #[test]
    fn removing_the_cursor_destination_steps_back_to_the_previous_one() {
        // a,b,c,d; picks a,b: cursor at b. Remove b: cursor goes back to a, so the next
        // pick is the one after a, i.e. c.
        let mut f = Fixture::new(SchedulerKind::Rr, &[1, 1, 1, 1]);
        assert_eq!(f.pick(), Some(0));
        assert_eq!(f.pick(), Some(1));
        f.remove(1); // a,c,d
        assert_eq!(f.pick(), Some(1), "c");
        // Cursor at c (1). Remove a (before the cursor): cursor stays on c, now position 0.
        f.remove(0); // c,d
        assert_eq!(f.pick(), Some(1), "d");
        // Cursor on d (1). Remove c (0): the cursor stays on d, now position 0, and the
        // walk after d wraps around to d itself.
        f.remove(0); // d
        assert_eq!(f.pick(), Some(0));
        // Removing the first entry while the cursor is on it: back to the head, so the next
        // pick is the new first entry (e), not the one after it (f).
        f.add("198.18.1.9".parse().unwrap(), 80, 1); // d,e
        f.add("198.18.1.10".parse().unwrap(), 80, 1); // d,e,f
        f.remove(0); // e,f ; cursor -> head
        assert_eq!(f.pick(), Some(0));
        assert_eq!(f.pick(), Some(1));
    }

    #[test]
    fn empty_service_gives_none() {
        let mut f = Fixture::new(SchedulerKind::Rr, &[]);
        assert_eq!(f.pick(), None);
    }

    proptest! {
        #[test]
        fn same_choice_as_the_kernel_walk(w in weights(), ops in ops()) {
            let mut f = Fixture::new(SchedulerKind::Rr, &w);
            let mut naive = NaiveRr::default();
            for op in &ops {
                if let Op::Pick { .. } = op {
                    let expected = naive.schedule(f.list());
                    prop_assert_eq!(f.pick(), expected);
                } else if let Some(change) = apply(&mut f, op) {
                    naive.follow(change);
                }
            }
        }
    }
}
