//! Schedulers: which real server gets a new connection. One file per scheduler, named as
//! the kernel names them (`rr.rs` is `ip_vs_rr.c`, `wlc.rs` is `ip_vs_wlc.c` ...).
//!
//! A scheduler sees the service's destinations in list order (order of addition) through a
//! [`DestList`], and answers with a [`DestId`]. Where the kernel's choice is deterministic,
//! rvs makes the same choice: ties go to the earlier destination in the list, quiescent
//! (weight 0) and overloaded destinations are skipped.
//!
//! The engine tells a scheduler when the list changes ([`Scheduler::update_dests`]) and when
//! one destination's load changes ([`Scheduler::load_changed`]), so least-load schedulers can
//! keep an index and answer in O(log n) instead of scanning every destination.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::dest::{DestArena, DestId, Destination};
use crate::error::ConfigError;
use crate::random::Random;
use crate::service::Protocol;
use crate::time::Instant;

pub mod dh;
pub mod fo;
pub mod hash;
pub mod index;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

/// The 14 IPVS schedulers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchedulerKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections (the default).
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Power of two choices.
    Twos,
    /// Locality-based least connections.
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Maglev hashing.
    Mh,
}

impl SchedulerKind {
    /// Every scheduler, in the order ipvsadm's help lists them (twos last).
    pub const ALL: [SchedulerKind; 14] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Lblc,
        SchedulerKind::Lblcr,
        SchedulerKind::Dh,
        SchedulerKind::Sh,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Fo,
        SchedulerKind::Ovf,
        SchedulerKind::Mh,
        SchedulerKind::Twos,
    ];

    /// The kernel's name ("rr", "wlc" ...).
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Rr => "rr",
            SchedulerKind::Wrr => "wrr",
            SchedulerKind::Lc => "lc",
            SchedulerKind::Wlc => "wlc",
            SchedulerKind::Sed => "sed",
            SchedulerKind::Nq => "nq",
            SchedulerKind::Fo => "fo",
            SchedulerKind::Ovf => "ovf",
            SchedulerKind::Twos => "twos",
            SchedulerKind::Lblc => "lblc",
            SchedulerKind::Lblcr => "lblcr",
            SchedulerKind::Dh => "dh",
            SchedulerKind::Sh => "sh",
            SchedulerKind::Mh => "mh",
        }
    }

    /// A fresh scheduler of this kind.
    pub fn build(self) -> Box<dyn Scheduler> {
        match self {
            SchedulerKind::Rr => Box::new(rr::RoundRobin::default()),
            SchedulerKind::Wrr => Box::new(wrr::WeightedRoundRobin::default()),
            SchedulerKind::Lc => Box::new(lc::LeastConnection::default()),
            SchedulerKind::Wlc => Box::new(wlc::WeightedLeastConnection::default()),
            SchedulerKind::Sed => Box::new(sed::ShortestExpectedDelay::default()),
            SchedulerKind::Nq => Box::new(nq::NeverQueue::default()),
            SchedulerKind::Fo => Box::new(fo::WeightedFailover::default()),
            SchedulerKind::Ovf => Box::new(ovf::WeightedOverflow::default()),
            SchedulerKind::Twos => Box::new(twos::PowerOfTwoChoices::default()),
            SchedulerKind::Lblc => Box::new(lblc::LocalityLeastConnection::default()),
            SchedulerKind::Lblcr => Box::new(lblcr::LocalityReplicated::default()),
            SchedulerKind::Dh => Box::new(dh::DestinationHashing::default()),
            SchedulerKind::Sh => Box::new(sh::SourceHashing::default()),
            SchedulerKind::Mh => Box::new(mh::MaglevHashing::default()),
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchedulerKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        SchedulerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ConfigError::UnknownScheduler(s.to_string()))
    }
}

/// Scheduler flags (`-b`): three generic bits; sh and mh give the first two meanings
/// (`SCHED1` = fallback, `SCHED2` = port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchedFlags(u8);

