//! The VRRP state machine: every transition, timers derived from the RFC formulas, split-brain
//! resolution over a simulated link, tracking and sync groups.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rvs_core::Instant;
use rvs_ha::vrrp::group::SyncGroup;
use rvs_ha::vrrp::packet::{Advert, ChecksumKind, V2Auth, VRRP_GROUP_V4, Version};
use rvs_ha::vrrp::rx::{DropReason, RxMeta};
use rvs_ha::vrrp::state::{Action, ConfigError, Instance, InstanceConfig, State};
use rvs_ha::vrrp::track::{TrackKind, Tracker};

fn addr(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, last))
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// v3, VRID 51, advert interval 1 s, primary 198.18.0.<last>.
fn config(last: u8, priority: u8) -> InstanceConfig {
    InstanceConfig::new(Version::V3, 51, priority, 100, addr(last))
}

fn instance(cfg: InstanceConfig) -> Instance {
    Instance::with_default_policy(cfg).expect("valid config")
}

/// An advert from 198.18.0.<last> with `priority` and `interval_cs`, as received.
fn advert_from(last: u8, priority: u8, interval_cs: u16) -> (RxMeta, Vec<u8>) {
    let a = Advert {
        version: Version::V3,
        vrid: 51,
        priority,
        interval_cs,
        auth: V2Auth::None,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100))],
    };
    let dst = IpAddr::V4(VRRP_GROUP_V4);
    let bytes = a.encode(addr(last), dst, ChecksumKind::PseudoHeader).expect("encodes");
    (RxMeta { src: addr(last), dst, ttl: 255, now_unix_us: None }, bytes)
}

fn receive(i: &mut Instance, now: Instant, from: u8, priority: u8, interval_cs: u16) -> Vec<Action> {
    let (meta, bytes) = advert_from(from, priority, interval_cs);
    i.receive(now, &meta, &bytes).expect("valid advert")
}

#[test]
fn owner_becomes_master_immediately() {
    let mut i = instance(config(1, 255));
    let out = i.startup(ms(0));
    assert_eq!(
        out,
        vec![Action::SendAdvert { priority: 255 }, Action::BecomeMaster, Action::ScheduleTimer { at: ms(1000) }]
    );
    assert_eq!(i.state(), State::Master);
}

#[test]
fn backup_waits_master_down_interval_then_takes_over() {
    // Priority 100, 1 s: Master_Down = 3 s + 156/256 s = 3.609375 s -> deadline 3609 ms.
    let mut i = instance(config(1, 100));
    assert_eq!(i.startup(ms(0)), vec![Action::BecomeBackup, Action::ScheduleTimer { at: ms(3609) }]);
    assert_eq!(i.on_timer(ms(3608)), vec![]);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(
        i.on_timer(ms(3609)),
        vec![Action::SendAdvert { priority: 100 }, Action::BecomeMaster, Action::ScheduleTimer { at: ms(4609) }]
    );
    // Master: one advert per interval.
    assert_eq!(i.on_timer(ms(4000)), vec![]);
    assert_eq!(
        i.on_timer(ms(4609)),
        vec![Action::SendAdvert { priority: 100 }, Action::ScheduleTimer { at: ms(5609) }]
    );
}

#[test]
fn v2_skew_is_independent_of_interval() {
    // v2, 2 s interval, priority 100: 3*2 s + 156/256 s = 6.609375 s.
    let mut i = instance(InstanceConfig::new(Version::V2, 51, 100, 200, addr(1)));
    assert_eq!(i.startup(ms(0)), vec![Action::BecomeBackup, Action::ScheduleTimer { at: ms(6609) }]);
}

#[test]
fn backup_adopts_master_interval_and_resets_down_timer() {
    let mut i = instance(config(1, 100));
    i.startup(ms(0));
    // Master at 150 advertises every 10 cs: Master_Down = 3*100 ms + 156*100 ms/256 = 360.9375 ms.
    let out = receive(&mut i, ms(1000), 2, 150, 10);
    assert_eq!(out, vec![Action::ScheduleTimer { at: ms(1360) }]);
    assert_eq!(i.master_adver_interval_cs(), 10);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(receive(&mut i, ms(1100), 2, 150, 10), vec![Action::ScheduleTimer { at: ms(1460) }]);
}

