//! One VRRP instance at run time: its thread drives the `rvs_ha` state machine with the
//! daemon's clock, received adverts, tracker reports and a stop flag, and carries out what the
//! machine asks: adverts (AF_PACKET multicast or raw IP unicast, with PASS or the HMAC trailer),
//! virtual addresses added or removed, gratuitous ARP / unsolicited NA rounds as the planner
//! says, notify commands, counters. On stop a master resigns with a priority-0 advert and the
//! addresses are removed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use anyhow::{Context, bail};
use rvs_config::failover::{VrrpAuth, VrrpInstance, VrrpVersion};
use rvs_core::Instant;
use rvs_ha::auth::{AuthContext, AuthMode, Domain, Freshness, KeyRing, Signer};
use rvs_ha::garp::schedule::{GarpConfig, GarpPlanner};
use rvs_ha::garp::{ArpForm, gratuitous_arp, unsolicited_na};
use rvs_ha::vrrp::frame::{self, IpFields};
use rvs_ha::vrrp::packet::{Advert, ChecksumKind, V2Auth, VRRP_GROUP_V4, VRRP_GROUP_V6, Version};
use rvs_ha::vrrp::rx::ChecksumPolicy;
use rvs_ha::vrrp::state::{Action, Instance, InstanceConfig, State};
use rvs_ha::vrrp::track::{TrackKind, Tracker, TrackerId};
use rvs_ha::wire::MacAddr;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::failover::addrs::{self, HostAddr};
use crate::failover::link::{self, AdvertReceiver, FramePort, UnicastSender};
use crate::failover::machine::Machine;
use crate::failover::notify;
use crate::failover::stats::{InstanceStats, bump, drop_index, state_number};
use crate::failover::sync::PreemptionGate;
use crate::failover::track::Probes;

/// How often tracked interfaces are looked at.
const LINK_CHECK: Duration = Duration::from_millis(100);
/// Longest wait for a frame (bounds the reaction to the stop flag and to tracker reports).
const MAX_WAIT: Duration = Duration::from_millis(50);
/// The same for sync group members (also bounds the reaction to actions other members post).
const GROUP_WAIT: Duration = Duration::from_millis(5);

/// The wall clock in µs since the Unix epoch (for trailer counters and their freshness).
fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// What the instance thread owns.
pub struct Runtime {
    cfg: VrrpInstance,
    machine: Machine,
    clock: Clock,
    stats: Arc<InstanceStats>,
    primary: IpAddr,
    group: IpAddr,
    rx: AdvertReceiver,
    ports: HashMap<String, FramePort>,
    unicast: Option<UnicastSender>,
    signer: Option<Signer>,
    v2_auth: V2Auth,
    checksum: ChecksumKind,
    advert_addrs: Vec<IpAddr>,
    host_addrs: Vec<HostAddr>,
    /// None until the first add or remove (so leftovers of a crash are removed at start).
    holds_addrs: Option<bool>,
    planner: GarpPlanner,
    interface_trackers: Vec<(TrackerId, String, bool)>,
    probe_reports: Receiver<(TrackerId, bool)>,
    probes: Probes,
    ip_id: u16,
    /// Connection sync's gate: preemption is held while it is closed.
    gate: Option<PreemptionGate>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("instance", &self.cfg.name).field("state", &self.machine.state()).finish()
    }
}

fn keyring(key_id: u8, key: &[u8]) -> anyhow::Result<KeyRing> {
    KeyRing::single(key_id, key).map_err(|e| anyhow::anyhow!("HMAC key: {e}"))
}