impl SchedFlags {
    /// No flags.
    pub const NONE: SchedFlags = SchedFlags(0);
    /// `flag-1`, `sh-fallback`, `mh-fallback` (IP_VS_SVC_F_SCHED1).
    pub const FLAG1: SchedFlags = SchedFlags(1);
    /// `flag-2`, `sh-port`, `mh-port` (IP_VS_SVC_F_SCHED2).
    pub const FLAG2: SchedFlags = SchedFlags(2);
    /// `flag-3` (IP_VS_SVC_F_SCHED3).
    pub const FLAG3: SchedFlags = SchedFlags(4);

    /// The raw bits (bit 0 = SCHED1).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Flags from raw bits (only the low three are kept).
    pub fn from_bits(bits: u8) -> SchedFlags {
        SchedFlags(bits & 7)
    }

    /// True if every flag of `other` is set.
    pub fn contains(self, other: SchedFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union.
    pub fn with(self, other: SchedFlags) -> SchedFlags {
        SchedFlags(self.0 | other.0)
    }

    /// "fallback" flag of sh/mh.
    pub fn fallback(self) -> bool {
        self.contains(SchedFlags::FLAG1)
    }

    /// "port" flag of sh/mh.
    pub fn port(self) -> bool {
        self.contains(SchedFlags::FLAG2)
    }

    /// Parses ipvsadm's comma list (`sh-fallback,sh-port`), checking each name against the
    /// scheduler as ipvsadm does.
    pub fn parse(list: &str, scheduler: SchedulerKind) -> Result<SchedFlags, ConfigError> {
        let mut flags = SchedFlags::NONE;
        for name in list.split(',') {
            let (bit, owner) = match name {
                "flag-1" => (SchedFlags::FLAG1, None),
                "flag-2" => (SchedFlags::FLAG2, None),
                "flag-3" => (SchedFlags::FLAG3, None),
                "sh-fallback" => (SchedFlags::FLAG1, Some(SchedulerKind::Sh)),
                "sh-port" => (SchedFlags::FLAG2, Some(SchedulerKind::Sh)),
                "mh-fallback" => (SchedFlags::FLAG1, Some(SchedulerKind::Mh)),
                "mh-port" => (SchedFlags::FLAG2, Some(SchedulerKind::Mh)),
                other => return Err(ConfigError::UnknownSchedFlag(other.to_string())),
            };
            if owner.is_some_and(|o| o != scheduler) {
                return Err(ConfigError::IncompatibleSchedFlag(name.to_string()));
            }
            flags = flags.with(bit);
        }
        Ok(flags)
    }

    /// Checks that the flags make sense for the scheduler (all bits are legal for every
    /// scheduler at the kernel level; named flags are checked by [`SchedFlags::parse`]).
    pub fn check_compatible(self, _scheduler: SchedulerKind) -> Result<(), ConfigError> {
        Ok(())
    }

    /// The names ipvsadm lists for these flags under a scheduler
    /// (`sh-fallback,sh-port`, `mh-...`, otherwise `flag-N`).
    pub fn names(self, scheduler: SchedulerKind) -> Vec<&'static str> {
        let mut out = Vec::new();
        let (one, two) = match scheduler {
            SchedulerKind::Sh => ("sh-fallback", "sh-port"),
            SchedulerKind::Mh => ("mh-fallback", "mh-port"),
            _ => ("flag-1", "flag-2"),
        };
        if self.contains(SchedFlags::FLAG1) {
            out.push(one);
        }
        if self.contains(SchedFlags::FLAG2) {
            out.push(two);
        }
        if self.contains(SchedFlags::FLAG3) {
            out.push("flag-3");
        }
        out
    }
}

/// A service's destinations in list order, as a scheduler sees them.
#[derive(Clone, Copy)]
pub struct DestList<'a> {
    order: &'a [DestId],
    arena: &'a DestArena,
}

impl<'a> DestList<'a> {
    /// A view of `order` (ids in list order) over `arena`. Every id must be in the arena.
    pub fn new(order: &'a [DestId], arena: &'a DestArena) -> Self {
        DestList { order, arena }
    }

    /// Number of destinations.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True if the service has no destination.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Id of the destination at list position `pos`.
    pub fn id(&self, pos: usize) -> DestId {
        self.order[pos]
    }

