//! The connection table: every flow the director handles, with its destination, state,
//! timer, and persistence link. Bounded: inserts past the configured maximum are refused and
//! counted. Entries live in a slab (stable [`ConnId`]s), found through a [`HashIndex`] keyed by
//! (protocol, client address, client port), and expire through a lazy [`TimerWheel`].

use crate::addr::Addr16;
use crate::dest::DestId;

use super::index::HashIndex;
use super::wheel::{TICK_MS, TimerWheel, bucket_of, tick_before_eq};

/// Index of a connection in the table's slab. Valid until the connection is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// Connection flags (the kernel's `IP_VS_CONN_F_*`, in our own bit layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ConnFlags(u16);

impl ConnFlags {
    /// Client/virtual side is IPv6.
    pub const V6: u16 = 1 << 0;
    /// Destination side is IPv6 (may differ for tunnels).
    pub const DEST_V6: u16 = 1 << 1;
    /// A persistence template, not a flow.
    pub const TEMPLATE: u16 = 1 << 2;
    /// Counted in the destination's InActConn.
    pub const INACTIVE: u16 = 1 << 3;
    /// No reply seen through us (DR/TUN): the input-only state table applies.
    pub const NO_OUTPUT: u16 = 1 << 4;
    /// One-packet scheduling.
    pub const ONE_PACKET: u16 = 1 << 5;
    /// Installed by connection sync, not scheduled here.
    pub const SYNC: u16 = 1 << 6;
    /// A template whose destination became unavailable: never found again, left to expire.
    pub const INVALID: u16 = 1 << 7;
    /// A fwmark template (virtual address holds the mark).
    pub const FWMARK: u16 = 1 << 8;
    /// Free slab slot.
    const FREE: u16 = 1 << 15;
    /// Not filed in the timer wheel (handed out as expired, not yet removed or re-armed).
    const UNFILED: u16 = 1 << 14;

    /// Flags from bits.
    pub fn new(bits: u16) -> ConnFlags {
        ConnFlags(bits & !(Self::FREE | Self::UNFILED))
    }
    /// Raw bits.
    pub fn bits(self) -> u16 {
        self.0
    }
    /// Is `bit` set?
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    /// Sets or clears `bit`.
    pub fn set(&mut self, bit: u16, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

/// The key of a client-to-VIP packet, for batched lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InKey {
    /// IP protocol number.
    pub protocol: u8,
    /// Client address.
    pub caddr: Addr16,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: Addr16,
    /// Virtual port.
    pub vport: u16,
}

/// Lookups per batch step (the pipeline's rx batch is split into steps of this size).
pub const LOOKUP_BATCH: usize = 16;

/// No control link (a connection without a persistence template).
pub const NO_LINK: u32 = u32::MAX;

/// One connection (or persistence template): 76 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    /// Client address.
    pub caddr: Addr16,
    /// Virtual address (the fwmark, big-endian in the last 4 bytes, for fwmark templates).
    pub vaddr: Addr16,
    /// Destination (real server) address.
    pub daddr: Addr16,
    /// Client port (0 for templates).
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number (0 for fwmark templates).
    pub protocol: u8,
    /// Protocol state index (TcpState / SctpState; 0 for UDP).
    pub state: u8,
    /// Flags.
    pub flags: ConnFlags,
    /// The destination it is bound to.
    pub dest: DestId,
    /// Expiry tick (10 ms ticks).
    pub deadline: u32,
    /// The wheel bucket it is filed in (its tick is recovered from the wheel's position).
    filed: u16,
    /// Normal connection: slot of its controlling template, or [`NO_LINK`].
    /// Template: number of connections it controls.
    pub link: u32,
    /// Packets in (client to server) since creation, saturating.
    pub in_pkts: u16,
}

impl Conn {
    /// A new entry with no timer yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        protocol: u8,
        caddr: Addr16,
        cport: u16,
        vaddr: Addr16,
        vport: u16,
        daddr: Addr16,
        dport: u16,
        dest: DestId,
        flags: ConnFlags,
    ) -> Conn {
        Conn {
            caddr,
            vaddr,
            daddr,
            cport,
            vport,
            dport,
            protocol,
            state: 0,
            flags,
            dest,
            deadline: 0,
            filed: 0,
            link: if flags.has(ConnFlags::TEMPLATE) { 0 } else { NO_LINK },
            in_pkts: 0,
        }
    }

    /// Is this a persistence template?
    pub fn is_template(&self) -> bool {
        self.flags.has(ConnFlags::TEMPLATE)
    }

    /// The controlling template, if any.
    pub fn control(&self) -> Option<ConnId> {
        (!self.is_template() && self.link != NO_LINK).then_some(ConnId(self.link))
    }

    /// Connections controlled by this template (0 for normal connections).
    pub fn n_control(&self) -> u32 {
        if self.is_template() { self.link } else { 0 }
    }

    fn is_free(&self) -> bool {
        self.flags.0 & ConnFlags::FREE != 0
    }
}

