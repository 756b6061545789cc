//! Load indexes over a service's destination list, so schedulers decide in O(log n) or O(1)
//! instead of scanning every destination.
//!
//! [`SegmentTree`] keeps one [`Summary`] per list position and the combined summary of every
//! aligned range. Combining is ordered (left range first), so a summary that keeps the left
//! candidate unless the right one is strictly better ([`Best`]) yields the kernel's leftmost
//! argmin/argmax at the root. [`DestIndex`] keeps a tree in step with a [`DestList`] through
//! the scheduler hooks; [`ArgBest`] is the ready-made "best destination" index used by the
//! least-load schedulers.

use crate::dest::{DestId, Destination};

use super::{DestChange, DestList};

/// What a tree node knows about the positions below it.
pub trait Summary: Copy {
    /// The summary of no position at all (also the value of padding leaves).
    const EMPTY: Self;
    /// The summary of `left` followed by `right` (order matters).
    fn combine(left: Self, right: Self) -> Self;
}

/// A segment tree over list positions `0..len`.
#[derive(Debug, Clone)]
pub struct SegmentTree<S> {
    /// Leaf slots: a power of two, at least 1.
    width: usize,
    /// Positions in use.
    len: usize,
    /// `nodes[1]` is the root; node `i` has children `2i` and `2i+1`; leaves start at `width`.
    nodes: Vec<S>,
}

impl<S: Summary> Default for SegmentTree<S> {
    fn default() -> Self {
        SegmentTree { width: 1, len: 0, nodes: vec![S::EMPTY; 2] }
    }
}

impl<S: Summary> SegmentTree<S> {
    /// Number of positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the tree has no position.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn node(&self, i: usize) -> S {
        self.nodes.get(i).copied().unwrap_or(S::EMPTY)
    }

    fn pull(&mut self, i: usize) {
        let value = S::combine(self.node(2 * i), self.node(2 * i + 1));
        if let Some(slot) = self.nodes.get_mut(i) {
            *slot = value;
        }
    }

    /// Replaces every position: `len` leaves given by `leaf(pos)`. O(len).
    pub fn rebuild(&mut self, len: usize, mut leaf: impl FnMut(usize) -> S) {
        self.width = len.next_power_of_two().max(1);
        self.len = len;
        self.nodes.clear();
        self.nodes.resize(2 * self.width, S::EMPTY);
        for pos in 0..len {
            if let Some(slot) = self.nodes.get_mut(self.width + pos) {
                *slot = leaf(pos);
            }
        }
        for i in (1..self.width).rev() {
            self.pull(i);
        }
    }

    /// The leaf at `pos` (`EMPTY` past the end).
    pub fn get(&self, pos: usize) -> S {
        if pos < self.len { self.node(self.width + pos) } else { S::EMPTY }
    }

    /// Sets the leaf at `pos` (ignored past the end). O(log n).
    pub fn set(&mut self, pos: usize, value: S) {
        if pos >= self.len {
            return;
        }
        let mut i = self.width + pos;
        if let Some(slot) = self.nodes.get_mut(i) {
            *slot = value;
        }
        while i > 1 {
            i /= 2;
            self.pull(i);
        }
    }

    /// Appends a position. O(log n), amortised (the tree doubles when full).
    pub fn push(&mut self, value: S) {
        if self.len < self.width {
            self.len += 1;
            self.set(self.len - 1, value);
        } else {
            let leaves: Vec<S> = (0..self.len).map(|pos| self.get(pos)).chain(std::iter::once(value)).collect();
            self.rebuild(leaves.len(), |pos| leaves.get(pos).copied().unwrap_or(S::EMPTY));
        }
    }

    /// The summary of every position.
    pub fn root(&self) -> S {
        self.node(1)
    }

    /// The first position `>= from` whose leaf satisfies `accept`. `accept` must hold on a
    /// node exactly when it holds on at least one leaf below it (e.g. "max >= x", "sum > 0"),
    /// and not on `EMPTY`. O(log n).
    pub fn first_from(&self, from: usize, accept: impl Fn(&S) -> bool) -> Option<usize> {
        if from >= self.len {
            return None;
        }
        self.search(1, 0, self.width, from, &accept)
    }

    fn search(&self, node: usize, lo: usize, hi: usize, from: usize, accept: &impl Fn(&S) -> bool) -> Option<usize> {
        if hi <= from || !accept(&self.node(node)) {
            return None;
        }
        if hi - lo == 1 {
            return (lo < self.len).then_some(lo);
        }
        let mid = lo + (hi - lo) / 2;
        self.search(2 * node, lo, mid, from, accept).or_else(|| self.search(2 * node + 1, mid, hi, from, accept))
    }

    /// Walks from the root to one leaf: at each node `go_left(left child summary)` says
    /// whether to go left (it may update its own state when going right, e.g. subtract
    /// the left sum from a target). Returns the leaf reached if it is a real position.
    /// O(log n).
    pub fn descend(&self, mut go_left: impl FnMut(&S) -> bool) -> Option<usize> {
        let mut node = 1;
        while node < self.width {
            node = if go_left(&self.node(2 * node)) { 2 * node } else { 2 * node + 1 };
        }
        let pos = node - self.width;
        (pos < self.len).then_some(pos)
    }
}

