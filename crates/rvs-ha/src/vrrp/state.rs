//! One VRRP instance's state machine (RFC 5798 §6.4, with keepalived's extensions): Initialize,
//! Backup, Master, plus Fault for tracking. Time is injected ([`Instant`], ms); the machine never
//! reads a clock or touches the network: every handler returns [`Action`]s for the caller.
//!
//! Only a valid advert ([`Instance::receive`]), a real timeout ([`Instance::on_timer`] at or after
//! the deadline), a tracker change, startup or shutdown can change the state.

use std::net::IpAddr;
use std::time::Duration;

use rvs_core::Instant;

use crate::vrrp::packet::{Family, MAX_V3_INTERVAL_CS, Version};
use crate::vrrp::rx::{Accepted, DropReason, Receiver, RxMeta, RxPolicy};
use crate::vrrp::timing::{centis, master_down_us, micros, skew_us};
use crate::vrrp::track::{BadWeight, TrackSet, Tracker, TrackerId};

/// Priority of the address owner.
pub const OWNER_PRIORITY: u8 = 255;
/// Priority a resigning master advertises.
pub const RESIGN_PRIORITY: u8 = 0;
/// Longest preempt delay (keepalived: 1000 s).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// Instance state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started (or shut down).
    Initialize,
    /// Watching the master.
    Backup,
    /// Owning the virtual addresses and advertising.
    Master,
    /// A weight-0 tracker is down (or the sync group is in fault): no adverts, no addresses.
    Fault,
}

/// What the caller must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send one advert with this priority.
    SendAdvert {
        /// Priority to advertise (0 when resigning).
        priority: u8,
    },
    /// Entered Master: add the virtual addresses and start gratuitous ARP / NA announcements.
    BecomeMaster,
    /// Entered Backup: remove the virtual addresses if held.
    BecomeBackup,
    /// Entered Fault: remove the virtual addresses if held.
    BecomeFault,
    /// Back in Initialize after shutdown: remove the virtual addresses if held.
    Stopped,
    /// As master, saw a lower-priority advert: repeat the address announcements
    /// (keepalived's `garp_lower_prio_*`).
    Reannounce,
    /// Call [`Instance::on_timer`] at this instant (replaces any earlier request).
    ScheduleTimer {
        /// When.
        at: Instant,
    },
}

/// Invalid configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// VRID must be 1..=255.
    #[error("VRID must be 1..=255")]
    Vrid,
    /// Priority must be 1..=255.
    #[error("priority must be 1..=255")]
    Priority,
    /// v2: whole seconds 1..=255; v3: 1..=4095 cs.
    #[error("advert interval {0} cs not valid for this version")]
    Interval(u16),
    /// down_timer_adverts must be 1..=100.
    #[error("down_timer_adverts must be 1..=100")]
    DownTimerAdverts,
    /// preempt_delay must be at most 1000 s.
    #[error("preempt delay above 1000 s")]
    PreemptDelay,
    /// VRRPv2 is IPv4 only.
    #[error("VRRPv2 cannot run over IPv6")]
    V2OverIpv6,
    /// The receive policy disagrees with the instance on version, family, VRID or interval.
    #[error("receive policy does not match the instance")]
    PolicyMismatch,
    /// A tracker weight is out of range.
    #[error(transparent)]
    Weight(#[from] BadWeight),
}

/// Static configuration of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Protocol version.
    pub version: Version,
    /// Virtual router id.
    pub vrid: u8,
    /// Base priority 1..=255 (255 = address owner).
    pub priority: u8,
    /// Our advert interval in centiseconds (v2: multiple of 100).
    pub advert_interval_cs: u16,
    /// Our primary address: the source of our adverts and the tie-breaker.
    pub primary_ip: IpAddr,
    /// Take over from a lower-priority master (RFC default true; keepalived `nopreempt` = false).
    pub preempt: bool,
    /// Keep accepting a lower-priority master for this long after startup or after first
    /// seeing it (keepalived `preempt_delay`).
    pub preempt_delay: Duration,
    /// Master_Down_Interval multiplier (RFC 3; keepalived `down_timer_adverts`).
    pub down_timer_adverts: u8,
    /// As master, answer a lower-priority advert with our own (keepalived default; RFC 5798
    /// discards; keepalived `lower_prio_no_advert` = false).
    pub answer_lower_priority: bool,
    /// As master, send one more advert before yielding to a higher priority (keepalived
    /// `higher_prio_send_advert`).
    pub higher_prio_send_advert: bool,
}