impl Runtime {
    /// Opens the sockets and builds the state machine (nothing is sent yet).
    pub fn open(cfg: VrrpInstance, clock: Clock, stats: Arc<InstanceStats>) -> anyhow::Result<Runtime> {
        let vips: Vec<IpAddr> = cfg.virtual_addresses.iter().map(|a| a.addr).collect();
        let primary = match cfg.primary_address {
            Some(p) => p,
            None => addrs::primary_address(&cfg.interface, cfg.ipv6, &vips)
                .with_context(|| format!("reading the addresses of {}", cfg.interface))?
                .with_context(|| format!("{} has no address to send adverts from", cfg.interface))?,
        };
        let version = match cfg.version {
            VrrpVersion::V2 => Version::V2,
            VrrpVersion::V3 => Version::V3,
        };
        let mut icfg = InstanceConfig::new(version, cfg.vrid, cfg.priority, cfg.advert_interval_cs, primary);
        icfg.preempt = cfg.preempt;
        icfg.preempt_delay = cfg.preempt_delay;
        icfg.down_timer_adverts = cfg.down_timer_adverts;
        icfg.answer_lower_priority = cfg.answer_lower_priority;
        icfg.higher_prio_send_advert = cfg.higher_prio_send_advert;
        let advert_addrs: Vec<IpAddr> = vips.iter().copied().filter(|a| a.is_ipv6() == cfg.ipv6).collect();
        let mut policy = icfg.default_policy();
        policy.expected_addr_count = Some(advert_addrs.len());
        let checksum = if cfg.v3_checksum_as_v2 && !cfg.ipv6 {
            policy.v3_checksum = ChecksumPolicy::AsV2;
            ChecksumKind::MessageOnly
        } else {
            ChecksumKind::PseudoHeader
        };
        let (mut v2_auth, mut signer) = (V2Auth::None, None);
        match &cfg.auth {
            VrrpAuth::None => {}
            VrrpAuth::Pass(p) => {
                v2_auth = V2Auth::password(p);
                policy.v2_auth = v2_auth;
            }
            VrrpAuth::Hmac(h) => {
                let ring = keyring(h.key_id, &h.key)?;
                signer = Some(Signer::new(ring.clone(), Domain::Vrrp, unix_us()));
                policy.auth = if h.required { AuthMode::Required(ring) } else { AuthMode::Permissive(ring) };
                policy.freshness =
                    h.freshness.map(|w| Freshness { window_us: u64::try_from(w.as_micros()).unwrap_or(u64::MAX) });
            }
        }
        let mut machine = Instance::new(icfg, policy).map_err(|e| anyhow::anyhow!("instance {}: {e}", cfg.name))?;
        let mut interface_trackers = Vec::new();
        for t in &cfg.track_interfaces {
            let up = link::link_up(&t.name);
            let tracker =
                Tracker { name: t.name.clone(), kind: TrackKind::Interface, weight: t.weight, reverse: t.reverse };
            let id = machine.add_tracker(tracker, up).map_err(|e| anyhow::anyhow!("{e}"))?;
            interface_trackers.push((id, t.name.clone(), up));
        }
        let mut probes = Vec::new();
        for p in &cfg.track_probes {
            let (kind, name) = match &p.kind {
                rvs_config::failover::ProbeKind::Ping(t) => (TrackKind::Ping, t.to_string()),
                rvs_config::failover::ProbeKind::Script(c) => (TrackKind::Script, c.clone()),
            };
            let id = machine
                .add_tracker(Tracker { name, kind, weight: p.weight, reverse: p.reverse }, true)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            probes.push((id, p.clone()));
        }
        let (tx, probe_reports) = mpsc::channel();
        let probes = Probes::start(&cfg.name, probes, &tx);
        let rx = AdvertReceiver::open(&cfg.interface, cfg.ipv6)
            .with_context(|| format!("opening the VRRP receiver on {}", cfg.interface))?;
        let host_addrs: Vec<HostAddr> = cfg
            .virtual_addresses
            .iter()
            .map(|a| HostAddr {
                addr: a.addr,
                prefix: a.prefix,
                dev: a.dev.clone().unwrap_or_else(|| cfg.interface.clone()),
            })
            .collect();
        let mut ports = HashMap::new();
        for dev in std::iter::once(&cfg.interface).chain(host_addrs.iter().map(|a| &a.dev)) {
            if !ports.contains_key(dev) {
                let port = FramePort::open(dev).with_context(|| format!("opening an AF_PACKET sender on {dev}"))?;
                ports.insert(dev.clone(), port);
            }
        }
        let unicast = if cfg.unicast_peers.is_empty() {
            None
        } else {
            Some(UnicastSender::open(&cfg.interface, cfg.ipv6).context("opening the unicast sender")?)
        };
        let group = if cfg.ipv6 { IpAddr::V6(VRRP_GROUP_V6) } else { IpAddr::V4(VRRP_GROUP_V4) };
        let g = &cfg.garp;
        let planner = GarpPlanner::new(GarpConfig {
            delay: g.delay,
            repeat: g.repeat,
            lower_prio_delay: g.lower_prio_delay,
            lower_prio_repeat: g.lower_prio_repeat,
            refresh: g.refresh,
            refresh_repeat: g.refresh_repeat,
            interval: g.interval,
            min_garp: g.min_garp,
        });
        stats.priority.store(u64::from(machine.effective_priority()), Ordering::Relaxed);
        info!(instance = %cfg.name, interface = %cfg.interface, vrid = cfg.vrid, priority = cfg.priority,
              %primary, "VRRP instance ready");
        Ok(Runtime {
            cfg,
            machine: Machine::Solo(Box::new(machine)),
            clock,
            stats,
            primary,
            group,
            rx,
            ports,
            unicast,
            signer,
            v2_auth,
            checksum,
            advert_addrs,
            host_addrs,
            holds_addrs: None,
            planner,
            interface_trackers,
            probe_reports,
            probes,
            ip_id: 0,
            gate: None,
        })
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.machine.state()
    }