    /// Ids in list order.
    pub fn ids(&self) -> &'a [DestId] {
        self.order
    }

    /// The destination at list position `pos`.
    pub fn get(&self, pos: usize) -> &'a Destination {
        self.arena.get(self.order[pos]).expect("DestList ids are always in the arena")
    }

    /// The destination with this id (also destinations no longer in the list, while
    /// connections hold them).
    pub fn by_id(&self, id: DestId) -> Option<&'a Destination> {
        self.arena.get(id)
    }

    /// (position, id, destination) in list order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, DestId, &'a Destination)> + 'a {
        let arena = self.arena;
        self.order
            .iter()
            .enumerate()
            .map(move |(pos, &id)| (pos, id, arena.get(id).expect("DestList ids are always in the arena")))
    }
}

impl fmt::Debug for DestList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.order).finish()
    }
}

/// What changed in a service's destination list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestChange {
    /// A destination was appended at list position `pos`.
    Added {
        /// Its position (always the last).
        pos: usize,
    },
    /// A destination at list position `pos` was edited (weight, thresholds, method).
    Edited {
        /// Its position.
        pos: usize,
    },
    /// The destination `id`, which was at list position `pos`, was removed; later
    /// destinations moved one position down.
    Removed {
        /// Its former position.
        pos: usize,
        /// Its id.
        id: DestId,
    },
    /// Anything else (a new scheduler, new scheduler flags): rebuild from scratch.
    Reset,
}

/// What the scheduler knows about the packet that opens a new connection.
pub struct SchedRequest<'r> {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Client (source) address.
    pub client: IpAddr,
    /// Client (source) port.
    pub client_port: u16,
    /// Packet destination address (the VIP; lblc/lblcr/dh hash on it).
    pub vaddr: IpAddr,
    /// Packet destination port.
    pub vport: u16,
    /// The service's scheduler flags.
    pub flags: SchedFlags,
    /// Now (lblc/lblcr age their tables).
    pub now: Instant,
    /// Randomness (twos).
    pub rng: &'r mut dyn Random,
}

/// A scheduling algorithm.
pub trait Scheduler: Send + fmt::Debug {
    /// Which scheduler this is.
    fn kind(&self) -> SchedulerKind;