#[test]
fn priority_zero_makes_backup_take_over_after_skew() {
    let mut i = instance(config(1, 100));
    i.startup(ms(0));
    receive(&mut i, ms(500), 2, 150, 100);
    // Skew for priority 100 at 1 s = 609.375 ms.
    assert_eq!(receive(&mut i, ms(1000), 2, 0, 100), vec![Action::ScheduleTimer { at: ms(1609) }]);
    assert_eq!(i.on_timer(ms(1609))[..2], [Action::SendAdvert { priority: 100 }, Action::BecomeMaster]);
}

#[test]
fn preempt_discards_lower_priority_master() {
    // Priority 150: Master_Down = 3 s + 106/256 s = 3.4140625 s.
    let mut i = instance(config(1, 150));
    i.startup(ms(0));
    assert_eq!(receive(&mut i, ms(1000), 2, 100, 100), vec![]);
    assert_eq!(i.next_deadline(), Some(ms(3414)));
    assert_eq!(i.on_timer(ms(3414))[1], Action::BecomeMaster);
}

#[test]
fn nopreempt_follows_lower_priority_master() {
    let mut cfg = config(1, 150);
    cfg.preempt = false;
    let mut i = instance(cfg);
    i.startup(ms(0));
    assert_eq!(receive(&mut i, ms(1000), 2, 100, 100), vec![Action::ScheduleTimer { at: ms(4414) }]);
    assert_eq!(i.on_timer(ms(3414)), vec![]);
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn preempt_delay_tolerates_lower_master_until_it_expires() {
    let mut cfg = config(1, 150);
    cfg.preempt_delay = Duration::from_secs(5);
    let mut i = instance(cfg);
    i.startup(ms(0)); // delay runs until 5000 ms
    for t in [1000, 2000, 3000, 4000, 4999] {
        assert_eq!(receive(&mut i, ms(t), 2, 100, 100), vec![Action::ScheduleTimer { at: ms(t + 3414) }]);
    }
    // From 5000 ms the lower-priority adverts are discarded; the last reset (4999) expires.
    assert_eq!(receive(&mut i, ms(5000), 2, 100, 100), vec![]);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.on_timer(ms(4999 + 3414))[1], Action::BecomeMaster);
}

#[test]
fn preempt_delay_restarts_after_seeing_a_higher_master() {
    let mut cfg = config(1, 150);
    cfg.preempt_delay = Duration::from_secs(2);
    let mut i = instance(cfg);
    i.startup(ms(0));
    receive(&mut i, ms(3000), 2, 200, 100); // higher master: delay cleared
    // The first lower advert starts a new 2 s delay (until 6000).
    assert!(!receive(&mut i, ms(4000), 3, 100, 100).is_empty());
    assert!(!receive(&mut i, ms(5999), 3, 100, 100).is_empty());
    assert!(receive(&mut i, ms(6000), 3, 100, 100).is_empty());
}

#[test]
fn master_yields_to_higher_priority_and_optionally_sends_advert_first() {
    for send_first in [false, true] {
        let mut cfg = config(1, 100);
        cfg.higher_prio_send_advert = send_first;
        let mut i = instance(cfg);
        i.startup(ms(0));
        i.on_timer(ms(3609));
        assert_eq!(i.state(), State::Master);
        let out = receive(&mut i, ms(4000), 2, 150, 100);
        let mut want = vec![];
        if send_first {
            want.push(Action::SendAdvert { priority: 100 });
        }
        want.extend([Action::BecomeBackup, Action::ScheduleTimer { at: ms(4000 + 3609) }]);
        assert_eq!(out, want);
        assert_eq!(i.state(), State::Backup);
    }
}

#[test]
fn master_answers_lower_priority_unless_configured_not_to() {
    for answer in [true, false] {
        let mut cfg = config(1, 150);
        cfg.answer_lower_priority = answer;
        let mut i = instance(cfg);
        i.startup(ms(0));
        i.on_timer(ms(3414));
        let out = receive(&mut i, ms(3500), 2, 100, 100);
        let mut want = vec![];
        if answer {
            want.push(Action::SendAdvert { priority: 150 });
        }
        want.push(Action::Reannounce);
        assert_eq!(out, want);
        assert_eq!(i.state(), State::Master);
    }
}

