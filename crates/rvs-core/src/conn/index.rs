//! The connection table's hash index: open addressing with linear probing over 8-byte
//! entries (32-bit tag + 32-bit slot number), backward-shift deletion (no tombstones).
//!
//! Every connection is indexed by a hash of (protocol, client address, client port) only,
//! like the kernel's table. Both directions find it from there: a client packet knows the
//! client address/port as its source, a NAT reply from a real server as its destination; the
//! caller's predicate then checks the rest of the key. One entry per connection, one probe
//! sequence per lookup, usually one cache line.

/// Slot numbers are stored +1 so that 0 means "empty".
const EMPTY: u64 = 0;

/// Open-addressing index from a 64-bit hash to slot numbers.
#[derive(Debug, Clone)]
pub struct HashIndex {
    entries: Vec<u64>,
    mask: usize,
    len: usize,
}

fn pack(hash: u64, slot: u32) -> u64 {
    ((hash >> 32) << 32) | (u64::from(slot) + 1)
}

fn tag_of(e: u64) -> u32 {
    (e >> 32) as u32
}

fn slot_of(e: u64) -> u32 {
    ((e & 0xFFFF_FFFF) as u32).wrapping_sub(1)
}

impl HashIndex {
    /// An index sized for `expected` entries without growing.
    pub fn with_capacity(expected: usize) -> HashIndex {
        let cap = (expected.saturating_mul(4) / 3).max(16).next_power_of_two();
        let entries = vec![EMPTY; cap];
        super::hugepages::advise(&entries);
        HashIndex { entries, mask: cap - 1, len: 0 }
    }

    /// Number of indexed slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes used by the index.
    pub fn heap_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<u64>()
    }

    fn home(&self, hash: u64) -> usize {
        position_hash((hash >> 32) as u32) & self.mask
    }

    /// Adds `slot` under `hash` (duplicates of the hash are allowed).
    pub fn insert(&mut self, hash: u64, slot: u32) {
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        let mut i = self.home(hash);
        while self.entries[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.entries[i] = pack(hash, slot);
        self.len += 1;
    }

    /// The first slot under `hash` for which `is_match(slot)` is true.
    #[inline]
    pub fn find(&self, hash: u64, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = (hash >> 32) as u32;
        let mut i = self.home(hash);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return None;
            }
            if tag_of(e) == tag && is_match(slot_of(e)) {
                return Some(slot_of(e));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The slot in the first probe position for `hash` if its tag matches: a cheap first
    /// look used to start memory loads early when looking up a batch.
    #[inline]
    pub fn peek(&self, hash: u64) -> Option<u32> {
        let e = self.entries[self.home(hash)];
        (e != EMPTY && tag_of(e) == (hash >> 32) as u32).then(|| slot_of(e))
    }

    /// Removes the entry for `slot` stored under `hash`. Returns false if it was not there.
    pub fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let want = pack(hash, slot);
        let mut i = self.home(hash);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return false;
            }
            if e == want {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward-shift: move later entries of the cluster into the hole when their home
        // position allows it.
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        loop {
            let e = self.entries[j];
            if e == EMPTY {
                break;
            }
            let home = position_hash(tag_of(e)) & self.mask;
            // Entry at j may move to `hole` if its home is not in (hole, j] cyclically.
            let dist_home_to_j = j.wrapping_sub(home) & self.mask;
            let dist_hole_to_j = j.wrapping_sub(hole) & self.mask;
            if dist_home_to_j >= dist_hole_to_j {
                self.entries[hole] = e;
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.entries[hole] = EMPTY;
        self.len -= 1;
        true
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.entries);
        let cap = (old.len() * 2).max(16);
        self.entries = vec![EMPTY; cap];
        super::hugepages::advise(&self.entries);
        self.mask = cap - 1;
        self.len = 0;
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            let mut i = position_hash(tag_of(e)) & self.mask;
            while self.entries[i] != EMPTY {
                i = (i + 1) & self.mask;
            }
            self.entries[i] = e;
            self.len += 1;
        }
    }
}

/// Home position of an entry, derived from its 32-bit tag (the upper half of the hash) so
/// that deletion and growth can recompute it from the stored entry alone.
#[inline]
fn position_hash(tag: u32) -> usize {
    tag as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Random inserts and removes against a plain multimap: every present slot is found
        /// under its hash, removed ones are not, and the length matches.
        #[test]
        fn behaves_like_a_multimap(ops in proptest::collection::vec((0u8..3, 0u64..64, 0u32..40), 1..400)) {
            let mut idx = HashIndex::with_capacity(4);
            let mut model: Vec<(u64, u32)> = Vec::new();
            for (op, h, slot) in ops {
                // Few distinct hashes with colliding low bits exercise clusters and wrap-around.
                let hash = (h.wrapping_mul(0x0100_0000_0001) << 32) | h;
                match op {
                    0 | 1 if !model.iter().any(|&(_, s)| s == slot) => {
                        idx.insert(hash, slot);
                        model.push((hash, slot));
                    }
                    2 => {
                        let had = model.iter().position(|&(hh, s)| hh == hash && s == slot);
                        prop_assert_eq!(idx.remove(hash, slot), had.is_some());
                        if let Some(p) = had { model.swap_remove(p); }
                    }
                    _ => {}
                }
                prop_assert_eq!(idx.len(), model.len());
                for &(hh, s) in &model {
                    prop_assert_eq!(idx.find(hh, |x| x == s), Some(s));
                }
            }
        }
    }
}
