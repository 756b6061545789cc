//! Sync groups (keepalived `vrrp_sync_group`): member instances change state together. When one
//! member becomes Master, Backup members follow; when one yields to a higher-priority master,
//! Master members resign; when one faults, all fault until no member's own trackers fault.
//! A member whose down timer expires does not take over while another member still follows a
//! live master: the group only moves to Master when none of its routers has one.

use rvs_core::Instant;

use crate::vrrp::rx::{DropReason, RxMeta};
use crate::vrrp::state::{Action, Instance, State};
use crate::vrrp::track::TrackerId;

/// An action for one member (index into the group).
pub type MemberAction = (usize, Action);

/// Instances that transition together.
#[derive(Debug, Clone)]
pub struct SyncGroup {
    members: Vec<Instance>,
}

impl SyncGroup {
    /// A group of `members` (not yet started).
    pub fn new(members: Vec<Instance>) -> SyncGroup {
        SyncGroup { members }
    }

    /// The members.
    pub fn members(&self) -> &[Instance] {
        &self.members
    }

    /// One member, to adjust it (e.g. [`Instance::hold_preemption`]).
    pub fn member_mut(&mut self, member: usize) -> Option<&mut Instance> {
        self.members.get_mut(member)
    }

    /// Member states, in order.
    pub fn states(&self) -> Vec<State> {
        self.members.iter().map(Instance::state).collect()
    }

    /// Starts every member, then aligns them.
    pub fn startup(&mut self, now: Instant) -> Vec<MemberAction> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            out.extend(m.startup(now).into_iter().map(|a| (i, a)));
        }
        if let Some(leader) = self.members.iter().position(|m| m.state() == State::Master) {
            self.follow(now, leader, State::Backup, &mut out);
        }
        self.sync_fault(now, &mut out);
        out
    }

    /// Stops every member.
    pub fn shutdown(&mut self, now: Instant) -> Vec<MemberAction> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            out.extend(m.shutdown(now).into_iter().map(|a| (i, a)));
        }
        out
    }

    /// An advert received for `member`. Unknown members are refused as a wrong VRID.
    pub fn receive(
        &mut self,
        now: Instant,
        member: usize,
        meta: &RxMeta,
        payload: &[u8],
    ) -> Result<Vec<MemberAction>, DropReason> {
        let m = self.members.get_mut(member).ok_or(DropReason::WrongVrid(0))?;
        let before = m.state();
        let actions = m.receive(now, meta, payload)?;
        let mut out: Vec<MemberAction> = actions.into_iter().map(|a| (member, a)).collect();
        self.follow(now, member, before, &mut out);
        Ok(out)
    }

    /// Timer event for every member.
    pub fn on_timer(&mut self, now: Instant) -> Vec<MemberAction> {
        let mut out = Vec::new();
        for i in 0..self.members.len() {
            let others_follow_master =
                self.members.iter().enumerate().any(|(j, m)| j != i && m.follows_live_master(now));
            let Some(m) = self.members.get_mut(i) else { continue };
            let before = m.state();
            out.extend(m.on_timer_gated(now, !others_follow_master).into_iter().map(|a| (i, a)));
            self.follow(now, i, before, &mut out);
        }
        out
    }

    /// A tracker result for one member.
    pub fn set_tracker(&mut self, now: Instant, member: usize, id: TrackerId, up: bool) -> Vec<MemberAction> {
        let mut out = Vec::new();
        let Some(m) = self.members.get_mut(member) else { return out };
        let before = m.state();
        out.extend(m.set_tracker(now, id, up).into_iter().map(|a| (member, a)));
        self.sync_fault(now, &mut out);
        self.follow(now, member, before, &mut out);
        out
    }

    /// The earliest deadline over all members.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members.iter().filter_map(Instance::next_deadline).min()
    }

    /// After `leader` moved from `before`, pull the other members along.
    fn follow(&mut self, now: Instant, leader: usize, before: State, out: &mut Vec<MemberAction>) {
        let Some(after) = self.members.get(leader).map(Instance::state) else { return };
        if after == before {
            return;
        }
        for (i, m) in self.members.iter_mut().enumerate() {
            if i == leader {
                continue;
            }
            let actions = match after {
                State::Master => m.force_master(now),
                State::Backup if before == State::Master => m.force_backup(now),
                _ => Vec::new(),
            };
            out.extend(actions.into_iter().map(|a| (i, a)));
        }
    }

    /// Group fault = any member's own trackers fault; impose it on all or lift it from all.
    fn sync_fault(&mut self, now: Instant, out: &mut Vec<MemberAction>) {
        let group_fault = self.members.iter().any(Instance::own_fault);
        let mut left_fault = None;
        for (i, m) in self.members.iter_mut().enumerate() {
            let before = m.state();
            out.extend(m.set_forced_fault(now, group_fault).into_iter().map(|a| (i, a)));
            if before == State::Fault && m.state() == State::Master {
                left_fault = Some(i);
            }
        }
        // Leaving fault, an owner member goes straight to Master: the others follow it.
        if let Some(leader) = left_fault {
            for (i, m) in self.members.iter_mut().enumerate() {
                if i != leader {
                    out.extend(m.force_master(now).into_iter().map(|a| (i, a)));
                }
            }
        }
    }
}