#[test]
fn master_answers_priority_zero_at_once() {
    let mut i = instance(config(1, 255));
    i.startup(ms(0));
    assert_eq!(
        receive(&mut i, ms(300), 2, 0, 100),
        vec![Action::SendAdvert { priority: 255 }, Action::ScheduleTimer { at: ms(1300) }]
    );
}

#[test]
fn equal_priority_tie_breaks_on_primary_address() {
    let mut low = instance(config(1, 100));
    low.startup(ms(0));
    low.on_timer(ms(3609));
    // 198.18.0.2 > 198.18.0.1: the lower address yields.
    assert!(receive(&mut low, ms(4000), 2, 100, 100).contains(&Action::BecomeBackup));
    let mut high = instance(config(2, 100));
    high.startup(ms(0));
    high.on_timer(ms(3609));
    assert_eq!(
        receive(&mut high, ms(4000), 1, 100, 100),
        vec![Action::SendAdvert { priority: 100 }, Action::Reannounce]
    );
    assert_eq!(high.state(), State::Master);
}

#[test]
fn shutdown_resigns_and_stops() {
    let mut i = instance(config(1, 255));
    i.startup(ms(0));
    assert_eq!(i.shutdown(ms(10)), vec![Action::SendAdvert { priority: 0 }, Action::Stopped]);
    assert_eq!(i.state(), State::Initialize);
    assert_eq!(i.next_deadline(), None);
    assert_eq!(i.on_timer(ms(5000)), vec![]);
    // Adverts in Initialize change nothing.
    assert_eq!(receive(&mut i, ms(6000), 2, 0, 100), vec![]);
    let mut b = instance(config(1, 100));
    b.startup(ms(0));
    assert_eq!(b.shutdown(ms(1)), vec![Action::Stopped]);
}

#[test]
fn own_adverts_and_bad_config_are_refused() {
    let mut i = instance(config(1, 100));
    i.startup(ms(0));
    let (meta, bytes) = advert_from(1, 200, 100);
    assert_eq!(i.receive(ms(1), &meta, &bytes), Err(DropReason::FromSelf));
    assert_eq!(Instance::with_default_policy(config(1, 0)).err(), Some(ConfigError::Priority));
    assert_eq!(
        Instance::with_default_policy(InstanceConfig::new(Version::V3, 0, 100, 100, addr(1))).err(),
        Some(ConfigError::Vrid)
    );
    assert_eq!(
        Instance::with_default_policy(InstanceConfig::new(Version::V2, 1, 100, 150, addr(1))).err(),
        Some(ConfigError::Interval(150))
    );
    assert_eq!(
        Instance::with_default_policy(InstanceConfig::new(Version::V3, 1, 100, 4096, addr(1))).err(),
        Some(ConfigError::Interval(4096))
    );
    let mut cfg = config(1, 100);
    cfg.down_timer_adverts = 0;
    assert_eq!(Instance::with_default_policy(cfg).err(), Some(ConfigError::DownTimerAdverts));
}

#[test]
fn ten_millisecond_adverts() {
    // v3 interval 1 cs (10 ms), priority 200, down_timer_adverts 3: 30 ms + 56*10/256 ms = 32.1875 ms.
    let mut i = instance(InstanceConfig::new(Version::V3, 51, 200, 1, addr(1)));
    assert_eq!(i.startup(ms(0)), vec![Action::BecomeBackup, Action::ScheduleTimer { at: ms(32) }]);
    i.on_timer(ms(32));
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.next_deadline(), Some(ms(42)));
}

fn tracker(weight: i16) -> Tracker {
    Tracker { name: "eth0".into(), kind: TrackKind::Interface, weight, reverse: false }
}

