//! Work that is not per packet: connection expiry, and the once-a-second tick (rate
//! estimators, DoS defences with the drop_entry scan, scheduler garbage collection).

use super::Engine;
use crate::conn::sctp::SctpState;
use crate::conn::table::ConnFlags;
use crate::conn::tcp::TcpState;
use crate::defense::DefenseUpdate;
use crate::random::Random;
use crate::time::Instant;

/// Seconds a connection must have been idle-free (refreshed within its timeout minus this)
/// before drop_entry may remove an established one (kernel: 60 s).
const DROP_ENTRY_MIN_AGE_MS: u64 = 60_000;

impl Engine {
    /// Expires every connection whose timer has run out at `now`. Templates that still
    /// control connections are kept 60 s more. Returns how many entries were removed.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut expired = std::mem::take(&mut self.expired);
        self.conns.collect_expired(now.as_millis(), &mut expired);
        let before = self.conns.len();
        // Normal connections first, so templates see their controlled count drop.
        expired.sort_by_key(|&id| self.conns.get(id).is_some_and(|c| c.is_template()));
        for &id in &expired {
            self.expire_or_rearm(id, now);
        }
        expired.clear();
        self.expired = expired;
        before - self.conns.len()
    }

    /// The once-a-second work: expiry, rate estimation, DoS defence levels (given the
    /// available memory in pages), the drop_entry scan, and scheduler housekeeping.
    pub fn tick(&mut self, now: Instant, available_pages: u64, rng: &mut dyn Random) -> DefenseUpdate {
        self.expire(now);
        self.stats.estimate(now);
        let Engine { services, dests, .. } = self;
        for svc in services.iter_mut().flatten() {
            svc.stats.estimate(now);
            svc.scheduler.periodic(now);
            for &d in &svc.dests {
                if let Some(d) = dests.get_mut(d) {
                    d.stats.estimate(now);
                }
            }
        }
        let update = self.defense.update(available_pages);
        if self.defense.drop_entry_active() {
            self.random_drop_entries(now, rng);
        }
        update
    }

    /// The drop_entry defence: look at 1/32 of the table at random and remove half-open
    /// connections (SYN_RECV, SYNACK, SCTP INIT) and, at a decreasing rate, established ones
    /// with few packets that have not been refreshed for a minute.
    fn random_drop_entries(&mut self, now: Instant, rng: &mut dyn Random) {
        let slab = self.conns.slab_len();
        if slab == 0 {
            return;
        }
        let probes = (slab >> 5).max(1);
        for _ in 0..probes {
            let slot = (rng.next_u32() as usize) % slab;
            let id = crate::conn::ConnId(slot as u32);
            let Some(c) = self.conns.get(id).copied() else { continue };
            let drop = if c.is_template() {
                false
            } else {
                match c.protocol {
                    6 => match TcpState::from_index(c.state) {
                        TcpState::SynRecv | TcpState::SynAck => true,
                        TcpState::Established => self.todrop_entry(id, &c, now),
                        _ => false,
                    },
                    132 => match SctpState::from_index(c.state) {
                        SctpState::Init1 | SctpState::Init => true,
                        SctpState::Established => self.todrop_entry(id, &c, now),
                        _ => false,
                    },
                    _ => self.todrop_entry(id, &c, now),
                }
            };
            if drop && !c.flags.has(ConnFlags::SYNC) {
                self.expire_conn(id);
                self.drops.defense_dropped_entries += 1;
            }
        }
    }

    /// The kernel's `todrop_entry`: spare connections refreshed within the last minute and
    /// those with more than 8 packets; drop the others at a rate that falls with their packet
    /// count (every time for 1 packet, every 8th time for 8).
    fn todrop_entry(&mut self, id: crate::conn::ConnId, c: &crate::conn::Conn, now: Instant) -> bool {
        let timeout_ms = self.timeout_ms_of(c);
        let remaining = self.conns.remaining_ms(id, now.as_millis());
        if remaining + DROP_ENTRY_MIN_AGE_MS > timeout_ms {
            return false;
        }
        let i = c.in_pkts as usize;
        if i == 0 || i > 8 {
            return false;
        }
        let counter = &mut self.todrop_counter[i];
        if *counter > 1 {
            *counter -= 1;
            return false;
        }
        *counter = i as u8;
        true
    }

    fn timeout_ms_of(&self, c: &crate::conn::Conn) -> u64 {
        let s = match c.protocol {
            6 => self.timeouts.tcp(TcpState::from_index(c.state)),
            132 => self.timeouts.sctp(SctpState::from_index(c.state)),
            _ => self.timeouts.udp(),
        };
        u64::from(s) * 1000
    }
}