impl InstanceConfig {
    /// RFC defaults: preempt on, no delay, 3 adverts, lower-priority adverts answered, no extra advert.
    pub fn new(version: Version, vrid: u8, priority: u8, advert_interval_cs: u16, primary_ip: IpAddr) -> Self {
        InstanceConfig {
            version,
            vrid,
            priority,
            advert_interval_cs,
            primary_ip,
            preempt: true,
            preempt_delay: Duration::ZERO,
            down_timer_adverts: 3,
            answer_lower_priority: true,
            higher_prio_send_advert: false,
        }
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::Vrid);
        }
        if self.priority == 0 {
            return Err(ConfigError::Priority);
        }
        let i = self.advert_interval_cs;
        let ok = match self.version {
            Version::V2 => i.is_multiple_of(100) && (100..=25_500).contains(&i),
            Version::V3 => (1..=MAX_V3_INTERVAL_CS).contains(&i),
        };
        if !ok {
            return Err(ConfigError::Interval(i));
        }
        if !(1..=100).contains(&self.down_timer_adverts) {
            return Err(ConfigError::DownTimerAdverts);
        }
        if self.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ConfigError::PreemptDelay);
        }
        if self.version == Version::V2 && self.primary_ip.is_ipv6() {
            return Err(ConfigError::V2OverIpv6);
        }
        Ok(())
    }

    /// The receive policy matching this configuration, with RFC defaults for the rest.
    pub fn default_policy(&self) -> RxPolicy {
        RxPolicy::new(self.version, Family::of(self.primary_ip), self.vrid, self.advert_interval_cs)
    }
}

/// A VRRP instance.
#[derive(Debug, Clone)]
pub struct Instance {
    cfg: InstanceConfig,
    rx: Receiver,
    track: TrackSet,
    state: State,
    /// Master_Adver_Interval (cs): the current master's interval, ours when we are master.
    master_adver_cs: u16,
    adver_at: Option<Instant>,
    down_at: Option<Instant>,
    preempt_until: Option<Instant>,
    /// In Backup: an advert from a live master reset the down timer since we entered Backup.
    master_seen: bool,
    /// Fault imposed by the sync group.
    forced_fault: bool,
    /// Preemption held (connection sync has not delivered the master's table yet).
    preempt_hold: bool,
    /// The last deadline announced with ScheduleTimer.
    announced: Option<Instant>,
}

impl Instance {
    /// An instance with `policy` for validating adverts.
    pub fn new(cfg: InstanceConfig, policy: RxPolicy) -> Result<Instance, ConfigError> {
        cfg.validate()?;
        if policy.version != cfg.version
            || policy.vrid != cfg.vrid
            || policy.interval_cs != cfg.advert_interval_cs
            || policy.family != Family::of(cfg.primary_ip)
        {
            return Err(ConfigError::PolicyMismatch);
        }
        Ok(Instance {
            master_adver_cs: cfg.advert_interval_cs,
            cfg,
            rx: Receiver::new(policy),
            track: TrackSet::default(),
            state: State::Initialize,
            adver_at: None,
            down_at: None,
            preempt_until: None,
            master_seen: false,
            forced_fault: false,
            preempt_hold: false,
            announced: None,
        })
    }

    /// An instance with the default policy of its configuration.
    pub fn with_default_policy(cfg: InstanceConfig) -> Result<Instance, ConfigError> {
        let policy = cfg.default_policy();
        Instance::new(cfg, policy)
    }

    /// Adds a tracker (before or after startup) whose probe reports `up`.
    pub fn add_tracker(&mut self, tracker: Tracker, up: bool) -> Result<TrackerId, ConfigError> {
        Ok(self.track.add(tracker, up)?)
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Priority after tracker weights.
    pub fn effective_priority(&self) -> u8 {
        self.track.effective_priority(self.cfg.priority)
    }

    /// Master_Adver_Interval in centiseconds.
    pub fn master_adver_interval_cs(&self) -> u16 {
        self.master_adver_cs
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.adver_at, self.down_at].into_iter().flatten().min()
    }

    /// Skew_Time for our effective priority and the current master interval.
    pub fn skew(&self) -> Duration {
        micros(skew_us(self.cfg.version, self.effective_priority(), self.master_adver_cs))
    }

