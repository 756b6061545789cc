//! Source hashing (`sh`, the kernel's ip_vs_sh.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Source hashing.
#[derive(Debug, Default)]
pub struct SourceHashing;

impl Scheduler for SourceHashing {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Sh
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