#[test]
fn weight_zero_tracker_forces_fault_and_recovery_goes_to_backup() {
    let mut i = instance(config(1, 255));
    let t = i.add_tracker(tracker(0), true).expect("weight ok");
    i.startup(ms(0));
    assert_eq!(i.set_tracker(ms(100), t, false), vec![Action::SendAdvert { priority: 0 }, Action::BecomeFault]);
    assert_eq!(i.state(), State::Fault);
    assert_eq!(receive(&mut i, ms(200), 2, 0, 100), vec![]); // adverts ignored in Fault
    assert_eq!(i.on_timer(ms(99_999)), vec![]);
    // Recovery re-enters through Initialize: an owner goes straight back to Master.
    assert_eq!(
        i.set_tracker(ms(300), t, true),
        vec![Action::SendAdvert { priority: 255 }, Action::BecomeMaster, Action::ScheduleTimer { at: ms(1300) }]
    );
    // A non-owner starting with a failed tracker starts in Fault, then goes to Backup.
    let mut b = instance(config(1, 100));
    let t = b.add_tracker(tracker(0), false).expect("weight ok");
    assert_eq!(b.startup(ms(0)), vec![Action::BecomeFault]);
    assert_eq!(b.set_tracker(ms(10), t, true), vec![Action::BecomeBackup, Action::ScheduleTimer { at: ms(3619) }]);
}

#[test]
fn negative_weight_lowers_advertised_priority() {
    let mut i = instance(config(1, 150));
    let t = i.add_tracker(tracker(-60), true).expect("weight ok");
    i.startup(ms(0));
    i.on_timer(ms(3414));
    assert_eq!(i.set_tracker(ms(3500), t, false), vec![]);
    assert_eq!(i.effective_priority(), 90);
    assert_eq!(i.on_timer(ms(4414)), vec![Action::SendAdvert { priority: 90 }, Action::ScheduleTimer { at: ms(5414) }]);
}

/// Instances on one simulated segment: adverts an instance sends reach the others while the link is up.
struct Segment {
    nodes: Vec<Instance>,
    link_up: bool,
}

impl Segment {
    fn deliver(&mut self, now: Instant, from: usize, actions: &[Action]) {
        if !self.link_up {
            return;
        }
        let src = self.nodes[from].config().primary_ip;
        let IpAddr::V4(s) = src else { return };
        for a in actions {
            if let Action::SendAdvert { priority } = a {
                let (meta, bytes) = advert_from(s.octets()[3], *priority, 100);
                for j in 0..self.nodes.len() {
                    if j != from {
                        let out = self.nodes[j].receive(now, &meta, &bytes).expect("valid");
                        self.deliver(now, j, &out);
                    }
                }
            }
        }
    }

    /// Runs timers every millisecond up to `until`.
    fn run(&mut self, from: u64, until: u64) {
        for t in from..=until {
            for n in 0..self.nodes.len() {
                let out = self.nodes[n].on_timer(ms(t));
                self.deliver(ms(t), n, &out);
            }
        }
    }

    fn states(&self) -> Vec<State> {
        self.nodes.iter().map(Instance::state).collect()
    }
}

#[test]
fn split_brain_resolves_to_higher_priority() {
    let mut seg = Segment { nodes: vec![instance(config(1, 150)), instance(config(2, 100))], link_up: false };
    for n in &mut seg.nodes {
        n.startup(ms(0));
    }
    seg.run(0, 5000);
    assert_eq!(seg.states(), vec![State::Master, State::Master]); // partitioned: both master
    seg.link_up = true;
    seg.run(5001, 8000);
    assert_eq!(seg.states(), vec![State::Master, State::Backup]);
}

#[test]
fn split_brain_with_equal_priority_resolves_to_higher_address() {
    let mut seg = Segment { nodes: vec![instance(config(2, 100)), instance(config(1, 100))], link_up: false };
    for n in &mut seg.nodes {
        n.startup(ms(0));
    }
    seg.run(0, 5000);
    assert_eq!(seg.states(), vec![State::Master, State::Master]);
    seg.link_up = true;
    seg.run(5001, 8000);
    assert_eq!(seg.states(), vec![State::Master, State::Backup]);
}