/// Why an insert was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection table full ({max} entries)")]
pub struct TableFull {
    /// The configured maximum.
    pub max: usize,
}

/// The connection table.
#[derive(Debug)]
pub struct ConnTable {
    slots: Vec<Conn>,
    free: Vec<u32>,
    index: HashIndex,
    wheel: TimerWheel,
    len: usize,
    max: usize,
    seed: [u64; 4],
    refused_full: u64,
    due: Vec<(u32, u32)>,
}

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl ConnTable {
    /// A table holding at most `max` entries. `seed` keys the hash (use a random one: the
    /// keys come from the network).
    pub fn new(max: usize, seed: u64) -> ConnTable {
        let mut s = crate::random::SplitMix64::new(seed);
        ConnTable {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashIndex::with_capacity(1024.min(max)),
            wheel: TimerWheel::new(),
            len: 0,
            max,
            seed: [s.next_u64() | 1, s.next_u64() | 1, s.next_u64() | 1, s.next_u64() | 1],
            refused_full: 0,
            due: Vec::new(),
        }
    }

    /// Reserves room for `n` entries up front (no growth while filling).
    pub fn reserve(&mut self, n: usize) {
        let n = n.min(self.max);
        self.slots.reserve_exact(n.saturating_sub(self.slots.len()));
        super::hugepages::advise(self.slots.spare_capacity_mut());
        if self.index.len() < n {
            let mut idx = HashIndex::with_capacity(n);
            for (i, c) in self.slots.iter().enumerate() {
                if !c.is_free() {
                    idx.insert(self.hash(c.protocol, &c.caddr, c.cport), i as u32);
                }
            }
            self.index = idx;
        }
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The maximum number of entries.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Changes the maximum (existing entries are kept even above it).
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Inserts refused because the table was full.
    pub fn refused_full(&self) -> u64 {
        self.refused_full
    }

    /// Heap bytes used (slab, index, wheel).
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Conn>()
            + self.free.capacity() * 4
            + self.index.heap_bytes()
            + self.wheel.heap_bytes()
    }

    #[inline]
    fn hash(&self, protocol: u8, caddr: &Addr16, cport: u16) -> u64 {
        let a = u64::from_le_bytes(caddr.0[0..8].try_into().unwrap_or_default());
        let b = u64::from_le_bytes(caddr.0[8..16].try_into().unwrap_or_default());
        let h = fold_mul(a ^ self.seed[0], b ^ self.seed[1]);
        fold_mul(h ^ (u64::from(cport) << 8 | u64::from(protocol)) ^ self.seed[2], self.seed[3])
    }

    /// Inserts `conn` with a timeout of `timeout_ms` from `now_ms`.
    pub fn insert(&mut self, mut conn: Conn, now_ms: u64, timeout_ms: u64) -> Result<ConnId, TableFull> {
        if self.len >= self.max {
            self.refused_full += 1;
            return Err(TableFull { max: self.max });
        }
        let now = super::wheel::tick_of(now_ms);
        conn.deadline = now.wrapping_add(ticks(timeout_ms));
        let tick = self.wheel.file_tick(now, conn.deadline);
        conn.filed = bucket_of(tick) as u16;
        conn.flags.0 &= !(ConnFlags::FREE | ConnFlags::UNFILED);
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = conn;
                s
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    self.slots.reserve(self.slots.len().max(1024));
                    super::hugepages::advise(self.slots.spare_capacity_mut());
                }
                self.slots.push(conn);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(self.hash(conn.protocol, &conn.caddr, conn.cport), slot);
        self.wheel.file(slot, tick);
        self.len += 1;
        Ok(ConnId(slot))
    }

    /// The entry for an id, if it is live.
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slots.get(id.0 as usize).filter(|c| !c.is_free())
    }

    /// The entry for an id, mutably, if it is live. (Use [`ConnTable::refresh`] to change its
    /// timer.)
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots.get_mut(id.0 as usize).filter(|c| !c.is_free())
    }

    /// A client-to-VIP packet's connection (not templates).
    #[inline]
    pub fn find_in(&self, protocol: u8, caddr: &Addr16, cport: u16, vaddr: &Addr16, vport: u16) -> Option<ConnId> {
        let h = self.hash(protocol, caddr, cport);
        self.index
            .find(h, |s| {
                let c = &self.slots[s as usize];
                c.protocol == protocol
                    && c.cport == cport
                    && c.vport == vport
                    && c.caddr == *caddr
                    && c.vaddr == *vaddr
                    && !c.flags.has(ConnFlags::TEMPLATE)
            })
            .map(ConnId)
    }

    /// [`ConnTable::find_in`] for many packets at once (`out[i]` answers `keys[i]`). The
    /// lookups are interleaved so that their cache misses overlap: first every index line is
    /// loaded, then every candidate entry, then each lookup finishes on warm caches.
    pub fn find_in_batch(&self, keys: &[InKey], out: &mut [Option<ConnId>]) {
        for (keys, out) in keys.chunks(LOOKUP_BATCH).zip(out.chunks_mut(LOOKUP_BATCH)) {
            let mut hashes = [0u64; LOOKUP_BATCH];
            let mut first = [None; LOOKUP_BATCH];
            for (h, k) in hashes.iter_mut().zip(keys) {
                *h = self.hash(k.protocol, &k.caddr, k.cport);
            }
            for (f, &h) in first.iter_mut().zip(&hashes[..keys.len()]) {
                *f = self.index.peek(h);
            }
            // Touch the candidate entries; the sum keeps the loads from being optimised away.
            let mut touched = 0u16;
            for f in first[..keys.len()].iter().flatten() {
                touched = touched.wrapping_add(self.slots.get(*f as usize).map_or(0, |c| c.cport));
            }
            std::hint::black_box(touched);
            for (o, k) in out.iter_mut().zip(keys) {
                *o = self.find_in(k.protocol, &k.caddr, k.cport, &k.vaddr, k.vport);
            }
        }
    }

    /// A real-server-to-client packet's connection (NAT replies): the packet's destination is
    /// the client, its source the real server.
    #[inline]
    pub fn find_out(&self, protocol: u8, caddr: &Addr16, cport: u16, daddr: &Addr16, dport: u16) -> Option<ConnId> {
        let h = self.hash(protocol, caddr, cport);
        self.index
            .find(h, |s| {
                let c = &self.slots[s as usize];
                c.protocol == protocol
                    && c.cport == cport
                    && c.dport == dport
                    && c.caddr == *caddr
                    && c.daddr == *daddr
                    && !c.flags.has(ConnFlags::TEMPLATE)
            })
            .map(ConnId)
    }

    /// A valid persistence template for (protocol, masked client, virtual address or mark,
    /// virtual port).
    pub fn find_template(&self, protocol: u8, caddr: &Addr16, vaddr: &Addr16, vport: u16) -> Option<ConnId> {
        let h = self.hash(protocol, caddr, 0);
        self.index
            .find(h, |s| {
                let c = &self.slots[s as usize];
                c.flags.has(ConnFlags::TEMPLATE)
                    && !c.flags.has(ConnFlags::INVALID)
                    && c.protocol == protocol
                    && c.cport == 0
                    && c.vport == vport
                    && c.caddr == *caddr
                    && c.vaddr == *vaddr
            })
            .map(ConnId)
    }

    /// Restarts a connection's timer: it now expires `timeout_ms` after `now_ms`.
    #[inline]
    pub fn refresh(&mut self, id: ConnId, now_ms: u64, timeout_ms: u64) {
        let now = super::wheel::tick_of(now_ms);
        let Some(c) = self.slots.get_mut(id.0 as usize).filter(|c| !c.is_free()) else {
            return;
        };
        c.deadline = now.wrapping_add(ticks(timeout_ms));
        if c.flags.0 & ConnFlags::UNFILED != 0 || !tick_before_eq(self.wheel.tick_of_bucket(c.filed), c.deadline) {
            c.flags.0 &= !ConnFlags::UNFILED;
            // Earlier than its bucket: file it again (the old entry goes stale).
            let tick = self.wheel.file_tick(now, c.deadline);
            c.filed = bucket_of(tick) as u16;
            self.wheel.file(id.0, tick);
        }
    }

    /// Milliseconds until the entry expires (0 if overdue).
    pub fn remaining_ms(&self, id: ConnId, now_ms: u64) -> u64 {
        let now = super::wheel::tick_of(now_ms);
        self.get(id)
            .map(|c| {
                let d = c.deadline.wrapping_sub(now) as i32;
                if d > 0 { d as u64 * TICK_MS } else { 0 }
            })
            .unwrap_or(0)
    }

    /// Removes an entry and returns it.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn> {
        let c = *self.get(id)?;
        self.index.remove(self.hash(c.protocol, &c.caddr, c.cport), id.0);
        self.slots[id.0 as usize].flags.0 = ConnFlags::FREE;
        self.free.push(id.0);
        self.len -= 1;
        Some(c)
    }

    /// Collects into `expired` the entries whose deadline has passed at `now_ms`, refiling
    /// the ones whose deadline moved later. Entries stay in the table: the caller decides
    /// (remove, or re-arm a template that still controls connections).
    pub fn collect_expired(&mut self, now_ms: u64, expired: &mut Vec<ConnId>) {
        let now = super::wheel::tick_of(now_ms);
        let mut due = std::mem::take(&mut self.due);
        self.wheel.take_due(now, &mut due);
        for &(slot, bucket) in &due {
            let Some(c) = self.slots.get_mut(slot as usize) else { continue };
            if c.flags.0 & (ConnFlags::FREE | ConnFlags::UNFILED) != 0 || u32::from(c.filed) != bucket {
                continue; // stale entry
            }
            if tick_before_eq(c.deadline, now) {
                // Out of the wheel until removed or re-armed by `refresh`.
                c.flags.0 |= ConnFlags::UNFILED;
                expired.push(ConnId(slot));
            } else {
                let tick = self.wheel.file_tick(now, c.deadline);
                c.filed = bucket_of(tick) as u16;
                self.wheel.file(slot, tick);
            }
        }
        due.clear();
        self.due = due;
    }

    /// Every live entry.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.slots.iter().enumerate().filter(|(_, c)| !c.is_free()).map(|(i, c)| (ConnId(i as u32), c))
    }

    /// A random live entry near slab position `start` (for the drop_entry defence's random
    /// scan): the first live entry at or after it, wrapping.
    pub fn live_at_or_after(&self, start: usize) -> Option<ConnId> {
        if self.len == 0 || self.slots.is_empty() {
            return None;
        }
        let n = self.slots.len();
        (0..n).map(|k| (start + k) % n).find(|&i| !self.slots[i].is_free()).map(|i| ConnId(i as u32))
    }

    /// Slab size (live + free slots), for random scans.
    pub fn slab_len(&self) -> usize {
        self.slots.len()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.index = HashIndex::with_capacity(1024.min(self.max));
        self.wheel.clear();
        self.len = 0;
    }
}

