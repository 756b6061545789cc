//! Source hashing (`sh`, the kernel's ip_vs_sh.c): the client address (plus its port with
//! `sh-port`) picks one of 256 buckets; the buckets hold the service's destinations tiled in
//! list order, each repeated `weight` times, from bucket 0 on, cycling until all 256 are
//! filled. A destination of weight 0 still takes one bucket, as in the kernel (its tiling
//! loop moves on once the count reaches the weight, after the first bucket).
//!
//! A bucket whose destination is quiescent or overloaded yields no destination, unless
//! `sh-fallback` is set: then the kernel's probe walks the table (bucket
//! `(offset + 2 * hash) mod 256` for offset 0..256) to the first usable destination.
//! The table is rebuilt from the current weights on every change of the list.

use std::net::IpAddr;

use super::hash::{addr_port_key, hash_32};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// log2 of the bucket count (`CONFIG_IP_VS_SH_TAB_BITS`, default 8).
pub const SH_TAB_BITS: u32 = 8;
/// Number of buckets.
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;
const SH_TAB_MASK: u32 = (1 << SH_TAB_BITS) - 1;

/// Marks a bucket with no destination (only while the list is empty).
const EMPTY: u32 = u32::MAX;

/// Source hashing.
#[derive(Debug)]
pub struct SourceHashing {
    /// List position of each bucket's destination, or [`EMPTY`].
    buckets: [u32; SH_TAB_SIZE],
}

impl Default for SourceHashing {
    fn default() -> Self {
        SourceHashing { buckets: [EMPTY; SH_TAB_SIZE] }
    }
}

impl SourceHashing {
    /// The kernel's `ip_vs_sh_hashkey`: `(offset + hash_32(port + fold(addr), 8)) & 255`.
    pub fn bucket(addr: &IpAddr, port: u16, offset: u32) -> u32 {
        offset.wrapping_add(hash_32(addr_port_key(addr, port), SH_TAB_BITS)) & SH_TAB_MASK
    }

    /// List position held by a bucket (`None` while the list is empty).
    pub fn bucket_position(&self, bucket: usize) -> Option<usize> {
        self.buckets.get(bucket).filter(|&&p| p != EMPTY).map(|&p| p as usize)
    }

    /// Tiles the buckets: each destination `max(weight, 1)` consecutive buckets, in list
    /// order, wrapping around the list until the table is full.
    fn reassign(&mut self, dests: DestList<'_>) {
        if dests.is_empty() {
            self.buckets = [EMPTY; SH_TAB_SIZE];
            return;
        }
        let mut pos = 0;
        let mut filled_for_pos = 0u32;
        for bucket in self.buckets.iter_mut() {
            *bucket = pos as u32;
            filled_for_pos += 1;
            let weight = dests.ids().get(pos).and_then(|&id| dests.by_id(id)).map_or(0, |d| d.weight());
            if filled_for_pos >= weight {
                pos = (pos + 1) % dests.len();
                filled_for_pos = 0;
            }
        }
    }

    /// The destination of a bucket, with whether it may take the connection.
    fn bucket_dest(&self, dests: DestList<'_>, bucket: u32) -> Option<(DestId, bool)> {
        let pos = self.bucket_position(bucket as usize)?;
        let id = *dests.ids().get(pos)?;
        let usable = dests.by_id(id).is_some_and(|d| d.is_schedulable());
        Some((id, usable))
    }
}