#[test]
fn failover_and_preemptive_failback_over_the_segment() {
    let mut seg = Segment { nodes: vec![instance(config(1, 150)), instance(config(2, 100))], link_up: true };
    for n in &mut seg.nodes {
        n.startup(ms(0));
    }
    seg.run(0, 10_000);
    assert_eq!(seg.states(), vec![State::Master, State::Backup]);
    // Master shuts down cleanly at 10 s: the backup takes over after its skew (609 ms).
    let out = seg.nodes[0].shutdown(ms(10_000));
    seg.deliver(ms(10_000), 0, &out);
    assert_eq!(seg.nodes[1].next_deadline(), Some(ms(10_609)));
    seg.run(10_001, 10_609);
    assert_eq!(seg.states(), vec![State::Initialize, State::Master]);
    // It comes back: Backup first, then preempts the lower-priority master.
    seg.nodes[0].startup(ms(20_000));
    seg.run(20_000, 25_000);
    assert_eq!(seg.states(), vec![State::Master, State::Backup]);
}

#[test]
fn sync_group_members_move_together() {
    let mut g = SyncGroup::new(vec![instance(config(1, 100)), instance(config(1, 100))]);
    g.startup(ms(0));
    assert_eq!(g.states(), vec![State::Backup, State::Backup]);
    g.on_timer(ms(3609));
    assert_eq!(g.states(), vec![State::Master, State::Master]);
    // Member 0 sees a higher-priority master: member 1 resigns with it.
    let (meta, bytes) = advert_from(2, 200, 100);
    let out = g.receive(ms(4000), 0, &meta, &bytes).expect("valid");
    assert!(out.contains(&(0, Action::BecomeBackup)));
    assert!(out.contains(&(1, Action::SendAdvert { priority: 0 })));
    assert!(out.contains(&(1, Action::BecomeBackup)));
    assert_eq!(g.states(), vec![State::Backup, State::Backup]);
    // Member 1 hears nobody, but member 0 follows a live master: the group stays Backup.
    g.receive(ms(7000), 0, &meta, &bytes).expect("valid");
    g.on_timer(ms(4000 + 3609));
    assert_eq!(g.states(), vec![State::Backup, State::Backup]);
    // The master of member 0 disappears: both take over together.
    g.on_timer(ms(7000 + 3609));
    assert_eq!(g.states(), vec![State::Master, State::Master]);
}

#[test]
fn sync_group_fault_is_shared() {
    let mut second = instance(config(1, 100));
    let t = second.add_tracker(tracker(0), true).expect("weight ok");
    let mut g = SyncGroup::new(vec![instance(config(1, 255)), second]);
    g.startup(ms(0));
    assert_eq!(g.states(), vec![State::Master, State::Master]);
    let out = g.set_tracker(ms(100), 1, t, false);
    assert!(out.contains(&(0, Action::SendAdvert { priority: 0 })));
    assert_eq!(g.states(), vec![State::Fault, State::Fault]);
    g.set_tracker(ms(200), 1, t, true);
    assert_eq!(g.states(), vec![State::Master, State::Master]);
}

#[test]
fn held_preemption_follows_a_lower_master_until_released_but_not_a_dead_one() {
    // Priority 150 at 1 s adverts: Master_Down = 3414 ms (as in preempt_discards_lower_priority_master).
    let mut i = instance(config(1, 150));
    i.hold_preemption(true);
    i.startup(ms(0));
    for t in [1000, 2000, 3000, 4000] {
        assert_eq!(receive(&mut i, ms(t), 2, 100, 100), vec![Action::ScheduleTimer { at: ms(t + 3414) }]);
    }
    assert_eq!(i.on_timer(ms(5000)), vec![]);
    assert_eq!(i.state(), State::Backup);
    // Released: the next lower-priority advert is discarded and the down timer set at 4000 runs out.
    i.hold_preemption(false);
    assert_eq!(receive(&mut i, ms(5000), 2, 100, 100), vec![]);
    assert_eq!(i.on_timer(ms(4000 + 3414))[1], Action::BecomeMaster);

    // Held, but the master falls silent: the down timer still makes us master.
    let mut j = instance(config(1, 150));
    j.hold_preemption(true);
    j.startup(ms(0));
    receive(&mut j, ms(1000), 2, 100, 100);
    assert_eq!(j.on_timer(ms(1000 + 3414))[1], Action::BecomeMaster);
}