    /// The instance's sync group name, if any.
    pub fn sync_group(&self) -> Option<&str> {
        self.cfg.sync_group.as_deref()
    }

    /// A copy of the state machine (before a group is formed).
    pub fn solo_instance(&self) -> Option<Instance> {
        self.machine.solo_instance()
    }

    /// Drives `machine` from now on (a sync group member's).
    pub fn join(&mut self, machine: Machine) {
        self.machine = machine;
    }

    /// Holds preemption until connection sync opens `gate` (the instance closes it whenever
    /// it leaves Backup).
    pub fn hold_preemption_on(&mut self, gate: PreemptionGate) {
        self.gate = Some(gate);
    }

    /// Holds preemption while the gate is closed.
    fn follow_gate(&mut self) {
        let Some(gate) = &self.gate else { return };
        let hold = !gate.is_open();
        if hold != self.machine.preemption_held() {
            self.machine.hold_preemption(hold);
            if !hold && self.machine.state() == State::Backup {
                info!(instance = %self.cfg.name, "connection sync is complete: preemption allowed");
            }
        }
    }

    /// Runs until `stop` is set, then resigns and cleans up.
    pub fn run(mut self, stop: &AtomicBool) {
        self.follow_gate();
        let now = self.clock.now();
        let actions = self.machine.startup(now);
        self.apply(now, actions);
        let max_wait = if self.machine.is_member() { GROUP_WAIT } else { MAX_WAIT };
        let mut next_link_check = now + LINK_CHECK;
        while !stop.load(Ordering::Relaxed) {
            self.follow_gate();
            let now = self.clock.now();
            let posted = self.machine.inbox();
            self.apply(now, posted);
            if self.machine.next_deadline().is_some_and(|d| d <= now) {
                let actions = self.machine.on_timer(now);
                self.apply(now, actions);
            }
            let rounds = self.planner.poll(now);
            for _ in 0..rounds {
                self.announce();
            }
            while let Ok((id, up)) = self.probe_reports.try_recv() {
                let actions = self.machine.set_tracker(now, id, up);
                self.apply(now, actions);
            }
            if now >= next_link_check {
                next_link_check = now + LINK_CHECK;
                self.check_links(now);
            }
            let next = [self.machine.next_deadline(), self.planner.next_due(), Some(next_link_check)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_link_check);
            let wait = next.saturating_since(self.clock.now()).min(max_wait);
            match self.rx.recv(wait) {
                Ok(Some(frame)) => {
                    let frame = frame.to_vec();
                    self.on_frame(&frame);
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(instance = %self.cfg.name, error = %e, "receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        let now = self.clock.now();
        let actions = self.machine.shutdown(now);
        self.apply(now, actions);
        self.probes.stop();
        info!(instance = %self.cfg.name, "VRRP instance stopped");
    }

    fn on_frame(&mut self, frame: &[u8]) {
        let now = self.clock.now();
        let parsed = frame::parse_ethernet(frame).and_then(|(_, mut meta, payload)| {
            meta.now_unix_us = Some(unix_us());
            self.machine.receive(now, &meta, payload)
        });
        match parsed {
            Ok(actions) => {
                bump(&self.stats.adverts_rx);
                self.apply(now, actions);
            }
            Err(reason) => {
                if let Some(c) = self.stats.drops.get(drop_index(&reason)) {
                    bump(c);
                }
                debug!(instance = %self.cfg.name, %reason, "advert dropped");
            }
        }
    }

    fn check_links(&mut self, now: Instant) {
        for i in 0..self.interface_trackers.len() {
            let Some((id, name, was)) = self.interface_trackers.get(i).cloned() else { continue };
            let up = link::link_up(&name);
            if up != was {
                info!(instance = %self.cfg.name, interface = %name, up, "tracked interface changed");
                if let Some(t) = self.interface_trackers.get_mut(i) {
                    t.2 = up;
                }
                let actions = self.machine.set_tracker(now, id, up);
                self.apply(now, actions);
            }
        }
    }

    fn apply(&mut self, now: Instant, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::SendAdvert { priority } => self.send_advert(priority),
                Action::BecomeMaster => {
                    self.set_addrs(true);
                    self.planner.become_master(now);
                    // The first round goes out at once, not at the next loop turn.
                    for _ in 0..self.planner.poll(now) {
                        self.announce();
                    }
                    self.transition(State::Master);
                }
                Action::BecomeBackup => {
                    self.planner.leave_master();
                    self.set_addrs(false);
                    self.transition(State::Backup);
                }
                Action::BecomeFault => {
                    self.planner.leave_master();
                    self.set_addrs(false);
                    self.transition(State::Fault);
                }
                Action::Stopped => {
                    self.planner.leave_master();
                    self.set_addrs(false);
                    self.transition(State::Initialize);
                }
                Action::Reannounce => self.planner.lower_priority_seen(now),
                Action::ScheduleTimer { .. } => {}
            }
        }
        self.stats.priority.store(u64::from(self.machine.effective_priority()), Ordering::Relaxed);
    }

    fn transition(&mut self, state: State) {
        if state != State::Backup
            && let Some(gate) = &self.gate
        {
            gate.set(false);
            self.machine.hold_preemption(true);
        }
        self.stats.state.store(state_number(state), Ordering::Relaxed);
        bump(&self.stats.transitions);
        let word = notify::state_word(state);
        info!(instance = %self.cfg.name, state = word, priority = self.machine.effective_priority(), "VRRP state");
        notify::run(
            &self.cfg.notify,
            &self.cfg.name,
            word,
            self.machine.effective_priority(),
            state == State::Initialize,
        );
    }

    fn set_addrs(&mut self, add: bool) {
        if self.holds_addrs == Some(add) {
            return;
        }
        if let Err(e) = addrs::apply(&self.host_addrs, add) {
            warn!(instance = %self.cfg.name, error = %e, add, "changing the virtual addresses failed");
        }
        self.holds_addrs = Some(add);
    }

    /// One round of announcements: a gratuitous ARP per IPv4 address and an unsolicited NA per
    /// IPv6 address, each out of the address's interface.
    fn announce(&mut self) {
        for a in &self.host_addrs {
            let Some(port) = self.ports.get(&a.dev) else { continue };
            let frame = match a.addr {
                IpAddr::V4(v) => gratuitous_arp(v, port.mac(), ArpForm::Request),
                IpAddr::V6(v) => unsolicited_na(v, port.mac(), false),
            };
            match port.send(&frame) {
                Ok(()) => bump(&self.stats.announcements),
                Err(e) => {
                    bump(&self.stats.send_errors);
                    debug!(error = %e, "announcement not sent");
                }
            }
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let advert = Advert {
            version: self.machine.version().unwrap_or(Version::V3),
            vrid: self.cfg.vrid,
            priority,
            interval_cs: self.cfg.advert_interval_cs,
            auth: self.v2_auth,
            addrs: self.advert_addrs.clone(),
        };
        let dsts: Vec<IpAddr> =
            if self.cfg.unicast_peers.is_empty() { vec![self.group] } else { self.cfg.unicast_peers.clone() };
        for dst in dsts {
            match self.send_one(&advert, dst) {
                Ok(()) => bump(&self.stats.adverts_tx),
                Err(e) => {
                    bump(&self.stats.send_errors);
                    debug!(instance = %self.cfg.name, %dst, error = %e, "advert not sent");
                }
            }
        }
    }

    fn send_one(&mut self, advert: &Advert, dst: IpAddr) -> anyhow::Result<()> {
        let mut msg = advert.encode(self.primary, dst, self.checksum).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(s) = &mut self.signer {
            s.seal(&AuthContext { src: self.primary, dst }, &mut msg, unix_us());
        }
        self.ip_id = self.ip_id.wrapping_add(1);
        let packet = frame::ip_packet(&msg, self.primary, dst, IpFields { ipv4_id: self.ip_id, ipv6_flow_label: 0 });
        if dst.is_multicast() {
            let Some(port) = self.ports.get(&self.cfg.interface) else { bail!("no sender on {}", self.cfg.interface) };
            let eth =
                frame::ethernet_frame(port.mac(), frame::dst_mac(dst, MacAddr::BROADCAST), &packet, dst.is_ipv6());
            port.send(&eth)?;
        } else {
            let Some(u) = &self.unicast else { bail!("no unicast sender") };
            u.send(&packet, dst)?;
        }
        Ok(())
    }
}
