//! The DoS defence policy of IPVS: the `drop_entry`, `drop_packet` and `secure_tcp` sysctls,
//! switched on and off by available memory (kernel `update_defense_level` and `defense_work`
//! in `ip_vs_ctl.c`, `ip_vs_todrop` in `ip_vs.h`).
//!
//! Each of the three policies has a mode ([`DefenseMode`]):
//!
//! | mode | meaning |
//! |---|---|
//! | 0 | off |
//! | 1 | automatic, currently idle: memory is fine |
//! | 2 | automatic, currently engaged: memory is short |
//! | 3 | always on |
//!
//! Memory is short when the available pages are below `amemthresh`. Once a second the owner
//! calls [`Defense::update`] with the available pages (the daemon reads `/proc/meminfo`; this
//! module stays pure). In an automatic mode the update rewrites the mode between 1 and 2, as
//! the kernel rewrites the sysctl, so the sysctl view shows which way it went. A policy is
//! engaged exactly when its mode reads 2 or 3 after an update; `drop_packet` in mode 3 with
//! `am_droprate` 0 is engaged but drops nothing, as in the kernel.
//!
//! What the policies do:
//! - `drop_entry`: while engaged, the once-a-second defence tick also removes a random part of
//!   the connection table's half-open entries (the connection table does that; see
//!   [`Defense::drop_entry_active`]).
//! - `drop_packet`: while engaged, one of every *rate* packets that would create a new
//!   connection is dropped before scheduling ([`Defense::should_drop_packet`]). The rate is
//!   `amemthresh / (amemthresh - available)` in automatic mode (1 = drop them all when memory
//!   is exhausted), `am_droprate` in mode 3.
//! - `secure_tcp`: while engaged, TCP uses the stricter state table and timeouts
//!   ([`Defense::secure_tcp_active`]; [`DefenseUpdate::secure_tcp_switched`] says when to switch).

use thiserror::Error;

/// Default `amemthresh`, in pages.
pub const DEFAULT_AMEMTHRESH: u64 = 1024;

/// Default `am_droprate`: drop one packet in 10 in `drop_packet` mode 3.
pub const DEFAULT_AM_DROPRATE: u32 = 10;

/// One of the three defence policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefensePolicy {
    /// `drop_entry`: remove half-open connection entries.
    DropEntry,
    /// `drop_packet`: drop a share of new-connection packets.
    DropPacket,
    /// `secure_tcp`: use the stricter TCP state table.
    SecureTcp,
}

impl DefensePolicy {
    /// The sysctl's name under `net.ipv4.vs`.
    pub const fn sysctl_name(self) -> &'static str {
        match self {
            DefensePolicy::DropEntry => "drop_entry",
            DefensePolicy::DropPacket => "drop_packet",
            DefensePolicy::SecureTcp => "secure_tcp",
        }
    }
}

impl std::fmt::Display for DefensePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sysctl_name())
    }
}

/// The mode of one defence policy, the sysctl's value 0..=3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DefenseMode {
    /// 0: never.
    #[default]
    Off,
    /// 1: automatic, idle (memory is fine).
    AutoIdle,
    /// 2: automatic, engaged (memory is short).
    AutoEngaged,
    /// 3: always.
    Always,
}

impl DefenseMode {
    /// The mode for a sysctl value, `None` outside 0..=3.
    pub const fn from_value(value: i64) -> Option<DefenseMode> {
        match value {
            0 => Some(DefenseMode::Off),
            1 => Some(DefenseMode::AutoIdle),
            2 => Some(DefenseMode::AutoEngaged),
            3 => Some(DefenseMode::Always),
            _ => None,
        }
    }

    /// The sysctl value 0..=3.
    pub const fn value(self) -> u8 {
        match self {
            DefenseMode::Off => 0,
            DefenseMode::AutoIdle => 1,
            DefenseMode::AutoEngaged => 2,
            DefenseMode::Always => 3,
        }
    }

    /// Whether the policy acts in this mode (2 or 3).
    pub const fn is_engaged(self) -> bool {
        matches!(self, DefenseMode::AutoEngaged | DefenseMode::Always)
    }

