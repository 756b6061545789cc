//! Shortest expected delay (`sed`, the kernel's ip_vs_sed.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Shortest expected delay.
#[derive(Debug, Default)]
pub struct ShortestExpectedDelay;

impl Scheduler for ShortestExpectedDelay {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Sed
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
