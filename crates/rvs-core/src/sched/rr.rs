//! Round robin (`rr`, the kernel's ip_vs_rr.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Round robin.
#[derive(Debug, Default)]
pub struct RoundRobin;

impl Scheduler for RoundRobin {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Rr
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