    /// The mode after an update with memory short or not: automatic modes follow memory,
    /// 0 and 3 stay.
    const fn after_update(self, memory_short: bool) -> DefenseMode {
        match self {
            DefenseMode::AutoIdle | DefenseMode::AutoEngaged if memory_short => DefenseMode::AutoEngaged,
            DefenseMode::AutoIdle | DefenseMode::AutoEngaged => DefenseMode::AutoIdle,
            fixed => fixed,
        }
    }
}

/// Why a defence setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DefenseError {
    /// A mode outside 0..=3 (the kernel answers EINVAL and keeps the old value).
    #[error("invalid value {value} for net.ipv4.vs.{policy}: must be 0, 1, 2 or 3")]
    InvalidMode {
        /// The sysctl written.
        policy: DefensePolicy,
        /// The value refused.
        value: i64,
    },
}

/// The defence sysctls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefenseConfig {
    /// `amemthresh`: memory is short below this many available pages.
    pub amemthresh: u64,
    /// `am_droprate`: `drop_packet` mode 3 drops one of every this many packets (0: none).
    pub am_droprate: u32,
    /// `drop_entry` mode.
    pub drop_entry: DefenseMode,
    /// `drop_packet` mode.
    pub drop_packet: DefenseMode,
    /// `secure_tcp` mode.
    pub secure_tcp: DefenseMode,
}

impl Default for DefenseConfig {
    /// The kernel's defaults: threshold 1024 pages, drop rate 10, all three policies off.
    fn default() -> Self {
        DefenseConfig {
            amemthresh: DEFAULT_AMEMTHRESH,
            am_droprate: DEFAULT_AM_DROPRATE,
            drop_entry: DefenseMode::Off,
            drop_packet: DefenseMode::Off,
            secure_tcp: DefenseMode::Off,
        }
    }
}

impl DefenseConfig {
    /// The mode of `policy`.
    pub const fn mode(&self, policy: DefensePolicy) -> DefenseMode {
        match policy {
            DefensePolicy::DropEntry => self.drop_entry,
            DefensePolicy::DropPacket => self.drop_packet,
            DefensePolicy::SecureTcp => self.secure_tcp,
        }
    }

    /// Set the mode of `policy` from a sysctl value; values outside 0..=3 are refused and
    /// leave the configuration unchanged.
    pub fn set_mode(&mut self, policy: DefensePolicy, value: i64) -> Result<(), DefenseError> {
        let mode = DefenseMode::from_value(value).ok_or(DefenseError::InvalidMode { policy, value })?;
        *self.mode_mut(policy) = mode;
        Ok(())
    }

    fn mode_mut(&mut self, policy: DefensePolicy) -> &mut DefenseMode {
        match policy {
            DefensePolicy::DropEntry => &mut self.drop_entry,
            DefensePolicy::DropPacket => &mut self.drop_packet,
            DefensePolicy::SecureTcp => &mut self.secure_tcp,
        }
    }
}

/// What the defences look like at one moment, for logging and the sysctl view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefenseState {
    /// Whether the last memory reading was below `amemthresh` (false before any reading).
    pub memory_short: bool,
    /// `drop_entry` mode.
    pub drop_entry: DefenseMode,
    /// `drop_packet` mode.
    pub drop_packet: DefenseMode,
    /// `secure_tcp` mode.
    pub secure_tcp: DefenseMode,
    /// Packets dropped: one of every `drop_rate`; 0 when none are.
    pub drop_rate: u64,
}

impl DefenseState {
    /// Whether `drop_entry` is engaged.
    pub const fn drop_entry_active(&self) -> bool {
        self.drop_entry.is_engaged()
    }

    /// Whether packets are being dropped.
    pub const fn drop_packet_active(&self) -> bool {
        self.drop_rate != 0
    }

    /// Whether `secure_tcp` is engaged.
    pub const fn secure_tcp_active(&self) -> bool {
        self.secure_tcp.is_engaged()
    }
}

/// The defences before and after an update or a mode change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefenseUpdate {
    /// Before.
    pub before: DefenseState,
    /// After.
    pub after: DefenseState,
}