    /// The destination list changed (`change` says how); `dests` is the new list.
    fn update_dests(&mut self, dests: DestList<'_>, change: DestChange);

    /// The destination at list position `pos` changed its connection counters or its
    /// overload flag. Schedulers that keep a load index update it here.
    fn load_changed(&mut self, _dests: DestList<'_>, _pos: usize) {}

    /// Picks the destination for a new connection, or `None` if none is available.
    fn schedule(&mut self, dests: DestList<'_>, req: &mut SchedRequest<'_>) -> Option<DestId>;

    /// Periodic housekeeping (lblc/lblcr garbage collection); called about once a second.
    fn periodic(&mut self, _now: Instant) {}
}

/// Helpers for scheduler tests: a service's destination list built by hand.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::dest::DestConfig;
    use crate::random::SplitMix64;

    /// Destinations in an arena plus their list order, with a scheduler kept in sync.
    pub struct Fixture {
        pub arena: DestArena,
        pub order: Vec<DestId>,
        pub sched: Box<dyn Scheduler>,
        pub rng: SplitMix64,
        pub flags: SchedFlags,
    }

    impl Fixture {
        /// A fixture for `kind` with destinations 198.18.1.(i+1):80 of the given weights.
        pub fn new(kind: SchedulerKind, weights: &[u32]) -> Fixture {
            let mut f = Fixture {
                arena: DestArena::default(),
                order: Vec::new(),
                sched: kind.build(),
                rng: SplitMix64::new(1),
                flags: SchedFlags::NONE,
            };
            for (i, &w) in weights.iter().enumerate() {
                f.add(format!("198.18.1.{}", i + 1).parse().unwrap(), 80, w);
            }
            f
        }

        pub fn list(&self) -> DestList<'_> {
            DestList::new(&self.order, &self.arena)
        }

        /// Appends a destination.
        pub fn add(&mut self, addr: IpAddr, port: u16, weight: u32) -> DestId {
            let mut c = DestConfig::new(addr, port);
            c.weight = weight;
            let id = self.arena.insert(Destination::new(c));
            self.order.push(id);
            let pos = self.order.len() - 1;
            self.sched.update_dests(DestList::new(&self.order, &self.arena), DestChange::Added { pos });
            id
        }

        /// Removes the destination at `pos` (kept in the arena like the kernel's trash).
        pub fn remove(&mut self, pos: usize) {
            let id = self.order.remove(pos);
            self.arena.get_mut(id).unwrap().available = false;
            self.sched.update_dests(DestList::new(&self.order, &self.arena), DestChange::Removed { pos, id });
        }

        /// Sets a weight (an edit).
        pub fn set_weight(&mut self, pos: usize, weight: u32) {
            let id = self.order[pos];
            let d = self.arena.get_mut(id).unwrap();
            let mut c = d.config;
            c.weight = weight;
            d.apply_edit(c);
            self.sched.update_dests(DestList::new(&self.order, &self.arena), DestChange::Edited { pos });
        }

        /// Sets the counters and overload flag of the destination at `pos`.
        pub fn set_load(&mut self, pos: usize, active: u32, inactive: u32, overloaded: bool) {
            let d = self.arena.get_mut(self.order[pos]).unwrap();
            d.active_conns = active;
            d.inactive_conns = inactive;
            d.overloaded = overloaded;
            self.sched.load_changed(DestList::new(&self.order, &self.arena), pos);
        }

        /// Schedules for a client and returns the chosen list position.
        pub fn pick_for(&mut self, client: &str, client_port: u16) -> Option<usize> {
            let mut req = SchedRequest {
                protocol: Protocol::Tcp,
                client: client.parse().unwrap(),
                client_port,
                vaddr: "198.18.0.10".parse().unwrap(),
                vport: 80,
                flags: self.flags,
                now: Instant::ZERO,
                rng: &mut self.rng,
            };
            let id = self.sched.schedule(DestList::new(&self.order, &self.arena), &mut req)?;
            self.order.iter().position(|&x| x == id)
        }

        /// Schedules for a fixed client and returns the chosen list position.
        pub fn pick(&mut self) -> Option<usize> {
            self.pick_for("198.18.200.1", 40000)
        }

        /// Schedules once and binds an active connection to the chosen destination, as the
        /// engine does; returns the chosen position.
        pub fn pick_and_bind(&mut self) -> Option<usize> {
            let pos = self.pick()?;
            let d = self.arena.get_mut(self.order[pos]).unwrap();
            d.bind(false, false);
            self.sched.load_changed(DestList::new(&self.order, &self.arena), pos);
            Some(pos)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for k in SchedulerKind::ALL {
            assert_eq!(k.name().parse::<SchedulerKind>(), Ok(k));
            assert_eq!(k.build().kind(), k);
        }
        assert!(matches!("wlcx".parse::<SchedulerKind>(), Err(ConfigError::UnknownScheduler(_))));
    }

    #[test]
    fn sched_flags_parse_like_ipvsadm() {
        let f = SchedFlags::parse("sh-fallback,sh-port", SchedulerKind::Sh).unwrap();
        assert!(f.fallback() && f.port());
        assert_eq!(f.names(SchedulerKind::Sh), vec!["sh-fallback", "sh-port"]);
        assert_eq!(
            SchedFlags::parse("sh-port", SchedulerKind::Wlc),
            Err(ConfigError::IncompatibleSchedFlag("sh-port".into()))
        );
        assert_eq!(
            SchedFlags::parse("mh-port", SchedulerKind::Sh),
            Err(ConfigError::IncompatibleSchedFlag("mh-port".into()))
        );
        assert!(matches!(SchedFlags::parse("bogus", SchedulerKind::Sh), Err(ConfigError::UnknownSchedFlag(_))));
        assert_eq!(SchedFlags::parse("flag-3", SchedulerKind::Rr).unwrap().names(SchedulerKind::Rr), vec!["flag-3"]);
    }
}