    /// Master_Down_Interval for our effective priority and the current master interval.
    pub fn master_down_interval(&self) -> Duration {
        micros(master_down_us(
            self.cfg.version,
            self.effective_priority(),
            self.master_adver_cs,
            self.cfg.down_timer_adverts,
        ))
    }

    fn faulted(&self) -> bool {
        self.forced_fault || self.track.faulted()
    }

    /// Startup event: Initialize -> Master (owner), Backup, or Fault.
    pub fn startup(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Initialize {
            if self.cfg.preempt && !self.cfg.preempt_delay.is_zero() {
                self.preempt_until = Some(now + self.cfg.preempt_delay);
            }
            self.leave_initialize(now, &mut out);
        }
        self.finish(out)
    }

    /// Shutdown event: a master resigns with a priority-0 advert; all timers stop.
    pub fn shutdown(&mut self, _now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Initialize {
            return out;
        }
        if self.state == State::Master {
            out.push(Action::SendAdvert { priority: RESIGN_PRIORITY });
        }
        self.state = State::Initialize;
        self.clear_timers();
        self.announced = None;
        out.push(Action::Stopped);
        out
    }

    /// A received advert (`payload` is the IP payload, `meta` what the IP layer said): validated,
    /// then applied. Refused adverts change nothing.
    pub fn receive(&mut self, now: Instant, meta: &RxMeta, payload: &[u8]) -> Result<Vec<Action>, DropReason> {
        if meta.src == self.cfg.primary_ip {
            return Err(DropReason::FromSelf);
        }
        let accepted = self.rx.accept(meta, payload)?;
        let mut out = Vec::new();
        self.apply_advert(now, &accepted, &mut out);
        Ok(self.finish(out))
    }

