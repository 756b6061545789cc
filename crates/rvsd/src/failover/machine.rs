//! The state machine an instance thread drives: its own [`Instance`], or its place in a sync
//! group ([`SyncGroup`], keepalived's `vrrp_sync_group`) shared by the members' threads. Every
//! event returns actions tagged with the member they are for; a member keeps its own and posts
//! the others' to their threads' inboxes, so each thread still does all the I/O of its
//! instance (adverts, addresses, announcements, notify commands).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use rvs_core::Instant;
use rvs_ha::vrrp::group::{MemberAction, SyncGroup};
use rvs_ha::vrrp::packet::Version;
use rvs_ha::vrrp::rx::{DropReason, RxMeta};
use rvs_ha::vrrp::state::{Action, Instance, State};
use rvs_ha::vrrp::track::TrackerId;

use crate::control::lock;

/// An instance's place in a sync group.
#[derive(Debug)]
pub struct Member {
    group: Arc<Mutex<SyncGroup>>,
    index: usize,
    inboxes: Vec<Sender<Action>>,
    inbox: Receiver<Action>,
}

/// What an instance thread drives.
#[derive(Debug)]
pub enum Machine {
    /// An instance of its own.
    Solo(Box<Instance>),
    /// A member of a sync group.
    Member(Member),
}

/// Forms a sync group of `instances` (in order) and starts it at `now`: the startup actions
/// wait in the members' inboxes. Returns the members' machines, in order.
pub fn form_group(instances: Vec<Instance>, now: Instant) -> Vec<Machine> {
    let (inboxes, receivers): (Vec<Sender<Action>>, Vec<Receiver<Action>>) =
        instances.iter().map(|_| mpsc::channel()).unzip();
    let mut group = SyncGroup::new(instances);
    let started = group.startup(now);
    post(&inboxes, usize::MAX, started);
    let group = Arc::new(Mutex::new(group));
    receivers
        .into_iter()
        .enumerate()
        .map(|(index, inbox)| Machine::Member(Member { group: group.clone(), index, inboxes: inboxes.clone(), inbox }))
        .collect()
}

/// Posts the actions not for `own` to their members' inboxes; returns `own`'s.
fn post(inboxes: &[Sender<Action>], own: usize, actions: Vec<MemberAction>) -> Vec<Action> {
    let mut mine = Vec::new();
    for (member, action) in actions {
        if member == own {
            mine.push(action);
        } else if let Some(inbox) = inboxes.get(member) {
            // A member whose thread is gone (stopping) needs nothing more.
            let _ = inbox.send(action);
        }
    }
    mine
}

impl Machine {
    fn with<R>(&self, f: impl FnOnce(&Instance) -> R) -> Option<R> {
        match self {
            Machine::Solo(i) => Some(f(i)),
            Machine::Member(m) => lock(&m.group).members().get(m.index).map(f),
        }
    }

    fn with_mut<R>(&mut self, f: impl FnOnce(&mut Instance) -> R) -> Option<R> {
        match self {
            Machine::Solo(i) => Some(f(i)),
            Machine::Member(m) => lock(&m.group).member_mut(m.index).map(f),
        }
    }

    /// Runs a group-wide event (members) or the instance's own (solo), keeping this member's
    /// actions and posting the rest.
    fn drive(
        &mut self,
        solo: impl FnOnce(&mut Instance) -> Vec<Action>,
        grouped: impl FnOnce(&mut SyncGroup, usize) -> Vec<MemberAction>,
    ) -> Vec<Action> {
        match self {
            Machine::Solo(i) => solo(i),
            Machine::Member(m) => {
                let actions = grouped(&mut lock(&m.group), m.index);
                post(&m.inboxes, m.index, actions)
            }
        }
    }

    /// A copy of the instance (solo only), to form a group with.
    pub fn solo_instance(&self) -> Option<Instance> {
        match self {
            Machine::Solo(i) => Some((**i).clone()),
            Machine::Member(_) => None,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.with(Instance::state).unwrap_or(State::Initialize)
    }

    /// Priority after tracker weights.
    pub fn effective_priority(&self) -> u8 {
        self.with(Instance::effective_priority).unwrap_or(0)
    }

    /// Protocol version.
    pub fn version(&self) -> Option<Version> {
        self.with(|i| i.config().version)
    }

    /// Whether preemption is held.
    pub fn preemption_held(&self) -> bool {
        self.with(Instance::preemption_held).unwrap_or(false)
    }

    /// Holds or releases preemption.
    pub fn hold_preemption(&mut self, hold: bool) {
        self.with_mut(|i| i.hold_preemption(hold));
    }

    /// Startup (a group member was started with its group: nothing to do).
    pub fn startup(&mut self, now: Instant) -> Vec<Action> {
        self.drive(|i| i.startup(now), |_, _| Vec::new())
    }

    /// Shutdown of this instance.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Action> {
        self.with_mut(|i| i.shutdown(now)).unwrap_or_default()
    }

    /// Timer event (for the whole group).
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        self.drive(|i| i.on_timer(now), |g, _| g.on_timer(now))
    }

    /// The earliest deadline (of the whole group).
    pub fn next_deadline(&self) -> Option<Instant> {
        match self {
            Machine::Solo(i) => i.next_deadline(),
            Machine::Member(m) => lock(&m.group).next_deadline(),
        }
    }

    /// A tracker result of this instance.
    pub fn set_tracker(&mut self, now: Instant, id: TrackerId, up: bool) -> Vec<Action> {
        self.drive(|i| i.set_tracker(now, id, up), |g, me| g.set_tracker(now, me, id, up))
    }

    /// An advert received for this instance.
    pub fn receive(&mut self, now: Instant, meta: &RxMeta, payload: &[u8]) -> Result<Vec<Action>, DropReason> {
        match self {
            Machine::Solo(i) => i.receive(now, meta, payload),
            Machine::Member(m) => {
                let actions = lock(&m.group).receive(now, m.index, meta, payload)?;
                Ok(post(&m.inboxes, m.index, actions))
            }
        }
    }

    /// Actions other members' events left for this one.
    pub fn inbox(&self) -> Vec<Action> {
        match self {
            Machine::Solo(_) => Vec::new(),
            Machine::Member(m) => m.inbox.try_iter().collect(),
        }
    }

    /// Whether this is a sync group member.
    pub fn is_member(&self) -> bool {
        matches!(self, Machine::Member(_))
    }
}
