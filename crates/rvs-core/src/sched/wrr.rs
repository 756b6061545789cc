//! Weighted round robin (`wrr`, the kernel's ip_vs_wrr.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Weighted round robin.
#[derive(Debug, Default)]
pub struct WeightedRoundRobin;

impl Scheduler for WeightedRoundRobin {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Wrr
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
