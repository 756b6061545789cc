//! Destination hashing (`dh`, the kernel's ip_vs_dh.c): the packet's destination address
//! (the VIP, not the client) picks one of 256 buckets, and the buckets hold the service's
//! destinations round-robin in list order (bucket `i` holds list position `i mod n`),
//! weights unused. The table is refilled on every change of the list. A bucket whose
//! destination is quiescent, overloaded or gone yields no destination: dh has no fallback.

use std::net::IpAddr;

use super::hash::{addr_port_key, hash_32};
use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// log2 of the bucket count (`CONFIG_IP_VS_DH_TAB_BITS`, default 8).
pub const DH_TAB_BITS: u32 = 8;
/// Number of buckets.
pub const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

/// Marks a bucket with no destination (only while the list is empty).
const EMPTY: u32 = u32::MAX;

/// Destination hashing.
#[derive(Debug)]
pub struct DestinationHashing {
    /// List position of each bucket's destination, or [`EMPTY`].
    buckets: [u32; DH_TAB_SIZE],
}

impl Default for DestinationHashing {
    fn default() -> Self {
        DestinationHashing { buckets: [EMPTY; DH_TAB_SIZE] }
    }
}

impl DestinationHashing {
    /// The bucket of a destination address: `hash_32(fold(addr), 8)`.
    pub fn bucket(addr: &IpAddr) -> u32 {
        hash_32(addr_port_key(addr, 0), DH_TAB_BITS)
    }

    /// List position held by a bucket (`None` while the list is empty).
    pub fn bucket_position(&self, bucket: usize) -> Option<usize> {
        self.buckets.get(bucket).filter(|&&p| p != EMPTY).map(|&p| p as usize)
    }
}

impl Scheduler for DestinationHashing {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Dh
    }

    fn update_dests(&mut self, dests: DestList<'_>, _change: DestChange) {
        let n = dests.len();
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            *bucket = if n == 0 { EMPTY } else { (i % n) as u32 };
        }
    }

    fn schedule(&mut self, dests: DestList<'_>, req: &mut SchedRequest<'_>) -> Option<DestId> {
        let pos = self.bucket_position(Self::bucket(&req.vaddr) as usize)?;
        let id = *dests.ids().get(pos)?;
        dests.by_id(id).filter(|d| d.is_schedulable()).map(|_| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Instant;
    use crate::sched::SchedFlags;
    use crate::sched::testing::Fixture;
    use crate::service::Protocol;

    fn pick_for_vip(f: &mut Fixture, client: &str, vaddr: &str) -> Option<usize> {
        let mut req = SchedRequest {
            protocol: Protocol::Tcp,
            client: client.parse().unwrap(),
            client_port: 40000,
            vaddr: vaddr.parse().unwrap(),
            vport: 80,
            flags: SchedFlags::NONE,
            now: Instant::ZERO,
            rng: &mut f.rng,
        };
        let id = f.sched.schedule(DestList::new(&f.order, &f.arena), &mut req)?;
        f.order.iter().position(|&x| x == id)
    }

    #[test]
    fn bucket_is_hash_32_of_the_address() {
        // 198.18.0.10 = 0xC612000A; 0xC612000A * 0x61C88647 mod 2^32 = 0x2C......, top byte 44
        // (worked out with a calculator from the definition of hash_32).
        assert_eq!(DestinationHashing::bucket(&"198.18.0.10".parse().unwrap()), 44);
        assert_eq!(DestinationHashing::bucket(&"198.18.0.11".parse().unwrap()), 142);
    }

    #[test]
    fn the_vip_picks_the_destination_not_the_client() {
        let mut f = Fixture::new(SchedulerKind::Dh, &[1, 1, 1]);
        // Bucket 44 (VIP 198.18.0.10) holds position 44 mod 3 = 2, bucket 142
        // (198.18.0.11) position 142 mod 3 = 1, bucket 240 (198.18.0.12) position 0.
        for client in ["198.18.200.1", "198.18.200.2", "fd00::9"] {
            assert_eq!(pick_for_vip(&mut f, client, "198.18.0.10"), Some(2));
            assert_eq!(pick_for_vip(&mut f, client, "198.18.0.11"), Some(1));
            assert_eq!(pick_for_vip(&mut f, client, "198.18.0.12"), Some(0));
        }
    }

    #[test]
    fn weights_do_not_change_the_table() {
        // Buckets are filled one destination each; weights 1 and 100 give the same picks.
        let mut f = Fixture::new(SchedulerKind::Dh, &[100, 1, 1, 1]);
        // 44 mod 4 = 0, 142 mod 4 = 2.
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "198.18.0.10"), Some(0));
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "198.18.0.11"), Some(2));
    }

    #[test]
    fn unavailable_bucket_destination_gives_none_without_fallback() {
        let mut f = Fixture::new(SchedulerKind::Dh, &[1, 1, 1]);
        f.set_weight(2, 0);
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "198.18.0.10"), None, "quiescent");
        f.set_weight(2, 1);
        f.set_load(2, 0, 0, true);
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "198.18.0.10"), None, "overloaded");
        // Other buckets are unaffected.
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "198.18.0.11"), Some(1));
    }

    #[test]
    fn removal_refills_round_robin_over_the_new_list() {
        let mut f = Fixture::new(SchedulerKind::Dh, &[1, 1, 1]);
        f.remove(0);
        // Two destinations left: bucket 44 holds position 44 mod 2 = 0, bucket 82
        // (198.18.0.13) position 0 too, while with three it held 82 mod 3 = 1.
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "198.18.0.10"), Some(0));
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "198.18.0.13"), Some(0));
        // A third destination appended: bucket 44 holds position 44 mod 3 = 2 again.
        let id = f.add("198.18.1.9".parse().unwrap(), 80, 1);
        assert_eq!(f.order.len(), 3);
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "198.18.0.10"), Some(2));
        assert_eq!(f.order[2], id);
    }

    #[test]
    fn ipv6_vip_hashes_its_folded_address() {
        // fd00::1 folds to 0xFD000001, the same 32 bits as 253.0.0.1: bucket 140, 140 mod 3 = 2.
        let mut f = Fixture::new(SchedulerKind::Dh, &[1, 1, 1]);
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(DestinationHashing::bucket(&v6), 140);
        assert_eq!(pick_for_vip(&mut f, "fd00::2", "fd00::1"), Some(2));
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "253.0.0.1"), Some(2));
    }

    #[test]
    fn no_destination_gives_none() {
        let mut f = Fixture::new(SchedulerKind::Dh, &[]);
        assert_eq!(pick_for_vip(&mut f, "198.18.200.1", "198.18.0.10"), None);
    }
}
