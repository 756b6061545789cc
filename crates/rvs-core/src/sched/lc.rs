//! Least connections (`lc`, the kernel's ip_vs_lc.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Least connections.
#[derive(Debug, Default)]
pub struct LeastConnection;

impl Scheduler for LeastConnection {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lc
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