    /// Timer event: acts only on deadlines at or before `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        self.on_timer_gated(now, true)
    }

    /// Timer event; `may_become_master` = false keeps a Backup whose down timer expired in
    /// Backup (used by sync groups while another member still sees a live master).
    pub(crate) fn on_timer_gated(&mut self, now: Instant, may_become_master: bool) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Master => {
                if self.adver_at.is_some_and(|at| at <= now) {
                    out.push(Action::SendAdvert { priority: self.effective_priority() });
                    self.adver_at = Some(now + centis(self.cfg.advert_interval_cs));
                }
            }
            State::Backup => {
                if self.down_at.is_some_and(|at| at <= now) {
                    if may_become_master {
                        self.enter_master(now, &mut out);
                    } else {
                        self.master_seen = false;
                        self.down_at = Some(now + self.master_down_interval());
                    }
                }
            }
            State::Initialize | State::Fault => {}
        }
        self.finish(out)
    }

    /// A tracker's probe result; may move to or from Fault and changes the effective priority.
    pub fn set_tracker(&mut self, now: Instant, id: TrackerId, up: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if self.track.set(id, up) {
            self.reevaluate_fault(now, &mut out);
        }
        self.finish(out)
    }

    /// Holds (or releases) preemption: while held, a Backup follows a lower-priority master as
    /// without preemption; it still takes over when no master is heard. The daemon holds it
    /// until connection sync has delivered the current master's table.
    pub fn hold_preemption(&mut self, hold: bool) {
        self.preempt_hold = hold;
    }

    /// Whether preemption is held.
    pub fn preemption_held(&self) -> bool {
        self.preempt_hold
    }

    /// Whether this instance, in Backup, is currently following a live master.
    pub(crate) fn follows_live_master(&self, now: Instant) -> bool {
        self.state == State::Backup && self.master_seen && self.down_at.is_some_and(|at| at > now)
    }

    /// Whether the instance's own trackers report a fault.
    pub(crate) fn own_fault(&self) -> bool {
        self.track.faulted()
    }

    /// Sync group: become Master now (from Backup only).
    pub(crate) fn force_master(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Backup {
            self.enter_master(now, &mut out);
        }
        self.finish(out)
    }

    /// Sync group: become Backup now (from Master only), resigning so the peer takes over fast.
    pub(crate) fn force_backup(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            out.push(Action::SendAdvert { priority: RESIGN_PRIORITY });
            self.enter_backup(now, &mut out);
        }
        self.finish(out)
    }

    /// Sync group: impose or lift a group fault.
    pub(crate) fn set_forced_fault(&mut self, now: Instant, on: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if self.forced_fault != on {
            self.forced_fault = on;
            self.reevaluate_fault(now, &mut out);
        }
        self.finish(out)
    }

    fn reevaluate_fault(&mut self, now: Instant, out: &mut Vec<Action>) {
        match (self.state, self.faulted()) {
            (State::Backup | State::Master, true) => self.enter_fault(out),
            (State::Fault, false) => self.leave_initialize(now, out),
            _ => {}
        }
    }

    fn leave_initialize(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.master_adver_cs = self.cfg.advert_interval_cs;
        if self.faulted() {
            self.enter_fault(out);
        } else if self.effective_priority() == OWNER_PRIORITY {
            self.enter_master(now, out);
        } else {
            self.enter_backup(now, out);
        }
    }

    fn enter_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.state = State::Master;
        self.master_adver_cs = self.cfg.advert_interval_cs;
        self.clear_timers();
        self.adver_at = Some(now + centis(self.cfg.advert_interval_cs));
        out.push(Action::SendAdvert { priority: self.effective_priority() });
        out.push(Action::BecomeMaster);
    }

    fn enter_backup(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.state = State::Backup;
        self.adver_at = None;
        self.master_seen = false;
        self.down_at = Some(now + self.master_down_interval());
        out.push(Action::BecomeBackup);
    }

    fn enter_fault(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::SendAdvert { priority: RESIGN_PRIORITY });
        }
        self.state = State::Fault;
        self.clear_timers();
        out.push(Action::BecomeFault);
    }

    fn clear_timers(&mut self) {
        self.adver_at = None;
        self.down_at = None;
        self.preempt_until = None;
        self.master_seen = false;
    }

    fn apply_advert(&mut self, now: Instant, acc: &Accepted, out: &mut Vec<Action>) {
        let theirs = acc.advert.priority;
        let ours = self.effective_priority();
        match self.state {
            State::Initialize | State::Fault => {}
            State::Backup => {
                if theirs == RESIGN_PRIORITY {
                    self.master_seen = false;
                    self.down_at = Some(now + self.skew());
                } else if theirs >= ours || self.tolerate_lower_master(now) {
                    if theirs >= ours {
                        self.preempt_until = None;
                    }
                    self.adopt_master_interval(acc);
                    self.master_seen = true;
                    self.down_at = Some(now + self.master_down_interval());
                }
                // else: preempting; the lower-priority advert is discarded and the down timer runs out.
            }
            State::Master => {
                if theirs == RESIGN_PRIORITY {
                    out.push(Action::SendAdvert { priority: ours });
                    self.adver_at = Some(now + centis(self.cfg.advert_interval_cs));
                } else if theirs > ours || (theirs == ours && ip_greater(acc.src, self.cfg.primary_ip)) {
                    if self.cfg.higher_prio_send_advert {
                        out.push(Action::SendAdvert { priority: ours });
                    }
                    self.enter_backup(now, out);
                    self.adopt_master_interval(acc);
                    self.master_seen = true;
                    self.down_at = Some(now + self.master_down_interval());
                } else {
                    if self.cfg.answer_lower_priority {
                        out.push(Action::SendAdvert { priority: ours });
                    }
                    out.push(Action::Reannounce);
                }
            }
        }
    }

    /// Backup with preemption: whether a lower-priority master is still tolerated. Without
    /// preemption or while preemption is held, always. With a preempt delay, until the delay (started at startup or at the
    /// first lower-priority advert) runs out.
    fn tolerate_lower_master(&mut self, now: Instant) -> bool {
        if !self.cfg.preempt || self.preempt_hold {
            return true;
        }
        if self.cfg.preempt_delay.is_zero() {
            return false;
        }
        match self.preempt_until {
            Some(until) => now < until,
            None => {
                self.preempt_until = Some(now + self.cfg.preempt_delay);
                true
            }
        }
    }

    fn adopt_master_interval(&mut self, acc: &Accepted) {
        if self.cfg.version == Version::V3 && acc.advert.interval_cs > 0 {
            self.master_adver_cs = acc.advert.interval_cs;
        }
    }

    fn finish(&mut self, mut out: Vec<Action>) -> Vec<Action> {
        let next = self.next_deadline();
        if next != self.announced {
            if let Some(at) = next {
                out.push(Action::ScheduleTimer { at });
            }
            self.announced = next;
        }
        out
    }
}

/// `a > b` as unsigned integers in network byte order (RFC 5798 tie-break); false across families.
pub fn ip_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets() > b.octets(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets() > b.octets(),
        _ => false,
    }
}
