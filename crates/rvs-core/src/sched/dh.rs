//! Destination hashing (`dh`, the kernel's ip_vs_dh.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Destination hashing.
#[derive(Debug, Default)]
pub struct DestinationHashing;

impl Scheduler for DestinationHashing {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Dh
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