impl Scheduler for SourceHashing {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Sh
    }

    fn update_dests(&mut self, dests: DestList<'_>, _change: DestChange) {
        self.reassign(dests);
    }

    fn schedule(&mut self, dests: DestList<'_>, req: &mut SchedRequest<'_>) -> Option<DestId> {
        // TCP, UDP and SCTP (every protocol rvs serves) carry the source port sh-port uses.
        let port = if req.flags.port() { req.client_port } else { 0 };
        let ihash = Self::bucket(&req.client, port, 0);
        let (id, usable) = self.bucket_dest(dests, ihash)?;
        if usable {
            return Some(id);
        }
        if !req.flags.fallback() {
            return None;
        }
        // The kernel's fallback: roffset = (offset + ihash) mod size, bucket = hashkey with
        // that offset, i.e. (roffset + ihash) mod size; an empty bucket ends the search.
        for offset in 0..SH_TAB_SIZE as u32 {
            let roffset = (offset + ihash) % SH_TAB_SIZE as u32;
            let (id, usable) = self.bucket_dest(dests, Self::bucket(&req.client, port, roffset))?;
            if usable {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::{DestArena, DestConfig, Destination};
    use crate::sched::SchedFlags;
    use crate::sched::testing::Fixture;

    /// A table built directly (not through the boxed fixture) so its buckets can be read.
    fn table_for(weights: &[u32]) -> SourceHashing {
        let mut arena = DestArena::default();
        let order: Vec<DestId> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let mut c = DestConfig::new(format!("198.18.1.{}", i + 1).parse().unwrap(), 80);
                c.weight = w;
                arena.insert(Destination::new(c))
            })
            .collect();
        let mut sh = SourceHashing::default();
        sh.update_dests(DestList::new(&order, &arena), DestChange::Reset);
        sh
    }

    fn counts(sh: &SourceHashing, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for b in 0..SH_TAB_SIZE {
            c[sh.bucket_position(b).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn buckets_are_tiled_by_weight_in_list_order() {
        let sh = table_for(&[1, 2, 3]);
        // Pattern 0,1,1,2,2,2 repeated: 42 full periods fill 252 buckets, the last four are
        // 0,1,1,2. Counts 43, 86, 127.
        let first: Vec<usize> = (0..8).map(|b| sh.bucket_position(b).unwrap()).collect();
        assert_eq!(first, vec![0, 1, 1, 2, 2, 2, 0, 1]);
        assert_eq!(counts(&sh, 3), vec![43, 86, 127]);
        assert_eq!(sh.bucket_position(255), Some(2));
    }

    #[test]
    fn weight_zero_destination_still_takes_one_bucket_as_in_the_kernel() {
        // The kernel's `if (++d_count >= weight)` moves on after one bucket when weight is 0.
        let sh = table_for(&[2, 0, 1]);
        let first: Vec<usize> = (0..6).map(|b| sh.bucket_position(b).unwrap()).collect();
        assert_eq!(first, vec![0, 0, 1, 2, 0, 0]);
        // Period 4 (2 + 1 + 1): 64 periods exactly.
        assert_eq!(counts(&sh, 3), vec![128, 64, 64]);
    }

    #[test]
    fn weights_larger_than_the_table_give_it_all_to_the_first() {
        let sh = table_for(&[300, 1]);
        assert_eq!(counts(&sh, 2), vec![256, 0]);
    }

    #[test]
    fn bucket_is_hash_32_of_port_plus_folded_source() {
        // 198.18.200.1 = 0xC612C801: top byte of 0xC612C801 * 0x61C88647 (mod 2^32) is 101.
        assert_eq!(SourceHashing::bucket(&"198.18.200.1".parse().unwrap(), 0, 0), 101);
        // With port 40000: 0xC612C801 + 0x9C40 = 0xC6136441, hash byte 9.
        assert_eq!(SourceHashing::bucket(&"198.18.200.1".parse().unwrap(), 40000, 0), 9);
        // The offset is added after hashing, modulo 256.
        assert_eq!(SourceHashing::bucket(&"198.18.200.1".parse().unwrap(), 0, 200), (101 + 200) % 256);
    }

    #[test]
    fn same_client_always_gets_the_same_destination() {
        let mut f = Fixture::new(SchedulerKind::Sh, &[1, 1, 1]);
        // Bucket 101 holds position 101 mod 3 = 2; bucket 199 (198.18.200.2) 199 mod 3 = 1.
        for port in [1000, 40000, 65535] {
            assert_eq!(f.pick_for("198.18.200.1", port), Some(2));
            assert_eq!(f.pick_for("198.18.200.2", port), Some(1));
        }
    }

    #[test]
    fn load_does_not_move_a_client() {
        // sh looks at no counter: binding connections keeps the client on its bucket.
        let mut f = Fixture::new(SchedulerKind::Sh, &[1, 1, 1]);
        for _ in 0..5 {
            assert_eq!(f.pick_and_bind(), Some(2), "198.18.200.1 is in bucket 101, position 2");
        }
        assert_eq!(f.list().get(2).active_conns, 5);
    }

    #[test]
    fn clients_spread_by_weight() {
        // Weights 1 and 3 tile 0,1,1,1: a quarter of the buckets hold position 0, and a client
        // lands on position 0 iff its bucket is a multiple of 4.
        let sh = table_for(&[1, 3]);
        assert_eq!(counts(&sh, 2), vec![64, 192]);
        let mut f = Fixture::new(SchedulerKind::Sh, &[1, 3]);
        // Buckets: 198.18.200.1 -> 101 (101 mod 4 = 1, position 1); 198.18.200.2 -> 199
        // (mod 4 = 3, position 1); 198.18.0.12 -> 240 (mod 4 = 0, position 0).
        assert_eq!(f.pick_for("198.18.200.1", 1), Some(1));
        assert_eq!(f.pick_for("198.18.200.2", 1), Some(1));
        assert_eq!(f.pick_for("198.18.0.12", 1), Some(0));
    }

    #[test]
    fn sh_port_mixes_the_source_port_in() {
        let mut f = Fixture::new(SchedulerKind::Sh, &[1, 1, 1]);
        let without: Vec<_> = (40000..40030).map(|p| f.pick_for("198.18.200.1", p)).collect();
        assert!(without.iter().all(|&p| p == Some(2)), "without sh-port the port is ignored");
        f.flags = SchedFlags::FLAG2;
        // Port 40000 gives bucket 9 (9 mod 3 = 0); port 1 gives 0xC612C802's bucket, 199
        // (mod 3 = 1).
        assert_eq!(f.pick_for("198.18.200.1", 40000), Some(0));
        assert_eq!(f.pick_for("198.18.200.1", 1), Some(1));
        let with: Vec<_> = (40000..40030).map(|p| f.pick_for("198.18.200.1", p)).collect();
        for pos in 0..3 {
            assert!(with.contains(&Some(pos)), "30 ports reach position {pos}: {with:?}");
        }
    }

    #[test]
    fn unusable_bucket_gives_none_without_fallback() {
        let mut f = Fixture::new(SchedulerKind::Sh, &[1, 1, 1]);
        f.set_load(2, 0, 0, true);
        assert_eq!(f.pick_for("198.18.200.1", 0), None);
        assert_eq!(f.pick_for("198.18.200.2", 0), Some(1), "other buckets still work");
    }

    #[test]
    fn fallback_probes_from_twice_the_hash() {
        let mut f = Fixture::new(SchedulerKind::Sh, &[1, 1, 1]);
        f.flags = SchedFlags::FLAG1;
        // 198.18.200.1 hashes to bucket 101 (position 2). Overloaded: the kernel probes bucket
        // (offset + 2 * 101) mod 256 = 202 + offset; 202 mod 3 = 1.
        f.set_load(2, 0, 0, true);
        assert_eq!(f.pick_for("198.18.200.1", 0), Some(1));
        // Position 1 overloaded too: 202 is skipped, 203 mod 3 = 2 (overloaded), 204 mod 3 = 0.
        f.set_load(1, 0, 0, true);
        assert_eq!(f.pick_for("198.18.200.1", 0), Some(0));
        // Everyone unusable: the probe runs out.
        f.set_load(0, 0, 0, true);
        assert_eq!(f.pick_for("198.18.200.1", 0), None);
    }

    #[test]
    fn quiescent_destination_keeps_its_bucket_and_falls_back() {
        // Weight 1 -> 0 keeps the tiling (a weight-0 dest still takes one bucket).
        let mut f = Fixture::new(SchedulerKind::Sh, &[1, 1, 1]);
        f.set_weight(2, 0);
        assert_eq!(f.pick_for("198.18.200.1", 0), None);
        assert_eq!(f.pick_for("198.18.200.2", 0), Some(1));
        f.flags = SchedFlags::FLAG1;
        assert_eq!(f.pick_for("198.18.200.1", 0), Some(1));
    }

    #[test]
    fn ipv6_client_hashes_its_folded_address() {
        // fd00::1 folds to 0xFD000001 (= 253.0.0.1): bucket 140, 140 mod 3 = 2.
        let mut f = Fixture::new(SchedulerKind::Sh, &[1, 1, 1]);
        assert_eq!(SourceHashing::bucket(&"fd00::1".parse().unwrap(), 0, 0), 140);
        assert_eq!(f.pick_for("fd00::1", 0), Some(2));
        assert_eq!(f.pick_for("253.0.0.1", 0), Some(2));
    }

    #[test]
    fn empty_list_gives_none() {
        let mut f = Fixture::new(SchedulerKind::Sh, &[1]);
        f.remove(0);
        f.flags = SchedFlags::FLAG1;
        assert_eq!(f.pick(), None);
    }
}
