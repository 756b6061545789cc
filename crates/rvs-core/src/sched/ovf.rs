//! Weighted overflow (`ovf`, the kernel's ip_vs_ovf.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Weighted overflow.
#[derive(Debug, Default)]
pub struct WeightedOverflow;

impl Scheduler for WeightedOverflow {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Ovf
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