/// Sum of per-position numbers (weights for `twos`, 0/1 flags for counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sum(pub u64);

impl Summary for Sum {
    const EMPTY: Self = Sum(0);
    fn combine(left: Self, right: Self) -> Self {
        Sum(left.0.saturating_add(right.0))
    }
}

impl SegmentTree<Sum> {
    /// The first position whose prefix sum (inclusive) reaches `target` (`target >= 1`).
    pub fn first_reaching(&self, target: u64) -> Option<usize> {
        if target == 0 || self.root().0 < target {
            return None;
        }
        let mut rest = target;
        self.descend(|left| {
            if left.0 >= rest {
                true
            } else {
                rest -= left.0;
                false
            }
        })
    }
}

/// A destination's standing for a "pick the best" scheduler.
pub trait Candidate: Copy {
    /// The standing of `d`, or `None` if the scheduler may not pick it.
    fn of(d: &Destination) -> Option<Self>;
    /// True if `self` is strictly better than `other` (a later destination replaces an
    /// earlier one only when strictly better, like the kernel's loops).
    fn beats(&self, other: &Self) -> bool;
}

/// The best candidate of a range with its position: the leftmost one no later one beats.
#[derive(Debug, Clone, Copy)]
pub struct Best<C>(pub Option<(usize, C)>);

impl<C: Candidate> Summary for Best<C> {
    const EMPTY: Self = Best(None);
    fn combine(left: Self, right: Self) -> Self {
        match (left.0, right.0) {
            (Some((_, l)), Some((_, r))) if r.beats(&l) => right,
            (None, _) => right,
            _ => left,
        }
    }
}

/// True if `a_num / a_den < b_num / b_den`, compared as the kernel does, by
/// cross-multiplication (`a_num * b_den < b_num * a_den`), without overflow.
pub fn ratio_less(a_num: u64, a_den: u32, b_num: u64, b_den: u32) -> bool {
    u128::from(a_num) * u128::from(b_den) < u128::from(b_num) * u128::from(a_den)
}

/// The destination at list position `pos`, if any (never panics).
pub fn dest_at<'a>(dests: &DestList<'a>, pos: usize) -> Option<&'a Destination> {
    dests.ids().get(pos).and_then(|&id| dests.by_id(id))
}

/// A [`SegmentTree`] kept in step with a service's destination list. The caller passes
/// the same `leaf` function (position, destination → summary) to every method.
#[derive(Debug, Clone)]
pub struct DestIndex<S> {
    tree: SegmentTree<S>,
}

impl<S: Summary> Default for DestIndex<S> {
    fn default() -> Self {
        DestIndex { tree: SegmentTree::default() }
    }
}

impl<S: Summary> DestIndex<S> {
    /// The tree.
    pub fn tree(&self) -> &SegmentTree<S> {
        &self.tree
    }

    /// Recomputes every leaf. O(n).
    pub fn rebuild(&mut self, dests: DestList<'_>, leaf: impl Fn(usize, &Destination) -> S) {
        self.tree.rebuild(dests.len(), |pos| dest_at(&dests, pos).map_or(S::EMPTY, |d| leaf(pos, d)));
    }

    /// Follows a list change: O(log n) for an append or an edit, O(n) for a removal
    /// (later positions shift) or a reset.
    pub fn update_dests(&mut self, dests: DestList<'_>, change: DestChange, leaf: impl Fn(usize, &Destination) -> S) {
        match change {
            DestChange::Added { pos } if pos == self.tree.len() && dests.len() == pos + 1 => {
                let value = dest_at(&dests, pos).map_or(S::EMPTY, |d| leaf(pos, d));
                self.tree.push(value);
            }
            DestChange::Edited { pos } if self.tree.len() == dests.len() => self.load_changed(dests, pos, leaf),
            _ => self.rebuild(dests, leaf),
        }
    }

