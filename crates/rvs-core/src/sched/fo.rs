//! Weighted failover (`fo`, the kernel's ip_vs_fo.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Weighted failover.
#[derive(Debug, Default)]
pub struct WeightedFailover;

impl Scheduler for WeightedFailover {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Fo
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