fn ticks(ms: u64) -> u32 {
    (ms.div_ceil(TICK_MS)).min(u64::from(u32::MAX / 2)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Addr16 {
        Addr16::from_ip(s.parse().unwrap())
    }

    fn conn(cport: u16) -> Conn {
        Conn::new(
            6,
            a("198.18.200.1"),
            cport,
            a("198.18.0.10"),
            80,
            a("198.18.1.1"),
            80,
            DestId(0),
            ConnFlags::default(),
        )
    }

    #[test]
    fn entry_is_76_bytes() {
        assert_eq!(std::mem::size_of::<Conn>(), 76);
    }

    #[test]
    fn lookups_in_both_directions_and_removal() {
        let mut t = ConnTable::new(10, 1);
        let id = t.insert(conn(1000), 0, 1000).unwrap();
        assert_eq!(t.find_in(6, &a("198.18.200.1"), 1000, &a("198.18.0.10"), 80), Some(id));
        assert_eq!(t.find_in(17, &a("198.18.200.1"), 1000, &a("198.18.0.10"), 80), None);
        assert_eq!(t.find_in(6, &a("198.18.200.1"), 1001, &a("198.18.0.10"), 80), None);
        assert_eq!(t.find_out(6, &a("198.18.200.1"), 1000, &a("198.18.1.1"), 80), Some(id));
        assert_eq!(t.find_out(6, &a("198.18.200.1"), 1000, &a("198.18.1.2"), 80), None);
        assert!(t.remove(id).is_some());
        assert_eq!(t.find_in(6, &a("198.18.200.1"), 1000, &a("198.18.0.10"), 80), None);
        assert!(t.is_empty());
    }

    #[test]
    fn batched_lookup_answers_like_single_lookups() {
        let mut t = ConnTable::new(100, 1);
        let ids: Vec<ConnId> = (0..40).map(|p| t.insert(conn(p), 0, 1000).unwrap()).collect();
        let keys: Vec<InKey> = (0..50)
            .map(|p| InKey { protocol: 6, caddr: a("198.18.200.1"), cport: p, vaddr: a("198.18.0.10"), vport: 80 })
            .collect();
        let mut out = vec![None; keys.len()];
        t.find_in_batch(&keys, &mut out);
        for (p, o) in out.iter().enumerate() {
            assert_eq!(*o, ids.get(p).copied(), "port {p}");
        }
    }

    #[test]
    fn full_table_refuses_and_counts() {
        let mut t = ConnTable::new(2, 1);
        t.insert(conn(1), 0, 1000).unwrap();
        t.insert(conn(2), 0, 1000).unwrap();
        assert_eq!(t.insert(conn(3), 0, 1000), Err(TableFull { max: 2 }));
        assert_eq!(t.refused_full(), 1);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn expiry_follows_refresh_both_ways() {
        let mut t = ConnTable::new(10, 1);
        let long = t.insert(conn(1), 0, 900_000).unwrap();
        let short = t.insert(conn(2), 0, 2_000).unwrap();
        let mut out = Vec::new();
        t.collect_expired(1_990, &mut out);
        assert!(out.is_empty());
        t.collect_expired(2_000, &mut out);
        assert_eq!(out, vec![short]);
        t.remove(short);
        out.clear();
        // A state change shortens the long one's timeout to 10 s at t=5 s.
        t.refresh(long, 5_000, 10_000);
        t.collect_expired(14_990, &mut out);
        assert!(out.is_empty());
        t.collect_expired(15_000, &mut out);
        assert_eq!(out, vec![long]);
    }

    #[test]
    fn refreshed_entries_outlive_their_first_deadline_and_far_deadlines_survive_laps() {
        let mut t = ConnTable::new(10, 1);
        let id = t.insert(conn(1), 0, 1_000).unwrap();
        let mut out = Vec::new();
        for now in (500..=20_000).step_by(500) {
            t.refresh(id, now, 1_000);
            t.collect_expired(now, &mut out);
            assert!(out.is_empty(), "refreshed at {now}");
        }
        // A 31-day template, checked once an hour: expires on time, not before.
        let tpl = t.insert(conn(2), 20_000, 31 * 86_400_000).unwrap();
        let mut now = 20_000u64;
        while now < 20_000 + 31 * 86_400_000 - 3_600_000 {
            now += 3_600_000;
            t.collect_expired(now, &mut out);
            out.retain(|&x| x != id);
            assert!(out.is_empty(), "template expired early at {now}");
        }
        t.collect_expired(20_000 + 31 * 86_400_000 + 3_600_000, &mut out);
        assert!(out.contains(&tpl));
        // Re-arming an expired entry (a template that still controls connections) files it
        // again; it expires once more later.
        let later = 20_000 + 31 * 86_400_000 + 3_600_000;
        t.refresh(tpl, later, 60_000);
        out.clear();
        t.collect_expired(later + 59_000, &mut out);
        assert!(!out.contains(&tpl));
        t.collect_expired(later + 60_000, &mut out);
        assert!(out.contains(&tpl));
    }

    #[test]
    fn templates_are_found_only_as_templates_and_not_when_invalid() {
        let mut t = ConnTable::new(10, 1);
        let mut c = conn(0);
        c.flags.set(ConnFlags::TEMPLATE, true);
        let id = t.insert(c, 0, 360_000).unwrap();
        assert_eq!(t.find_in(6, &a("198.18.200.1"), 0, &a("198.18.0.10"), 80), None);
        assert_eq!(t.find_template(6, &a("198.18.200.1"), &a("198.18.0.10"), 80), Some(id));
        t.get_mut(id).unwrap().flags.set(ConnFlags::INVALID, true);
        assert_eq!(t.find_template(6, &a("198.18.200.1"), &a("198.18.0.10"), 80), None);
    }
}