    /// Recomputes the leaf at `pos`. O(log n).
    pub fn load_changed(&mut self, dests: DestList<'_>, pos: usize, leaf: impl Fn(usize, &Destination) -> S) {
        if self.tree.len() != dests.len() {
            self.rebuild(dests, leaf);
        } else if let Some(d) = dest_at(&dests, pos) {
            self.tree.set(pos, leaf(pos, d));
        }
    }

    /// Rebuilds if the tree does not have one leaf per destination (a missed hook).
    pub fn ensure_in_step(&mut self, dests: DestList<'_>, leaf: impl Fn(usize, &Destination) -> S) {
        if self.tree.len() != dests.len() {
            self.rebuild(dests, leaf);
        }
    }
}

/// The index of a "best destination" scheduler: the root holds the kernel's answer, so a
/// decision is O(1) and a load change O(log n).
#[derive(Debug, Clone)]
pub struct ArgBest<C> {
    index: DestIndex<Best<C>>,
}

impl<C: Candidate> Default for ArgBest<C> {
    fn default() -> Self {
        ArgBest { index: DestIndex::default() }
    }
}

fn best_leaf<C: Candidate>(pos: usize, d: &Destination) -> Best<C> {
    Best(C::of(d).map(|c| (pos, c)))
}

impl<C: Candidate> ArgBest<C> {
    /// Follows a list change.
    pub fn update_dests(&mut self, dests: DestList<'_>, change: DestChange) {
        self.index.update_dests(dests, change, best_leaf::<C>);
    }

    /// Follows a load change of the destination at `pos`.
    pub fn load_changed(&mut self, dests: DestList<'_>, pos: usize) {
        self.index.load_changed(dests, pos, best_leaf::<C>);
    }

    /// List position of the best destination.
    pub fn best_pos(&mut self, dests: DestList<'_>) -> Option<usize> {
        self.index.ensure_in_step(dests, best_leaf::<C>);
        self.index.tree().root().0.map(|(pos, _)| pos)
    }

    /// The best destination.
    pub fn best(&mut self, dests: DestList<'_>) -> Option<DestId> {
        let pos = self.best_pos(dests)?;
        dests.ids().get(pos).copied()
    }
}

/// Random operations on a [`Fixture`](super::testing::Fixture) for the proptests that
/// compare each scheduler with a naive port of the kernel's loop.
#[cfg(test)]
pub(crate) mod testing {
    use proptest::prelude::*;

    use super::super::testing::Fixture;
    use super::super::{DestChange, DestList, SchedRequest};
    use crate::service::Protocol;
    use crate::time::Instant;

    /// One step of a random scenario. Positions are taken modulo the list length.
    #[derive(Debug, Clone)]
    pub enum Op {
        Load {
            pos: usize,
            active: u32,
            inactive: u32,
            overloaded: bool,
        },
        Weight {
            pos: usize,
            weight: u32,
        },
        Add {
            weight: u32,
        },
        Remove {
            pos: usize,
        },
        Reset,
        /// Schedule for destination address 198.18.0.(vaddr+1), `advance` seconds later.
        Pick {
            vaddr: u8,
            advance: u32,
        },
    }

    fn weight() -> impl Strategy<Value = u32> {
        prop_oneof![4 => 0u32..6, 1 => 0u32..=65535]
    }

    fn conns() -> impl Strategy<Value = u32> {
        prop_oneof![4 => 0u32..6, 1 => 0u32..100_000]
    }

