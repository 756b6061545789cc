//! Never queue (`nq`, the kernel's ip_vs_nq.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Never queue.
#[derive(Debug, Default)]
pub struct NeverQueue;

impl Scheduler for NeverQueue {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Nq
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