impl DefenseUpdate {
    /// Whether anything changed (memory state, a mode, or the drop rate).
    pub fn changed(&self) -> bool {
        self.before != self.after
    }

    /// `Some(engaged)` when `drop_entry` switched on or off.
    pub fn drop_entry_switched(&self) -> Option<bool> {
        switched(self.before.drop_entry_active(), self.after.drop_entry_active())
    }

    /// `Some(new rate)` when the drop rate changed (0: dropping stopped).
    pub fn drop_rate_changed(&self) -> Option<u64> {
        (self.before.drop_rate != self.after.drop_rate).then_some(self.after.drop_rate)
    }

    /// `Some(engaged)` when `secure_tcp` switched on or off: the moment the kernel switches
    /// the TCP state table and timeouts (`ip_vs_protocol_timeout_change`).
    pub fn secure_tcp_switched(&self) -> Option<bool> {
        switched(self.before.secure_tcp_active(), self.after.secure_tcp_active())
    }
}

fn switched(before: bool, after: bool) -> Option<bool> {
    (before != after).then_some(after)
}

/// The defence state of one IPVS instance.
#[derive(Debug, Clone)]
pub struct Defense {
    /// The sysctls; automatic modes are rewritten by updates.
    config: DefenseConfig,
    /// The last available-memory reading, in pages.
    available_pages: Option<u64>,
    /// One of every `drop_rate` new-connection packets is dropped; 0: none.
    drop_rate: u64,
    /// Packets left until the next drop; a drop happens when it is at most 1.
    drop_counter: u64,
}

impl Default for Defense {
    fn default() -> Self {
        Defense::new(DefenseConfig::default())
    }
}

impl Defense {
    /// Defences with `config`, evaluated as if memory were fine until the first
    /// [`Defense::update`]: automatic modes read 1, mode 3 is engaged at once.
    pub fn new(config: DefenseConfig) -> Defense {
        let mut defense = Defense { config, available_pages: None, drop_rate: 0, drop_counter: 0 };
        defense.evaluate();
        defense
    }

    /// The sysctls as they read now (automatic modes show 1 or 2).
    pub fn config(&self) -> &DefenseConfig {
        &self.config
    }

    /// The current mode of `policy`.
    pub fn mode(&self, policy: DefensePolicy) -> DefenseMode {
        self.config.mode(policy)
    }

    /// The current state.
    pub fn state(&self) -> DefenseState {
        DefenseState {
            memory_short: self.memory_short(),
            drop_entry: self.config.drop_entry,
            drop_packet: self.config.drop_packet,
            secure_tcp: self.config.secure_tcp,
            drop_rate: self.drop_rate,
        }
    }

    /// Whether the defence tick should drop half-open connection entries.
    pub fn drop_entry_active(&self) -> bool {
        self.config.drop_entry.is_engaged()
    }

    /// Whether TCP should use the secure (anti-DoS) state table.
    pub fn secure_tcp_active(&self) -> bool {
        self.config.secure_tcp.is_engaged()
    }

    /// One of every how many new-connection packets is dropped; 0 when none are.
    pub fn drop_rate(&self) -> u64 {
        self.drop_rate
    }

    /// The once-a-second defence tick with the available memory in pages: re-evaluate the
    /// three policies and return what changed.
    pub fn update(&mut self, available_pages: u64) -> DefenseUpdate {
        let before = self.state();
        self.available_pages = Some(available_pages);
        self.evaluate();
        DefenseUpdate { before, after: self.state() }
    }

    /// Write a mode sysctl. A new value takes effect at once, evaluated against the last
    /// memory reading (memory counts as fine before the first); writing the current value
    /// changes nothing. Values outside 0..=3 are refused and change nothing.
    pub fn set_mode(&mut self, policy: DefensePolicy, value: i64) -> Result<DefenseUpdate, DefenseError> {
        let before = self.state();
        let old = self.config.mode(policy);
        self.config.set_mode(policy, value)?;
        if self.config.mode(policy) != old {
            self.evaluate();
        }
        Ok(DefenseUpdate { before, after: self.state() })
    }