    /// Initial weights.
    pub fn weights() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(weight(), 0..12)
    }

    /// A scenario.
    pub fn ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            6 => (any::<usize>(), conns(), conns(), prop::bool::weighted(0.25))
                .prop_map(|(pos, active, inactive, overloaded)| Op::Load { pos, active, inactive, overloaded }),
            2 => (any::<usize>(), weight()).prop_map(|(pos, weight)| Op::Weight { pos, weight }),
            1 => weight().prop_map(|weight| Op::Add { weight }),
            1 => any::<usize>().prop_map(|pos| Op::Remove { pos }),
            1 => Just(Op::Reset),
            10 => (0u8..4, prop_oneof![3 => Just(0u32), 1 => 0u32..200_000]).prop_map(|(vaddr, advance)| Op::Pick { vaddr, advance }),
        ];
        prop::collection::vec(op, 1..120)
    }

    /// Applies a non-`Pick` operation to the fixture (and so to its scheduler). Returns the
    /// list change it made, if any, so stateful reference models can follow.
    pub fn apply(f: &mut Fixture, op: &Op) -> Option<DestChange> {
        let len = f.order.len();
        match *op {
            Op::Load { pos, active, inactive, overloaded } if len > 0 => {
                f.set_load(pos % len, active, inactive, overloaded);
                None
            }
            Op::Weight { pos, weight } if len > 0 => {
                f.set_weight(pos % len, weight);
                Some(DestChange::Edited { pos: pos % len })
            }
            Op::Add { weight } => {
                let n = f.arena.iter().count();
                let addr = format!("198.18.{}.{}", 2 + n / 250, 1 + n % 250).parse().unwrap();
                f.add(addr, 80, weight);
                Some(DestChange::Added { pos: len })
            }
            Op::Remove { pos } if len > 0 => {
                let id = f.order[pos % len];
                f.remove(pos % len);
                Some(DestChange::Removed { pos: pos % len, id })
            }
            Op::Reset => {
                f.sched.update_dests(DestList::new(&f.order, &f.arena), DestChange::Reset);
                Some(DestChange::Reset)
            }
            _ => None,
        }
    }

    /// Schedules for destination address `vaddr` at `now`; returns the chosen position.
    pub fn pick_at(f: &mut Fixture, vaddr: std::net::IpAddr, now: Instant) -> Option<usize> {
        let mut req = SchedRequest {
            protocol: Protocol::Tcp,
            client: "198.18.200.1".parse().unwrap(),
            client_port: 40000,
            vaddr,
            vport: 80,
            flags: f.flags,
            now,
            rng: &mut f.rng,
        };
        let id = f.sched.schedule(DestList::new(&f.order, &f.arena), &mut req)?;
        f.order.iter().position(|&x| x == id)
    }

    /// Runs `ops` on a fixture of `kind` and compares every pick with `naive(list)`.
    pub fn check_stateless(
        kind: super::super::SchedulerKind,
        weights: &[u32],
        ops: &[Op],
        naive: fn(DestList<'_>) -> Option<usize>,
    ) -> Result<(), TestCaseError> {
        let mut f = Fixture::new(kind, weights);
        for op in ops {
            if let Op::Pick { .. } = op {
                let expected = naive(f.list());
                prop_assert_eq!(f.pick(), expected, "list {:?}", f.list());
            } else {
                apply(&mut f, op);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    struct Low(u32);
    impl Candidate for Low {
        fn of(_: &Destination) -> Option<Self> {
            None
        }
        fn beats(&self, other: &Self) -> bool {
            self.0 < other.0
        }
    }

    #[test]
    fn best_keeps_the_leftmost_of_equal_candidates() {
        // Values 3,1,2,1: the minimum 1 first appears at position 1.
        let values = [3, 1, 2, 1];
        let mut t: SegmentTree<Best<Low>> = SegmentTree::default();
        t.rebuild(4, |p| Best(Some((p, Low(values[p])))));
        assert_eq!(t.root().0.map(|(p, _)| p), Some(1));
        t.set(1, Best(None));
        assert_eq!(t.root().0.map(|(p, _)| p), Some(3));
        t.push(Best(Some((4, Low(0)))));
        assert_eq!(t.root().0.map(|(p, _)| p), Some(4));
    }

    #[test]
    fn sums_find_prefixes_and_first_nonzero_from_a_position() {
        // Weights 0,2,0,3: prefix sums 0,2,2,5.
        let w = [0u64, 2, 0, 3];
        let mut t: SegmentTree<Sum> = SegmentTree::default();
        for &x in &w {
            t.push(Sum(x));
        }
        assert_eq!(t.root(), Sum(5));
        assert_eq!(t.first_reaching(1), Some(1));
        assert_eq!(t.first_reaching(2), Some(1));
        assert_eq!(t.first_reaching(3), Some(3));
        assert_eq!(t.first_reaching(5), Some(3));
        assert_eq!(t.first_reaching(6), None);
        assert_eq!(t.first_from(0, |s| s.0 > 0), Some(1));
        assert_eq!(t.first_from(2, |s| s.0 > 0), Some(3));
        assert_eq!(t.first_from(4, |s| s.0 > 0), None);
    }
}
