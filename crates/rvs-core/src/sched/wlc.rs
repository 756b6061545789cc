//! Weighted least connections (`wlc`, the kernel's ip_vs_wlc.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Weighted least connections.
#[derive(Debug, Default)]
pub struct WeightedLeastConnection;

impl Scheduler for WeightedLeastConnection {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Wlc
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