    /// Write `amemthresh`; it takes effect at the next [`Defense::update`].
    pub fn set_amemthresh(&mut self, pages: u64) {
        self.config.amemthresh = pages;
    }

    /// Write `am_droprate`; it takes effect at the next [`Defense::update`].
    pub fn set_am_droprate(&mut self, rate: u32) {
        self.config.am_droprate = rate;
    }

    /// Whether to drop this packet, which would create a new connection (the kernel asks
    /// before scheduling a SYN, or any first packet of UDP/SCTP). Deterministic: while the
    /// rate is *n*, exactly one packet in *n* is dropped. After an automatic-mode update the
    /// *n*-th packet is the first dropped; in mode 3 the count carries on across updates, so
    /// the very first packet after engaging from a fresh state is dropped.
    pub fn should_drop_packet(&mut self) -> bool {
        if self.drop_rate == 0 {
            return false;
        }
        if self.drop_counter > 1 {
            self.drop_counter -= 1;
            return false;
        }
        self.drop_counter = self.drop_rate;
        true
    }

    fn memory_short(&self) -> bool {
        self.available_pages.is_some_and(|available| available < self.config.amemthresh)
    }

    /// The kernel's `update_defense_level` against the last reading.
    fn evaluate(&mut self) {
        let short = self.memory_short();
        self.config.drop_entry = self.config.drop_entry.after_update(short);
        self.config.secure_tcp = self.config.secure_tcp.after_update(short);
        self.config.drop_packet = self.config.drop_packet.after_update(short);
        match self.config.drop_packet {
            DefenseMode::Off | DefenseMode::AutoIdle => self.drop_rate = 0,
            DefenseMode::AutoEngaged => {
                // Memory short means available < amemthresh, so the divisor is at least 1 and
                // the rate is at least 1.
                let available = self.available_pages.unwrap_or(0);
                let rate = self.config.amemthresh / self.config.amemthresh.saturating_sub(available).max(1);
                self.drop_rate = rate;
                self.drop_counter = rate;
            }
            DefenseMode::Always => self.drop_rate = u64::from(self.config.am_droprate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [DefensePolicy; 3] = [DefensePolicy::DropEntry, DefensePolicy::DropPacket, DefensePolicy::SecureTcp];

    fn with_modes(value: i64) -> Defense {
        let mut config = DefenseConfig::default();
        for policy in ALL {
            config.set_mode(policy, value).unwrap();
        }
        Defense::new(config)
    }

    /// Which of `count` consecutive packets (numbered from 1) are dropped.
    fn dropped(defense: &mut Defense, count: u64) -> Vec<u64> {
        (1..=count).filter(|_| defense.should_drop_packet()).collect()
    }

    #[test]
    fn defaults_match_the_kernel() {
        let config = DefenseConfig::default();
        assert_eq!((config.amemthresh, config.am_droprate), (1024, 10));
        let mut defense = Defense::default();
        for policy in ALL {
            assert_eq!(defense.mode(policy), DefenseMode::Off);
        }
        // Mode 0 ignores memory entirely.
        let update = defense.update(0);
        assert!(update.after.memory_short);
        assert!(!defense.drop_entry_active() && !defense.secure_tcp_active());
        assert_eq!(defense.drop_rate(), 0);
        assert!(dropped(&mut defense, 100).is_empty());
    }

    #[test]
    fn mode_values_round_trip_and_out_of_range_is_refused() {
        for value in 0..=3 {
            assert_eq!(DefenseMode::from_value(value).map(DefenseMode::value), Some(value as u8));
        }
        let mut defense = with_modes(1);
        for policy in ALL {
            for bad in [4, -1, i64::MAX] {
                assert_eq!(defense.set_mode(policy, bad), Err(DefenseError::InvalidMode { policy, value: bad }));
                assert_eq!(defense.mode(policy), DefenseMode::AutoIdle, "refused write changes nothing");
            }
        }
        let err = DefenseConfig::default().set_mode(DefensePolicy::DropEntry, 4).unwrap_err();
        assert_eq!(err.to_string(), "invalid value 4 for net.ipv4.vs.drop_entry: must be 0, 1, 2 or 3");
    }

    /// Mode 1: short memory (available < amemthresh, strictly) engages and rewrites to 2;
    /// memory back (available >= amemthresh) disengages and rewrites to 1.
    #[test]
    fn automatic_modes_follow_memory() {
        let mut defense = with_modes(1);
        let update = defense.update(1024);
        assert!(!update.changed(), "1024 pages is not below the threshold of 1024");
        assert_eq!(defense.mode(DefensePolicy::DropEntry), DefenseMode::AutoIdle);

        let update = defense.update(1023);
        for policy in ALL {
            assert_eq!(defense.mode(policy), DefenseMode::AutoEngaged, "{policy}");
        }
        assert!(defense.drop_entry_active() && defense.secure_tcp_active());
        assert_eq!(update.drop_entry_switched(), Some(true));
        assert_eq!(update.secure_tcp_switched(), Some(true));
        assert_eq!(update.drop_rate_changed(), Some(1024));

        let update = defense.update(500);
        assert_eq!(update.drop_entry_switched(), None, "still engaged");
        assert_eq!(update.secure_tcp_switched(), None);
        assert_eq!(defense.mode(DefensePolicy::SecureTcp), DefenseMode::AutoEngaged);

        let update = defense.update(2048);
        for policy in ALL {
            assert_eq!(defense.mode(policy), DefenseMode::AutoIdle, "{policy}");
        }
        assert!(!defense.drop_entry_active() && !defense.secure_tcp_active());
        assert_eq!(update.drop_entry_switched(), Some(false));
        assert_eq!(update.secure_tcp_switched(), Some(false));
        assert_eq!(update.drop_rate_changed(), Some(0));
        assert!(dropped(&mut defense, 100).is_empty());
    }

    /// Writing 2 by hand while memory is fine is undone at once (the kernel re-evaluates on
    /// a sysctl write); writing 2 while memory is short keeps it.
    #[test]
    fn writing_mode_two_is_re_evaluated_at_once() {
        let mut defense = Defense::default();
        defense.update(4096);
        let update = defense.set_mode(DefensePolicy::SecureTcp, 2).unwrap();
        assert_eq!(defense.mode(DefensePolicy::SecureTcp), DefenseMode::AutoIdle);
        assert_eq!(update.secure_tcp_switched(), None);

        defense.set_mode(DefensePolicy::SecureTcp, 0).unwrap();
        defense.update(100);
        assert!(!defense.secure_tcp_active(), "mode 0 ignores the shortage");
        let update = defense.set_mode(DefensePolicy::SecureTcp, 2).unwrap();
        assert_eq!(defense.mode(DefensePolicy::SecureTcp), DefenseMode::AutoEngaged);
        assert_eq!(update.secure_tcp_switched(), Some(true));
        // Writing the same value again changes nothing.
        assert!(!defense.set_mode(DefensePolicy::SecureTcp, 2).unwrap().changed());
    }

    #[test]
    fn mode_three_is_always_on_and_mode_zero_always_off() {
        let mut defense = with_modes(3);
        assert!(defense.drop_entry_active() && defense.secure_tcp_active());
        assert_eq!(defense.drop_rate(), 10);
        for available in [0, 1023, 1024, u64::MAX] {
            defense.update(available);
            for policy in ALL {
                assert_eq!(defense.mode(policy), DefenseMode::Always);
            }
            assert_eq!(defense.drop_rate(), 10, "am_droprate regardless of memory");
        }
        let update = defense.set_mode(DefensePolicy::SecureTcp, 0).unwrap();
        assert_eq!(update.secure_tcp_switched(), Some(false));
        defense.update(0);
        assert!(!defense.secure_tcp_active());
    }

    /// Automatic rate = amemthresh / (amemthresh - available), integer division:
    /// 1024/(1024-1023) = 1024, 1024/(1024-768) = 4, 1024/(1024-700) = 3 (3.16),
    /// 1024/(1024-512) = 2, 1024/(1024-100) = 1 (1.1), 1024/1024 = 1.
    #[test]
    fn automatic_drop_rate_arithmetic() {
        for (available, rate) in [(1023, 1024), (768, 4), (700, 3), (512, 2), (100, 1), (0, 1), (1024, 0)] {
            let mut defense = with_modes(1);
            defense.update(available);
            assert_eq!(defense.drop_rate(), rate, "{available} pages available");
        }
    }

    /// Rate 4 after an update: the counter starts at 4, so packets 4, 8, 12 ... are dropped.
    /// The next update resets the counter to the rate: after 6 packets (2 left before the
    /// next drop) the count restarts and the next drop is packet 4 of the new run.
    #[test]
    fn automatic_drop_pattern_and_reset_by_update() {
        let mut defense = with_modes(2);
        defense.update(768);
        assert_eq!(dropped(&mut defense, 12), [4, 8, 12]);
        assert_eq!(dropped(&mut defense, 6), [4]);
        defense.update(768);
        assert_eq!(dropped(&mut defense, 9), [4, 8]);
        // Available 0: rate 1, every packet.
        defense.update(0);
        assert_eq!(dropped(&mut defense, 5), [1, 2, 3, 4, 5]);
    }

    /// Mode 3 with am_droprate 10 from a fresh state: the kernel's counter starts at 0, so the
    /// first packet is dropped and then every 10th: 1, 11, 21. Updates do not reset the count.
    #[test]
    fn always_mode_uses_am_droprate_with_a_running_counter() {
        let mut config = DefenseConfig::default();
        config.set_mode(DefensePolicy::DropPacket, 3).unwrap();
        let mut defense = Defense::new(config);
        assert_eq!(dropped(&mut defense, 25), [1, 11, 21]);
        // 4 packets into the current cycle (21 dropped, then 22..25): 6 more to the next drop.
        defense.update(0);
        assert_eq!(dropped(&mut defense, 10), [6]);

        // A new am_droprate takes effect at the next update and the running count is kept:
        // the counter stood at 6 (10 after packet 6, then 7..10), so packet 6 is dropped,
        // then every 3rd.
        defense.set_am_droprate(3);
        assert_eq!(defense.drop_rate(), 10);
        defense.update(5000);
        assert_eq!(dropped(&mut defense, 10), [6, 9]);

        // am_droprate 0: engaged, drops nothing.
        defense.set_am_droprate(0);
        defense.update(5000);
        assert_eq!(defense.mode(DefensePolicy::DropPacket), DefenseMode::Always);
        assert!(!defense.state().drop_packet_active());
        assert!(dropped(&mut defense, 100).is_empty());
    }

    #[test]
    fn amemthresh_change_applies_at_next_update() {
        let mut defense = with_modes(1);
        defense.update(2000);
        defense.set_amemthresh(4096);
        assert!(!defense.drop_entry_active());
        let update = defense.update(2000);
        assert!(update.after.memory_short);
        // 4096 / (4096 - 2000) = 1 (1.95).
        assert_eq!(defense.drop_rate(), 1);
        // amemthresh 0: memory is never short.
        defense.set_amemthresh(0);
        defense.update(0);
        assert!(!defense.state().memory_short);
        assert_eq!(defense.mode(DefensePolicy::DropEntry), DefenseMode::AutoIdle);
    }

    /// Policies are independent: each follows its own mode.
    #[test]
    fn policies_are_independent() {
        let mut config = DefenseConfig::default();
        config.set_mode(DefensePolicy::DropEntry, 1).unwrap();
        config.set_mode(DefensePolicy::DropPacket, 0).unwrap();
        config.set_mode(DefensePolicy::SecureTcp, 3).unwrap();
        let mut defense = Defense::new(config);
        defense.update(10);
        assert_eq!(defense.mode(DefensePolicy::DropEntry), DefenseMode::AutoEngaged);
        assert_eq!(defense.mode(DefensePolicy::DropPacket), DefenseMode::Off);
        assert_eq!(defense.mode(DefensePolicy::SecureTcp), DefenseMode::Always);
        assert!(!defense.should_drop_packet());
        let update = defense.update(5000);
        assert_eq!(update.drop_entry_switched(), Some(false));
        assert_eq!(update.secure_tcp_switched(), None);
        assert_eq!(defense.config().drop_entry.value(), 1);
    }
}
